#include <chrono>
#include <deque>
#include <memory>
#include <optional>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "config/log.hpp"
#include "actors/task_json.hpp"
#include "http/json_codec.hpp"
#include "http/listener.hpp"
#include "http/router.hpp"
#include "http/status.hpp"

namespace todo::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using response = bhttp::response<bhttp::string_body>;
using request = bhttp::request<bhttp::string_body>;
using clock = std::chrono::steady_clock;

namespace {

constexpr size_t max_pipeline = 32;      // requests read ahead of their responses
constexpr size_t header_limit = 8192;    // request line plus headers (API.md §3)
constexpr char json_type[] = "application/json";

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// Returns the token of an `Authorization: Bearer <token>` header, or empty.
std::string_view bearer_token(std::string_view header) {
  header = trim(header);
  if (header.size() < 7 || !iequals(header.substr(0, 6), "bearer") ||
      (header[6] != ' ' && header[6] != '\t'))
    return {};
  return trim(header.substr(7));
}

/// Returns whether a Content-Type names JSON (parameters such as charset allowed).
bool is_json(std::string_view content_type) {
  auto semi = content_type.find(';');
  return iequals(trim(content_type.substr(0, semi)), json_type);
}

/// Returns whether a client-sent X-Request-Id is safe to echo and log.
bool usable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128)
    return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, server_context& ctx) : stream_(std::move(socket)), ctx_(ctx) {
    ++ctx_.connections;
  }

  ~session() {
    ctx_.remove_drain_hook(drain_hook_);
    --ctx_.connections;
  }

  void start() {
    drain_hook_ = ctx_.add_drain_hook([weak = weak_from_this()] {
      if (auto self = weak.lock())
        net::post(self->stream_.get_executor(), [self] { self->on_drain(); });
    });
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_next(); });
  }

