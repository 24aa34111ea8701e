#include "persistence/db_pool.hpp"

namespace todo::db {

namespace {

// Workers always answer (their statements have a timeout); this only guards a lost reply.
constexpr auto worker_timeout = std::chrono::seconds(600);

void pump(db_actor::stateful_pointer<db_pool_state> self);

void finish(db_actor::stateful_pointer<db_pool_state> self, db_actor worker) {
  self->state.idle.push_back(std::move(worker));
  pump(self);
}

void dispatch(db_actor::stateful_pointer<db_pool_state> self, db_actor worker,
              db_pool_state::job job) {
  if (job.ping) {
    auto rp = job.ping_rp;
    self->request(worker, worker_timeout, atom::ping::value)
      .then(
        [self, worker, rp](bool ok) mutable {
          rp.deliver(ok);
          finish(self, worker);
        },
        [self, worker, rp](caf::error&) mutable {
          rp.deliver(false);
          finish(self, worker);
        });
    return;
  }
  auto rp = job.rp;
  self->request(worker, worker_timeout, atom::exec::value, std::move(job.user), std::move(job.cmd))
    .then(
      [self, worker, rp](task_result& r) mutable {
        rp.deliver(std::move(r));
        finish(self, worker);
      },
      [self, worker, rp](caf::error& err) mutable {
        rp.deliver(std::move(err));
        finish(self, worker);
      });
}

void pump(db_actor::stateful_pointer<db_pool_state> self) {
  auto& st = self->state;
  auto now = self->clock().now();
  while (!st.idle.empty() && !st.queue.empty()) {
    auto job = std::move(st.queue.front());
    st.queue.pop_front();
    if (now - job.queued > st.max_wait) {
      // Its requester has given up already; do not run a statement nobody waits for.
      if (job.ping)
        job.ping_rp.deliver(false);
      else
        job.rp.deliver(caf::make_error(errc::db_unavailable));
      continue;
    }
    auto worker = std::move(st.idle.back());
    st.idle.pop_back();
    dispatch(self, std::move(worker), std::move(job));
  }
}

caf::error enqueue(db_actor::stateful_pointer<db_pool_state> self, db_pool_state::job job) {
  auto& st = self->state;
  if (st.queue.size() >= st.queue_limit)
    return caf::make_error(errc::overloaded);
  job.queued = self->clock().now();
  st.queue.push_back(std::move(job));
  pump(self);
  return {};
}

} // namespace

db_actor::behavior_type db_pool(db_actor::stateful_pointer<db_pool_state> self,
                                std::vector<db_actor> workers, size_t queue_limit,
                                caf::timespan max_wait) {
  for (auto& w : workers)
    self->link_to(w); // workers stop with the pool
  self->state.idle = std::move(workers);
  self->state.queue_limit = queue_limit;
  self->state.max_wait = max_wait;
  return {
    [self](atom::exec, std::string& user, task_cmd& cmd) -> caf::result<task_result> {
      db_pool_state::job job;
      job.user = std::move(user);
      job.cmd = std::move(cmd);
      job.rp = self->make_response_promise<task_result>();
      auto rp = job.rp;
      if (auto err = enqueue(self, std::move(job)))
        return err;
      return rp;
    },
    [self](atom::ping) -> caf::result<bool> {
      db_pool_state::job job;
      job.ping = true;
      job.ping_rp = self->make_response_promise<bool>();
      auto rp = job.ping_rp;
      if (enqueue(self, std::move(job)))
        return false;
      return rp;
    },
  };
}

db_actor spawn_db_pool(caf::actor_system& sys, const db_config& cfg, detach mode) {
  std::vector<db_actor> workers;
  for (size_t i = 0; i < cfg.pool_size; ++i)
    workers.push_back(mode == detach::yes ? sys.spawn<caf::detached>(db_worker, cfg)
                                          : sys.spawn(db_worker, cfg));
  return sys.spawn(db_pool, std::move(workers), cfg.queue_limit, cfg.timeout);
}

} // namespace todo::db
