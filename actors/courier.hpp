#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "actors/interfaces.hpp"
#include "actors/tokens/token_cache.hpp"
#include "actors/user_registry.hpp"

namespace todo {

/// A courier's own cache of verified tokens: a hit skips the round trip to the auth actor.
struct courier_tokens {
  /// The auth actor's key-set generation (auth_config::generation); null: no cache, every
  /// token goes to the auth actor. A cache holds only verdicts of the current generation.
  std::shared_ptr<std::atomic<uint64_t>> generation;
  size_t capacity = 4096;
  int64_t max_ttl_seconds = 300;
  std::function<int64_t()> now; // Unix seconds; empty means the system clock
};

/// A user's manager as a courier knows it (from the registry): a request of that user goes
/// straight to the manager, counted in on the slot (user_slot::try_claim), instead of through
/// the registry; a retired slot sends the courier back to the registry.
struct courier_route {
  task_manager_actor manager;
  pending_counter slot;
};

struct courier_state {
  courier_tokens cfg;
  std::optional<token_cache> tokens;
  uint64_t generation = 0; // of the verdicts in `tokens`
  std::unordered_map<std::string, courier_route> routes;
  static constexpr size_t max_routes = 4096; // then forgotten all at once and learnt again
  static inline const char* name = "courier";
};

/// The courier's behavior: `auth` checks tokens (unless the courier's own cache knows the
/// token), `registries` (sharded by user) run commands.
courier_actor::behavior_type courier(courier_actor::stateful_pointer<courier_state> self,
                                     auth_actor auth,
                                     std::shared_ptr<const registry_shards> registries,
                                     courier_tokens tokens = {});

} // namespace todo
