// Black-box tests of the real server: every route of API.md §2, the rules of §1, §3 and §6.

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>

#include "actors/tokens/jwt.hpp"
#include "tests/http/http_client.hpp"

using namespace todo::test;
namespace json = boost::json;

namespace {

struct api {
  server_process& server = shared_server();
  http_client client{server.port()};
  std::string user = fresh_user();
  std::string token = token_for(user);

  header_list auth(header_list extra = {}) const {
    extra.emplace_back("Authorization", "Bearer " + token);
    return extra;
  }
  header_list auth_json(header_list extra = {}) const {
    extra.emplace_back("Content-Type", "application/json");
    return auth(std::move(extra));
  }
  http_response get(const std::string& target) {
    return client.request("GET", target, auth());
  }
  http_response send(const std::string& method, const std::string& target,
                     const std::string& body) {
    return client.request(method, target, auth_json(), body);
  }
  json::object create(const std::string& title) {
    auto r = send("POST", "/api/tasks", json::serialize(json::object{{"title", title}}));
    REQUIRE(r.status == 201);
    return json::parse(r.body).as_object();
  }
};

json::value body_of(const http_response& r) {
  return json::parse(r.body);
}

// Returns the "type" and "loc" of the first validation error in a 400 body.
std::pair<std::string, std::string> first_error(const http_response& r) {
  auto v = body_of(r);
  const auto& e = v.at("detail").as_array().at(0).as_object();
  return {json::value_to<std::string>(e.at("type")), json::serialize(e.at("loc"))};
}

} // namespace

TEST_CASE_METHOD(api, "health and ready answer without a token") {
  auto h = client.request("GET", "/health");
  CHECK(h.status == 200);
  CHECK(body_of(h) == json::parse(R"({"status":"ok"})"));
  CHECK(h.header("content-type") == "application/json");
  auto r = client.request("GET", "/ready");
  CHECK(r.status == 200);
}

TEST_CASE_METHOD(api, "POST /api/tasks creates a task and answers 201 with Location") {
  auto r = send("POST", "/api/tasks", R"({"title":"Buy milk","description":"2 litres"})");
  REQUIRE(r.status == 201);
  auto t = body_of(r).as_object();
  CHECK(t.at("title") == "Buy milk");
  CHECK(t.at("description") == "2 litres");
  CHECK(t.at("completed") == false);
  CHECK(t.at("id").is_int64());
  CHECK_FALSE(t.contains("user_id"));
  auto created = json::value_to<std::string>(t.at("created_at"));
  CHECK(created.size() == 27); // 2026-11-24T03:10:00.123456Z
  CHECK(created.back() == 'Z');
  CHECK(t.at("created_at") == t.at("updated_at"));
  CHECK(r.header("location") == "/api/tasks/" + std::to_string(t.at("id").as_int64()));
  // description is optional
  auto bare = send("POST", "/api/tasks", R"({"title":"No description"})");
  REQUIRE(bare.status == 201);
  CHECK(body_of(bare).at("description").is_null());
}

TEST_CASE_METHOD(api, "GET /api/tasks/{id} returns the task") {
  auto t = create("read me");
  auto id = std::to_string(t.at("id").as_int64());
  auto r = get("/api/tasks/" + id);
  REQUIRE(r.status == 200);
  CHECK(body_of(r) == json::value(t));
}

TEST_CASE_METHOD(api, "PUT and PATCH update only the fields given") {
  auto t = create("original");
  auto id = std::to_string(t.at("id").as_int64());
  auto r = send("PUT", "/api/tasks/" + id, R"({"description":"added"})");
  REQUIRE(r.status == 200);
  CHECK(body_of(r).at("title") == "original");
  CHECK(body_of(r).at("description") == "added");
  auto p = send("PATCH", "/api/tasks/" + id, R"({"title":"renamed","completed":true})");
  REQUIRE(p.status == 200);
  CHECK(body_of(p).at("title") == "renamed");
  CHECK(body_of(p).at("description") == "added");
  CHECK(body_of(p).at("completed") == true);
  auto n = send("PATCH", "/api/tasks/" + id, R"({"description":null})");
  REQUIRE(n.status == 200);
  CHECK(body_of(n).at("description").is_null());
  auto e = send("PUT", "/api/tasks/" + id, "{}");
  REQUIRE(e.status == 200);
  CHECK(body_of(e) == body_of(n)); // an empty object changes nothing
}

