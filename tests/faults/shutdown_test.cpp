// Graceful shutdown: SIGTERM under load lets in-flight requests finish, loses no
// acknowledged write, answers nothing wrongly, and exits 0 within the grace period.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "tests/faults/fault_support.hpp"

using namespace todo::faults;
using todo::test::fresh_user;
using todo::test::server_process;

namespace {

struct client_log {
  std::string user;
  std::set<std::int64_t> acked;      // ids of 201s
  std::set<std::string> acked_titles;
  std::vector<std::string> unanswered_titles;
  long unavailable = 0;              // 503 database unavailable: outcome unknown
  long refused_503 = 0;              // other 503 with Retry-After
  long bad = 0;
  std::vector<std::string> bad_samples;
  long answered_across_signal = 0;   // sent before the signal, answered after it
  long refused_connects = 0;
};


// 20 connections (one user each) send creates back to back; SIGTERM after 0.5 s; the
// clients keep sending until their connection fails.
void sigterm_under_load(int grace_ms) {
  constexpr int clients = 20;
  server_process server{{{"SHUTDOWN_GRACE_MS", std::to_string(grace_ms)}}};
  server.start();
  const auto port = server.port();
  std::vector<client_log> logs(clients);
  for (auto& l : logs)
    l.user = fresh_user("term");
  std::atomic<bool> stop{false};
  std::atomic<long long> signal_ns{0}; // steady_clock time of the SIGTERM
  std::vector<std::thread> ts;
  for (int i = 0; i < clients; ++i)
    ts.emplace_back([&, i] {
      auto& log = logs[i];
      auto hdr = json_auth(log.user);
      std::optional<conn> c;
      long n = 0;
      auto start = clock::now();
      while (!stop.load() && ms_since(start) < 15000) {
        if (!c || !c->is_open()) {
          try {
            c.emplace(port, 1000);
          } catch (const std::exception&) {
            ++log.refused_connects;
            if (signal_ns.load() != 0)
              return; // the listener is closed: done
            continue;
          }
        }
        auto title = "term-" + std::to_string(i) + "-" + std::to_string(++n);
        auto r = c->exchange("POST", "/api/tasks", hdr, "{\"title\":\"" + title + "\"}",
                             grace_ms + 5000);
        auto sig = signal_ns.load();
        if (!r.answered) {
          log.unanswered_titles.push_back(title);
          if (sig != 0)
            return; // the server is going away
          continue;
        }
        if (sig != 0 && r.sent_at.time_since_epoch().count() < sig &&
            r.done_at.time_since_epoch().count() > sig)
          ++log.answered_across_signal;
        if (r.status == 201 && json_int(r.body, "id") > 0 && json_str(r.body, "title") == title) {
          log.acked.insert(json_int(r.body, "id"));
          log.acked_titles.insert(title);
        } else if (r.status == 503 && is_detail(r.body, "database unavailable") &&
                   !r.header("retry-after").empty()) {
          ++log.unavailable;
          log.unanswered_titles.push_back(title); // may or may not be committed
        } else if (r.status == 503 && !r.header("retry-after").empty()) {
          ++log.refused_503;
          if (log.bad_samples.size() < 2)
            log.bad_samples.push_back("503 during shutdown: " + r.body);
        } else {
          ++log.bad;
          if (log.bad_samples.size() < 2)
            log.bad_samples.push_back(std::to_string(r.status) + " " + r.body);
        }
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  int pid = server.pid();
  auto t0 = clock::now();
  signal_ns = t0.time_since_epoch().count();
  int rc = server.stop(SIGTERM); // sends SIGTERM, waits for the exit
  double exit_ms = ms_since(t0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (auto& t : ts)
    t.join();

  long acked = 0, found = 0, unanswered = 0, unexplained = 0, unavailable = 0, refused_503 = 0,
       bad = 0, across = 0;
  for (auto& log : logs) {
    acked += static_cast<long>(log.acked.size());
    unanswered += static_cast<long>(log.unanswered_titles.size()) - log.unavailable;
    unavailable += log.unavailable;
    refused_503 += log.refused_503;
    bad += log.bad;
    across += log.answered_across_signal;
    for (const auto& s : log.bad_samples)
      UNSCOPED_INFO(log.user << ": " << s);
    auto rows = db_rows(log.user);
    std::set<std::int64_t> ids;
    for (const auto& r : rows) {
      ids.insert(r.id);
      if (!log.acked.count(r.id)) {
        bool may = std::find(log.unanswered_titles.begin(), log.unanswered_titles.end(),
                             r.title) != log.unanswered_titles.end();
        // A committed create whose answer was never sent is a lost acknowledgement, unless
        // the server said "database unavailable" (outcome unknown).
        if (++unexplained <= 5)
          UNSCOPED_INFO(log.user << ": row " << r.id << " (" << r.title << ") is in the database "
                               << "without a 201"
                               << (may ? " (its request got no answer or a 503)" : ""));
      }
    }
    for (auto id : log.acked)
      found += ids.count(id);
  }
  std::cout << "[shutdown] SIGTERM (SHUTDOWN_GRACE_MS=" << grace_ms << ") after 0.5 s of creates from " << clients
            << " connections: exit code " << rc << " after " << exit_ms
            << " ms\n"
            << "  201 x " << acked << " (found in the database " << found << "), answered "
            << "across the signal " << across << ", no answer " << unanswered
            << ", 503 database unavailable " << unavailable << ", other 503 " << refused_503
            << ", wrong answers " << bad << ", rows without a 201 " << unexplained << std::endl;
  CHECK(rc == 0);
  CHECK(exit_ms < grace_ms + 2000);
  CHECK_FALSE(process_alive(pid));
  CHECK(acked > 0);
  CHECK(found == acked);
  CHECK(bad == 0);
  CHECK(unexplained <= unavailable);
  CHECK(across >= 1); // some requests were in flight at the signal, and they were answered
}

} // namespace

TEST_CASE("SIGTERM under load finishes in-flight requests, keeps every acknowledged write and "
          "exits 0 within the grace period",
          "[shutdown]") {
  sigterm_under_load(3000);
}

TEST_CASE("SIGTERM under continuous load with a short grace period still loses no "
          "acknowledgement and exits 0",
          "[shutdown_grace]") {
  // Clients keep sending on their keep-alive connections after the signal; if the server
  // keeps reading them, the grace period runs out with requests in flight.
  sigterm_under_load(500);
}

TEST_CASE("SIGINT stops an idle server with exit code 0", "[shutdown]") {
  server_process server;
  server.start();
  {
    conn c{server.port()};
    CHECK(c.exchange("GET", "/health").status == 200);
    // An idle keep-alive connection must not hold the shutdown up.
    auto t0 = clock::now();
    int rc = server.stop(SIGINT);
    double ms = ms_since(t0);
    std::cout << "[shutdown] SIGINT with one idle keep-alive connection: exit code " << rc
              << " after " << ms << " ms" << std::endl;
    CHECK(rc == 0);
    CHECK(ms < 3000);
  }
}
