#include "config/settings.hpp"

#include <cstdlib>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using todo::config_error;
using todo::load_result;
using todo::load_settings;
using todo::parse_dotenv;
using todo::settings;

namespace {

using env_map = std::map<std::string, std::string>;
using args_t = std::vector<std::string>;

const std::string secret = "s3cr3t-ZQX-never-print-me-7781";
const std::string db_url = "postgresql://u:pw-ZQX-db-9@db.example/todo?sslmode=require";

/// Returns an environment holding just the two required settings.
env_map base_env() {
  return {{"DATABASE_URL", db_url}, {"BETTER_AUTH_SECRET", secret}};
}

load_result load(const args_t& args, env_map env = base_env(), const std::string& dotenv = "") {
  return load_settings(args, env, dotenv);
}

/// Returns the error of a load that must fail.
config_error error_of(const load_result& r) {
  REQUIRE_FALSE(r.value);
  REQUIRE(r.error);
  return *r.error;
}

/// Returns the settings of a load that must succeed.
settings value_of(const load_result& r) {
  if (r.error)
    FAIL(r.error->line());
  REQUIRE(r.value);
  return *r.value;
}

} // namespace

TEST_CASE("defaults apply when only the required settings are given") {
  auto s = value_of(load({}));
  CHECK(s.port == 8000);
  CHECK(s.host == "0.0.0.0");
  CHECK(s.database_url == db_url);
  CHECK(s.better_auth_secret == secret);
  CHECK(s.jwks_url.empty());
  CHECK(s.jwks_file.empty());
  CHECK_FALSE(s.better_auth_issuer);
  CHECK_FALSE(s.better_auth_audience);
  CHECK(s.jwt_algorithms == std::vector<std::string>{"HS256"});
  CHECK(s.jwt_require_exp);
  CHECK(s.jwt_leeway_seconds == 60);
  CHECK(s.cors_origins == std::vector<std::string>{"http://localhost:3000"});
  CHECK(s.db_pool_size == 2);
  CHECK(s.threads == todo::default_threads());
  CHECK(s.threads >= 1);
  CHECK(s.log_level == "info");
  CHECK(s.log_format == "text");
  CHECK(s.max_body_bytes == 65536);
  CHECK(s.read_timeout_ms == 10000);
  CHECK(s.idle_timeout_ms == 60000);
  CHECK(s.db_timeout_ms == 2000);
  CHECK(s.db_connect_wait_ms == 30000);
  CHECK(s.shutdown_grace_ms == 10000);
  CHECK(s.max_connections == 10000);
  CHECK(s.user_idle_ms == 300000);
  CHECK(s.max_pending_per_user == 256);
  CHECK(s.db_queue_limit == 4096);
  CHECK(s.db_prepared == "auto");
  CHECK(s.database_listen_url.empty());
}

TEST_CASE("a flag beats the environment, which beats .env, which beats the default") {
  std::string dotenv = "PORT=7000\nDB_POOL_SIZE=7\nTHREADS=3\n";
  auto env = base_env();
  env["PORT"] = "8001";
  env["DB_POOL_SIZE"] = "8";
  auto s = value_of(load({"--port", "9000"}, env, dotenv));
  CHECK(s.port == 9000);       // flag
  CHECK(s.db_pool_size == 8);  // environment over .env
  CHECK(s.threads == 3);       // .env over default
  CHECK(s.log_level == "info"); // default
}

TEST_CASE("required settings may come from .env alone") {
  auto s = value_of(load({}, {}, "DATABASE_URL=postgres://x\nBETTER_AUTH_SECRET=abc\n"));
  CHECK(s.database_url == "postgres://x");
  CHECK(s.better_auth_secret == "abc");
}

TEST_CASE("flags accept both --flag value and --flag=value") {
  auto s = value_of(load({"--port=9001", "--db-pool-size", "16", "--log-level=debug",
                          "--host", "127.0.0.1", "--cors-origins=https://a.example, https://b"}));
  CHECK(s.port == 9001);
  CHECK(s.db_pool_size == 16);
  CHECK(s.log_level == "debug");
  CHECK(s.host == "127.0.0.1");
  CHECK(s.cors_origins == std::vector<std::string>{"https://a.example", "https://b"});
}

TEST_CASE("a value after = may itself contain =") {
  auto s = value_of(load({"--database-url=host=db port=5432 dbname=todo"}));
  CHECK(s.database_url == "host=db port=5432 dbname=todo");
}

TEST_CASE("the last of a repeated flag wins") {
  CHECK(value_of(load({"--port", "1", "--port", "2"})).port == 2);
}