TEST_CASE_METHOD(api, "PATCH /complete toggles, or sets when given a body") {
  auto t = create("toggle me");
  auto path = "/api/tasks/" + std::to_string(t.at("id").as_int64()) + "/complete";
  auto r1 = client.request("PATCH", path, auth());
  REQUIRE(r1.status == 200);
  CHECK(body_of(r1).at("completed") == true);
  auto r2 = client.request("PATCH", path, auth());
  CHECK(body_of(r2).at("completed") == false);
  auto s1 = send("PATCH", path, R"({"completed":true})");
  CHECK(body_of(s1).at("completed") == true);
  auto s2 = send("PATCH", path, R"({"completed":true})");
  CHECK(body_of(s2).at("completed") == true); // idempotent
  auto bad = send("PATCH", path, R"({"completed":"true"})");
  CHECK(bad.status == 400);
}

TEST_CASE_METHOD(api, "DELETE answers 204 with no body, then the task is gone") {
  auto t = create("delete me");
  auto path = "/api/tasks/" + std::to_string(t.at("id").as_int64());
  auto d = client.request("DELETE", path, auth());
  CHECK(d.status == 204);
  CHECK(d.body.empty());
  CHECK_FALSE(d.has("content-length"));
  auto g = get(path);
  CHECK(g.status == 404);
  CHECK(body_of(g) == json::parse(R"({"detail":"Task not found"})"));
  CHECK(client.request("DELETE", path, auth()).status == 404);
}

TEST_CASE_METHOD(api, "GET /api/tasks filters, sorts, pages and counts") {
  for (auto title : {"b", "a", "c"})
    create(title);
  auto first = get("/api/tasks");
  REQUIRE(first.status == 200);
  auto arr = body_of(first).as_array();
  REQUIRE(arr.size() == 3);
  CHECK(first.header("x-total-count") == "3");
  CHECK(arr[0].at("title") == "c"); // default -created
  auto id_a = std::to_string(arr[1].at("id").as_int64());
  REQUIRE(client.request("PATCH", "/api/tasks/" + id_a + "/complete", auth()).status == 200);

  auto by_title = body_of(get("/api/tasks?sort=title")).as_array();
  CHECK(by_title[0].at("title") == "a");
  CHECK(by_title[2].at("title") == "c");
  auto desc = body_of(get("/api/tasks?sort=-title")).as_array();
  CHECK(desc[0].at("title") == "c");
  auto asc = body_of(get("/api/tasks?sort=created")).as_array();
  CHECK(asc[0].at("title") == "b");
  auto done = get("/api/tasks?status=completed");
  CHECK(done.header("x-total-count") == "1");
  CHECK(body_of(done).as_array().at(0).at("title") == "a");
  auto pending = get("/api/tasks?status=pending");
  CHECK(pending.header("x-total-count") == "2");
  auto page = get("/api/tasks?sort=title&limit=1&offset=1");
  CHECK(page.header("x-total-count") == "3");
  REQUIRE(body_of(page).as_array().size() == 1);
  CHECK(body_of(page).as_array().at(0).at("title") == "b");
  auto updated = get("/api/tasks?sort=-updated");
  CHECK(body_of(updated).as_array().at(0).at("title") == "a");
  for (auto q : {"status=done", "sort=name", "limit=0", "limit=1001", "offset=-1", "limit=x"})
    CHECK(get(std::string{"/api/tasks?"} + q).status == 400);
}

TEST_CASE_METHOD(api, "the /api/{user_id}/tasks family works for the token's own user") {
  auto base = "/api/" + user + "/tasks";
  auto c = client.request("POST", base, auth_json(), R"({"title":"scoped"})");
  REQUIRE(c.status == 201);
  auto id = std::to_string(body_of(c).at("id").as_int64());
  CHECK(c.header("location") == base + "/" + id);
  CHECK(client.request("GET", base, auth()).status == 200);
  CHECK(client.request("GET", base + "/" + id, auth()).status == 200);
  CHECK(client.request("PUT", base + "/" + id, auth_json(), R"({"title":"x"})").status == 200);
  CHECK(client.request("PATCH", base + "/" + id, auth_json(), R"({"title":"y"})").status == 200);
  CHECK(client.request("PATCH", base + "/" + id + "/complete", auth()).status == 200);
  CHECK(client.request("DELETE", base + "/" + id, auth()).status == 204);
  // the same task is visible through the other family
  auto t = create("both");
  auto tid = std::to_string(t.at("id").as_int64());
  CHECK(client.request("GET", base + "/" + tid, auth()).status == 200);
}

