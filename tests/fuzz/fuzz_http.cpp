// libFuzzer target: the real HTTP session (session.cpp, handler.cpp) on a loopback TCP
// connection, with a fake gateway in place of the actors. Each input is written as one client's
// bytes, then the client half-closes and reads everything back. Beyond crashes, leaks and UB,
// these properties must hold for any input:
//   - the bytes written back parse as a sequence of HTTP/1.1 responses with nothing left over
//     (interim 100 Continue allowed), the answers to HEAD requests without body bytes;
//   - no response header value holds CR, LF or NUL, and none is a 500 (the session's
//     last-resort guard against such values answers 500: the fake gateway never asks for one);
//   - every answer has an X-Request-Id, and only the last one may say Connection: close;
//   - one answer per request the session answers: each complete request up to the first that
//     ends the connection, plus at most one error answer for the bytes after them.
// The fake gateway echoes bytes of the token into every value the service builds from
// replies (task titles, error reasons), and user ids come from the path, so header injection
// through Location, ETag or an error is reachable.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "actors/model/task_json.hpp"
#include "config/log.hpp"
#include "http/handler.hpp"
#include "http/listener.hpp"

namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

[[noreturn]] void violated(const char* property, const std::string& output) {
  std::fprintf(stderr, "\nPROPERTY VIOLATED: %s\n--- bytes written back (%zu) ---\n%.*s\n---\n",
               property, output.size(), static_cast<int>(output.size()), output.data());
  std::abort();
}

/// Answers at once, deciding by the token's first byte; titles and reasons carry its bytes.
class fake_gateway final : public todo::gateway {
public:
  void submit(std::string token, std::string scoped_user, todo::task_cmd cmd,
              std::function<void(todo::reply)> done) override {
    todo::reply rep = verdict(token);
    if (rep.code == todo::errc::none) {
      todo::task t;
      t.id = cmd.id ? cmd.id : 1;
      t.title = token + scoped_user;
      t.description = cmd.patch.title ? cmd.patch.title : std::optional<std::string>{};
      t.completed = cmd.patch.completed.value_or(false);
      if (cmd.kind == todo::op::list) {
        rep.result.rows = {t, t};
        rep.result.total = 2;
        todo::write_tasks(rep.result.json, rep.result.rows);
      } else if (cmd.kind != todo::op::remove) {
        rep.result.rows = {t};
        todo::write_task(rep.result.json, t);
      }
    }
    done(std::move(rep));
  }

  void authorize(std::string token, std::string, std::function<void(todo::reply)> done) override {
    done(verdict(token));
  }

  void ready(std::function<void(bool)> done) override {
    done((++readies_ & 1) != 0);
  }

private:
  static todo::reply verdict(const std::string& token) {
    using todo::errc;
    static constexpr errc codes[] = {errc::none,          errc::none,
                                     errc::task_not_found, errc::forbidden,
                                     errc::invalid_input,  errc::db_unavailable,
                                     errc::overloaded,     errc::unauthorized,
                                     errc::precondition_failed};
    todo::reply rep;
    rep.code = codes[static_cast<unsigned char>(token[0]) % std::size(codes)];
    if (rep.code != errc::none)
      rep.reason = token.substr(1);
    return rep;
  }

  unsigned readies_ = 0;
};

struct harness {
  net::io_context ioc;
  tcp::acceptor acceptor{ioc, tcp::endpoint{net::ip::make_address("127.0.0.1"), 0}};
  todo::settings cfg;
  fake_gateway gw;
  todo::http::server_context ctx{cfg, gw};

  harness() {
    cfg.read_timeout_ms = 2000;
    cfg.idle_timeout_ms = 2000;
    cfg.max_body_bytes = 4096;
    cfg.cors_origins = {"http://localhost:3000"};
    ctx.request_id_prefix = "fz-";
    todo::log::configure(todo::log::level::error, false);
  }

  /// Runs one connection: writes `input`, half-closes, returns every byte the server wrote.
  std::string converse(const uint8_t* data, size_t size) {
    // libFuzzer's timers (SIGALRM) interrupt blocking calls: retry them.
    tcp::socket client{ioc};
    boost::system::error_code ec;
    do {
      client.close(ec);
      client.connect(acceptor.local_endpoint(), ec);
    } while (ec == net::error::interrupted);
    if (ec)
      violated(("connect: " + ec.message()).c_str(), {});
    // An interrupted connect may still complete in the kernel and leave a stale connection in
    // the backlog: accept until the one that is this client's.
    tcp::socket server{ioc};
    for (;;) {
      server.close(ec);
      acceptor.accept(server, ec);
      if (ec == net::error::interrupted)
        continue;
      if (ec)
        violated(("accept: " + ec.message()).c_str(), {});
      if (server.remote_endpoint(ec) == client.local_endpoint())
        break;
    }
    todo::http::start_session(std::move(server), ctx);
    std::string out;
    std::vector<char> buf(65536);
    std::function<void(boost::system::error_code, size_t)> on_read =
      [&](boost::system::error_code ec, size_t n) {
        out.append(buf.data(), n);
        if (!ec)
          client.async_read_some(net::buffer(buf), on_read);
      };
    bool wrote = false;
    net::async_write(client, net::buffer(data, size), [&](boost::system::error_code, size_t) {
      wrote = true;
      boost::system::error_code ignored;
      client.shutdown(tcp::socket::shutdown_send, ignored);
    });
    client.async_read_some(net::buffer(buf), on_read);
    ioc.restart();
    // Every wait of the session is bounded by the read timeout (2 s here): a connection that
    // is still open long after it is a hang.
    ioc.run_for(std::chrono::seconds(6));
    if (!ioc.stopped()) {
      std::fprintf(stderr, "write done: %d, bytes read back: %zu\n", int(wrote), out.size());
      violated("the connection was still open 6 s after the input (read timeout 2 s)", out);
    }
    return out;
  }
};

