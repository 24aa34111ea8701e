#include "http/tls.hpp"

#include <cstdio>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace todo::http {

namespace {

// TLS 1.2 suites: ECDHE key exchange and AEAD only (Mozilla's "intermediate" list, minus the
// DHE ones). TLS 1.3's own suites are all modern and stay as OpenSSL sets them.
constexpr const char* tls12_ciphers =
  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string openssl_reason() {
  auto code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0)
    return "unknown error";
  const char* r = ERR_reason_error_string(code);
  return r ? r : "unknown error";
}

tls_setup fail(const char* setting, std::string why) {
  tls_setup out;
  out.setting = setting;
  out.error = std::move(why);
  return out;
}

} // namespace

tls_setup make_tls_context(const std::string& cert_file, const std::string& key_file) {
  namespace ssl = boost::asio::ssl;
  ERR_clear_error();
  // The leaf certificate first, to check its dates.
  std::FILE* f = std::fopen(cert_file.c_str(), "r");
  if (!f)
    return fail("TLS_CERT_FILE", "cannot read " + cert_file);
  X509* leaf = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!leaf)
    return fail("TLS_CERT_FILE", cert_file + " holds no PEM certificate");
  bool expired = X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0;
  bool early = X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0;
  X509_free(leaf);
  if (expired)
    return fail("TLS_CERT_FILE", "the certificate in " + cert_file + " has expired");
  if (early)
    return fail("TLS_CERT_FILE", "the certificate in " + cert_file + " is not valid yet");

  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  auto* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
  if (SSL_CTX_set_cipher_list(native, tls12_ciphers) != 1)
    return fail("TLS_CERT_FILE", "no usable cipher: " + openssl_reason());
  if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1)
    return fail("TLS_CERT_FILE", "cannot use " + cert_file + ": " + openssl_reason());
  if (SSL_CTX_use_PrivateKey_file(native, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail("TLS_KEY_FILE", "cannot use " + key_file + ": " + openssl_reason());
  if (SSL_CTX_check_private_key(native) != 1)
    return fail("TLS_KEY_FILE", "the key in " + key_file + " does not belong to the certificate in " +
                                  cert_file);
  tls_setup out;
  out.context = std::move(ctx);
  return out;
}

} // namespace todo::http
