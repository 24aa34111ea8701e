#include "actors/scheduler.hpp"

#include <caf/actor_system.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/scheduler/worker.hpp>

// The worker's loop for quiet_stealing: take a job (own queue, then stealing, then sleeping,
// as the policy decides), let it run up to max_throughput_ messages, then hand it back to the
// policy according to what it answered. CAF's own loop does the same plus, per job, the
// logger's actor-id bookkeeping described in scheduler.hpp; nothing else reads that id when
// nothing is logged (the server sets CAF's logger to quiet).
template <>
void caf::scheduler::worker<todo::quiet_stealing>::run() {
  CAF_SET_LOGGER_SYS(&system());
  for (;;) {
    resumable* job = policy_.dequeue(this);
    policy_.before_resume(this, job);
    const auto outcome = job->resume(this, max_throughput_);
    policy_.after_resume(this, job);
    switch (outcome) {
      case resumable::resume_later:
        // Still has messages: back in the queue, keeping the reference the queue held.
        policy_.resume_job_later(this, job);
        break;
      case resumable::done:
        policy_.after_completion(this, job);
        intrusive_ptr_release(job);
        break;
      case resumable::awaiting_message:
        // Empty mailbox: the next enqueue schedules it again and takes a new reference.
        intrusive_ptr_release(job);
        break;
      case resumable::shutdown_execution_unit:
        // The coordinator's stop() sends one of these to every worker.
        policy_.after_completion(this, job);
        policy_.before_shutdown(this);
        return;
    }
  }
}

namespace todo {

using quiet_coordinator = caf::scheduler::coordinator<quiet_stealing>;

void use_quiet_scheduler(caf::actor_system_config& cfg) {
  cfg.load<quiet_coordinator>();
}

bool runs_quiet_scheduler(caf::actor_system& sys) {
  return dynamic_cast<quiet_coordinator*>(&sys.scheduler()) != nullptr;
}

size_t parked_workers(caf::actor_system& sys) {
  auto* coordinator = dynamic_cast<quiet_coordinator*>(&sys.scheduler());
  return coordinator != nullptr ? coordinator->data().parked.load() : 0;
}

} // namespace todo
