// HTTP conformance with raw bytes over TCP (RFC 9110, RFC 9112): what an attacker or a proxy
// sends, and the exact bytes that come back, including what happens to the next request on
// the same connection. No HTTP client library here: they normalise what must be tested.

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <vector>

#include <boost/json.hpp>
#include <unistd.h>

#include "actors/tokens/jwt.hpp"
#include "config/text.hpp"
#include "tests/http/http_client.hpp"

using namespace todo::test;

namespace {

struct raw_response {
  int status = 0;
  std::string head; // status line and fields, CRLF-separated, without the final CRLF CRLF
  std::string body;
  std::string field(const std::string& name) const {
    auto lower = todo::text::lower(head);
    auto at = lower.find("\r\n" + todo::text::lower(name) + ":");
    if (at == std::string::npos)
      return {};
    auto start = at + name.size() + 3;
    auto end = head.find("\r\n", start);
    return std::string{todo::text::trim(head.substr(start, end - start))};
  }
};

/// Splits the bytes a server wrote into responses; `head_requests[i]` says that response i
/// answers a HEAD (no body whatever Content-Length says). Anything left over that is not a
/// complete response is returned in `rest`.
std::vector<raw_response> split(const std::string& raw, std::vector<bool> head_requests,
                                std::string* rest = nullptr) {
  std::vector<raw_response> out;
  size_t at = 0;
  while (at < raw.size()) {
    auto end = raw.find("\r\n\r\n", at);
    if (raw.compare(at, 5, "HTTP/") != 0 || end == std::string::npos)
      break;
    raw_response r;
    r.head = raw.substr(at, end - at);
    r.status = std::stoi(r.head.substr(9, 3));
    at = end + 4;
    bool head = out.size() < head_requests.size() && head_requests[out.size()];
    auto len = r.field("Content-Length");
    size_t n = head || len.empty() || r.status == 204 || r.status == 304 ? 0 : std::stoul(len);
    if (at + n > raw.size())
      break;
    r.body = raw.substr(at, n);
    at += n;
    out.push_back(std::move(r));
  }
  if (rest)
    *rest = raw.substr(at);
  return out;
}

std::string token_of(const std::string& sub) {
  boost::json::object claims{{"sub", sub}, {"exp", 4102444800}};
  return todo::jwt::sign_hs256(test_secret(), boost::json::serialize(claims));
}

struct raw {
  server_process& server = shared_server();
  std::string user = fresh_user("conf");
  std::string token = token_of(user);

  std::string exchange(const std::string& bytes, int timeout_ms = 3000) {
    return raw_exchange(server.port(), bytes, timeout_ms);
  }
  std::string create_request(const std::string& extra_fields = "",
                             const std::string& body = R"({"title":"t"})") {
    return "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
           "\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n" + extra_fields + "\r\n" + body;
  }
};

const std::string health_close = "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

} // namespace

TEST_CASE_METHOD(raw, "no user id can inject a header through Location (response splitting)") {
  for (std::string sub : {std::string{"evil\r\nSet-Cookie: pwned=1"}, std::string{"a b?c#d"},
                          std::string{"x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0"}}) {
    INFO(sub);
    auto tok = token_of(sub);
    std::string encoded;
    for (unsigned char c : sub) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      encoded += buf;
    }
    std::string body = R"({"title":"t"})";
    auto bytes = "POST /api/" + encoded + "/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
                 tok + "\r\nContent-Type: application/json\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body + health_close;
    std::string rest;
    auto rs = split(exchange(bytes), {}, &rest);
    REQUIRE(rs.size() == 2); // exactly the two answers, nothing forged between them
    CHECK(rs[0].status == 201);
    auto location = rs[0].field("Location");
    CHECK(location.rfind("/api/", 0) == 0);
    CHECK(location.find_first_of(std::string{" \r\n\0?#", 6}) == std::string::npos);
    CHECK(rs[0].head.find("\r\nSet-Cookie") == std::string::npos);
    CHECK(rs[1].status == 200);
    CHECK(rs[1].body == R"({"status":"ok"})");
    CHECK(rest.empty());
  }
}

