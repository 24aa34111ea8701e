#pragma once

#include <memory>

#include "actors/interfaces.hpp"
#include "actors/jwt.hpp"

namespace todo {

struct auth_state {
  std::shared_ptr<const jwt::verifier> verifier;
  static inline const char* name = "auth";
};

/// Verifies bearer tokens with the configured keys; answers the token's subject.
auth_actor::behavior_type auth(auth_actor::stateful_pointer<auth_state> self,
                               std::shared_ptr<const jwt::verifier> verifier);

} // namespace todo
