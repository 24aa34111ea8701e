#include "actors/errc.hpp"

namespace todo {

std::string to_string(errc x) {
  switch (x) {
    case errc::none: return "none";
    case errc::task_not_found: return "task_not_found";
    case errc::forbidden: return "forbidden";
    case errc::invalid_input: return "invalid_input";
    case errc::db_unavailable: return "db_unavailable";
    case errc::overloaded: return "overloaded";
    case errc::unauthorized: return "unauthorized";
    case errc::internal: return "internal";
    case errc::precondition_failed: return "precondition_failed";
    case errc::idempotency_mismatch: return "idempotency_mismatch";
    case errc::idempotency_in_flight: return "idempotency_in_flight";
    case errc::route_not_found: return "route_not_found";
    case errc::method_not_allowed: return "method_not_allowed";
    case errc::unsupported_media_type: return "unsupported_media_type";
    case errc::body_too_large: return "body_too_large";
    case errc::headers_too_large: return "headers_too_large";
    case errc::bad_request: return "bad_request";
    case errc::too_many_connections: return "too_many_connections";
    case errc::expectation_failed: return "expectation_failed";
    case errc::shutting_down: return "shutting_down";
    case errc::too_many_streams: return "too_many_streams";
  }
  return "unknown";
}

} // namespace todo