TEST_CASE_METHOD(raw, "a Transfer-Encoding that does not end in chunked is 400 and closes") {
  for (std::string te : {"gzip", "chunked, gzip", "identity", "foo", "chunked;x=1, br"}) {
    INFO(te);
    // The "body" is a whole second request: it must never run.
    auto smuggled = "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
                    "\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n" +
                    R"({"title":"S"})";
    auto bytes = "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
                 "\r\nTransfer-Encoding: " + te + "\r\n\r\n" + smuggled;
    std::string rest;
    auto rs = split(exchange(bytes), {}, &rest);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 400);
    CHECK(todo::text::iequals(rs[0].field("Connection"), "close"));
    CHECK(rest.empty());
  }
  http_client c{server.port()};
  auto list = c.request("GET", "/api/tasks", {{"Authorization", "Bearer " + token}});
  CHECK(list.body == "[]"); // nothing was smuggled in
}

TEST_CASE_METHOD(raw, "Content-Length with Transfer-Encoding, or two Transfer-Encodings, is 400") {
  auto chunked_body = std::string{"d\r\n"} + R"({"title":"t"})" + "\r\n0\r\n\r\n";
  for (std::string fields : {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                             "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"}) {
    INFO(fields);
    auto bytes = "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
                 "\r\nContent-Type: application/json\r\n" + fields + "\r\n" + chunked_body +
                 health_close;
    auto rs = split(exchange(bytes), {});
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 400);
  }
  // A well-formed chunked body is fine, and the next request on the connection is answered.
  auto bytes = "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
               "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
               chunked_body + health_close;
  auto rs = split(exchange(bytes), {});
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 201);
  CHECK(rs[1].status == 200);
}

TEST_CASE_METHOD(raw, "HEAD is GET without body bytes, and the next response stays in step") {
  auto auth = "Authorization: Bearer " + token + "\r\n";
  auto bytes = "HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n"
               "HEAD /api/tasks HTTP/1.1\r\nHost: t\r\n" + auth + "\r\n"
               "HEAD /api/tasks HTTP/1.1\r\nHost: t\r\n\r\n"
               "HEAD /api/tasks/1/complete HTTP/1.1\r\nHost: t\r\n" + auth + "\r\n" +
               health_close;
  std::string rest;
  auto rs = split(exchange(bytes), {true, true, true, true, false}, &rest);
  REQUIRE(rs.size() == 5);
  CHECK(rs[0].status == 200);
  CHECK(rs[0].field("Content-Length") == "15"); // what GET would send
  CHECK(rs[1].status == 200);
  CHECK_FALSE(rs[1].field("ETag").empty());
  CHECK(rs[1].field("X-Total-Count") == "0");
  CHECK(rs[2].status == 401);
  CHECK_FALSE(rs[2].field("WWW-Authenticate").empty());
  CHECK(rs[3].status == 405);
  CHECK(rs[3].field("Allow") == "PATCH, OPTIONS");
  for (int i = 0; i < 4; ++i)
    CHECK(rs[i].body.empty());
  CHECK(rs[4].status == 200);
  CHECK(rs[4].body == R"({"status":"ok"})");
  CHECK(rest.empty());
}

TEST_CASE_METHOD(raw, "fields sent only in a chunked body's trailer are not headers") {
  auto chunked_body = std::string{"d\r\n"} + R"({"title":"t"})" + "\r\n0\r\n";
  // Authorization only in the trailer: not authenticated.
  auto bytes = "POST /api/tasks HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" +
               chunked_body + "Authorization: Bearer " + token + "\r\n\r\n" + health_close;
  auto rs = split(exchange(bytes), {});
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 401);
  // Content-Type only in the trailer: the body is not declared JSON.
  bytes = "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
          "\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_body +
          "Content-Type: application/json\r\n\r\n" + health_close;
  rs = split(exchange(bytes), {});
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 415);
  // A trailer field with the name of a header field (Beast files it next to that one):
  // neither a second credential nor a new Connection, and no header field is lost.
  bytes = "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
          "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
          chunked_body + "Authorization: Bearer " + token_of("someone-else") +
          "\r\nConnection: close\r\nHost: other\r\n\r\n" + health_close;
  std::string rest;
  rs = split(exchange(bytes), {}, &rest);
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 201);
  CHECK(rs[0].field("Connection").empty());
  CHECK(rs[1].status == 200);
  CHECK(rest.empty());
}

