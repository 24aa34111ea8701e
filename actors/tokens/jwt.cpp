#include "actors/tokens/jwt.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <utility>

#include <boost/json.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "actors/tokens/openssl.hpp"

namespace todo::jwt {

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}


namespace {

namespace json = boost::json;

constexpr size_t max_subject_bytes = 255;
// JOSE headers and our claims are flat; deep nesting only serves to burn parser time.
constexpr size_t max_json_depth = 8;

class hs256_key final : public key {
public:
  explicit hs256_key(std::string secret) : secret_(std::move(secret)) {}

  std::string_view algorithm() const override { return "HS256"; }

  bool check(std::string_view signing_input, std::string_view signature) const override {
    if (signature.size() != hs256_signature_bytes)
      return false;
    auto mac = hmac_sha256(secret_, signing_input);
    return mac && CRYPTO_memcmp(mac->data(), signature.data(), mac->size()) == 0;
  }

private:
  std::string secret_;
};

/// Returns whether `pkey` belongs to the family of `s`.
bool fits(scheme s, EVP_PKEY* pkey) {
  switch (s) {
    case scheme::eddsa:
      return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519;
    case scheme::es256: {
      if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC)
        return false;
      char group[64] = {0};
      size_t len = 0;
      if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &len) != 1)
        return false;
      std::string_view name{group, len};
      return name == "prime256v1" || name == "P-256" || name == "secp256r1";
    }
    case scheme::rs256:
    case scheme::ps256: {
      if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
        return false;
      int bits = EVP_PKEY_get_bits(pkey);
      return bits >= min_rsa_bits && bits <= max_rsa_bits;
    }
  }
  return false;
}

/// An asymmetric public key bound to exactly one JOSE algorithm.
class evp_key final : public key {
public:
  evp_key(scheme s, std::string alg, EVP_PKEY* pkey)
    : scheme_(s), alg_(std::move(alg)), pkey_(pkey) {
    EVP_PKEY_up_ref(pkey_);
  }
  ~evp_key() override { EVP_PKEY_free(pkey_); }
  evp_key(const evp_key&) = delete;
  evp_key& operator=(const evp_key&) = delete;

  std::string_view algorithm() const override { return alg_; }

  bool check(std::string_view signing_input, std::string_view signature) const override {
    bool ok = verify(signing_input, signature);
    // A failed check leaves entries in this thread's OpenSSL error queue; never let them pile up.
    ERR_clear_error();
    return ok;
  }

private:
  bool verify(std::string_view signing_input, std::string_view signature) const {
    std::string der;
    switch (scheme_) {
      case scheme::eddsa:
        if (signature.size() != ed25519_signature_bytes)
          return false;
        break;
      case scheme::es256: {
        auto converted = ecdsa_raw_to_der(signature);
        if (!converted)
          return false;
        der = std::move(*converted);
        signature = der;
        break;
      }
      case scheme::rs256:
      case scheme::ps256:
        if (signature.size() != static_cast<size_t>(EVP_PKEY_get_size(pkey_)))
          return false;
        break;
    }
    md_ctx_ptr ctx{EVP_MD_CTX_new()};
    if (!ctx)
      return false;
    EVP_PKEY_CTX* pctx = nullptr;
    // Ed25519 hashes internally, so it takes no digest and only the one-shot EVP_DigestVerify.
    const EVP_MD* md = scheme_ == scheme::eddsa ? nullptr : EVP_sha256();
    if (EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, pkey_) != 1)
      return false;
    if (scheme_ == scheme::ps256 && !set_pss(pctx))
      return false;
    return EVP_DigestVerify(ctx.get(), bytes_of(signature), signature.size(),
                            bytes_of(signing_input), signing_input.size())
           == 1;
  }

  scheme scheme_;
  std::string alg_;
  EVP_PKEY* pkey_;
};

/// Returns the parsed JSON object in `text`, or nullopt if it is not exactly one object.
std::optional<json::object> parse_object(std::string_view text) {
  json::parse_options popts;
  popts.max_depth = max_json_depth;
  std::error_code ec;
  json::value v = json::parse(text, ec, {}, popts);
  if (ec || !v.is_object())
    return std::nullopt;
  return std::move(v.as_object());
}

