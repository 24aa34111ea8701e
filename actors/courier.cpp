#include "actors/courier.hpp"

namespace todo {

namespace {

reply failure(const caf::error& err) {
  auto ours = as_service_error(err);
  reply out;
  out.code = static_cast<errc>(ours.code());
  out.reason = error_reason(ours);
  return out;
}

} // namespace

// A long-lived courier: it can carry any number of requests at once (each continues in its
// own response handler). Long-lived because in CAF 0.17 every actor that terminates costs a
// round trip through the clock thread, and a spawn per request would pay it each time.
//
// No timeouts here: the auth actor and the registry always answer, and the TaskManager
// bounds the database part (DB_TIMEOUT_MS, and a job's deadline). A timeout per hop would be
// two more round trips through CAF's clock thread per request.
courier_actor::behavior_type courier(courier_actor::pointer self, auth_actor auth,
                                    std::shared_ptr<const registry_shards> registries) {
  return {
    [=](courier_job_ptr& job) {
      self->request(auth, caf::infinite, atom::verify::value, job->token)
        .then(
          [=](std::string& user) {
            if (!job->scoped_user.empty() && job->scoped_user != user) {
              job->done(reply{errc::forbidden, {}, {}});
              return;
            }
            if (job->authorize_only) {
              job->done(reply{});
              return;
            }
            const auto& registry = shard_for(*registries, user);
            self->request(registry, caf::infinite, atom::exec::value, std::move(user), job->cmd)
              .then([=](task_result& r) { job->done(reply{errc::none, {}, std::move(r)}); },
                    [=](caf::error& err) { job->done(failure(err)); });
          },
          [=](caf::error& err) { job->done(failure(err)); });
    },
  };
}

} // namespace todo
