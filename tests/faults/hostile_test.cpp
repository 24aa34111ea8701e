// Hostile input over raw sockets: oversized bodies and headers, broken encodings, deep
// nesting, huge numbers, wrong content types and garbage. The server answers each one
// correctly and quickly, and stays alive.

#include <catch2/catch.hpp>

#include <iostream>
#include <random>

#include "tests/faults/fault_support.hpp"

using namespace todo::faults;
using todo::test::fresh_user;
using todo::test::server_process;
using todo::test::shared_server;
using todo::test::token_for;

namespace {

// A string literal that may contain NUL bytes.
template <std::size_t N>
std::string lit(const char (&s)[N]) {
  return std::string(s, N - 1);
}

// A complete request with Content-Length, closing the connection after the answer.
std::string http_req(const std::string& method, const std::string& target,
                     const std::string& user, const std::string& content_type,
                     const std::string& body, const std::string& extra_headers = {}) {
  std::string s = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!user.empty())
    s += "Authorization: Bearer " + token_for(user) + "\r\n";
  if (!content_type.empty())
    s += "Content-Type: " + content_type + "\r\n";
  s += extra_headers;
  s += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  return s;
}

struct answer {
  unsigned status;
  std::string body;
  raw_result raw;
};

answer send_raw(unsigned short port, const std::string& bytes, int timeout_ms = 3000) {
  auto r = raw_talk(port, bytes, timeout_ms);
  return answer{raw_status(r.bytes), raw_body(r.bytes), r};
}

void server_still_serves(server_process& server) {
  REQUIRE(process_alive(server.pid()));
  conn c{server.port()};
  CHECK(c.exchange("GET", "/health", {}, {}, 3000).status == 200);
  auto user = fresh_user("alive");
  CHECK(c.exchange("POST", "/api/tasks", json_auth(user), R"({"title":"still here"})", 3000)
          .status == 201);
}

} // namespace

TEST_CASE("bodies over MAX_BODY_BYTES get 413, declared or chunked, and the connection closes",
          "[hostile]") {
  auto& server = shared_server();
  auto user = fresh_user("h413");
  std::string head = "POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                     token_for(user) + "\r\nContent-Type: application/json\r\n";
  SECTION("a declared Content-Length over the limit, before any body byte") {
    auto a = send_raw(server.port(), head + "Content-Length: 100000\r\n\r\n");
    INFO(a.raw.bytes.substr(0, 300));
    CHECK(a.status == 413);
    CHECK(a.raw.closed);
  }
  SECTION("a declared Content-Length over the limit, with the body sent") {
    std::string body = R"({"title":"x","description":")" + std::string(100000, 'a') + "\"}";
    auto a = send_raw(server.port(),
                      head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    INFO(a.raw.bytes.substr(0, 300) << " reset=" << a.raw.reset);
    CHECK(a.status == 413);
    CHECK(a.raw.closed);
  }
  SECTION("a chunked body that grows over the limit") {
    std::string chunks;
    for (int i = 0; i < 10; ++i)
      chunks += "2000\r\n" + std::string(0x2000, 'a') + "\r\n"; // 10 x 8 KiB = 80 KiB
    chunks += "0\r\n\r\n";
    auto a = send_raw(server.port(), head + "Transfer-Encoding: chunked\r\n\r\n" + chunks);
    INFO(a.raw.bytes.substr(0, 300) << " reset=" << a.raw.reset);
    CHECK(a.status == 413);
    CHECK(a.raw.closed);
  }
  SECTION("a chunked body just under the limit is fine") {
    std::string json = R"({"title":"chunked","description":")" + std::string(900, 'd') + "\"}";
    std::string chunks;
    for (std::size_t i = 0; i < json.size(); i += 100) {
      auto part = json.substr(i, 100);
      char size[16];
      std::snprintf(size, sizeof size, "%zx", part.size());
      chunks += std::string{size} + "\r\n" + part + "\r\n";
    }
    chunks += "0\r\n\r\n";
    auto a = send_raw(server.port(),
                      head + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks);
    INFO(a.raw.bytes.substr(0, 300));
    CHECK(a.status == 201);
  }
  server_still_serves(server);
}

