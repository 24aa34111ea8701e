#include "actors/task_manager.hpp"

namespace todo {

namespace {

bool is_mutation(op kind) {
  return kind == op::create || kind == op::update || kind == op::toggle || kind == op::remove;
}

} // namespace

task_manager_actor::behavior_type
task_manager(task_manager_actor::stateful_pointer<task_manager_state> self, std::string user_id,
             db_actor db, caf::timespan db_timeout) {
  self->state.user_id = std::move(user_id);
  self->state.db = std::move(db);
  self->state.db_timeout = db_timeout;
  return {
    [self](atom::exec, task_cmd& cmd) -> caf::result<task_result> {
      auto rp = self->make_response_promise<task_result>();
      bool mutation = is_mutation(cmd.kind);
      auto req = self->request(self->state.db, self->state.db_timeout, atom::exec::value,
                               self->state.user_id, std::move(cmd));
      auto ok = [rp](task_result& r) mutable { rp.deliver(std::move(r)); };
      auto fail = [rp](caf::error& err) mutable {
        // A timeout means we do not know whether the statement committed: never a 2xx.
        if (err == caf::sec::request_timeout)
          rp.deliver(caf::make_error(errc::db_unavailable));
        else
          rp.deliver(std::move(err));
      };
      // `await` holds this user's next message until the database has answered: that is
      // where per-user ordering comes from. Reads need no such fence.
      if (mutation)
        req.await(ok, fail);
      else
        req.then(ok, fail);
      return rp;
    },
  };
}

} // namespace todo