TEST_CASE("every numeric bound error names the setting") {
  struct probe {
    std::string env;
    std::string bad;
    std::string message;
  };
  const std::string ms = "must be an integer between 1 and 86400000";
  const std::string cnt = "must be an integer between 1 and 1000000";
  std::vector<probe> probes{
    {"PORT", "0", "must be an integer between 1 and 65535"},
    {"PORT", "65536", "must be an integer between 1 and 65535"},
    {"PORT", "80x", "must be an integer between 1 and 65535"},
    {"PORT", "", "must be an integer between 1 and 65535"},
    {"JWT_LEEWAY_SECONDS", "-1", "must be an integer between 0 and 3600"},
    {"JWT_LEEWAY_SECONDS", "3601", "must be an integer between 0 and 3600"},
    {"DB_POOL_SIZE", "0", "must be an integer between 1 and 256"},
    {"DB_POOL_SIZE", "257", "must be an integer between 1 and 256"},
    {"THREADS", "0", "must be an integer between 1 and 256"},
    {"THREADS", "1.5", "must be an integer between 1 and 256"},
    {"MAX_BODY_BYTES", "16777217", "must be an integer between 1 and 16777216"},
    {"MAX_BODY_BYTES", "99999999999999999999999", "must be an integer between 1 and 16777216"},
    {"READ_TIMEOUT_MS", "0", ms},
    {"IDLE_TIMEOUT_MS", "86400001", ms},
    {"DB_TIMEOUT_MS", "-5", ms},
    {"DB_CONNECT_WAIT_MS", "-1", "must be an integer between 0 and 86400000"},
    {"DB_CONNECT_WAIT_MS", "soon", "must be an integer between 0 and 86400000"},
    {"SHUTDOWN_GRACE_MS", "ten", ms},
    {"USER_IDLE_MS", "0", ms},
    {"MAX_CONNECTIONS", "0", cnt},
    {"MAX_PENDING_PER_USER", "0", cnt},
    {"DB_QUEUE_LIMIT", "1000001", cnt},
    {"DRAIN_DELAY_MS", "-1", "must be an integer between 0 and 600000"},
    {"DRAIN_DELAY_MS", "600001", "must be an integer between 0 and 600000"},
    {"TRUSTED_PROXIES", "10.0.0.0/33", "not an IP address or CIDR block: 10.0.0.0/33"},
    {"TRUSTED_PROXIES", "127.0.0.1,proxy.local", "not an IP address or CIDR block: proxy.local"},
    {"TRUSTED_PROXIES", "::1/129", "not an IP address or CIDR block: ::1/129"},
    {"TRUSTED_PROXIES", "10.0.0.1/", "not an IP address or CIDR block: 10.0.0.1/"},
  };
  for (const auto& p : probes) {
    INFO(p.env << "=" << p.bad);
    auto env = base_env();
    env[p.env] = p.bad;
    auto err = error_of(load({}, env));
    CHECK(err.setting == p.env);
    CHECK(err.message == p.message);
    CHECK(err.line() == p.env + ": " + p.message);
  }
}

TEST_CASE("numeric bounds are inclusive") {
  auto env = base_env();
  env["PORT"] = "65535";
  env["JWT_LEEWAY_SECONDS"] = "0";
  env["DB_POOL_SIZE"] = "256";
  env["THREADS"] = " 1 ";
  env["MAX_BODY_BYTES"] = "16777216";
  env["DB_TIMEOUT_MS"] = "86400000";
  auto s = value_of(load({}, env));
  CHECK(s.port == 65535);
  CHECK(s.jwt_leeway_seconds == 0);
  CHECK(s.db_pool_size == 256);
  CHECK(s.threads == 1);
  CHECK(s.max_body_bytes == 16777216);
  CHECK(s.db_timeout_ms == 86400000);
}

TEST_CASE("booleans accept true/false, 1/0 and yes/no in any case") {
  for (auto [text, expected] : std::vector<std::pair<std::string, bool>>{
         {"true", true}, {"TRUE", true}, {"1", true}, {"Yes", true},
         {"false", false}, {"False", false}, {"0", false}, {"NO", false}}) {
    INFO(text);
    CHECK(value_of(load({"--jwt-require-exp", text})).jwt_require_exp == expected);
  }
  auto err = error_of(load({"--jwt-require-exp=maybe"}));
  CHECK(err.setting == "JWT_REQUIRE_EXP");
}

