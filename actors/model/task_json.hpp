#pragma once
// The JSON form of a task (API.md §3), shared by the HTTP layer and the TaskManager's cache.
// Pure code: no CAF, Beast or Boost.JSON.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "actors/model/model.hpp"

namespace todo {

/// Appends the Task JSON: timestamps RFC 3339 UTC with 6 fractional digits and Z, a null
/// description when there is none, no user_id.
void write_task(std::string& out, const task& t);

/// Appends a JSON array of tasks.
void write_tasks(std::string& out, const std::vector<task>& ts);

/// Formats microseconds since epoch as 2026-11-24T03:10:00.123456Z.
std::string format_timestamp(int64_t micros);

/// Returns a strong ETag for a body: FNV-1a 64 of its bytes, quoted.
std::string etag_of(std::string_view body);

/// Returns whether an If-None-Match or If-Match value lists `tag` or is "*". If-None-Match
/// uses the weak comparison, If-Match (`strong`) the strong one: a W/ tag never matches
/// (RFC 9110 §8.8.3.2, §13.1.1).
bool etag_listed(std::string_view header, std::string_view tag, bool strong = false);

} // namespace todo
