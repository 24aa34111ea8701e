#pragma once
// The first contact with the database at start-up: a DATABASE_URL mistake is named at once
// (API.md §8: exit code 2, one line naming the setting), a server that is not up yet is waited
// for, within a bound, saying why each attempt failed. Plain libpq: no actor, no pqxx.

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace todo::db {

/// Returns why libpq cannot parse `conninfo` (a URL or a key=value string), or nothing when it
/// can. The reason never contains the password.
std::optional<std::string> conninfo_problem(const std::string& conninfo);

/// What one connection attempt found.
struct probe_result {
  enum kind { ok, retry, fatal };
  kind outcome = ok;
  std::string reason; // libpq's reason on one line, password removed; empty when ok
};

/// Connects once and closes again. A server that refuses, is not there yet, is starting up or
/// is full is `retry`; anything the server or libpq rejects for good (unknown database or role,
/// bad credentials, invalid option values, SSL refused) is `fatal`.
probe_result probe(const std::string& conninfo);

/// Returns true when a libpq connection error text describes a condition that may pass by
/// itself (the server is not reachable yet, starting up, or out of connection slots).
bool is_transient(const std::string& libpq_message);

/// Returns `message` on one line, with every trace of the password in `conninfo` replaced by
/// `***` (libpq echoes parts of a malformed string back).
std::string redact(const std::string& message, const std::string& conninfo);

/// Probes until the database answers, a fatal error, or `wait` has passed. `on_retry` hears each
/// failed attempt that will be retried (its reason and the time spent so far).
probe_result wait_for_database(
  const std::string& conninfo, std::chrono::milliseconds wait,
  const std::function<void(const std::string& reason, std::chrono::milliseconds spent)>&
    on_retry);

/// Reaches the database and applies the migrations: returns nothing when the schema is up to
/// date, else why not, on one line without the password. A DATABASE_URL mistake (unparsable,
/// unknown option value, database or role, bad credentials) is returned at once; a server that
/// is not up yet is waited for, up to `connect_wait_ms`, each failed attempt logged with why.
/// `timeout_ms` is the connect timeout of each attempt (DB_TIMEOUT_MS).
std::optional<std::string> prepare_database(const std::string& database_url, int64_t timeout_ms,
                                            int64_t connect_wait_ms);

/// Reaches the database at `conninfo` as prepare_database does (parsed, then retried while the
/// reason is transient, up to `connect_wait_ms`), without migrating: for DATABASE_LISTEN_URL.
/// Returns why not, on one line without the password. `what` names it in retry warnings.
std::optional<std::string> reach_database(const std::string& conninfo, int64_t timeout_ms,
                                          int64_t connect_wait_ms, const std::string& what);

} // namespace todo::db
