// The background log writer: every line arrives whole and in its thread's order, nothing is
// lost when the writer stops, and a blocked sink never blocks the threads that log.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "config/log.hpp"

namespace {

/// Reads `fd` until EOF.
std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    REQUIRE(end != std::string::npos); // the last line is whole too
    out.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

struct restore_level {
  ~restore_level() { todo::log::configure(todo::log::level::info, false); } // the default
};

} // namespace

TEST_CASE("the log writer delivers every line whole and in each thread's order") {
  restore_level restore;
  todo::log::configure(todo::log::level::info, false);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  auto reader = std::async(std::launch::async, [fd = fds[0]] { return read_all(fd); });
  todo::log::start_writer(fds[1]);
  // Within one ring (256 KiB per thread) even if the writer never ran before stop_writer.
  constexpr int threads = 4, per_thread = 2000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([t] {
      for (int i = 0; i < per_thread; ++i)
        todo::log::request("GET", "/t" + std::to_string(t) + "/" + std::to_string(i), 200, 1234,
                           "rid");
    });
  for (auto& t : ts)
    t.join();
  todo::log::stop_writer(); // after this, everything must be in the pipe
  ::close(fds[1]);
  auto text = reader.get();
  ::close(fds[0]);
  CHECK(todo::log::dropped_lines() == 0);
  auto lines = lines_of(text);
  REQUIRE(lines.size() == threads * per_thread);
  std::map<int, int> next; // thread -> next expected i
  for (const auto& l : lines) {
    INFO(l);
    // "<time> info GET /t<t>/<i> 200 1.234ms rid=rid"
    auto at = l.find(" info GET /t");
    REQUIRE(at != std::string::npos);
    REQUIRE(l.size() > 20);
    CHECK(l[10] == 'T');
    CHECK(l[at - 1] == 'Z');
    int t = 0, i = 0;
    REQUIRE(std::sscanf(l.c_str() + at, " info GET /t%d/%d 200 1.234ms rid=rid", &t, &i) == 2);
    CHECK(l.substr(l.size() - 20) == " 200 1.234ms rid=rid");
    CHECK(i == next[t]);
    next[t] = i + 1;
  }
}

TEST_CASE("a blocked log sink drops lines with a count instead of blocking the caller") {
  restore_level restore;
  todo::log::configure(todo::log::level::info, false);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  // Fill the pipe so that the writer's next write blocks (nobody reads yet).
  ::fcntl(fds[1], F_SETFL, O_NONBLOCK);
  std::string fill(65536, 'x');
  while (::write(fds[1], fill.data(), fill.size()) > 0) {
  }
  ::fcntl(fds[1], F_SETFL, 0);
  todo::log::start_writer(fds[1]);
  // Far more than the buffers hold: with a blocking sink this would hang here.
  auto logging = std::async(std::launch::async, [] {
    for (int i = 0; i < 200000; ++i)
      todo::log::request("POST", "/api/tasks", 201, 2500, "some-request-id");
  });
  REQUIRE(logging.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  CHECK(todo::log::dropped_lines() > 0);
  // Unblock: the writer finishes and says how many lines it dropped.
  auto reader = std::async(std::launch::async, [fd = fds[0]] { return read_all(fd); });
  todo::log::stop_writer();
  ::close(fds[1]);
  auto text = reader.get();
  ::close(fds[0]);
  CHECK(text.find("line(s) dropped: stderr did not keep up") != std::string::npos);
  auto delivered = lines_of(text.substr(text.find_first_not_of('x'))).size();
  CHECK(delivered > 100); // what fit was still written
}

TEST_CASE("without the writer, a line is written at once") {
  restore_level restore;
  todo::log::configure(todo::log::level::info, true);
  char path[] = "/tmp/todo-log-test-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  int saved = ::dup(2);
  ::dup2(fd, 2);
  todo::log::request("GET", "/x", 404, 999, "r1");
  ::dup2(saved, 2);
  ::close(saved);
  ::lseek(fd, 0, SEEK_SET);
  auto text = read_all(fd);
  ::close(fd);
  ::unlink(path);
  CHECK(text.find(R"("method":"GET","path":"/x","status":404,"duration_ms":0.999,"request_id":"r1"})") !=
        std::string::npos);
}
