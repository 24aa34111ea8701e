// More work than the bounds allow: quick 503s with Retry-After, every other answer correct,
// memory bounded, and the connection limit answered with 503.

#include <catch2/catch.hpp>

#include <atomic>
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

struct burst_result {
  long created = 0, overloaded = 0, other = 0, unanswered = 0;
  std::set<std::int64_t> ids;
  long duplicate_ids = 0;
  std::map<std::string, long> created_per_user;
  std::vector<std::string> samples; // unexpected answers
  double max_ms = 0;
  double max_overloaded_ms = 0;
};

// `threads` connections, each pipelining `depth` creates, all released together; thread i
// acts as users[i % users.size()].
burst_result burst(unsigned short port, const std::vector<std::string>& users, int threads,
                   int depth) {
  burst_result out;
  std::mutex m;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      const auto& user = users[static_cast<std::size_t>(t) % users.size()];
      std::optional<conn> c;
      try {
        c.emplace(port);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> g{m};
        out.unanswered += depth;
        out.samples.push_back(std::string{"connect: "} + e.what());
        ++ready;
        return;
      }
      std::vector<request_spec> reqs;
      for (int i = 0; i < depth; ++i)
        reqs.push_back(request_spec{"POST", "/api/tasks", json_auth(user),
                                    "{\"title\":\"burst-" + std::to_string(t) + "-" +
                                      std::to_string(i) + "\"}"});
      ++ready;
      while (!go.load())
        std::this_thread::yield();
      auto replies = c->pipeline(reqs, 15000);
      std::lock_guard<std::mutex> g{m};
      for (const auto& r : replies) {
        if (!r.answered) {
          ++out.unanswered;
          if (out.samples.size() < 10)
            out.samples.push_back("no answer: " + r.error);
          continue;
        }
        out.max_ms = std::max(out.max_ms, r.ms);
        if (r.status == 201 && json_int(r.body, "id") > 0 &&
            json_str(r.body, "title").rfind("burst-", 0) == 0) {
          ++out.created;
          ++out.created_per_user[user];
          if (!out.ids.insert(json_int(r.body, "id")).second)
            ++out.duplicate_ids;
        } else if (r.status == 503 && !r.header("retry-after").empty() &&
                   is_detail(r.body, "service overloaded")) {
          ++out.overloaded;
          out.max_overloaded_ms = std::max(out.max_overloaded_ms, r.ms);
        } else {
          ++out.other;
          if (out.samples.size() < 10)
            out.samples.push_back(std::to_string(r.status) + " Retry-After '" +
                                  r.header("retry-after") + "' " + r.body);
        }
      }
    });
  while (ready.load() < threads)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  go = true;
  for (auto& t : ts)
    t.join();
  return out;
}

void report(const char* what, const burst_result& r) {
  std::cout << "[overload] " << what << ": 201 x " << r.created << ", 503 service overloaded x "
            << r.overloaded << ", other x " << r.other << ", no answer x " << r.unanswered
            << "; slowest answer " << r.max_ms << " ms, slowest 503 " << r.max_overloaded_ms
            << " ms" << std::endl;
  for (const auto& s : r.samples)
    UNSCOPED_INFO(what << ": " << s);
}

} // namespace

