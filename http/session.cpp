// One client connection: reads requests (keep-alive, pipelining up to 32 ahead), enforces the
// read and idle timeouts, writes responses in request order, and drains on shutdown. What a
// request means is handler.cpp's business.

#include <array>
#include <chrono>
#include <cstdio>
#include <deque>
#include <iterator>
#include <memory>
#include <optional>
#include <type_traits>
#include <string_view>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config/ip_ranges.hpp"
#include "config/log.hpp"
#include "http/handler.hpp"
#include "http/json_codec.hpp"
#include "http/listener.hpp"
#include "http/wire.hpp"

namespace todo::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using clock = std::chrono::steady_clock;

namespace {

constexpr size_t max_pipeline = 32;      // requests read ahead of their responses
constexpr size_t header_limit = 8192;    // request line plus headers (API.md §3)

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// One connection over `Stream`: plain TCP, or TLS (TLS_CERT_FILE), whose handshake comes first
// and whose close sends close_notify when nothing else is in flight.
template <class Stream>
class session final : public responder, public std::enable_shared_from_this<session<Stream>> {
  static constexpr bool tls = std::is_same_v<Stream, tls_stream>;

public:
  template <class... Args>
  session(server_context& ctx, Args&&... args) : stream_(std::forward<Args>(args)...), ctx_(ctx) {
    ++ctx_.connections;
  }

  ~session() {
    stop_stream();
    ctx_.remove_drain_hook(drain_hook_);
    --ctx_.connections;
  }

  void start() {
    beast::error_code ec;
    auto peer = lowest().socket().remote_endpoint(ec);
    if (!ec)
      peer_ = peer.address().to_string();
    drain_hook_ = ctx_.add_drain_hook([weak = this->weak_from_this()] {
      if (auto self = weak.lock())
        net::post(self->stream_.get_executor(), [self] { self->on_drain(); });
    });
    if constexpr (tls) {
      // The handshake must complete within the read timeout, like a request.
      lowest().expires_after(read_timeout());
      stream_.async_handshake(boost::asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                self->on_handshake(ec);
                              });
    } else {
      net::dispatch(stream_.get_executor(),
                    [self = this->shared_from_this()] { self->read_next(); });
    }
  }

private:
  // One request's place in the pipeline; responses leave in request order.
  struct slot {
    std::optional<response> res;
    bool stream = false; // res is the head of this connection's event stream
  };

  // The receiving end of this connection's event stream in the hub: hands each frame to the
  // session's own thread (the hub calls it from the change listener's).
  struct stream_sink final : event_sink {
    std::weak_ptr<session> owner;
    boost::asio::any_io_executor ex;
    void push(frame_ptr frame) override {
      net::post(ex, [w = owner, frame = std::move(frame)] {
        if (auto self = w.lock())
          self->on_event(frame);
      });
    }
  };

  // An open event stream (GET /api/tasks/events): once its head is written, the connection
  // reads no more requests; it sends frames until the client leaves, the token stops
  // verifying (`event: reauth`), the server drains, or the client reads too slowly.
  struct live_stream {
    stream_request req;
    std::shared_ptr<stream_sink> sink;
    std::deque<frame_ptr> queue;
    size_t queued_bytes = 0;
    bool started = false;    // the head is on the wire
    bool ending = false;     // the last frames are queued; close once written
    bool final_sent = false; // the terminating chunk was queued
    bool chunked = true;     // HTTP/1.1: chunked; HTTP/1.0: ends with the connection
    std::string head;        // the serialized head, until written
    std::string out;         // bytes being written
    std::optional<net::steady_timer> timer;
  };


  std::chrono::milliseconds read_timeout() const {
    return std::chrono::milliseconds(ctx_.cfg.read_timeout_ms);
  }
  std::chrono::milliseconds idle_timeout() const {
    return std::chrono::milliseconds(ctx_.cfg.idle_timeout_ms);
  }

  beast::tcp_stream& lowest() {
    return beast::get_lowest_layer(stream_);
  }

