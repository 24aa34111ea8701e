#pragma once
// Every actor handle of the service, one line per message.

#include <caf/all.hpp>

#include <functional>
#include <memory>

#include "actors/errc.hpp"
#include "actors/gateway.hpp"
#include "actors/model/model.hpp"

namespace todo {

/// One user's command inside a group commit.
struct db_job {
  std::string user;
  task_cmd cmd;
};

/// The answer to one db_job: errc::none and a result, or an error code.
struct db_outcome {
  errc code = errc::none;
  task_result result;
};

/// One request on its way through the actors: what the gateway hands a courier.
struct courier_job {
  std::string token;
  std::string scoped_user;   // {user_id} of the scoped route family, else empty
  task_cmd cmd;
  bool authorize_only = false; // check the token and the scoped user, run nothing
  std::function<void(reply)> done; // called exactly once, on an actor thread
};

using courier_job_ptr = std::shared_ptr<courier_job>;

/// What the registry, the couriers and one user's manager share (actors/task_manager.hpp).
struct user_slot;
using pending_counter = std::shared_ptr<user_slot>;

} // namespace todo

// CAF 0.17: our value types hold std::optional, which its inspectors do not know; they
// only ever travel between local actors, so they never need serializing.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(todo::task_cmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(todo::task_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(todo::task_change)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<todo::task_change>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<todo::db_job>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<todo::db_outcome>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(todo::courier_job_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(todo::pending_counter)
CAF_ERROR_CODE_ENUM(todo::errc, "todo")

namespace todo {

namespace atom {
using verify = caf::atom_constant<caf::atom("verify")>;
using exec = caf::atom_constant<caf::atom("exec")>;
using ping = caf::atom_constant<caf::atom("ping")>;
using tick = caf::atom_constant<caf::atom("tick")>;
using count = caf::atom_constant<caf::atom("count")>;
using jwks = caf::atom_constant<caf::atom("jwks")>;
using batch = caf::atom_constant<caf::atom("batch")>;
using invalidate = caf::atom_constant<caf::atom("invalidate")>;
using apply = caf::atom_constant<caf::atom("apply")>;
using shed = caf::atom_constant<caf::atom("shed")>;
using claims = caf::atom_constant<caf::atom("claims")>;
using route = caf::atom_constant<caf::atom("route")>;
} // namespace atom

/// Checks bearer tokens.
using auth_actor = caf::typed_actor<
  // Answers the verified token's `sub`, else errc::unauthorized with a short reason.
  caf::replies_to<atom::verify, std::string>::with<std::string>,
  // The same, answering (sub, until, generation): the verdict may be reused until `until`
  // (Unix seconds; 0: not at all) while the key set is still at `generation`.
  caf::replies_to<atom::claims, std::string>::with<std::string, int64_t, uint64_t>,
  // Delivers the outcome of JWKS fetch number N from the auth actor's own fetch helper:
  // (N, true, document) or (N, false, reason). Answers the tokens that waited for it.
  caf::reacts_to<atom::jwks, uint64_t, bool, std::string>>;

/// Talks to PostgreSQL: the pool's interface.
using db_actor = caf::typed_actor<
  // Runs one command for the given user and answers the committed result.
  caf::replies_to<atom::exec, std::string, task_cmd>::with<task_result>,
  // Runs several mutations in one transaction, in order (a user's queued writes; the workers
  // also get other users' mutations this way: group commit); one outcome per job. A job that
  // fails does not fail the others.
  caf::replies_to<atom::batch, std::vector<db_job>>::with<std::vector<db_outcome>>,
  // Answers true when the database answers a trivial query.
  caf::replies_to<atom::ping>::with<bool>>;

/// One connection to PostgreSQL (behind the pool): the same interface.
using db_worker_actor = db_actor;

/// One actor per active user. Applies that user's mutations one at a time, in arrival order.
using task_manager_actor = caf::typed_actor<
  // Runs one command for this actor's user.
  caf::replies_to<atom::exec, task_cmd>::with<task_result>,
  // Drops the cached copy of this user's tasks (changes may have been missed).
  caf::reacts_to<atom::invalidate>,
  // Brings the cached copy of one task up to date with a committed change (any writer's).
  caf::reacts_to<atom::apply, task_change>>;

/// Owns the task managers: spawns one per user on demand, evicts idle ones.
using user_registry_actor = caf::typed_actor<
  // Routes a command to the user's task manager (errc::overloaded when too much is pending).
  caf::replies_to<atom::exec, std::string, task_cmd>::with<task_result>,
  // The user's task manager (spawned on demand) and its slot, with one request already counted
  // in for the asker, who sends it straight to the manager and may keep both for the user's
  // next requests (user_slot::try_claim). errc::overloaded like exec.
  caf::replies_to<atom::route, std::string>::with<task_manager_actor, pending_counter>,
  // Evicts managers idle for longer than the configured period.
  caf::reacts_to<atom::tick>,
  // Tells the user's manager (if any) that its cache is stale.
  caf::reacts_to<atom::invalidate, std::string>,
  // Hands committed changes (in commit order) to their users' managers, if alive, for their
  // caches.
  caf::reacts_to<atom::apply, std::vector<task_change>>,
  // Tells every manager that its cache is stale (notifications may have been missed).
  caf::reacts_to<atom::invalidate>,
  // Evicts this shard's users chosen for eviction over the cache budget.
  caf::reacts_to<atom::shed>,
  // Answers how many task managers are alive.
  caf::replies_to<atom::count>::with<size_t>>;

/// Carries requests from the HTTP layer into the actors; long-lived, any number at a time.
using courier_actor = caf::typed_actor<
  // Verifies the job's token (auth), checks the scoped user (errc::forbidden), runs the command
  // through the user's registry shard, and calls the job's `done` once with the outcome.
  caf::reacts_to<courier_job_ptr>>;

/// Drops the timeout of the request whose answer is being handled. CAF 0.17 leaves it
/// scheduled (holding a strong reference to the requester) until it fires, even after the
/// answer came: at tens of thousands of requests per second that is a lot of memory. Call it
/// first thing in every response handler.
template <class Self>
void forget_request_timeout(Self* self) {
  self->clock().cancel_request_timeout(self, self->current_message_id());
}

/// The service's reading of an error that came back from an actor, and the one place that
/// translates a caf::error: our own codes stay as they are (with their reason), a timeout is
/// db_unavailable (a statement may have committed or not: never a 2xx), anything else internal.
inline caf::error as_service_error(caf::error err) {
  if (err.category() == caf::atom("todo"))
    return err;
  if (err == caf::sec::request_timeout)
    return caf::make_error(errc::db_unavailable);
  return caf::make_error(errc::internal);
}

/// Returns the short reason carried by an error's context, or an empty string.
inline std::string error_reason(const caf::error& err) {
  const auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  return {};
}

} // namespace todo
