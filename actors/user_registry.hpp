#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "actors/interfaces.hpp"
#include "actors/task_manager.hpp"

namespace todo {

struct registry_limits {
  caf::timespan db_timeout = std::chrono::seconds(2);
  caf::timespan user_idle = std::chrono::minutes(5); // evict a manager idle this long
  size_t max_pending_per_user = 256;                  // beyond: errc::overloaded
  size_t cache_limit = 10000;                         // tasks a manager caches per user
  cache_budget_ptr budget; // all caches together (shared by the shards); null: no bound
  caf::timespan shed_pause = std::chrono::milliseconds(50); // between evictions for it
};

struct user_registry_state {
  struct entry {
    task_manager_actor manager;
    pending_counter pending; // counted up here, down by the manager when it answers
  };
  std::unordered_map<std::string, entry> users;
  db_actor db;
  registry_limits limits;
  bool ticking = false; // an eviction tick is scheduled
  static inline const char* name = "user-registry";
};

/// The registry split by user into shards that work in parallel (one registry is one
/// actor: a single one would serialize every request of the process).
using registry_shards = std::vector<user_registry_actor>;

/// Returns the shard that owns `user` (always the same one for the same user).
inline size_t shard_index(const registry_shards& shards, const std::string& user) {
  return std::hash<std::string>{}(user) % shards.size();
}

inline const user_registry_actor& shard_for(const registry_shards& shards,
                                            const std::string& user) {
  return shards[shard_index(shards, user)];
}

/// Routes each user's commands to that user's task manager, spawning it on first use.
user_registry_actor::behavior_type
user_registry(user_registry_actor::stateful_pointer<user_registry_state> self, db_actor db,
              registry_limits limits);

} // namespace todo
