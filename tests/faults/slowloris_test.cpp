// Slow and idle clients: a flood of connections sending a byte per second does not slow
// normal clients down and is cut off at READ_TIMEOUT_MS; idle keep-alive connections are
// closed after IDLE_TIMEOUT_MS.

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <iostream>
#include <thread>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/faults/fault_support.hpp"

using namespace todo::faults;
using todo::test::fresh_user;
using todo::test::server_process;

namespace {

struct slow_conn {
  int fd = -1;
  bool connected = false;
  bool closed = false;   // by the server
  bool reset = false;
  std::size_t sent = 0;  // bytes of the partial request sent so far
  clock::time_point first_byte{};
  double closed_after_ms = -1; // from the first byte
  std::string got;
};

// Waits until every fd is connected (POLLOUT) or `timeout_ms` passes.
void wait_connected(std::vector<slow_conn>& cs, int timeout_ms) {
  auto start = clock::now();
  while (ms_since(start) < timeout_ms) {
    std::vector<pollfd> ps;
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < cs.size(); ++i)
      if (cs[i].fd >= 0 && !cs[i].connected) {
        ps.push_back(pollfd{cs[i].fd, POLLOUT, 0});
        idx.push_back(i);
      }
    if (ps.empty())
      return;
    ::poll(ps.data(), ps.size(), 50);
    for (std::size_t k = 0; k < ps.size(); ++k)
      if (ps[k].revents & POLLOUT) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(ps[k].fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0)
          cs[idx[k]].connected = true;
      }
  }
}

// Reads what is available; true when the peer closed.
bool drain(slow_conn& c) {
  char buf[4096];
  for (;;) {
    auto n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      c.got.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0)
      return true;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return false;
    c.reset = true;
    return true;
  }
}

// Waits for `fd` to be closed by the peer; returns the ms it took, or -1 after `timeout_ms`.
double wait_closed(int fd, int timeout_ms, std::string* got = nullptr) {
  auto start = clock::now();
  char buf[4096];
  while (ms_since(start) < timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0)
      continue;
    auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      if (got)
        got->append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
      return ms_since(start);
  }
  return -1;
}

bool send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  auto start = clock::now();
  while (off < s.size() && ms_since(start) < 3000) {
    auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n > 0)
      off += static_cast<std::size_t>(n);
    else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return false;
    else {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 20);
    }
  }
  return off == s.size();
}

} // namespace