TEST_CASE_METHOD(api, "another user's id in the path is 403 on every scoped route") {
  auto other = "/api/" + fresh_user("other") + "/tasks";
  auto forbidden = json::parse(R"({"detail":"Forbidden"})");
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
         {"GET", other}, {"POST", other}, {"GET", other + "/1"}, {"PUT", other + "/1"},
         {"PATCH", other + "/1"}, {"DELETE", other + "/1"}, {"PATCH", other + "/1/complete"}}) {
    auto r = client.request(method, path, auth_json(), method == "GET" || method == "DELETE"
                                                         ? ""
                                                         : R"({"title":"x"})");
    INFO(method << " " << path);
    CHECK(r.status == 403);
    CHECK(body_of(r) == forbidden);
  }
}

TEST_CASE_METHOD(api, "two users never see or touch each other's tasks") {
  auto mine = create("mine");
  auto id = std::to_string(mine.at("id").as_int64());
  api bob;
  auto not_found = json::parse(R"({"detail":"Task not found"})");
  for (auto [method, path, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
         {"GET", "/api/tasks/" + id, ""},
         {"PUT", "/api/tasks/" + id, R"({"title":"stolen"})"},
         {"PATCH", "/api/tasks/" + id, R"({"title":"stolen"})"},
         {"PATCH", "/api/tasks/" + id + "/complete", ""},
         {"DELETE", "/api/tasks/" + id, ""},
         {"GET", "/api/" + bob.user + "/tasks/" + id, ""},
         {"DELETE", "/api/" + bob.user + "/tasks/" + id, ""}}) {
    auto r = bob.client.request(method, path, body.empty() ? bob.auth() : bob.auth_json(), body);
    INFO(method << " " << path);
    CHECK(r.status == 404);
    CHECK(body_of(r) == not_found);
  }
  auto bobs = bob.get("/api/tasks");
  CHECK(bobs.header("x-total-count") == "0");
  CHECK(body_of(bobs).as_array().empty());
  auto still = get("/api/tasks/" + id);
  REQUIRE(still.status == 200);
  CHECK(body_of(still) == json::value(mine)); // untouched
}

TEST_CASE_METHOD(api, "requests without a valid token get 401 with WWW-Authenticate") {
  auto none = client.request("GET", "/api/tasks");
  CHECK(none.status == 401);
  CHECK(none.header("www-authenticate") == "Bearer");
  CHECK(body_of(none) == json::parse(R"({"detail":"Not authenticated"})"));
  auto basic = client.request("GET", "/api/tasks", {{"Authorization", "Basic abc"}});
  CHECK(basic.status == 401);
  auto lower = client.request("GET", "/api/tasks", {{"Authorization", "bearer " + token}});
  CHECK(lower.status == 200); // the scheme name is case-insensitive
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
  std::vector<std::string> bad{
    "garbage",
    todo::jwt::sign_hs256("wrong-secret", R"({"sub":"x","exp":)" + std::to_string(now + 60) + "}"),
    todo::jwt::sign_hs256(test_secret(), R"({"sub":"x","exp":)" + std::to_string(now - 3600) + "}"),
    todo::jwt::sign_hs256(test_secret(), R"({"sub":"x"})"),
    todo::jwt::sign_hs256(test_secret(), R"({"sub":"","exp":)" + std::to_string(now + 60) + "}"),
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
  };
  for (const auto& t : bad) {
    auto r = client.request("GET", "/api/tasks", {{"Authorization", "Bearer " + t}});
    INFO(t);
    CHECK(r.status == 401);
    CHECK(r.header("www-authenticate") == "Bearer error=\"invalid_token\"");
    auto detail = json::value_to<std::string>(body_of(r).at("detail"));
    CHECK_FALSE(detail.empty());
    CHECK(detail.find(test_secret()) == std::string::npos);
  }
  // 401 comes before validation errors
  auto early = client.request("POST", "/api/tasks", {{"Content-Type", "application/json"}}, "{");
  CHECK(early.status == 401);
}