/// What the session must answer, read from the input the way the session reads it: the HEAD
/// flags of the requests it answers, and whether bytes after them may get one error answer.
struct expectation_model {
  std::vector<bool> head;  // one per request that must be answered
  bool maybe_error = false; // the bytes after those may get one more (error) answer
};

expectation_model model(const uint8_t* data, size_t size, const todo::settings& cfg) {
  expectation_model m;
  net::const_buffer rest{data, size};
  // Feeds the rest of the input; false when the request cannot be completed from it (a parse
  // error, or the input ends inside it): the session may then answer once more (400/413/431).
  auto feed = [&](bhttp::request_parser<bhttp::string_body>& p, bool header_only) {
    while (header_only ? !p.is_header_done() : !p.is_done()) {
      boost::beast::error_code ec;
      auto n = rest.size() ? p.put(rest, ec) : 0;
      rest += n;
      if ((ec == bhttp::error::need_more || rest.size() == 0) && n > 0)
        continue;
      if (ec || n == 0) {
        m.maybe_error = true;
        return false;
      }
    }
    return true;
  };
  while (rest.size() > 0) {
    bhttp::request_parser<bhttp::string_body> p;
    p.header_limit(8192);
    p.body_limit(cfg.max_body_bytes);
    // The header alone first, as the session reads it: the framing checks must not see
    // trailer fields (Beast appends them to the header's).
    p.eager(false);
    if (!feed(p, true))
      return m;
    p.eager(true);
    const auto& req = p.get();
    if (!todo::http::framing_acceptable(req) ||
        todo::http::expectation_of(req) == todo::http::expectation::unmet) {
      m.head.push_back(false); // answered with 400 or 417 before the body; then it closes
      return m;
    }
    bool head = req.method() == bhttp::verb::head;
    bool keep_alive = req.keep_alive(); // the header's: trailer fields never count
    if (!feed(p, false))
      return m;
    m.head.push_back(head);
    if (!keep_alive)
      return m;
  }
  return m;
}

void check(const std::string& out, const expectation_model& m) {
  size_t at = 0;
  size_t answers = 0;
  bool closed = false;
  while (at < out.size()) {
    if (closed)
      violated("bytes after a response that said Connection: close", out);
    bhttp::response_parser<bhttp::string_body> p;
    p.body_limit(1 << 24);
    p.eager(true);
    if (answers < m.head.size() && m.head[answers])
      p.skip(true); // an answer to HEAD: its Content-Length announces no bytes
    boost::beast::error_code ec;
    net::const_buffer rest{out.data() + at, out.size() - at};
    while (!p.is_done() && !ec && rest.size() > 0) {
      auto n = p.put(rest, ec);
      rest += n;
      at += n;
    }
    if (!p.is_done())
      p.put_eof(ec);
    if (ec || !p.is_done())
      violated("the bytes written back are not well-formed HTTP/1.1 responses", out);
    const auto& res = p.get();
    for (const auto& f : res)
      if (f.value().find_first_of(std::string_view{"\r\n\0", 3}) != std::string_view::npos)
        violated("a header value holds CR, LF or NUL", out);
    if (res.result_int() / 100 == 1) {
      if (res.result_int() != 100)
        violated("an interim response other than 100 Continue", out);
      continue;
    }
    if (res.result_int() == 500)
      violated("a 500 (the fake gateway never asks for one)", out);
    if (res.count("X-Request-Id") != 1)
      violated("an answer without exactly one X-Request-Id", out);
    if (!res.keep_alive())
      closed = true;
    ++answers;
  }
  size_t least = m.head.size();
  size_t most = m.head.size() + (m.maybe_error ? 1 : 0);
  if (answers < least || answers > most) {
    std::fprintf(stderr, "answers %zu, expected %zu..%zu\n", answers, least, most);
    violated("not one answer per request", out);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static harness* h = new harness; // lives for the whole run
  auto out = h->converse(data, size);
  check(out, model(data, size, h->cfg));
  return 0;
}
