// JWKS parsing, the verified-token cache and the JWKS fetcher (the auth actor: tests/actors).
#include "actors/tokens/jwks.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <openssl/evp.h>

#include "actors/tokens/token_cache.hpp"
#include "http/jwks_fetch.hpp"
#include "tests/support/keys.hpp"

using namespace todo;

namespace {

using namespace todo::test;

/// Returns `jwk` with member `name` removed or (when `value` is given) replaced.
std::string edit(std::string jwk, const std::string& name, const std::string& value = "") {
  auto at = jwk.find("\"" + name + "\":");
  REQUIRE(at != std::string::npos);
  auto start = at + name.size() + 3;
  auto end = jwk[start] == '"' ? jwk.find('"', start + 1) + 1 : jwk.find_first_of(",}", start);
  if (value.empty()) {
    // Take the comma on one side with it.
    if (jwk[end] == ',')
      jwk.erase(at, end + 1 - at);
    else
      jwk.erase(at - 1, end - at + 1);
  } else {
    jwk.replace(start, end - start, value);
  }
  return jwk;
}

bool mentions(const std::vector<std::string>& warnings, const std::string& what) {
  for (const auto& w : warnings)
    if (w.find(what) != std::string::npos)
      return true;
  return false;
}

} // namespace

// ------------------------------------------------------------------------------------ parsing

TEST_CASE("a Better Auth JWKS with extra members parses") {
  auto key = ed25519();
  auto jwk = jwks::to_public_jwk(key.get(), "ba-1", "EdDSA");
  jwk = edit(jwk, "use"); // Better Auth sends no "use"
  jwk.insert(jwk.size() - 1, R"(,"createdAt":"2025-01-01T00:00:00.000Z","extra":{"a":[1]})");
  auto parsed = jwks::parse(jwks_of({jwk}));
  REQUIRE(parsed);
  CHECK(parsed.warnings.empty());
  CHECK(parsed.keys->size() == 1);
  CHECK(parsed.keys->has_kid("ba-1"));
  CHECK(parsed.keys->find("EdDSA", "ba-1"));
  CHECK_FALSE(parsed.keys->find("ES256", "ba-1"));
}

TEST_CASE("a document that is not a JWKS is an error") {
  for (const char* doc : {"", "not json", "[]", "{}", R"({"keys":{}})", R"({"keys":"x"})",
                          R"({"keys":[] )", "null", R"({"keys":null})"}) {
    INFO(doc);
    auto parsed = jwks::parse(doc);
    CHECK_FALSE(parsed);
    CHECK_FALSE(parsed.error.empty());
  }
  auto empty = jwks::parse(R"({"keys":[]})");
  REQUIRE(empty);
  CHECK(empty.keys->size() == 0);
  CHECK(jwks::parse(std::string(2 << 20, ' ')).error == "JWKS document too large");
}

