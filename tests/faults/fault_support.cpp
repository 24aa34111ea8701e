#include "tests/faults/fault_support.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <pqxx/pqxx>

#include "config/text.hpp"

namespace todo::faults {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;

double ms_since(clock::time_point t) {
  return std::chrono::duration<double, std::milli>(clock::now() - t).count();
}

double ms_between(clock::time_point a, clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// ---------- conn ----------

struct conn::impl {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool open = false;

  void close() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.socket().close(ec);
    open = false;
  }
};

conn::conn(unsigned short port, int connect_timeout_ms) : impl_(std::make_unique<impl>()) {
  beast::error_code result = net::error::timed_out;
  impl_->stream.expires_after(std::chrono::milliseconds(connect_timeout_ms));
  impl_->stream.async_connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), port},
                              [&](beast::error_code ec) { result = ec; });
  impl_->ioc.run();
  impl_->ioc.restart();
  if (result)
    throw std::runtime_error("connect failed: " + result.message());
  beast::error_code ignored;
  impl_->stream.socket().set_option(tcp::no_delay(true), ignored);
  impl_->open = true;
}

conn::~conn() {
  impl_->close();
}

bool conn::is_open() const {
  return impl_->open;
}

reply conn::exchange(const std::string& method, const std::string& target,
                     const header_list& headers, const std::string& body, int timeout_ms) {
  return pipeline({request_spec{method, target, headers, body}}, timeout_ms).front();
}

std::vector<reply> conn::pipeline(const std::vector<request_spec>& reqs, int timeout_ms) {
  std::vector<reply> out(reqs.size());
  auto start = clock::now();
  for (auto& r : out)
    r.sent_at = start;
  if (!impl_->open) {
    for (auto& r : out)
      r.error = "connection already closed";
    return out;
  }
  std::string wire;
  for (const auto& spec : reqs) {
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(spec.method), spec.target, 11};
    if (req.method() == bhttp::verb::unknown)
      req.method_string(spec.method);
    req.set(bhttp::field::host, "127.0.0.1");
    // A name given twice is sent twice (a repeated field); once, it replaces the default.
    std::vector<std::string> given;
    for (const auto& [k, v] : spec.headers) {
      auto name = todo::text::lower(k);
      if (std::find(given.begin(), given.end(), name) != given.end()) {
        req.insert(k, v);
      } else {
        req.set(k, v);
        given.push_back(name);
      }
    }
    req.body() = spec.body;
    if (!spec.body.empty() || spec.method == "POST" || spec.method == "PUT" ||
        spec.method == "PATCH")
      req.prepare_payload();
    std::ostringstream os;
    os << req;
    wire += os.str();
  }
  auto& s = impl_->stream;
  s.expires_after(std::chrono::milliseconds(timeout_ms));
  beast::error_code wec;
  net::async_write(s, net::buffer(wire), [&](beast::error_code ec, std::size_t) { wec = ec; });
  impl_->ioc.run();
  impl_->ioc.restart();
  std::size_t i = 0;
  std::string failure;
  if (wec)
    failure = "write: " + wec.message();
  for (; i < reqs.size() && failure.empty(); ++i) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (reqs[i].method == "HEAD")
      parser.skip(true);
    beast::error_code rec;
    bhttp::async_read(s, impl_->buffer, parser,
                      [&](beast::error_code ec, std::size_t) { rec = ec; });
    impl_->ioc.run();
    impl_->ioc.restart();
    if (rec) {
      failure = "read: " + rec.message();
      break;
    }
    auto res = parser.release();
    auto& r = out[i];
    r.answered = true;
    r.status = res.result_int();
    r.done_at = clock::now();
    r.ms = ms_between(start, r.done_at);
    for (const auto& f : res)
      r.headers[todo::text::lower(f.name_string())] = std::string{f.value()};
    r.body = std::move(res.body());
    if (!res.keep_alive()) {
      // The server said it closes: the following requests have no answer.
      ++i;
      if (i < reqs.size())
        failure = "server closed the connection (Connection: close)";
      impl_->close();
      break;
    }
  }
  if (!failure.empty()) {
    impl_->close();
    for (; i < reqs.size(); ++i) {
      out[i].error = failure;
      out[i].done_at = clock::now();
      out[i].ms = ms_between(start, out[i].done_at);
    }
  }
  return out;
}

// ---------- bodies ----------

header_list json_auth(const std::string& user) {
  return {{"Authorization", "Bearer " + todo::test::token_for(user)},
          {"Content-Type", "application/json"}};
}

header_list auth_only(const std::string& user) {
  return {{"Authorization", "Bearer " + todo::test::token_for(user)}};
}

namespace {
const json::value* field(const json::value& v, const char* key) {
  if (!v.is_object())
    return nullptr;
  return v.as_object().if_contains(key);
}
json::value parse_or_null(const std::string& body) {
  json::error_code ec;
  auto v = json::parse(body, ec);
  return ec ? json::value{} : v;
}
} // namespace

