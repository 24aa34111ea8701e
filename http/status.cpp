#include "http/status.hpp"

#include "http/json_codec.hpp"

namespace todo::http {

error_response map_error(errc code, const std::string& reason) {
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
    case errc::invalid_input:
      return {400, detail_body(reason.empty() ? "Bad Request" : reason)};
    case errc::none:
    case errc::internal:
      break;
  }
  return {500, detail_body("Internal Server Error")};
}

} // namespace todo::http
