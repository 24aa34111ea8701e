#pragma once
// JSON Web Key Sets (RFC 7517) as a jwt::key_source. Pure code: no actors, no I/O.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "actors/tokens/jwt.hpp"

namespace todo::jwks {

/// An immutable set of public keys, found by algorithm and `kid`. Safe to share between threads.
class key_set final : public jwt::key_source {
public:
  /// One usable key: its `kid` (may be empty) and the key, bound to one algorithm.
  struct entry {
    std::string kid;
    std::shared_ptr<const jwt::key> key;
  };

  explicit key_set(std::vector<entry> entries);

  /// Returns the key for `alg` whose kid is `kid`. A token without a kid gets a key only when
  /// exactly one key of the set verifies `alg`; otherwise nullptr.
  std::shared_ptr<const jwt::key> find(std::string_view alg, std::string_view kid) const override;

  /// Returns the number of (kid, algorithm) entries; an RSA key without "alg" counts twice.
  size_t size() const { return entries_.size(); }

  /// Returns whether some key carries `kid`.
  bool has_kid(std::string_view kid) const;

private:
  std::vector<entry> entries_;
};

/// The outcome of parsing a JWKS document.
struct parse_result {
  std::shared_ptr<const key_set> keys; // null when the document itself is unusable
  std::string error;                   // why the document is unusable, else empty
  std::vector<std::string> warnings;   // one line per skipped key or duplicate kid
  explicit operator bool() const { return keys != nullptr; }
};

/// Keys beyond this many in one document are skipped (with a warning).
constexpr size_t max_keys = 64;

/// Parses `{"keys":[...]}`. Keys of an unknown kty or crv, with missing or malformed members,
/// with a "use" other than "sig", an "alg" that does not fit their type, RSA moduli under 2048
/// bits, EC points off the curve, or a kid already seen (the first one wins) are skipped and
/// reported in `warnings`, which name only the kid and the reason. A document that is not JSON
/// or has no "keys" array is an error. Never throws.
parse_result parse(std::string_view document);

/// Returns the public JWK of `pkey` (Ed25519, P-256 or RSA) as JSON text, with "kid" and
/// "alg" when non-empty and "use":"sig"; throws std::invalid_argument for another key type.
std::string to_public_jwk(EVP_PKEY* pkey, std::string_view kid, std::string_view alg);

/// Returns a fresh Ed25519 private JWK ({"kty":"OKP","crv":"Ed25519","d":...,"x":...,
/// "kid":...,"alg":"EdDSA"}), for local testing with jwt::sign_eddsa.
std::string generate_ed25519_jwk(std::string_view kid);

/// Reads the file at `path` (at most 1 MiB) and parses it like `parse`.
parse_result parse_file(const std::string& path);

} // namespace todo::jwks