TEST_CASE_METHOD(api, "every validation rule answers 400 with a FastAPI-shaped body") {
  struct row {
    const char* method;
    const char* body;
    const char* type;
    const char* loc;
  };
  auto t = create("target");
  auto path = "/api/tasks/" + std::to_string(t.at("id").as_int64());
  std::string long201(201, 'x');
  std::string long1001(1001, 'd');
  std::vector<row> rows{
    {"POST", "{}", "missing", R"(["body","title"])"},
    {"POST", R"({"title":""})", "string_too_short", R"(["body","title"])"},
    {"POST", R"({"title":"   "})", "value_error", R"(["body","title"])"},
    {"POST", R"({"title":12})", "string_type", R"(["body","title"])"},
    {"POST", R"({"title":null})", "string_type", R"(["body","title"])"},
    {"POST", R"({"title":"ok","description":5})", "string_type", R"(["body","description"])"},
    {"POST", R"({"title":"a\u0000b"})", "value_error", R"(["body","title"])"},
    {"POST", "[1,2]", "model_attributes_type", R"(["body"])"},
    {"PUT", R"({"completed":"true"})", "bool_type", R"(["body","completed"])"},
    {"PUT", R"({"completed":1})", "bool_type", R"(["body","completed"])"},
    {"PATCH", R"({"title":""})", "string_too_short", R"(["body","title"])"},
  };
  for (const auto& r : rows) {
    auto res = send(r.method, r.method == std::string{"POST"} ? "/api/tasks" : path, r.body);
    INFO(r.method << " " << r.body);
    REQUIRE(res.status == 400);
    auto [type, loc] = first_error(res);
    CHECK(type == r.type);
    CHECK(loc == r.loc);
  }
  auto too_long = send("POST", "/api/tasks", R"({"title":")" + long201 + "\"}");
  CHECK(too_long.status == 400);
  CHECK(first_error(too_long).first == "string_too_long");
  auto desc_long =
    send("POST", "/api/tasks", R"({"title":"x","description":")" + long1001 + "\"}");
  CHECK(first_error(desc_long).first == "string_too_long");
  // 200 code points of 4-byte UTF-8 are fine; limits count code points, not bytes
  std::string emoji;
  for (int i = 0; i < 200; ++i)
    emoji += "\xF0\x9F\x98\x80";
  CHECK(send("POST", "/api/tasks", R"({"title":")" + emoji + "\"}").status == 201);
  // malformed JSON, invalid UTF-8
  CHECK(first_error(send("POST", "/api/tasks", "{\"title\":")).first == "json_invalid");
  CHECK(send("POST", "/api/tasks", "{\"title\":\"\xff\xfe\"}").status == 400);
  // unknown fields are ignored
  CHECK(send("POST", "/api/tasks", R"({"title":"x","user_id":"someone-else","id":7})").status ==
        201);
  // bad ids
  for (auto bad : {"abc", "0", "-1", "99999999999999999999", "1.5"}) {
    auto r = get(std::string{"/api/tasks/"} + bad);
    INFO(bad);
    CHECK(r.status == 400);
    CHECK(first_error(r).second == R"(["path","task_id"])");
  }
}

TEST_CASE_METHOD(api, "bodies that are not JSON are 415, oversized ones 413") {
  auto r = client.request("POST", "/api/tasks", auth({{"Content-Type", "text/plain"}}),
                          R"({"title":"x"})");
  CHECK(r.status == 415);
  auto charset = client.request(
    "POST", "/api/tasks", auth({{"Content-Type", "application/json; charset=utf-8"}}),
    R"({"title":"x"})");
  CHECK(charset.status == 201);
  std::string big = R"({"title":"x","description":")" + std::string(70000, 'a') + "\"}";
  auto huge = client.request("POST", "/api/tasks", auth_json(), big);
  CHECK(huge.status == 413);
}

TEST_CASE_METHOD(api, "unknown paths are 404 and wrong methods 405 with Allow") {
  auto r = client.request("GET", "/nope");
  CHECK(r.status == 404);
  CHECK(body_of(r).at("detail").is_string());
  auto m = client.request("DELETE", "/api/tasks", auth());
  CHECK(m.status == 405);
  CHECK(m.header("allow") == "GET, HEAD, POST, OPTIONS");
  auto c = client.request("GET", "/api/tasks/1/complete", auth());
  CHECK(c.status == 405);
  CHECK(c.header("allow") == "PATCH, OPTIONS");
  auto h = client.request("DELETE", "/health");
  CHECK(h.status == 405);
  CHECK(h.header("allow") == "GET, HEAD"); // no OPTIONS outside /api
}

