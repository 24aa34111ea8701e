// Start-up of the real binary with a wrong DATABASE_URL (API.md §8): exit code 2 and one line
// naming DATABASE_URL and why, never the password; a server that is not up is waited for,
// each retry saying why, no longer than DB_CONNECT_WAIT_MS.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <map>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/http/http_client.hpp"

using namespace std::chrono_literals;

namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string l; std::getline(in, l);)
    out.push_back(l);
  return out;
}

std::map<std::string, std::string> base_env(const std::string& url) {
  return {{"DATABASE_URL", url},
          {"BETTER_AUTH_SECRET", "startup-test-secret-0123456789abcdef"},
          {"PORT", "1"}, // never reached: start-up stops before listening
          {"LOG_LEVEL", "warn"},
          {"PATH", std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin"}};
}

std::string test_port() {
  const char* p = std::getenv("TEST_PG_PORT");
  REQUIRE(p);
  return p;
}

} // namespace

TEST_CASE("a DATABASE_URL libpq cannot parse stops start-up with exit 2 and one line") {
  auto r = todo::test::run_until_exit(base_env("garbage"));
  CHECK(r.exit_code == 2);
  auto ls = lines(r.err);
  REQUIRE(ls.size() == 1);
  CHECK(ls[0].rfind("DATABASE_URL: ", 0) == 0);
  CHECK(ls[0].find("missing \"=\"") != std::string::npos);
  CHECK(r.took < 5s);
}

TEST_CASE("an unknown sslmode, database or role stops start-up at once, naming DATABASE_URL") {
  auto host = "@127.0.0.1:" + test_port();
  for (const auto& [url, expect] : std::map<std::string, std::string>{
         {"postgresql://postgres:Top-Secret-1" + host + "/todo?sslmode=verify-everything",
          "sslmode"},
         {"postgresql://postgres:Top-Secret-1" + host + "/no_such_db_y", "does not exist"},
         {"postgresql://no_such_role_y:Top-Secret-1" + host + "/todo", "no_such_role_y"}}) {
    INFO(url);
    // The default DB_CONNECT_WAIT_MS (30 s) applies: a mistake must not wait for it.
    auto r = todo::test::run_until_exit(base_env(url));
    CHECK(r.exit_code == 2);
    auto ls = lines(r.err);
    REQUIRE(ls.size() == 1);
    CHECK(ls[0].rfind("DATABASE_URL: ", 0) == 0);
    CHECK(ls[0].find(expect) != std::string::npos);
    CHECK(r.err.find("Top-Secret-1") == std::string::npos);
    CHECK(r.took < 5s);
  }
}

TEST_CASE("a database that is not up is retried, saying why, for DB_CONNECT_WAIT_MS, then exit 2") {
  // A port on which nothing listens (the throwaway cluster's port + 1 is not it either way:
  // the test only needs "Connection refused").
  auto env = base_env("postgresql://postgres:Top-Secret-2@127.0.0.1:1/todo");
  env["DB_CONNECT_WAIT_MS"] = "1500";
  auto r = todo::test::run_until_exit(env);
  CHECK(r.exit_code == 2);
  auto ls = lines(r.err);
  REQUIRE(ls.size() >= 3); // at least two retries, then the final line
  for (size_t i = 0; i + 1 < ls.size(); ++i) {
    CHECK(ls[i].find("database not reachable yet") != std::string::npos);
    CHECK(ls[i].find("Connection refused") != std::string::npos);
  }
  CHECK(ls.back().rfind("DATABASE_URL: not reachable after ", 0) == 0);
  CHECK(ls.back().find("DB_CONNECT_WAIT_MS=1500") != std::string::npos);
  CHECK(r.err.find("Top-Secret-2") == std::string::npos);
  CHECK(r.took >= 1000ms);
  CHECK(r.took < 8s);
}

TEST_CASE("DB_CONNECT_WAIT_MS is validated like every other setting") {
  auto env = base_env("postgresql://postgres@127.0.0.1:1/todo");
  env["DB_CONNECT_WAIT_MS"] = "soon";
  auto r = todo::test::run_until_exit(env);
  CHECK(r.exit_code == 2);
  auto ls = lines(r.err);
  REQUIRE(ls.size() == 1);
  CHECK(ls[0].rfind("DB_CONNECT_WAIT_MS: ", 0) == 0);
}

TEST_CASE("a port another process holds stops start-up with exit 1 and one line saying what to do") {
  // Something else already listens on the port (here: this test, on a port the kernel chose).
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  auto port = std::to_string(ntohs(addr.sin_port));
  auto env = base_env("postgresql://postgres:Top-Secret-3@127.0.0.1:" + test_port() + "/todo");
  env["HOST"] = "127.0.0.1";
  env["PORT"] = port;
  auto r = todo::test::run_until_exit(env);
  ::close(fd);
  CHECK(r.exit_code == 1);
  auto ls = lines(r.err);
  REQUIRE(ls.size() == 1);
  CHECK(ls[0].find("cannot listen on 127.0.0.1:" + port + ": Address already in use") !=
        std::string::npos);
  CHECK(ls[0].find("set PORT") != std::string::npos);
  CHECK(ls[0].find(".hpp") == std::string::npos); // no library source location
  CHECK(r.err.find("Top-Secret-3") == std::string::npos);
}
