#include "http/handler.hpp"
#include "http/router.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using todo::http::action;
using todo::http::route;
using todo::http::route_result;
using outcome = route_result::outcome;

namespace {

struct ok_case {
  std::string method;
  std::string path;
  action act;
  bool api;
  bool scoped;
  std::string user_id;
  std::string id;
  std::string allow;
};

struct reject_case {
  std::string method;
  std::string path;
  outcome result;
  bool api;
  std::string allow;
};

} // namespace

TEST_CASE("every route and method reaches its action in both families") {
  const std::string coll = "GET, HEAD, POST";
  const std::string item = "GET, HEAD, PUT, PATCH, DELETE";
  const std::vector<ok_case> cases = {
    {"GET", "/health", action::health, false, false, "", "", "GET, HEAD"},
    {"GET", "/ready", action::ready, false, false, "", "", "GET, HEAD"},
    {"GET", "/api/tasks", action::list, true, false, "", "", coll},
    {"POST", "/api/tasks", action::create, true, false, "", "", coll},
    {"GET", "/api/tasks/42", action::fetch, true, false, "", "42", item},
    {"PUT", "/api/tasks/42", action::update, true, false, "", "42", item},
    {"PATCH", "/api/tasks/42", action::update, true, false, "", "42", item},
    {"DELETE", "/api/tasks/42", action::remove, true, false, "", "42", item},
    {"PATCH", "/api/tasks/42/complete", action::complete, true, false, "", "42", "PATCH"},
    {"GET", "/api/alice/tasks", action::list, true, true, "alice", "", coll},
    {"POST", "/api/alice/tasks", action::create, true, true, "alice", "", coll},
    {"GET", "/api/alice/tasks/7", action::fetch, true, true, "alice", "7", item},
    {"PUT", "/api/alice/tasks/7", action::update, true, true, "alice", "7", item},
    {"PATCH", "/api/alice/tasks/7", action::update, true, true, "alice", "7", item},
    {"DELETE", "/api/alice/tasks/7", action::remove, true, true, "alice", "7", item},
    {"PATCH", "/api/alice/tasks/7/complete", action::complete, true, true, "alice", "7",
     "PATCH"},
    // The id is passed through raw; parse_task_id rejects it later with a 400.
    {"GET", "/api/tasks/tasks", action::fetch, true, false, "", "tasks", item},
    {"PATCH", "/api/tasks/tasks/complete", action::complete, true, false, "", "tasks", "PATCH"},
    {"GET", "/api/tasks/abc", action::fetch, true, false, "", "abc", item},
    {"GET", "/api/tasks/%31", action::fetch, true, false, "", "%31", item},
    // Percent-decoding of {user_id}; '+' is literal in a path.
    {"GET", "/api/user%40example.com/tasks", action::list, true, true, "user@example.com", "",
     coll},
    {"GET", "/api/a%2Fb/tasks", action::list, true, true, "a/b", "", coll},
    {"GET", "/api/a%2fb/tasks", action::list, true, true, "a/b", "", coll},
    {"GET", "/api/a+b/tasks", action::list, true, true, "a+b", "", coll},
    {"GET", "/api/%E2%9C%93/tasks", action::list, true, true, "\xE2\x9C\x93", "", coll},
    // A user whose id is literally "tasks" only exists in the scoped form when encoded.
    {"GET", "/api/%74asks/tasks", action::list, true, true, "tasks", "", coll},
    {"GET", "/api/tasksfoo/tasks", action::list, true, true, "tasksfoo", "", coll},
  };
  for (const auto& c : cases) {
    CAPTURE(c.method, c.path);
    auto r = route(c.method, c.path);
    CHECK(r.result == outcome::ok);
    CHECK(r.act == c.act);
    CHECK(r.api == c.api);
    CHECK(r.scoped == c.scoped);
    CHECK(r.user_id == c.user_id);
    CHECK(std::string(r.id) == c.id);
    CHECK(std::string(r.allow) == c.allow);
  }
}

