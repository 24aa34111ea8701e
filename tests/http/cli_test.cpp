// The binary's subcommands (issue 13, part 7), run as a deploy pipeline would: migrate
// (--status, two at once), check, version, token, and each --help; exit codes 0 and 2, and no
// password in any output.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <pqxx/pqxx>

#include "persistence/migrations.hpp"
#include "tests/http/http_client.hpp"

using namespace std::chrono_literals;

namespace {

struct ran {
  int code = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Starts the binary with `args` and exactly `env`; returns its pid (stdout and stderr go to
/// files named after `tag`).
pid_t start(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
            const std::string& tag) {
  const char* bin = std::getenv("TODO_API_BINARY");
  REQUIRE(bin != nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::chdir("/"); // no .env there
    std::freopen((tag + ".out").c_str(), "w", stdout);
    std::freopen((tag + ".err").c_str(), "w", stderr);
    std::vector<std::string> strs{bin};
    strs.insert(strs.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : strs)
      argv.push_back(s.data());
    argv.push_back(nullptr);
    std::vector<std::string> envs;
    for (const auto& [k, v] : env)
      envs.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : envs)
      envp.push_back(s.data());
    envp.push_back(nullptr);
    ::execve(bin, argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

ran finish(pid_t pid, const std::string& tag) {
  ran r;
  int status = 0;
  for (int i = 0; i < 600 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(100ms);
  if (::waitpid(pid, &status, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(tag + ".out");
  r.err = slurp(tag + ".err");
  ::unlink((tag + ".out").c_str());
  ::unlink((tag + ".err").c_str());
  return r;
}

ran run(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  auto tag = "/tmp/todo-cli-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand());
  return finish(start(args, env, tag), tag);
}

std::string test_url() {
  const char* url = std::getenv("TEST_DATABASE_URL");
  REQUIRE(url != nullptr);
  return url;
}

/// A new empty database on the test cluster; returns its URL.
std::string fresh_database(const std::string& name) {
  pqxx::connection c{test_url()};
  pqxx::nontransaction n{c};
  n.exec("DROP DATABASE IF EXISTS " + name);
  n.exec("CREATE DATABASE " + name);
  auto url = test_url();
  auto slash = url.rfind('/');
  auto q = url.find('?', slash);
  return url.substr(0, slash + 1) + name + (q == std::string::npos ? "" : url.substr(q));
}

const std::string unreachable = "postgresql://todo:s3cretpw@127.0.0.1:1/todo";

} // namespace

TEST_CASE("every subcommand has --help and the top-level help lists them") {
  for (const auto& cmd : {"migrate", "check", "version", "token", "gen-jwk", "serve"}) {
    INFO(cmd);
    auto r = run({cmd, "--help"});
    CHECK(r.code == 0);
    CHECK(r.out.find("sage") != std::string::npos); // "usage:" / "Usage:"
  }
  auto r = run({"--help"});
  CHECK(r.code == 0);
  for (const auto& cmd : {"serve", "migrate", "check", "token", "gen-jwk", "version"})
    CHECK(r.out.find(std::string{"  "} + cmd + " ") != std::string::npos);
}

TEST_CASE("version names the service, its commit and every library, and the server") {
  auto r = run({"version"}, {{"DATABASE_URL", test_url()}});
  REQUIRE(r.code == 0);
  CHECK(r.out.find("todo-api 1.0.0 (commit ") != std::string::npos);
  CHECK(r.out.find("CAF 0.17.") != std::string::npos);
  CHECK(r.out.find("Boost 1.81.") != std::string::npos);
  CHECK(r.out.find("libpqxx 6.4.") != std::string::npos);
  CHECK(r.out.find("OpenSSL 3.") != std::string::npos);
  CHECK(r.out.find("PostgreSQL server 15.") != std::string::npos);
  auto off = run({"version"}, {{"DATABASE_URL", unreachable}});
  CHECK(off.code == 0); // the versions it knows, and why the server's is unknown
  CHECK(off.out.find("PostgreSQL server unknown (") != std::string::npos);
  CHECK(off.out.find("s3cretpw") == std::string::npos);
}

TEST_CASE("migrate --status lists pending, two migrates at once both succeed, then none pending") {
  auto url = fresh_database("cli_migrate_" + std::to_string(::getpid()));
  auto total = todo::db::embedded_migrations().size();
  auto before = run({"migrate", "--status"}, {{"DATABASE_URL", url}});
  REQUIRE(before.code == 0);
  CHECK(before.out.find(std::to_string(total) + " pending") != std::string::npos);
  CHECK(before.out.find("pending  1  001_create_tasks") != std::string::npos);
  // Two deploy jobs at once: the advisory lock makes them take turns.
  auto t1 = "/tmp/todo-cli-m1-" + std::to_string(::getpid());
  auto t2 = "/tmp/todo-cli-m2-" + std::to_string(::getpid());
  auto p1 = start({"migrate"}, {{"DATABASE_URL", url}}, t1);
  auto p2 = start({"migrate", "--database-url", url}, {}, t2);
  auto r1 = finish(p1, t1);
  auto r2 = finish(p2, t2);
  INFO(r1.err << r2.err);
  CHECK(r1.code == 0);
  CHECK(r2.code == 0);
  CHECK((r1.out + r2.out).find("applied in all") != std::string::npos);
  auto after = run({"migrate", "--status"}, {{"DATABASE_URL", url}});
  CHECK(after.code == 0);
  CHECK(after.out.find("0 pending") != std::string::npos);
  CHECK(after.out.find("applied  1  001_create_tasks  20") != std::string::npos);
  pqxx::connection c{url};
  pqxx::nontransaction n{c};
  CHECK(n.exec("SELECT count(*) FROM schema_migrations")[0][0].as<size_t>() == total);
  CHECK(n.exec("SELECT count(DISTINCT version) FROM schema_migrations")[0][0].as<size_t>() == total);
}

TEST_CASE("migrate refuses a database it cannot reach with exit 2, naming DATABASE_URL only") {
  auto r = run({"migrate"}, {{"DATABASE_URL", unreachable}, {"DB_CONNECT_WAIT_MS", "0"}});
  CHECK(r.code == 2);
  CHECK(r.err.rfind("DATABASE_URL: ", 0) == 0);
  CHECK(r.err.find("s3cretpw") == std::string::npos);
  CHECK(run({"migrate"}).code == 2); // no DATABASE_URL at all
  CHECK(run({"migrate", "--frobnicate"}, {{"DATABASE_URL", test_url()}}).code == 2);
}

TEST_CASE("check validates settings, the database and the JWKS, and names what is wrong") {
  std::map<std::string, std::string> env{{"DATABASE_URL", test_url()},
                                         {"BETTER_AUTH_SECRET", todo::test::test_secret()}};
  auto ok = run({"check"}, env);
  INFO(ok.err);
  CHECK(ok.code == 0);
  CHECK(ok.out.find("database: ok (PostgreSQL 15.") != std::string::npos);
  CHECK(ok.out.find("check: ok") != std::string::npos);

  auto bad_setting = env;
  bad_setting["DB_POOL_SIZE"] = "0";
  auto r = run({"check"}, bad_setting);
  CHECK(r.code == 2);
  CHECK(r.err.rfind("DB_POOL_SIZE: ", 0) == 0);

  auto no_db = env;
  no_db["DATABASE_URL"] = unreachable;
  r = run({"check"}, no_db);
  CHECK(r.code == 2);
  CHECK(r.err.rfind("DATABASE_URL: ", 0) == 0);
  CHECK(r.err.find("s3cretpw") == std::string::npos);
  CHECK(r.out.find("s3cretpw") == std::string::npos);

  auto bad_jwks = env;
  auto path = "/tmp/todo-cli-jwks-" + std::to_string(::getpid()) + ".json";
  std::ofstream{path} << R"({"keys": "not an array"})";
  bad_jwks["BETTER_AUTH_JWKS_FILE"] = path;
  r = run({"check"}, bad_jwks);
  ::unlink(path.c_str());
  CHECK(r.code == 2);
  CHECK(r.err.find("BETTER_AUTH_JWKS") == 0);

  auto no_jwks_server = env;
  no_jwks_server["BETTER_AUTH_JWKS_URL"] = "http://127.0.0.1:1/api/auth/jwks";
  r = run({"check"}, no_jwks_server);
  CHECK(r.code == 2);
  CHECK(r.err.rfind("BETTER_AUTH_JWKS_URL: ", 0) == 0);
}

TEST_CASE("token refuses a malformed --ttl with exit 2 instead of crashing") {
  auto r = run({"token", "--sub", "u1", "--ttl", "soon"}, {{"BETTER_AUTH_SECRET", "x"}});
  CHECK(r.code == 2);
  CHECK(r.err.find("--ttl") == 0);
  auto ok = run({"token", "--sub", "u1", "--ttl", "60"},
                {{"BETTER_AUTH_SECRET", todo::test::test_secret()}});
  CHECK(ok.code == 0);
  CHECK(std::count(ok.out.begin(), ok.out.end(), '.') == 2);
}
