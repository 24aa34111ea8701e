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
        auto pending = std::make_shared<user_slot>();
        auto mgr = self->spawn<caf::linked>(task_manager, user, st.db, st.limits.db_timeout,
                                            st.limits.cache_limit, pending);
        i = st.users
              .emplace(user, user_registry_state::entry{std::move(mgr), std::move(pending), {}})
              .first;
        arm();
      }
      auto& e = i->second;
      if (e.pending->pending.load(std::memory_order_acquire) >= st.limits.max_pending_per_user)
        return caf::make_error(errc::overloaded);
      e.pending->pending.fetch_add(1, std::memory_order_relaxed);
      e.last_used = self->clock().now();
      // The manager answers the requester directly (one hop fewer than relaying the answer
      // through here) and counts `pending` down when it does, so a manager is still only
      // evicted when nothing of its user is in flight. No timeout: a manager always answers
      // (its database calls have one).
      return self->delegate(e.manager, atom::exec::value, std::move(cmd));
    },
    [self, arm](atom::tick) {
      auto& st = self->state;
      st.ticking = false;
      auto now = self->clock().now();
      for (auto i = st.users.begin(); i != st.users.end();) {
        const auto& slot = *i->second.pending;
        auto answered = caf::actor_clock::time_point{caf::actor_clock::duration_type{
          slot.last_answer.load(std::memory_order_relaxed)}};
        auto last = std::max(i->second.last_used, answered);
        if (slot.pending.load(std::memory_order_acquire) == 0 && now - last >= st.limits.user_idle) {
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
