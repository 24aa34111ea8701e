// PostgreSQL goes away under load: quick 503s, /ready 503, no hang, no crash; it comes
// back: the same server process serves again by itself.

#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include "tests/faults/fault_support.hpp"

using namespace todo::faults;
using todo::test::fresh_user;
using todo::test::server_process;

namespace {

struct sample {
  std::string what; // "create" or "list"
  reply r;
};

} // namespace

TEST_CASE("when PostgreSQL stops, requests answer 503 quickly, and when it returns the same "
          "server recovers by itself",
          "[outage]") {
  REQUIRE(pg_control_available());
  constexpr int db_timeout_ms = 1000;
  constexpr double answer_bound_ms = 2500;
  server_process server{{{"DB_TIMEOUT_MS", std::to_string(db_timeout_ms)},
                         {"DB_POOL_SIZE", "2"}}};
  server.start();
  const auto port = server.port();

  pg_outage pg; // restarts PostgreSQL on every exit path
  std::atomic<bool> stop{false};
  std::mutex m;
  std::vector<sample> samples;
  std::atomic<long> connection_failures{0};
  std::vector<std::string> failure_texts;
  std::vector<std::thread> ts;
  for (int w = 0; w < 3; ++w)
    ts.emplace_back([&, w] {
      auto user = fresh_user("outage");
      auto hdr = json_auth(user);
      auto auth = auth_only(user);
      std::optional<conn> c;
      long n = 0;
      while (!stop.load()) {
        try {
          if (!c || !c->is_open())
            c.emplace(port);
        } catch (const std::exception& e) {
          ++connection_failures;
          std::lock_guard<std::mutex> g{m};
          failure_texts.push_back(std::string{"connect: "} + e.what());
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
        bool create = (++n + w) % 2 == 0;
        auto r = create ? c->exchange("POST", "/api/tasks", hdr,
                                      "{\"title\":\"o" + std::to_string(n) + "\"}", 5000)
                        : c->exchange("GET", "/api/tasks?limit=5", auth, {}, 5000);
        if (!r.answered) {
          ++connection_failures;
          std::lock_guard<std::mutex> g{m};
          failure_texts.push_back(r.error);
        }
        {
          std::lock_guard<std::mutex> g{m};
          samples.push_back(sample{create ? "create" : "list", r});
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20)); // light load
      }
    });
  auto join_all = [&] {
    stop = true;
    for (auto& t : ts)
      if (t.joinable())
        t.join();
  };
  struct joiner {
    std::function<void()> f;
    ~joiner() { f(); }
  } join_on_exit{join_all};

  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  auto stop_begin = clock::now();
  REQUIRE(pg.stop());
  auto stop_done = clock::now();
  std::cout << "[outage] pg_ctl stop took " << ms_between(stop_begin, stop_done) << " ms"
            << std::endl;

  // While it is down: /ready turns 503 (within the DB timeout and a margin), /health stays
  // 200, and the server stays alive.
  std::optional<conn> probe;
  probe.emplace(port);
  std::optional<double> ready_503_after;
  reply last_ready;
  for (int i = 0; i < 40 && !ready_503_after; ++i) {
    last_ready = probe->exchange("GET", "/ready", {}, {}, 5000);
    if (!probe->is_open())
      probe.emplace(port);
    if (last_ready.answered && last_ready.status == 503)
      ready_503_after = ms_since(stop_done);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO("last /ready: " << last_ready.status << " " << last_ready.body << " " << last_ready.error);
  REQUIRE(ready_503_after);
  std::cout << "[outage] /ready answered 503 " << *ready_503_after << " ms after the stop"
            << std::endl;
  CHECK(*ready_503_after < answer_bound_ms + 500);
  CHECK(!last_ready.header("retry-after").empty());

  std::this_thread::sleep_for(std::chrono::milliseconds(2500)); // a few seconds of outage
  if (!probe->is_open())
    probe.emplace(port);
  auto ready_later = probe->exchange("GET", "/ready", {}, {}, 5000);
  CHECK(ready_later.status == 503);
  if (!probe->is_open())
    probe.emplace(port);
  auto health = probe->exchange("GET", "/health", {}, {}, 5000);
  CHECK(health.status == 200);
  CHECK(process_alive(server.pid()));

  // Bring it back, with the options it was started with.
  auto start_begin = clock::now();
  REQUIRE(pg.start());
  auto start_done = clock::now();
  std::cout << "[outage] pg_ctl start took " << ms_between(start_begin, start_done) << " ms"
            << std::endl;

  // Recovery, measured with a fresh user's create every 100 ms.
  auto user = fresh_user("outage-back");
  std::optional<double> recovered_after;
  reply last;
  {
    std::optional<conn> c;
    while (ms_since(start_done) < 10000) {
      if (!c || !c->is_open())
        c.emplace(port);
      last = c->exchange("POST", "/api/tasks", json_auth(user), R"({"title":"back"})", 5000);
      if (last.answered && last.status == 201) {
        recovered_after = ms_since(start_done);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  INFO("last answer while recovering: " << last.status << " " << last.body << " " << last.error);
  REQUIRE(recovered_after);
  std::cout << "[outage] first 201 " << *recovered_after
            << " ms after PostgreSQL accepted connections again" << std::endl;
  CHECK(*recovered_after < 10000);
  // Let the load threads run on the recovered database for a moment, then stop them.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  join_all();

  {
    conn c{port};
    auto ready = c.exchange("GET", "/ready", {}, {}, 5000);
    CHECK(ready.status == 200);
    auto again = c.exchange("POST", "/api/tasks", json_auth(user), R"({"title":"again"})", 5000);
    CHECK(again.status == 201);
    CHECK(db_count(user) == 2);
  }
  CHECK(process_alive(server.pid()));

  // Every answer in time; while PostgreSQL was down, only 503 database unavailable (a 2xx
  // only for a request sent before the stop completed).
  long before = 0, during = 0, after = 0, ok_during = 0, unavailable = 0, late_2xx = 0,
       slow = 0, bad = 0, ok_after_recovery = 0;
  double max_ms = 0, max_ms_during = 0;
  for (const auto& s : samples) {
    const auto& r = s.r;
    if (!r.answered)
      continue;
    max_ms = std::max(max_ms, r.ms);
    bool in_outage = r.done_at > stop_done && r.sent_at < start_begin;
    if (r.done_at <= stop_begin)
      ++before;
    else if (in_outage)
      ++during, max_ms_during = std::max(max_ms_during, r.ms);
    else if (r.sent_at >= start_begin)
      ++after;
    if (r.ms > answer_bound_ms) {
      ++slow;
      UNSCOPED_INFO(s.what << " took " << r.ms << " ms: " << r.status << " " << r.body);
    }
    if (r.status / 100 == 2) {
      if (r.sent_at > stop_done && r.sent_at < start_begin) {
        ++late_2xx;
        UNSCOPED_INFO(s.what << " sent during the outage answered " << r.status);
      }
      if (in_outage)
        ++ok_during;
      if (r.sent_at >= start_done + std::chrono::milliseconds(static_cast<long>(*recovered_after)))
        ++ok_after_recovery;
    } else if (r.status == 503) {
      bool good = is_detail(r.body, "database unavailable") && !r.header("retry-after").empty();
      if (good)
        ++unavailable;
      else {
        ++bad;
        UNSCOPED_INFO(s.what << ": 503 with body " << r.body << " Retry-After '"
                             << r.header("retry-after") << "'");
      }
    } else {
      ++bad;
      UNSCOPED_INFO(s.what << ": unexpected " << r.status << " " << r.body);
    }
  }
  for (const auto& f : failure_texts)
    UNSCOPED_INFO("no answer: " << f);
  std::cout << "[outage] " << samples.size() << " requests from 3 clients: " << before
            << " before the stop, " << during << " answered during the outage (" << unavailable
            << " x 503 database unavailable, " << ok_during << " x 2xx sent before the stop), "
            << after << " sent after the restart (" << ok_after_recovery
            << " x 2xx after recovery); slowest answer " << max_ms << " ms (during the outage "
            << max_ms_during << " ms); no answer " << connection_failures.load() << std::endl;
  CHECK(before > 0);
  CHECK(during > 0);
  CHECK(unavailable > 0);
  CHECK(connection_failures.load() == 0);
  CHECK(slow == 0);
  CHECK(late_2xx == 0);
  CHECK(bad == 0);
  CHECK(max_ms <= answer_bound_ms);
}
