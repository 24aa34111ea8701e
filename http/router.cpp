#include "http/router.hpp"

#include "config/text.hpp"

#include <array>
#include <cstddef>
#include <optional>

namespace todo::http {

namespace {

constexpr std::string_view api_prefix = "/api/";
constexpr std::string_view allow_get = "GET, HEAD";
constexpr std::string_view allow_collection = "GET, HEAD, POST";
constexpr std::string_view allow_item = "GET, HEAD, PUT, PATCH, DELETE";
constexpr std::string_view allow_complete = "PATCH";
constexpr std::string_view allow_events = "GET, HEAD";

// /api/{user_id}/tasks/{id}/complete is the longest route: four segments after /api/.
constexpr std::size_t max_segments = 4;

using text::percent_decode;

/// Returns a result that only says whether the path was under /api/.
route_result not_found(bool api) {
  route_result r;
  r.api = api;
  return r;
}

/// Sets `r` to `ok` with `act` when `method` is `m`; returns whether it matched.
bool accept(route_result& r, std::string_view method, std::string_view m, action act) {
  if (method != m)
    return false;
  r.result = route_result::outcome::ok;
  r.act = act;
  return true;
}

} // namespace

const std::vector<known_route>& known_routes() {
  static const std::vector<known_route> all = {
    {"/health", allow_get},
    {"/ready", allow_get},
    {"/openapi.json", allow_get},
    {"/docs", allow_get},
    {"/docs/{name}", allow_get},
    {"/metrics", allow_get},
    {"/api/tasks", allow_collection},
    {"/api/tasks/{id}", allow_item},
    {"/api/tasks/{id}/complete", allow_complete},
    {"/api/{user_id}/tasks", allow_collection},
    {"/api/{user_id}/tasks/{id}", allow_item},
    {"/api/{user_id}/tasks/{id}/complete", allow_complete},
    {"/api/tasks/events", allow_events},
    {"/api/{user_id}/tasks/events", allow_events},
  };
  return all;
}

route_result route(std::string_view method, std::string_view path) {
  using outcome = route_result::outcome;
  // The service's own pages: GET (and HEAD) only, outside /api/ (no auth, no CORS preflight).
  // Indexes into known_routes().
  std::optional<action> service;
  int8_t known = -1;
  std::string_view asset;
  if (path == "/health")
    service = action::health, known = 0;
  else if (path == "/ready")
    service = action::ready, known = 1;
  else if (path == "/openapi.json")
    service = action::openapi, known = 2;
  else if (path == "/docs")
    service = action::docs, known = 3;
  else if (path.substr(0, 6) == "/docs/" && path.size() > 6 &&
           path.find('/', 6) == std::string_view::npos) {
    service = action::docs_asset, known = 4;
    asset = path.substr(6);
  } else if (path == "/metrics")
    service = action::metrics, known = 5;
  if (service) {
    route_result r;
    r.allow = allow_get;
    r.known = known;
    r.id = asset;
    if (!accept(r, method, "GET", *service))
      r.result = outcome::method_not_allowed;
    return r;
  }
  if (path.substr(0, api_prefix.size()) != api_prefix)
    return not_found(false);
  // Split what follows /api/ into segments; any empty one (from "//" or a trailing "/") is 404.
  std::array<std::string_view, max_segments> segs;
  std::size_t n = 0;
  std::string_view rest = path.substr(api_prefix.size());
  for (;;) {
    auto slash = rest.find('/');
    auto seg = rest.substr(0, slash);
    if (seg.empty() || n == max_segments)
      return not_found(true);
    segs[n++] = seg;
    if (slash == std::string_view::npos)
      break;
    rest.remove_prefix(slash + 1);
  }
  route_result r;
  r.api = true;
  std::size_t first = 0; // index of the "tasks" segment
  if (segs[0] != "tasks") {
    if (n < 2 || segs[1] != "tasks")
      return not_found(true);
    if (!percent_decode(segs[0], r.user_id) || r.user_id.empty())
      return not_found(true);
    r.scoped = true;
    first = 1;
  }
  std::size_t tail = n - first - 1; // segments after "tasks"
  auto family = static_cast<int8_t>(r.scoped ? 9 : 6);
  if (tail == 0) {
    r.allow = allow_collection;
    r.known = family;
    if (!accept(r, method, "GET", action::list) && !accept(r, method, "POST", action::create))
      r.result = outcome::method_not_allowed;
    return r;
  }
  if (tail == 1 && segs[first + 1] == "events") {
    // Live updates (Server-Sent Events): "events" is never a task id (ids are numbers).
    r.allow = allow_events;
    r.known = static_cast<int8_t>(r.scoped ? 13 : 12);
    if (!accept(r, method, "GET", action::events))
      r.result = outcome::method_not_allowed;
    return r;
  }
  r.id = segs[first + 1];
  if (tail == 1) {
    r.allow = allow_item;
    r.known = static_cast<int8_t>(family + 1);
    if (!accept(r, method, "GET", action::fetch) && !accept(r, method, "PUT", action::update)
        && !accept(r, method, "PATCH", action::update)
        && !accept(r, method, "DELETE", action::remove))
      r.result = outcome::method_not_allowed;
    return r;
  }
  if (tail == 2 && segs[first + 2] == "complete") {
    r.allow = allow_complete;
    r.known = static_cast<int8_t>(family + 2);
    if (!accept(r, method, "PATCH", action::complete))
      r.result = outcome::method_not_allowed;
    return r;
  }
  return not_found(true);
}

} // namespace todo::http