  // A failed handshake closes the connection. A client that spoke plain HTTP to this port
  // gets one plain-text HTTP answer saying so first (as nginx does), never a hang.
  void on_handshake(beast::error_code ec) {
    if (!ec) {
      handshaken_ = true;
      read_next();
      return;
    }
    closing_ = true;
    if (ec.category() == boost::asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST) {
      static constexpr std::string_view answer =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
        "Content-Length: 49\r\nConnection: close\r\n\r\n"
        "{\"detail\":\"This port speaks HTTPS: use https://\"}";
      static_assert(answer.size() - answer.find("\r\n\r\n") - 4 == 49);
      lowest().expires_after(std::chrono::seconds(2));
      net::async_write(lowest().socket(), net::buffer(answer.data(), answer.size()),
                       [self = this->shared_from_this()](beast::error_code, size_t) {
                         self->hard_close();
                       });
      return;
    }
    hard_close();
  }

  // Shutting down: answer what was read, read nothing new, close an idle connection now.
  void on_drain() {
    if (live_) {
      closing_ = true;
      end_stream({});
      return;
    }
    beast::error_code avail_ec;
    if (fresh_ && reading_ && waiting_first_byte_ &&
        lowest().socket().available(avail_ec) > 0 && !avail_ec)
      return; // its first request is arriving (a proxy sends at once): answer it, then close
    closing_ = true;
    if (reading_ && waiting_first_byte_) {
      beast::error_code ec;
      lowest().socket().cancel(ec); // on_first_bytes sees operation_aborted and closes
    }
    finish_or_close();
  }

  void read_next() {
    if (live_)
      return; // a stream's connection reads no more requests (stream_read watches it)
    // Draining: a connection that has not sent its first request yet may still send it (it
    // was accepted just now, or from the listen queue as the listener closed); any other
    // reads nothing new.
    if (ctx_.draining && !fresh_)
      closing_ = true;
    if (closing_ || slots_.size() >= max_pipeline) {
      reading_ = false;
      return;
    }
    reading_ = true;
    parser_.emplace();
    parser_->header_limit(header_limit);
    parser_->body_limit(static_cast<std::uint64_t>(ctx_.cfg.max_body_bytes));
    if (buffer_.size() == 0) {
      // Idle between requests: wait for the first byte with the idle timeout.
      read_deadline_ = clock::now() + (ctx_.draining && fresh_ ? std::chrono::milliseconds(1000)
                                                                : idle_timeout());
      lowest().expires_at(read_deadline_);
      waiting_first_byte_ = true;
      stream_.async_read_some(buffer_.prepare(4096),
                              [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                                self->on_first_bytes(ec, n);
                              });
    } else {
      read_request();
    }
  }

  void on_first_bytes(beast::error_code ec, size_t n) {
    waiting_first_byte_ = false;
    if (live_) {
      on_stream_read(ec, n);
      return;
    }
    if (ec) {
      reading_ = false;
      closing_ = true;
      finish_or_close();
      return;
    }
    buffer_.commit(n);
    read_request();
  }