TEST_CASE_METHOD(raw, "If-Match uses the strong comparison: weak or empty lists give 412") {
  http_client c{server.port()};
  header_list auth{{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
  auto made = c.request("POST", "/api/tasks", auth, R"({"title":"m"})");
  REQUIRE(made.status == 201);
  auto id = std::to_string(boost::json::parse(made.body).at("id").as_int64());
  auto tag = c.request("GET", "/api/tasks/" + id, auth).header("etag");
  REQUIRE_FALSE(tag.empty());
  for (std::string value : {"W/" + tag, std::string{""}, std::string{"\"other\""}}) {
    INFO(value);
    auto h = auth;
    h.emplace_back("If-Match", value);
    CHECK(c.request("PUT", "/api/tasks/" + id, h, R"({"title":"x"})").status == 412);
  }
  auto h = auth;
  h.emplace_back("If-Match", tag);
  CHECK(c.request("PUT", "/api/tasks/" + id, h, R"({"title":"y"})").status == 200);
}

TEST_CASE_METHOD(raw, "HTTP/1.1 needs exactly one Host; HTTP/1.0 needs none") {
  auto rs = split(exchange("GET /health HTTP/1.1\r\n\r\n" + health_close), {});
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 400);
  rs = split(exchange("GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + health_close), {});
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 400);
  rs = split(exchange("GET /health HTTP/1.0\r\n\r\n"), {});
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 200);
}

TEST_CASE_METHOD(raw, "an absolute-form target is served like its path") {
  auto rs = split(exchange("GET http://localhost:8000/health HTTP/1.1\r\nHost: localhost\r\n"
                           "Connection: close\r\n\r\n"),
                  {});
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 200);
  CHECK(rs[0].body == R"({"status":"ok"})");
}

TEST_CASE_METHOD(raw, "OPTIONS * answers the server's methods; * with another method is 400") {
  auto rs = split(exchange("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\nGET * HTTP/1.1\r\nHost: t\r\n\r\n" +
                           health_close),
                  {});
  REQUIRE(rs.size() == 3);
  CHECK(rs[0].status == 204);
  CHECK(rs[0].field("Allow") == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
  CHECK(rs[0].body.empty());
  CHECK(rs[1].status == 400);
  CHECK(rs[2].status == 200); // the connection still serves the next request
}

TEST_CASE_METHOD(raw, "two Authorization fields are refused, not first-wins") {
  auto bytes = "GET /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
               "\r\nAuthorization: Bearer " + token_of("someone-else") + "\r\n\r\n" +
               health_close;
  auto rs = split(exchange(bytes), {});
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 400);
  CHECK(rs[1].status == 200);
}

TEST_CASE_METHOD(raw, "an X-Request-Id with CR LF or other odd bytes is not echoed") {
  auto bytes = std::string{"GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc\tdef\r\n"} +
               "Connection: close\r\n\r\n";
  auto rs = split(exchange(bytes), {});
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].field("X-Request-Id").find("abc") == std::string::npos);
}

TEST_CASE("log text keeps only well-formed UTF-8") {
  using todo::text::valid_utf8;
  CHECK(valid_utf8("/api/tasks") == "/api/tasks");
  CHECK(valid_utf8("/\xE2\x9C\x93") == "/\xE2\x9C\x93");   // U+2713
  CHECK(valid_utf8("/\xFF\xFE") == "/%FF%FE");             // never UTF-8
  CHECK(valid_utf8("/\xC0\xAF") == "/%C0%AF");             // overlong '/'
  CHECK(valid_utf8("/\xED\xA0\x80") == "/%ED%A0%80");      // a surrogate
  CHECK(valid_utf8("/\xE2\x9C") == "/%E2%9C");             // cut short
}