/// Returns true for "none" in any letter case.
bool is_none(std::string_view alg) {
  if (alg.size() != 4)
    return false;
  constexpr std::string_view none = "none";
  for (size_t i = 0; i < 4; ++i)
    if (std::tolower(static_cast<unsigned char>(alg[i])) != none[i])
      return false;
  return true;
}

/// Reads a NumericDate claim; long double holds every int64 and uint64 exactly on our targets.
std::optional<long double> numeric_date(const json::value& v) {
  if (v.is_int64())
    return static_cast<long double>(v.get_int64());
  if (v.is_uint64())
    return static_cast<long double>(v.get_uint64());
  if (v.is_double() && std::isfinite(v.get_double()))
    return static_cast<long double>(v.get_double());
  return std::nullopt;
}

/// Returns `x` truncated into the int64 range.
int64_t clamp_to_int64(long double x) {
  constexpr auto lo = std::numeric_limits<int64_t>::min();
  constexpr auto hi = std::numeric_limits<int64_t>::max();
  if (x <= static_cast<long double>(lo))
    return lo;
  if (x >= static_cast<long double>(hi))
    return hi;
  return static_cast<int64_t>(x);
}

/// Checks the registered claims of a payload whose signature has already been verified.
outcome check_claims(const json::object& claims, const options& opts, int64_t now) {
  outcome res;
  auto fail = [&res](failure f) {
    res.error = f;
    return res;
  };
  const long double t = static_cast<long double>(now);
  const long double leeway = static_cast<long double>(std::max<int64_t>(opts.leeway_seconds, 0));

  std::optional<long double> exp;
  if (auto* v = claims.if_contains("exp")) {
    exp = numeric_date(*v);
    if (!exp)
      return fail(failure::malformed);
  }
  std::optional<long double> nbf;
  if (auto* v = claims.if_contains("nbf")) {
    nbf = numeric_date(*v);
    if (!nbf)
      return fail(failure::malformed);
  }
  std::optional<long double> iat;
  if (auto* v = claims.if_contains("iat")) {
    iat = numeric_date(*v);
    if (!iat)
      return fail(failure::malformed);
  }
  if (!exp && opts.require_exp)
    return fail(failure::missing_exp);
  if (exp && t > *exp + leeway)
    return fail(failure::expired);
  if (nbf && *nbf > t + leeway)
    return fail(failure::not_yet_valid);
  if (iat && *iat > t + leeway)
    return fail(failure::issued_in_future);

  auto* sub = claims.if_contains("sub");
  if (sub == nullptr || !sub->is_string())
    return fail(failure::bad_subject);
  std::string_view subject = sub->get_string();
  // The subject becomes a PostgreSQL text value, which cannot hold NUL.
  if (subject.empty() || subject.size() > max_subject_bytes
      || subject.find('\0') != std::string_view::npos)
    return fail(failure::bad_subject);

  if (opts.issuer) {
    auto* iss = claims.if_contains("iss");
    if (iss == nullptr || !iss->is_string() || iss->get_string() != *opts.issuer)
      return fail(failure::bad_issuer);
  }
  if (opts.audience) {
    auto* aud = claims.if_contains("aud");
    bool ok = false;
    if (aud != nullptr && aud->is_string()) {
      ok = aud->get_string() == *opts.audience;
    } else if (aud != nullptr && aud->is_array()) {
      const auto& arr = aud->get_array();
      ok = std::any_of(arr.begin(), arr.end(), [&](const json::value& x) {
        return x.is_string() && x.get_string() == *opts.audience;
      });
    }
    if (!ok)
      return fail(failure::bad_audience);
  }

  res.claims.subject.assign(subject.data(), subject.size());
  res.claims.expires_at = exp ? clamp_to_int64(*exp) : 0;
  return res;
}

