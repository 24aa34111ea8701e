#include "actors/courier.hpp"

#include "actors/task_manager.hpp"
#include "config/metrics.hpp"

namespace todo {

namespace {

using self_ptr = courier_actor::stateful_pointer<courier_state>;

reply failure(const caf::error& err) {
  auto ours = as_service_error(err);
  reply out;
  out.code = static_cast<errc>(ours.code());
  out.reason = error_reason(ours);
  return out;
}

int64_t wall_clock(const courier_state& st) {
  return st.cfg.now ? st.cfg.now() : jwt::unix_seconds();
}

// Empties the cache when the auth actor installed another key set since it was filled:
// a verdict may rest on a key that is gone. Returns the current generation.
uint64_t sync_generation(courier_state& st) {
  auto gen = st.cfg.generation->load(std::memory_order_acquire);
  if (gen != st.generation) {
    st.tokens->clear();
    st.generation = gen;
  }
  return gen;
}

// Sends `xs` (the job's command moved out of it last) to `dest` (the user's manager, or the
// registry that forwards to it) and the manager's answer to the job.
template <class Dest, class... Ts>
void ask(self_ptr self, const courier_job_ptr& job, const Dest& dest, Ts&&... xs) {
  auto stamps = job->cmd.trace;
  self->request(dest, caf::infinite, std::forward<Ts>(xs)...)
    .then(
      [=](task_result& r) {
        if (stamps) {
          trace::mark(stamps, trace::replied);
          trace::record(*stamps);
        }
        job->done(reply{errc::none, {}, std::move(r), {}, 0});
      },
      [=](caf::error& err) { job->done(failure(err)); });
}

// The second half of a job, once its token's user is known.
void run(self_ptr self, const std::shared_ptr<const registry_shards>& registries,
         const courier_job_ptr& job, const std::string& user, int64_t until = 0) {
  trace::mark(job->cmd.trace, trace::verified);
  if (!job->scoped_user.empty() && job->scoped_user != user) {
    job->done(reply{errc::forbidden, {}, {}, {}, 0});
    return;
  }
  if (job->authorize_only) {
    reply ok;
    ok.user = user;
    ok.valid_until = until;
    job->done(std::move(ok));
    return;
  }
  auto& st = self->state;
  // A user whose manager this courier knows: straight there, unless the cache budget is over
  // (then through the registry, which evicts for it).
  if (auto r = st.routes.find(user); r != st.routes.end()) {
    auto& slot = *r->second.slot;
    if (!slot.budget || !slot.budget->over()) {
      switch (slot.try_claim()) {
        case user_slot::claim::ok:
          metrics::actors().user_queue.fetch_add(1, std::memory_order_relaxed);
          slot.last_used.store(self->clock().now().time_since_epoch().count(),
                               std::memory_order_relaxed);
          ask(self, job, r->second.manager, atom::exec::value, std::move(job->cmd));
          return;
        case user_slot::claim::full:
          job->done(failure(caf::make_error(errc::overloaded)));
          return;
        case user_slot::claim::retired: // evicted: the registry spawns a new one
          st.routes.erase(r);
          break;
      }
    } else {
      ask(self, job, shard_for(*registries, user), atom::exec::value, user,
          std::move(job->cmd));
      return;
    }
  }
  // Learn the route (the registry counts this request in), then go there.
  const auto& registry = shard_for(*registries, user);
  self->request(registry, caf::infinite, atom::route::value, user)
    .then(
      [=](task_manager_actor& manager, pending_counter& slot) {
        auto& st = self->state;
        if (st.routes.size() >= courier_state::max_routes)
          st.routes.clear();
        st.routes.insert_or_assign(user, courier_route{manager, std::move(slot)});
        ask(self, job, manager, atom::exec::value, std::move(job->cmd));
      },
      [=](caf::error& err) { job->done(failure(err)); });
}

} // namespace

// A long-lived courier: it can carry any number of requests at once (each continues in its
// own response handler). Long-lived because in CAF 0.17 every actor that terminates costs a
// round trip through the clock thread, and a spawn per request would pay it each time.
//
// No timeouts here: the auth actor and the registry always answer, and the TaskManager
// bounds the database part (DB_TIMEOUT_MS, and a job's deadline). A timeout per hop would be
// two more round trips through CAF's clock thread per request.
courier_actor::behavior_type courier(self_ptr self, auth_actor auth,
                                     std::shared_ptr<const registry_shards> registries,
                                     courier_tokens tokens) {
  auto& st = self->state;
  st.cfg = std::move(tokens);
  if (st.cfg.generation && st.cfg.capacity > 0)
    st.tokens.emplace(st.cfg.capacity, st.cfg.max_ttl_seconds, false);
  return {
    [=](courier_job_ptr& job) {
      trace::mark(job->cmd.trace, trace::couriered);
      auto& st = self->state;
      if (!st.tokens) {
        self->request(auth, caf::infinite, atom::verify::value, job->token)
          .then([=](std::string& user) { run(self, registries, job, user); },
                [=](caf::error& err) { job->done(failure(err)); });
        return;
      }
      sync_generation(st);
      // The entry itself, not a copy of its claims: run() does not touch the cache.
      if (const auto* hit = st.tokens->peek(job->token, wall_clock(st))) {
        metrics::actors().token_courier_hits.fetch_add(1, std::memory_order_relaxed);
        run(self, registries, job, hit->claims.subject, hit->expires_at);
        return;
      }
      metrics::actors().token_courier_misses.fetch_add(1, std::memory_order_relaxed);
      self->request(auth, caf::infinite, atom::claims::value, job->token)
        .then(
          [=](std::string& user, int64_t until, uint64_t gen) {
            auto& st = self->state;
            // Kept only while the key set it was checked with is still the current one.
            if (until > 0 && gen == sync_generation(st))
              st.tokens->insert(job->token, jwt::verified{user, until}, wall_clock(st));
            run(self, registries, job, user, until);
          },
          [=](caf::error& err) { job->done(failure(err)); });
    },
  };
}

} // namespace todo