TEST_CASE("unknown paths are 404 and wrong methods on known paths are 405 with Allow") {
  const std::string coll = "GET, HEAD, POST";
  const std::string item = "GET, HEAD, PUT, PATCH, DELETE";
  const std::vector<reject_case> cases = {
    // 405: known path, method not in Allow (methods are case-sensitive).
    {"POST", "/health", outcome::method_not_allowed, false, "GET, HEAD"},
    {"HEAD", "/ready", outcome::method_not_allowed, false, "GET, HEAD"},
    {"DELETE", "/api/tasks", outcome::method_not_allowed, true, coll},
    {"PUT", "/api/tasks", outcome::method_not_allowed, true, coll},
    {"PATCH", "/api/tasks", outcome::method_not_allowed, true, coll},
    {"OPTIONS", "/api/tasks", outcome::method_not_allowed, true, coll},
    {"get", "/api/tasks", outcome::method_not_allowed, true, coll},
    {"POST", "/api/tasks/1", outcome::method_not_allowed, true, item},
    {"OPTIONS", "/api/tasks/1", outcome::method_not_allowed, true, item},
    {"patch", "/api/tasks/1", outcome::method_not_allowed, true, item},
    {"GET", "/api/tasks/1/complete", outcome::method_not_allowed, true, "PATCH"},
    {"PUT", "/api/tasks/1/complete", outcome::method_not_allowed, true, "PATCH"},
    {"POST", "/api/tasks/1/complete", outcome::method_not_allowed, true, "PATCH"},
    {"DELETE", "/api/bob/tasks", outcome::method_not_allowed, true, coll},
    {"POST", "/api/bob/tasks/1", outcome::method_not_allowed, true, item},
    {"GET", "/api/bob/tasks/1/complete", outcome::method_not_allowed, true, "PATCH"},
    {"GET", "/api/tasks/tasks/complete", outcome::method_not_allowed, true, "PATCH"},
    // 404 outside /api/.
    {"GET", "/", outcome::not_found, false, ""},
    {"GET", "", outcome::not_found, false, ""},
    {"GET", "/api", outcome::not_found, false, ""},
    {"GET", "/healthz", outcome::not_found, false, ""},
    {"GET", "/health/", outcome::not_found, false, ""},
    {"GET", "/tasks", outcome::not_found, false, ""},
    {"GET", "/API/tasks", outcome::not_found, false, ""},
    // 404 under /api/.
    {"GET", "/api/", outcome::not_found, true, ""},
    {"GET", "/api/task", outcome::not_found, true, ""},
    {"GET", "/api/Tasks", outcome::not_found, true, ""},
    {"GET", "/api/bob", outcome::not_found, true, ""},
    {"GET", "/api/bob/", outcome::not_found, true, ""},
    {"GET", "/api/bob/todo", outcome::not_found, true, ""},
    {"GET", "/api/tasks/1/done", outcome::not_found, true, ""},
    {"PATCH", "/api/tasks/1/complete/x", outcome::not_found, true, ""},
    {"PATCH", "/api/bob/tasks/1/complete/x", outcome::not_found, true, ""},
    {"GET", "/api/bob/tasks/1/done", outcome::not_found, true, ""},
    {"GET", "/api/a/b/tasks", outcome::not_found, true, ""},
    // Trailing slash: one URL per resource, so no redirect or silent acceptance.
    {"GET", "/api/tasks/", outcome::not_found, true, ""},
    {"GET", "/api/tasks/1/", outcome::not_found, true, ""},
    {"PATCH", "/api/tasks/1/complete/", outcome::not_found, true, ""},
    {"GET", "/api/bob/tasks/", outcome::not_found, true, ""},
    // Empty segments.
    {"GET", "/api//tasks", outcome::not_found, true, ""},
    {"GET", "/api/tasks//1", outcome::not_found, true, ""},
    {"GET", "//api/tasks", outcome::not_found, false, ""},
    {"GET", "/api/bob//tasks", outcome::not_found, true, ""},
    // {user_id} that does not decode to something non-empty.
    {"GET", "/api/%/tasks", outcome::not_found, true, ""},
    {"GET", "/api/%4/tasks", outcome::not_found, true, ""},
    {"GET", "/api/%zz/tasks", outcome::not_found, true, ""},
    {"GET", "/api/a%G1/tasks", outcome::not_found, true, ""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.method, c.path);
    auto r = route(c.method, c.path);
    CHECK(r.result == c.result);
    CHECK(r.api == c.api);
    CHECK(std::string(r.allow) == c.allow);
    if (c.result == outcome::not_found) {
      CHECK_FALSE(r.scoped);
      CHECK(r.user_id.empty());
      CHECK(r.id.empty());
    }
  }
}

TEST_CASE("a scoped 405 still names the decoded user and the raw id") {
  auto r = route("POST", "/api/a%20b/tasks/9");
  CHECK(r.result == outcome::method_not_allowed);
  CHECK(r.scoped);
  CHECK(r.user_id == "a b");
  CHECK(r.id == "9");
}

TEST_CASE("the id view points into the routed path") {
  std::string path = "/api/tasks/123/complete";
  auto r = route("PATCH", path);
  REQUIRE(r.result == outcome::ok);
  CHECK(r.id.data() == path.data() + 11);
  CHECK(r.id.size() == 3);
}

TEST_CASE("a percent-encoded NUL or slash in a user id decodes without ending the segment") {
  auto r = route("GET", "/api/a%00b/tasks");
  REQUIRE(r.result == outcome::ok);
  CHECK(r.user_id == std::string("a\0b", 3));
}

TEST_CASE("traceparent: valid W3C values give their trace id, anything else none") {
  using todo::http::traceparent_trace_id;
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  CHECK(traceparent_trace_id("00-" + trace + "-00f067aa0ba902b7-01") == trace);
  CHECK(traceparent_trace_id("00-" + trace + "-00f067aa0ba902b7-00") == trace);
  // A later version may append fields; version 00 may not.
  CHECK(traceparent_trace_id("01-" + trace + "-00f067aa0ba902b7-01-what-ever") == trace);
  CHECK(traceparent_trace_id("00-" + trace + "-00f067aa0ba902b7-01-x").empty());
  CHECK(traceparent_trace_id("ff-" + trace + "-00f067aa0ba902b7-01").empty());
  CHECK(traceparent_trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01").empty());
  CHECK(traceparent_trace_id("00-" + trace + "-0000000000000000-01").empty());
  CHECK(traceparent_trace_id("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").empty());
  CHECK(traceparent_trace_id("00-" + trace + "-00f067aa0ba902b7").empty());
  CHECK(traceparent_trace_id("00_" + trace + "_00f067aa0ba902b7_01").empty());
  CHECK(traceparent_trace_id("").empty());
  CHECK(traceparent_trace_id("00-" + trace + "-00f067aa0ba902bg-01").empty());
}
