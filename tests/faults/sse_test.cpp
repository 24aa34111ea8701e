// Live-update streams under pressure (issue 14): a reader that stops reading is dropped and
// memory stays flat; 1,000 idle streams are cheap; SIGTERM ends open streams cleanly.

#include <catch2/catch.hpp>

#include <csignal>
#include <iostream>
#include <thread>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/faults/fault_support.hpp"

using namespace todo::faults;
using todo::test::fresh_user;
using todo::test::server_process;
using todo::test::token_for;

namespace {

// One stream on a raw blocking socket: the request is sent, the head read; the rest is read
// only when asked.
struct raw_stream {
  int fd = -1;
  std::string got;
  bool eof = false;

  raw_stream(unsigned short port, const std::string& user, int rcvbuf = 0) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    if (rcvbuf > 0)
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    std::string req = "GET /api/tasks/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
                      token_for(user) + "\r\n\r\n";
    REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  }
  ~raw_stream() {
    if (fd >= 0)
      ::close(fd);
  }
  raw_stream(const raw_stream&) = delete;
  raw_stream& operator=(const raw_stream&) = delete;

  // Reads for up to `ms` (until EOF), or until `marker` has arrived; read_for(0) reads all
  // that has already arrived, without waiting.
  void read_for(int ms, const std::string& marker = std::string(1, '\0')) {
    auto deadline = clock::now() + std::chrono::milliseconds(ms);
    char buf[16384];
    while (!eof && got.find(marker) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now())
                    .count();
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left > 0 ? left : 0)) <= 0) {
        if (left <= 0)
          break;
        continue;
      }
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        eof = true;
        break;
      }
      got.append(buf, static_cast<size_t>(n));
    }
  }
  unsigned status() const { return raw_status(got); }
  size_t count(const std::string& what) const {
    size_t n = 0;
    for (auto at = got.find(what); at != std::string::npos; at = got.find(what, at + 1))
      ++n;
    return n;
  }
};

// A metric's value from /metrics (`name` with its labels, exactly as printed), or -1.
double metric(unsigned short port, const std::string& name) {
  conn c{port};
  auto r = c.exchange("GET", "/metrics");
  auto at = r.body.find("\n" + name + " ");
  if (at == std::string::npos)
    return -1;
  return std::stod(r.body.substr(at + name.size() + 2));
}

} // namespace

TEST_CASE("a stream whose reader stops reading is dropped; the others get every event and "
          "memory stays flat",
          "[sse_slow]") {
  server_process server{{{"SSE_QUEUE_KB", "32"}, {"LOG_LEVEL", "warn"}}};
  server.start();
  auto user = fresh_user("sse-slow");
  raw_stream slow{server.port(), user, 4096};
  slow.read_for(2000, "\r\n\r\n");
  REQUIRE(slow.status() == 200);
  raw_stream fast{server.port(), user};
  fast.read_for(2000, "\r\n\r\n");
  REQUIRE(fast.status() == 200);
  auto rss_before = rss_kib(server.pid());

  conn c{server.port()};
  auto hdr = json_auth(user);
  const std::string description(1000, 'x');
  int created = 0;
  double dropped = 0;
  for (; created < 4000 && dropped < 1; ++created) {
    auto r = c.exchange("POST", "/api/tasks", hdr,
                        "{\"title\":\"t" + std::to_string(created) +
                          "\",\"description\":\"" + description + "\"}");
    REQUIRE(r.status == 201);
    fast.read_for(0);
    if (created % 50 == 49)
      dropped = metric(server.port(), "todo_sse_disconnects_total{reason=\"slow_reader\"}");
  }
  // A few more after the drop: the fast reader keeps receiving.
  for (int i = 0; i < 20; ++i, ++created)
    REQUIRE(c.exchange("POST", "/api/tasks", hdr, "{\"title\":\"after\"}").status == 201);
  fast.read_for(3000, "\"title\":\"after\"");
  for (int i = 0; i < 50 && fast.count("event: task.created") < static_cast<size_t>(created); ++i)
    fast.read_for(100);
  auto rss_after = rss_kib(server.pid());
  std::cout << "[sse_slow] slow reader dropped after " << created - 20 << " creates of ~1.2 KB "
            << "events; fast reader got " << fast.count("event: task.created") << " of "
            << created << "; server RSS " << rss_before / 1024 << " -> " << rss_after / 1024
            << " MiB" << std::endl;
  CHECK(dropped == 1);
  CHECK(fast.count("event: task.created") == static_cast<size_t>(created));
  // The slow connection is closed by the server: reading it now ends in EOF.
  slow.read_for(10000, std::string(1, '\0'));
  CHECK(slow.eof);
  CHECK(rss_after - rss_before < 16 * 1024); // no per-event growth held for the slow reader
  CHECK(metric(server.port(), "todo_sse_streams") == 1);
}

