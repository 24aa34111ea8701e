#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <vector>

#include "http/server.hpp"

namespace boost::asio::ssl {
class context;
}

namespace todo::http {

/// Accepts connections and starts a session for each, up to MAX_CONNECTIONS. Sessions are
/// spread round-robin over `workers` (one io_context per I/O thread: no shared scheduler lock).
class listener {
public:
  /// With `tls`, every connection speaks TLS (the context must outlive the listener).
  listener(boost::asio::io_context& accept_ioc, std::vector<boost::asio::io_context*> workers,
           server_context& ctx, boost::asio::ssl::context* tls = nullptr);

  /// Binds HOST:PORT; throws boost::system::system_error when it cannot.
  void open();

  /// Starts accepting.
  void start();

  /// Stops accepting; sessions already open go on until they finish.
  void stop();

  /// Returns the bound port (useful when PORT was 0).
  unsigned short port() const;

private:
  void accept();

  std::vector<boost::asio::io_context*> workers_;
  size_t next_worker_ = 0;
  server_context& ctx_;
  boost::asio::ssl::context* tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

/// Starts a session on an accepted socket (defined in session.cpp). While the server drains,
/// a new session still answers the one request its client may have sent already (waiting
/// at most a second for it), then closes.
void start_session(boost::asio::ip::tcp::socket socket, server_context& ctx,
                   boost::asio::ssl::context* tls = nullptr);

/// Answers 503 with Retry-After and closes (defined in session.cpp).
void refuse_connection(boost::asio::ip::tcp::socket socket, server_context& ctx, bool tls);

} // namespace todo::http
