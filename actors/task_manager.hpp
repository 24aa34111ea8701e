#pragma once

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/interfaces.hpp"

namespace todo {

/// A cached task and its JSON, rendered once per change instead of once per read.
struct cached_task {
  task value;
  std::string json;
  std::string etag; // etag_of(json)
};

struct cache_budget;

/// What the registry, the couriers and one manager share: the requests handed on that the
/// manager has not answered yet (the registry, or a courier that knows the manager, counts
/// up; the manager counts down when it answers: it answers the requester directly, without a
/// hop back through the registry), when each last did so (for idle eviction and the cache
/// budget's least-recently-used choice), and what the manager's cache holds.
struct user_slot {
  /// `pending` with this bit set: the registry has retired the slot (its manager is stopping
  /// or gone); nobody may hand the manager anything any more.
  static constexpr size_t retired_bit = ~(~size_t{0} >> 1);
  enum class claim { ok, full, retired };

  /// Counts one request in, for a requester that holds the manager's handle (a courier):
  /// fails when `max_pending` requests are in flight or the registry retired the slot. After
  /// `ok` the manager stays alive until it has answered (the registry retires only idle slots).
  claim try_claim() {
    auto n = pending.load(std::memory_order_acquire);
    do {
      if (n & retired_bit)
        return claim::retired;
      if (n >= max_pending)
        return claim::full;
    } while (!pending.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel,
                                            std::memory_order_acquire));
    return claim::ok;
  }
  /// The registry only, just before it stops the manager: succeeds when nothing is in flight,
  /// and from then on every try_claim fails, so no request can reach a stopping manager.
  bool try_retire() {
    size_t idle = 0;
    return pending.compare_exchange_strong(idle, retired_bit, std::memory_order_acq_rel);
  }

  std::atomic<size_t> pending{0};
  size_t max_pending = 256;            // MAX_PENDING_PER_USER, set by the registry
  std::shared_ptr<const cache_budget> budget; // null: no bound (a courier checks it)
  std::atomic<int64_t> last_used{0};   // actor_clock ticks: the registry last handed on
  std::atomic<int64_t> last_answer{0}; // actor_clock ticks: the manager last answered
  std::atomic<int64_t> cache_bytes{0}; // the manager's estimate of what its cache holds
  std::atomic<bool> shed{false};       // chosen for eviction over the cache budget
  int64_t last_active() const {
    return std::max(last_used.load(std::memory_order_relaxed),
                    last_answer.load(std::memory_order_relaxed));
  }
};

/// The memory all managers' caches may hold together (CACHE_MAX_MB). Each manager adds and
/// subtracts its own estimate as its cache changes. The first registry shard to see the total
/// over picks the least recently used users of all shards and tells every shard to evict its
/// own (user_registry.cpp).
struct cache_budget {
  explicit cache_budget(size_t max) : max_bytes(static_cast<int64_t>(max)) {
  }
  const int64_t max_bytes; // 0: no bound
  std::atomic<int64_t> used{0};
  std::atomic<int64_t> next_shed{0}; // actor_clock ticks: no eviction pass before this
  bool over() const { return max_bytes > 0 && used.load(std::memory_order_relaxed) > max_bytes; }
  /// Every user's slot (the registry adds them; dead ones are swept out), guarded by `m`.
  std::mutex m;
  std::vector<std::weak_ptr<user_slot>> slots;
  size_t swept_size = 0; // slots.size() after the last sweep
  /// The registry shards (weak: they hold this budget), set before the first request.
  std::vector<caf::actor_addr> shards;
};
using cache_budget_ptr = std::shared_ptr<cache_budget>;

/// This user's tasks by id.
using task_cache = std::unordered_map<int64_t, cached_task>;

/// Returns a cache entry for `t`.
cached_task make_cached(task t);

/// Returns an estimate of the heap one cache entry holds (node, strings, allocator overhead).
size_t heap_bytes(const cached_task& c);

struct task_manager_state {
  std::string user_id; // taken from the verified token, never from the request
  db_actor db;
  caf::timespan db_timeout;
  size_t cache_limit = 0; // users with more tasks than this are not cached (0: never cache)
  /// This user's tasks as committed in PostgreSQL, loaded on first use; empty when not
  /// loaded (or dropped after an invalidation or an unknown outcome).
  std::optional<task_cache> cache;
  bool too_big = false;   // the user had more than cache_limit tasks at the last load
  pending_counter pending; // may be null (a manager spawned without a registry)
  cache_budget_ptr budget; // may be null (no global bound)
  /// True while a database call this user's later requests must wait for is in flight (a
  /// write, a conditional write's check, the cache load); they wait in `queue`, in order.
  bool busy = false;
  /// Calls of plain writes (no If-Match) sent to the database and not answered yet. Later
  /// plain writes do not wait for them: they go at once, and the DB pool keeps a user's
  /// writes in order (never one of them in a commit before an earlier one has answered).
  /// Everything else (reads, conditional writes, the cache load) waits until none is left.
  size_t writes_in_flight = 0;
  uint64_t invalidations = 0; // invalidate messages so far (a load in flight checks it)
  /// Tasks this manager deleted whose delete the change feed has not brought back yet: a
  /// late "created" of one of them is not applied (at most the last 64).
  std::deque<int64_t> deleted_here;
  /// Idempotency-Keys of this user's writes that are queued or running, with their request
  /// fingerprints: the same key again meanwhile is 409 (same request) or 422 (another one).
  std::unordered_map<std::string, std::string> keys_in_flight;
  std::deque<std::pair<task_cmd, caf::typed_response_promise<task_result>>> queue;
  size_t cache_bytes = 0;   // heap_bytes() summed over `cache`
  int64_t published = 0;    // what `pending` and `budget` were last told `cache_bytes` is
  int64_t published_tasks = 0; // what the cached_tasks metric was last told the cache holds
  task_manager_state() = default;
  task_manager_state(const task_manager_state&) = delete;
  task_manager_state& operator=(const task_manager_state&) = delete;
  ~task_manager_state(); // gives the cache's bytes back to the budget
  static inline const char* name = "task-manager";
};

/// Serves one user's commands in arrival order: a plain write goes to the database at once,
/// also while earlier ones are in flight (the DB pool commits them in order); a read, a
/// conditional write or the cache load waits until every earlier write has answered, and a
/// cache load or conditional write holds the user's later requests until it has answered
/// (writes that queued up meanwhile then go together, in order, in one transaction). Reads are
/// answered from a write-through cache of the user's tasks.
task_manager_actor::behavior_type
task_manager(task_manager_actor::stateful_pointer<task_manager_state> self, std::string user_id,
             db_actor db, caf::timespan db_timeout, size_t cache_limit,
             pending_counter pending, cache_budget_ptr budget = nullptr);

/// Answers a list query from the cache, as the database would (filter, order, page): the
/// page as one JSON array in `json` (no rows) and the count before paging in `total`.
task_result list_tasks(const task_cache& tasks, const task_query& q);

} // namespace todo
