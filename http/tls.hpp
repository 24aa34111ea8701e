#pragma once
// HTTPS (TLS_CERT_FILE + TLS_KEY_FILE): the server's TLS context, checked at start-up.

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

namespace todo::http {

/// The outcome of make_tls_context: a context, or the setting at fault and why.
struct tls_setup {
  std::unique_ptr<boost::asio::ssl::context> context;
  std::string setting; // "TLS_CERT_FILE" or "TLS_KEY_FILE" when it failed
  std::string error;   // one line; names files, never key material
};

/// A TLS 1.2/1.3 server context with forward-secret AEAD ciphers only, the certificate chain
/// of `cert_file` (PEM, leaf first) and the private key of `key_file` (PEM). Fails when a file
/// cannot be read or parsed, the key does not belong to the certificate, or the certificate
/// is not valid now (expired or not yet valid).
tls_setup make_tls_context(const std::string& cert_file, const std::string& key_file);

} // namespace todo::http