TEST_CASE_METHOD(api, "request lines or headers over 8 KiB get 431") {
  auto raw = raw_exchange(server.port(), "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                           std::string(9000, 'a') + "\r\n\r\n");
  CHECK(raw.rfind("HTTP/1.1 431", 0) == 0);
  auto line = raw_exchange(server.port(), "GET /" + std::string(9000, 'a') +
                                            " HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(line.rfind("HTTP/1.1 431", 0) == 0);
  auto junk = raw_exchange(server.port(), "NOT HTTP AT ALL\r\n\r\n");
  CHECK(junk.rfind("HTTP/1.1 400", 0) == 0);
}

TEST_CASE_METHOD(api, "pipelined requests are answered in order on one connection") {
  std::string reqs;
  for (int i = 0; i < 5; ++i) {
    reqs += "GET /api/tasks/" + std::to_string(1000000000 + i) + " HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer " + token + "\r\nX-Request-Id: r" + std::to_string(i) +
            "\r\n\r\n";
    reqs += "GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: h" + std::to_string(i) +
            "\r\n\r\n";
  }
  reqs += "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  auto raw = raw_exchange(server.port(), reqs, 5000);
  size_t pos = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = raw.find("X-Request-Id: r" + std::to_string(i), pos);
    REQUIRE(r != std::string::npos);
    auto h = raw.find("X-Request-Id: h" + std::to_string(i), r);
    REQUIRE(h != std::string::npos);
    pos = h;
  }
  CHECK(raw.find("404 Not Found") != std::string::npos);
}

TEST_CASE_METHOD(api, "CORS: preflight and responses for allowed origins only") {
  auto pre = client.request("OPTIONS", "/api/tasks",
                            {{"Origin", "http://localhost:3000"},
                             {"Access-Control-Request-Method", "POST"},
                             {"Access-Control-Request-Headers", "authorization,content-type"}});
  CHECK(pre.status == 204);
  CHECK(pre.header("access-control-allow-origin") == "http://localhost:3000");
  CHECK(pre.header("access-control-allow-credentials") == "true");
  CHECK(pre.header("access-control-allow-methods").find("PATCH") != std::string::npos);
  auto allowed_headers = pre.header("access-control-allow-headers");
  for (auto h : {"Authorization", "Content-Type", "Idempotency-Key", "If-Match", "If-None-Match"})
    CHECK(allowed_headers.find(h) != std::string::npos);
  CHECK(pre.has("access-control-max-age"));
  CHECK(pre.header("vary").find("Origin") != std::string::npos);
  auto actual = client.request("GET", "/api/tasks", auth({{"Origin", "http://localhost:3000"}}));
  CHECK(actual.header("access-control-allow-origin") == "http://localhost:3000");
  CHECK(actual.header("access-control-expose-headers").find("X-Total-Count") !=
        std::string::npos);
  auto evil = client.request("OPTIONS", "/api/tasks",
                             {{"Origin", "http://evil.example"},
                              {"Access-Control-Request-Method", "POST"}});
  for (const auto& [name, value] : evil.headers)
    CHECK(name.rfind("access-control-", 0) != 0);
  auto evil_get = client.request("GET", "/api/tasks", auth({{"Origin", "http://evil.example"}}));
  for (const auto& [name, value] : evil_get.headers)
    CHECK(name.rfind("access-control-", 0) != 0);
}

TEST_CASE_METHOD(api, "GETs carry an ETag and If-None-Match answers 304 until the data changes") {
  auto t = create("etag me");
  auto path = "/api/tasks/" + std::to_string(t.at("id").as_int64());
  auto first = get(path);
  REQUIRE(first.status == 200);
  auto tag = first.header("etag");
  REQUIRE(tag.size() > 2);
  CHECK(tag.front() == '"');
  auto again = client.request("GET", path, auth({{"If-None-Match", tag}}));
  CHECK(again.status == 304);
  CHECK(again.body.empty());
  CHECK(again.header("etag") == tag);
  auto weak = client.request("GET", path, auth({{"If-None-Match", "\"x\", W/" + tag}}));
  CHECK(weak.status == 304);
  auto list = get("/api/tasks");
  auto list_tag = list.header("etag");
  REQUIRE_FALSE(list_tag.empty());
  auto list_again = client.request("GET", "/api/tasks", auth({{"If-None-Match", list_tag}}));
  CHECK(list_again.status == 304);
  CHECK(list_again.header("x-total-count") == list.header("x-total-count"));
  REQUIRE(client.request("PATCH", path + "/complete", auth()).status == 200);
  auto changed = client.request("GET", path, auth({{"If-None-Match", tag}}));
  CHECK(changed.status == 200);
  CHECK(changed.header("etag") != tag);
  CHECK(client.request("GET", "/api/tasks", auth({{"If-None-Match", list_tag}})).status == 200);
  auto other = client.request("GET", path, auth({{"If-None-Match", "\"something-else\""}}));
  CHECK(other.status == 200);
}

TEST_CASE_METHOD(api, "If-Match on PUT, PATCH and DELETE gives 412 when the task changed") {
  auto t = create("guarded");
  auto path = "/api/tasks/" + std::to_string(t.at("id").as_int64());
  auto tag = get(path).header("etag");
  REQUIRE_FALSE(tag.empty());
  auto ok = client.request("PUT", path, auth_json({{"If-Match", tag}}), R"({"title":"v2"})");
  REQUIRE(ok.status == 200);
  CHECK(body_of(ok).at("title") == "v2");
  // The tag is stale now: every conditional mutation is refused and changes nothing.
  auto stale_put = client.request("PATCH", path, auth_json({{"If-Match", tag}}),
                                  R"({"title":"v3"})");
  CHECK(stale_put.status == 412);
  CHECK(body_of(stale_put) == json::parse(R"({"detail":"Precondition Failed"})"));
  CHECK(client.request("PATCH", path + "/complete", auth({{"If-Match", tag}})).status == 412);
  CHECK(client.request("DELETE", path, auth({{"If-Match", tag}})).status == 412);
  auto now = get(path);
  CHECK(body_of(now).at("title") == "v2");
  CHECK(body_of(now).at("completed") == false);
  // The current tag (or *) passes.
  auto fresh = now.header("etag");
  CHECK(client.request("PATCH", path + "/complete", auth({{"If-Match", fresh}})).status == 200);
  CHECK(client.request("DELETE", path, auth({{"If-Match", "*"}})).status == 204);
  CHECK(client.request("DELETE", path, auth({{"If-Match", "*"}})).status == 404);
}

TEST_CASE_METHOD(api, "/openapi.json serves the committed OpenAPI document, with an ETag") {
  auto r = client.request("GET", "/openapi.json");
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "application/json");
  auto doc = json::parse(r.body).as_object();
  CHECK(doc.at("openapi").as_string() == "3.1.0");
  CHECK(doc.at("paths").as_object().contains("/api/tasks/{id}/complete"));
  CHECK(doc.at("paths").as_object().contains("/api/{user_id}/tasks"));
  REQUIRE(r.has("etag"));
  auto again = client.request("GET", "/openapi.json", {{"If-None-Match", r.header("etag")}});
  CHECK(again.status == 304);
  CHECK(again.body.empty());
  auto head = client.request("HEAD", "/openapi.json");
  CHECK(head.status == 200);
  CHECK(head.header("content-length") == std::to_string(r.body.size()));
  CHECK(client.request("POST", "/openapi.json", {{"Content-Type", "application/json"}}, "{}")
          .status == 405);
}