  // A request has begun: the whole of it must arrive within the read timeout (slowloris).
  // The header comes first: framing is decided on it before any body byte is read.
  void read_request() {
    read_deadline_ = clock::now() + read_timeout();
    lowest().expires_at(read_deadline_);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](beast::error_code ec, size_t) {
                               self->on_header(ec);
                             });
  }

  void on_header(beast::error_code ec) {
    if (live_) {
      on_stream_read(ec, 0);
      return;
    }
    if (ec) {
      on_read(ec);
      return;
    }
    const auto& req = parser_->get();
    if (!framing_acceptable(req)) {
      // The body's length cannot be trusted: answer and close before reading any of it, so
      // that no byte of it is ever taken for a request (RFC 9112 §6.1, §6.3).
      reading_ = false;
      closing_ = true;
      push_error(errc::bad_request);
      finish_or_close();
      return;
    }
    auto expects = expectation_of(req);
    if (expects == expectation::unmet) {
      reading_ = false;
      closing_ = true;
      push_error(errc::expectation_failed);
      finish_or_close();
      return;
    }
    if (parser_->is_done()) {
      on_read({});
      return;
    }
    // A chunked body may end in trailer fields, which Beast files among the header's own
    // (next to a field of the same name). They are never header fields (RFC 9110 §6.5.1):
    // keep the header as it was, and put it back once the body is read.
    if (parser_->chunked())
      header_.emplace(req.base());
    // The client waits for 100 Continue before it sends the body; a body already on its way
    // needs none (RFC 9110 §10.1.1). Errors decided on the header (413) were answered above.
    if (expects == expectation::continue_100 && buffer_.size() == 0)
      send_continue();
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read(beast::error_code ec) {
    if (live_) {
      on_stream_read(ec, 0);
      return;
    }
    reading_ = false;
    continue_due_ = false;
    auto header = std::exchange(header_, std::nullopt);
    if (ec) {
      closing_ = true;
      if (ec == bhttp::error::header_limit)
        push_error(errc::headers_too_large);
      else if (ec == bhttp::error::body_limit)
        push_error(errc::body_too_large);
      else if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout &&
               ec != net::error::connection_reset && ec != net::error::eof &&
               ec != net::error::operation_aborted)
        push_error(errc::bad_request);
      finish_or_close();
      return;
    }
    auto req = parser_->release();
    fresh_ = false;
    if (header)
      req.base() = std::move(*header); // without the trailer fields
    if (!req.keep_alive())
      closing_ = true;
    exchange ex;
    ex.seq = first_seq_ + slots_.size();
    ex.started = clock::now();
    ex.client = client_of(req);
    slots_.emplace_back();
    handle_request(ctx_, std::move(ex), req, this->shared_from_this());
    read_next();
  }

  // Writes the interim 100 Continue, once every earlier response has gone out (a 1xx must
  // not overtake them): until then it is due, and on_write sends it.
  void send_continue() {
    if (writing_ || !slots_.empty()) {
      continue_due_ = true;
      return;
    }
    continue_due_ = false;
    writing_ = true;
    static constexpr std::string_view line = "HTTP/1.1 100 Continue\r\n\r\n";
    // The pending read's deadline covers this write too.
    net::async_write(stream_, net::buffer(line.data(), line.size()),
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       self->writing_ = false;
                       if (ec) {
                         self->close();
                         return;
                       }
                       self->write_next();
                       self->finish_or_close();
                     });
  }

  // The address the access log names: the peer, or with TRUSTED_PROXIES the client a trusted
  // proxy names in X-Forwarded-For (several such fields count as one comma list).
  std::string client_of(const request& req) const {
    const auto& trusted = ctx_.cfg.trusted_proxies;
    if (trusted.empty())
      return peer_;
    std::string forwarded;
    for (auto [i, end] = req.equal_range("X-Forwarded-For"); i != end; ++i) {
      if (!forwarded.empty())
        forwarded += ',';
      forwarded.append(i->value().data(), i->value().size());
    }
    return client_address(trusted, peer_, forwarded);
  }

  // Answers a request that could not be parsed; the connection closes after it.
  void push_error(errc code) {
    exchange ex;
    ex.seq = first_seq_ + slots_.size();
    ex.started = clock::now();
    ex.request_id = next_request_id(ctx_);
    ex.keep_alive = false;
    slots_.emplace_back();
    linger_ = true; // the client may still be sending what we refused
    respond(ex, early_response(ctx_, ex, code));
  }

  void post(std::function<void()> fn) override {
    net::post(stream_.get_executor(), std::move(fn));
  }

  void respond(const exchange& ex, response res) override {
    if (!header_values_safe(res)) {
      // Never let CR, LF or NUL reach the wire, whatever a token or a client sent.
      log::error("a response header value held CR, LF or NUL; answered 500 instead");
      res = early_response(ctx_, ex, errc::internal);
    }
    // While draining, the last response of the connection says it closes; earlier pipelined
    // ones still go out first (their requests may already be committed).
    auto idx = ex.seq - first_seq_;
    bool leaving = ctx_.leaving.load(std::memory_order_relaxed);
    if (leaving)
      closing_ = true; // no further request on this connection
    bool last = closing_ && (leaving || ctx_.draining) && idx + 1 == slots_.size();
    res.keep_alive(ex.keep_alive && !last);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - ex.started);
    log::request(ex.method, ex.path, res.result_int(), micros.count(), ex.request_id,
                 ex.trace_id, ex.client);
    if (ctx_.cfg.metrics)
      ctx_.metrics.observe(ex.route, ex.method, res.result_int(), micros.count());
    if (idx >= slots_.size())
      return; // the connection was reset meanwhile
    slots_[idx].res = std::move(res);
    write_next();
  }

  void write_next() {
    if (live_ && live_->started) {
      stream_write_next();
      return;
    }
    if (writing_ || slots_.empty() || !slots_.front().res)
      return;
    if (slots_.front().stream) {
      start_stream();
      return;
    }
    writing_ = true;
    lowest().expires_after(read_timeout());
    // The head is serialized here (http/wire.hpp: Beast's serializer costs a quarter of a
    // cached GET); the body is written from the response itself, which stays in its slot
    // until on_write.
    const auto& res = *slots_.front().res;
    head_.clear();
    append_head(head_, res);
    std::array<net::const_buffer, 2> bytes{net::buffer(head_),
                                           net::buffer(res.body().data(), res.body().size())};
    net::async_write(stream_, bytes,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       self->on_write(ec);
                     });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (ec) {
      close();
      return;
    }
    bool keep = slots_.front().res->keep_alive();
    slots_.pop_front();
    ++first_seq_;
    if (!keep) {
      close();
      return;
    }
    if (reading_)
      lowest().expires_at(read_deadline_); // give the pending read its own deadline back
    else if (!closing_)
      read_next();
    if (continue_due_ && slots_.empty() && reading_)
      send_continue();
    write_next();
    finish_or_close();
  }

  // Closes once nothing is left to write and no read is pending.
  void finish_or_close() {
    if (live_)
      return; // the stream ends by its own rules (end_stream, abort_stream)
    if (closing_ && !reading_ && !writing_ && slots_.empty())
      close();
  }

  // ---- the event stream ----

  void open_stream(const exchange& ex, response head, stream_request req) override {
    auto idx = ex.seq - first_seq_;
    if (idx >= slots_.size() || live_ || ctx_.draining) {
      // The connection is going away (or already streams): nothing to start.
      respond(ex, early_response(ctx_, ex, errc::too_many_streams));
      return;
    }
    auto sink = std::make_shared<stream_sink>();
    sink->owner = this->weak_from_this();
    sink->ex = stream_.get_executor();
    auto opening = ctx_.hub->subscribe(req.user, req.last_event_id, sink);
    if (opening.result != event_hub::admission::ok) {
      respond(ex, early_response(ctx_, ex, errc::too_many_streams));
      return;
    }
    if (ex.head) {
      // HEAD: the stream's header fields, no stream.
      ctx_.hub->unsubscribe(req.user, sink.get());
      respond(ex, std::move(head));
      return;
    }
    live_ = std::make_unique<live_stream>();
    live_->req = std::move(req);
    live_->sink = std::move(sink);
    live_->chunked = ex.version >= 11;
    // Reconnect after 3 s when the connection drops (EventSource's `retry`), then what the
    // client must know before the live events: refetch (reset), or what it missed.
    queue_frame(std::make_shared<const std::string>("retry: 3000\n\n"));
    if (opening.reset)
      queue_frame(std::make_shared<const std::string>(event_hub::frame({}, "reset", "{}")));
    for (auto& f : opening.backlog)
      queue_frame(std::move(f));
    if (live_->chunked)
      head.set(bhttp::field::transfer_encoding, "chunked");
    head.keep_alive(true);
    append_head(live_->head, head);
    slots_[idx].stream = true;
    respond(ex, std::move(head)); // logged and counted like any answer; written by start_stream
  }

  // The stream's slot reached the front: every earlier response is out. Write the head and
  // what is queued, and from now on watch the connection only for the client leaving.
  void start_stream() {
    slots_.pop_front();
    ++first_seq_;
    slots_.clear(); // requests pipelined behind a stream are never answered
    closing_ = true;
    live_->started = true;
    live_->timer.emplace(stream_.get_executor());
    arm_stream_timer();
    if (!reading_)
      stream_read();
    stream_write_next();
  }

  void stream_read() {
    reading_ = true;
    waiting_first_byte_ = true;
    stream_.async_read_some(buffer_.prepare(512),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              self->on_first_bytes(ec, n);
                            });
  }

  // Anything the client sends on a stream's connection is ignored; its leaving ends the stream.
  void on_stream_read(beast::error_code ec, size_t n) {
    reading_ = false;
    if (n > 0)
      buffer_.commit(n);
    buffer_.consume(buffer_.size());
    if (ec || !live_->started) {
      if (!live_->started && !ec) {
        stream_read(); // a pipelined request's bytes: ignored
        return;
      }
      abort_stream();
      return;
    }
    stream_read();
  }

  void queue_frame(frame_ptr f) {
    live_->queued_bytes += f->size();
    live_->queue.push_back(std::move(f));
  }

  void on_event(const frame_ptr& f) {
    // No sink: stop_stream left the hub; events already on their way are not counted again.
    if (!live_ || live_->ending || !live_->sink)
      return;
    if (live_->queued_bytes + f->size() > ctx_.cfg.sse_queue_kb * 1024) {
      // A reader this slow would make us hold its events without limit: it is dropped, and
      // reconnects with Last-Event-ID (or is told to refetch).
      ++ctx_.sse_slow_readers;
      log::warn("event stream dropped: its reader fell " +
                std::to_string(live_->queued_bytes / 1024) + " KiB behind");
      abort_stream();
      return;
    }
    ++ctx_.sse_sent;
    queue_frame(f);
    stream_write_next();
  }

  void stream_write_next() {
    auto& st = *live_;
    if (writing_ || !st.started)
      return;
    st.out.clear();
    if (!st.head.empty())
      st.out = std::move(st.head), st.head.clear();
    if (!st.queue.empty()) {
      std::string body;
      while (!st.queue.empty() && body.size() < 65536) {
        body += *st.queue.front();
        st.queued_bytes -= st.queue.front()->size();
        st.queue.pop_front();
      }
      if (st.chunked) {
        char size[20];
        std::snprintf(size, sizeof size, "%zx\r\n", body.size());
        st.out += size;
        st.out += body;
        st.out += "\r\n";
      } else {
        st.out += body;
      }
    }
    if (st.ending && st.queue.empty() && !st.final_sent) {
      st.final_sent = true;
      if (st.chunked)
        st.out += "0\r\n\r\n";
    }
    if (st.out.empty()) {
      if (st.final_sent)
        close();
      return;
    }
    writing_ = true;
    lowest().expires_after(read_timeout()); // a reader that takes no bytes for this long is gone
    net::async_write(stream_, net::buffer(st.out),
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       self->writing_ = false;
                       if (ec) {
                         self->abort_stream();
                         return;
                       }
                       self->lowest().expires_never();
                       self->stream_write_next();
                     });
  }

  // Heartbeats, and the token's next check.
  void arm_stream_timer() {
    auto& st = *live_;
    auto wait = std::chrono::milliseconds(ctx_.cfg.sse_heartbeat_ms);
    if (st.req.expires_at > 0) {
      // The token's exp ends the stream (no clock leeway: that is for checking a request).
      auto left = std::chrono::milliseconds(st.req.expires_at * 1000 - unix_now_ms());
      wait = std::min(wait, std::max(left, std::chrono::milliseconds(0)));
    }
    if (st.req.valid_until > 0) {
      // At the verdict's end; once past it (a token inside its clock leeway), every second.
      auto left = std::chrono::seconds(st.req.valid_until - unix_now());
      wait = std::min<std::chrono::milliseconds>(
        wait, left > std::chrono::seconds(0) ? left : std::chrono::seconds(1));
    }
    st.timer->expires_after(wait);
    st.timer->async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec)
        self->on_stream_timer();
    });
  }

  static int64_t unix_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
  }

  static int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
  }

  void on_stream_timer() {
    if (!live_ || live_->ending)
      return;
    auto& st = *live_;
    if (st.req.expires_at > 0 && unix_now_ms() >= st.req.expires_at * 1000) {
      ++ctx_.sse_reauth;
      end_stream(event_hub::frame({}, "reauth", detail_body("Token expired")));
      return;
    }
    if (st.req.valid_until == 0 || unix_now() >= st.req.valid_until) {
      // Check the token again (cheap: the couriers and the auth actor cache verdicts).
      ctx_.gw.authorize(st.req.token, st.req.scoped_user,
                        [self = this->shared_from_this()](reply rep) {
                          self->post([self, rep = std::move(rep)] { self->on_reauth(rep); });
                        });
    }
    static const auto beat = std::make_shared<const std::string>(": keep-alive\n\n");
    queue_frame(beat);
    stream_write_next();
    arm_stream_timer();
  }

  void on_reauth(const reply& rep) {
    if (!live_ || live_->ending)
      return;
    if (rep.code == errc::none) {
      live_->req.valid_until = rep.valid_until;
      return;
    }
    ++ctx_.sse_reauth;
    std::string detail = rep.reason.empty() ? std::string{"Not authenticated"} : rep.reason;
    end_stream(event_hub::frame({}, "reauth", detail_body(detail)));
  }

  // Ends the stream cleanly: `last` (if any), then the terminating chunk, then close.
  void end_stream(std::string last) {
    if (!live_ || live_->ending)
      return;
    // (Not on the wire yet: start_stream writes the head, then these last frames.)
    live_->ending = true;
    if (!last.empty())
      queue_frame(std::make_shared<const std::string>(std::move(last)));
    ctx_.hub->unsubscribe(live_->req.user, live_->sink.get());
    stream_write_next();
  }

  // Ends the stream at once (the client left, wrote nothing for too long, or fell behind).
  void abort_stream() {
    stop_stream();
    hard_close();
  }

  // Leaves the hub and stops the timer (idempotent).
  void stop_stream() {
    if (!live_)
      return;
    if (live_->sink) {
      ctx_.hub->unsubscribe(live_->req.user, live_->sink.get());
      live_->sink.reset();
    }
    if (live_->timer)
      live_->timer->cancel();
  }

  void close() {
    closing_ = true;
    if constexpr (tls) {
      // close_notify when nothing else is in flight on the stream; otherwise (an error, or a
      // read still pending) the TCP connection just closes.
      if (handshaken_ && !reading_ && !writing_ && !shutting_down_) {
        shutting_down_ = true;
        lowest().expires_after(std::chrono::seconds(1));
        stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->hard_close(); });
        return;
      }
      if (shutting_down_)
        return;
    }
    hard_close();
  }

  void hard_close() {
    closing_ = true;
    stop_stream();
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    if (linger_ && !linger_buf_ && lowest().socket().is_open()) {
      // Closing with unread bytes in the receive buffer sends a reset, which can destroy our
      // answer (a 413, say) before the client has read it: read and drop what the client
      // still sends, for at most a second and a megabyte, then close.
      linger_buf_ = std::make_unique<std::array<char, 4096>>();
      lowest().expires_after(std::chrono::seconds(1));
      linger_read();
      return;
    }
    lowest().close();
  }

  void linger_read() {
    lowest().async_read_some(
      net::buffer(*linger_buf_), [self = this->shared_from_this()](beast::error_code ec, size_t n) {
        self->lingered_ += n;
        if (ec || self->lingered_ > (1u << 20)) {
          self->lowest().close();
          return;
        }
        self->linger_read();
      });
  }

  Stream stream_;
  server_context& ctx_;
  std::string peer_; // the peer's address, for the access log
  bool fresh_ = true; // no request read yet (while draining: it may read this one)
  bool linger_ = false; // answered a request it did not read to the end: linger on close
  std::unique_ptr<std::array<char, 4096>> linger_buf_; // while lingering
  size_t lingered_ = 0;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::deque<slot> slots_;
  uint64_t first_seq_ = 0; // sequence number of slots_.front()
  clock::time_point read_deadline_;
  bool reading_ = false;
  bool waiting_first_byte_ = false; // idle between requests
  bool writing_ = false;
  std::string head_; // the head of the response being written (write_next)
  bool closing_ = false;
  bool continue_due_ = false; // a 100 Continue waits for earlier responses to go out
  uint64_t drain_hook_ = 0;
  std::optional<request::header_type> header_; // a chunked request's header, as received
  bool handshaken_ = !tls;                     // TLS: the handshake has completed
  bool shutting_down_ = false;                 // TLS: close_notify is on its way
  std::unique_ptr<live_stream> live_;          // set once the connection streams events
};

} // namespace

void start_session(tcp::socket socket, server_context& ctx, boost::asio::ssl::context* tls) {
  if (tls)
    std::make_shared<session<tls_stream>>(ctx, std::move(socket), *tls)->start();
  else
    std::make_shared<session<plain_stream>>(ctx, std::move(socket))->start();
}

void refuse_connection(tcp::socket socket, server_context& ctx, bool tls) {
  if (tls) {
    // No handshake for a connection beyond MAX_CONNECTIONS: it is closed at once.
    boost::system::error_code ec;
    socket.close(ec);
    return;
  }
  struct refusal {
    beast::tcp_stream stream;
    response res;
  };
  exchange ex;
  ex.request_id = next_request_id(ctx);
  ex.keep_alive = false;
  auto r = std::make_shared<refusal>(refusal{beast::tcp_stream{std::move(socket)},
                                             early_response(ctx, ex, errc::too_many_connections)});
  r->res.keep_alive(false);
  r->stream.expires_after(std::chrono::seconds(2));
  bhttp::async_write(r->stream, r->res, [r](beast::error_code, size_t) {
    beast::error_code ec;
    r->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    r->stream.close();
  });
}

} // namespace todo::http
