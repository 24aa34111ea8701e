#pragma once
// An in-memory stand-in for the DB pool, for actor tests only. It can hold commands back
// until the test releases them, to show what runs while a command is in flight.

#include <deque>
#include <map>
#include <memory>

#include "actors/interfaces.hpp"

namespace todo::test {

struct fake_db_data {
  struct held_job {
    std::string user;
    task_cmd cmd;
    caf::typed_response_promise<task_result> rp;
    std::vector<db_job> batch; // instead of user/cmd: a batch, answered through batch_rp
    caf::typed_response_promise<std::vector<db_outcome>> batch_rp;
  };
  std::map<std::string, std::map<int64_t, task>> rows; // user -> id -> task
  int64_t next_id = 1;
  int64_t clock_us = 1'700'000'000'000'000;
  std::vector<std::pair<std::string, task_cmd>> log;   // every command, in arrival order
  std::vector<size_t> batches;                         // the size of every batch received
  bool hold = false;                                   // keep commands until released
  // Idempotency-Keys: (user, key) -> (fingerprint, the answer), as the real worker stores them
  std::map<std::pair<std::string, std::string>, std::pair<std::string, task_result>> keys;
  std::deque<held_job> held;
};

/// The fake's interface: the DB's, plus `tick` to release one held command.
using fake_db_actor = db_actor::extend<caf::reacts_to<atom::tick>>;

struct fake_db_state {
  std::shared_ptr<fake_db_data> data;
  static inline const char* name = "fake-db";
};

fake_db_actor::behavior_type fake_db(fake_db_actor::stateful_pointer<fake_db_state> self,
                                     std::shared_ptr<fake_db_data> data);

/// Applies one command to the in-memory tables, as PostgreSQL would.
caf::expected<task_result> apply(fake_db_data& d, const std::string& user, const task_cmd& cmd);

/// Applies each job in order, as one transaction would.
std::vector<db_outcome> apply_all(fake_db_data& d, const std::vector<db_job>& jobs);

} // namespace todo::test