std::int64_t json_int(const std::string& body, const char* key) {
  auto v = parse_or_null(body);
  auto f = field(v, key);
  return f && f->is_int64() ? f->as_int64() : -1;
}

std::string json_str(const std::string& body, const char* key) {
  auto v = parse_or_null(body);
  auto f = field(v, key);
  return f && f->is_string() ? std::string{f->as_string()} : std::string{};
}

bool json_bool(const std::string& body, const char* key, bool* ok) {
  auto v = parse_or_null(body);
  auto f = field(v, key);
  if (ok)
    *ok = f && f->is_bool();
  return f && f->is_bool() && f->as_bool();
}

bool is_detail(const std::string& body, const std::string& detail) {
  auto v = parse_or_null(body);
  if (!v.is_object() || v.as_object().size() != 1)
    return false;
  auto f = field(v, "detail");
  return f && f->is_string() && f->as_string() == detail;
}

// ---------- database ----------

namespace {
std::string db_url() {
  const char* url = std::getenv("TEST_DATABASE_URL");
  if (!url)
    throw std::runtime_error("TEST_DATABASE_URL is not set (scripts/test sets it)");
  return url;
}
} // namespace

std::vector<db_row> db_rows(const std::string& user) {
  pqxx::connection c{db_url()};
  pqxx::work w{c};
  auto res = w.exec("SELECT id, title, completed FROM tasks WHERE user_id = " + w.quote(user) +
                    " ORDER BY id");
  std::vector<db_row> out;
  for (const auto& row : res)
    out.push_back(db_row{row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<bool>()});
  w.commit();
  return out;
}

long db_count(const std::string& user) {
  pqxx::connection c{db_url()};
  pqxx::work w{c};
  auto res = w.exec("SELECT count(*) FROM tasks WHERE user_id = " + w.quote(user));
  w.commit();
  return res[0][0].as<long>();
}

// ---------- PostgreSQL control ----------

namespace {
std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string{v} : fallback;
}

std::string as_pg_prefix() {
  return ::geteuid() == 0 ? "runuser -u postgres -- " : "";
}

// Reads the options PostgreSQL was started with from postmaster.opts (every argument but
// -D), each single-quoted for the shell pg_ctl runs postgres through.
std::string original_options(const std::string& data) {
  std::ifstream in{data + "/postmaster.opts"};
  std::string line;
  if (!in || !std::getline(in, line))
    return {};
  std::vector<std::string> args;
  for (auto i = line.find('"'); i != std::string::npos;) {
    auto end = line.find('"', i + 1);
    if (end == std::string::npos)
      return {};
    args.push_back(line.substr(i + 1, end - i - 1));
    i = line.find('"', end + 1);
  }
  std::string opts;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-D") {
      ++i;
      continue;
    }
    if (args[i].find_first_of("'\"$`\\") != std::string::npos)
      return {}; // not safely quotable: use the fallback
    opts += (opts.empty() ? "'" : " '") + args[i] + "'";
  }
  return opts;
}
} // namespace

bool pg_control_available() {
  const char* dir = std::getenv("TEST_PG_DIR");
  if (!dir)
    return false;
  std::ifstream v{std::string{dir} + "/data/PG_VERSION"};
  return static_cast<bool>(v);
}

pg_outage::pg_outage() {
  auto dir = env_or("TEST_PG_DIR", "");
  if (dir.empty())
    throw std::runtime_error("TEST_PG_DIR is not set (scripts/test sets it)");
  auto bin = env_or("PG_BIN", "/usr/lib/postgresql/15/bin");
  pg_ctl_ = as_pg_prefix() + bin + "/pg_ctl";
  data_ = dir + "/data";
  auto opts = original_options(data_);
  if (opts.empty()) {
    auto port = env_or("TEST_PG_PORT", "");
    if (port.empty())
      throw std::runtime_error("cannot tell PostgreSQL's options: no postmaster.opts and no "
                               "TEST_PG_PORT");
    opts = "-p " + port + " -k " + dir + "/sock -c listen_addresses=127.0.0.1 -c "
                                          "max_connections=200";
  }
  start_cmd_ = pg_ctl_ + " -D '" + data_ + "' -l '" + dir + "/postgres.log' -w -t 60 -o \"" +
               opts + "\" start >/dev/null 2>&1";
}

pg_outage::~pg_outage() {
  if (stopped_ && !start())
    std::fprintf(stderr, "FAULT TESTS: could not restart PostgreSQL: %s\n", start_cmd_.c_str());
}

bool pg_outage::stop() {
  auto cmd = pg_ctl_ + " -D '" + data_ + "' -m fast -w -t 60 stop >/dev/null 2>&1";
  stopped_ = true; // even on a partial failure: the destructor tries to start it
  return std::system(cmd.c_str()) == 0;
}

