#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "actors/interfaces.hpp"

namespace todo {

/// A cached task and its JSON, rendered once per change instead of once per read.
struct cached_task {
  task value;
  std::string json;
};

/// What the registry and one manager share: the requests the registry handed on that the
/// manager has not answered yet (the registry counts up, the manager counts down when it
/// answers: it answers the requester directly, without a hop back through the registry), and
/// when it last answered (the manager's clock, for idle eviction).
struct user_slot {
  std::atomic<size_t> pending{0};
  std::atomic<int64_t> last_answer{0}; // actor_clock ticks since its epoch
};
using pending_counter = std::shared_ptr<user_slot>;

/// This user's tasks by id.
using task_cache = std::unordered_map<int64_t, cached_task>;

/// Returns a cache entry for `t`.
cached_task make_cached(task t);

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
  static inline const char* name = "task-manager";
};

/// Serves one user's commands; mutations wait for the database before the next message.
/// Reads are answered from a write-through cache of the user's tasks.
task_manager_actor::behavior_type
task_manager(task_manager_actor::stateful_pointer<task_manager_state> self, std::string user_id,
             db_actor db, caf::timespan db_timeout, size_t cache_limit,
             pending_counter pending);

/// Answers a list query from the cache, as the database would (filter, order, page): the
/// page as one JSON array in `json` (no rows) and the count before paging in `total`.
task_result list_tasks(const task_cache& tasks, const task_query& q);

} // namespace todo
