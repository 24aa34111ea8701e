// The CAF scheduler the server runs on: CAF 0.17's work stealing, minus two costs.
//
// 1. CAF 0.17.6's worker loop records the running actor's id for its logger before every
//    resume (CAF_PUSH_AID_FROM_PTR), unconditionally, even with logging compiled out (Debian
//    builds it at CAF_LOG_LEVEL_QUIET): a dynamic_cast from `resumable` to `abstract_actor`
//    across a virtual-inheritance hierarchy plus two logger calls, about 2,300 instructions
//    per resume, 11% of a cached GET (`scripts/instructions`, callgrind). actors/scheduler.cpp
//    specializes `caf::scheduler::worker<quiet_stealing>::run` as the same loop without it.
// 2. An idle CAF 0.17 worker polls: `aggressive-poll-attempts` tries in a tight loop, then
//    `moderate-poll-attempts` more with a 50 us sleep between each (about 100 us with Linux's
//    timer slack; a job handed to a worker in that phase waits for the sleep to end), and
//    only then waits on a condition variable that an enqueue signals. On 2 cores shared with
//    PostgreSQL, that polling is CPU the database does not get, and at one request at a time
//    it is about 4,000 instructions per request. `quiet_stealing` spins for
//    `aggressive-poll-attempts` tries (own queue, stealing every `aggressive-steal-interval`),
//    then parks on its condition variable at once (for at most `relaxed-sleep-duration`,
//    after which it looks for work to steal); a job enqueued from outside (I/O threads, DB
//    workers, the clock) wakes the worker it was given to if that one is parked, and an actor
//    that queues a job behind another on its own worker wakes a parked peer to steal it.
#pragma once

#include <atomic>
#include <mutex>

#include <caf/actor_system_config.hpp>
#include <caf/policy/work_stealing.hpp>

namespace todo {

struct quiet_stealing : caf::policy::work_stealing {
  using base = caf::policy::work_stealing;

  struct coordinator_data : base::coordinator_data {
    explicit coordinator_data(caf::scheduler::abstract_coordinator* p)
        : base::coordinator_data(p) {}
    std::atomic<size_t> parked{0}; // how many workers wait on their condition variable
  };

  struct worker_data : base::worker_data {
    explicit worker_data(caf::scheduler::abstract_coordinator* p) : base::worker_data(p) {}
    worker_data(const worker_data& other) : base::worker_data(other) {}
    std::atomic<bool> parked{false}; // set under waitdata.lock, read by enqueuers without it
  };

  // From outside the workers (an I/O thread, a DB worker, the clock): queue, then wake the
  // worker if it is parked. The fence pairs with the one in park(): either the enqueuer sees
  // `parked`, or the parking worker sees the job and does not wait.
  template <class Worker>
  void external_enqueue(Worker* self, caf::resumable* job) {
    d(self).queue.append(job);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (d(self).parked.load(std::memory_order_relaxed))
      wake(self);
  }

  // From an actor running on `self`: its own queue, front (as CAF does). The worker runs it
  // next anyway; a parked peer is woken only when the job has to wait behind another one.
  template <class Worker>
  void internal_enqueue(Worker* self, caf::resumable* job) {
    const bool behind_another = !d(self).queue.empty();
    d(self).queue.prepend(job);
    if (behind_another && d(self->parent()).parked.load(std::memory_order_relaxed) > 0)
      wake_a_peer(self);
  }

  template <class Worker>
  caf::resumable* dequeue(Worker* self) {
    auto& data = d(self);
    const auto& spin = data.strategies[0];
    const size_t steal_every = spin.steal_interval > 0 ? spin.steal_interval : 1;
    for (size_t i = 0; i < spin.attempts; ++i) {
      if (auto job = data.queue.take_head())
        return job;
      if (i % steal_every == 0)
        if (auto job = try_steal(self))
          return job;
    }
    for (;;) {
      park(self);
      if (auto job = data.queue.take_head())
        return job;
      if (auto job = try_steal(self))
        return job;
    }
  }

  // CAF's try_steal rolls a std::uniform_int_distribution over a minstd engine on every
  // attempt (about 475 instructions of a cached GET at one connection, callgrind), although
  // with two workers the only victim is the other one. Same choice, without the dice there;
  // with more workers, CAF's dice as before.
  template <class Worker>
  caf::resumable* try_steal(Worker* self) {
    auto* p = self->parent();
    const size_t n = p->num_workers();
    if (n < 2)
      return nullptr;
    size_t victim;
    if (n == 2) {
      victim = 1 - self->id();
    } else {
      victim = d(self).uniform(d(self).rengine);
      if (victim == self->id())
        victim = n - 1;
    }
    return d(p->worker_by_id(victim)).queue.take_tail(); // the victim's oldest job
  }

private:
  template <class Worker>
  void park(Worker* self) {
    auto& data = d(self);
    auto& parent = d(self->parent());
    std::unique_lock<std::mutex> guard(data.waitdata.lock);
    data.parked.store(true, std::memory_order_relaxed);
    parent.parked.fetch_add(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (data.queue.empty())
      data.waitdata.cv.wait_for(guard, data.strategies[2].sleep_duration);
    data.parked.store(false, std::memory_order_relaxed);
    parent.parked.fetch_sub(1, std::memory_order_relaxed);
  }

  template <class Worker>
  static void wake(Worker* w) {
    std::lock_guard<std::mutex> guard(d(w).waitdata.lock);
    d(w).waitdata.cv.notify_one();
  }

  template <class Worker>
  static void wake_a_peer(Worker* self) {
    auto* parent = self->parent();
    for (size_t i = 0; i < parent->num_workers(); ++i) {
      auto* w = parent->worker_by_id(i);
      if (w != self && d(w).parked.load(std::memory_order_relaxed)) {
        wake(w);
        return;
      }
    }
  }
};

/// Makes an actor system built from `cfg` run on `caf::scheduler::coordinator<quiet_stealing>`
/// (CAF keeps a scheduler module the configuration loads instead of its own); threads and the
/// stealing settings are read from `cfg` as usual (`scheduler.max-threads`, `work-stealing.*`).
void use_quiet_scheduler(caf::actor_system_config& cfg);

/// True if `sys` runs on the scheduler above (for the tests).
bool runs_quiet_scheduler(caf::actor_system& sys);

/// How many of `sys`'s workers wait on their condition variable right now (for the tests;
/// 0 if `sys` does not run on the scheduler above).
size_t parked_workers(caf::actor_system& sys);

} // namespace todo
