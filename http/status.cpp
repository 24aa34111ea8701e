#include "http/status.hpp"

#include "http/json_codec.hpp"

namespace todo::http {

error_status status_of(errc code, const std::string& reason) {
  switch (code) {
    case errc::task_not_found:
      return {404, detail_body("Task not found")};
    case errc::forbidden:
      return {403, detail_body("Forbidden")};
    case errc::unauthorized:
      if (reason.empty() || reason == "Not authenticated")
        return {401, detail_body("Not authenticated"), "Bearer"};
      return {401, detail_body(reason), "Bearer error=\"invalid_token\""};
    case errc::db_unavailable:
      return {503, detail_body("database unavailable"), nullptr, "1"};
    case errc::overloaded:
      return {503, detail_body("service overloaded"), nullptr, "1"};
    case errc::precondition_failed:
      return {412, detail_body("Precondition Failed")};
    case errc::idempotency_mismatch:
      return {422, detail_body("Idempotency-Key was already used with a different request")};
    case errc::idempotency_in_flight:
      return {409, detail_body("A request with this Idempotency-Key is still being processed"),
              nullptr, "1"};
    case errc::invalid_input:
      return {400, detail_body(reason.empty() ? "Bad Request" : reason)};
    case errc::route_not_found:
      return {404, detail_body("Not Found")};
    case errc::method_not_allowed:
      return {405, detail_body("Method Not Allowed")};
    case errc::unsupported_media_type:
      return {415, detail_body("Content-Type must be application/json")};
    case errc::body_too_large:
      return {413, detail_body("Request body too large")};
    case errc::headers_too_large:
      return {431, detail_body("Request Header Fields Too Large")};
    case errc::bad_request:
      return {400, detail_body("Bad Request")};
    case errc::too_many_connections:
      return {503, detail_body("too many connections"), nullptr, "1"};
    case errc::too_many_streams:
      return {503, detail_body("too many event streams"), nullptr, "5"};
    case errc::shutting_down:
      return {503, detail_body("shutting down"), nullptr, "1"};
    case errc::expectation_failed:
      return {417, detail_body("Expectation Failed")};
    case errc::none:
    case errc::internal:
      break;
  }
  return {500, detail_body("Internal Server Error")};
}

} // namespace todo::http