TEST_CASE("request lines and headers over 8 KiB get 431 (or 400) and the connection closes",
          "[hostile]") {
  auto& server = shared_server();
  auto ok = [](unsigned s) { return s == 431 || s == 400; };
  auto big_header = send_raw(server.port(), "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                              std::string(9000, 'a') + "\r\n\r\n");
  CHECK(big_header.status == 431);
  CHECK(big_header.raw.closed);
  std::string many;
  for (int i = 0; i < 300; ++i)
    many += "X-H" + std::to_string(i) + ": " + std::string(60, 'b') + "\r\n";
  auto many_headers = send_raw(server.port(), "GET /health HTTP/1.1\r\nHost: x\r\n" + many + "\r\n");
  CHECK(ok(many_headers.status));
  CHECK(many_headers.raw.closed);
  auto long_line = send_raw(server.port(), "GET /" + std::string(9000, 'a') +
                                             " HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(ok(long_line.status));
  CHECK(long_line.raw.closed);
  // 1 MiB of header bytes: answered (not buffered whole), and the server survives.
  auto huge = send_raw(server.port(), "GET /health HTTP/1.1\r\nHost: x\r\nX-Huge: " +
                                        std::string(1 << 20, 'c') + "\r\n\r\n");
  CHECK(ok(huge.status));
  CHECK(huge.raw.closed);
  std::cout << "[hostile] 9000-byte header: " << big_header.status << ", 300 headers: "
            << many_headers.status << ", 9000-byte request line: " << long_line.status
            << ", 1 MiB header: " << huge.status << " after " << huge.raw.ms << " ms" << std::endl;
  server_still_serves(server);
}

TEST_CASE("invalid UTF-8 and NUL in JSON bodies get 400", "[hostile]") {
  auto& server = shared_server();
  auto user = fresh_user("hutf8");
  auto post = [&](const std::string& body) {
    return send_raw(server.port(), http_req("POST", "/api/tasks", user, "application/json", body));
  };
  struct row {
    const char* what;
    std::string body;
  };
  std::vector<row> rows{
    {"invalid byte in title", std::string{"{\"title\":\"a\xff\xfe b\"}"}},
    {"overlong encoding in title", std::string{"{\"title\":\"\xc0\xaf\"}"}},
    {"truncated sequence in title", std::string{"{\"title\":\"ab\xe2\x82\"}"}},
    {"encoded surrogate in title", std::string{"{\"title\":\"\xed\xa0\x80\"}"}},
    {"invalid byte in description", std::string{"{\"title\":\"ok\",\"description\":\"\x80\"}"}},
    {"invalid byte in an unknown key", std::string{"{\"title\":\"ok\",\"\xff\":1}"}},
    {"escaped NUL in title", std::string{"{\"title\":\"a\\u0000b\"}"}},
    {"escaped NUL in description", std::string{"{\"title\":\"ok\",\"description\":\"\\u0000\"}"}},
    {"raw NUL byte in title", lit("{\"title\":\"a\0b\"}")},
    {"NUL byte after the object", lit("{\"title\":\"ok\"}\0")},
  };
  for (const auto& r : rows) {
    auto a = post(r.body);
    INFO(r.what << ": " << a.raw.bytes.substr(0, 300));
    CHECK(a.status == 400);
    CHECK(a.body.find("\"detail\"") != std::string::npos);
  }
  CHECK(db_count(user) == 0);
  // PUT with the same defects on an existing task.
  conn c{server.port()};
  auto made = c.exchange("POST", "/api/tasks", json_auth(user), R"({"title":"base"})", 3000);
  REQUIRE(made.status == 201);
  auto id = std::to_string(json_int(made.body, "id"));
  auto put = send_raw(server.port(), http_req("PUT", "/api/tasks/" + id, user, "application/json",
                                              std::string{"{\"title\":\"\xff\"}"}));
  CHECK(put.status == 400);
  auto nul = send_raw(server.port(), http_req("PATCH", "/api/tasks/" + id, user,
                                              "application/json",
                                              R"({"description":"x\u0000"})"));
  CHECK(nul.status == 400);
  auto still = c.exchange("GET", "/api/tasks/" + id, auth_only(user), {}, 3000);
  CHECK(json_str(still.body, "title") == "base");
  server_still_serves(server);
}

TEST_CASE("deeply nested JSON gets 400 quickly", "[hostile]") {
  auto& server = shared_server();
  auto user = fresh_user("hdeep");
  struct row {
    const char* what;
    std::string body;
  };
  std::string objects;
  for (int i = 0; i < 12000; ++i)
    objects += "{\"a\":";
  std::vector<row> rows{
    {"60000 x [", std::string(60000, '[')},
    {"60000 x [ then ]", std::string(30000, '[') + std::string(30000, ']')},
    {"12000 nested objects", objects},
    {"nesting 40 inside the title", "{\"title\":" + std::string(40, '[') + "1" +
                                      std::string(40, ']') + "}"},
    {"nesting 40 in an unknown field", "{\"title\":\"x\",\"z\":" + std::string(40, '[') +
                                         std::string(40, ']') + "}"},
  };
  double slowest = 0;
  for (const auto& r : rows) {
    auto a = send_raw(server.port(),
                      http_req("POST", "/api/tasks", user, "application/json", r.body));
    INFO(r.what << ": " << a.raw.bytes.substr(0, 300) << " after " << a.raw.ms << " ms");
    CHECK(a.status == 400);
    CHECK(a.raw.ms < 1000);
    slowest = std::max(slowest, a.raw.ms);
  }
  CHECK(db_count(user) == 0);

  // 100 000 levels need a larger body limit to reach the JSON parser at all.
  server_process big{{{"MAX_BODY_BYTES", "1048576"}}};
  big.start();
  auto a = send_raw(big.port(), http_req("POST", "/api/tasks", user, "application/json",
                                         std::string(100000, '[')));
  INFO("100000 x [: " << a.raw.bytes.substr(0, 300));
  CHECK(a.status == 400);
  CHECK(a.raw.ms < 1000);
  std::cout << "[hostile] deep nesting: slowest 400 " << slowest << " ms (60000-byte bodies); "
            << "100000 x '[' answered " << a.status << " in " << a.raw.ms << " ms" << std::endl;
  server_still_serves(big);
  server_still_serves(server);
}

TEST_CASE("huge numbers get 400 where a string, boolean or id is expected", "[hostile]") {
  auto& server = shared_server();
  auto user = fresh_user("hnum");
  conn c{server.port()};
  auto made = c.exchange("POST", "/api/tasks", json_auth(user), R"({"title":"base"})", 3000);
  REQUIRE(made.status == 201);
  auto id = std::to_string(json_int(made.body, "id"));
  std::string digits(5000, '9');
  struct row {
    const char* what;
    std::string method, target, body;
    unsigned expected;
  };
  std::vector<row> rows{
    {"title 1e999999", "POST", "/api/tasks", R"({"title":1e999999})", 400},
    {"title of 5000 digits", "POST", "/api/tasks", "{\"title\":" + digits + "}", 400},
    {"description -1e400", "POST", "/api/tasks", R"({"title":"x","description":-1e400})", 400},
    {"completed 1e400", "PATCH", "/api/tasks/" + id, R"({"completed":1e400})", 400},
    {"/complete with 5000 digits", "PATCH", "/api/tasks/" + id + "/complete",
     "{\"completed\":" + digits + "}", 400},
    {"unknown field 1e999999 (ignored)", "POST", "/api/tasks",
     R"({"title":"big extra","n":1e999999})", 201},
    {"unknown field of 5000 digits (ignored)", "POST", "/api/tasks",
     "{\"title\":\"long extra\",\"n\":" + digits + "}", 201},
  };
  for (const auto& r : rows) {
    auto a = send_raw(server.port(), http_req(r.method, r.target, user, "application/json", r.body));
    INFO(r.what << ": " << a.raw.bytes.substr(0, 300));
    CHECK(a.status == r.expected);
  }
  for (const std::string& bad_id : std::vector<std::string>{
         "99999999999999999999", "9223372036854775808", "-1", "0", "1e3", std::string(5000, '1')}) {
    auto a = send_raw(server.port(), http_req("GET", "/api/tasks/" + bad_id, user, "", ""));
    INFO("id " << bad_id.substr(0, 40) << ": " << a.raw.bytes.substr(0, 300));
    CHECK(a.status == 400);
  }
  auto still = c.exchange("GET", "/api/tasks/" + id, auth_only(user), {}, 3000);
  CHECK(still.status == 200);
  CHECK(json_bool(still.body, "completed") == false);
  server_still_serves(server);
}

TEST_CASE("bodies that are not declared as JSON get 415", "[hostile]") {
  auto& server = shared_server();
  auto user = fresh_user("h415");
  std::vector<std::string> types{"text/plain", "application/x-www-form-urlencoded",
                                 "application/jsonx", "multipart/form-data; boundary=x", ""};
  for (const auto& t : types) {
    auto a = send_raw(server.port(), http_req("POST", "/api/tasks", user, t, R"({"title":"x"})"));
    INFO("Content-Type '" << t << "': " << a.raw.bytes.substr(0, 300));
    CHECK(a.status == 415);
  }
  CHECK(db_count(user) == 0);
  server_still_serves(server);
}

TEST_CASE("garbage and malformed HTTP get 400 and the connection closes", "[hostile]") {
  auto& server = shared_server();
  std::mt19937 rng{42};
  std::string random_bytes;
  for (int i = 0; i < 4096; ++i)
    random_bytes.push_back(static_cast<char>(rng() % 256));
  std::string binary_prefixed = std::string{"\x80\x81\x82"} + random_bytes;
  std::string tls_hello = lit("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
  tls_hello += std::string(500, '\x01') + "\r\n\r\n";
  auto user = fresh_user("hjunk");
  auto tok = "Authorization: Bearer " + token_for(user) + "\r\n";
  struct row {
    const char* what;
    std::string bytes;
  };
  std::vector<row> rows{
    {"random bytes", binary_prefixed + "\r\n\r\n"},
    {"a TLS ClientHello", tls_hello},
    {"not HTTP", "NOT HTTP AT ALL\r\n\r\n"},
    {"bad version", "GET /health HTTP/9.9\r\nHost: x\r\n\r\n"},
    {"space in the method", "GE T /health HTTP/1.1\r\nHost: x\r\n\r\n"},
    {"header without colon", "GET /health HTTP/1.1\r\nHost x\r\n\r\n"},
    {"Content-Length not a number",
     "POST /api/tasks HTTP/1.1\r\nHost: x\r\n" + tok +
       "Content-Type: application/json\r\nContent-Length: abc\r\n\r\n{}"},
    {"negative Content-Length",
     "POST /api/tasks HTTP/1.1\r\nHost: x\r\n" + tok +
       "Content-Type: application/json\r\nContent-Length: -5\r\n\r\n{}"},
    {"two different Content-Lengths",
     "POST /api/tasks HTTP/1.1\r\nHost: x\r\n" + tok +
       "Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 14\r\n\r\n"
       "{\"title\":\"x\"}"},
    {"bad chunk size",
     "POST /api/tasks HTTP/1.1\r\nHost: x\r\n" + tok +
       "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"},
    {"NUL in a header value", lit("GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n")},
  };
  for (const auto& r : rows) {
    auto a = send_raw(server.port(), r.bytes, 3000);
    INFO(r.what << ": " << a.raw.bytes.substr(0, 300) << " closed=" << a.raw.closed << " after "
                << a.raw.ms << " ms");
    CHECK(a.status == 400);
    CHECK(a.raw.closed);
    CHECK(a.raw.ms < 2000);
  }
  CHECK(db_count(user) == 0);
  server_still_serves(server);
}