TEST_CASE("DB_PREPARED takes auto or a boolean, stored as auto, true or false") {
  for (auto [text, expected] : std::vector<std::pair<std::string, std::string>>{
         {"auto", "auto"}, {" AUTO ", "auto"}, {"true", "true"}, {"1", "true"}, {"Yes", "true"},
         {"false", "false"}, {"0", "false"}, {"no", "false"}}) {
    INFO(text);
    CHECK(value_of(load({"--db-prepared", text})).db_prepared == expected);
  }
  auto env = base_env();
  env["DB_PREPARED"] = "false";
  CHECK(value_of(load({}, env)).db_prepared == "false");
  auto err = error_of(load({"--db-prepared=sometimes"}));
  CHECK(err.setting == "DB_PREPARED");
  CHECK(err.message == "must be auto, true or false (also 1/0, yes/no)");
}

TEST_CASE("DATABASE_LISTEN_URL is optional, taken as given and never echoed") {
  const std::string direct = "postgresql://u:pw-ZQX-direct@db.example/todo?sslmode=require";
  auto env = base_env();
  env["DATABASE_LISTEN_URL"] = " " + direct + " ";
  CHECK(value_of(load({}, env)).database_listen_url == direct);
  CHECK(value_of(load({"--database-listen-url", direct})).database_listen_url == direct);
  auto err = error_of(load({"--database-listen-url", direct, secret}));
  CHECK(err.line().find("ZQX") == std::string::npos);
}

TEST_CASE("algorithm lists are trimmed, checked and deduplicated") {
  auto s = value_of(load({"--jwt-algorithms", " HS256 , EdDSA,ES256,RS256,PS256,HS256 "}));
  CHECK(s.jwt_algorithms == std::vector<std::string>{"HS256", "EdDSA", "ES256", "RS256", "PS256"});
  for (std::string bad : {"HS512", "none", "hs256", "", " , "}) {
    INFO(bad);
    auto err = error_of(load({"--jwt-algorithms=" + bad}));
    CHECK(err.setting == "JWT_ALGORITHMS");
  }
}

TEST_CASE("origin lists are trimmed and may be empty") {
  auto env = base_env();
  env["CORS_ORIGINS"] = " https://a.example ,, https://b.example ";
  CHECK(value_of(load({}, env)).cors_origins
        == std::vector<std::string>{"https://a.example", "https://b.example"});
  env["CORS_ORIGINS"] = "";
  CHECK(value_of(load({}, env)).cors_origins.empty());
}

TEST_CASE("log level and format accept only their listed values") {
  auto s = value_of(load({"--log-level", "WARN", "--log-format", "json"}));
  CHECK(s.log_level == "warn");
  CHECK(s.log_format == "json");
  auto lvl = error_of(load({"--log-level", "trace"}));
  CHECK(lvl.line() == "LOG_LEVEL: must be one of debug|info|warn|error");
  auto fmt = error_of(load({"--log-format", "xml"}));
  CHECK(fmt.line() == "LOG_FORMAT: must be one of text|json");
}

TEST_CASE("issuer, audience and JWKS settings are optional strings") {
  auto s = value_of(load({"--better-auth-issuer", "https://auth.example", "--better-auth-audience",
                          "todo", "--better-auth-jwks-url", "https://fe/api/auth/jwks"}));
  CHECK(s.better_auth_issuer == std::optional<std::string>{"https://auth.example"});
  CHECK(s.better_auth_audience == std::optional<std::string>{"todo"});
  CHECK(s.jwks_url == "https://fe/api/auth/jwks");
  CHECK(value_of(load({"--better-auth-jwks-file=/etc/jwks.json"})).jwks_file == "/etc/jwks.json");
  CHECK_FALSE(value_of(load({"--better-auth-issuer="})).better_auth_issuer);
}

TEST_CASE("a missing DATABASE_URL or BETTER_AUTH_SECRET stops start-up") {
  auto no_db = base_env();
  no_db.erase("DATABASE_URL");
  CHECK(error_of(load({}, no_db)).line() == "DATABASE_URL: required");
  auto no_secret = base_env();
  no_secret.erase("BETTER_AUTH_SECRET");
  CHECK(error_of(load({}, no_secret)).line() ==
        "BETTER_AUTH_SECRET: required (or set BETTER_AUTH_JWKS_URL or _FILE)");
  auto jwks_only = no_secret;
  jwks_only["BETTER_AUTH_JWKS_URL"] = "https://example.com/api/auth/jwks";
  auto s = value_of(load({}, jwks_only));
  CHECK(s.jwt_algorithms == std::vector<std::string>{"EdDSA", "ES256", "RS256", "PS256"});
  auto both = base_env();
  both["BETTER_AUTH_JWKS_FILE"] = "/tmp/jwks.json";
  CHECK(value_of(load({}, both)).jwt_algorithms ==
        std::vector<std::string>{"HS256", "EdDSA", "ES256", "RS256", "PS256"});
  both["BETTER_AUTH_JWKS_URL"] = "https://example.com/api/auth/jwks";
  CHECK(error_of(load({}, both)).setting == "BETTER_AUTH_JWKS_FILE");
  auto blank = base_env();
  blank["BETTER_AUTH_SECRET"] = "   ";
  CHECK(error_of(load({}, blank)).line() == "BETTER_AUTH_SECRET: required");
  CHECK(error_of(load({"--database-url="})).line() == "DATABASE_URL: required");
}

