#include "tests/http/http_client.hpp"

#include <atomic>
#include <climits>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "config/text.hpp"
#include "actors/tokens/jwt.hpp"

namespace todo::test {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

/// With TODO_RESPONSE_LOG set, appends each exchange as one JSON line to that file, for the
/// test that validates every response the black-box tests received against the OpenAPI
/// document (tests/contract/validate_responses.mjs).
void record(const std::string& method, const std::string& target, const header_list& headers,
            const http_response& res) {
  static const char* path = std::getenv("TODO_RESPONSE_LOG");
  if (!path || !*path)
    return;
  boost::json::object line;
  line["method"] = method;
  line["target"] = target;
  boost::json::object sent;
  for (const auto& [k, v] : headers)
    sent[todo::text::lower(k)] = v;
  line["request_headers"] = std::move(sent);
  line["status"] = res.status;
  boost::json::object got;
  for (const auto& [k, v] : res.headers)
    got[k] = v;
  line["headers"] = std::move(got);
  line["body"] = res.body;
  static std::mutex m;
  static bool first = true; // each run of the tests starts the file afresh
  std::lock_guard<std::mutex> lock{m};
  std::ofstream out{path, first ? std::ios::trunc : std::ios::app};
  first = false;
  out << boost::json::serialize(line) << '\n';
}

} // namespace

struct http_client::impl {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  unsigned short port;
  bool connected = false;
  void connect() {
    stream.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), port});
    connected = true;
  }
};

http_client::http_client(unsigned short port) : impl_(std::make_unique<impl>()) {
  impl_->port = port;
}

http_client::~http_client() {
  beast::error_code ec;
  impl_->stream.socket().close(ec);
}

http_response http_client::request(const std::string& method, const std::string& target,
                                   const header_list& headers, const std::string& body) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!impl_->connected)
      impl_->connect();
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    if (req.method() == bhttp::verb::unknown)
      req.method_string(method);
    req.set(bhttp::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers)
      req.insert(k, v); // a name given twice is sent twice
    req.body() = body;
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
      req.prepare_payload();
    impl_->stream.expires_after(std::chrono::seconds(30));
    beast::error_code ec;
    bhttp::write(impl_->stream, req, ec);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    parser.skip(method == "HEAD"); // a HEAD answer's Content-Length announces no body
    if (!ec)
      bhttp::read(impl_->stream, impl_->buffer, parser, ec);
    if (ec) {
      // The server may have closed an idle keep-alive connection: reconnect once.
      impl_->stream.socket().close(ec);
      impl_->buffer.clear();
      impl_->connected = false;
      if (attempt == 0)
        continue;
      throw std::runtime_error("request failed: " + ec.message());
    }
    auto res = parser.release();
    http_response out;
    out.status = res.result_int();
    for (const auto& f : res)
      out.headers[todo::text::lower(f.name_string())] = std::string{f.value()};
    out.body = std::move(res.body());
    record(method, target, headers, out);
    if (!res.keep_alive()) {
      impl_->stream.socket().close(ec);
      impl_->buffer.clear();
      impl_->connected = false;
    }
    return out;
  }
  throw std::runtime_error("unreachable");
}

std::string raw_exchange(unsigned short port, const std::string& bytes, int timeout_ms) {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  stream.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), port});
  stream.expires_after(std::chrono::milliseconds(timeout_ms));
  beast::error_code ec;
  net::write(stream.socket(), net::buffer(bytes), ec);
  std::string out;
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    stream.expires_at(deadline);
    auto n = stream.read_some(net::buffer(buf), ec);
    out.append(buf, n);
    if (ec)
      break;
  }
  return out;
}

struct raw_connection::impl {
  net::io_context ioc;
  tcp::socket socket{ioc};
  std::string got;
  bool closed = false;
};

raw_connection::raw_connection(unsigned short port) : impl_(std::make_unique<impl>()) {
  impl_->socket.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), port});
}

raw_connection::~raw_connection() {
  beast::error_code ec;
  impl_->socket.close(ec);
}

void raw_connection::send(const std::string& bytes) {
  beast::error_code ec;
  net::write(impl_->socket, net::buffer(bytes), ec);
}

const std::string& raw_connection::read_until(const std::string& marker, int timeout_ms) {
  // poll() for the timeout: a timed-out read must leave the connection open (a
  // beast::tcp_stream closes it).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  while (!impl_->closed && impl_->got.find(marker) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    if (left <= 0)
      break;
    pollfd p{impl_->socket.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0)
      continue;
    beast::error_code ec;
    auto n = impl_->socket.read_some(net::buffer(buf), ec);
    impl_->got.append(buf, n);
    if (ec)
      impl_->closed = true;
  }
  return impl_->got;
}

const std::string& raw_connection::read_all(int timeout_ms) {
  return read_until(std::string(1, '\0') + "never sent", timeout_ms);
}

bool raw_connection::closed() const {
  return impl_->closed;
}

