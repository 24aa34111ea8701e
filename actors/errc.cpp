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
  }
  return "unknown";
}

} // namespace todo