TEST_CASE("the secret keeps its exact bytes") {
  auto env = base_env();
  env["BETTER_AUTH_SECRET"] = " padded ";
  CHECK(value_of(load({}, env)).better_auth_secret == " padded ");
}

TEST_CASE("no error line ever contains the secret or the database URL") {
  std::vector<args_t> cases{
    {"--port", "0"},
    {"--port"},
    {"--bogus=" + secret},
    {"--better-auth-secrt", secret},
    {"--better-auth-secrt=" + secret},
    {secret},
    {"--database-url", db_url, secret},
    {"-" + secret},
    {"--better-auth-secret", secret, "--jwt-algorithms", secret},
    {"--better-auth-secret", secret, "--log-level", secret},
    {"--better-auth-secret", secret, "--db-pool-size", secret},
    {"--better-auth-secret", secret, "--jwt-require-exp", secret},
    {"--better-auth-secret"},
    {"--database-url"},
  };
  for (const auto& args : cases) {
    auto r = load(args);
    REQUIRE(r.error);
    auto line = r.error->line();
    INFO(line);
    CHECK(line.find("ZQX") == std::string::npos);
  }
  // Secrets taken from .env with every other setting broken in turn.
  for (std::string key : {"PORT", "THREADS", "LOG_LEVEL", "JWT_ALGORITHMS", "JWT_REQUIRE_EXP"}) {
    auto r = load({}, {{key, secret}},
                  "DATABASE_URL=" + db_url + "\nBETTER_AUTH_SECRET=" + secret + "\n");
    REQUIRE(r.error);
    CHECK(r.error->setting == key);
    CHECK(r.error->line().find("ZQX") == std::string::npos);
  }
}

TEST_CASE("help flags ask for help instead of settings") {
  for (const char* flag : {"--help", "-h"}) {
    auto r = load({"--port", "0", flag}, {});
    CHECK(r.help);
    CHECK_FALSE(r.value);
    CHECK_FALSE(r.error);
  }
}

TEST_CASE("the help text lists every setting with its flag and default") {
  auto text = todo::help_text();
  for (const char* want :
       {"--port", "PORT", "8000", "--database-url", "DATABASE_URL", "--better-auth-secret",
        "--better-auth-jwks-url", "--better-auth-jwks-file", "--better-auth-issuer",
        "--better-auth-audience", "--jwt-algorithms", "--jwt-require-exp", "--jwt-leeway-seconds",
        "--cors-origins", "http://localhost:3000", "--db-pool-size", "--threads", "--log-level",
        "--log-format", "--max-body-bytes", "65536", "--read-timeout-ms", "--idle-timeout-ms",
        "--db-timeout-ms", "--db-connect-wait-ms", "--shutdown-grace-ms", "--max-connections", "--user-idle-ms",
        "--max-pending-per-user", "--db-queue-limit", "DB_QUEUE_LIMIT", "--db-prepared",
        "DB_PREPARED", "--database-listen-url", "DATABASE_LISTEN_URL", "--help"}) {
    INFO(want);
    CHECK(text.find(want) != std::string::npos);
  }
  // Header lines plus one line per setting.
  CHECK(std::count(text.begin(), text.end(), '\n') == 3 + 46);
}

TEST_CASE("an unknown flag is named in the error") {
  auto err = error_of(load({"--prot", "80"}));
  CHECK(err.setting == "--prot");
  auto eq = error_of(load({"--prot=80"}));
  CHECK(eq.setting == "--prot");
  CHECK(error_of(load({"-p"})).setting == "-p");
  // Something that does not look like a flag name is not echoed: it may be a pasted secret.
  CHECK(error_of(load({"--Not_A_Flag!"})).setting == "arguments");
}