outcome verify_impl(std::string_view token, int64_t now, const options& opts,
                    const std::function<std::shared_ptr<const key>(std::string_view,
                                                                   std::string_view)>& lookup) {
  outcome res;
  auto fail = [&res](failure f) {
    res.error = f;
    return res;
  };
  if (token.empty())
    return fail(failure::missing);
  if (token.size() > opts.max_token_bytes)
    return fail(failure::too_large);

  auto dot1 = token.find('.');
  if (dot1 == std::string_view::npos)
    return fail(failure::malformed);
  auto dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return fail(failure::malformed);
  auto header_b64 = token.substr(0, dot1);
  auto payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  auto signature_b64 = token.substr(dot2 + 1);

  auto header_text = base64url_decode(header_b64);
  if (!header_text)
    return fail(failure::malformed);
  auto header = parse_object(*header_text);
  if (!header)
    return fail(failure::malformed);
  auto* alg_v = header->if_contains("alg");
  if (alg_v == nullptr || !alg_v->is_string())
    return fail(failure::malformed);
  std::string_view alg = alg_v->get_string();
  if (is_none(alg))
    return fail(failure::alg_not_allowed);
  if (std::find(opts.algorithms.begin(), opts.algorithms.end(), alg) == opts.algorithms.end())
    return fail(failure::alg_not_allowed);
  res.algorithm.assign(alg.data(), alg.size());
  // We understand no JWS extensions, so RFC 7515 §4.1.11 requires refusing any "crit".
  if (header->contains("crit"))
    return fail(failure::crit);
  std::string_view kid;
  if (auto* kid_v = header->if_contains("kid")) {
    if (!kid_v->is_string())
      return fail(failure::malformed);
    kid = kid_v->get_string();
  }

  auto k = lookup(alg, kid);
  if (!k || k->algorithm() != alg)
    return fail(failure::unknown_key);

  // The payload must at least be well-formed base64url before we spend a MAC on it.
  auto payload_text = base64url_decode(payload_b64);
  auto signature = base64url_decode(signature_b64);
  if (!payload_text || !signature)
    return fail(failure::malformed);
  if (!k->check(token.substr(0, dot2), *signature))
    return fail(failure::bad_signature);

  auto claims = parse_object(*payload_text);
  if (!claims)
    return fail(failure::malformed);
  auto checked = check_claims(*claims, opts, now);
  checked.algorithm = std::move(res.algorithm);
  return checked;
}

} // namespace

std::string_view reason(failure x) {
  switch (x) {
    case failure::none:
      return "OK";
    case failure::missing:
      return "Not authenticated";
    case failure::malformed:
      return "Invalid token";
    case failure::too_large:
      return "Token too large";
    case failure::alg_not_allowed:
      return "Token algorithm not allowed";
    case failure::unknown_key:
      return "Unknown token signing key";
    case failure::crit:
      return "Unsupported critical token header";
    case failure::bad_signature:
      return "Invalid token signature";
    case failure::expired:
      return "Token expired";
    case failure::not_yet_valid:
      return "Token not yet valid";
    case failure::issued_in_future:
      return "Token issued in the future";
    case failure::missing_exp:
      return "Token has no expiry";
    case failure::bad_subject:
      return "Invalid token subject";
    case failure::bad_issuer:
      return "Invalid token issuer";
    case failure::bad_audience:
      return "Invalid token audience";
  }
  return "Invalid token";
}

std::shared_ptr<const key> make_hs256_key(std::string secret) {
  return std::make_shared<const hs256_key>(std::move(secret));
}

bool is_asymmetric(std::string_view alg) {
  return scheme_of(alg).has_value();
}

std::shared_ptr<const key> make_public_key(std::string_view alg, EVP_PKEY* pkey) {
  auto s = scheme_of(alg);
  if (!s || pkey == nullptr || !fits(*s, pkey))
    return nullptr;
  return std::make_shared<const evp_key>(*s, std::string{alg}, pkey);
}

verifier::verifier(options opts) : verifier(std::move(opts), nullptr) {}

verifier::verifier(options opts, std::shared_ptr<const key_source> asymmetric)
  : opts_(std::move(opts)), asymmetric_(std::move(asymmetric)) {
  if (!opts_.hs256_secret.empty())
    hs256_ = make_hs256_key(opts_.hs256_secret);
}

std::shared_ptr<const key> verifier::find_key(std::string_view alg, std::string_view kid) const {
  // The shared secret is an HMAC key and nothing else; asymmetric sources never supply HMAC.
  if (alg == "HS256")
    return hs256_;
  if (!asymmetric_ || alg.size() < 2 || alg.substr(0, 2) == "HS")
    return nullptr;
  return asymmetric_->find(alg, kid);
}

outcome verifier::verify(std::string_view token, int64_t now_seconds) const {
  try {
    return verify_impl(token, now_seconds, opts_,
                       [this](std::string_view alg, std::string_view kid) {
                         return find_key(alg, kid);
                       });
  } catch (...) {
    outcome res;
    res.error = failure::malformed; // only allocation failures get here
    return res;
  }
}

} // namespace todo::jwt
