#pragma once

#include <string>
#include <unordered_map>

#include "actors/interfaces.hpp"

namespace todo {

struct registry_limits {
  caf::timespan db_timeout = std::chrono::seconds(2);
  caf::timespan user_idle = std::chrono::minutes(5); // evict a manager idle this long
  size_t max_pending_per_user = 256;                  // beyond: errc::overloaded
  size_t cache_limit = 10000;                         // tasks a manager caches per user
};

struct user_registry_state {
  struct entry {
    task_manager_actor manager;
    size_t pending = 0;
    caf::actor_clock::time_point last_used;
  };
  std::unordered_map<std::string, entry> users;
  db_actor db;
  registry_limits limits;
  bool ticking = false; // an eviction tick is scheduled
  static inline const char* name = "user-registry";
};

/// Routes each user's commands to that user's task manager, spawning it on first use.
user_registry_actor::behavior_type
user_registry(user_registry_actor::stateful_pointer<user_registry_state> self, db_actor db,
              registry_limits limits);

} // namespace todo
