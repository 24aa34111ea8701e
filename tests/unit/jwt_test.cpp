#include "actors/tokens/jwt.hpp"

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "actors/tokens/jwks.hpp"

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

// ---------------------------------------------------------------------------------------------
// Asymmetric algorithms (EdDSA, ES256, RS256, PS256) against a JWKS.

namespace {

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

/// Generated once per test run: RSA key generation is slow.
struct test_keys {
  pkey_ptr ed = pkey_ptr{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")};
  pkey_ptr ed_other = pkey_ptr{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")};
  pkey_ptr ec = pkey_ptr{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
  pkey_ptr ec_other = pkey_ptr{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
  pkey_ptr rsa = pkey_ptr{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})};
  pkey_ptr rsa_other = pkey_ptr{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})};

  /// ed-1 (EdDSA), ec-1 (ES256), rs-1 (RS256), ps-1 (PS256, same RSA key), rsa-any (no alg).
  std::string jwks() const {
    return R"({"keys":[)" + todo::jwks::to_public_jwk(ed.get(), "ed-1", "EdDSA") + ","
           + todo::jwks::to_public_jwk(ec.get(), "ec-1", "ES256") + ","
           + todo::jwks::to_public_jwk(rsa.get(), "rs-1", "RS256") + ","
           + todo::jwks::to_public_jwk(rsa.get(), "ps-1", "PS256") + ","
           + todo::jwks::to_public_jwk(rsa_other.get(), "rsa-any", "") + "]}";
  }
};

const test_keys& keys() {
  static const test_keys k;
  return k;
}

std::shared_ptr<const key_source> test_jwks() {
  auto parsed = todo::jwks::parse(keys().jwks());
  REQUIRE(parsed);
  REQUIRE(parsed.warnings.empty());
  return parsed.keys;
}

std::string header(const std::string& alg, const std::string& kid) {
  std::string h = R"({"alg":")" + alg + R"(","typ":"JWT")";
  if (!kid.empty())
    h += R"(,"kid":")" + kid + '"';
  return h + "}";
}

/// Signs `payload` under `alg` with `key`; the header names `header_alg` and `kid`.
std::string asym(const std::string& alg, EVP_PKEY* key, const std::string& kid,
                 const std::string& payload = valid_payload, std::string header_alg = "") {
  if (header_alg.empty())
    header_alg = alg;
  return sign_with_key(alg, key, header(header_alg, kid), payload);
}

/// Returns `token` with its signature replaced by `raw`.
std::string with_signature(const std::string& token, const std::string& raw) {
  return token.substr(0, token.rfind('.') + 1) + base64url_encode(raw);
}

std::string signature_of(const std::string& token) {
  return *base64url_decode(token.substr(token.rfind('.') + 1));
}

/// Signs PS256 with the longest possible salt instead of the 32 bytes RFC 7518 prescribes.
std::string ps256_max_salt(EVP_PKEY* key, const std::string& kid) {
  std::string input = base64url_encode(header("PS256", kid)) + "." + base64url_encode(valid_payload);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  size_t len = 0;
  EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), nullptr, key);
  EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_MAX);
  EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256());
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  return input + "." + base64url_encode(sig);
}

std::string public_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

