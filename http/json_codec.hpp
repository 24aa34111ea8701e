#pragma once
// Request validation and response encoding for the bodies of API.md §3. Pure code: no Beast,
// no CAF. Error bodies follow FastAPI/pydantic v2: {"detail":[{"type","loc","msg"}, ...]}.

#include "actors/model/model.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace todo::http {

/// A parsed value or a ready-to-send 400 body.
template <class T>
struct parsed {
  std::optional<T> value;
  std::string error_body; // {"detail":[...]} when value is empty
  explicit operator bool() const { return value.has_value(); }
};

/// Validates a TaskCreate body: `title` required, `description` optional string or null.
///
/// Unknown fields (including `completed`) are ignored. `set_description` is true when the
/// body had a `description` key. An empty body is `missing` at loc ["body"], as in FastAPI.
parsed<task_patch> parse_create(std::string_view body);

/// Validates a TaskUpdate body: any of `title`, `description`, `completed`; absent fields
/// stay unset and `{}` is valid. `"description": null` sets set_description with nullopt.
parsed<task_patch> parse_update(std::string_view body);

/// Validates the optional body of `PATCH .../complete`.
///
/// An empty or whitespace-only body, `null`, `{}` or an object without `completed` yield an
/// engaged value holding nullopt (flip); `{"completed": b}` yields b (set).
parsed<std::optional<bool>> parse_complete(std::string_view body);

/// Validates the query string of `GET /api/tasks` (the raw text after '?', may be empty).
///
/// Reads status, sort, limit and offset; percent-decodes with '+' as space; ignores unknown
/// parameters; a repeated parameter's last value wins.
parsed<task_query> parse_query(std::string_view query_string);

/// Validates a raw `{id}` path segment: ASCII digits only, value in 1..INT64_MAX.
parsed<int64_t> parse_task_id(std::string_view segment);

/// Returns {"detail":"<msg>"} with proper JSON string escaping.
std::string detail_body(std::string_view msg);

} // namespace todo::http
