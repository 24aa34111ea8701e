#include "http/listener.hpp"

#include <boost/asio/strand.hpp>

#include "config/log.hpp"

namespace todo::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;

listener::listener(net::io_context& accept_ioc, std::vector<net::io_context*> workers,
                   server_context& ctx, boost::asio::ssl::context* tls)
  : workers_(std::move(workers)), ctx_(ctx), tls_(tls), acceptor_(net::make_strand(accept_ioc)) {
}

void listener::open() {
  auto addr = net::ip::make_address(ctx_.cfg.host);
  tcp::endpoint ep{addr, static_cast<unsigned short>(ctx_.cfg.port)};
  acceptor_.open(ep.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(net::socket_base::max_listen_connections);
}

void listener::start() {
  net::dispatch(acceptor_.get_executor(), [this] { accept(); });
}

void listener::stop() {
  net::post(acceptor_.get_executor(), [this] {
    // Connections the kernel completed before now wait in the listen queue, and a proxy may
    // have sent a request on one already: closing the listener would reset them (a POST
    // lost in between is a 502 nobody retries). Take them first; each answers the request it
    // carries, then closes.
    boost::system::error_code ec;
    acceptor_.non_blocking(true, ec);
    for (int taken = 0; !ec && taken < 4096; ++taken) {
      auto& worker = *workers_[next_worker_++ % workers_.size()];
      tcp::socket socket{net::make_strand(worker)};
      acceptor_.accept(socket, ec);
      if (!ec)
        start_session(std::move(socket), ctx_, tls_);
    }
    acceptor_.close(ec);
  });
}

unsigned short listener::port() const {
  return acceptor_.local_endpoint().port();
}

void listener::accept() {
  auto& worker = *workers_[next_worker_++ % workers_.size()];
  acceptor_.async_accept(net::make_strand(worker), [this](boost::system::error_code ec,
                                                          tcp::socket socket) {
    if (ec == net::error::operation_aborted)
      return;
    // (A connection accepted just before the listener closed is still served: dropping it
    // would reset a request its client may have sent already.)
    if (!ec) {
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (ctx_.connections.load() >= static_cast<size_t>(ctx_.cfg.max_connections))
        refuse_connection(std::move(socket), ctx_, tls_ != nullptr);
      else
        start_session(std::move(socket), ctx_, tls_);
    }
    if (!acceptor_.is_open())
      return;
    if (ec == net::error::no_descriptors || ec == net::error::no_buffer_space) {
      // Out of file descriptors: back off briefly instead of spinning.
      log::warn("accept failed: out of file descriptors");
      auto timer = std::make_shared<net::steady_timer>(acceptor_.get_executor(),
                                                       std::chrono::milliseconds(50));
      timer->async_wait([this, timer](boost::system::error_code) { accept(); });
      return;
    }
    accept();
  });
}

} // namespace todo::http
