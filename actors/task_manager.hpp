#pragma once

#include <string>

#include "actors/interfaces.hpp"

namespace todo {

struct task_manager_state {
  std::string user_id; // taken from the verified token, never from the request
  db_actor db;
  caf::timespan db_timeout;
  static inline const char* name = "task-manager";
};

/// Serves one user's commands; mutations wait for the database before the next message.
task_manager_actor::behavior_type
task_manager(task_manager_actor::stateful_pointer<task_manager_state> self, std::string user_id,
             db_actor db, caf::timespan db_timeout);

} // namespace todo
