#pragma once
// OpenSSL pieces shared by the token code (JWT verification and signing, JWKS parsing). Internal
// to actors/tokens/: nothing outside this folder includes it.

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

namespace todo::jwt {

constexpr size_t hs256_signature_bytes = 32;
constexpr size_t ecdsa_coordinate_bytes = 32; // P-256
constexpr size_t ed25519_signature_bytes = 64;
constexpr int pss_salt_bytes = 32; // RFC 7518 §3.5: the salt is as long as the SHA-256 digest
constexpr int min_rsa_bits = 2048;
// Bigger moduli only make verification slower; nothing real uses more than 8192 bits.
constexpr int max_rsa_bits = 8192;

/// The asymmetric JOSE algorithms we verify.
enum class scheme : uint8_t { eddsa, es256, rs256, ps256 };

/// Returns the scheme of a JOSE `alg`, or nullopt for anything we do not verify asymmetrically.
std::optional<scheme> scheme_of(std::string_view alg);

/// Sets RSA-PSS with SHA-256, MGF1-SHA256 and a 32-byte salt on a sign/verify context.
bool set_pss(EVP_PKEY_CTX* pctx);

using mac_bytes = std::array<unsigned char, hs256_signature_bytes>;

/// Returns HMAC-SHA256 of `data` under `secret`, or nullopt if OpenSSL fails.
std::optional<mac_bytes> hmac_sha256(std::string_view secret, std::string_view data);

inline const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

struct openssl_free {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, openssl_free>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, openssl_free>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_free>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, openssl_free>;
using bn_ptr = std::unique_ptr<BIGNUM, openssl_free>;

} // namespace todo::jwt
