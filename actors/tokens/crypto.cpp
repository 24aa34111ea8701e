#include "actors/tokens/openssl.hpp"

#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "actors/tokens/jwt.hpp"

namespace todo::jwt {

std::optional<scheme> scheme_of(std::string_view alg) {
  if (alg == "EdDSA")
    return scheme::eddsa;
  if (alg == "ES256")
    return scheme::es256;
  if (alg == "RS256")
    return scheme::rs256;
  if (alg == "PS256")
    return scheme::ps256;
  return std::nullopt;
}

bool set_pss(EVP_PKEY_CTX* pctx) {
  return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1
         && EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt_bytes) == 1
         && EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1;
}

std::optional<mac_bytes> hmac_sha256(std::string_view secret, std::string_view data) {
  mac_bytes out{};
  unsigned int len = 0;
  // OpenSSL may reject a null key pointer even with length 0, so point at something.
  static const unsigned char empty_key = 0;
  const void* key_ptr = secret.empty() ? static_cast<const void*>(&empty_key)
                                       : static_cast<const void*>(secret.data());
  auto* res = HMAC(EVP_sha256(), key_ptr, static_cast<int>(secret.size()),
                   reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
                   &len);
  if (res == nullptr || len != out.size())
    return std::nullopt;
  return out;
}

std::optional<std::string> ecdsa_raw_to_der(std::string_view raw) {
  if (raw.size() != 2 * ecdsa_coordinate_bytes)
    return std::nullopt;
  ecdsa_sig_ptr sig{ECDSA_SIG_new()};
  BIGNUM* r = BN_bin2bn(bytes_of(raw), ecdsa_coordinate_bytes, nullptr);
  BIGNUM* s = BN_bin2bn(bytes_of(raw) + ecdsa_coordinate_bytes, ecdsa_coordinate_bytes, nullptr);
  if (!sig || r == nullptr || s == nullptr || BN_is_zero(r) || BN_is_zero(s)
      || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0)
    return std::nullopt;
  std::string out(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  if (i2d_ECDSA_SIG(sig.get(), &p) != len)
    return std::nullopt;
  return out;
}

std::optional<std::string> ecdsa_der_to_raw(std::string_view der) {
  const auto* p = bytes_of(der);
  ecdsa_sig_ptr sig{d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()))};
  if (!sig || p != bytes_of(der) + der.size())
    return std::nullopt;
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(2 * ecdsa_coordinate_bytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, o, ecdsa_coordinate_bytes) != static_cast<int>(ecdsa_coordinate_bytes)
      || BN_bn2binpad(s, o + ecdsa_coordinate_bytes, ecdsa_coordinate_bytes)
           != static_cast<int>(ecdsa_coordinate_bytes))
    return std::nullopt;
  return out;
}

} // namespace todo::jwt
