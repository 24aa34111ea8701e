#pragma once
// Editing a libpq connection string (URL or key=value form). No CAF, no pqxx.

#include <chrono>
#include <string>

namespace todo::db {

/// Returns `conninfo` with a connect timeout, TCP keepalives and tcp_user_timeout added (each
/// unless it already names it).
std::string with_timeouts(const std::string& conninfo, std::chrono::nanoseconds timeout);

} // namespace todo::db