TEST_CASE("1,000 idle streams cost under 20 MB of server memory", "[sse_idle]") {
  REQUIRE(raise_nofile(4096) >= 2100);
  server_process server{{{"LOG_LEVEL", "warn"}}};
  server.start();
  auto before = rss_kib(server.pid());
  std::vector<std::string> users;
  for (int i = 0; i < 100; ++i)
    users.push_back(fresh_user("sse-idle"));
  std::vector<std::unique_ptr<raw_stream>> streams;
  for (int i = 0; i < 1000; ++i) {
    streams.push_back(std::make_unique<raw_stream>(server.port(), users[i % users.size()]));
    streams.back()->read_for(2000, "retry: 3000");
    REQUIRE(streams.back()->status() == 200);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto after = rss_kib(server.pid());
  CHECK(metric(server.port(), "todo_sse_streams") == 1000);
  // They are live: one write of the first user reaches its ten streams.
  conn c{server.port()};
  REQUIRE(c.exchange("POST", "/api/tasks", json_auth(users[0]), R"({"title":"ping"})").status ==
          201);
  int reached = 0;
  for (size_t i = 0; i < streams.size(); i += users.size()) {
    streams[i]->read_for(3000, "\"title\":\"ping\"");
    reached += streams[i]->count("\"title\":\"ping\"") == 1;
  }
  std::cout << "[sse_idle] 1000 open streams: server RSS " << before / 1024 << " -> "
            << after / 1024 << " MiB (" << (after - before) << " KiB, "
            << (after - before) * 1024 / 1000 << " bytes per stream)" << std::endl;
  CHECK(reached == 10);
  CHECK(after - before < 20 * 1024);
}

TEST_CASE("SIGTERM with open streams ends each cleanly and exits 0 within the grace period",
          "[sse_shutdown]") {
  server_process server{{{"SHUTDOWN_GRACE_MS", "5000"}, {"LOG_LEVEL", "warn"}}};
  server.start();
  std::vector<std::unique_ptr<raw_stream>> streams;
  for (int i = 0; i < 50; ++i) {
    streams.push_back(std::make_unique<raw_stream>(server.port(), fresh_user("sse-term")));
    streams.back()->read_for(2000, "retry: 3000");
    REQUIRE(streams.back()->status() == 200);
  }
  auto t0 = clock::now();
  std::thread stopper{[&] { CHECK(server.stop(SIGTERM) == 0); }};
  int clean = 0;
  for (auto& s : streams) {
    s->read_for(6000, std::string(1, '\0'));
    clean += s->eof && s->got.size() >= 5 && s->got.compare(s->got.size() - 5, 5, "0\r\n\r\n") == 0;
  }
  stopper.join();
  auto ms = ms_since(t0);
  std::cout << "[sse_shutdown] 50 open streams: exit after " << ms << " ms, " << clean
            << " ended with the terminating chunk" << std::endl;
  CHECK(clean == 50);
  CHECK(ms < 5000);
}
