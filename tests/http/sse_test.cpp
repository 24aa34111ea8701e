// Live updates (issue 14): GET /api/tasks/events, Server-Sent Events over the real server and
// PostgreSQL (the events come from the trigger of migration 006 through LISTEN/NOTIFY).

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <thread>

#include <boost/json.hpp>

#include "actors/tokens/jwt.hpp"
#include "tests/http/http_client.hpp"

using namespace todo::test;
namespace json = boost::json;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

namespace {

struct sse_event {
  std::string id, type, data;
};

// One event stream read from a raw connection: the head, then the chunked body parsed into
// events (comments and `retry` are counted, not returned).
class sse_stream {
public:
  sse_stream(unsigned short port, const std::string& target, const header_list& headers = {})
    : conn_(port) {
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n";
    for (const auto& [k, v] : headers)
      req += k + ": " + v + "\r\n";
    conn_.send(req + "\r\n");
    const auto& got = conn_.read_until("\r\n\r\n", 5000);
    auto end = got.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    head_ = got.substr(0, end + 4);
  }

  unsigned status() const { return static_cast<unsigned>(std::stoi(head_.substr(9, 3))); }
  std::string header(const std::string& name) const {
    auto lower = [](std::string s) {
      for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return s;
    };
    auto h = lower(head_);
    auto at = h.find("\r\n" + lower(name) + ":");
    if (at == std::string::npos)
      return {};
    auto start = at + name.size() + 3;
    auto stop = head_.find("\r\n", start);
    auto v = head_.substr(start, stop - start);
    while (!v.empty() && v.front() == ' ')
      v.erase(0, 1);
    return v;
  }
  bool closed() const { return conn_.closed(); }
  int comments() const { return comments_; }
  std::string body() const { return head_.size() < raw().size() ? raw().substr(head_.size()) : ""; }

  /// Reads what arrived within `wait_ms` and returns every event so far.
  std::vector<sse_event> events(int wait_ms = 0) {
    conn_.read_until(std::string(1, '\0') + "never", wait_ms);
    return parse();
  }

  /// Waits until at least `n` events arrived (or `timeout_ms` passed).
  std::vector<sse_event> wait_for(size_t n, int timeout_ms = 3000) {
    auto deadline = steady::now() + milliseconds(timeout_ms);
    auto evs = parse();
    while (evs.size() < n && steady::now() < deadline && !closed()) {
      conn_.read_until(std::string(1, '\0') + "never", 10);
      evs = parse();
    }
    return evs;
  }

private:
  const std::string& raw() const { return const_cast<raw_connection&>(conn_).read_until("", 0); }

  std::vector<sse_event> parse() {
    // De-chunk what is complete.
    std::string text;
    std::string_view rest{raw()};
    rest.remove_prefix(std::min(rest.size(), head_.size()));
    for (;;) {
      auto eol = rest.find("\r\n");
      if (eol == std::string_view::npos)
        break;
      auto size = std::stoul(std::string{rest.substr(0, eol)}, nullptr, 16);
      if (size == 0 || rest.size() < eol + 2 + size + 2)
        break;
      text += rest.substr(eol + 2, size);
      rest.remove_prefix(eol + 2 + size + 2);
    }
    std::vector<sse_event> out;
    comments_ = 0;
    size_t pos = 0;
    for (;;) {
      auto end = text.find("\n\n", pos);
      if (end == std::string::npos)
        break;
      std::string block = text.substr(pos, end - pos);
      pos = end + 2;
      sse_event e;
      size_t lp = 0;
      while (lp <= block.size()) {
        auto nl = block.find('\n', lp);
        auto line = block.substr(lp, nl == std::string::npos ? std::string::npos : nl - lp);
        if (line.rfind("id: ", 0) == 0)
          e.id = line.substr(4);
        else if (line.rfind("event: ", 0) == 0)
          e.type = line.substr(7);
        else if (line.rfind("data: ", 0) == 0)
          e.data += line.substr(6);
        else if (!line.empty() && line[0] == ':')
          ++comments_;
        if (nl == std::string::npos)
          break;
        lp = nl + 1;
      }
      if (!e.type.empty() || !e.data.empty())
        out.push_back(std::move(e));
    }
    return out;
  }

  raw_connection conn_;
  std::string head_;
  int comments_ = 0;
};

header_list bearer(const std::string& user) {
  return {{"Authorization", "Bearer " + token_for(user)}};
}

header_list bearer_json(const std::string& user) {
  return {{"Authorization", "Bearer " + token_for(user)}, {"Content-Type", "application/json"}};
}

int64_t id_of(const std::string& body) {
  return json::parse(body).at("id").as_int64();
}

int64_t num(const std::string& s) {
  return std::stoll(s);
}

} // namespace

