#include "persistence/sql.hpp"

namespace todo::sql {

namespace {

const char* status_names[] = {"all", "pending", "completed"};
const char* sort_names[] = {"created", "updated", "title"};
const char* status_filters[] = {"", " AND completed = false", " AND completed = true"};
// Titles order by code point (COLLATE "C"), the same order the TaskManager's cache uses.
const char* sort_columns[] = {"created_at", "updated_at", "title COLLATE \"C\""};

std::vector<statement> make_statements() {
  std::string cols = task_columns;
  std::vector<statement> out{
    {"ping", "SELECT 1"},
    {"create",
     "INSERT INTO tasks (user_id, title, description) VALUES ($1, $2, $3) RETURNING " + cols},
    {"fetch", "SELECT " + cols + " FROM tasks WHERE id = $1 AND user_id = $2"},
    // $3 title or null (keep), $4 whether to set description, $5 the description,
    // $6 completed or null (keep). An empty patch leaves updated_at alone.
    {"update",
     "UPDATE tasks SET title = COALESCE($3::text, title), "
     "description = CASE WHEN $4::boolean THEN $5::text ELSE description END, "
     "completed = COALESCE($6::boolean, completed), "
     "updated_at = CASE WHEN $3::text IS NULL AND NOT $4::boolean AND $6::boolean IS NULL "
     "THEN updated_at ELSE now() END "
     "WHERE id = $1 AND user_id = $2 RETURNING " + cols},
    // $3 null flips; a value sets (idempotent: setting the current value changes nothing).
    {"toggle",
     "UPDATE tasks SET completed = COALESCE($3::boolean, NOT completed), "
     "updated_at = CASE WHEN $3::boolean IS NOT NULL AND completed = $3::boolean "
     "THEN updated_at ELSE now() END "
     "WHERE id = $1 AND user_id = $2 RETURNING " + cols},
    {"remove", "DELETE FROM tasks WHERE id = $1 AND user_id = $2"},
  };
  for (int st = 0; st < 3; ++st) {
    out.push_back({std::string{"count_"} + status_names[st],
                   std::string{"SELECT count(*) FROM tasks WHERE user_id = $1"} +
                     status_filters[st]});
    for (int so = 0; so < 3; ++so)
      for (int desc = 0; desc < 2; ++desc) {
        task_query q;
        q.status = static_cast<task_status>(st);
        q.sort = static_cast<task_sort>(so);
        q.descending = desc == 1;
        const char* dir = desc ? " DESC" : " ASC";
        out.push_back({list_name(q), "SELECT " + cols +
                                       ", count(*) OVER () FROM tasks WHERE user_id = $1" +
                                       status_filters[st] + " ORDER BY " + sort_columns[so] +
                                       dir + ", id" + dir + " LIMIT $2 OFFSET $3"});
      }
  }
  return out;
}

} // namespace

std::string list_name(const task_query& q) {
  return std::string{"list_"} + status_names[static_cast<int>(q.status)] + "_" +
         sort_names[static_cast<int>(q.sort)] + (q.descending ? "_desc" : "_asc");
}

const std::vector<statement>& all_statements() {
  static const std::vector<statement> all = make_statements();
  return all;
}

} // namespace todo::sql
