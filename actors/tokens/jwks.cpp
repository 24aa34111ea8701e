#include "actors/tokens/jwks.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <utility>

#include <boost/json.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "actors/tokens/openssl.hpp"

namespace todo::jwks {

namespace {

namespace json = boost::json;

constexpr size_t max_document_bytes = 1 << 20;
constexpr size_t max_json_depth = 16;
constexpr size_t p256_coordinate_bytes = 32;
constexpr size_t ed25519_key_bytes = 32;
// 65537 is universal; a huge exponent only makes every verification slower.
constexpr size_t max_rsa_exponent_bytes = 8;

struct param_bld_deleter {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct param_deleter {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};

using jwt::bn_ptr;
using jwt::bytes_of;
using jwt::pkey_ctx_ptr;
using jwt::pkey_ptr;

/// Returns member `name` of `obj` base64url-decoded, or nullopt when absent or malformed.
std::optional<std::string> b64_member(const json::object& obj, const char* name) {
  auto* v = obj.if_contains(name);
  if (v == nullptr || !v->is_string())
    return std::nullopt;
  return jwt::base64url_decode(v->get_string());
}

/// Builds an EVP_PKEY of `type` ("EC" or "RSA") from public-key parameters.
pkey_ptr from_params(const char* type, OSSL_PARAM* params) {
  pkey_ctx_ptr ctx{EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr)};
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1
      || EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1)
    return nullptr;
  return pkey_ptr{raw};
}

/// Returns an Ed25519 public key from an OKP JWK, or an empty pointer and why not.
pkey_ptr okp_key(const json::object& jwk, std::string& why) {
  auto* crv = jwk.if_contains("crv");
  if (crv == nullptr || !crv->is_string() || crv->get_string() != "Ed25519") {
    why = "unsupported crv";
    return nullptr;
  }
  auto x = b64_member(jwk, "x");
  if (!x || x->size() != ed25519_key_bytes) {
    why = "missing or malformed x";
    return nullptr;
  }
  pkey_ptr key{EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes_of(*x), x->size())};
  if (!key)
    why = "invalid Ed25519 key";
  return key;
}

/// Returns a P-256 public key from an EC JWK, or an empty pointer and why not.
pkey_ptr ec_key(const json::object& jwk, std::string& why) {
  auto* crv = jwk.if_contains("crv");
  if (crv == nullptr || !crv->is_string() || crv->get_string() != "P-256") {
    why = "unsupported crv";
    return nullptr;
  }
  auto x = b64_member(jwk, "x");
  auto y = b64_member(jwk, "y");
  if (!x || !y || x->size() != p256_coordinate_bytes || y->size() != p256_coordinate_bytes) {
    why = "missing or malformed x or y";
    return nullptr;
  }
  std::string point = "\x04" + *x + *y; // SEC 1 uncompressed form
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {
    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
    OSSL_PARAM_construct_end(),
  };
  auto key = from_params("EC", params);
  if (!key) {
    why = "point not on the curve";
    return nullptr;
  }
  // Decoding already rejects points off the curve; the full check also rules out the point at
  // infinity and points outside the prime-order subgroup.
  pkey_ctx_ptr check{EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr)};
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    why = "point not on the curve";
    return nullptr;
  }
  return key;
}

/// Returns an RSA public key from an RSA JWK, or an empty pointer and why not.
pkey_ptr rsa_key(const json::object& jwk, std::string& why) {
  auto n = b64_member(jwk, "n");
  auto e = b64_member(jwk, "e");
  if (!n || !e || n->empty() || e->empty() || e->size() > max_rsa_exponent_bytes) {
    why = "missing or malformed n or e";
    return nullptr;
  }
  bn_ptr n_bn{BN_bin2bn(bytes_of(*n), static_cast<int>(n->size()), nullptr)};
  bn_ptr e_bn{BN_bin2bn(bytes_of(*e), static_cast<int>(e->size()), nullptr)};
  if (!n_bn || !e_bn || !BN_is_odd(e_bn.get()) || BN_is_one(e_bn.get())
      || !BN_is_odd(n_bn.get())) {
    why = "missing or malformed n or e";
    return nullptr;
  }
  std::unique_ptr<OSSL_PARAM_BLD, param_bld_deleter> bld{OSSL_PARAM_BLD_new()};
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n_bn.get()) != 1
      || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e_bn.get()) != 1) {
    why = "invalid RSA key";
    return nullptr;
  }
  std::unique_ptr<OSSL_PARAM, param_deleter> params{OSSL_PARAM_BLD_to_param(bld.get())};
  auto key = params ? from_params("RSA", params.get()) : nullptr;
  if (!key) {
    why = "invalid RSA key";
    return nullptr;
  }
  if (EVP_PKEY_get_bits(key.get()) < 2048) {
    why = "RSA key shorter than 2048 bits";
    return nullptr;
  }
  return key;
}

