#pragma once
// Maps a request's method and path to one of the API's actions. Pure code: no Beast, no CAF.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace todo::http {

/// What a request asks the service to do.
enum class action : uint8_t {
  list, create, fetch, update, remove, complete, health, ready,
  openapi,   // GET /openapi.json
  docs,      // GET /docs, the Swagger UI page
  docs_asset, // GET /docs/{name}: one of its files (`id` is the name)
  metrics,    // GET /metrics
  events      // GET /api/tasks/events: the user's live updates (Server-Sent Events)
};

/// The outcome of routing one request line.
struct route_result {
  enum class outcome : uint8_t { ok, not_found, method_not_allowed } result = outcome::not_found;
  action act = action::health;
  bool api = false;        // path is under /api/ (needs auth, gets CORS)
  bool scoped = false;     // the /api/{user_id}/tasks... family
  std::string user_id;     // percent-decoded {user_id} when scoped
  std::string_view id;     // raw {id} segment (validated elsewhere), empty if none
  std::string_view allow;  // e.g. "GET, POST" for 405 (and useful for OPTIONS)
  int8_t known = -1;       // the path's index in known_routes() (ok or 405), else -1
};

/// Routes a method ("GET", ...) and a path (no query string) to an action.
///
/// `id` points into `path`, so `path` must outlive the result. Rules:
/// - methods match case-sensitively (RFC 9110: method names are case-sensitive);
/// - a path whose first segment after `/api/` is exactly `tasks` is always the unscoped
///   family, so `/api/tasks/tasks` is the task with id "tasks" (a 400 later);
/// - an empty segment (`//`) and a trailing slash are 404: `/api/tasks/` is not `/api/tasks`,
///   because silently accepting both would give each resource two URLs (and two cache keys);
/// - `{user_id}` is percent-decoded; a bad escape or an empty result is 404;
/// - a known path with an unknown method is 405 with `allow` set; `allow` is also set for
///   known paths answered `ok`, so a CORS preflight can use it.
route_result route(std::string_view method, std::string_view path);

/// One path the router knows (in OpenAPI's template form, e.g. "/api/tasks/{id}") and the
/// methods it routes there, as in an `Allow` header. The test of the OpenAPI document checks
/// both directions against this list and `route`.
struct known_route {
  std::string_view path;
  std::string_view allow;
};
const std::vector<known_route>& known_routes();

} // namespace todo::http