TEST_CASE_METHOD(api, "/docs is Swagger UI on /openapi.json with its assets served locally") {
  auto page = client.request("GET", "/docs");
  REQUIRE(page.status == 200);
  CHECK(page.header("content-type") == "text/html; charset=utf-8");
  // The build installs swagger-ui-dist beside the binary; no CDN.
  CHECK(page.body.find("/docs/swagger-ui-bundle.js") != std::string::npos);
  CHECK(page.body.find("url: \"/openapi.json\"") != std::string::npos);
  CHECK(page.body.find("https://") == std::string::npos);
  auto js = client.request("GET", "/docs/swagger-ui-bundle.js");
  REQUIRE(js.status == 200);
  CHECK(js.header("content-type") == "text/javascript; charset=utf-8");
  CHECK(js.body.size() > 100000);
  CHECK(js.body.find("SwaggerUIBundle") != std::string::npos);
  auto css = client.request("GET", "/docs/swagger-ui.css");
  CHECK(css.status == 200);
  CHECK(css.header("content-type") == "text/css; charset=utf-8");
  auto cached = client.request("GET", "/docs/swagger-ui.css", {{"If-None-Match", css.header("etag")}});
  CHECK(cached.status == 304);
  CHECK(client.request("GET", "/docs/favicon-32x32.png").header("content-type") == "image/png");
  // Only the page's own files: nothing else of the install directory, no way out of it.
  CHECK(client.request("GET", "/docs/package.json").status == 404);
  CHECK(client.request("GET", "/docs/..%2Fpackage.json").status == 404);
  CHECK(client.request("GET", "/docs/../openapi.json").status == 404);
  CHECK(client.request("GET", "/docs/").status == 404);
}