TEST_CASE("unusable keys are skipped and reported, the others kept") {
  auto ed = ed25519();
  auto ec = p256();
  const auto& rsa = rsa2048();
  auto good_ed = jwks::to_public_jwk(ed.get(), "good-ed", "EdDSA");
  auto good_ec = jwks::to_public_jwk(ec.get(), "good-ec", "ES256");
  auto good_rs = jwks::to_public_jwk(rsa.get(), "good-rs", "");
  pkey_ptr small{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024})};
  pkey_ptr p384{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384")};

  struct bad {
    std::string jwk;
    std::string reason;
  };
  auto renamed = [](std::string jwk, const std::string& kid) {
    return edit(std::move(jwk), "kid", "\"" + kid + "\"");
  };
  std::vector<bad> bads = {
    {R"({"kty":"oct","k":"c2VjcmV0","kid":"b1"})", "unsupported kty"},
    {R"({"kty":"XYZ","kid":"b2"})", "unsupported kty"},
    {R"({"kid":"b3","x":"AA"})", "missing kty"},
    {"42", "not an object"},
    {renamed(edit(good_ed, "crv", "\"X25519\""), "b4"), "unsupported crv"},
    {renamed(edit(good_ed, "x"), "b5"), "missing or malformed x"},
    {renamed(edit(good_ed, "x", "\"AAAA\""), "b6"), "missing or malformed x"},
    {renamed(edit(good_ed, "x", "\"a+b/\""), "b7"), "missing or malformed x"},
    {renamed(edit(good_ec, "y"), "b8"), "missing or malformed x or y"},
    {renamed(edit(good_ec, "crv", "\"P-384\""), "b9"), "unsupported crv"},
    {renamed(edit(good_ec, "y",
                  "\"" + jwt::base64url_encode(std::string(31, '\0') + "\x01") + "\""),
             "b10"),
     "point not on the curve"},
    {renamed(edit(good_rs, "n"), "b11"), "missing or malformed n or e"},
    {renamed(edit(good_rs, "e", "\"AAE=\""), "b12"), "missing or malformed n or e"},
    {renamed(edit(good_rs, "e", "\"Ag\""), "b13"), "missing or malformed n or e"}, // e = 2
    {jwks::to_public_jwk(small.get(), "b14", "RS256"), "RSA key shorter than 2048 bits"},
    {renamed(edit(good_ed, "use", "\"enc\""), "b15"), "use is not sig"},
    {renamed(edit(good_ed, "alg", "\"ES256\""), "b16"), "alg does not fit"},
    {jwks::to_public_jwk(rsa.get(), "b17", "RS512"), "alg does not fit"},
    {renamed(edit(good_ec, "alg", "\"HS256\""), "b18"), "alg does not fit"},
    {edit(good_ed, "kid", "17"), "kid is not a string"},
    {renamed(good_ed.substr(0, good_ed.size() - 1) + R"(,"key_ops":["encrypt"]})", "b19"),
     "key_ops lacks verify"},
  };
  std::vector<std::string> all = {good_ed};
  for (const auto& b : bads)
    all.push_back(b.jwk);
  all.push_back(good_ec);
  all.push_back(good_rs);
  auto parsed = jwks::parse(jwks_of(all));
  REQUIRE(parsed);
  CHECK(parsed.warnings.size() == bads.size());
  for (size_t i = 0; i < bads.size(); ++i) {
    INFO(bads[i].jwk);
    CHECK(mentions(parsed.warnings, "#" + std::to_string(i + 2) + " "));
    CHECK(mentions(parsed.warnings, bads[i].reason));
  }
  // good-ed, good-ec, good-rs as RS256 and as PS256.
  CHECK(parsed.keys->size() == 4);
  CHECK(parsed.keys->find("EdDSA", "good-ed"));
  CHECK(parsed.keys->find("ES256", "good-ec"));
  CHECK(parsed.keys->find("RS256", "good-rs"));
  CHECK(parsed.keys->find("PS256", "good-rs"));
  // Warnings carry the kid and the reason, never key material.
  auto x_at = good_ed.find("\"x\":\"") + 5;
  auto x = good_ed.substr(x_at, good_ed.find('"', x_at) - x_at);
  for (const auto& w : parsed.warnings)
    CHECK(w.find(x) == std::string::npos);
}

TEST_CASE("a duplicate kid keeps the first key and is reported") {
  auto first = ed25519();
  auto second = ed25519();
  auto parsed = jwks::parse(jwks_of({jwks::to_public_jwk(first.get(), "dup", "EdDSA"),
                                     jwks::to_public_jwk(second.get(), "dup", "EdDSA")}));
  REQUIRE(parsed);
  REQUIRE(parsed.warnings.size() == 1);
  CHECK(mentions(parsed.warnings, "duplicate kid"));
  CHECK(mentions(parsed.warnings, "\"dup\""));
  CHECK(parsed.keys->size() == 1);
  jwt::options o;
  o.algorithms = {"EdDSA"};
  jwt::verifier v{o, parsed.keys};
  CHECK(v.verify(ed_token(first.get(), "dup"), now));
  CHECK(v.verify(ed_token(second.get(), "dup"), now).error == jwt::failure::bad_signature);
}

TEST_CASE("a token without kid matches only a lone key of its algorithm") {
  auto a = ed25519();
  auto b = ed25519();
  auto ec = p256();
  auto one = jwks::parse(jwks_of({jwks::to_public_jwk(a.get(), "a", "EdDSA"),
                                  jwks::to_public_jwk(ec.get(), "", "ES256")}));
  REQUIRE(one);
  CHECK(one.keys->find("EdDSA", ""));
  CHECK(one.keys->find("ES256", ""));
  CHECK_FALSE(one.keys->find("ES256", "other"));
  CHECK_FALSE(one.keys->find("RS256", ""));
  auto two = jwks::parse(jwks_of({jwks::to_public_jwk(a.get(), "a", "EdDSA"),
                                  jwks::to_public_jwk(b.get(), "b", "EdDSA")}));
  REQUIRE(two);
  CHECK_FALSE(two.keys->find("EdDSA", ""));
  CHECK(two.keys->find("EdDSA", "b"));
}