TEST_CASE("two streams of a user see every change of both route families in commit order; "
          "another user's stream sees nothing") {
  auto& server = shared_server();
  auto alice = fresh_user("sse"), bob = fresh_user("sse-b");
  sse_stream s1{server.port(), "/api/tasks/events", bearer(alice)};
  sse_stream s2{server.port(), "/api/" + alice + "/tasks/events?access_token=" + token_for(alice)};
  sse_stream other{server.port(), "/api/tasks/events", bearer(bob)};
  for (auto* s : {&s1, &s2, &other}) {
    REQUIRE(s->status() == 200);
    CHECK(s->header("content-type") == "text/event-stream");
    CHECK(s->header("cache-control") == "no-store");
    CHECK(s->header("transfer-encoding") == "chunked");
  }
  http_client c{server.port()};
  // (kind, body) of every answered write, in order; each must arrive on both streams.
  std::vector<std::pair<std::string, std::string>> expected;
  double worst_ms = 0;
  auto wrote = [&](const std::string& kind, const http_response& r, const std::string& data) {
    REQUIRE(r.status / 100 == 2);
    auto answered = steady::now();
    expected.emplace_back(kind, data);
    auto a = s1.wait_for(expected.size(), 2000);
    auto b = s2.wait_for(expected.size(), 2000);
    auto ms = std::chrono::duration<double, std::milli>(steady::now() - answered).count();
    worst_ms = std::max(worst_ms, ms);
    REQUIRE(a.size() == expected.size());
    REQUIRE(b.size() == expected.size());
  };
  auto created = c.request("POST", "/api/tasks", bearer_json(alice), R"({"title":"one"})");
  wrote("task.created", created, created.body);
  auto id = std::to_string(id_of(created.body));
  auto scoped = "/api/" + alice + "/tasks";
  auto created2 = c.request("POST", scoped, bearer_json(alice), R"({"title":"two"})");
  wrote("task.created", created2, created2.body);
  auto put = c.request("PUT", scoped + "/" + id, bearer_json(alice), R"({"title":"one!"})");
  wrote("task.updated", put, put.body);
  auto toggled = c.request("PATCH", "/api/tasks/" + id + "/complete", bearer(alice));
  wrote("task.updated", toggled, toggled.body);
  auto patch = c.request("PATCH", "/api/tasks/" + id, bearer_json(alice),
                         R"({"description":"d"})");
  wrote("task.updated", patch, patch.body);
  // A write that changes nothing is no event: setting the value the task already has.
  auto same = c.request("PATCH", "/api/tasks/" + id + "/complete", bearer_json(alice),
                        R"({"completed":true})");
  REQUIRE(same.status == 200);
  auto removed = c.request("DELETE", scoped + "/" + id, bearer(alice));
  wrote("task.deleted", removed, "{\"id\":" + id + "}");

  auto a = s1.events(200), b = s2.events(0);
  REQUIRE(a.size() == expected.size());
  REQUIRE(b.size() == expected.size());
  int64_t last = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("event " << i);
    CHECK(a[i].type == expected[i].first);
    CHECK(a[i].data == expected[i].second); // the same bytes the REST answer had
    CHECK(num(a[i].id) > last);             // strictly increasing
    last = num(a[i].id);
    CHECK(b[i].id == a[i].id);
    CHECK(b[i].type == a[i].type);
    CHECK(b[i].data == a[i].data);
  }
  std::printf("[sse] %zu changes reached both streams; slowest %.1f ms after the answer\n",
              expected.size(), worst_ms);
  CHECK(worst_ms < 100);
  CHECK(other.events(100).empty()); // bob's stream: nothing of alice's, ever
}

TEST_CASE("Last-Event-ID resumes after what the client saw; an id the server cannot resume "
          "from starts with reset") {
  server_process server{{{"SSE_REPLAY_EVENTS", "3"}}};
  server.start();
  auto user = fresh_user("sse");
  http_client c{server.port()};
  auto create = [&](const std::string& title) {
    auto r = c.request("POST", "/api/tasks", bearer_json(user), "{\"title\":\"" + title + "\"}");
    REQUIRE(r.status == 201);
    return r.body;
  };
  std::string seen;
  {
    sse_stream s{server.port(), "/api/tasks/events", bearer(user)};
    REQUIRE(s.status() == 200);
    create("a");
    auto evs = s.wait_for(1);
    REQUIRE(evs.size() == 1);
    seen = evs[0].id;
  }
  auto b = create("b");
  auto c2 = create("c");
  {
    auto h = bearer(user);
    h.emplace_back("Last-Event-ID", seen);
    sse_stream s{server.port(), "/api/tasks/events", h};
    auto evs = s.wait_for(2);
    REQUIRE(evs.size() == 2);
    CHECK(evs[0].data == b);
    CHECK(evs[1].data == c2);
    CHECK(num(evs[0].id) > num(seen));
    // Then live.
    auto d = create("d");
    evs = s.wait_for(3);
    REQUIRE(evs.size() == 3);
    CHECK(evs[2].data == d);
  }
  // Older than the 3 events kept: reset first, then live events.
  create("e");
  {
    auto h = bearer(user);
    h.emplace_back("Last-Event-ID", seen);
    sse_stream s{server.port(), "/api/tasks/events", h};
    auto evs = s.wait_for(1);
    REQUIRE(evs.size() == 1);
    CHECK(evs[0].type == "reset");
    auto f = create("f");
    evs = s.wait_for(2);
    REQUIRE(evs.size() == 2);
    CHECK(evs[1].type == "task.created");
    CHECK(evs[1].data == f);
  }
  // An id this server never issued (another instance's, or from before a restart): reset.
  for (std::string id : {"12345", "garbage"}) {
    INFO("Last-Event-ID [" << id << "]");
    auto h = bearer(user);
    h.emplace_back("Last-Event-ID", id);
    sse_stream s{server.port(), "/api/tasks/events", h};
    auto evs = s.wait_for(1, 1000);
    REQUIRE(evs.size() == 1);
    CHECK(evs[0].type == "reset");
  }
}

