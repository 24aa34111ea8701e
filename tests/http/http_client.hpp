#pragma once
// A small blocking HTTP/1.1 client and a handle on the real server process, for black-box
// tests. The header is Beast-free so that test files compile fast.

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace todo::test {

struct http_response {
  unsigned status = 0;
  std::map<std::string, std::string> headers; // names lowercased
  std::string body;
  bool has(const std::string& name) const { return headers.count(name) > 0; }
  std::string header(const std::string& name) const {
    auto i = headers.find(name);
    return i == headers.end() ? std::string{} : i->second;
  }
};

using header_list = std::vector<std::pair<std::string, std::string>>;

/// One keep-alive connection to 127.0.0.1:port.
class http_client {
public:
  explicit http_client(unsigned short port);
  ~http_client();
  http_response request(const std::string& method, const std::string& target,
                        const header_list& headers = {}, const std::string& body = {});

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Sends raw bytes on a fresh connection and returns all bytes read until the server closes
/// the connection or `timeout_ms` passes.
std::string raw_exchange(unsigned short port, const std::string& bytes, int timeout_ms = 3000);

/// One raw TCP connection for conversations in steps (send, read, send again): what a client
/// that waits for `100 Continue` does.
class raw_connection {
public:
  explicit raw_connection(unsigned short port);
  ~raw_connection();
  void send(const std::string& bytes);
  /// Reads until everything read so far holds `marker` (or the server closes, or `timeout_ms`
  /// passes); returns everything read so far.
  const std::string& read_until(const std::string& marker, int timeout_ms);
  /// Reads until the server closes or `timeout_ms` passes; returns everything read so far.
  const std::string& read_all(int timeout_ms);
  /// Returns whether the server has closed the connection.
  bool closed() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Starts TODO_API_BINARY with exactly `env`, in `/` (no .env there); its stderr goes to
/// `stderr_fd` when that is not -1. Returns the child's pid.
int spawn_api(const std::map<std::string, std::string>& env, int stderr_fd = -1);

/// How a run of the binary that was expected to stop by itself ended.
struct finished {
  int exit_code = -1; // -1: did not exit in time (killed)
  std::string err;    // everything it wrote to stderr
  std::chrono::milliseconds took{};
};

/// Runs TODO_API_BINARY with exactly `env` (spawn_api) and waits at most `limit` for it to
/// exit (then kills it); collects its stderr.
finished run_until_exit(const std::map<std::string, std::string>& env,
                        std::chrono::milliseconds limit = std::chrono::seconds(20));

/// The real todo-api binary, started on a free port against TEST_DATABASE_URL.
class server_process {
public:
  /// Its stderr goes to `stderr_path` when that is set (created or emptied), else is inherited.
  explicit server_process(std::map<std::string, std::string> extra_env = {},
                          std::string stderr_path = {});
  ~server_process();
  /// Starts the binary and waits until /health answers.
  void start();
  /// Sends `sig` and waits for the process; returns its exit status (or -signal).
  int stop(int sig);
  unsigned short port() const { return port_; }
  int pid() const { return pid_; }

private:
  std::map<std::string, std::string> env_;
  std::string stderr_path_;
  unsigned short port_ = 0;
  int pid_ = -1;
};

/// Returns TEST_DATABASE_URL, the throwaway database scripts/test started (fails the test
/// when it is not set).
std::string test_database_url();

/// Returns the shared test secret for HS256 tokens.
const std::string& test_secret();

/// Returns a token for `sub` signed with the test secret, valid for an hour.
std::string token_for(const std::string& sub);

/// Returns a user id unique to this test run.
std::string fresh_user(const std::string& hint = "u");

/// Returns a server shared by all tests of this binary (started on first use).
server_process& shared_server();

} // namespace todo::test
