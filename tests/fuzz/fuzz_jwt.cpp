// libFuzzer target: token verification (HS256 and a JWKS with one key of each type), the JWKS
// parser, and the helpers under them. Every input goes through all of them.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "actors/tokens/jwks.hpp"
#include "actors/tokens/jwt.hpp"

namespace {

// The public halves of the keys that signed the seed tokens in corpus/jwt: ed-1 (EdDSA),
// ec-1 (ES256) and rs-1 (RSA without "alg", so RS256 and PS256).
constexpr std::string_view jwks_document =
  R"json({"keys":[{"kty":"OKP","crv":"Ed25519","x":"n1FFQ9fwnjTeG22pmgHuhEvPQqgKmcml47OUYV6OPtE","use":"sig","kid":"ed-1","alg":"EdDSA"},{"kty":"EC","crv":"P-256","x":"9rDak53jx0BupISv3fhMBJiUzpjUnZHtRLDh4cgWmow","y":"A6GMPVNrknOePTeXzvAJjWZ1HvIyKMHiOI4UMugec7E","use":"sig","kid":"ec-1","alg":"ES256"},{"kty":"RSA","n":"wsrgRjTFIwYhuxwMZuYzXfRltVO2JWkePFGuZAnWOVD1M0Ma4Z94jsX3K7U0Qbu1JAGMfncc-JB_3-GKFP2s9aaIURKtkqvSdMbNbXRiksNYR8He8Tcp8XVFpROD9Nm_dPdfMqSk739jUpBmBr-ebv2YwHXs1Z9cXPpr9DCzkj_I6ZYcgaN3jgDl0FNZ5a3sVHknNoV36j1QYDc0M03BSaIXLbNPyH_ullEFxAI4zOOKcDhu9IneIPTpj7JwHpIMTEEHNNIk73462nl-X1qVRLUOHCfSHjTVQV7coMHvrqzdCbhZJADacoa3WtZPcvgLDlRObVPCwnS1vARL9iQo1Q","e":"AQAB","use":"sig","kid":"rs-1"}]})json";

// The time the seed tokens were made for (their exp is an hour later).
constexpr int64_t now = 1'700'000'000;

todo::jwt::options fuzz_options() {
  todo::jwt::options o;
  o.hs256_secret = "fuzz-secret";
  o.algorithms = {"HS256", "EdDSA", "ES256", "RS256", "PS256"};
  o.issuer = "https://auth.example";
  o.audience = "todo";
  return o;
}

const todo::jwt::verifier& the_verifier() {
  static const todo::jwt::verifier v = [] {
    auto parsed = todo::jwks::parse(jwks_document);
    if (!parsed || parsed.keys->size() != 4 || !parsed.warnings.empty())
      std::abort();
    return todo::jwt::verifier{fuzz_options(), parsed.keys};
  }();
  return v;
}

void check(bool invariant) {
  if (!invariant)
    __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};

  auto out = the_verifier().verify(input, now);
  if (out) {
    check(!out.claims.subject.empty() && out.claims.subject.size() <= 255);
    check(todo::jwt::is_asymmetric(out.algorithm) || out.algorithm == "HS256");
  } else {
    check(out.claims.subject.empty());
  }

  // Strict base64url: whatever decodes re-encodes to exactly the same text.
  if (auto bytes = todo::jwt::base64url_decode(input))
    check(todo::jwt::base64url_encode(*bytes) == input);

  if (auto der = todo::jwt::ecdsa_raw_to_der(input))
    check(todo::jwt::ecdsa_der_to_raw(*der) == input);
  if (auto raw = todo::jwt::ecdsa_der_to_raw(input))
    check(raw->size() == 64);

  // The same bytes as a JWKS; when it parses, use its keys on the input as a token.
  auto parsed = todo::jwks::parse(input);
  check(static_cast<bool>(parsed) == parsed.error.empty());
  if (parsed) {
    check(parsed.keys->size() <= 2 * todo::jwks::max_keys);
    todo::jwt::verifier v{fuzz_options(), parsed.keys};
    (void)v.verify(input, now);
    (void)parsed.keys->find("EdDSA", "");
    (void)parsed.keys->find("RS256", "rs-1");
  }
  return 0;
}