TEST_CASE("event streams need a valid token; ?access_token= works on that route only") {
  auto& server = shared_server();
  auto user = fresh_user("sse");
  sse_stream none{server.port(), "/api/tasks/events"};
  CHECK(none.status() == 401);
  CHECK(none.header("www-authenticate") == "Bearer");
  sse_stream bad{server.port(), "/api/tasks/events?access_token=not.a.token"};
  CHECK(bad.status() == 401);
  CHECK(bad.header("www-authenticate").find("invalid_token") != std::string::npos);
  sse_stream forbidden{server.port(), "/api/someone-else/tasks/events", bearer(user)};
  CHECK(forbidden.status() == 403);
  // Anywhere else a query token is not a credential.
  http_client c{server.port()};
  CHECK(c.request("GET", "/api/tasks?access_token=" + token_for(user)).status == 401);
  // Other methods on the route.
  auto post = c.request("POST", "/api/tasks/events", bearer_json(user), "{}");
  CHECK(post.status == 405);
  CHECK(post.header("allow") == "GET, HEAD, OPTIONS");
  // HEAD: the stream's header fields, no stream.
  auto head = c.request("HEAD", "/api/tasks/events", bearer(user));
  CHECK(head.status == 200);
  CHECK(head.header("content-type") == "text/event-stream");
}

TEST_CASE("a stream whose token expires ends with event: reauth; heartbeats flow meanwhile") {
  // The default clock leeway (60 s) applies to checking requests, not to an open stream: it
  // ends at the token's exp.
  server_process server{{{"SSE_HEARTBEAT_MS", "300"}}};
  server.start();
  auto user = fresh_user("sse");
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  auto token = todo::jwt::sign_hs256(test_secret(), "{\"sub\":\"" + user + "\",\"exp\":" +
                                                      std::to_string(now + 2) + "}");
  auto opened = steady::now();
  sse_stream s{server.port(), "/api/tasks/events?access_token=" + token};
  REQUIRE(s.status() == 200);
  auto evs = s.wait_for(1, 6000);
  auto ms = std::chrono::duration<double, std::milli>(steady::now() - opened).count();
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].type == "reauth");
  CHECK(json::parse(evs[0].data).at("detail").is_string());
  CHECK(ms < 4500);
  CHECK(s.comments() >= 2); // keep-alive comments while it lasted
  s.events(1000);
  CHECK(s.closed());
  CHECK(s.body().find("0\r\n\r\n") != std::string::npos); // the stream ended cleanly
}

TEST_CASE("streams per user and in total are bounded: 503 with Retry-After beyond") {
  server_process server{{{"SSE_MAX_PER_USER", "2"}, {"SSE_MAX_STREAMS", "3"}}};
  server.start();
  auto alice = fresh_user("sse"), bob = fresh_user("sse"), carol = fresh_user("sse");
  sse_stream a1{server.port(), "/api/tasks/events", bearer(alice)};
  sse_stream a2{server.port(), "/api/tasks/events", bearer(alice)};
  REQUIRE(a1.status() == 200);
  REQUIRE(a2.status() == 200);
  sse_stream a3{server.port(), "/api/tasks/events", bearer(alice)};
  CHECK(a3.status() == 503);
  CHECK(a3.header("retry-after") == "5");
  sse_stream b1{server.port(), "/api/tasks/events", bearer(bob)};
  CHECK(b1.status() == 200);
  sse_stream c1{server.port(), "/api/tasks/events", bearer(carol)};
  CHECK(c1.status() == 503);
  http_client c{server.port()};
  auto metrics = c.request("GET", "/metrics").body;
  CHECK(metrics.find("\ntodo_sse_streams 3\n") != std::string::npos);
}

TEST_CASE("a write on one instance reaches a stream on another; a replayed write is no event") {
  server_process a, b;
  a.start();
  b.start();
  auto user = fresh_user("sse");
  sse_stream s{b.port(), "/api/tasks/events", bearer(user)};
  REQUIRE(s.status() == 200);
  http_client ca{a.port()};
  auto h = bearer_json(user);
  h.emplace_back("Idempotency-Key", "once");
  auto r = ca.request("POST", "/api/tasks", h, R"({"title":"from A"})");
  REQUIRE(r.status == 201);
  auto evs = s.wait_for(1);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].type == "task.created");
  CHECK(evs[0].data == r.body);
  auto again = ca.request("POST", "/api/tasks", h, R"({"title":"from A"})");
  CHECK(again.header("idempotent-replayed") == "true");
  CHECK(s.events(300).size() == 1);
}
