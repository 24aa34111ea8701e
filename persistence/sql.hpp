#pragma once
// Every statement the DB workers prepare, by name. $1 is always the task id or the user.

#include <string>
#include <vector>

#include "actors/model/model.hpp"

namespace todo::sql {

/// Columns of a task row as the workers read them: timestamps as microseconds since epoch,
/// then the row's version (migration 007).
inline constexpr const char* task_columns =
  "id, title, description, completed, "
  "(extract(epoch from created_at) * 1000000)::int8, "
  "(extract(epoch from updated_at) * 1000000)::int8, version";

struct statement {
  std::string name;
  std::string text;
};

/// Returns the name of the list statement for a query's filter and order.
std::string list_name(const task_query& q);

/// Returns every statement a worker prepares on each new connection.
const std::vector<statement>& all_statements();

/// Returns the text of the statement called `name` (for running it unnamed, without
/// preparing it: DB_PREPARED=false). Throws std::out_of_range for an unknown name.
const std::string& statement_text(const std::string& name);

} // namespace todo::sql
