#include "actors/auth.hpp"

#include <chrono>

namespace todo {

auth_actor::behavior_type auth(auth_actor::stateful_pointer<auth_state> self,
                               std::shared_ptr<const jwt::verifier> verifier) {
  self->state.verifier = std::move(verifier);
  return {
    [self](atom::verify, const std::string& token) -> caf::result<std::string> {
      auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
      auto out = self->state.verifier->verify(token, now);
      if (!out)
        return caf::make_error(errc::unauthorized, std::string{jwt::reason(out.error)});
      return std::move(out.claims.subject);
    },
  };
}

} // namespace todo
