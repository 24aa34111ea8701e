#pragma once
// A small blocking HTTP(S) GET for the JWKS document. CAF-free; it blocks its caller, so it
// runs only on a detached helper actor's own thread, never on an I/O thread.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace todo::http {

/// Limits of one fetch.
struct fetch_options {
  std::chrono::milliseconds timeout{5000}; // the whole fetch: resolve, connect, TLS, response
  size_t max_body_bytes = 1 << 20;
};

/// The body of a 200 answer, or (when `error` is non-empty) a short reason that names no
/// library; redirects are not followed.
struct fetch_result {
  std::string body;
  std::string error;
  bool ok() const { return error.empty(); }
};

/// The parts of an http or https URL.
struct url_parts {
  bool tls = false;
  std::string host;   // without brackets for an IPv6 literal
  std::string port;   // "80" or "443" when the URL has none
  std::string target; // path and query, at least "/"
};

/// Splits `url`; returns nullopt for another scheme, user info, an empty host, a bad port,
/// a fragment, or characters outside printable ASCII.
std::optional<url_parts> parse_url(std::string_view url);

/// GETs `url` (http, or https verified against the system trust store and the host name).
/// Never throws.
fetch_result fetch_url(const std::string& url, const fetch_options& opts = {});

} // namespace todo::http
