#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "actors/tokens/jwks.hpp"
#include "actors/tokens/jwt.hpp"
#include "actors/tokens/token_cache.hpp"

namespace todo {

/// The answer of a JWKS fetch: the body, or (when `error` is non-empty) why there is none.
struct jwks_fetch_result {
  std::string body;
  std::string error; // logged, never sent to a client; must name no key or library
};

/// Fetches a URL and blocks until done; it runs on a detached helper actor's own thread.
using jwks_fetcher = std::function<jwks_fetch_result(const std::string& url)>;

/// Everything the auth actor needs; main.cpp fills it from the settings.
struct auth_config {
  jwt::options opts;
  std::string jwks_url;  // BETTER_AUTH_JWKS_URL: fetched at start and on an unknown kid
  std::string jwks_file; // BETTER_AUTH_JWKS_FILE: read once at start
  jwks_fetcher fetch;    // required with jwks_url; main.cpp passes http::fetch_url
  caf::timespan refetch_interval = std::chrono::seconds(30); // at most one fetch per interval
  size_t cache_size = 10000;       // verified tokens kept; 0 disables the cache
  int64_t cache_ttl_seconds = 300; // longest time a verified token is trusted without a check
  size_t max_waiting = 1024;       // tokens held while a fetch is in flight; beyond: 401
  bool detach_fetch = true;        // false only in deterministic tests
  std::function<int64_t()> now;    // Unix seconds; empty means the system clock
  /// Counts key-set changes, for caches of verdicts outside this actor (the couriers'): they
  /// drop what they hold when it moves. May be null.
  std::shared_ptr<std::atomic<uint64_t>> generation;
};

struct auth_state {
  /// A verify request held until the JWKS fetch in flight has answered.
  struct waiter {
    std::string token;
    std::optional<caf::typed_response_promise<std::string>> rp;                         // verify
    std::optional<caf::typed_response_promise<std::string, int64_t, uint64_t>> claims_rp; // claims
  };

  auth_config cfg;
  std::shared_ptr<const jwks::key_set> keys; // null until a JWKS has been loaded
  std::shared_ptr<const jwt::verifier> verifier;
  std::optional<token_cache> cache;
  std::string jwks_digest; // SHA-256 of the installed JWKS document
  uint64_t generation = 0; // key sets installed so far
  bool fetching = false;
  uint64_t fetch_seq = 0; // number of the newest fetch
  std::optional<caf::actor_clock::time_point> last_fetch;
  std::vector<waiter> waiting;
  static inline const char* name = "auth";
};

/// Verifies bearer tokens with the HS256 secret and the JWKS; answers the token's subject.
/// An asymmetric token with an unknown kid triggers a JWKS fetch (at most one per
/// refetch_interval) on a helper actor, and waits for it.
auth_actor::behavior_type auth(auth_actor::stateful_pointer<auth_state> self, auth_config cfg);

} // namespace todo
