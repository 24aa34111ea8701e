#pragma once

#include <deque>
#include <string>
#include <unordered_map>
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
  // Group commits in flight at once. Mutations that arrive while that many are running wait
  // (and ride together in the next one) even when a worker is idle: the idle workers are left
  // to reads, and fewer, larger transactions cost PostgreSQL less per write.
  size_t write_limit = 1;
  size_t writes_in_flight = 0;
  // Users with a mutation in flight (how many calls): a user's later mutation waits until
  // they have answered, so a user's writes commit in the order they came (a TaskManager
  // sends a user's plain writes without waiting for the earlier ones' answers).
  std::unordered_map<std::string, size_t> writing;
  caf::timespan max_wait;
  static inline const char* name = "db-pool";
};

/// Hands each job to an idle worker (mutations: at most `write_limit` group commits at once,
/// a user's in arrival order, never while an earlier one of the same user is in flight),
/// queueing up to `queue_limit` jobs; a job that waited longer than `max_wait` is answered
/// with errc::db_unavailable instead of being run.
db_actor::behavior_type db_pool(db_actor::stateful_pointer<db_pool_state> self,
                                std::vector<db_worker_actor> workers, size_t queue_limit,
                                caf::timespan max_wait, size_t max_batch = 64,
                                size_t write_limit = 1);

/// Group commits in flight at once for a pool of `pool_size` workers: half of them, at
/// least one (a pool of 2 leaves one worker to reads).
inline size_t write_limit_for(size_t pool_size) {
  return pool_size / 2 > 0 ? pool_size / 2 : 1;
}

/// Spawns `cfg.pool_size` workers (each on its own thread) behind one pool actor.
db_actor spawn_db_pool(caf::actor_system& sys, const db_config& cfg);

} // namespace todo::db