bool pg_outage::start() {
  if (!stopped_)
    return true;
  if (std::system(start_cmd_.c_str()) != 0) {
    // Maybe it is running after all (status 0 means running).
    auto status = pg_ctl_ + " -D '" + data_ + "' status >/dev/null 2>&1";
    if (std::system(status.c_str()) != 0)
      return false;
  }
  stopped_ = false;
  return true;
}

// ---------- processes and sockets ----------

kill_outcome kill_under_load(todo::test::server_process& server, int clients,
                             const std::function<void(int, std::atomic<bool>&)>& drive,
                             int load_ms) {
  kill_outcome out;
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int i = 0; i < clients; ++i)
    ts.emplace_back([&drive, &stop, i] { drive(i, stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(load_ms));
  out.pid = server.pid();
  out.rc = server.stop(SIGKILL); // mid-load: the clients are still sending
  out.dead_at = clock::now();
  std::thread guard{[&] {
    for (int i = 0; i < 100 && !stop.load(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop = true;
  }};
  for (auto& t : ts)
    t.join();
  out.clients_stopped = !stop.exchange(true);
  guard.join();
  return out;
}

long rss_kib(int pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

bool process_alive(int pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string stat;
  if (!std::getline(in, stat))
    return false;
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size())
    return false;
  char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

long raise_nofile(long want) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && static_cast<long>(rl.rlim_cur) < want) {
    rlim_t target = static_cast<rlim_t>(want);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < target)
      target = rl.rlim_max;
    rl.rlim_cur = target;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? 1L << 30 : static_cast<long>(rl.rlim_cur);
}

int open_nonblocking(unsigned short port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
      errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

raw_result raw_talk(unsigned short port, const std::string& bytes, int timeout_ms,
                    std::size_t piece) {
  raw_result out;
  auto start = clock::now();
  auto deadline = start + std::chrono::milliseconds(timeout_ms);
  int fd = open_nonblocking(port);
  if (fd < 0) {
    out.closed = true;
    return out;
  }
  auto left_ms = [&] {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now())
                .count();
    return static_cast<int>(std::max<long long>(0, ms));
  };
  // Wait for the connection.
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, left_ms()) <= 0) {
    ::close(fd);
    out.ms = ms_since(start);
    return out;
  }
  char buf[16384];
  auto read_available = [&]() {
    // Reads what is there without blocking; true when the peer closed.
    for (;;) {
      auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        out.bytes.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0)
        return true;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return false;
      if (errno == EINTR)
        continue;
      out.reset = errno == ECONNRESET;
      return true;
    }
  };
  std::size_t sent = 0;
  bool closed = false;
  while (sent < bytes.size() && !closed && clock::now() < deadline) {
    pollfd q{fd, POLLOUT | POLLIN, 0};
    if (::poll(&q, 1, std::min(left_ms(), 50)) < 0)
      break;
    if (q.revents & (POLLIN | POLLHUP | POLLERR)) {
      closed = read_available();
      if (!out.bytes.empty() || closed)
        break; // the server answered (or closed) before taking everything: stop writing
    }
    if (q.revents & POLLOUT) {
      auto n = ::send(fd, bytes.data() + sent, std::min(piece, bytes.size() - sent),
                      MSG_NOSIGNAL);
      if (n > 0)
        sent += static_cast<std::size_t>(n);
      else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        closed = read_available() || true;
        break;
      }
    }
  }
  while (!closed && clock::now() < deadline) {
    pollfd q{fd, POLLIN, 0};
    int r = ::poll(&q, 1, left_ms());
    if (r <= 0)
      break;
    closed = read_available();
  }
  out.closed = closed;
  out.ms = ms_since(start);
  ::close(fd);
  return out;
}

unsigned raw_status(const std::string& raw) {
  if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12)
    return 0;
  return static_cast<unsigned>(std::strtoul(raw.substr(9, 3).c_str(), nullptr, 10));
}

std::string raw_header(const std::string& raw, const std::string& name) {
  auto end = raw.find("\r\n\r\n");
  auto head = raw.substr(0, end);
  std::string lower_name = name;
  for (auto& c : lower_name)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::size_t pos = head.find("\r\n");
  while (pos != std::string::npos) {
    auto next = head.find("\r\n", pos + 2);
    auto line = head.substr(pos + 2, next == std::string::npos ? std::string::npos
                                                                 : next - pos - 2);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      auto key = line.substr(0, colon);
      for (auto& c : key)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (key == lower_name) {
        auto v = line.substr(colon + 1);
        auto b = v.find_first_not_of(" \t");
        return b == std::string::npos ? std::string{} : v.substr(b);
      }
    }
    pos = next;
  }
  return {};
}

std::string raw_body(const std::string& raw) {
  auto end = raw.find("\r\n\r\n");
  return end == std::string::npos ? std::string{} : raw.substr(end + 4);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto idx = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

} // namespace todo::faults
