// Signing, for the token CLI and the tests; the server only verifies.

#include <cstring>
#include <stdexcept>

#include <boost/json.hpp>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "actors/tokens/jwt.hpp"
#include "actors/tokens/openssl.hpp"

namespace todo::jwt {

namespace json = boost::json;

std::string sign_hs256(std::string_view secret, std::string_view payload_json) {
  std::string out = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  out += '.';
  out += base64url_encode(payload_json);
  auto mac = hmac_sha256(secret, out);
  if (!mac)
    throw std::runtime_error("HMAC-SHA256 failed");
  out += '.';
  out += base64url_encode(
    std::string_view{reinterpret_cast<const char*>(mac->data()), mac->size()});
  return out;
}

std::string sign_with_key(std::string_view alg, EVP_PKEY* private_key, std::string_view header_json,
                          std::string_view payload_json) {
  auto s = scheme_of(alg);
  if (!s || private_key == nullptr)
    throw std::runtime_error("unsupported signing algorithm");
  std::string out = base64url_encode(header_json);
  out += '.';
  out += base64url_encode(payload_json);
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* md = *s == scheme::eddsa ? nullptr : EVP_sha256();
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, private_key) != 1
      || (*s == scheme::ps256 && !set_pss(pctx))
      || EVP_DigestSign(ctx.get(), nullptr, &len, bytes_of(out), out.size()) != 1) {
    ERR_clear_error();
    throw std::runtime_error("signing failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, bytes_of(out),
                     out.size())
      != 1) {
    ERR_clear_error();
    throw std::runtime_error("signing failed");
  }
  sig.resize(len);
  if (*s == scheme::es256) {
    auto raw = ecdsa_der_to_raw(sig);
    if (!raw)
      throw std::runtime_error("signing failed");
    sig = std::move(*raw);
  }
  out += '.';
  out += base64url_encode(sig);
  return out;
}

std::string sign_eddsa(std::string_view private_jwk_json, std::string_view payload_json) {
  std::error_code ec;
  auto doc = json::parse(private_jwk_json, ec);
  if (ec || !doc.is_object())
    throw std::runtime_error("the private JWK is not a JSON object");
  const auto* jwk = &doc.as_object();
  auto text = [&jwk](const char* name) -> std::optional<std::string> {
    auto* v = jwk->if_contains(name);
    if (v == nullptr || !v->is_string())
      return std::nullopt;
    return std::string{v->get_string()};
  };
  if (text("kty") != "OKP" || text("crv") != "Ed25519")
    throw std::runtime_error("the private JWK is not an Ed25519 key (kty OKP, crv Ed25519)");
  auto d_text = text("d");
  auto d = d_text ? base64url_decode(*d_text) : std::nullopt;
  if (!d || d->size() != 32)
    throw std::runtime_error("the private JWK has no valid \"d\"");
  pkey_ptr pkey{EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, bytes_of(*d), d->size())};
  OPENSSL_cleanse(d->data(), d->size());
  if (!pkey)
    throw std::runtime_error("the private JWK has no valid \"d\"");
  if (auto x_text = text("x")) {
    unsigned char pub[32];
    size_t pub_len = sizeof(pub);
    auto x = base64url_decode(*x_text);
    if (EVP_PKEY_get_raw_public_key(pkey.get(), pub, &pub_len) != 1 || !x
        || x->size() != pub_len || std::memcmp(x->data(), pub, pub_len) != 0)
      throw std::runtime_error("the private JWK's \"x\" does not match its \"d\"");
  }
  json::object header;
  header["alg"] = "EdDSA";
  header["typ"] = "JWT";
  if (auto kid = text("kid"))
    header["kid"] = *kid;
  return sign_with_key("EdDSA", pkey.get(), json::serialize(header), payload_json);
}

} // namespace todo::jwt
