#pragma once

#include <memory>

#include "actors/gateway.hpp"
#include "actors/interfaces.hpp"

namespace todo {

/// Returns a gateway that spawns one short-lived courier actor per request.
std::unique_ptr<gateway> make_actor_gateway(caf::actor_system& sys, auth_actor auth,
                                            user_registry_actor registry, db_actor db,
                                            caf::timespan timeout);

} // namespace todo
