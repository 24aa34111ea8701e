#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "actors/interfaces.hpp"
#include "persistence/conninfo.hpp"

namespace todo::db {

struct db_config {
  std::string conninfo;              // libpq URL or key=value string
  caf::timespan timeout = std::chrono::seconds(2); // statement and connect timeout
  size_t pool_size = 4;
  size_t queue_limit = 4096;         // jobs waiting for a worker; beyond: errc::overloaded
  size_t max_batch = 64;             // mutations per group commit (1: no group commit)
  int64_t idempotency_ttl_s = 86400; // an Idempotency-Key's answer is replayed this long
  // Named prepared statements and session SETs (statement_timeout) on each connection; false:
  // unnamed statements only and no session state (a pooler in transaction mode).
  bool prepared = true;
};

struct connection_holder; // the libpqxx connection, kept out of this header

struct db_worker_state {
  db_config cfg;
  std::unique_ptr<connection_holder> conn;
  caf::timestamp retry_at;                          // no reconnect attempt before this
  caf::timespan backoff = std::chrono::milliseconds(0);
  db_worker_state();
  ~db_worker_state();
  static inline const char* name = "db-worker";
};

/// Owns one PostgreSQL connection and runs one statement at a time on it (blocking:
/// spawn it detached, so it has a thread of its own).
db_worker_actor::behavior_type db_worker(db_worker_actor::stateful_pointer<db_worker_state> self,
                                         db_config cfg);

} // namespace todo::db
