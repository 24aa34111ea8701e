#pragma once
// Plain value types shared by every layer. No CAF, Beast or pqxx here.

#include "actors/model/stage_trace.hpp"
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace todo {

/// One stored task as the API shows it (user_id is never exposed).
struct task {
  int64_t id = 0;
  std::string title;
  std::optional<std::string> description;
  bool completed = false;
  int64_t created_us = 0; // microseconds since the Unix epoch, UTC
  int64_t updated_us = 0;
  int64_t version = 0; // bumped by every change (migration 007): orders copies of one row
};

/// One committed change of a user's task, from the database's change feed (every writer, in
/// commit order; persistence/change_listener.cpp).
struct task_change {
  enum class kind : uint8_t {
    created,
    updated,
    deleted,
    unknown, // the row did not fit a notification: whoever holds a copy must refetch
  };
  kind what = kind::unknown;
  std::string user;
  task row; // all fields for created and updated; the id (and version) otherwise
};

enum class task_status : uint8_t { all, pending, completed };
enum class task_sort : uint8_t { created, updated, title };

/// The validated query of `GET /api/tasks`.
struct task_query {
  task_status status = task_status::all;
  task_sort sort = task_sort::created;
  bool descending = true;
  int64_t limit = 1000;
  int64_t offset = 0;
};

/// Fields a client asked to set; an absent optional keeps the stored value.
struct task_patch {
  std::optional<std::string> title;
  bool set_description = false;           // true when the body had "description"
  std::optional<std::string> description; // nullopt with set_description means null
  std::optional<bool> completed;
};

/// What a request asks a user's TaskManager to do.
enum class op : uint8_t { create, fetch, update, complete, remove, list };

/// One command for one user's tasks. Which fields matter depends on `kind`:
/// create uses patch.title/description; update uses patch; complete uses
/// patch.completed (nullopt flips, a value sets); list uses query.
struct task_cmd {
  op kind = op::fetch;
  int64_t id = 0;
  task_patch patch;
  task_query query;
  int64_t deadline_ns = 0; // steady-clock time after which nobody waits for the answer (0: none)
  // If-Match of a mutation, when sent (even empty): 412 unless it lists the task's ETag.
  std::optional<std::string> if_match;
  trace::stamps_ptr trace; // TRACE_STAGES: where a write's time goes (null: not traced)
  // Idempotency-Key of a mutation (empty: none) and the fingerprint of its request (method,
  // route, body): the key and the answer are stored in the mutation's own transaction.
  std::string idem_key;
  std::string idem_fingerprint;
};

/// The answer to a task_cmd: the affected row(s); for list, one page and the
/// total count before paging. remove answers with no rows.
struct task_result {
  std::vector<task> rows;
  int64_t total = 0;
  std::string json; // the answer's JSON, ready to send: rendered by the task manager (empty for remove)
  std::string etag; // etag_of(json) when the task manager already knew it (a cached task), else empty
  // A stored answer to an earlier request with the same Idempotency-Key: `json` is its body
  // byte for byte, `replayed_status` its status, rows[0].id (when any) the task it named.
  // Nothing changed; the task manager passes it on untouched.
  bool replayed = false;
  int replayed_status = 0;
};

} // namespace todo
