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
  idempotency_mismatch,  // an Idempotency-Key reused with another request: 422
  idempotency_in_flight, // an Idempotency-Key whose first request is still running: 409
  // The request itself, found by the HTTP layer before any actor sees it:
  route_not_found,
  method_not_allowed,
  unsupported_media_type,
  body_too_large,
  headers_too_large,
  bad_request, // unreadable HTTP
  too_many_connections,
  too_many_streams, // SSE_MAX_PER_USER or SSE_MAX_STREAMS reached
  expectation_failed, // an Expect other than 100-continue
  shutting_down,      // SIGTERM received: /ready answers 503 during DRAIN_DELAY_MS
};

std::string to_string(errc x);

} // namespace todo
