#pragma once
// Helpers for the fault tests (issue 5): a client connection that never retries, raw
// sockets, direct SQL against the test database, control of the throwaway PostgreSQL, and
// process facts (/proc). Beast-free so that the scenario files compile fast.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/http/http_client.hpp"

namespace todo::faults {

using clock = std::chrono::steady_clock;
using todo::test::header_list;

/// Milliseconds elapsed since `t`.
double ms_since(clock::time_point t);

/// Milliseconds between two time points.
double ms_between(clock::time_point a, clock::time_point b);

/// The outcome of one request on a `conn`.
struct reply {
  bool answered = false; // a complete response was read
  unsigned status = 0;
  std::map<std::string, std::string> headers; // names lowercased
  std::string body;
  std::string error; // why there is no answer (connection closed, timeout, ...)
  double ms = 0;     // from the start of the write to the end of the response
  clock::time_point sent_at{};
  clock::time_point done_at{};
  std::string header(const std::string& name) const {
    auto i = headers.find(name);
    return i == headers.end() ? std::string{} : i->second;
  }
};

/// One request to send.
struct request_spec {
  std::string method;
  std::string target;
  header_list headers;
  std::string body;
};

/// One client connection to 127.0.0.1:port that never retries: a failed exchange is
/// reported (answered == false) and leaves the connection closed. Timeouts are enforced.
class conn {
public:
  /// Connects; throws std::runtime_error when the connection cannot be made.
  explicit conn(unsigned short port, int connect_timeout_ms = 3000);
  ~conn();
  conn(const conn&) = delete;
  conn& operator=(const conn&) = delete;

  reply exchange(const std::string& method, const std::string& target,
                 const header_list& headers = {}, const std::string& body = {},
                 int timeout_ms = 10000);
  /// Writes all requests in one go, then reads the answers in order. Once one answer is
  /// missing the remaining ones are reported unanswered too.
  std::vector<reply> pipeline(const std::vector<request_spec>& reqs, int timeout_ms = 10000);
  bool is_open() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Authorization (a fresh token for `user`) and Content-Type: application/json.
header_list json_auth(const std::string& user);
/// Authorization only.
header_list auth_only(const std::string& user);

/// Parses a JSON body and returns the int64 at key `key` (or -1).
std::int64_t json_int(const std::string& body, const char* key);
/// Parses a JSON body and returns the string at key `key` (or "").
std::string json_str(const std::string& body, const char* key);
/// Parses a JSON body and returns the bool at key `key`; `ok` false when absent.
bool json_bool(const std::string& body, const char* key, bool* ok = nullptr);
/// True when `body` is exactly {"detail": detail}.
bool is_detail(const std::string& body, const std::string& detail);

// ---------- the database, directly (TEST_DATABASE_URL) ----------

struct db_row {
  std::int64_t id = 0;
  std::string title;
  bool completed = false;
};
/// Every row of `user`, by id.
std::vector<db_row> db_rows(const std::string& user);
/// Number of rows of `user`.
long db_count(const std::string& user);

// ---------- the throwaway PostgreSQL (TEST_PG_DIR, TEST_PG_PORT) ----------

/// Stops PostgreSQL (fast mode) on construction of an outage via `stop()`, and always
/// starts it again with the options it was started with, at the latest in the destructor.
class pg_outage {
public:
  pg_outage();
  ~pg_outage();
  /// pg_ctl -m fast -w stop; returns true on success.
  bool stop();
  /// pg_ctl -w start with the original options; returns true on success. Idempotent.
  bool start();
  bool stopped() const { return stopped_; }

private:
  std::string pg_ctl_ = "";
  std::string data_;
  std::string start_cmd_;
  bool stopped_ = false;
};

/// True when PGDATA from TEST_PG_DIR is usable (the outage test needs it).
bool pg_control_available();

// ---------- processes and sockets ----------

/// VmRSS of `pid` in KiB (or -1).
long rss_kib(int pid);
/// True when `pid` is running (not exited, not a zombie).
bool process_alive(int pid);
/// Raises RLIMIT_NOFILE to at least `want` (bounded by the hard limit); returns the new soft limit.
long raise_nofile(long want);

/// The result of a raw exchange.
struct raw_result {
  std::string bytes;   // everything read
  bool closed = false; // the server closed the connection (EOF or reset)
  bool reset = false;  // ... with a reset
  double ms = 0;       // until close, or until the timeout
};
/// Connects, writes `bytes` (in pieces of `piece` bytes, stopping early when the server
/// answers or closes), then reads until the server closes or `timeout_ms` passes.
raw_result raw_talk(unsigned short port, const std::string& bytes, int timeout_ms = 3000,
                    std::size_t piece = 16384);
/// The status code of the first response in raw bytes ("HTTP/1.1 413 ..."), or 0.
unsigned raw_status(const std::string& raw);
/// A header of the first response in raw bytes (name case-insensitive), or "".
std::string raw_header(const std::string& raw, const std::string& name);
/// The body of the first response in raw bytes (everything after the blank line).
std::string raw_body(const std::string& raw);

/// Opens a TCP connection without blocking; returns the fd (connected or in progress), or -1.
int open_nonblocking(unsigned short port);

/// What `kill_under_load` saw.
struct kill_outcome {
  int pid = -1;                  // the killed process
  int rc = 0;                    // server.stop(SIGKILL): -SIGKILL when it was killed
  clock::time_point dead_at{};   // reaped: nothing sent later reached it
  bool clients_stopped = false;  // every client stopped by itself (on its first failed request)
};

/// Runs `clients` client loops, `drive(i, stop)` on a thread each, against `server`; after
/// `load_ms` kills the server with SIGKILL and waits for every loop to end. Loops stop by
/// themselves on their first failed request; `stop` is only set (after 10 s) to bound a run
/// where one never does.
kill_outcome kill_under_load(todo::test::server_process& server, int clients,
                             const std::function<void(int, std::atomic<bool>&)>& drive,
                             int load_ms = 2000);

/// Percentile (0..100) of a list of values (sorted copy).
double percentile(std::vector<double> v, double p);

} // namespace todo::faults
