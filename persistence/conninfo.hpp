#pragma once
// Editing and reading a libpq connection string (URL or key=value form). No CAF, no pqxx.

#include <chrono>
#include <optional>
#include <string>

namespace todo::db {

/// Returns `conninfo` with a connect timeout, TCP keepalives and tcp_user_timeout added (each
/// unless it already names it).
std::string with_timeouts(const std::string& conninfo, std::chrono::nanoseconds timeout);

/// Returns why `conninfo` looks like a connection through a pooler in transaction mode, or
/// nullopt: a host containing "-pooler." (Neon's pooled endpoints) or port 6432 (PgBouncer's
/// default). Reads the string with libpq (URL or key=value form; PGHOST and PGPORT for what it
/// does not name). The reason names the host or port, never a password.
std::optional<std::string> pooler_hint(const std::string& conninfo);

/// How the DB workers run their statements, and why (one line for the start-up log).
struct statement_mode {
  bool prepared = true;
  std::string reason;
};

/// Resolves DB_PREPARED (`auto`, `true` or `false`) for `conninfo`: `auto` is false when
/// pooler_hint finds a pooler, else true.
statement_mode choose_statement_mode(const std::string& setting, const std::string& conninfo);

} // namespace todo::db