private:
  // One request's place in the pipeline; responses leave in request order.
  struct slot {
    std::optional<response> res;
  };

  // Per-request facts the response needs.
  struct exchange {
    uint64_t seq = 0;
    clock::time_point started;
    std::string method;
    std::string path;
    std::string request_id;
    std::string origin; // set only when CORS allows it
    std::string if_none_match;
    bool keep_alive = true;
    unsigned version = 11;
  };

  std::chrono::milliseconds read_timeout() const {
    return std::chrono::milliseconds(ctx_.cfg.read_timeout_ms);
  }
  std::chrono::milliseconds idle_timeout() const {
    return std::chrono::milliseconds(ctx_.cfg.idle_timeout_ms);
  }

  // Shutting down: answer what was read, read nothing new, close an idle connection now.
  void on_drain() {
    closing_ = true;
    if (reading_ && waiting_first_byte_) {
      beast::error_code ec;
      stream_.socket().cancel(ec); // on_first_bytes sees operation_aborted and closes
    }
    finish_or_close();
  }

  void read_next() {
    if (ctx_.draining)
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
      read_deadline_ = clock::now() + idle_timeout();
      stream_.expires_at(read_deadline_);
      waiting_first_byte_ = true;
      stream_.async_read_some(buffer_.prepare(4096),
                              [self = shared_from_this()](beast::error_code ec, size_t n) {
                                self->on_first_bytes(ec, n);
                              });
    } else {
      read_request();
    }
  }

  void on_first_bytes(beast::error_code ec, size_t n) {
    waiting_first_byte_ = false;
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
  void read_request() {
    read_deadline_ = clock::now() + read_timeout();
    stream_.expires_at(read_deadline_);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read(beast::error_code ec) {
    reading_ = false;
    if (ec) {
      closing_ = true;
      if (ec == bhttp::error::header_limit)
        push_error(431, "Request Header Fields Too Large");
      else if (ec == bhttp::error::body_limit)
        push_error(413, "Request body too large");
      else if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout &&
               ec != net::error::connection_reset && ec != net::error::eof &&
               ec != net::error::operation_aborted)
        push_error(400, "Bad Request");
      finish_or_close();
      return;
    }
    auto req = parser_->release();
    if (!req.keep_alive())
      closing_ = true;
    handle(std::move(req));
    read_next();
  }

  // Answers a request that could not be parsed; the connection closes after it.
  void push_error(unsigned status, const char* msg) {
    exchange ex;
    ex.seq = first_seq_ + slots_.size();
    ex.started = clock::now();
    ex.method = "-";
    ex.path = "-";
    ex.request_id = next_request_id();
    ex.keep_alive = false;
    slots_.emplace_back();
    send(ex, status, detail_body(msg));
  }

  std::string next_request_id() {
    return ctx_.request_id_prefix + std::to_string(++ctx_.request_counter);
  }

  void handle(request&& req) {
    exchange ex;
    ex.seq = first_seq_ + slots_.size();
    slots_.emplace_back();
    ex.started = clock::now();
    ex.method = std::string{req.method_string()};
    std::string_view target = req.target();
    auto q = target.find('?');
    ex.path = std::string{target.substr(0, q)};
    std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
    auto rid = req["X-Request-Id"];
    ex.request_id = usable_request_id(rid) ? std::string{rid} : next_request_id();
    ex.keep_alive = req.keep_alive();
    ex.version = req.version();
    if (req.method() == bhttp::verb::get)
      ex.if_none_match = std::string{req[bhttp::field::if_none_match]};
    auto origin = req[bhttp::field::origin];
    for (const auto& allowed : ctx_.cfg.cors_origins)
      if (!origin.empty() && origin == allowed)
        ex.origin = std::string{origin};

    bool api = ex.path.rfind("/api/", 0) == 0;
    if (req.method() == bhttp::verb::options && api) {
      send_preflight(ex, req);
      return;
    }
    auto r = route(ex.method, ex.path);
    if (r.result == route_result::outcome::not_found) {
      send(ex, 404, detail_body("Not Found"));
      return;
    }
    if (r.result == route_result::outcome::method_not_allowed) {
      send(ex, 405, detail_body("Method Not Allowed"), [&](response& res) {
        res.set(bhttp::field::allow, r.allow);
      });
      return;
    }
    switch (r.act) {
      case action::health:
        send(ex, 200, R"({"status":"ok"})");
        return;
      case action::ready:
        ctx_.gw.ready([self = shared_from_this(), ex](bool ok) {
          net::post(self->stream_.get_executor(), [self, ex, ok] {
            if (ok)
              self->send(ex, 200, R"({"status":"ready"})");
            else
              self->send_error(ex, errc::db_unavailable, {});
          });
        });
        return;
      default:
        break;
    }
    handle_api(std::move(ex), r, query, req);
  }

  void handle_api(exchange ex, const route_result& r, std::string_view query, request& req) {
    auto token = bearer_token(req[bhttp::field::authorization]);
    if (token.empty()) {
      send_error(ex, errc::unauthorized, {});
      return;
    }
    task_cmd cmd;
    std::string invalid; // a ready 400 body, sent only once the token has been checked
    unsigned invalid_status = 400;
    if (!r.id.empty()) {
      auto id = parse_task_id(r.id);
      if (id)
        cmd.id = *id.value;
      else
        invalid = std::move(id.error_body);
    }
    bool has_body = !req.body().empty();
    if (invalid.empty() && has_body &&
        (r.act == action::create || r.act == action::update || r.act == action::complete) &&
        !is_json(req[bhttp::field::content_type])) {
      invalid_status = 415;
      invalid = detail_body("Content-Type must be application/json");
    }
    if (invalid.empty()) {
      switch (r.act) {
        case action::list: {
          cmd.kind = op::list;
          auto p = parse_query(query);
          if (p)
            cmd.query = *p.value;
          else
            invalid = std::move(p.error_body);
          break;
        }
        case action::create: {
          cmd.kind = op::create;
          auto p = parse_create(req.body());
          if (p)
            cmd.patch = std::move(*p.value);
          else
            invalid = std::move(p.error_body);
          break;
        }
        case action::update: {
          cmd.kind = op::update;
          auto p = parse_update(req.body());
          if (p)
            cmd.patch = std::move(*p.value);
          else
            invalid = std::move(p.error_body);
          break;
        }
        case action::complete: {
          cmd.kind = op::toggle;
          auto p = parse_complete(req.body());
          if (p)
            cmd.patch.completed = *p.value;
          else
            invalid = std::move(p.error_body);
          break;
        }
        case action::fetch:
          cmd.kind = op::fetch;
          break;
        case action::remove:
          cmd.kind = op::remove;
          break;
        default:
          break;
      }
    }
    if (r.act == action::update || r.act == action::remove || r.act == action::complete)
      cmd.if_match = std::string{req[bhttp::field::if_match]};
    ++ctx_.in_flight;
    auto self = shared_from_this();
    if (!invalid.empty()) {
      // Authentication comes first (401/403 before 400/415): check the token only.
      cmd.kind = op::fetch;
      ctx_.gw.authorize(std::string{token}, r.user_id,
                        [self, ex, invalid_status, invalid = std::move(invalid)](reply rep) {
                          net::post(self->stream_.get_executor(),
                                    [self, ex, invalid_status, invalid, rep = std::move(rep)] {
                                      --self->ctx_.in_flight;
                                      if (rep.code != errc::none)
                                        self->send_error(ex, rep.code, rep.reason);
                                      else
                                        self->send(ex, invalid_status, invalid);
                                    });
                        });
      return;
    }
    auto kind = cmd.kind;
    std::string location_prefix = r.scoped ? "/api/" + r.user_id + "/tasks/" : "/api/tasks/";
    ctx_.gw.submit(std::string{token}, r.user_id, std::move(cmd),
                   [self, ex, kind, location_prefix = std::move(location_prefix)](reply rep) {
                     net::post(self->stream_.get_executor(),
                               [self, ex, kind, location_prefix, rep = std::move(rep)]() mutable {
                                 --self->ctx_.in_flight;
                                 self->answer(ex, kind, location_prefix, std::move(rep));
                               });
                   });
  }

  void answer(const exchange& ex, op kind, const std::string& location_prefix, reply rep) {
    if (rep.code != errc::none) {
      send_error(ex, rep.code, rep.reason);
      return;
    }
    std::string body;
    switch (kind) {
      case op::list:
        if (!rep.result.json.empty()) {
          body = std::move(rep.result.json);
        } else {
          body.reserve(64 + rep.result.rows.size() * 160);
          todo::write_tasks(body, rep.result.rows);
        }
        send_cacheable(ex, std::move(body), [&](response& res) {
          res.set("X-Total-Count", std::to_string(rep.result.total));
        });
        return;
      case op::remove:
        send(ex, 204, {});
        return;
      default:
        break;
    }
    if (rep.result.rows.empty()) {
      send_error(ex, errc::internal, {});
      return;
    }
    const auto& t = rep.result.rows.front();
    if (!rep.result.json.empty()) {
      body = std::move(rep.result.json);
    } else {
      body.reserve(256);
      todo::write_task(body, t);
    }
    if (kind == op::create)
      send(ex, 201, std::move(body), [&](response& res) {
        res.set(bhttp::field::location, location_prefix + std::to_string(t.id));
      });
    else if (kind == op::fetch)
      send_cacheable(ex, std::move(body), [](response&) {});
    else
      send(ex, 200, std::move(body));
  }

  // Answers a GET with an ETag (a hash of the exact body), or 304 when If-None-Match has it.
  template <class Extra>
  void send_cacheable(const exchange& ex, std::string body, Extra&& extra) {
    auto tag = etag_of(body);
    bool fresh = etag_listed(ex.if_none_match, tag);
    send(ex, fresh ? 304 : 200, fresh ? std::string{} : std::move(body), [&](response& res) {
      res.set(bhttp::field::etag, tag);
      extra(res);
    });
  }

  void send_error(const exchange& ex, errc code, const std::string& reason) {
    auto e = map_error(code, reason);
    send(ex, e.status, std::move(e.body), [&](response& res) {
      if (e.www_authenticate)
        res.set(bhttp::field::www_authenticate, e.www_authenticate);
      if (e.retry_after)
        res.set(bhttp::field::retry_after, e.retry_after);
    });
  }

  void send_preflight(const exchange& ex, const request& req) {
    auto r = route(std::string_view{"GET"}, ex.path);
    send(ex, 204, {}, [&](response& res) {
      if (r.result != route_result::outcome::not_found && !r.allow.empty())
        res.set(bhttp::field::allow, std::string{r.allow} + ", OPTIONS");
      if (ex.origin.empty())
        return;
      res.set(bhttp::field::access_control_allow_methods, "GET, POST, PUT, PATCH, DELETE, OPTIONS");
      res.set(bhttp::field::access_control_allow_headers,
              "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, "
              "X-Request-Id");
      res.set(bhttp::field::access_control_max_age, "600");
    });
    (void) req;
  }

  template <class Extra>
  void send(const exchange& ex, unsigned status, std::string body, Extra&& extra) {
    response res{static_cast<bhttp::status>(status), ex.version};
    bool bodiless = status == 204 || status == 304;
    if (!bodiless) {
      res.set(bhttp::field::content_type, json_type);
      res.body() = std::move(body);
    }
    res.set("X-Request-Id", ex.request_id);
    if (!ex.origin.empty()) {
      res.set(bhttp::field::access_control_allow_origin, ex.origin);
      res.set(bhttp::field::access_control_allow_credentials, "true");
      res.set(bhttp::field::access_control_expose_headers, "Location, ETag, X-Total-Count");
    }
    if (!ctx_.cfg.cors_origins.empty())
      res.set(bhttp::field::vary, "Origin");
    extra(res);
    // While draining, the last response of the connection says it closes; earlier pipelined
    // ones still go out first (their requests may already be committed).
    auto pos = ex.seq - first_seq_;
    bool last = closing_ && ctx_.draining && pos + 1 == slots_.size();
    res.keep_alive(ex.keep_alive && !last);
    if (bodiless)
      res.erase(bhttp::field::content_length); // RFC 9110: none on 204; 304 has no body
    else
      res.prepare_payload();
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - ex.started);
    log::request(ex.method, ex.path, status, micros.count(), ex.request_id);
    auto idx = ex.seq - first_seq_;
    if (idx >= slots_.size())
      return; // the connection was reset meanwhile
    slots_[idx].res = std::move(res);
    write_next();
  }

  void send(const exchange& ex, unsigned status, std::string body) {
    send(ex, status, std::move(body), [](response&) {});
  }

  void write_next() {
    if (writing_ || slots_.empty() || !slots_.front().res)
      return;
    writing_ = true;
    stream_.expires_after(read_timeout());
    bhttp::async_write(stream_, *slots_.front().res,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
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
      stream_.expires_at(read_deadline_); // give the pending read its own deadline back
    else if (!closing_)
      read_next();
    write_next();
    finish_or_close();
  }

  // Closes once nothing is left to write and no read is pending.
  void finish_or_close() {
    if (closing_ && !reading_ && !writing_ && slots_.empty())
      close();
  }

  void close() {
    closing_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  server_context& ctx_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::deque<slot> slots_;
  uint64_t first_seq_ = 0; // sequence number of slots_.front()
  clock::time_point read_deadline_;
  bool reading_ = false;
  bool waiting_first_byte_ = false; // idle between requests
  bool writing_ = false;
  bool closing_ = false;
  uint64_t drain_hook_ = 0;
};

} // namespace

void start_session(tcp::socket socket, server_context& ctx) {
  std::make_shared<session>(std::move(socket), ctx)->start();
}

void refuse_connection(tcp::socket socket) {
  struct refusal {
    beast::tcp_stream stream;
    response res;
  };
  auto r = std::make_shared<refusal>(refusal{beast::tcp_stream{std::move(socket)}, {}});
  r->res.result(bhttp::status::service_unavailable);
  r->res.set(bhttp::field::content_type, json_type);
  r->res.set(bhttp::field::retry_after, "1");
  r->res.body() = detail_body("too many connections");
  r->res.keep_alive(false);
  r->res.prepare_payload();
  r->stream.expires_after(std::chrono::seconds(2));
  bhttp::async_write(r->stream, r->res, [r](beast::error_code, size_t) {
    beast::error_code ec;
    r->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    r->stream.close();
  });
}

} // namespace todo::http
