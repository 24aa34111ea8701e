#pragma once

#include <deque>
#include <vector>

#include "persistence/db_worker.hpp"

namespace todo::db {


struct db_pool_state {
  struct job {
    bool ping = false;
    std::string user;
    task_cmd cmd;
    caf::typed_response_promise<task_result> rp;
    std::vector<db_job> seq; // instead of user/cmd: one user's writes, in order, together
    caf::typed_response_promise<std::vector<db_outcome>> seq_rp;
    caf::typed_response_promise<bool> ping_rp;
    caf::actor_clock::time_point queued;
  };
  std::vector<db_worker_actor> idle;
  size_t workers = 0; // in all (busy: workers - idle.size())
  std::deque<job> queue;
  size_t queue_limit = 0;
  size_t max_batch = 64; // mutations per group commit
  caf::timespan max_wait;
  static inline const char* name = "db-pool";
};

/// Hands each job to an idle worker, queueing up to `queue_limit` jobs; a job that waited
/// longer than `max_wait` is answered with errc::db_unavailable instead of being run.
db_actor::behavior_type db_pool(db_actor::stateful_pointer<db_pool_state> self,
                                std::vector<db_worker_actor> workers, size_t queue_limit,
                                caf::timespan max_wait, size_t max_batch = 64);

/// Spawns `cfg.pool_size` workers (each on its own thread) behind one pool actor.
db_actor spawn_db_pool(caf::actor_system& sys, const db_config& cfg);

} // namespace todo::db
