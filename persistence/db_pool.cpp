#include "persistence/db_pool.hpp"

#include <algorithm>

#include "config/metrics.hpp"

namespace todo::db {

namespace {

// No timeout towards the workers: a worker always answers (its statements and connection
// attempts have timeouts of their own), and in CAF 0.17 each request timeout costs two round
// trips through the clock thread. The requester's own timeout bounds the client's wait.
constexpr auto worker_timeout = caf::infinite;

void pump(db_actor::stateful_pointer<db_pool_state> self);

// The pool's gauges for /metrics (one pool per process; tests' pools just overwrite them).
void publish(const db_pool_state& st) {
  auto& m = metrics::actors();
  m.db_queue.store(static_cast<int64_t>(st.queue.size()), std::memory_order_relaxed);
  m.db_busy.store(static_cast<int64_t>(st.workers - st.idle.size()), std::memory_order_relaxed);
}

// Counts a failed database call by kind (a missing task or a failed If-Match is no error).
void count_error(errc code) {
  auto& m = metrics::actors();
  if (code == errc::db_unavailable)
    m.db_errors_unavailable.fetch_add(1, std::memory_order_relaxed);
  else if (code == errc::internal)
    m.db_errors_other.fetch_add(1, std::memory_order_relaxed);
}
void count_error(const caf::error& err) {
  count_error(static_cast<errc>(as_service_error(err).code()));
}

bool is_mutation(const db_pool_state::job& j) {
  auto k = j.cmd.kind;
  return !j.ping && (!j.seq.empty() || k == op::create || k == op::update ||
                     k == op::complete || k == op::remove);
}

const std::string& user_of(const db_pool_state::job& j) {
  return j.seq.empty() ? j.user : j.seq.front().user;
}

// Whether a queued mutation must wait because an earlier one of its user is in flight.
bool user_writing(const db_pool_state& st, const db_pool_state::job& j) {
  return !st.writing.empty() && st.writing.count(user_of(j)) > 0;
}

void started_writing(db_pool_state& st, const std::vector<std::string>& users) {
  ++st.writes_in_flight;
  for (const auto& u : users)
    ++st.writing[u];
}

void finish(db_actor::stateful_pointer<db_pool_state> self, db_worker_actor worker,
            const std::vector<std::string>* users = nullptr) {
  auto& st = self->state;
  if (users) {
    --st.writes_in_flight;
    for (const auto& u : *users) {
      auto i = st.writing.find(u);
      if (i != st.writing.end() && --i->second == 0)
        st.writing.erase(i);
    }
  }
  st.idle.push_back(std::move(worker));
  pump(self);
}

void dispatch(db_actor::stateful_pointer<db_pool_state> self, db_worker_actor worker,
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
  // The user of a mutation, for `writing` (empty for a read).
  std::vector<std::string> users;
  if (is_mutation(job)) {
    users.push_back(job.user);
    started_writing(self->state, users);
  }
  self->request(worker, worker_timeout, atom::exec::value, std::move(job.user), std::move(job.cmd))
    .then(
      [self, worker, rp, users](task_result& r) mutable {
        rp.deliver(std::move(r));
        finish(self, worker, users.empty() ? nullptr : &users);
      },
      [self, worker, rp, users](caf::error& err) mutable {
        count_error(err);
        rp.deliver(std::move(err));
        finish(self, worker, users.empty() ? nullptr : &users);
      });
}

// The statements a job brings to a group commit.
size_t size_of(const db_pool_state::job& j) {
  return j.seq.empty() ? 1 : j.seq.size();
}

// Returns true (and answers the job) when its requester has given up already: do not run a
// statement nobody waits for.
bool expired(db_pool_state& st, db_pool_state::job& job, caf::actor_clock::time_point now) {
  if (now - job.queued <= st.max_wait)
    return false;
  if (job.ping)
    job.ping_rp.deliver(false);
  else if (!job.seq.empty())
    job.seq_rp.deliver(caf::make_error(errc::db_unavailable));
  else
    job.rp.deliver(caf::make_error(errc::db_unavailable));
  return true;
}

// Where one pool job's answers are in a batch: `count` outcomes from `first`; a single
// mutation answers through `rp`, a user's sequence through `seq_rp` (all its outcomes).
struct batch_part {
  size_t first = 0;
  size_t count = 1;
  bool seq = false;
  caf::typed_response_promise<task_result> rp;
  caf::typed_response_promise<std::vector<db_outcome>> seq_rp;
};

// Sends several mutations to one worker as one transaction (group commit). A user's sequence
// stays whole and in order (the worker runs a batch in which a user appears twice statement
// by statement, in order).
void dispatch_batch(db_actor::stateful_pointer<db_pool_state> self, db_worker_actor worker,
                    std::vector<db_pool_state::job> jobs) {
  std::vector<db_job> work;
  std::vector<batch_part> parts;
  std::vector<std::string> users;
  for (auto& j : jobs) {
    users.push_back(user_of(j));
    batch_part p;
    p.first = work.size();
    if (j.seq.empty()) {
      work.push_back(db_job{std::move(j.user), std::move(j.cmd)});
      p.rp = j.rp;
    } else {
      p.count = j.seq.size();
      p.seq = true;
      p.seq_rp = j.seq_rp;
      for (auto& x : j.seq)
        work.push_back(std::move(x));
    }
    parts.push_back(std::move(p));
  }
  started_writing(self->state, users);
  self->request(worker, worker_timeout, atom::batch::value, std::move(work))
    .then(
      [self, worker, parts, users](std::vector<db_outcome>& outs) mutable {
        for (const auto& o : outs)
          count_error(o.code);
        for (auto& p : parts) {
          if (p.seq) {
            std::vector<db_outcome> mine;
            for (size_t i = p.first; i < p.first + p.count; ++i)
              mine.push_back(i < outs.size() ? std::move(outs[i])
                                             : db_outcome{errc::internal, {}});
            p.seq_rp.deliver(std::move(mine));
          } else if (p.first < outs.size() && outs[p.first].code == errc::none) {
            p.rp.deliver(std::move(outs[p.first].result));
          } else {
            p.rp.deliver(
              caf::make_error(p.first < outs.size() ? outs[p.first].code : errc::internal));
          }
        }
        finish(self, worker, &users);
      },
      [self, worker, parts, users](caf::error& err) mutable {
        count_error(err);
        for (auto& p : parts) {
          if (p.seq)
            p.seq_rp.deliver(err);
          else
            p.rp.deliver(err);
        }
        finish(self, worker, &users);
      });
}

// The first queued job an idle worker may take now: a read, or a mutation whose user has
// none in flight while fewer than `write_limit` group commits are (the others wait for the
// next one). Reordering is safe: a user's manager sends a read only when none of its writes
// is unanswered, and a user's mutations keep their order (the first waits, so do the others).
std::deque<db_pool_state::job>::iterator next_job(db_pool_state& st) {
  bool writes = st.max_batch < 2 || st.writes_in_flight < st.write_limit; // no batch: no limit
  return std::find_if(st.queue.begin(), st.queue.end(), [&](const db_pool_state::job& j) {
    return !is_mutation(j) || (writes && !user_writing(st, j));
  });
}

void pump(db_actor::stateful_pointer<db_pool_state> self) {
  auto& st = self->state;
  auto now = self->clock().now();
  while (!st.idle.empty() && !st.queue.empty()) {
    auto at = next_job(st);
    if (at == st.queue.end())
      break;
    auto job = std::move(*at);
    st.queue.erase(at);
    if (expired(st, job, now))
      continue;
    auto worker = std::move(st.idle.back());
    st.idle.pop_back();
    if (!is_mutation(job) || (st.max_batch < 2 && job.seq.empty())) {
      if (is_mutation(job))
        metrics::actors().batch_size.observe(1);
      dispatch(self, std::move(worker), std::move(job));
      continue;
    }
    // Other queued mutations ride along, in queue order (a user's later ones after its
    // earlier ones: the worker runs a user's n-th write of a batch in the n-th round), but
    // none of a user with one in flight.
    std::vector<db_pool_state::job> batch;
    size_t statements = size_of(job);
    batch.push_back(std::move(job));
    for (auto i = st.queue.begin(); i != st.queue.end() && statements < st.max_batch;) {
      if (is_mutation(*i) && !user_writing(st, *i)) {
        if (!expired(st, *i, now)) {
          statements += size_of(*i);
          batch.push_back(std::move(*i));
        }
        i = st.queue.erase(i);
      } else {
        ++i;
      }
    }
    metrics::actors().batch_size.observe(static_cast<double>(statements));
    if (batch.size() == 1 && batch.front().seq.empty())
      dispatch(self, std::move(worker), std::move(batch.front()));
    else
      dispatch_batch(self, std::move(worker), std::move(batch));
  }
  publish(st);
}

// Returns whether a new job would exceed the queue bound.
bool full(const db_pool_state& st) {
  // (With an idle worker the queue holds only mutations waiting for a group commit slot.)
  return st.queue.size() >= st.queue_limit;
}

// Queues a job (callers check `full` first) and starts what idle workers can take.
void enqueue(db_actor::stateful_pointer<db_pool_state> self, db_pool_state::job job) {
  job.queued = self->clock().now();
  self->state.queue.push_back(std::move(job));
  pump(self);
}

} // namespace

db_actor::behavior_type db_pool(db_actor::stateful_pointer<db_pool_state> self,
                                std::vector<db_worker_actor> workers, size_t queue_limit,
                                caf::timespan max_wait, size_t max_batch,
                                size_t write_limit) {
  for (auto& w : workers)
    self->link_to(w); // workers stop with the pool
  self->state.workers = workers.size();
  metrics::actors().db_workers.store(static_cast<int64_t>(workers.size()),
                                     std::memory_order_relaxed);
  self->state.idle = std::move(workers);
  self->state.queue_limit = queue_limit;
  self->state.max_wait = max_wait;
  self->state.max_batch = max_batch;
  self->state.write_limit = write_limit > 0 ? write_limit : 1;
  return {
    [self](atom::exec, std::string& user, task_cmd& cmd) -> caf::result<task_result> {
      // Refuse before making a promise: CAF 0.17 ignores a handler's return value once it
      // has made one, and the requester would wait for its timeout instead.
      if (full(self->state))
        return caf::make_error(errc::overloaded);
      trace::mark(cmd.trace, trace::pooled);
      db_pool_state::job job;
      job.user = std::move(user);
      job.cmd = std::move(cmd);
      job.rp = self->make_response_promise<task_result>();
      auto rp = job.rp;
      enqueue(self, std::move(job));
      return rp;
    },
    [self](atom::batch, std::vector<db_job>& jobs) -> caf::result<std::vector<db_outcome>> {
      if (full(self->state))
        return caf::make_error(errc::overloaded);
      if (jobs.empty())
        return std::vector<db_outcome>{};
      for (auto& j : jobs)
        trace::mark(j.cmd.trace, trace::pooled);
      db_pool_state::job job;
      job.seq = std::move(jobs);
      job.seq_rp = self->make_response_promise<std::vector<db_outcome>>();
      auto rp = job.seq_rp;
      enqueue(self, std::move(job));
      return rp;
    },
    [self](atom::ping) -> caf::result<bool> {
      if (full(self->state))
        return false;
      db_pool_state::job job;
      job.ping = true;
      job.ping_rp = self->make_response_promise<bool>();
      auto rp = job.ping_rp;
      enqueue(self, std::move(job));
      return rp;
    },
  };
}

db_actor spawn_db_pool(caf::actor_system& sys, const db_config& cfg) {
  std::vector<db_worker_actor> workers;
  for (size_t i = 0; i < cfg.pool_size; ++i)
    workers.push_back(sys.spawn<caf::detached>(db_worker, cfg)); // blocking: a thread each
  auto pool = sys.spawn(db_pool, std::move(workers), cfg.queue_limit, cfg.timeout,
                        cfg.max_batch, write_limit_for(cfg.pool_size));
  return pool;
}

} // namespace todo::db