TEST_CASE("a flag without a value is an error") {
  auto last = error_of(load({"--port"}));
  CHECK(last.setting == "--port");
  CHECK(last.message == "requires a value");
  auto followed = error_of(load({"--port", "--host", "x"}));
  CHECK(followed.setting == "--port");
}

TEST_CASE("a stray positional argument is an error") {
  auto err = error_of(load({"serve"}));
  CHECK(err.setting == "arguments");
}

TEST_CASE("dotenv parsing handles comments, export and quotes") {
  auto m = parse_dotenv("# a comment\n"
                        "\n"
                        "PLAIN=value\n"
                        "  SPACED  =  spaced value  \n"
                        "export EXPORTED=yes\n"
                        "DQ=\"double # not a comment\"\n"
                        "SQ='single \\n raw'\n"
                        "ESC=\"a\\\"b\\\\c\\nd\"\n"
                        "INLINE=abc #comment\n"
                        "HASH=abc#def\n"
                        "EMPTY=\n"
                        "CRLF=win\r\n"
                        "QUOTED_TAIL=\"q\" # note\n"
                        "UNCLOSED=\"open\n"
                        "EQ=a=b\n"
                        "no equals sign here\n"
                        "=orphan\n"
                        "    # indented comment\n"
                        "PLAIN=second\n");
  CHECK(m.at("PLAIN") == "second");
  CHECK(m.at("SPACED") == "spaced value");
  CHECK(m.at("EXPORTED") == "yes");
  CHECK(m.at("DQ") == "double # not a comment");
  CHECK(m.at("SQ") == "single \\n raw");
  CHECK(m.at("ESC") == "a\"b\\c\nd");
  CHECK(m.at("INLINE") == "abc");
  CHECK(m.at("HASH") == "abc#def");
  CHECK(m.at("EMPTY").empty());
  CHECK(m.at("CRLF") == "win");
  CHECK(m.at("QUOTED_TAIL") == "q");
  CHECK(m.at("UNCLOSED") == "\"open");
  CHECK(m.at("EQ") == "a=b");
  CHECK(m.size() == 13);
}

TEST_CASE("environment_map reads the process environment") {
  ::setenv("TODO_CONFIG_TEST_VAR", "a=b", 1);
  auto m = todo::environment_map();
  CHECK(m.at("TODO_CONFIG_TEST_VAR") == "a=b");
  ::unsetenv("TODO_CONFIG_TEST_VAR");
}

TEST_CASE("TRUSTED_PROXIES: addresses and CIDR blocks of both families") {
  auto env = base_env();
  env["TRUSTED_PROXIES"] = " 10.0.0.0/8 , 127.0.0.1, fd00::/8, 192.168.1.128/25";
  auto s = value_of(load({}, env));
  REQUIRE(s.trusted_proxies.size() == 4);
  auto in = [&](const char* a) {
    auto addr = todo::parse_ip(a);
    REQUIRE(addr);
    return todo::in_ranges(s.trusted_proxies, *addr);
  };
  CHECK(in("10.255.0.1"));
  CHECK_FALSE(in("11.0.0.1"));
  CHECK(in("127.0.0.1"));
  CHECK(in("::ffff:127.0.0.1")); // the same peer seen by a dual-stack socket
  CHECK_FALSE(in("127.0.0.2"));
  CHECK(in("fd12::1"));
  CHECK_FALSE(in("fe80::1"));
  CHECK(in("192.168.1.200"));
  CHECK_FALSE(in("192.168.1.127"));
  CHECK(value_of(load({}, base_env())).trusted_proxies.empty());

  using todo::client_address;
  auto r = s.trusted_proxies;
  CHECK(client_address(r, "127.0.0.1", "203.0.113.7") == "203.0.113.7");
  CHECK(client_address(r, "127.0.0.1", "198.51.100.1, 203.0.113.7, 10.1.2.3") == "203.0.113.7");
  CHECK(client_address(r, "127.0.0.1", "10.1.2.3") == "10.1.2.3"); // only proxies: the first hop
  CHECK(client_address(r, "127.0.0.1", "") == "127.0.0.1");
  CHECK(client_address(r, "127.0.0.1", "unknown, 10.1.2.3") == "10.1.2.3");
  CHECK(client_address(r, "127.0.0.1", "203.0.113.7:4711") == "127.0.0.1"); // not an address
  CHECK(client_address(r, "203.0.113.9", "198.51.100.1") == "203.0.113.9"); // untrusted peer
  CHECK(client_address({}, "127.0.0.1", "198.51.100.1") == "127.0.0.1");
}
