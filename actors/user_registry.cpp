#include "actors/user_registry.hpp"

#include <algorithm>

#include "actors/task_manager.hpp"
#include "config/log.hpp"
#include "config/metrics.hpp"

namespace todo {

namespace {

using self_ptr = user_registry_actor::stateful_pointer<user_registry_state>;
using entry_iter = std::unordered_map<std::string, user_registry_state::entry>::iterator;

int64_t ticks(caf::actor_clock::time_point t) {
  return t.time_since_epoch().count();
}

// Stops the manager of `i`'s user (its slot already retired: no courier can hand it anything
// any more) and forgets it; a new request spawns a fresh one.
entry_iter evict(self_ptr self, entry_iter i) {
  auto mgr = std::move(i->second.manager);
  auto next = self->state.users.erase(i);
  self->unlink_from(mgr);
  self->send_exit(mgr, caf::exit_reason::user_shutdown);
  return next;
}

// Adds a new user's slot to the budget's list of all slots, sweeping out the dead ones
// whenever the list has doubled since the last sweep (amortized constant time).
void enroll(cache_budget& b, const pending_counter& slot) {
  std::lock_guard<std::mutex> guard{b.m};
  b.slots.push_back(slot);
  if (b.slots.size() >= 2 * b.swept_size + 64) {
    b.slots.erase(std::remove_if(b.slots.begin(), b.slots.end(),
                                 [](const auto& w) { return w.expired(); }),
                  b.slots.end());
    b.swept_size = b.slots.size();
  }
}

// Evicts this shard's users chosen by `choose_and_shed`, whole: one with nothing in flight
// loses its manager; one with requests in flight keeps it and only its cache (the manager
// drops the cache when it gets to the message, and reloads on next use).
void shed_marked(self_ptr self) {
  for (auto i = self->state.users.begin(); i != self->state.users.end();) {
    auto& slot = *i->second.pending;
    if (!slot.shed.exchange(false, std::memory_order_relaxed)) {
      ++i;
    } else if (slot.try_retire()) {
      i = evict(self, i);
    } else {
      self->send(i->second.manager, atom::invalidate::value);
      ++i;
    }
  }
}

// All caches together hold more than CACHE_MAX_MB: picks the least recently used users of
// all shards until their caches add up to what brings the total down to 3/4 of the budget
// (the headroom keeps this from running on every request) and tells every shard to evict
// its own. Managers give the bytes back when they process the eviction, so the next pass
// waits a little (shed_pause) instead of evicting again for bytes on their way back.
void choose_and_shed(self_ptr self, caf::actor_clock::time_point now) {
  auto& b = *self->state.limits.budget;
  auto next = b.next_shed.load(std::memory_order_relaxed);
  if (ticks(now) < next ||
      !b.next_shed.compare_exchange_strong(next, ticks(now + self->state.limits.shed_pause)))
    return; // another shard is at it, or did it a moment ago
  auto used = b.used.load(std::memory_order_relaxed);
  auto excess = used - b.max_bytes / 4 * 3;
  std::vector<std::pair<int64_t, pending_counter>> lru;
  std::vector<caf::actor_addr> shards;
  {
    std::lock_guard<std::mutex> guard{b.m};
    for (const auto& w : b.slots)
      if (auto slot = w.lock(); slot && slot->cache_bytes.load(std::memory_order_relaxed) > 0)
        lru.emplace_back(slot->last_active(), std::move(slot));
    shards = b.shards;
  }
  std::sort(lru.begin(), lru.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  int64_t freed = 0;
  size_t users = 0;
  for (auto& [when, slot] : lru) {
    if (freed >= excess)
      break;
    freed += slot->cache_bytes.load(std::memory_order_relaxed);
    slot->shed.store(true, std::memory_order_relaxed);
    ++users;
  }
  if (shards.empty()) {
    shed_marked(self); // a registry on its own (tests)
  } else {
    for (const auto& addr : shards)
      if (auto shard = caf::actor_cast<caf::strong_actor_ptr>(addr))
        caf::anon_send(caf::actor_cast<user_registry_actor>(shard), atom::shed::value);
  }
  if (log::enabled(log::level::debug))
    log::debug("cache: " + std::to_string(used >> 10) + " KiB cached, over CACHE_MAX_MB; evicted " +
               std::to_string(users) + " least recently used user(s), " +
               std::to_string(freed >> 10) + " KiB");
}

} // namespace

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
  // Finds or spawns the user's manager and counts one request in (null: too much pending).
  auto admit = [self, arm](const std::string& user) -> user_registry_state::entry* {
    auto& st = self->state;
    auto i = st.users.find(user);
    if (i == st.users.end()) {
      // Linked: managers stop with the registry.
      auto slot = std::make_shared<user_slot>();
      slot->max_pending = st.limits.max_pending_per_user;
      slot->budget = st.limits.budget;
      if (st.limits.budget)
        enroll(*st.limits.budget, slot);
      auto mgr = self->spawn<caf::linked>(task_manager, user, st.db, st.limits.db_timeout,
                                          st.limits.cache_limit, slot, st.limits.budget);
      i = st.users.emplace(user, user_registry_state::entry{std::move(mgr), std::move(slot)})
            .first;
      arm();
    }
    auto& e = i->second;
    // Never retired while in `users` (retiring and erasing go together): a full slot is the
    // only way to fail.
    if (e.pending->try_claim() != user_slot::claim::ok)
      return nullptr;
    metrics::actors().user_queue.fetch_add(1, std::memory_order_relaxed);
    auto now = self->clock().now();
    e.pending->last_used.store(ticks(now), std::memory_order_relaxed);
    if (st.limits.budget && st.limits.budget->over())
      choose_and_shed(self, now); // `e` stays: it has a request in flight
    return &e;
  };
  return {
    [self, admit](atom::exec, std::string& user, task_cmd& cmd) -> caf::result<task_result> {
      auto e = admit(user);
      if (!e)
        return caf::make_error(errc::overloaded);
      // The manager answers the requester directly (one hop fewer than relaying the answer
      // through here) and counts `pending` down when it does, so a manager is still only
      // evicted when nothing of its user is in flight. No timeout: a manager always answers
      // (its database calls have one).
      return self->delegate(e->manager, atom::exec::value, std::move(cmd));
    },
    [admit](atom::route,
                  const std::string& user) -> caf::result<task_manager_actor, pending_counter> {
      auto e = admit(user);
      if (!e)
        return caf::make_error(errc::overloaded);
      return {e->manager, e->pending};
    },
    [self, arm](atom::tick) {
      auto& st = self->state;
      st.ticking = false;
      auto now = ticks(self->clock().now());
      auto idle = std::chrono::duration_cast<caf::actor_clock::duration_type>(st.limits.user_idle)
                    .count();
      for (auto i = st.users.begin(); i != st.users.end();) {
        auto& slot = *i->second.pending;
        if (now - slot.last_active() >= idle && slot.try_retire())
          i = evict(self, i);
        else
          ++i;
      }
      arm();
    },
    [self](atom::shed) { shed_marked(self); },
    [self](atom::invalidate, const std::string& user) {
      if (auto i = self->state.users.find(user); i != self->state.users.end())
        self->send(i->second.manager, atom::invalidate::value);
    },
    [self](atom::apply, std::vector<task_change>& changes) {
      for (auto& change : changes)
        if (auto i = self->state.users.find(change.user); i != self->state.users.end())
          self->send(i->second.manager, atom::apply::value, std::move(change));
    },
    [self](atom::invalidate) {
      for (auto& [user, e] : self->state.users)
        self->send(e.manager, atom::invalidate::value);
    },
    [self](atom::count) -> size_t { return self->state.users.size(); },
  };
}

} // namespace todo
