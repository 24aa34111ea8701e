#include "actors/jwt.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

using namespace todo::jwt;

namespace {

constexpr int64_t now = 1'700'000'000;
const std::string secret = "test-secret-0123456789-abcdefghij";

/// Returns HMAC-SHA256 of `input` under `key`, independently of the code under test.
std::string hs256(const std::string& key, const std::string& input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

/// Returns a token with an arbitrary header and payload, HMAC-signed with `key`.
std::string make(const std::string& header, const std::string& payload,
                 const std::string& key = secret) {
  std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  return input + "." + base64url_encode(hs256(key, input));
}

/// Returns a standard HS256 token over `payload`.
std::string good(const std::string& payload) {
  return sign_hs256(secret, payload);
}

std::string claims_with(const std::string& extra) {
  return R"({"sub":"user-1","exp":)" + std::to_string(now + 3600) + extra + "}";
}

const std::string valid_payload = claims_with("");
const std::string hs_header = R"({"alg":"HS256","typ":"JWT"})";

enum class profile { standard, no_exp, issuer, audience, rs256_allowed, hs_and_rs_allowed };

options options_for(profile p) {
  options o;
  o.hs256_secret = secret;
  switch (p) {
    case profile::standard:
      break;
    case profile::no_exp:
      o.require_exp = false;
      break;
    case profile::issuer:
      o.issuer = "https://auth.example.com";
      break;
    case profile::audience:
      o.audience = "todo-api";
      break;
    case profile::rs256_allowed:
      o.algorithms = {"RS256"};
      break;
    case profile::hs_and_rs_allowed:
      o.algorithms = {"HS256", "RS256"};
      break;
  }
  return o;
}

struct row {
  std::string name;
  std::string token;
  failure expected;
  profile prof = profile::standard;
};

/// Changes the first character of the signature, which keeps the segment canonical.
std::string tamper_signature(std::string token) {
  auto& c = token[token.rfind('.') + 1];
  c = c == 'A' ? 'B' : 'A';
  return token;
}

std::vector<row> table() {
  auto t = [](int64_t offset) { return std::to_string(now + offset); };
  std::string valid = good(valid_payload);
  auto dot1 = valid.find('.');
  auto dot2 = valid.rfind('.');
  std::string head = valid.substr(0, dot1);
  std::string body = valid.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string sig = valid.substr(dot2 + 1);
  std::string input = head + "." + body;
  auto signed_with = [&](const std::string& raw_sig) {
    return input + "." + base64url_encode(raw_sig);
  };
  std::string full_mac = hs256(secret, input);
  // 43 characters carry 32 bytes plus 2 spare bits; setting a spare bit is non-canonical.
  const std::string alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string noncanonical_sig = sig;
  noncanonical_sig.back() = alphabet[alphabet.find(sig.back()) | 1];
  std::string deep_header = R"({"alg":"HS256","x":[[[[[[[[[[[[1]]]]]]]]]]]]})";

  return {
    {"a well-formed token is accepted", valid, failure::none},
    {"an empty token is missing", "", failure::missing},
    {"a token expired beyond the leeway", good(R"({"sub":"u","exp":)" + t(-61) + "}"),
     failure::expired},
    {"a token expired within the leeway", good(R"({"sub":"u","exp":)" + t(-60) + "}"),
     failure::none},
    {"a fractional exp is accepted", good(R"({"sub":"u","exp":)" + t(100) + ".5}"),
     failure::none},
    {"an exp that is a string", good(R"({"sub":"u","exp":")" + t(100) + "\"}"),
     failure::malformed},
    {"an nbf beyond the leeway", good(claims_with(",\"nbf\":" + t(61))), failure::not_yet_valid},
    {"an nbf within the leeway", good(claims_with(",\"nbf\":" + t(60))), failure::none},
    {"an nbf that is null", good(claims_with(",\"nbf\":null")), failure::malformed},
    {"an iat in the future", good(claims_with(",\"iat\":" + t(120))), failure::issued_in_future},
    {"an iat in the past", good(claims_with(",\"iat\":" + t(-120))), failure::none},
    {"a missing exp when exp is required", good(R"({"sub":"u"})"), failure::missing_exp},
    {"a missing exp when exp is optional", good(R"({"sub":"u"})"), failure::none,
     profile::no_exp},
    {"a tampered signature", tamper_signature(valid), failure::bad_signature},
    {"a token signed with another secret", make(hs_header, valid_payload, "other-secret"),
     failure::bad_signature},
    {"a tampered payload",
     head + "." + base64url_encode(claims_with(",\"admin\":true")) + "." + sig,
     failure::bad_signature},
    {"a 31-byte signature", signed_with(full_mac.substr(0, 31)), failure::bad_signature},
    {"a 33-byte signature", signed_with(full_mac + "x"), failure::bad_signature},
    {"an empty signature", input + ".", failure::bad_signature},
    {"a signature with non-canonical trailing bits", input + "." + noncanonical_sig,
     failure::malformed},
    {"alg none", base64url_encode(R"({"alg":"none"})") + "." + body + ".",
     failure::alg_not_allowed},
    {"alg none in mixed case", make(R"({"alg":"NoNe"})", valid_payload), failure::alg_not_allowed},
    {"alg HS512 outside the allow-list", make(R"({"alg":"HS512"})", valid_payload),
     failure::alg_not_allowed},
    {"alg RS256 outside the allow-list", make(R"({"alg":"RS256"})", valid_payload),
     failure::alg_not_allowed},
    {"alg RS256 allowed but no key is known", make(R"({"alg":"RS256"})", valid_payload),
     failure::unknown_key, profile::rs256_allowed},
    {"HS256 when only RS256 is allowed", valid, failure::alg_not_allowed, profile::rs256_allowed},
    {"HS256 when HS256 and RS256 are allowed", valid, failure::none, profile::hs_and_rs_allowed},
    {"a crit header", make(R"({"alg":"HS256","crit":["exp"]})", valid_payload), failure::crit},
    {"any typ is fine", make(R"({"alg":"HS256","typ":"at+jwt"})", valid_payload), failure::none},
    {"a non-string typ is fine", make(R"({"alg":"HS256","typ":7})", valid_payload),
     failure::none},
    {"a non-string kid", make(R"({"alg":"HS256","kid":1})", valid_payload), failure::malformed},
    {"padding on a segment", head + "." + body + "=." + sig, failure::malformed},
    {"a '+' in a segment", head + "." + body + "." + sig.substr(0, 10) + "+" + sig.substr(11),
     failure::malformed},
    {"a '/' in a segment", head + "." + body + "." + sig.substr(0, 10) + "/" + sig.substr(11),
     failure::malformed},
    {"a space inside a segment", head + ". " + body + "." + sig, failure::malformed},
    {"a trailing newline", valid + "\n", failure::malformed},
    {"an impossible segment length", head + "." + body + "." + sig + "AB", failure::malformed},
    {"two segments", head + "." + body, failure::malformed},
    {"four segments", valid + "." + sig, failure::malformed},
    {"no dots at all", head, failure::malformed},
    {"a header that is not JSON", make("alg=HS256", valid_payload), failure::malformed},
    {"a header that is an array", make(R"(["HS256"])", valid_payload), failure::malformed},
    {"a header without alg", make(R"({"typ":"JWT"})", valid_payload), failure::malformed},
    {"a header whose alg is a number", make(R"({"alg":256})", valid_payload), failure::malformed},
    {"a header nested too deep", make(deep_header, valid_payload), failure::malformed},
    {"a signed payload that is not JSON", good("not json"), failure::malformed},
    {"a signed payload that is an array", good("[1,2]"), failure::malformed},
    {"a missing sub", good(R"({"exp":)" + t(100) + "}"), failure::bad_subject},
    {"an empty sub", good(R"({"sub":"","exp":)" + t(100) + "}"), failure::bad_subject},
    {"a numeric sub", good(R"({"sub":42,"exp":)" + t(100) + "}"), failure::bad_subject},
    {"a sub with a NUL byte", good(R"({"sub":"a\u0000b","exp":)" + t(100) + "}"),
     failure::bad_subject},
    {"a 256-byte sub", good(R"({"sub":")" + std::string(256, 's') + R"(","exp":)" + t(100) + "}"),
     failure::bad_subject},
    {"a 255-byte sub", good(R"({"sub":")" + std::string(255, 's') + R"(","exp":)" + t(100) + "}"),
     failure::none},
    {"a matching iss", good(claims_with(R"(,"iss":"https://auth.example.com")")), failure::none,
     profile::issuer},
    {"a different iss", good(claims_with(R"(,"iss":"https://evil.example.com")")),
     failure::bad_issuer, profile::issuer},
    {"a missing iss when one is required", valid, failure::bad_issuer, profile::issuer},
    {"any iss when none is configured", good(claims_with(R"(,"iss":"whatever")")), failure::none},
    {"a matching aud string", good(claims_with(R"(,"aud":"todo-api")")), failure::none,
     profile::audience},
    {"an aud array containing ours", good(claims_with(R"(,"aud":["web","todo-api"])")),
     failure::none, profile::audience},
    {"a different aud string", good(claims_with(R"(,"aud":"billing")")), failure::bad_audience,
     profile::audience},
    {"an aud array without ours", good(claims_with(R"(,"aud":["web","billing"])")),
     failure::bad_audience, profile::audience},
    {"a missing aud when one is required", valid, failure::bad_audience, profile::audience},
    {"an oversize token", good(claims_with(",\"pad\":\"" + std::string(8192, 'p') + "\"")),
     failure::too_large},
  };
}

/// Accepts any signature for one algorithm; stands in for a JWKS key.
class permissive_key : public key {
public:
  explicit permissive_key(std::string alg) : alg_(std::move(alg)) {}
  std::string_view algorithm() const override { return alg_; }
  bool check(std::string_view, std::string_view) const override { return true; }

private:
  std::string alg_;
};

/// Serves one key for every request and counts the requests.
class fixed_source : public key_source {
public:
  explicit fixed_source(std::string key_alg) : key_(std::make_shared<permissive_key>(key_alg)) {}
  std::shared_ptr<const key> find(std::string_view alg, std::string_view kid) const override {
    ++calls;
    last_alg.assign(alg.data(), alg.size());
    last_kid.assign(kid.data(), kid.size());
    return key_;
  }
  mutable int calls = 0;
  mutable std::string last_alg;
  mutable std::string last_kid;

private:
  std::shared_ptr<const key> key_;
};

} // namespace

TEST_CASE("every token in the table gets its expected verdict") {
  auto rows = table();
  REQUIRE(rows.size() >= 20);
  for (const auto& r : rows) {
    verifier v{options_for(r.prof)};
    auto out = v.verify(r.token, now);
    INFO(r.name);
    CHECK(out.error == r.expected);
    CHECK(static_cast<bool>(out) == (r.expected == failure::none));
  }
}

TEST_CASE("an accepted token yields its subject and expiry") {
  verifier v{options_for(profile::standard)};
  auto out = v.verify(good(R"({"sub":"alice","exp":)" + std::to_string(now + 10) + "}"), now);
  REQUIRE(out);
  CHECK(out.claims.subject == "alice");
  CHECK(out.claims.expires_at == now + 10);
  verifier lax{options_for(profile::no_exp)};
  auto no_exp = lax.verify(good(R"({"sub":"bob"})"), now);
  REQUIRE(no_exp);
  CHECK(no_exp.claims.expires_at == 0);
}

TEST_CASE("a refused token carries no claims") {
  verifier v{options_for(profile::standard)};
  auto out = v.verify(good(R"({"sub":"alice","exp":1})"), now);
  CHECK(out.error == failure::expired);
  CHECK(out.claims.subject.empty());
}

TEST_CASE("a verifier without a secret knows no HS256 key") {
  options o;
  verifier v{o};
  CHECK(v.verify(good(valid_payload), now).error == failure::unknown_key);
}

TEST_CASE("the leeway setting moves the expiry boundary") {
  auto o = options_for(profile::standard);
  o.leeway_seconds = 0;
  verifier v{o};
  auto tok = good(R"({"sub":"u","exp":)" + std::to_string(now) + "}");
  CHECK(v.verify(tok, now).error == failure::none);
  CHECK(v.verify(tok, now + 1).error == failure::expired);
}

TEST_CASE("a token of exactly max_token_bytes is not too large") {
  auto o = options_for(profile::standard);
  auto tok = good(valid_payload);
  o.max_token_bytes = tok.size();
  CHECK(verifier{o}.verify(tok, now).error == failure::none);
  o.max_token_bytes = tok.size() - 1;
  CHECK(verifier{o}.verify(tok, now).error == failure::too_large);
}

TEST_CASE("an asymmetric key source serves only the algorithms it names") {
  auto o = options_for(profile::hs_and_rs_allowed);
  o.algorithms.push_back("HS384");
  auto rs = std::make_shared<fixed_source>("RS256");
  verifier v{o, rs};
  auto rs_token = make(R"({"alg":"RS256","kid":"k1"})", valid_payload);

  auto out = v.verify(rs_token, now);
  CHECK(out.error == failure::none);
  CHECK(rs->last_alg == "RS256");
  CHECK(rs->last_kid == "k1");

  // An HS256 token is checked with the shared secret, never with a key from the source.
  int before = rs->calls;
  CHECK(v.verify(make(hs_header, valid_payload, "wrong"), now).error == failure::bad_signature);
  // No HMAC algorithm is ever looked up in the asymmetric source.
  CHECK(v.verify(make(R"({"alg":"HS384"})", valid_payload), now).error == failure::unknown_key);
  CHECK(rs->calls == before);
}

TEST_CASE("no prefix or single-byte corruption of a good token is accepted") {
  verifier v{options_for(profile::standard)};
  auto tok = good(valid_payload);
  for (size_t len = 0; len < tok.size(); ++len)
    CHECK_FALSE(v.verify(tok.substr(0, len), now));
  for (size_t i = 0; i < tok.size(); ++i) {
    for (char c : {'\0', '.', 'A', '~', '\xff'}) {
      auto bad = tok;
      if (bad[i] == c)
        continue;
      bad[i] = c;
      CHECK_NOTHROW(v.verify(bad, now));
      CHECK_FALSE(v.verify(bad, now));
    }
  }
}

TEST_CASE("a key whose algorithm differs from the header is not used") {
  auto o = options_for(profile::rs256_allowed);
  verifier v{o, std::make_shared<fixed_source>("EdDSA")};
  CHECK(v.verify(make(R"({"alg":"RS256"})", valid_payload), now).error == failure::unknown_key);
}

TEST_CASE("every failure has a short reason that names no secret or library") {
  for (int i = 0; i <= static_cast<int>(failure::bad_audience); ++i) {
    auto text = std::string{reason(static_cast<failure>(i))};
    INFO(i);
    CHECK_FALSE(text.empty());
    CHECK(text.size() < 60);
    std::string lower = text;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const char* word : {"secret", "openssl", "boost", "hmac", "exception"})
      CHECK(lower.find(word) == std::string::npos);
  }
  CHECK(reason(failure::missing) == "Not authenticated");
  CHECK(reason(failure::expired) == "Token expired");
  CHECK(reason(failure::bad_signature) == "Invalid token signature");
  CHECK(reason(failure::malformed) == "Invalid token");
}

TEST_CASE("sign_hs256 produces the standard header and a verifiable signature") {
  auto tok = sign_hs256(secret, valid_payload);
  auto dot1 = tok.find('.');
  CHECK(base64url_decode(tok.substr(0, dot1)) == hs_header);
  CHECK(tok == make(hs_header, valid_payload));
}

TEST_CASE("base64url encodes the RFC 4648 vectors without padding") {
  CHECK(base64url_encode("") == "");
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  CHECK(base64url_encode("foo") == "Zm9v");
  CHECK(base64url_encode("foob") == "Zm9vYg");
  CHECK(base64url_encode("fooba") == "Zm9vYmE");
  CHECK(base64url_encode("foobar") == "Zm9vYmFy");
  CHECK(base64url_encode("\xfb") == "-w");
  CHECK(base64url_encode("\xff\xff") == "__8");
}

TEST_CASE("base64url round-trips every byte value at every tail length") {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += static_cast<char>(i);
  for (size_t len = 0; len <= all.size(); ++len) {
    auto bytes = all.substr(all.size() - len);
    auto decoded = base64url_decode(base64url_encode(bytes));
    REQUIRE(decoded);
    CHECK(*decoded == bytes);
  }
}

TEST_CASE("base64url decoding is strict") {
  CHECK(base64url_decode("") == std::string{});
  CHECK(base64url_decode("Zm9vYmFy") == std::string{"foobar"});
  CHECK(base64url_decode("-w") == std::string{"\xfb"});
  CHECK_FALSE(base64url_decode("Zg=="));   // padding
  CHECK_FALSE(base64url_decode("Zg="));    // padding
  CHECK_FALSE(base64url_decode("Z"));      // length 1 mod 4
  CHECK_FALSE(base64url_decode("Zm9vY"));  // length 1 mod 4
  CHECK_FALSE(base64url_decode("Zh"));     // non-zero spare bits
  CHECK_FALSE(base64url_decode("Zm9"));    // non-zero spare bits
  CHECK_FALSE(base64url_decode("+w"));     // standard alphabet
  CHECK_FALSE(base64url_decode("/w"));     // standard alphabet
  CHECK_FALSE(base64url_decode("Zm 9v"));  // whitespace
  CHECK_FALSE(base64url_decode("Zm9v\n")); // whitespace
  CHECK_FALSE(base64url_decode(std::string("Zm\0v", 4)));
  CHECK_FALSE(base64url_decode("Zm9v\xc3\xa9"));
}