TEST_CASE_METHOD(raw, "malformed framing and field syntax are 400 at once and close") {
  const std::string post = "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ";
  struct probe {
    const char* what;
    std::string bytes;
  };
  std::vector<probe> probes{
    {"chunk size not hex", post + token + "\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
    {"chunk size overflows", post + token + "\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n"},
    {"chunk data without its CRLF", post + token + "\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n"},
    {"two different Content-Lengths", "GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
    {"space before the colon", "GET /health HTTP/1.1\r\nHost : t\r\n\r\n"},
    {"bare CR in a field", "GET /health HTTP/1.1\r\nHost: t\rX: y\r\n\r\n"},
  };
  for (const auto& p : probes) {
    INFO(p.what);
    auto t0 = std::chrono::steady_clock::now();
    std::string rest;
    auto rs = split(exchange(p.bytes + health_close, 5000), {}, &rest);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 400);
    CHECK(todo::text::iequals(rs[0].field("Connection"), "close"));
    CHECK(rest.empty());
    // Answered at once, not at the read timeout (10 s by default).
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  }
}

TEST_CASE_METHOD(raw, "chunk extensions are accepted and the next request is answered") {
  auto bytes = "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
               "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               "d;name=value\r\n" + std::string{R"({"title":"t"})"} + "\r\n0\r\n\r\n" +
               health_close;
  auto rs = split(exchange(bytes), {});
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 201);
  CHECK(rs[1].status == 200);
}

// --- Expect (RFC 9110 §10.1.1) -------------------------------------------------------------

TEST_CASE_METHOD(raw, "Expect: 100-continue gets 100 Continue before the body is sent") {
  raw_connection c{server.port()};
  std::string body = R"({"title":"after 100"})";
  c.send("POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
         "\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n");
  // Not at the read timeout (10 s), and before any body byte: the client is waiting for it.
  auto& got = c.read_until("\r\n\r\n", 2000);
  REQUIRE(got == "HTTP/1.1 100 Continue\r\n\r\n");
  c.send(body + health_close);
  std::string rest;
  auto rs = split(c.read_all(3000).substr(25), {}, &rest);
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 201);
  CHECK(rs[0].body.find("after 100") != std::string::npos);
  CHECK(rs[1].status == 200);
  CHECK(rest.empty());
}

TEST_CASE_METHOD(raw, "Expect: 100-continue with a body already sent gets no 100") {
  auto rs = split(exchange(create_request("Expect: 100-continue\r\n") + health_close), {});
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 201);
  CHECK(rs[1].status == 200);
}

TEST_CASE_METHOD(raw, "Expect: 100-continue with a body over the limit is 413 at once, no 100") {
  raw_connection c{server.port()};
  c.send("POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
         "\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
         "Content-Length: 100000000\r\n\r\n");
  auto rs = split(c.read_all(2000), {});
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 413);
  CHECK(todo::text::iequals(rs[0].field("Connection"), "close"));
  CHECK(c.closed());
}

TEST_CASE_METHOD(raw, "an expectation other than 100-continue is 417 and the body never runs") {
  for (std::string expect : {"200-ok", "100-continue, x-other", "foo=bar"}) {
    INFO(expect);
    // The body is a second request; it must not be read as one.
    auto bytes = create_request("Expect: " + expect + "\r\n", health_close);
    std::string rest;
    auto rs = split(exchange(bytes), {}, &rest);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 417);
    CHECK(rs[0].body == R"({"detail":"Expectation Failed"})");
    CHECK(todo::text::iequals(rs[0].field("Connection"), "close"));
    CHECK(rest.empty());
  }
}

TEST_CASE_METHOD(raw, "a 100 Continue never overtakes an earlier pipelined response") {
  raw_connection c{server.port()};
  std::string body = R"({"title":"second"})";
  // A slow first request (its answer needs the database) and, behind it, an Expect request.
  c.send("GET /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token + "\r\n\r\n" +
         "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
         "\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n");
  auto got = c.read_until("100 Continue\r\n\r\n", 2000);
  std::string rest;
  auto rs = split(got, {}, &rest);
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 200); // the list's answer came first...
  CHECK(rs[1].status == 100); // ...then the interim response, and nothing after it yet
  CHECK(rs[1].head == "HTTP/1.1 100 Continue");
  CHECK(rest.empty());
  c.send(body + health_close);
  auto final = split(c.read_all(3000).substr(got.size()), {});
  REQUIRE(final.size() == 2);
  CHECK(final[0].status == 201);
  CHECK(final[1].status == 200);
}

