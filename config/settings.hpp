#pragma once
// Start-up configuration (API.md §8): flags > process environment > .env file > defaults.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/ip_ranges.hpp"

namespace todo {

/// Returns the default worker thread count: the hardware concurrency, at least 1, at most 256.
int default_threads();

/// Every validated setting of the service. Each field's comment names its environment variable;
/// the flag is the same name in lower kebab case (`DB_POOL_SIZE` is `--db-pool-size`).
struct settings {
  int port = 8000;                                      // PORT, 1..65535
  std::string host = "0.0.0.0";                         // HOST
  std::string database_url;                             // DATABASE_URL, required
  std::string database_listen_url;                      // DATABASE_LISTEN_URL (empty: DATABASE_URL)
  std::string better_auth_secret;                       // BETTER_AUTH_SECRET, required
  std::string jwks_url;                                 // BETTER_AUTH_JWKS_URL, optional
  std::string jwks_file;                                // BETTER_AUTH_JWKS_FILE, optional
  std::optional<std::string> better_auth_issuer;        // BETTER_AUTH_ISSUER
  std::optional<std::string> better_auth_audience;      // BETTER_AUTH_AUDIENCE
  std::vector<std::string> jwt_algorithms{"HS256"};     // JWT_ALGORITHMS, comma list
  bool jwt_require_exp = true;                          // JWT_REQUIRE_EXP
  int64_t jwt_leeway_seconds = 60;                      // JWT_LEEWAY_SECONDS, 0..3600
  std::vector<std::string> cors_origins{"http://localhost:3000"}; // CORS_ORIGINS
  int db_pool_size = 2;                                 // DB_POOL_SIZE, 1..256
  int threads = default_threads();                      // THREADS, 1..256
  std::string log_level = "info";                       // LOG_LEVEL: debug|info|warn|error
  std::string log_format = "text";                      // LOG_FORMAT: text|json
  size_t max_body_bytes = 65536;                        // MAX_BODY_BYTES, 1..16777216
  int64_t read_timeout_ms = 10000;                      // READ_TIMEOUT_MS
  int64_t idle_timeout_ms = 60000;                      // IDLE_TIMEOUT_MS
  int64_t db_timeout_ms = 2000;                         // DB_TIMEOUT_MS
  int64_t db_connect_wait_ms = 30000;                   // DB_CONNECT_WAIT_MS, 0..86400000
  std::string db_prepared = "auto";                     // DB_PREPARED: auto|true|false
  int64_t shutdown_grace_ms = 10000;                    // SHUTDOWN_GRACE_MS
  int64_t drain_delay_ms = 0;                           // DRAIN_DELAY_MS, 0..600000
  std::vector<ip_range> trusted_proxies;                // TRUSTED_PROXIES, comma list of CIDRs
  size_t max_connections = 10000;                       // MAX_CONNECTIONS
  int64_t user_idle_ms = 300000;                        // USER_IDLE_MS, idle user actor lifetime
  size_t max_pending_per_user = 256;                    // MAX_PENDING_PER_USER
  size_t db_queue_limit = 4096;                         // DB_QUEUE_LIMIT
  size_t cache_tasks_per_user = 10000;                  // CACHE_TASKS_PER_USER, 0..1000000
  size_t cache_max_mb = 24;                             // CACHE_MAX_MB, all caches, 0: no bound
  int64_t idempotency_ttl_s = 86400;                    // IDEMPOTENCY_TTL_S, 1..31536000
  int64_t idempotency_purge_ms = 60000;                 // IDEMPOTENCY_PURGE_MS
  int64_t sse_heartbeat_ms = 15000;                     // SSE_HEARTBEAT_MS
  size_t sse_max_per_user = 10;                         // SSE_MAX_PER_USER, 1..1000
  size_t sse_max_streams = 10000;                       // SSE_MAX_STREAMS
  size_t sse_queue_kb = 256;                            // SSE_QUEUE_KB, 1..65536
  size_t sse_replay_events = 256;                       // SSE_REPLAY_EVENTS, 0..100000
  size_t group_commit_max = 64;                         // GROUP_COMMIT_MAX, 1..1024
  size_t token_cache_size = 10000;                      // TOKEN_CACHE_SIZE, 0..1000000
  bool trace_stages = false;                            // TRACE_STAGES
  std::string tls_cert_file;                            // TLS_CERT_FILE, PEM chain (HTTPS)
  std::string tls_key_file;                             // TLS_KEY_FILE, PEM private key
  bool metrics = true;                                  // METRICS, serve and count GET /metrics
  std::string docs_dir;                                 // DOCS_DIR, Swagger UI's files (empty: beside the binary)
};

/// One invalid or missing setting; the message never contains a secret value.
struct config_error {
  std::string setting; // an environment name such as "DB_POOL_SIZE", or a flag as given
  std::string message; // what is wrong, e.g. "must be an integer between 1 and 256"
  /// Returns the one line printed before exiting with code 2, "SETTING: message".
  std::string line() const;
};

/// The outcome of load_settings: a value, an error, or a request for help (neither).
struct load_result {
  std::optional<settings> value;
  std::optional<config_error> error;
  bool help = false;
};

/// Resolves and validates all settings from command-line `args` (without argv[0]), the process
/// environment `env` and the text of a `.env` file; flags win over env, env over `.env`.
load_result load_settings(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env,
                          const std::string& dotenv_text);

/// Parses `.env` text: KEY=VALUE lines, `#` comments, optional `export `, quoted values.
std::map<std::string, std::string> parse_dotenv(const std::string& text);

/// Returns the text of `.env` in the working directory, or an empty string when there is none.
std::string read_dotenv_file();

/// Returns the current process environment as a map.
std::map<std::string, std::string> environment_map();

/// Returns the --help text: one line per setting with its flag, env name and default.
std::string help_text();

} // namespace todo
