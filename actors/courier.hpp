#pragma once

#include <memory>

#include "actors/interfaces.hpp"
#include "actors/user_registry.hpp"

namespace todo {

/// The courier's behavior: `auth` checks tokens, `registries` (sharded by user) run commands.
courier_actor::behavior_type courier(courier_actor::pointer self, auth_actor auth,
                                     std::shared_ptr<const registry_shards> registries);

} // namespace todo
