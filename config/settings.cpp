#include "config/settings.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <sstream>
#include <string_view>
#include <thread>

#include <unistd.h> // environ (glibc declares it under _GNU_SOURCE, which g++ defines)

#include "config/text.hpp"

namespace todo {

namespace {

constexpr int64_t max_timeout_ms = 86'400'000;
constexpr int64_t max_count = 1'000'000;

/// Validates one raw value and stores it; returns what is wrong, never echoing the value.
using apply_fn = std::function<std::optional<std::string>(settings&, std::string_view)>;

struct spec {
  const char* env;
  const char* placeholder; // shown after the flag in --help
  std::string default_text;
  const char* description;
  bool required;
  apply_fn apply;
};

using text::lower;
using text::trim;

/// Returns `--db-pool-size` for `DB_POOL_SIZE`.
std::string flag_of(std::string_view env) {
  std::string out = "--" + lower(env);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

std::optional<int64_t> parse_integer(std::string_view v) {
  v = trim(v);
  if (!v.empty() && v.front() == '+')
    v.remove_prefix(1);
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc{} || end != v.data() + v.size())
    return std::nullopt;
  return n;
}

/// Splits a comma list, trimming items and dropping empty ones.
std::vector<std::string> split_list(std::string_view v) {
  std::vector<std::string> out;
  while (true) {
    auto comma = v.find(',');
    auto item = trim(v.substr(0, comma));
    if (!item.empty())
      out.emplace_back(item);
    if (comma == std::string_view::npos)
      break;
    v.remove_prefix(comma + 1);
  }
  return out;
}

template <class T>
apply_fn integer(T settings::*field, int64_t lo, int64_t hi) {
  return [=](settings& s, std::string_view v) -> std::optional<std::string> {
    auto n = parse_integer(v);
    if (!n || *n < lo || *n > hi)
      return "must be an integer between " + std::to_string(lo) + " and " + std::to_string(hi);
    s.*field = static_cast<T>(*n);
    return std::nullopt;
  };
}

apply_fn timeout(int64_t settings::*field) {
  return integer(field, 1, max_timeout_ms);
}

apply_fn count(size_t settings::*field) {
  return integer(field, 1, max_count);
}

/// Stores a non-empty value; trimmed unless `exact` (a secret is taken byte for byte).
apply_fn required_text(std::string settings::*field, bool exact = false) {
  return [=](settings& s, std::string_view v) -> std::optional<std::string> {
    if (trim(v).empty())
      return "required";
    s.*field = std::string(exact ? v : trim(v));
    return std::nullopt;
  };
}

apply_fn plain_text(std::string settings::*field) {
  return [=](settings& s, std::string_view v) -> std::optional<std::string> {
    s.*field = std::string(trim(v));
    return std::nullopt;
  };
}

/// Stores a trimmed value, or nothing when it is empty (so an empty value means "unset").
apply_fn optional_text(std::optional<std::string> settings::*field) {
  return [=](settings& s, std::string_view v) -> std::optional<std::string> {
    auto t = trim(v);
    if (t.empty())
      s.*field = std::nullopt;
    else
      s.*field = std::string(t);
    return std::nullopt;
  };
}

apply_fn choice(std::string settings::*field, std::vector<std::string> allowed) {
  return [=](settings& s, std::string_view v) -> std::optional<std::string> {
    auto x = lower(trim(v));
    if (std::find(allowed.begin(), allowed.end(), x) == allowed.end()) {
      std::string msg = "must be one of ";
      for (size_t i = 0; i < allowed.size(); ++i)
        msg += (i == 0 ? "" : "|") + allowed[i];
      return msg;
    }
    s.*field = x;
    return std::nullopt;
  };
}

apply_fn boolean(bool settings::*field) {
  return [=](settings& s, std::string_view v) -> std::optional<std::string> {
    auto x = lower(trim(v));
    if (x == "true" || x == "1" || x == "yes")
      s.*field = true;
    else if (x == "false" || x == "0" || x == "no")
      s.*field = false;
    else
      return std::string{"must be true or false (also 1/0, yes/no)"};
    return std::nullopt;
  };
}

/// `auto`, or a boolean (same spellings as boolean()) stored as "true" or "false".
apply_fn auto_or_boolean(std::string settings::*field) {
  return [=](settings& s, std::string_view v) -> std::optional<std::string> {
    auto x = lower(trim(v));
    if (x == "auto")
      s.*field = "auto";
    else if (x == "true" || x == "1" || x == "yes")
      s.*field = "true";
    else if (x == "false" || x == "0" || x == "no")
      s.*field = "false";
    else
      return std::string{"must be auto, true or false (also 1/0, yes/no)"};
    return std::nullopt;
  };
}

apply_fn algorithm_list() {
  return [](settings& s, std::string_view v) -> std::optional<std::string> {
    static const std::vector<std::string> known{"HS256", "EdDSA", "ES256", "RS256", "PS256"};
    const std::string msg = "must be a comma list of HS256, EdDSA, ES256, RS256, PS256";
    std::vector<std::string> out;
    for (auto& alg : split_list(v)) {
      if (std::find(known.begin(), known.end(), alg) == known.end())
        return msg;
      if (std::find(out.begin(), out.end(), alg) == out.end())
        out.push_back(alg);
    }
    if (out.empty())
      return msg;
    s.jwt_algorithms = std::move(out);
    return std::nullopt;
  };
}

apply_fn proxy_list() {
  return [](settings& s, std::string_view v) -> std::optional<std::string> {
    std::vector<ip_range> out;
    for (auto& item : split_list(v)) {
      auto r = parse_ip_range(item);
      if (!r)
        return "not an IP address or CIDR block: " + item;
      out.push_back(*r);
    }
    s.trusted_proxies = std::move(out);
    return std::nullopt;
  };
}

apply_fn origin_list() {
  return [](settings& s, std::string_view v) -> std::optional<std::string> {
    s.cors_origins = split_list(v);
    return std::nullopt;
  };
}

const std::vector<spec>& specs() {
  using s = settings;
  static const std::vector<spec> table{
    {"PORT", "<1..65535>", "8000", "TCP port to listen on", false, integer(&s::port, 1, 65535)},
    {"HOST", "<address>", "0.0.0.0", "address to bind", false, required_text(&s::host)},
    {"DATABASE_URL", "<url>", "(required)", "libpq URL or key=value conninfo", true,
     required_text(&s::database_url)},
    {"DATABASE_LISTEN_URL", "<url>", "(DATABASE_URL)",
     "direct (not pooled) connection for LISTEN: change feed and cache coherence", false,
     plain_text(&s::database_listen_url)},
    {"BETTER_AUTH_SECRET", "<secret>", "(required without JWKS)",
     "HS256 secret shared with Better Auth", false, required_text(&s::better_auth_secret, true)},
    {"BETTER_AUTH_JWKS_URL", "<url>", "(none)", "JWKS URL for asymmetric tokens", false,
     plain_text(&s::jwks_url)},
    {"BETTER_AUTH_JWKS_FILE", "<path>", "(none)", "JWKS file for asymmetric tokens", false,
     plain_text(&s::jwks_file)},
    {"BETTER_AUTH_ISSUER", "<iss>", "(not checked)", "required token iss", false,
     optional_text(&s::better_auth_issuer)},
    {"BETTER_AUTH_AUDIENCE", "<aud>", "(not checked)", "required token aud", false,
     optional_text(&s::better_auth_audience)},
    {"JWT_ALGORITHMS", "<list>", "HS256", "allowed algs: HS256,EdDSA,ES256,RS256,PS256", false,
     algorithm_list()},
    {"JWT_REQUIRE_EXP", "<bool>", "true", "refuse tokens without exp", false,
     boolean(&s::jwt_require_exp)},
    {"JWT_LEEWAY_SECONDS", "<0..3600>", "60", "clock leeway for exp/nbf/iat", false,
     integer(&s::jwt_leeway_seconds, 0, 3600)},
    {"CORS_ORIGINS", "<list>", "http://localhost:3000", "comma list of allowed origins", false,
     origin_list()},
    {"DB_POOL_SIZE", "<1..256>", "2", "database connections", false,
     integer(&s::db_pool_size, 1, 256)},
    {"THREADS", "<1..256>", std::to_string(default_threads()), "I/O and actor threads", false,
     integer(&s::threads, 1, 256)},
    {"LOG_LEVEL", "<level>", "info", "debug|info|warn|error", false,
     choice(&s::log_level, {"debug", "info", "warn", "error"})},
    {"LOG_FORMAT", "<format>", "text", "text|json", false,
     choice(&s::log_format, {"text", "json"})},
    {"MAX_BODY_BYTES", "<1..16777216>", "65536", "largest request body", false,
     integer(&s::max_body_bytes, 1, 16'777'216)},
    {"READ_TIMEOUT_MS", "<ms>", "10000", "time to read one request", false,
     timeout(&s::read_timeout_ms)},
    {"IDLE_TIMEOUT_MS", "<ms>", "60000", "keep-alive idle time", false,
     timeout(&s::idle_timeout_ms)},
    {"DB_TIMEOUT_MS", "<ms>", "2000", "time allowed for one database call", false,
     timeout(&s::db_timeout_ms)},
    {"DB_CONNECT_WAIT_MS", "<ms>", "30000",
     "how long start-up waits for a database that is not up yet (0: no wait)", false,
     integer(&s::db_connect_wait_ms, 0, max_timeout_ms)},
    {"DB_PREPARED", "<auto|bool>", "auto",
     "named prepared statements and session SETs; false behind a pooler in transaction mode "
     "(auto: false for a host with -pooler. or port 6432)",
     false, auto_or_boolean(&s::db_prepared)},
    {"SHUTDOWN_GRACE_MS", "<ms>", "10000", "drain time on SIGTERM/SIGINT", false,
     timeout(&s::shutdown_grace_ms)},
    {"DRAIN_DELAY_MS", "<0..600000>", "0",
     "on SIGTERM, how long /ready answers 503 (still serving, closing each connection after "
     "its response) before the drain, so a load balancer can take the instance out",
     false, integer(&s::drain_delay_ms, 0, 600'000)},
    {"TRUSTED_PROXIES", "<list>", "(none)",
     "comma list of proxy addresses or CIDR blocks whose X-Forwarded-For names the client in "
     "the access log",
     false, proxy_list()},
    {"MAX_CONNECTIONS", "<n>", "10000", "open connections at most", false,
     count(&s::max_connections)},
    {"USER_IDLE_MS", "<ms>", "300000", "lifetime of an idle user's actor", false,
     timeout(&s::user_idle_ms)},
    {"MAX_PENDING_PER_USER", "<n>", "256", "in-flight requests per user", false,
     count(&s::max_pending_per_user)},
    {"DB_QUEUE_LIMIT", "<n>", "4096", "queued database calls at most", false,
     count(&s::db_queue_limit)},
    {"CACHE_TASKS_PER_USER", "<0..1000000>", "10000",
     "tasks a user's actor caches (0: no cache)", false,
     integer(&s::cache_tasks_per_user, 0, 1'000'000)},
    {"CACHE_MAX_MB", "<0..1048576>", "24",
     "memory all users' caches may hold together; least recently used users are evicted "
     "beyond (0: no bound)",
     false, integer(&s::cache_max_mb, 0, 1'048'576)},
    {"IDEMPOTENCY_TTL_S", "<1..31536000>", "86400",
     "how long an Idempotency-Key's answer is replayed", false,
     integer(&s::idempotency_ttl_s, 1, 31'536'000)},
    {"IDEMPOTENCY_PURGE_MS", "<ms>", "60000",
     "how often expired Idempotency-Keys are deleted (in batches of 500)", false,
     timeout(&s::idempotency_purge_ms)},
    {"SSE_HEARTBEAT_MS", "<ms>", "15000",
     "comment line sent on idle live-update streams (keeps proxies from closing them)", false,
     timeout(&s::sse_heartbeat_ms)},
    {"SSE_MAX_PER_USER", "<1..1000>", "10", "open live-update streams per user", false,
     integer(&s::sse_max_per_user, 1, 1000)},
    {"SSE_MAX_STREAMS", "<n>", "10000", "open live-update streams in total", false,
     count(&s::sse_max_streams)},
    {"SSE_QUEUE_KB", "<1..65536>", "256",
     "unsent bytes a live-update stream may hold; a slower reader is disconnected", false,
     integer(&s::sse_queue_kb, 1, 65536)},
    {"SSE_REPLAY_EVENTS", "<0..100000>", "256",
     "events kept per followed user for resuming with Last-Event-ID", false,
     integer(&s::sse_replay_events, 0, 100000)},
    {"GROUP_COMMIT_MAX", "<1..1024>", "64", "mutations per group commit (1: none)", false,
     integer(&s::group_commit_max, 1, 1024)},
    {"TOKEN_CACHE_SIZE", "<0..1000000>", "10000", "verified tokens cached (0: no cache)", false,
     integer(&s::token_cache_size, 0, 1'000'000)},
    {"TRACE_STAGES", "<bool>", "false",
     "time each write's stages (courier, token, TaskManager, DB queue, commit) and print "
     "their percentiles at shutdown",
     false, boolean(&s::trace_stages)},
    {"TLS_CERT_FILE", "<path>", "(none: plain HTTP)",
     "PEM certificate chain; with TLS_KEY_FILE the server speaks HTTPS (TLS 1.2/1.3)", false,
     plain_text(&s::tls_cert_file)},
    {"TLS_KEY_FILE", "<path>", "(none)", "PEM private key of TLS_CERT_FILE", false,
     plain_text(&s::tls_key_file)},
    {"METRICS", "<bool>", "true", "serve GET /metrics (Prometheus) and keep its counters", false,
     boolean(&s::metrics)},
    {"DOCS_DIR", "<dir>", "(beside the binary)",
     "Swagger UI's files for /docs (swagger-ui-dist; the build installs them)", false,
     plain_text(&s::docs_dir)},
  };
  return table;
}

const spec* find_by_flag(std::string_view flag) {
  for (const auto& sp : specs())
    if (flag_of(sp.env) == flag)
      return &sp;
  return nullptr;
}

/// Returns true for a plausible flag name, which is safe to echo; anything else might be a
/// secret that was pasted in the wrong place.
bool looks_like_flag(std::string_view name) {
  auto body = name.substr(0, 2) == "--" ? name.substr(2) : name.substr(1);
  if (body.empty() || body.size() > 40 || body.front() == '-')
    return false;
  return std::all_of(body.begin(), body.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

load_result fail(std::string setting, std::string message) {
  load_result res;
  res.error = config_error{std::move(setting), std::move(message)};
  return res;
}

} // namespace

int default_threads() {
  auto n = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(n, 1, 256);
}

std::string config_error::line() const {
  return setting + ": " + message;
}

load_result load_settings(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env,
                          const std::string& dotenv_text) {
  for (const auto& arg : args) {
    if (arg == "--help" || arg == "-h") {
      load_result res;
      res.help = true;
      return res;
    }
  }

  // Flags, keyed by environment name; a repeated flag keeps its last value.
  std::map<std::string, std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.empty() || arg[0] != '-')
      // Not echoed: a stray argument may well be a secret that lost its flag.
      return fail("arguments", "unexpected argument at position " + std::to_string(i + 1));
    auto eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    const spec* sp = find_by_flag(name);
    if (sp == nullptr && looks_like_flag(name))
      return fail(name, "unknown flag (see --help)");
    if (sp == nullptr)
      return fail("arguments", "unknown flag at position " + std::to_string(i + 1));
    if (eq != std::string::npos) {
      flags[sp->env] = arg.substr(eq + 1);
    } else if (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) {
      flags[sp->env] = args[++i];
    } else {
      return fail(name, "requires a value");
    }
  }

  auto dotenv = parse_dotenv(dotenv_text);
  settings out;
  bool algorithms_given = false;
  for (const auto& sp : specs()) {
    const std::string* raw = nullptr;
    using source_map = const std::map<std::string, std::string>*;
    for (source_map source : {source_map{&flags}, source_map{&env}, source_map{&dotenv}}) {
      auto it = source->find(sp.env);
      if (it != source->end()) {
        raw = &it->second;
        break;
      }
    }
    if (raw == nullptr) {
      if (sp.required)
        return fail(sp.env, "required");
      continue;
    }
    if (sp.env == std::string_view{"JWT_ALGORITHMS"})
      algorithms_given = true;
    if (auto problem = sp.apply(out, *raw))
      return fail(sp.env, std::move(*problem));
  }
  bool jwks = !out.jwks_url.empty() || !out.jwks_file.empty();
  if (out.better_auth_secret.empty() && !jwks)
    return fail("BETTER_AUTH_SECRET", "required (or set BETTER_AUTH_JWKS_URL or _FILE)");
  if (!out.jwks_url.empty() && !out.jwks_file.empty())
    return fail("BETTER_AUTH_JWKS_FILE", "set either BETTER_AUTH_JWKS_URL or _FILE, not both");
  if (!algorithms_given) {
    // Default: what the configured keys can verify.
    out.jwt_algorithms.clear();
    if (!out.better_auth_secret.empty())
      out.jwt_algorithms.push_back("HS256");
    if (jwks)
      for (const char* alg : {"EdDSA", "ES256", "RS256", "PS256"})
        out.jwt_algorithms.push_back(alg);
  }
  load_result res;
  res.value = std::move(out);
  return res;
}

std::map<std::string, std::string> parse_dotenv(const std::string& text) {
  std::map<std::string, std::string> out;
  std::string_view rest = text;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    line = trim(line); // also drops a CRLF file's '\r'
    if (line.empty() || line.front() == '#')
      continue;
    if (line.size() > 7 && line.substr(0, 6) == "export"
        && std::isspace(static_cast<unsigned char>(line[6])))
      line = trim(line.substr(7));
    auto eq = line.find('=');
    if (eq == std::string_view::npos)
      continue;
    auto key = trim(line.substr(0, eq));
    if (key.empty())
      continue;
    std::string_view raw = line.substr(eq + 1);
    auto value = trim(raw);
    std::string result;
    bool quoted = false;
    if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
      char q = value.front();
      std::string inner;
      size_t i = 1;
      for (; i < value.size() && value[i] != q; ++i) {
        if (q == '"' && value[i] == '\\' && i + 1 < value.size()) {
          char next = value[i + 1];
          if (next == 'n' || next == '"' || next == '\\') {
            inner += next == 'n' ? '\n' : next;
            ++i;
            continue;
          }
        }
        inner += value[i];
      }
      if (i < value.size()) { // found the closing quote; anything after it is ignored
        result = std::move(inner);
        quoted = true;
      }
    }
    if (!quoted) {
      // An unquoted value ends at a '#' that follows whitespace: `KEY=a #note` is "a".
      for (size_t i = 1; i < raw.size(); ++i) {
        if (raw[i] == '#' && std::isspace(static_cast<unsigned char>(raw[i - 1]))) {
          raw = raw.substr(0, i);
          break;
        }
      }
      result = std::string(trim(raw));
    }
    out[std::string(key)] = std::move(result);
  }
  return out;
}

std::string read_dotenv_file() {
  std::ifstream in{".env"};
  if (!in)
    return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, std::string> environment_map() {
  std::map<std::string, std::string> out;
  for (char** p = environ; p != nullptr && *p != nullptr; ++p) {
    std::string_view entry{*p};
    auto eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0)
      continue;
    out.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return out;
}

std::string help_text() {
  std::string out =
    "Usage: todo-api [--flag value | --flag=value]...\n"
    "Each setting comes from its flag, else the environment, else ./.env, else its default.\n"
    "  -h, --help                            print this help and exit\n";
  for (const auto& sp : specs()) {
    std::string flag = flag_of(sp.env) + " " + sp.placeholder;
    std::string line = "  " + flag;
    line.resize(std::max<size_t>(line.size() + 1, 40), ' ');
    line += sp.env;
    line.resize(std::max<size_t>(line.size() + 1, 62), ' ');
    line += std::string{sp.description} + " (default: " + sp.default_text + ")\n";
    out += line;
  }
  return out;
}

} // namespace todo
