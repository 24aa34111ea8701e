#include "persistence/sql.hpp"

#include <initializer_list>
#include <unordered_map>

namespace todo::sql {

namespace {

const char* status_names[] = {"all", "pending", "completed"};
const char* sort_names[] = {"created", "updated", "title"};
const char* status_filters[] = {"", " AND completed = false", " AND completed = true"};
// Titles order by code point (COLLATE "C"), the same order the TaskManager's cache uses.
const char* sort_columns[] = {"created_at", "updated_at", "title COLLATE \"C\""};

// Group commit: one statement per kind of mutation for many users at once, its array
// parameters numbered from `first` (one user appears at most once per statement; rows come
// back keyed by user_id).
std::string arrays(int first, std::initializer_list<const char*> types) {
  std::string out;
  for (auto t : types) {
    if (!out.empty())
      out += ", ";
    out += "$" + std::to_string(first++) + "::" + t + "[]";
  }
  return out;
}

std::string create_many(int first) {
  return "INSERT INTO tasks (user_id, title, description) SELECT u, t, d FROM unnest(" +
         arrays(first, {"text", "text", "text"}) +
         ") WITH ORDINALITY AS x(u, t, d, n) ORDER BY n RETURNING user_id, " + task_columns;
}

std::string update_many(int first) {
  return "UPDATE tasks AS k SET title = COALESCE(x.t, k.title), "
         "description = CASE WHEN x.sd THEN x.d ELSE k.description END, "
         "completed = COALESCE(x.c, k.completed), "
         "updated_at = CASE WHEN x.t IS NULL AND NOT x.sd AND x.c IS NULL "
         "THEN k.updated_at ELSE now() END, "
         "version = CASE WHEN x.t IS NULL AND NOT x.sd AND x.c IS NULL "
         "THEN k.version ELSE k.version + 1 END FROM unnest(" +
         arrays(first, {"int8", "text", "text", "boolean", "text", "boolean"}) +
         ") AS x(i, u, t, sd, d, c) WHERE k.id = x.i AND k.user_id = x.u RETURNING k.user_id, " +
         task_columns;
}

std::string complete_many(int first) {
  return "UPDATE tasks AS k SET completed = COALESCE(x.v, NOT k.completed), "
         "updated_at = CASE WHEN x.v IS NOT NULL AND k.completed = x.v "
         "THEN k.updated_at ELSE now() END, "
         "version = CASE WHEN x.v IS NOT NULL AND k.completed = x.v "
         "THEN k.version ELSE k.version + 1 END FROM unnest(" +
         arrays(first, {"int8", "text", "boolean"}) +
         ") AS x(i, u, v) WHERE k.id = x.i AND k.user_id = x.u RETURNING k.user_id, " +
         task_columns;
}

std::string remove_many(int first) {
  return "DELETE FROM tasks AS k USING unnest(" + arrays(first, {"int8", "text"}) +
         ") AS x(i, u) WHERE k.id = x.i AND k.user_id = x.u RETURNING k.user_id";
}

std::vector<statement> make_statements() {
  std::string cols = task_columns;
  std::vector<statement> out{
    {"ping", "SELECT 1"},
    // Locks a group commit's rows in id order before its rounds run (each round is ordered
    // by id, but one after the other they are not): two instances' commits wait, not deadlock.
    // Only rows of their own users: another user's id locks nothing.
    {"lock_rows", "SELECT k.id FROM tasks AS k JOIN unnest($1::int8[], $2::text[]) AS x(i, u) "
                  "ON k.id = x.i AND k.user_id = x.u ORDER BY k.id FOR UPDATE OF k"},
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
     "THEN updated_at ELSE now() END, "
     "version = CASE WHEN $3::text IS NULL AND NOT $4::boolean AND $6::boolean IS NULL "
     "THEN version ELSE version + 1 END "
     "WHERE id = $1 AND user_id = $2 RETURNING " + cols},
    // $3 null flips; a value sets (idempotent: setting the current value changes nothing).
    {"complete",
     "UPDATE tasks SET completed = COALESCE($3::boolean, NOT completed), "
     "updated_at = CASE WHEN $3::boolean IS NOT NULL AND completed = $3::boolean "
     "THEN updated_at ELSE now() END, "
     "version = CASE WHEN $3::boolean IS NOT NULL AND completed = $3::boolean "
     "THEN version ELSE version + 1 END "
     "WHERE id = $1 AND user_id = $2 RETURNING " + cols},
    {"remove", "DELETE FROM tasks WHERE id = $1 AND user_id = $2"},
    // If-Match under an Idempotency-Key is checked inside the write's transaction.
    {"fetch_locked", "SELECT " + cols + " FROM tasks WHERE id = $1 AND user_id = $2 FOR UPDATE"},
    // Idempotency-Key ($1 user, $2 key). Claims the key for this transaction: a new row, or an
    // expired one ($4: the TTL in seconds) taken over; no row back means a live answer exists
    // (a concurrent claim of the same key waits here until its owner commits or rolls back).
    {"idem_claim",
     "INSERT INTO idempotency_keys AS k (user_id, key, fingerprint) VALUES ($1, $2, $3) "
     "ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, "
     "status = NULL, body = NULL, task_id = NULL, created_at = now() "
     "WHERE k.created_at < now() - make_interval(secs => $4::float8) RETURNING 1"},
    {"idem_get",
     "SELECT fingerprint, status, body, task_id FROM idempotency_keys "
     "WHERE user_id = $1 AND key = $2"},
    {"idem_store",
     "UPDATE idempotency_keys SET status = $3, body = $4, task_id = $5 "
     "WHERE user_id = $1 AND key = $2"},
    {"idem_forget", "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2"},
    // Group commit (see create_many and the others above).
    {"create_many", create_many(1)},
    {"update_many", update_many(1)},
    {"complete_many", complete_many(1)},
    {"remove_many", remove_many(1)},
    // The four above in one statement, for a group commit that mixes kinds: one round trip
    // and one commit instead of BEGIN, a statement per kind and COMMIT. Each user appears at
    // most once, so no two parts touch the same row (they all see one snapshot). Rows come
    // back as (kind: 1 create, 2 update, 3 complete, 4 remove; user_id; task columns, null
    // for a remove). $1-$3 create_many's, $4-$9 update_many's, $10-$12 complete_many's,
    // $13-$14 remove_many's parameters.
    {"write_many",
     "WITH ins AS (" + create_many(1) + "), upd AS (" + update_many(4) + "), tog AS (" +
       complete_many(10) + "), del AS (" + remove_many(13) + ") "
       "SELECT 1, * FROM ins UNION ALL SELECT 2, * FROM upd UNION ALL SELECT 3, * FROM tog "
       "UNION ALL SELECT 4, user_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM del"},
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

const std::string& statement_text(const std::string& name) {
  static const auto by_name = [] {
    std::unordered_map<std::string, const std::string*> m;
    for (const auto& s : all_statements())
      m.emplace(s.name, &s.text);
    return m;
  }();
  return *by_name.at(name);
}

} // namespace todo::sql