TEST_CASE_METHOD(raw, "Expect: 100-continue in HTTP/1.0 is ignored") {
  raw_connection c{server.port()};
  std::string body = R"({"title":"t"})";
  c.send("POST /api/tasks HTTP/1.0\r\nAuthorization: Bearer " + token +
         "\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n");
  CHECK(c.read_until("\r\n\r\n", 700).empty()); // no 100 to a client that cannot know it
  c.send(body);
  auto rs = split(c.read_all(3000), {});
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 201);
  CHECK(rs[0].head.rfind("HTTP/1.0 201", 0) == 0);
}

// --- Line folding and line endings (RFC 9112 §2.2, §5.2) -----------------------------------

TEST_CASE_METHOD(raw, "obs-fold is read as a space, never as a line end") {
  // RFC 9112 §5.2 lets a server replace obs-fold with SP: the folded credential is one value.
  auto bytes = "GET /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer\r\n " + token +
               "\r\n\r\n" + health_close;
  std::string rest;
  auto rs = split(exchange(bytes), {}, &rest);
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 200);
  CHECK(rs[0].body == "[]");
  CHECK(rs[1].status == 200);
  CHECK(rest.empty());
  // A folded Transfer-Encoding is judged on its unfolded value: it ends in gzip, so 400.
  auto smuggled = create_request();
  auto folded = "POST /api/tasks HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + token +
                "\r\nTransfer-Encoding: chunked\r\n , gzip\r\n\r\n" + smuggled;
  rs = split(exchange(folded), {}, &rest);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 400);
  CHECK(rest.empty());
}

TEST_CASE_METHOD(raw, "a bare LF as a line end is 400 and closes") {
  for (std::string bytes : {std::string{"GET /health HTTP/1.1\nHost: t\n\n"},
                            std::string{"GET /health HTTP/1.1\r\nHost: t\nX: y\r\n\r\n"},
                            std::string{"GET /health HTTP/1.1\r\nHost: t\r\n\n"}}) {
    INFO(bytes);
    std::string rest;
    auto rs = split(exchange(bytes + health_close), {}, &rest);
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 400);
    CHECK(todo::text::iequals(rs[0].field("Connection"), "close"));
    CHECK(rest.empty());
  }
}

// --- Logs ----------------------------------------------------------------------------------

TEST_CASE("with LOG_FORMAT=json, a target that is not UTF-8 still logs valid JSON") {
  auto log_path = "/tmp/todo-conformance-log-" + std::to_string(::getpid()) + ".jsonl";
  server_process server{{{"LOG_FORMAT", "json"}, {"LOG_LEVEL", "info"}}, log_path};
  server.start();
  auto rs = split(raw_exchange(server.port(), "GET /\xFF\xFE/x HTTP/1.1\r\nHost: t\r\n\r\n"
                                              "GET /api/\xC0\xAF/tasks HTTP/1.1\r\nHost: t\r\n"
                                              "Connection: close\r\n\r\n"),
                  {});
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 404);
  CHECK(rs[1].status == 401);
  REQUIRE(server.stop(SIGTERM) == 0);
  std::FILE* f = std::fopen(log_path.c_str(), "r");
  REQUIRE(f != nullptr);
  std::string all;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
    all.append(buf, n);
  std::fclose(f);
  std::remove(log_path.c_str());
  std::vector<std::string> paths;
  size_t lines = 0;
  for (size_t at = 0; at < all.size();) {
    auto end = all.find('\n', at);
    auto line = all.substr(at, end - at);
    at = end == std::string::npos ? all.size() : end + 1;
    if (line.empty())
      continue;
    ++lines;
    INFO(line);
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec); // Boost.JSON refuses strings that are not UTF-8
    REQUIRE_FALSE(ec);
    REQUIRE(v.is_object());
    if (auto* p = v.as_object().if_contains("path"))
      paths.emplace_back(p->as_string().c_str());
  }
  CHECK(lines > 2);
  CHECK(std::count(paths.begin(), paths.end(), std::string{"/%FF%FE/x"}) == 1);
  CHECK(std::count(paths.begin(), paths.end(), std::string{"/api/%C0%AF/tasks"}) == 1);
}