TEST_CASE("/docs without Swagger UI's files says how to get them") {
  server_process srv{{{"DOCS_DIR", "/nonexistent-docs-dir"}}};
  srv.start();
  http_client c{srv.port()};
  auto page = c.request("GET", "/docs");
  REQUIRE(page.status == 200);
  CHECK(page.header("content-type") == "text/html; charset=utf-8");
  CHECK(page.body.find("not installed") != std::string::npos);
  CHECK(page.body.find("swagger-ui-dist") != std::string::npos);
  CHECK(page.body.find("/openapi.json") != std::string::npos);
  CHECK(c.request("GET", "/docs/swagger-ui.css").status == 404);
  CHECK(c.request("GET", "/openapi.json").status == 200);
}

namespace {

/// The value of one sample line of a Prometheus exposition (`name{labels}`), or -1.
double sample(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos)
    return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

/// Runs `promtool check metrics` on `text`; returns its exit status and output.
std::pair<int, std::string> promtool_check(const std::string& text) {
  char path[] = "/tmp/todo-metrics-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  ::close(fd);
  std::string cmd = std::string{"promtool check metrics < "} + path + " 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[512];
  while (auto n = std::fread(buf, 1, sizeof buf, p))
    out.append(buf, n);
  int status = ::pclose(p);
  ::unlink(path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

} // namespace

TEST_CASE("/metrics counts what was sent, by route template, and promtool accepts it") {
  server_process srv; // its own process: the counts below are exactly this test's requests
  srv.start();
  http_client c{srv.port()};
  auto user = fresh_user("metrics");
  header_list auth{{"Authorization", "Bearer " + token_for(user)},
                   {"Content-Type", "application/json"}};
  std::vector<long long> ids;
  for (int i = 0; i < 3; ++i) {
    auto r = c.request("POST", "/api/tasks", auth, R"({"title":"m"})");
    REQUIRE(r.status == 201);
    ids.push_back(json::parse(r.body).at("id").as_int64());
  }
  for (auto id : ids)
    CHECK(c.request("GET", "/api/tasks/" + std::to_string(id), auth).status == 200);
  CHECK(c.request("PATCH", "/api/" + user + "/tasks/" + std::to_string(ids[0]) + "/complete", auth)
          .status == 200);
  CHECK(c.request("GET", "/api/tasks").status == 401);                                 // missing
  CHECK(c.request("GET", "/api/tasks", {{"Authorization", "Bearer x.y"}}).status == 401); // malformed
  CHECK(c.request("GET", "/nowhere/at/all").status == 404);
  CHECK(c.request("DELETE", "/health").status == 405);

  auto m = c.request("GET", "/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  const auto& t = m.body;
  CHECK(sample(t, R"(http_requests_total{method="POST",route="/api/tasks",status="201"})") == 3);
  CHECK(sample(t, R"(http_requests_total{method="GET",route="/api/tasks/{id}",status="200"})") == 3);
  CHECK(sample(t, R"(http_requests_total{method="PATCH",route="/api/{user_id}/tasks/{id}/complete",status="200"})") == 1);
  CHECK(sample(t, R"(http_requests_total{method="GET",route="/api/tasks",status="401"})") == 2);
  CHECK(sample(t, R"(http_requests_total{method="GET",route="unmatched",status="404"})") == 1);
  CHECK(sample(t, R"(http_requests_total{method="DELETE",route="/health",status="405"})") == 1);
  // Route labels are templates: no raw id or user id ever becomes a label.
  CHECK(t.find("route=\"/api/tasks/" + std::to_string(ids[0])) == std::string::npos);
  CHECK(t.find(user) == std::string::npos);
  CHECK(sample(t, R"(http_request_duration_seconds_count{route="/api/tasks"})") == 5);
  CHECK(sample(t, R"(todo_auth_failures_total{reason="missing"})") == 1);
  CHECK(sample(t, R"(todo_auth_failures_total{reason="malformed"})") == 1);
  CHECK(sample(t, "todo_task_managers") == 1);
  CHECK(sample(t, "todo_cached_tasks") == 3); // the GETs loaded the user's cache
  CHECK(sample(t, "todo_cache_bytes") > 0);
  CHECK(sample(t, "todo_db_commit_statements_count") == 4); // 3 creates, 1 toggle
  // Every request with a token asks a courier's cache (each courier has its own: the first
  // request through each is a miss): 3 creates, 3 gets, 1 toggle, 1 malformed token.
  auto hits = sample(t, R"(todo_token_cache_requests_total{cache="courier",result="hit"})");
  auto misses = sample(t, R"(todo_token_cache_requests_total{cache="courier",result="miss"})");
  CHECK(hits + misses == 8);
  CHECK(hits >= 1);
  CHECK(sample(t, R"(todo_db_workers{state="idle"})") + sample(t, R"(todo_db_workers{state="busy"})") == 2);
  CHECK(sample(t, R"(todo_queue_depth{queue="db"})") == 0);
  CHECK(sample(t, "http_open_connections") >= 1);
  CHECK(sample(t, "process_resident_memory_bytes") > 1e6);
  CHECK(sample(t, "process_open_fds") > 3);
  CHECK(sample(t, "process_start_time_seconds") > 1.7e9);
  CHECK(t.find("todo_api_build_info{version=\"1.0.0\",commit=\"") != std::string::npos);

  auto [code, out] = promtool_check(t);
  INFO(out);
  CHECK(code == 0);
}

TEST_CASE("METRICS=false: /metrics is 404 and nothing is counted") {
  server_process srv{{{"METRICS", "false"}}};
  srv.start();
  http_client c{srv.port()};
  CHECK(c.request("GET", "/metrics").status == 404);
}

TEST_CASE("traceparent: the trace id is logged next to the request id and traceresponse answers") {
  for (std::string format : {"text", "json"}) {
    INFO(format);
    auto log_path = "/tmp/todo-trace-" + std::to_string(::getpid()) + "-" + format + ".log";
    {
      server_process srv{{{"LOG_FORMAT", format}, {"LOG_LEVEL", "info"}}, log_path};
      srv.start();
      http_client c{srv.port()};
      const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
      auto r = c.request("GET", "/api/tasks",
                         {{"Authorization", "Bearer " + token_for(fresh_user("trace"))},
                          {"traceparent", "00-" + trace + "-00f067aa0ba902b7-01"},
                          {"X-Request-Id", "trace-test-" + format}});
      CHECK(r.status == 200);
      auto tr = r.header("traceresponse");
      REQUIRE(tr.size() == 55);
      CHECK(tr.substr(0, 36) == "00-" + trace + "-");
      CHECK(tr.substr(36, 16) != "00f067aa0ba902b7"); // our own span, not the caller's
      CHECK(tr.substr(36, 16).find_first_not_of("0123456789abcdef") == std::string::npos);
      CHECK(tr.substr(52) == "-01");
      // Invalid or absent: no traceresponse, nothing logged for it.
      auto bad = c.request("GET", "/health", {{"traceparent", "00-" + trace + "-00f067aa0ba902b7"}});
      CHECK_FALSE(bad.has("traceresponse"));
      CHECK_FALSE(c.request("GET", "/health").has("traceresponse"));
      CHECK(srv.stop(SIGTERM) == 0);
    }
    std::ifstream in{log_path};
    std::stringstream ss;
    ss << in.rdbuf();
    auto log = ss.str();
    ::unlink(log_path.c_str());
    if (format == "text")
      CHECK(log.find("rid=trace-test-text trace=4bf92f3577b34da6a3ce929d0e0e4736") !=
            std::string::npos);
    else
      CHECK(log.find(R"("request_id":"trace-test-json","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736")") !=
            std::string::npos);
  }
}
