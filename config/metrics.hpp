#pragma once
// The process-wide numbers behind GET /metrics that the actors and the database pool keep:
// plain relaxed atomics (one add per event, no lock); http/metrics.cpp renders them, with the
// HTTP layer's own counters, in Prometheus' text format. Gauges are kept as running sums of
// the changes each owner makes (a TaskManager adds its cache's change, and its negation when
// it stops), so no one has to walk the actors to read them.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace todo::metrics {

using counter = std::atomic<uint64_t>;
using gauge = std::atomic<int64_t>;

/// A histogram over fixed upper bounds (Prometheus `le`), cumulative when rendered.
template <std::size_t N>
struct histogram {
  std::array<double, N> bounds;
  std::array<counter, N + 1> buckets{}; // the last one: above every bound (+Inf)
  std::atomic<uint64_t> sum_micro{0};   // the sum of observations, in millionths
  void observe(double v) {
    size_t i = 0;
    while (i < N && v > bounds[i])
      ++i;
    buckets[i].fetch_add(1, std::memory_order_relaxed);
    sum_micro.fetch_add(static_cast<uint64_t>(v * 1e6), std::memory_order_relaxed);
  }
};

struct actor_metrics {
  gauge managers{0};          // TaskManager actors alive (one per active user)
  gauge cached_tasks{0};      // tasks held by all TaskManagers' caches
  gauge cache_bytes{0};       // their estimated heap (what CACHE_MAX_MB bounds)
  gauge user_queue{0};        // requests accepted by a user's TaskManager, not yet answered
  gauge db_queue{0};          // jobs waiting for a DB worker
  gauge db_busy{0};           // DB workers running a job
  gauge db_workers{0};        // DB workers in all
  counter db_errors_unavailable{0}; // database calls that failed: no connection, timeout
  counter db_errors_other{0};       // ... any other database error (a 500)
  histogram<9> batch_size{{1, 2, 4, 8, 16, 32, 64, 256, 1024}, {}, {0}}; // statements per commit
  counter cache_loads{0};            // a user's tasks loaded into its TaskManager's cache
  counter cache_changes_applied{0};  // committed changes from the feed that updated a cache
  counter cache_changes_skipped{0};  // ... that the cache already had (or a newer copy)
  counter cache_changes_dropped{0};  // caches dropped instead (feed reconnect, row too big)
  counter token_courier_hits{0};    // token verdicts found in a courier's cache
  counter token_courier_misses{0};  // ... not found there (asked the auth actor)
  counter token_auth_hits{0};       // found in the auth actor's cache
  counter token_auth_misses{0};     // ... not found there (signature checked)
  counter jwks_fetch_ok{0};
  counter jwks_fetch_error{0};
};

/// The one instance of this process.
actor_metrics& actors();

} // namespace todo::metrics