TEST_CASE("more concurrent work than the bounds gives quick 503s with Retry-After, correct "
          "answers otherwise, and bounded memory",
          "[overload]") {
  server_process server{{{"MAX_PENDING_PER_USER", "4"},
                         {"DB_POOL_SIZE", "1"},
                         {"DB_QUEUE_LIMIT", "8"}}};
  server.start();
  const auto port = server.port();
  long rss_before = rss_kib(server.pid());

  SECTION("one user: the per-user bound") {
    auto user = fresh_user("over-one");
    auto r = burst(port, {user}, 64, 4); // 256 creates in flight for one user
    report("one user, 64 connections x 4 pipelined creates", r);
    CHECK(r.overloaded > 0);
    CHECK(r.created > 0);
    CHECK(r.other == 0);
    CHECK(r.unanswered == 0);
    CHECK(r.duplicate_ids == 0);
    CHECK(r.created + r.overloaded == 256);
    CHECK(db_count(user) == r.created);
  }
  SECTION("many users: the DB queue bound") {
    std::vector<std::string> users;
    for (int i = 0; i < 32; ++i)
      users.push_back(fresh_user("over-many"));
    auto r = burst(port, users, 128, 1); // 128 creates from 32 users (4 per user)
    report("32 users, 128 connections x 1 create", r);
    CHECK(r.overloaded > 0);
    CHECK(r.created > 0);
    CHECK(r.other == 0);
    CHECK(r.unanswered == 0);
    CHECK(r.duplicate_ids == 0);
    CHECK(r.created + r.overloaded == 128);
    long rows = 0;
    for (const auto& u : users) {
      auto n = db_count(u);
      rows += n;
      auto it = r.created_per_user.find(u);
      CHECK(n == (it == r.created_per_user.end() ? 0 : it->second));
    }
    CHECK(rows == r.created);
  }
  SECTION("repeated bursts keep memory bounded") {
    auto user = fresh_user("over-mem");
    long created = 0, overloaded = 0, bad = 0;
    for (int round = 0; round < 5; ++round) {
      auto r = burst(port, {user, fresh_user("over-mem")}, 64, 4);
      created += r.created_per_user[user];
      overloaded += r.overloaded;
      bad += r.other + r.unanswered;
    }
    long rss_after = rss_kib(server.pid());
    std::cout << "[overload] 5 bursts of 256 creates: 503 x " << overloaded << "; VmRSS "
              << rss_before / 1024 << " MiB before, " << rss_after / 1024 << " MiB after"
              << std::endl;
    CHECK(bad == 0);
    CHECK(overloaded > 0);
    CHECK(db_count(user) == created);
    REQUIRE(rss_after > 0);
    CHECK(rss_after < 200 * 1024);
  }
  // Whatever happened above, the server is alive and serves normally afterwards.
  CHECK(process_alive(server.pid()));
  auto user = fresh_user("over-after");
  conn c{port};
  for (int i = 0; i < 5; ++i) {
    auto r = c.exchange("POST", "/api/tasks", json_auth(user), R"({"title":"calm"})", 5000);
    CHECK(r.status == 201);
  }
  auto list = c.exchange("GET", "/api/tasks", auth_only(user), {}, 5000);
  CHECK(list.status == 200);
  CHECK(list.header("x-total-count") == "5");
}

TEST_CASE("connections beyond MAX_CONNECTIONS get a 503 with Retry-After and are closed",
          "[max_connections]") {
  constexpr int max_conns = 20;
  server_process server{{{"MAX_CONNECTIONS", std::to_string(max_conns)}}};
  server.start();
  const auto port = server.port();
  // server.start() polls /health on connections it closes; let the count settle.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<std::unique_ptr<conn>> held;
  long held_ok = 0;
  for (int i = 0; i < max_conns; ++i) {
    held.push_back(std::make_unique<conn>(port));
    auto r = held.back()->exchange("GET", "/health", {}, {}, 3000);
    held_ok += r.answered && r.status == 200;
  }
  CHECK(held_ok == max_conns);
  // 21st..25th: refused with a 503 (we send nothing, so the answer cannot be lost to a reset).
  long refused_ok = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = raw_talk(port, "", 3000);
    INFO("extra connection " << i << ": " << r.bytes.substr(0, 200) << " closed=" << r.closed);
    CHECK(raw_status(r.bytes) == 503);
    CHECK(!raw_header(r.bytes, "Retry-After").empty());
    CHECK(r.closed);
    CHECK(r.ms < 2500);
    refused_ok += raw_status(r.bytes) == 503 && r.closed;
  }
  // The held connections still work.
  long still_ok = 0;
  for (auto& h : held) {
    auto r = h->exchange("GET", "/health", {}, {}, 3000);
    still_ok += r.answered && r.status == 200;
  }
  CHECK(still_ok == max_conns);
  // Closing some makes room again.
  held.resize(max_conns - 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  long admitted = 0;
  for (int i = 0; i < 3; ++i) {
    conn c{port};
    auto r = c.exchange("GET", "/health", {}, {}, 3000);
    admitted += r.answered && r.status == 200;
  }
  std::cout << "[max_connections] MAX_CONNECTIONS=" << max_conns << ": " << held_ok
            << " held connections served, " << refused_ok
            << "/5 extra connections got 503 + close, " << admitted
            << "/3 admitted after closing 5" << std::endl;
  CHECK(admitted == 3);
  CHECK(process_alive(server.pid()));
}
