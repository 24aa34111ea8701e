#include "http/jwks_fetch.hpp"

#include <cctype>
#include <type_traits>
#include <memory>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>

namespace todo::http {

namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

constexpr unsigned header_limit = 16 * 1024;

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

/// One GET over `Stream` (a tcp_stream, or an ssl_stream over one), driven by the caller's
/// io_context. Reasons are our own words: no OpenSSL or system text leaves this file.
template <class Stream>
class exchange {
public:
  exchange(Stream& stream, const url_parts& url, const fetch_options& opts, fetch_result& out)
    : stream_(stream), out_(out) {
    req_.method(bhttp::verb::get);
    req_.target(url.target);
    req_.version(11);
    bool default_port = url.port == (url.tls ? "443" : "80");
    std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    req_.set(bhttp::field::host, default_port ? host : host + ":" + url.port);
    req_.set(bhttp::field::user_agent, "todo-api-jwks");
    req_.set(bhttp::field::accept, "application/json");
    req_.set(bhttp::field::connection, "close");
    parser_.body_limit(opts.max_body_bytes);
    parser_.header_limit(header_limit);
  }

  void start(const tcp::resolver::results_type& endpoints) {
    beast::get_lowest_layer(stream_).async_connect(
      endpoints, [this](beast::error_code ec, const tcp::endpoint&) {
        if (ec)
          return fail(ec, "connection failed");
        if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
          stream_.async_handshake(ssl::stream_base::client, [this](beast::error_code ec) {
            if (ec)
              return fail(ec, "TLS handshake failed (untrusted certificate or wrong host name?)");
            write();
          });
        } else {
          write();
        }
      });
  }

private:
  void write() {
    bhttp::async_write(stream_, req_, [this](beast::error_code ec, size_t) {
      if (ec)
        return fail(ec, "sending the request failed");
      bhttp::async_read(stream_, buffer_, parser_, [this](beast::error_code ec, size_t) {
        if (ec == bhttp::error::body_limit)
          return fail(ec, "response larger than the limit");
        if (ec)
          return fail(ec, "reading the response failed");
        auto status = parser_.get().result_int();
        if (status != 200)
          return fail({}, "HTTP status " + std::to_string(status));
        out_.body = std::move(parser_.get().body());
        out_.error.clear();
        beast::error_code ignored;
        beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
      });
    });
  }

  void fail(beast::error_code ec, std::string reason) {
    out_.error = ec == beast::error::timeout ? "timed out" : std::move(reason);
    beast::get_lowest_layer(stream_).close();
  }

  Stream& stream_;
  fetch_result& out_;
  bhttp::request<bhttp::empty_body> req_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::string_body> parser_;
};

} // namespace

std::optional<url_parts> parse_url(std::string_view url) {
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return std::nullopt;
  url_parts out;
  std::string_view rest;
  auto starts = [&url](std::string_view prefix) {
    if (url.size() < prefix.size())
      return false;
    for (size_t i = 0; i < prefix.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(url[i])) != prefix[i])
        return false;
    return true;
  };
  if (starts("https://")) {
    out.tls = true;
    rest = url.substr(8);
  } else if (starts("http://")) {
    rest = url.substr(7);
  } else {
    return std::nullopt;
  }
  if (rest.find('#') != std::string_view::npos)
    return std::nullopt;
  auto slash = rest.find_first_of("/?");
  auto authority = rest.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string{rest.substr(slash)};
  if (out.target[0] == '?')
    out.target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos)
    return std::nullopt;
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    out.host = std::string{authority.substr(1, close - 1)};
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':')
        return std::nullopt;
      port = after.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    out.host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos)
      port = authority.substr(colon + 1);
  }
  if (out.host.empty())
    return std::nullopt;
  if (port.empty()) {
    out.port = out.tls ? "443" : "80";
  } else {
    if (port.size() > 5)
      return std::nullopt;
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9')
        return std::nullopt;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535)
      return std::nullopt;
    out.port = std::to_string(value);
  }
  return out;
}

fetch_result fetch_url(const std::string& url, const fetch_options& opts) {
  fetch_result out;
  auto parts = parse_url(url);
  if (!parts) {
    out.error = "invalid URL";
    return out;
  }
  out.error = "timed out"; // whatever does not finish before the deadline
  try {
    net::io_context ioc;
    auto deadline = std::chrono::steady_clock::now() + opts.timeout;
    ssl::context tls{ssl::context::tls_client};
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2
                    | ssl::context::no_sslv3 | ssl::context::no_tlsv1
                    | ssl::context::no_tlsv1_1);
    tls.set_default_verify_paths();
    tls.set_verify_mode(ssl::verify_peer);

    beast::tcp_stream plain{ioc};
    beast::ssl_stream<beast::tcp_stream> secure{ioc, tls};
    std::unique_ptr<exchange<beast::tcp_stream>> plain_x;
    std::unique_ptr<exchange<beast::ssl_stream<beast::tcp_stream>>> secure_x;
    if (parts->tls) {
      // SNI for virtual hosts, and the certificate must name the host we asked for.
      if (!is_ip_literal(parts->host)
          && !SSL_set_tlsext_host_name(secure.native_handle(), parts->host.c_str())) {
        out.error = "TLS set-up failed";
        return out;
      }
      secure.set_verify_callback(ssl::host_name_verification(parts->host));
      secure_x = std::make_unique<exchange<beast::ssl_stream<beast::tcp_stream>>>(
        secure, *parts, opts, out);
    } else {
      plain_x = std::make_unique<exchange<beast::tcp_stream>>(plain, *parts, opts, out);
    }

    tcp::resolver resolver{ioc};
    net::steady_timer timer{ioc};
    bool resolved = false;
    timer.expires_at(deadline);
    timer.async_wait([&](beast::error_code ec) {
      if (!ec && !resolved)
        resolver.cancel();
    });
    resolver.async_resolve(
      parts->host, parts->port,
      [&](beast::error_code ec, const tcp::resolver::results_type& endpoints) {
        resolved = true;
        timer.cancel();
        if (ec) {
          out.error = ec == net::error::operation_aborted ? "timed out" : "host name not found";
          return;
        }
        auto left = deadline - std::chrono::steady_clock::now();
        // One expiry covers every later operation on the stream: it is the fetch's deadline.
        if (parts->tls) {
          beast::get_lowest_layer(secure).expires_after(left);
          secure_x->start(endpoints);
        } else {
          plain.expires_after(left);
          plain_x->start(endpoints);
        }
      });
    ioc.run();
  } catch (const std::exception&) {
    out.body.clear();
    out.error = "fetch failed";
  }
  if (!out.error.empty())
    out.body.clear();
  return out;
}

} // namespace todo::http
