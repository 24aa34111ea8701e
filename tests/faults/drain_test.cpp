// Leaving a load balancer's rotation (issue 15): with DRAIN_DELAY_MS, SIGTERM first turns
// /ready to 503 while every request is still served (each connection closing after its
// response), and only then drains; and the access log's client address, believed from
// X-Forwarded-For only when the peer is a trusted proxy (TRUSTED_PROXIES).

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <sys/types.h>
#include <unistd.h>

#include "tests/faults/fault_support.hpp"

using namespace todo::faults;
using todo::test::fresh_user;
using todo::test::server_process;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool alive(int pid) {
  return ::kill(pid, 0) == 0;
}

} // namespace

TEST_CASE("SIGTERM with DRAIN_DELAY_MS: /ready is 503 while requests are still served, then "
          "the drain",
          "[drain]") {
  server_process server{{{"DRAIN_DELAY_MS", "1500"}}};
  server.start();
  const auto port = server.port();
  auto user = fresh_user("drain");
  conn kept{port};
  REQUIRE(kept.exchange("GET", "/ready").status == 200);
  auto made = kept.exchange("POST", "/api/tasks", json_auth(user), R"({"title":"before"})");
  REQUIRE(made.status == 201);
  REQUIRE(made.header("connection") != "close");

  auto t0 = clock::now();
  REQUIRE(::kill(server.pid(), SIGTERM) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  // A health check now takes the instance out ...
  conn probe{port};
  auto ready = probe.exchange("GET", "/ready");
  CHECK(ready.status == 503);
  CHECK(ready.body == R"({"detail":"shutting down"})");
  CHECK(ready.header("retry-after") == "1");
  CHECK(ready.header("connection") == "close");
  CHECK_FALSE(probe.is_open());
  CHECK(conn{port}.exchange("GET", "/health").status == 200); // liveness stays green

  // ... while requests on kept-alive and new connections are still answered, each connection
  // closing after its answer (a proxy's next request opens one to another instance).
  auto late = kept.exchange("POST", "/api/tasks", json_auth(user), R"({"title":"during"})");
  CHECK(late.status == 201);
  CHECK(late.header("connection") == "close");
  CHECK_FALSE(kept.is_open());
  auto id = json_int(late.body, "id");
  conn fresh{port};
  auto got = fresh.exchange("GET", "/api/tasks/" + std::to_string(id), auth_only(user));
  CHECK(got.status == 200);
  CHECK(got.header("connection") == "close");

  std::this_thread::sleep_for(std::chrono::milliseconds(1000) -
                              (clock::now() - t0));
  CHECK(alive(server.pid())); // still within the delay
  int rc = server.stop(0);    // no second signal: wait for it to leave by itself
  double ms = ms_since(t0);
  std::cout << "[drain] DRAIN_DELAY_MS=1500: exit code " << rc << " after " << ms << " ms"
            << std::endl;
  CHECK(rc == 0);
  CHECK(ms >= 1500);
  CHECK(ms < 1500 + 3000);
}

TEST_CASE("a second signal during DRAIN_DELAY_MS drains at once", "[drain]") {
  server_process server{{{"DRAIN_DELAY_MS", "20000"}}};
  server.start();
  REQUIRE(conn{server.port()}.exchange("GET", "/ready").status == 200);
  REQUIRE(::kill(server.pid(), SIGTERM) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(conn{server.port()}.exchange("GET", "/ready").status == 503);
  auto t0 = clock::now();
  int rc = server.stop(SIGINT);
  double ms = ms_since(t0);
  CHECK(rc == 0);
  CHECK(ms < 3000);
}

TEST_CASE("SIGINT ignores DRAIN_DELAY_MS (a person at a terminal)", "[drain]") {
  server_process server{{{"DRAIN_DELAY_MS", "20000"}}};
  server.start();
  auto t0 = clock::now();
  CHECK(server.stop(SIGINT) == 0);
  CHECK(ms_since(t0) < 3000);
}

TEST_CASE("the access log names the client: X-Forwarded-For counts only from a trusted proxy",
          "[client_address]") {
  auto path = "/tmp/todo-client-address-" + std::to_string(::getpid()) + ".log";
  auto run = [&](std::map<std::string, std::string> env) {
    env["LOG_LEVEL"] = "info";
    server_process server{env, path};
    server.start();
    conn c{server.port()};
    // (start() itself asks /health: these use other routes, each once.)
    auto hdr = auth_only(fresh_user("xff"));
    hdr.emplace_back("X-Forwarded-For", "198.51.100.9, 203.0.113.7");
    CHECK(c.exchange("GET", "/api/tasks", hdr).status == 200);
    CHECK(c.exchange("GET", "/ready",
                     {{"X-Forwarded-For", "198.51.100.9"},
                      {"X-Forwarded-For", "10.0.0.5, 127.0.0.1"}})
            .status == 200);
    CHECK(c.exchange("GET", "/openapi.json", {{"X-Forwarded-For", "evil<script>, 10.0.0.5"}})
            .status == 200);
    CHECK(c.exchange("GET", "/metrics").status == 200);
    CHECK(server.stop(SIGTERM) == 0);
    return read_text(path);
  };
  auto line_of = [](const std::string& log, const std::string& target) {
    auto at = log.find("GET " + target + " 200");
    REQUIRE(at != std::string::npos);
    return log.substr(at, log.find('\n', at) - at);
  };

  SECTION("no TRUSTED_PROXIES: the peer, whatever the header says") {
    auto log = run({});
    CHECK_THAT(line_of(log, "/api/tasks"), Catch::EndsWith(" client=127.0.0.1"));
    CHECK_THAT(line_of(log, "/ready"), Catch::EndsWith(" client=127.0.0.1"));
    CHECK(log.find("203.0.113.7") == std::string::npos);
    CHECK(log.find("198.51.100.9") == std::string::npos);
  }
  SECTION("the peer is trusted: the nearest address that is not a trusted proxy") {
    auto log = run({{"TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"}});
    CHECK_THAT(line_of(log, "/api/tasks"), Catch::EndsWith(" client=203.0.113.7"));
    // Two fields are one list; trusted hops (127.0.0.1, 10.0.0.5) are skipped.
    CHECK_THAT(line_of(log, "/ready"), Catch::EndsWith(" client=198.51.100.9"));
    // What is not an address is never logged, nor anything left of it.
    CHECK_THAT(line_of(log, "/openapi.json"), Catch::EndsWith(" client=10.0.0.5"));
    CHECK(log.find("evil") == std::string::npos);
    CHECK_THAT(line_of(log, "/metrics"), Catch::EndsWith(" client=127.0.0.1"));
  }
  SECTION("another proxy's header is not believed") {
    auto log = run({{"TRUSTED_PROXIES", "192.0.2.0/24"}});
    CHECK_THAT(line_of(log, "/api/tasks"), Catch::EndsWith(" client=127.0.0.1"));
  }
  ::unlink(path.c_str());
}