TEST_CASE("a JWKS file is read, a missing one is an error") {
  auto key = ed25519();
  std::string path = "jwks_test_" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream out{path};
    out << jwks_of({jwks::to_public_jwk(key.get(), "file-1", "EdDSA")});
  }
  auto parsed = jwks::parse_file(path);
  std::remove(path.c_str());
  REQUIRE(parsed);
  CHECK(parsed.keys->has_kid("file-1"));
  CHECK_FALSE(jwks::parse_file(path));
}

TEST_CASE("more than max_keys keys are cut off with a warning") {
  auto key = ed25519();
  std::vector<std::string> many;
  for (size_t i = 0; i < jwks::max_keys + 2; ++i)
    many.push_back(jwks::to_public_jwk(key.get(), "k" + std::to_string(i), "EdDSA"));
  auto parsed = jwks::parse(jwks_of(many));
  REQUIRE(parsed);
  CHECK(parsed.keys->size() == jwks::max_keys);
  CHECK(parsed.warnings.size() == 2);
  CHECK(mentions(parsed.warnings, "too many keys"));
}

// -------------------------------------------------------------------------------- token cache

TEST_CASE("the token cache is keyed by SHA-256 of the token") {
  CHECK(jwt::base64url_encode(token_cache::digest("abc"))
        == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
  token_cache c{8};
  c.insert("token-a", {"alice", now + 100}, now);
  CHECK(c.peek("token-a", now)->claims.subject == "alice");
  CHECK_FALSE(c.peek("token-b", now));
  CHECK_FALSE(c.peek("token-", now));
  CHECK_FALSE(c.peek("token-a ", now));
}

TEST_CASE("a cache entry expires at the token's exp or after the TTL, whichever is first") {
  token_cache c{8, 300};
  c.insert("short", {"a", now + 10}, now);
  c.insert("long", {"b", now + 10'000}, now);
  c.insert("none", {"c", 0}, now); // exp not required: only the TTL bounds it
  CHECK(c.peek("short", now + 9));
  CHECK_FALSE(c.peek("short", now + 10));
  CHECK(c.peek("long", now + 299));
  CHECK_FALSE(c.peek("long", now + 300));
  CHECK(c.peek("none", now + 299));
  CHECK_FALSE(c.peek("none", now + 300));
  CHECK(c.size() == 0); // expired entries are dropped when met
  // Accepted within the leeway (exp already past): not cached at all.
  c.insert("stale", {"d", now - 5}, now);
  CHECK(c.size() == 0);
  CHECK_FALSE(c.peek("stale", now));
}

TEST_CASE("the token cache holds at most its capacity and evicts the least recently used") {
  token_cache c{3};
  c.insert("t1", {"1", now + 100}, now);
  c.insert("t2", {"2", now + 100}, now);
  c.insert("t3", {"3", now + 100}, now);
  CHECK(c.peek("t1", now)); // t2 is now the least recently used
  c.insert("t4", {"4", now + 100}, now);
  CHECK(c.size() == 3);
  CHECK_FALSE(c.peek("t2", now));
  CHECK(c.peek("t1", now));
  CHECK(c.peek("t3", now));
  CHECK(c.peek("t4", now));
  c.insert("t4", {"4b", now + 100}, now); // re-insert updates in place
  CHECK(c.size() == 3);
  CHECK(c.peek("t4", now)->claims.subject == "4b");
  for (int i = 0; i < 1000; ++i)
    c.insert("x" + std::to_string(i), {"x", now + 100}, now);
  CHECK(c.size() == 3);
  c.clear();
  CHECK(c.size() == 0);
  token_cache off{0};
  off.insert("t", {"s", now + 100}, now);
  CHECK_FALSE(off.peek("t", now));
}

TEST_CASE("a cache keyed by the token itself finds it without a copy, evicts and expires") {
  // The couriers' caches: the index holds views of the nodes' own keys, so a lookup, an
  // eviction and an expiry must each find exactly the entry (short keys live inside the
  // string object, long ones on the heap: both kinds).
  token_cache c{2, 300, false};
  std::string long_a(300, 'a'), long_b(300, 'b');
  c.insert(long_a, {"alice", now + 100}, now);
  c.insert("short", {"bob", now + 100}, now);
  const auto* hit = c.peek(std::string{long_a}, now); // another buffer with the same bytes
  REQUIRE(hit != nullptr);
  CHECK(hit->claims.subject == "alice");
  CHECK(hit->expires_at == now + 100);
  CHECK(c.peek(long_b, now) == nullptr);
  CHECK(c.peek(long_a.substr(1), now) == nullptr);
  c.insert(long_b, {"carol", now + 100}, now); // "short" is the least recently used
  CHECK(c.size() == 2);
  CHECK(c.peek("short", now) == nullptr);
  CHECK(c.peek(long_b, now)->claims.subject == "carol");
  CHECK(c.lookup(long_a, now)->claims.subject == "alice");
  c.insert(long_a, {"alice2", now + 50}, now); // in place: the key's bytes stay where they are
  CHECK(c.peek(long_a, now)->claims.subject == "alice2");
  CHECK(c.peek(long_a, now + 50) == nullptr); // expired: dropped from the index and the list
  CHECK(c.size() == 1);
  c.insert("short", {"bob", now + 100}, now);
  CHECK(c.peek("short", now)->claims.subject == "bob");
  CHECK(c.peek(long_b, now)->claims.subject == "carol");
}

// ---------------------------------------------------------------------------------- fetching

TEST_CASE("JWKS URLs are split into scheme, host, port and target") {
  auto u = http::parse_url("https://auth.example.com/api/auth/jwks");
  REQUIRE(u);
  CHECK(u->tls);
  CHECK(u->host == "auth.example.com");
  CHECK(u->port == "443");
  CHECK(u->target == "/api/auth/jwks");
  u = http::parse_url("http://localhost:3000");
  REQUIRE(u);
  CHECK_FALSE(u->tls);
  CHECK(u->port == "3000");
  CHECK(u->target == "/");
  u = http::parse_url("HTTP://[::1]:8080?x=1");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->target == "/?x=1");
  for (const char* bad : {"ftp://x/", "http://", "http://:80/", "http://u:p@host/", "http://h:0/",
                          "http://h:65536/", "http://h:8x/", "http://h/a b", "http://h/#frag",
                          "http://[::1/", "//host/", "host/path"}) {
    INFO(bad);
    CHECK_FALSE(http::parse_url(bad));
  }
}

namespace {

/// Serves one canned answer per connection on 127.0.0.1, on its own thread.
class canned_server {
public:
  explicit canned_server(std::string answer, bool silent = false)
    : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this, answer = std::move(answer), silent] {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket s{ioc_};
      acceptor_.accept(s, ec);
      if (ec)
        return;
      boost::asio::streambuf buf;
      boost::asio::read_until(s, buf, "\r\n\r\n", ec);
      if (silent) {
        // Hold the connection open without answering until the client gives up.
        char c;
        s.read_some(boost::asio::buffer(&c, 1), ec);
        return;
      }
      boost::asio::write(s, boost::asio::buffer(answer), ec);
      s.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    });
  }
  ~canned_server() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/jwks";
  }