namespace {

unsigned short pick_port() {
  net::io_context ioc;
  tcp::acceptor a{ioc, tcp::endpoint{net::ip::make_address("127.0.0.1"), 0}};
  return a.local_endpoint().port();
}

bool healthy(unsigned short port) {
  try {
    http_client c{port};
    return c.request("GET", "/health").status == 200;
  } catch (...) {
    return false;
  }
}

bool tls_listening(unsigned short port) {
  try {
    return raw_exchange(port, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n", 1000)
             .find("speaks HTTPS") != std::string::npos;
  } catch (...) {
    return false;
  }
}

} // namespace

int spawn_api(const std::map<std::string, std::string>& env, int stderr_fd) {
  const char* given = std::getenv("TODO_API_BINARY");
  if (!given)
    throw std::runtime_error("TODO_API_BINARY must be set (scripts/test)");
  // The child runs in "/": a relative path must be resolved here, before the chdir.
  char resolved[PATH_MAX];
  if (!::realpath(given, resolved))
    throw std::runtime_error(std::string{"TODO_API_BINARY not found: "} + given);
  const char* bin = resolved;
  std::vector<std::string> strings;
  for (const auto& [k, v] : env)
    strings.push_back(k + "=" + v);
  int pid = ::fork();
  if (pid == 0) {
    if (stderr_fd >= 0) {
      ::dup2(stderr_fd, 2);
      ::close(stderr_fd);
    }
    std::vector<char*> envp;
    for (auto& s : strings)
      envp.push_back(s.data());
    envp.push_back(nullptr);
    // Run in a directory without a .env, so only the settings above apply.
    if (::chdir("/") != 0)
      _exit(127);
    char* argv[] = {const_cast<char*>(bin), nullptr};
    ::execve(bin, argv, envp.data());
    _exit(127);
  }
  return pid;
}

finished run_until_exit(const std::map<std::string, std::string>& env,
                        std::chrono::milliseconds limit) {
  int fds[2];
  if (::pipe(fds) != 0)
    throw std::runtime_error("pipe failed");
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = spawn_api(env, fds[1]);
  ::close(fds[1]);
  finished out;
  char buf[4096];
  for (;;) {
    auto left = limit - (std::chrono::steady_clock::now() - t0);
    if (left <= std::chrono::milliseconds(0))
      break;
    pollfd p{fds[0], POLLIN, 0};
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count());
    if (::poll(&p, 1, ms) <= 0)
      break;
    auto n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0)
      break; // the child closed stderr: it exited
    out.err.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == 0) {
    // Still running after the limit (or it closed stderr early): give it a moment, then kill.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (::waitpid(pid, &status, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      out.took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
      return out;
    }
  }
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - t0);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

server_process::server_process(std::map<std::string, std::string> extra_env,
                               std::string stderr_path)
  : env_(std::move(extra_env)), stderr_path_(std::move(stderr_path)) {
}

server_process::~server_process() {
  if (pid_ > 0)
    stop(SIGKILL);
}

std::string test_database_url() {
  const char* url = std::getenv("TEST_DATABASE_URL");
  if (!url)
    throw std::runtime_error("TEST_DATABASE_URL must be set (scripts/test starts the database)");
  return url;
}

void server_process::start() {
  const char* bin = std::getenv("TODO_API_BINARY");
  const char* db = std::getenv("TEST_DATABASE_URL");
  if (!bin || !db)
    throw std::runtime_error("TODO_API_BINARY and TEST_DATABASE_URL must be set (scripts/test)");
  if (port_ == 0)
    port_ = env_.count("PORT") ? static_cast<unsigned short>(std::stoi(env_["PORT"]))
                               : pick_port();
  std::map<std::string, std::string> env{{"PORT", std::to_string(port_)},
                                         {"HOST", "127.0.0.1"},
                                         {"DATABASE_URL", db},
                                         {"BETTER_AUTH_SECRET", test_secret()},
                                         {"LOG_LEVEL", "warn"},
                                         {"THREADS", "2"}};
  for (const auto& [k, v] : env_)
    env[k] = v;
  if (const char* path = std::getenv("PATH"))
    env["PATH"] = path;
  int fd = -1;
  if (!stderr_path_.empty()) {
    fd = ::open(stderr_path_.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
      throw std::runtime_error("cannot open " + stderr_path_);
  }
  pid_ = spawn_api(env, fd);
  if (fd >= 0)
    ::close(fd);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("todo-api exited during start-up");
    }
    // Over TLS the listener is up once a plain request gets its "use https://" answer.
    if (env_.count("TLS_CERT_FILE") ? tls_listening(port_) : healthy(port_))
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("todo-api did not become healthy in 30 s");
}

int server_process::stop(int sig) {
  if (pid_ <= 0)
    return 0;
  ::kill(pid_, sig);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return -WTERMSIG(status);
}

const std::string& test_secret() {
  static const std::string secret = "test-secret-0123456789-abcdefghijklmnop";
  return secret;
}

std::string token_for(const std::string& sub) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  return jwt::sign_hs256(test_secret(), "{\"sub\":\"" + sub + "\",\"exp\":" +
                                          std::to_string(now + 3600) + "}");
}

std::string fresh_user(const std::string& hint) {
  static std::atomic<int> n{0};
  static const auto run = std::to_string(::getpid()) + "-" +
                          std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
  return hint + "-" + run + "-" + std::to_string(++n);
}

server_process& shared_server() {
  static auto s = [] {
    auto p = std::make_unique<server_process>();
    p->start();
    return p;
  }();
  return *s;
}

} // namespace todo::test
