#pragma once
// Key material and tokens for the token tests (unit and actor): fresh keys, JWKS documents,
// signed tokens with a fixed clock.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <openssl/evp.h>

#include "actors/tokens/jwt.hpp"

namespace todo::test {

inline constexpr int64_t now = 1'700'000'000;

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

inline pkey_ptr ed25519() {
  return pkey_ptr{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")};
}

inline pkey_ptr p256() {
  return pkey_ptr{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
}

inline const pkey_ptr& rsa2048() {
  static const pkey_ptr k{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})};
  return k;
}

inline std::string jwks_of(const std::vector<std::string>& jwks) {
  std::string out = R"({"keys":[)";
  for (size_t i = 0; i < jwks.size(); ++i)
    out += (i ? "," : "") + jwks[i];
  return out + "]}";
}

inline std::string payload(const std::string& sub = "alice", int64_t exp = now + 900) {
  return R"({"sub":")" + sub + R"(","exp":)" + std::to_string(exp) + "}";
}

inline std::string ed_token(EVP_PKEY* key, const std::string& kid, const std::string& body = payload()) {
  return jwt::sign_with_key("EdDSA", key, R"({"alg":"EdDSA","kid":")" + kid + R"("})", body);
}

} // namespace todo::test