/// Returns `kid` fit for a log line: printable ASCII only, at most 64 characters.
std::string printable(std::string_view kid) {
  std::string out;
  for (char c : kid.substr(0, 64))
    out += (c >= 0x20 && c < 0x7f && c != '"') ? c : '?';
  if (kid.size() > 64)
    out += "...";
  return out;
}

/// Adds the entries of one JWK to `out`, or returns why it is skipped.
std::string add_key(const json::value& v, std::vector<key_set::entry>& out) {
  if (!v.is_object())
    return "not an object";
  const auto& jwk = v.get_object();
  auto* kty = jwk.if_contains("kty");
  if (kty == nullptr || !kty->is_string())
    return "missing kty";
  if (auto* use = jwk.if_contains("use"); use != nullptr
                                          && (!use->is_string() || use->get_string() != "sig"))
    return "use is not sig";
  if (auto* ops = jwk.if_contains("key_ops"); ops != nullptr) {
    const auto* arr = ops->if_array();
    if (arr == nullptr
        || std::none_of(arr->begin(), arr->end(), [](const json::value& op) {
             return op.is_string() && op.get_string() == "verify";
           }))
      return "key_ops lacks verify";
  }
  std::string kid;
  if (auto* k = jwk.if_contains("kid")) {
    if (!k->is_string())
      return "kid is not a string";
    kid = std::string{k->get_string()};
  }
  std::optional<std::string> alg;
  if (auto* a = jwk.if_contains("alg")) {
    if (!a->is_string())
      return "alg is not a string";
    alg = std::string{a->get_string()};
  }

  std::string why;
  pkey_ptr key;
  std::vector<std::string> algs;
  std::string_view type = kty->get_string();
  if (type == "OKP") {
    key = okp_key(jwk, why);
    algs = {"EdDSA"};
  } else if (type == "EC") {
    key = ec_key(jwk, why);
    algs = {"ES256"};
  } else if (type == "RSA") {
    key = rsa_key(jwk, why);
    algs = {"RS256", "PS256"};
  } else {
    return "unsupported kty";
  }
  ERR_clear_error();
  if (!key)
    return why;
  if (alg) {
    if (std::find(algs.begin(), algs.end(), *alg) == algs.end())
      return "alg does not fit the key type or is unsupported";
    algs = {*alg};
  }
  if (!kid.empty() && std::any_of(out.begin(), out.end(), [&kid](const key_set::entry& e) {
        return e.kid == kid;
      }))
    return "duplicate kid (the first key with it is kept)";
  std::vector<key_set::entry> added;
  for (const auto& a : algs) {
    auto k = jwt::make_public_key(a, key.get());
    if (!k)
      return "key does not fit its algorithm";
    added.push_back({kid, std::move(k)});
  }
  std::move(added.begin(), added.end(), std::back_inserter(out));
  return {};
}

} // namespace

key_set::key_set(std::vector<entry> entries) : entries_(std::move(entries)) {}

std::shared_ptr<const jwt::key> key_set::find(std::string_view alg, std::string_view kid) const {
  std::shared_ptr<const jwt::key> found;
  size_t matches = 0;
  for (const auto& e : entries_) {
    if (e.key->algorithm() != alg)
      continue;
    if (!kid.empty() && e.kid == kid)
      return e.key;
    ++matches;
    found = e.key;
  }
  if (!kid.empty() || matches != 1)
    return nullptr;
  return found;
}

bool key_set::has_kid(std::string_view kid) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [kid](const entry& e) { return e.kid == kid; });
}