private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

std::string http_answer(const std::string& status, const std::string& body) {
  return "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

} // namespace

TEST_CASE("fetch_url returns the body of a 200 answer") {
  canned_server server{http_answer("200 OK", R"({"keys":[]})")};
  auto r = http::fetch_url(server.url());
  CHECK(r.error == "");
  CHECK(r.body == R"({"keys":[]})");
}

TEST_CASE("fetch_url refuses other statuses, oversize bodies and slow servers") {
  {
    canned_server server{http_answer("404 Not Found", "{}")};
    auto r = http::fetch_url(server.url());
    CHECK(r.error == "HTTP status 404");
    CHECK(r.body.empty());
  }
  {
    canned_server server{http_answer("302 Found", "")};
    CHECK(http::fetch_url(server.url()).error == "HTTP status 302");
  }
  {
    canned_server server{http_answer("200 OK", std::string(2000, ' '))};
    http::fetch_options o;
    o.max_body_bytes = 1000;
    auto r = http::fetch_url(server.url(), o);
    CHECK(r.error == "response larger than the limit");
    CHECK(r.body.empty());
  }
  {
    canned_server server{"", true};
    http::fetch_options o;
    o.timeout = std::chrono::milliseconds(300);
    auto start = std::chrono::steady_clock::now();
    auto r = http::fetch_url(server.url(), o);
    CHECK(r.error == "timed out");
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
  }
  CHECK(http::fetch_url("gopher://x/").error == "invalid URL");
  // Nothing listens on port 1.
  CHECK(http::fetch_url("http://127.0.0.1:1/").error == "connection failed");
}

