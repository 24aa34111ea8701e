#pragma once
// The service's error codes. CAF-free so that http/ can map them without CAF.

#include <cstdint>
#include <string>

namespace todo {

/// One enum for the whole service; http/status.cpp turns each into a status code.
enum class errc : uint8_t {
  none = 0,
  task_not_found,
  forbidden,
  invalid_input,
  db_unavailable,
  overloaded,
  unauthorized,
  internal,
  precondition_failed,
};

std::string to_string(errc x);

} // namespace todo
