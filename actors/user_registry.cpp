#include "actors/user_registry.hpp"

#include "actors/task_manager.hpp"

namespace todo {

user_registry_actor::behavior_type
user_registry(user_registry_actor::stateful_pointer<user_registry_state> self, db_actor db,
              registry_limits limits) {
  self->state.db = std::move(db);
  self->state.limits = limits;
  // Check for idle managers a few times per idle period, only while there are any.
  auto tick_every = std::max<caf::timespan>(limits.user_idle / 4, std::chrono::milliseconds(10));
  auto arm = [self, tick_every] {
    if (!self->state.ticking && !self->state.users.empty()) {
      self->state.ticking = true;
      self->delayed_send(self, tick_every, atom::tick::value);
    }
  };
  return {
    [self, arm](atom::exec, std::string& user, task_cmd& cmd) -> caf::result<task_result> {
      auto& st = self->state;
      auto i = st.users.find(user);
      if (i == st.users.end()) {
        // Linked: managers stop with the registry.
        auto mgr = self->spawn<caf::linked>(task_manager, user, st.db, st.limits.db_timeout,
                                            st.limits.cache_limit);
        i = st.users.emplace(user, user_registry_state::entry{std::move(mgr), 0, {}}).first;
        arm();
      }
      auto& e = i->second;
      if (e.pending >= st.limits.max_pending_per_user)
        return caf::make_error(errc::overloaded);
      ++e.pending;
      e.last_used = self->clock().now();
      auto rp = self->make_response_promise<task_result>();
      // Replies come back through here so that `pending` is exact: a manager is only
      // evicted when nothing of its user is in flight. No timeout: a manager always answers
      // (its database calls have one), and in CAF 0.17 each timeout costs two round trips
      // through the clock thread.
      self->request(e.manager, caf::infinite, atom::exec::value, std::move(cmd))
        .then(
          [self, rp, user](task_result& r) mutable {
            if (auto j = self->state.users.find(user); j != self->state.users.end()) {
              --j->second.pending;
              j->second.last_used = self->clock().now();
            }
            rp.deliver(std::move(r));
          },
          [self, rp, user](caf::error& err) mutable {
            if (auto j = self->state.users.find(user); j != self->state.users.end()) {
              --j->second.pending;
              j->second.last_used = self->clock().now();
            }
            rp.deliver(std::move(err));
          });
      return rp;
    },
    [self, arm](atom::tick) {
      auto& st = self->state;
      st.ticking = false;
      auto now = self->clock().now();
      for (auto i = st.users.begin(); i != st.users.end();) {
        if (i->second.pending == 0 && now - i->second.last_used >= st.limits.user_idle) {
          // Drop the entry first, then stop the actor: a new request spawns a fresh one.
          auto mgr = std::move(i->second.manager);
          i = st.users.erase(i);
          self->unlink_from(mgr);
          self->send_exit(mgr, caf::exit_reason::user_shutdown);
        } else {
          ++i;
        }
      }
      arm();
    },
    [self](atom::invalidate, const std::string& user) {
      if (auto i = self->state.users.find(user); i != self->state.users.end())
        self->send(i->second.manager, atom::invalidate::value);
    },
    [self](atom::invalidate) {
      for (auto& [user, e] : self->state.users)
        self->send(e.manager, atom::invalidate::value);
    },
    [self](atom::count) -> size_t { return self->state.users.size(); },
  };
}

} // namespace todo