TEST_CASE("hundreds of connections sending a byte per second neither slow normal clients down "
          "nor stay longer than the read timeout",
          "[slowloris]") {
  constexpr int slow_count = 300;
  constexpr int read_timeout_ms = 2000;
  REQUIRE(raise_nofile(slow_count + 512) >= slow_count + 256);
  server_process server{{{"READ_TIMEOUT_MS", std::to_string(read_timeout_ms)}}};
  server.start();
  const auto port = server.port();

  const std::string partial =
    "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(200, 'a');
  std::vector<slow_conn> slow(slow_count);
  for (auto& c : slow)
    c.fd = open_nonblocking(port);
  wait_connected(slow, 5000);
  long connected = 0;
  for (auto& c : slow)
    connected += c.connected;
  REQUIRE(connected == slow_count);
  for (auto& c : slow) {
    if (::send(c.fd, partial.data(), 1, MSG_NOSIGNAL) == 1) {
      c.sent = 1;
      c.first_byte = clock::now();
    }
  }

  // One thread drives all slow connections: a byte per second each, until the server cuts
  // them off (or 8 s pass).
  std::atomic<int> open_count{slow_count};
  std::thread driver{[&] {
    auto start = clock::now();
    while (open_count.load() > 0 && ms_since(start) < 8000) {
      std::vector<pollfd> ps;
      std::vector<std::size_t> idx;
      for (std::size_t i = 0; i < slow.size(); ++i)
        if (!slow[i].closed) {
          ps.push_back(pollfd{slow[i].fd, POLLIN, 0});
          idx.push_back(i);
        }
      ::poll(ps.data(), ps.size(), 50);
      for (std::size_t k = 0; k < ps.size(); ++k) {
        auto& c = slow[idx[k]];
        bool gone = false;
        if (ps[k].revents & (POLLIN | POLLHUP | POLLERR))
          gone = drain(c);
        if (!gone && c.sent < partial.size() &&
            ms_since(c.first_byte) >= 1000.0 * static_cast<double>(c.sent)) {
          auto n = ::send(c.fd, partial.data() + c.sent, 1, MSG_NOSIGNAL);
          if (n == 1)
            ++c.sent;
          else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            gone = true, c.reset = c.reset || errno == ECONNRESET || errno == EPIPE;
        }
        if (gone) {
          c.closed = true;
          c.closed_after_ms = ms_since(c.first_byte);
          --open_count;
        }
      }
    }
  }};

  // Meanwhile, normal clients.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::vector<double> health_ms, api_ms, fresh_ms;
  long wrong = 0, unanswered = 0;
  auto normal_start = clock::now();
  {
    conn keep{port};
    for (int i = 0; i < 200; ++i) {
      auto r = keep.exchange("GET", "/health", {}, {}, 5000);
      if (!r.answered) {
        ++unanswered;
        break;
      }
      wrong += r.status != 200;
      health_ms.push_back(r.ms);
    }
    for (int i = 0; i < 10; ++i) {
      auto t = clock::now();
      conn fresh{port};
      auto r = fresh.exchange("GET", "/health", {}, {}, 5000);
      unanswered += !r.answered;
      wrong += r.answered && r.status != 200;
      fresh_ms.push_back(ms_since(t)); // connect included
    }
    auto user = fresh_user("slowloris");
    for (int i = 0; i < 10; ++i) {
      auto made = keep.exchange("POST", "/api/tasks", json_auth(user),
                                "{\"title\":\"n" + std::to_string(i) + "\"}", 5000);
      auto list = keep.exchange("GET", "/api/tasks?limit=5", auth_only(user), {}, 5000);
      unanswered += !made.answered + !list.answered;
      wrong += (made.answered && made.status != 201) + (list.answered && list.status != 200);
      if (made.answered)
        api_ms.push_back(made.ms);
      if (list.answered)
        api_ms.push_back(list.ms);
    }
  }
  double normal_took = ms_since(normal_start);
  int still_open_after_normal = open_count.load();
  driver.join();

  std::vector<double> all = health_ms;
  all.insert(all.end(), api_ms.begin(), api_ms.end());
  all.insert(all.end(), fresh_ms.begin(), fresh_ms.end());
  std::vector<double> cut;
  long closed = 0, with_bytes = 0, resets = 0;
  for (auto& c : slow) {
    if (c.closed) {
      ++closed;
      cut.push_back(c.closed_after_ms);
    }
    with_bytes += !c.got.empty();
    resets += c.reset;
    ::close(c.fd);
  }
  std::cout << "[slowloris] " << slow_count << " slow connections (1 byte/s), READ_TIMEOUT_MS="
            << read_timeout_ms << "\n"
            << "  normal clients (" << normal_took << " ms, " << still_open_after_normal
            << " slow connections still open at the end): GET /health keep-alive n="
            << health_ms.size() << " p50=" << percentile(health_ms, 50)
            << " ms p99=" << percentile(health_ms, 99) << " ms max=" << percentile(health_ms, 100)
            << " ms; fresh connection + /health n=" << fresh_ms.size()
            << " p50=" << percentile(fresh_ms, 50) << " ms max=" << percentile(fresh_ms, 100)
            << " ms; /api n=" << api_ms.size() << " p50=" << percentile(api_ms, 50)
            << " ms max=" << percentile(api_ms, 100) << " ms\n"
            << "  slow connections closed by the server " << closed << "/" << slow_count
            << " after (from their first byte) min=" << percentile(cut, 0)
            << " ms p50=" << percentile(cut, 50) << " ms max=" << percentile(cut, 100)
            << " ms; " << with_bytes << " got a response, " << resets << " were reset"
            << std::endl;
  CHECK(unanswered == 0);
  CHECK(wrong == 0);
  CHECK(health_ms.size() == 200);
  CHECK(percentile(all, 100) < 500);
  CHECK(still_open_after_normal >= slow_count * 9 / 10); // the normal load met the flood
  CHECK(closed == slow_count);
  CHECK(percentile(cut, 0) >= read_timeout_ms - 500);
  CHECK(percentile(cut, 100) < 5000);
  conn after{port};
  CHECK(after.exchange("GET", "/health", {}, {}, 3000).status == 200);
  CHECK(process_alive(server.pid()));
}

TEST_CASE("an idle keep-alive connection is closed after the idle timeout, and a busy one is "
          "not",
          "[idle]") {
  constexpr int idle_ms = 1000;
  server_process server{{{"IDLE_TIMEOUT_MS", std::to_string(idle_ms)},
                         {"READ_TIMEOUT_MS", "10000"}}};
  server.start();
  const auto port = server.port();
  auto connect_blocking = [&] {
    int fd = open_nonblocking(port);
    REQUIRE(fd >= 0);
    pollfd p{fd, POLLOUT, 0};
    REQUIRE(::poll(&p, 1, 3000) == 1);
    return fd;
  };

  // After one answered request, the connection idles and is closed.
  int fd = connect_blocking();
  REQUIRE(send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got;
  auto start = clock::now();
  while (got.find("\r\n\r\n") == std::string::npos && ms_since(start) < 3000) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) == 1) {
      char buf[4096];
      auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0)
        break;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
  REQUIRE(raw_status(got) == 200);
  double after_request = wait_closed(fd, 5000);
  ::close(fd);

  // A connection that never sends anything is closed too.
  fd = connect_blocking();
  double silent = wait_closed(fd, 5000);
  ::close(fd);

  // A connection used every 400 ms for 3 s stays open (the idle timer restarts).
  conn busy{port};
  long busy_ok = 0;
  for (int i = 0; i < 8; ++i) {
    auto r = busy.exchange("GET", "/health", {}, {}, 3000);
    busy_ok += r.answered && r.status == 200;
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  std::cout << "[idle] IDLE_TIMEOUT_MS=" << idle_ms << ": keep-alive connection closed "
            << after_request << " ms after its answer; silent connection closed after " << silent
            << " ms; busy connection answered " << busy_ok << "/8 on one connection"
            << std::endl;
  CHECK(after_request >= idle_ms - 200);
  CHECK(after_request < idle_ms + 2000);
  CHECK(silent >= idle_ms - 200);
  CHECK(silent < idle_ms + 2000);
  CHECK(busy_ok == 8);
  CHECK(busy.is_open());
}
