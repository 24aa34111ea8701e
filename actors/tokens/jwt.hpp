#pragma once
// Verification of the bearer JWTs described in API.md §1. Pure code: no actors, no I/O.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>

#include "actors/tokens/base64url.hpp"

namespace todo::jwt {

/// Why a token was refused; `none` means it was accepted.
enum class failure : uint8_t {
  none,
  missing,
  malformed,
  too_large,
  alg_not_allowed,
  unknown_key,
  crit,
  bad_signature,
  expired,
  not_yet_valid,
  issued_in_future,
  missing_exp,
  bad_subject,
  bad_issuer,
  bad_audience,
};

/// Returns a short, client-safe reason for a 401 body; it names no key, secret or library.
std::string_view reason(failure x);

/// What a verifier accepts. Mirrors the BETTER_AUTH_* and JWT_* settings.
struct options {
  std::string hs256_secret;                     // empty means no HS256 key
  std::vector<std::string> algorithms{"HS256"}; // the allow-list of header "alg" values
  int64_t leeway_seconds = 60;
  bool require_exp = true;
  std::optional<std::string> issuer;   // checked only when set
  std::optional<std::string> audience; // checked only when set
  size_t max_token_bytes = 8192;
};

/// The claims a caller may trust once a token has been verified.
/// Seconds since the Unix epoch, by the system clock: the time tokens are judged by.
int64_t unix_seconds();

struct verified {
  std::string subject;
  int64_t expires_at = 0; // seconds since the Unix epoch; 0 if the token has no exp
};

/// The result of one verification: an error, or the verified claims.
struct outcome {
  failure error = failure::none;
  verified claims;
  std::string algorithm; // the header's "alg" once it passed the allow-list, else empty
  explicit operator bool() const { return error == failure::none; }
};

/// A key that checks signatures made with exactly one JOSE algorithm.
class key {
public:
  virtual ~key() = default;
  /// Returns the "alg" this key verifies, e.g. "HS256" or "EdDSA".
  virtual std::string_view algorithm() const = 0;
  /// Returns true when `signature` (raw bytes) is valid for `signing_input` under this key.
  virtual bool check(std::string_view signing_input, std::string_view signature) const = 0;
};

/// Finds asymmetric keys by algorithm and key id (a JWKS: jwks.hpp). Implementations
/// must be safe to call from several threads at once.
class key_source {
public:
  virtual ~key_source() = default;
  /// Returns the key for `alg` and `kid` (empty when the header has none), or nullptr.
  virtual std::shared_ptr<const key> find(std::string_view alg, std::string_view kid) const = 0;
};

/// Returns an HS256 key over `secret`; it refuses signatures that are not exactly 32 bytes.
std::shared_ptr<const key> make_hs256_key(std::string secret);

/// Returns whether `alg` is one of the asymmetric JOSE algorithms we verify: EdDSA (Ed25519),
/// ES256 (P-256), RS256 or PS256.
bool is_asymmetric(std::string_view alg);

/// Returns a key that checks `alg` signatures with the public part of `pkey`, or nullptr when
/// `pkey` does not belong to that algorithm's family (Ed25519 for EdDSA, P-256 for ES256, RSA of
/// 2048 to 8192 bits for RS256 and PS256). Takes its own reference on `pkey`.
std::shared_ptr<const key> make_public_key(std::string_view alg, EVP_PKEY* pkey);

/// Converts a JWS ECDSA P-256 signature (raw r||s, exactly 64 bytes) to DER; returns nullopt
/// for any other length or when r or s is zero.
std::optional<std::string> ecdsa_raw_to_der(std::string_view raw);

/// Converts a DER ECDSA P-256 signature to the JWS form (raw r||s, 64 bytes), or nullopt.
std::optional<std::string> ecdsa_der_to_raw(std::string_view der);

/// Checks tokens against one fixed configuration. Immutable, so one instance may be shared.
class verifier {
public:
  /// Builds a verifier whose only key is the HS256 secret in `opts` (if any).
  explicit verifier(options opts);

  /// Builds a verifier that also asks `asymmetric` for keys of every algorithm other than
  /// HS256. The HMAC secret is only ever used for HS256, and a key from `asymmetric` only for
  /// the algorithm it reports, which rules out algorithm confusion.
  verifier(options opts, std::shared_ptr<const key_source> asymmetric);

  /// Returns the verified claims of `token`, or why it is refused. Never throws.
  outcome verify(std::string_view token, int64_t now_seconds) const;

  /// Returns the options this verifier was built with.
  const options& config() const { return opts_; }

private:
  std::shared_ptr<const key> find_key(std::string_view alg, std::string_view kid) const;

  options opts_;
  std::shared_ptr<const key> hs256_;
  std::shared_ptr<const key_source> asymmetric_;
};

/// Returns a compact HS256 JWS with header {"alg":"HS256","typ":"JWT"} over `payload_json`,
/// which is signed as given (it is not parsed or re-serialised). Throws std::runtime_error
/// only if OpenSSL itself fails.
std::string sign_hs256(std::string_view secret, std::string_view payload_json);

/// Returns a compact JWS with `header_json` and `payload_json` (both taken as given) signed by
/// `private_key` under `alg` (HS256 is not supported here; use sign_hs256). For the token CLI
/// and tests: it checks nothing about the key. Throws std::runtime_error when signing fails.
std::string sign_with_key(std::string_view alg, EVP_PKEY* private_key, std::string_view header_json,
                          std::string_view payload_json);

/// Returns a compact EdDSA JWS with header {"alg":"EdDSA","typ":"JWT"} (plus the JWK's "kid",
/// if any) over `payload_json`, signed with an Ed25519 private JWK ({"kty":"OKP",
/// "crv":"Ed25519","d":...,"x":...}). Throws std::runtime_error for an unusable JWK.
std::string sign_eddsa(std::string_view private_jwk_json, std::string_view payload_json);

} // namespace todo::jwt
