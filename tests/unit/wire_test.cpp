// http/wire.cpp writes responses itself instead of Beast's serializer: its bytes must be
// exactly Beast's for every shape of response the service sends.

#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include <boost/beast/http/write.hpp>

#include "http/wire.hpp"

using namespace todo::http;
namespace bhttp = boost::beast::http;

namespace {

std::string beast_bytes(const response& res) {
  std::ostringstream os;
  os << res;
  return os.str();
}

// What the session writes: the head, then the body's bytes.
void append_ours(std::string& out, const response& res) {
  append_head(out, res);
  out += res.body();
}

std::string ours(const response& res) {
  std::string out;
  append_ours(out, res);
  return out;
}

response json(bhttp::status status, std::string body, unsigned version = 11) {
  response res{status, version};
  res.set(bhttp::field::content_type, "application/json");
  res.set("X-Request-Id", "7f0c1a2b-rid");
  res.set(bhttp::field::vary, "Origin");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

} // namespace

TEST_CASE("wire: responses are the bytes Beast's serializer writes") {
  SECTION("200 with a JSON body and many fields, keep-alive") {
    auto res = json(bhttp::status::ok, R"({"id":"a","title":"x","completed":false})");
    res.set(bhttp::field::etag, "\"v1-abc\"");
    res.set(bhttp::field::cache_control, "private, no-cache");
    res.set("traceresponse", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    res.set(bhttp::field::access_control_allow_origin, "http://localhost:3000");
    res.keep_alive(true);
    CHECK(ours(res) == beast_bytes(res));
    CHECK(ours(res).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  }
  SECTION("201 with Location, then closing") {
    auto res = json(bhttp::status::created, R"({"id":"b"})");
    res.set(bhttp::field::location, "/api/tasks/b");
    res.keep_alive(false);
    CHECK(ours(res) == beast_bytes(res));
    CHECK(ours(res).find("Connection: close\r\n") != std::string::npos);
  }
  SECTION("204 and 304 without Content-Length or body") {
    response no_content{bhttp::status::no_content, 11};
    no_content.set("X-Request-Id", "r");
    CHECK(ours(no_content) == beast_bytes(no_content));
    CHECK(ours(no_content) == "HTTP/1.1 204 No Content\r\nX-Request-Id: r\r\n\r\n");
    response not_modified{bhttp::status::not_modified, 11};
    not_modified.set(bhttp::field::etag, "\"v2\"");
    CHECK(ours(not_modified) == beast_bytes(not_modified));
  }
  SECTION("HEAD: the GET's Content-Length, no body bytes") {
    auto res = json(bhttp::status::ok, std::string(1234, 'x'));
    res.body().clear();
    res.content_length(1234);
    CHECK(ours(res) == beast_bytes(res));
    CHECK(ours(res).find("Content-Length: 1234\r\n") != std::string::npos);
    CHECK(ours(res).substr(ours(res).size() - 4) == "\r\n\r\n");
  }
  SECTION("HTTP/1.0 keeps its version and says keep-alive") {
    auto res = json(bhttp::status::ok, "[]", 10);
    res.keep_alive(true);
    CHECK(ours(res) == beast_bytes(res));
    CHECK(ours(res).rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
  }
  SECTION("errors: 401 with WWW-Authenticate, 413, 503 with Retry-After, 500") {
    auto unauthorized = json(bhttp::status::unauthorized, R"({"detail":"Not authenticated"})");
    unauthorized.set(bhttp::field::www_authenticate, "Bearer");
    CHECK(ours(unauthorized) == beast_bytes(unauthorized));
    auto too_large = json(bhttp::status::payload_too_large, R"({"detail":"too large"})");
    too_large.keep_alive(false);
    CHECK(ours(too_large) == beast_bytes(too_large));
    auto busy = json(bhttp::status::service_unavailable, R"({"detail":"busy"})");
    busy.set(bhttp::field::retry_after, "1");
    CHECK(ours(busy) == beast_bytes(busy));
    auto internal = json(bhttp::status::internal_server_error, R"({"detail":"x"})");
    CHECK(ours(internal) == beast_bytes(internal));
  }
  SECTION("a reason phrase set by hand, and a status Beast has no phrase for") {
    auto custom = json(bhttp::status::ok, "{}");
    custom.reason("Fine");
    CHECK(ours(custom) == beast_bytes(custom));
    CHECK(ours(custom).rfind("HTTP/1.1 200 Fine\r\n", 0) == 0);
    response odd{static_cast<bhttp::status>(599), 11};
    odd.body() = "?";
    odd.prepare_payload();
    CHECK(ours(odd) == beast_bytes(odd));
  }
  SECTION("a large body with every byte value, and an empty 200") {
    std::string body;
    for (int i = 0; i < 70000; ++i)
      body += static_cast<char>(i % 256);
    auto big = json(bhttp::status::ok, body);
    CHECK(ours(big) == beast_bytes(big));
    auto empty = json(bhttp::status::ok, "");
    CHECK(ours(empty) == beast_bytes(empty));
    CHECK(ours(empty).find("Content-Length: 0\r\n") != std::string::npos);
  }
}

TEST_CASE("wire: an event stream's head is Beast's header bytes") {
  // open_stream writes the head itself, then chunked frames.
  response head{bhttp::status::ok, 11};
  head.set(bhttp::field::content_type, "text/event-stream");
  head.set(bhttp::field::cache_control, "no-cache");
  head.set(bhttp::field::transfer_encoding, "chunked");
  head.keep_alive(true);
  std::ostringstream os;
  os << head.base();
  std::string out;
  append_head(out, head);
  CHECK(out == os.str());
}

TEST_CASE("wire: appends to what the buffer already holds") {
  auto first = json(bhttp::status::ok, "[1]");
  auto second = json(bhttp::status::created, "{}");
  std::string out;
  append_ours(out, first);
  append_ours(out, second);
  CHECK(out == beast_bytes(first) + beast_bytes(second));
}
