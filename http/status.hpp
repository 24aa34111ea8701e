#pragma once

#include <string>

#include "actors/errc.hpp"

namespace todo::http {

/// The HTTP form of a service error.
struct error_status {
  unsigned status = 500;
  std::string body;              // {"detail": ...}
  const char* www_authenticate = nullptr; // set for 401
  const char* retry_after = nullptr;      // set for 503 and 409
};

/// Chooses the status and body for an error code; the only place that does.
error_status status_of(errc code, const std::string& reason);

} // namespace todo::http