parse_result parse(std::string_view document) {
  parse_result res;
  try {
    if (document.size() > max_document_bytes) {
      res.error = "JWKS document too large";
      return res;
    }
    json::parse_options popts;
    popts.max_depth = max_json_depth;
    std::error_code ec;
    json::value doc = json::parse(document, ec, {}, popts);
    if (ec || !doc.is_object()) {
      res.error = "JWKS is not a JSON object";
      return res;
    }
    auto* keys = doc.get_object().if_contains("keys");
    if (keys == nullptr || !keys->is_array()) {
      res.error = "JWKS has no \"keys\" array";
      return res;
    }
    std::vector<key_set::entry> entries;
    size_t index = 0;
    for (const auto& v : keys->get_array()) {
      ++index;
      std::string kid;
      if (v.is_object())
        if (auto* k = v.get_object().if_contains("kid"); k != nullptr && k->is_string())
          kid = printable(k->get_string());
      std::string why = index > max_keys ? "too many keys" : add_key(v, entries);
      if (!why.empty())
        res.warnings.push_back("JWKS key #" + std::to_string(index) + " (kid \"" + kid
                               + "\") skipped: " + why);
    }
    res.keys = std::make_shared<const key_set>(std::move(entries));
  } catch (const std::exception&) {
    // Only allocation failures get here; never pass library text on.
    res.keys = nullptr;
    res.error = "JWKS could not be parsed";
  }
  ERR_clear_error();
  return res;
}

std::string to_public_jwk(EVP_PKEY* pkey, std::string_view kid, std::string_view alg) {
  json::object jwk;
  auto bn_b64 = [pkey](const char* name, int pad) {
    BIGNUM* raw = nullptr;
    if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1)
      throw std::invalid_argument("key parameter missing");
    bn_ptr bn{raw};
    std::string bytes(static_cast<size_t>(std::max(pad, BN_num_bytes(bn.get()))), '\0');
    BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(bytes.data()),
                 static_cast<int>(bytes.size()));
    return jwt::base64url_encode(bytes);
  };
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_ED25519: {
      std::string x(ed25519_key_bytes, '\0');
      size_t len = x.size();
      if (EVP_PKEY_get_raw_public_key(pkey, reinterpret_cast<unsigned char*>(x.data()), &len)
          != 1)
        throw std::invalid_argument("key parameter missing");
      jwk["kty"] = "OKP";
      jwk["crv"] = "Ed25519";
      jwk["x"] = jwt::base64url_encode(x);
      break;
    }
    case EVP_PKEY_EC:
      jwk["kty"] = "EC";
      jwk["crv"] = "P-256";
      jwk["x"] = bn_b64(OSSL_PKEY_PARAM_EC_PUB_X, p256_coordinate_bytes);
      jwk["y"] = bn_b64(OSSL_PKEY_PARAM_EC_PUB_Y, p256_coordinate_bytes);
      break;
    case EVP_PKEY_RSA:
      jwk["kty"] = "RSA";
      jwk["n"] = bn_b64(OSSL_PKEY_PARAM_RSA_N, 0);
      jwk["e"] = bn_b64(OSSL_PKEY_PARAM_RSA_E, 0);
      break;
    default:
      throw std::invalid_argument("unsupported key type");
  }
  jwk["use"] = "sig";
  if (!kid.empty())
    jwk["kid"] = kid;
  if (!alg.empty())
    jwk["alg"] = alg;
  return json::serialize(jwk);
}

std::string generate_ed25519_jwk(std::string_view kid) {
  pkey_ptr key{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")};
  if (!key)
    throw std::runtime_error("key generation failed");
  std::string d(ed25519_key_bytes, '\0');
  size_t len = d.size();
  if (EVP_PKEY_get_raw_private_key(key.get(), reinterpret_cast<unsigned char*>(d.data()), &len)
      != 1)
    throw std::runtime_error("key generation failed");
  auto pub = json::parse(to_public_jwk(key.get(), kid, "EdDSA")).as_object();
  pub.erase("use");
  pub["d"] = jwt::base64url_encode(d);
  OPENSSL_cleanse(d.data(), d.size());
  return json::serialize(pub);
}

parse_result parse_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    parse_result res;
    res.error = "cannot read the JWKS file";
    return res;
  }
  std::string text;
  text.resize(max_document_bytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return parse(text);
}

} // namespace todo::jwks
