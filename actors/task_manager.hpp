#pragma once

#include <optional>
#include <string>
#include <unordered_map>

#include "actors/interfaces.hpp"

namespace todo {

struct task_manager_state {
  std::string user_id; // taken from the verified token, never from the request
  db_actor db;
  caf::timespan db_timeout;
  size_t cache_limit = 0; // users with more tasks than this are not cached (0: never cache)
  /// This user's tasks as committed in PostgreSQL, loaded on first use; empty when not
  /// loaded (or dropped after an invalidation or an unknown outcome).
  std::optional<std::unordered_map<int64_t, task>> cache;
  bool too_big = false;   // the user had more than cache_limit tasks at the last load
  static inline const char* name = "task-manager";
};

/// Serves one user's commands; mutations wait for the database before the next message.
/// Reads are answered from a write-through cache of the user's tasks.
task_manager_actor::behavior_type
task_manager(task_manager_actor::stateful_pointer<task_manager_state> self, std::string user_id,
             db_actor db, caf::timespan db_timeout, size_t cache_limit);

/// Answers a list query from a set of tasks, as the database would (filter, order, page).
task_result list_tasks(const std::unordered_map<int64_t, task>& tasks, const task_query& q);

} // namespace todo
