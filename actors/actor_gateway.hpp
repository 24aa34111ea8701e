#pragma once

#include <memory>

#include "actors/courier.hpp"
#include "actors/gateway.hpp"
#include "actors/interfaces.hpp"
#include "actors/user_registry.hpp"

namespace todo {

/// Returns a gateway that hands requests round-robin to `couriers` long-lived courier actors.
/// `timeout` bounds a request's wait for the database (its deadline); `tokens` configures each
/// courier's own cache of verified tokens.
std::unique_ptr<gateway> make_actor_gateway(caf::actor_system& sys, auth_actor auth,
                                            registry_shards registries, db_actor db,
                                            caf::timespan timeout, size_t couriers,
                                            courier_tokens tokens = {});

} // namespace todo