/// Returns the raw ES256 signature with s replaced by n - s (the other valid "high-s" form).
std::string high_s(const std::string& raw) {
  BIGNUM* n = nullptr;
  BN_hex2bn(&n, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  BN_sub(s, n, s);
  std::string out = raw;
  BN_bn2binpad(s, reinterpret_cast<unsigned char*>(out.data()) + 32, 32);
  BN_free(n);
  BN_free(s);
  return out;
}

enum class aprofile { all, hs_only, eddsa_only, no_secret, issuer, audience, no_exp };

options asym_options(aprofile p) {
  options o;
  o.hs256_secret = secret;
  o.algorithms = {"HS256", "EdDSA", "ES256", "RS256", "PS256"};
  switch (p) {
    case aprofile::all:
      break;
    case aprofile::hs_only:
      o.algorithms = {"HS256"};
      break;
    case aprofile::eddsa_only:
      o.algorithms = {"EdDSA"};
      break;
    case aprofile::no_secret:
      o.hs256_secret.clear();
      break;
    case aprofile::issuer:
      o.issuer = "http://localhost:3000";
      break;
    case aprofile::audience:
      o.audience = "http://localhost:3000";
      break;
    case aprofile::no_exp:
      o.require_exp = false;
      break;
  }
  return o;
}

struct arow {
  std::string name;
  std::string token;
  failure expected;
  aprofile prof = aprofile::all;
};

std::vector<arow> asymmetric_table() {
  const auto& k = keys();
  auto t = [](int64_t offset) { return std::to_string(now + offset); };
  auto ed = [&k](const std::string& payload) { return asym("EdDSA", k.ed.get(), "ed-1", payload); };
  std::string ed_ok = ed(valid_payload);
  std::string es_ok = asym("ES256", k.ec.get(), "ec-1");
  std::string es_raw = signature_of(es_ok);
  std::string rs_ok = asym("RS256", k.rsa.get(), "rs-1");
  std::string rsa_pem = public_pem(k.rsa.get());
  std::string zero32(32, '\0');
  // What Better Auth's jwt() plugin issues by default.
  std::string better_auth_claims =
    R"({"iat":)" + t(-10) + R"(,"name":"Ann","email":"ann@example.com","emailVerified":false,)"
    + R"("id":"yQ3nO8wYH1","sub":"yQ3nO8wYH1","exp":)" + t(890)
    + R"(,"iss":"http://localhost:3000","aud":"http://localhost:3000"})";

  return {
    {"EdDSA, valid", ed_ok, failure::none},
    {"ES256, valid", es_ok, failure::none},
    {"RS256, valid", rs_ok, failure::none},
    {"PS256, valid", asym("PS256", k.rsa.get(), "ps-1"), failure::none},
    {"RS256 with a JWK without alg", asym("RS256", k.rsa_other.get(), "rsa-any"), failure::none},
    {"PS256 with a JWK without alg", asym("PS256", k.rsa_other.get(), "rsa-any"), failure::none},
    {"a Better Auth EdDSA token", ed(better_auth_claims), failure::none, aprofile::audience},
    {"EdDSA without kid, one Ed25519 key in the set", asym("EdDSA", k.ed.get(), ""),
     failure::none},
    {"RS256 without kid, two RS256 keys in the set", asym("RS256", k.rsa.get(), ""),
     failure::unknown_key},
    {"EdDSA signed by another key", asym("EdDSA", k.ed_other.get(), "ed-1"),
     failure::bad_signature},
    {"ES256 signed by another key", asym("ES256", k.ec_other.get(), "ec-1"),
     failure::bad_signature},
    {"RS256 signed by another key", asym("RS256", k.rsa_other.get(), "rs-1"),
     failure::bad_signature},
    {"PS256 naming an RS256-only key", asym("PS256", k.rsa.get(), "rs-1"), failure::unknown_key},
    {"a PKCS#1 v1.5 signature labelled PS256", asym("RS256", k.rsa.get(), "ps-1", valid_payload,
                                                    "PS256"),
     failure::bad_signature},
    {"a PSS signature labelled RS256", asym("PS256", k.rsa.get(), "rs-1", valid_payload, "RS256"),
     failure::bad_signature},
    {"PS256 with a salt longer than 32 bytes", ps256_max_salt(k.rsa.get(), "ps-1"),
     failure::bad_signature},
    {"an unknown kid", asym("EdDSA", k.ed.get(), "ed-2"), failure::unknown_key},
    {"ES256 naming the Ed25519 key", asym("ES256", k.ec.get(), "ed-1"), failure::unknown_key},
    {"EdDSA naming the EC key", asym("EdDSA", k.ed.get(), "ec-1"), failure::unknown_key},
    {"HS256 keyed with the RSA public key PEM (algorithm confusion)",
     make(header("HS256", "rs-1"), valid_payload, rsa_pem), failure::bad_signature},
    {"HS256 keyed with the RSA PEM, no secret configured",
     make(header("HS256", "rs-1"), valid_payload, rsa_pem), failure::unknown_key,
     aprofile::no_secret},
    {"HS256 keyed with the Ed25519 public key bytes",
     make(header("HS256", "ed-1"), valid_payload, signature_of(ed_ok).substr(0, 32)),
     failure::bad_signature},
    {"alg none naming a JWKS key", base64url_encode(header("none", "ed-1")) + "."
                                     + base64url_encode(valid_payload) + ".",
     failure::alg_not_allowed},
    {"EdDSA when only HS256 is allowed", ed_ok, failure::alg_not_allowed, aprofile::hs_only},
    {"ES256 when only EdDSA is allowed", es_ok, failure::alg_not_allowed, aprofile::eddsa_only},
    {"ES384 is never allowed here", asym("ES256", k.ec.get(), "ec-1", valid_payload, "ES384"),
     failure::alg_not_allowed},
    {"HS256 still works beside the JWKS", good(valid_payload), failure::none},
    {"a crit header on EdDSA",
     sign_with_key("EdDSA", k.ed.get(), R"({"alg":"EdDSA","kid":"ed-1","crit":["b64"],"b64":false})",
                   valid_payload),
     failure::crit},
    {"an embedded jwk header is ignored (attacker key)",
     sign_with_key("EdDSA", k.ed_other.get(),
                   R"({"alg":"EdDSA","kid":"ed-1","jwk":)"
                     + todo::jwks::to_public_jwk(k.ed_other.get(), "ed-1", "EdDSA") + "}",
                   valid_payload),
     failure::bad_signature},
    {"a jku header is ignored (attacker key)",
     sign_with_key("EdDSA", k.ed_other.get(),
                   R"({"alg":"EdDSA","kid":"ed-1","jku":"https://evil.example/jwks"})",
                   valid_payload),
     failure::bad_signature},
    {"EdDSA expired", ed(R"({"sub":"u","exp":)" + t(-61) + "}"), failure::expired},
    {"EdDSA expired within the leeway", ed(R"({"sub":"u","exp":)" + t(-59) + "}"), failure::none},
    {"EdDSA nbf in the future", ed(claims_with(",\"nbf\":" + t(120))), failure::not_yet_valid},
    {"EdDSA iat in the future", ed(claims_with(",\"iat\":" + t(120))),
     failure::issued_in_future},
    {"EdDSA without exp", ed(R"({"sub":"u"})"), failure::missing_exp},
    {"EdDSA without exp, exp optional", ed(R"({"sub":"u"})"), failure::none, aprofile::no_exp},
    {"EdDSA with an empty sub", ed(R"({"sub":"","exp":)" + t(100) + "}"), failure::bad_subject},
    {"EdDSA without sub", ed(R"({"exp":)" + t(100) + "}"), failure::bad_subject},
    {"EdDSA with the wrong iss", ed(claims_with(R"(,"iss":"http://evil:3000")")),
     failure::bad_issuer, aprofile::issuer},
    {"EdDSA with the right iss", ed(claims_with(R"(,"iss":"http://localhost:3000")")),
     failure::none, aprofile::issuer},
    {"EdDSA with an aud array", ed(claims_with(R"(,"aud":["x","http://localhost:3000"])")),
     failure::none, aprofile::audience},
    {"EdDSA with the wrong aud", ed(claims_with(R"(,"aud":"http://evil:3000")")),
     failure::bad_audience, aprofile::audience},
    {"EdDSA with a tampered payload",
     ed_ok.substr(0, ed_ok.find('.') + 1) + base64url_encode(claims_with(",\"admin\":1"))
       + ed_ok.substr(ed_ok.rfind('.')),
     failure::bad_signature},
    {"EdDSA with a 63-byte signature", with_signature(ed_ok, signature_of(ed_ok).substr(0, 63)),
     failure::bad_signature},
    {"an oversize EdDSA token", ed(claims_with(",\"pad\":\"" + std::string(8192, 'p') + "\"")),
     failure::too_large},
    {"ES256 with a 63-byte signature", with_signature(es_ok, es_raw.substr(0, 63)),
     failure::bad_signature},
    {"ES256 with a 65-byte signature", with_signature(es_ok, es_raw + '\0'),
     failure::bad_signature},
    {"ES256 with an empty signature", with_signature(es_ok, ""), failure::bad_signature},
    {"ES256 with a DER signature", with_signature(es_ok, *ecdsa_raw_to_der(es_raw)),
     failure::bad_signature},
    {"ES256 with r = 0", with_signature(es_ok, zero32 + es_raw.substr(32)),
     failure::bad_signature},
    {"ES256 with s = 0", with_signature(es_ok, es_raw.substr(0, 32) + zero32),
     failure::bad_signature},
    {"ES256 with r = s = 0", with_signature(es_ok, zero32 + zero32), failure::bad_signature},
    {"ES256 with the high-s twin of a valid signature", with_signature(es_ok, high_s(es_raw)),
     failure::none},
    {"RS256 with a signature one byte short",
     with_signature(rs_ok, signature_of(rs_ok).substr(1)), failure::bad_signature},
    {"RS256 with a flipped signature bit",
     with_signature(rs_ok, [&] {
       auto s = signature_of(rs_ok);
       s[100] = static_cast<char>(s[100] ^ 1);
       return s;
     }()),
     failure::bad_signature},
  };
}

} // namespace

TEST_CASE("every asymmetric token in the table gets its expected verdict") {
  auto rows = asymmetric_table();
  REQUIRE(rows.size() >= 30);
  auto jwks = test_jwks();
  for (const auto& r : rows) {
    verifier v{asym_options(r.prof), jwks};
    auto out = v.verify(r.token, now);
    INFO(r.name);
    CHECK(out.error == r.expected);
    CHECK(static_cast<bool>(out) == (r.expected == failure::none));
  }
}

TEST_CASE("an EdDSA token yields its subject, expiry and algorithm") {
  verifier v{asym_options(aprofile::all), test_jwks()};
  auto out = v.verify(asym("EdDSA", keys().ed.get(), "ed-1"), now);
  REQUIRE(out);
  CHECK(out.claims.subject == "user-1");
  CHECK(out.claims.expires_at == now + 3600);
  CHECK(out.algorithm == "EdDSA");
}

TEST_CASE("ECDSA r||s conversion accepts exactly 64 bytes with non-zero halves") {
  std::string one(32, '\0');
  one.back() = 1;
  CHECK(ecdsa_raw_to_der(one + one));
  CHECK_FALSE(ecdsa_raw_to_der(""));
  CHECK_FALSE(ecdsa_raw_to_der(std::string(63, '\1')));
  CHECK_FALSE(ecdsa_raw_to_der(std::string(65, '\1')));
  CHECK_FALSE(ecdsa_raw_to_der(std::string(32, '\0') + one));
  CHECK_FALSE(ecdsa_raw_to_der(one + std::string(32, '\0')));
  // r = s = 1 is DER 30 06 02 01 01 02 01 01, and back again.
  auto der = ecdsa_raw_to_der(one + one);
  CHECK(*der == std::string("\x30\x06\x02\x01\x01\x02\x01\x01", 8));
  CHECK(ecdsa_der_to_raw(*der) == one + one);
  // A high bit in r needs a leading zero in DER; the round trip keeps all 64 bytes.
  std::string high(64, '\xff');
  CHECK(ecdsa_der_to_raw(*ecdsa_raw_to_der(high)) == high);
  CHECK_FALSE(ecdsa_der_to_raw("not der"));
  CHECK_FALSE(ecdsa_der_to_raw(*der + "x")); // trailing garbage
}

TEST_CASE("make_public_key binds a key to its own algorithm family only") {
  const auto& k = keys();
  CHECK(make_public_key("EdDSA", k.ed.get()));
  CHECK_FALSE(make_public_key("ES256", k.ed.get()));
  CHECK_FALSE(make_public_key("RS256", k.ed.get()));
  CHECK(make_public_key("ES256", k.ec.get()));
  CHECK_FALSE(make_public_key("EdDSA", k.ec.get()));
  CHECK_FALSE(make_public_key("PS256", k.ec.get()));
  CHECK(make_public_key("RS256", k.rsa.get()));
  CHECK(make_public_key("PS256", k.rsa.get()));
  CHECK_FALSE(make_public_key("HS256", k.rsa.get()));
  CHECK_FALSE(make_public_key("ES256", k.rsa.get()));
  CHECK_FALSE(make_public_key("EdDSA", nullptr));
  pkey_ptr small{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024})};
  CHECK_FALSE(make_public_key("RS256", small.get()));
  pkey_ptr p384{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384")};
  CHECK_FALSE(make_public_key("ES256", p384.get()));
  CHECK(make_public_key("RS256", k.rsa.get())->algorithm() == "RS256");
}

TEST_CASE("sign_eddsa mints tokens from a private JWK that verify against its public part") {
  auto jwk = todo::jwks::generate_ed25519_jwk("dev-1");
  auto tok = sign_eddsa(jwk, valid_payload);
  CHECK(base64url_decode(tok.substr(0, tok.find('.')))
        == std::string{R"({"alg":"EdDSA","typ":"JWT","kid":"dev-1"})"});
  // The public JWKS is the private JWK without "d".
  auto pub = jwk;
  auto d = pub.find(",\"d\":");
  pub.erase(d, pub.find('"', d + 6) + 1 - d);
  auto parsed = todo::jwks::parse("{\"keys\":[" + pub + "]}");
  REQUIRE(parsed);
  REQUIRE(parsed.keys->size() == 1);
  options o;
  o.algorithms = {"EdDSA"};
  CHECK(verifier{o, parsed.keys}.verify(tok, now));

  CHECK_THROWS(sign_eddsa("not json", valid_payload));
  CHECK_THROWS(sign_eddsa(R"({"kty":"OKP","crv":"Ed25519"})", valid_payload));
  CHECK_THROWS(sign_eddsa(R"({"kty":"EC","crv":"P-256","d":"AAAA"})", valid_payload));
  // An "x" that does not belong to "d" is refused rather than producing unverifiable tokens.
  auto other = todo::jwks::generate_ed25519_jwk("dev-2");
  auto x_at = other.find("\"x\":\"");
  auto x = other.substr(x_at, other.find('"', x_at + 5) + 1 - x_at);
  auto mixed = jwk;
  auto mx = mixed.find("\"x\":\"");
  mixed.replace(mx, mixed.find('"', mx + 5) + 1 - mx, x);
  CHECK_THROWS(sign_eddsa(mixed, valid_payload));
}

TEST_CASE("a fuzzed asymmetric token never throws and never passes") {
  verifier v{asym_options(aprofile::all), test_jwks()};
  for (const auto& tok : {asym("EdDSA", keys().ed.get(), "ed-1"), asym("ES256", keys().ec.get(), "ec-1"),
                          asym("PS256", keys().rsa.get(), "ps-1")}) {
    for (size_t i = 0; i < tok.size(); i += 3) {
      auto bad = tok;
      bad[i] = bad[i] == 'A' ? 'B' : 'A';
      CHECK_NOTHROW(v.verify(bad, now));
      CHECK_FALSE(v.verify(bad, now));
    }
  }
}
