// kill -9 under load with Idempotency-Keys (issue 14): every client retries the write that got
// no answer, with the same key, on the restarted server; afterwards each create key made
// exactly one task and each toggle was applied exactly once.

#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "tests/faults/fault_support.hpp"

using namespace todo::faults;
using todo::test::fresh_user;
using todo::test::server_process;

namespace {

struct keyed_write {
  std::string method, target, body, key;
  bool is_create = false;
  std::int64_t id = 0; // the toggled task
  std::string title;   // the created task's title (unique per key)
};

struct retry_log {
  std::string user;
  std::map<std::string, std::int64_t> created; // create key -> acknowledged id
  std::map<std::int64_t, long> toggles;        // task id -> acknowledged toggles
  std::optional<keyed_write> unanswered;
  long acked = 0, non_2xx = 0, replayed_on_retry = 0, retries = 0;
  std::vector<std::string> samples;
};

header_list with_key(header_list h, const std::string& key) {
  h.emplace_back("Idempotency-Key", key);
  return h;
}

// Records one acknowledged write.
void acknowledge(retry_log& log, const keyed_write& w, const reply& r) {
  ++log.acked;
  if (w.is_create)
    log.created[w.key] = json_int(r.body, "id");
  else
    ++log.toggles[w.id];
}

void drive(unsigned short port, retry_log& log, std::atomic<bool>& stop, unsigned seed) {
  std::mt19937 rng{seed};
  std::optional<conn> c;
  try {
    c.emplace(port);
  } catch (const std::exception&) {
    return;
  }
  auto hdr = json_auth(log.user);
  long n = 0;
  std::vector<std::int64_t> ids;
  while (!stop.load()) {
    keyed_write w;
    w.key = log.user + "-" + std::to_string(++n);
    if (ids.empty() || rng() % 2 == 0) {
      w.is_create = true;
      w.method = "POST";
      w.target = "/api/tasks";
      w.title = "retry-" + w.key;
      w.body = "{\"title\":\"" + w.title + "\"}";
    } else {
      w.id = ids[rng() % ids.size()];
      w.method = "PATCH";
      w.target = "/api/tasks/" + std::to_string(w.id) + "/complete";
    }
    auto r = c->exchange(w.method, w.target, with_key(hdr, w.key), w.body, 10000);
    if (!r.answered) {
      log.unanswered = w;
      return;
    }
    if (r.status / 100 != 2) {
      ++log.non_2xx;
      if (log.samples.size() < 3)
        log.samples.push_back(std::to_string(r.status) + " " + r.body);
      continue;
    }
    acknowledge(log, w, r);
    if (w.is_create)
      ids.push_back(json_int(r.body, "id"));
  }
}

// Sends the unanswered write again, with its key, until it is answered 2xx (409: wait).
void retry(unsigned short port, retry_log& log) {
  if (!log.unanswered)
    return;
  const auto& w = *log.unanswered;
  auto hdr = with_key(json_auth(log.user), w.key);
  for (int attempt = 0; attempt < 50; ++attempt) {
    ++log.retries;
    conn c{port};
    auto r = c.exchange(w.method, w.target, hdr, w.body, 10000);
    if (r.answered && r.status / 100 == 2) {
      if (r.header("idempotent-replayed") == "true")
        ++log.replayed_on_retry;
      acknowledge(log, w, r);
      log.unanswered.reset();
      return;
    }
    if (r.answered && r.status != 409 && r.status != 503)
      FAIL("retry of " << w.method << " " << w.target << " answered " << r.status << " "
                       << r.body);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL("the retry of " << w.method << " " << w.target << " was never answered 2xx");
}

} // namespace

TEST_CASE("after kill -9 under load, retries with the same Idempotency-Key apply each write "
          "exactly once",
          "[crash_retry]") {
  constexpr int clients = 16;
  server_process server{{{"DB_POOL_SIZE", "4"}}};
  server.start();
  std::vector<retry_log> logs(clients);
  for (int i = 0; i < clients; ++i)
    logs[i].user = fresh_user("retry");
  auto port = server.port();
  auto k = kill_under_load(server, clients, [&](int i, std::atomic<bool>& stop) {
    drive(port, logs[i], stop, 777u + i);
  });
  CHECK(k.rc == -SIGKILL);
  CHECK(k.clients_stopped);

  server_process again;
  again.start();
  long unanswered = 0;
  for (auto& log : logs)
    if (log.unanswered) {
      ++unanswered;
      retry(again.port(), log);
    }

  long acked = 0, replayed = 0, creates = 0, toggles = 0, non_2xx = 0;
  for (auto& log : logs) {
    INFO("user " << log.user);
    for (const auto& s : log.samples)
      UNSCOPED_INFO("non-2xx answer: " << s);
    CHECK_FALSE(log.unanswered);
    acked += log.acked;
    replayed += log.replayed_on_retry;
    non_2xx += log.non_2xx;
    auto rows = db_rows(log.user);
    std::map<std::int64_t, db_row> by_id;
    std::map<std::string, long> by_title;
    for (const auto& r : rows) {
      by_id[r.id] = r;
      ++by_title[r.title];
    }
    // One task per create key, the one its (first or replayed) answer named; nothing else.
    CHECK(rows.size() == log.created.size());
    for (const auto& [key, id] : log.created) {
      ++creates;
      CHECK(by_title["retry-" + key] == 1);
      auto it = by_id.find(id);
      REQUIRE(it != by_id.end());
      CHECK(it->second.title == "retry-" + key);
    }
    // Each toggle applied exactly once: the final state is the parity of the toggles.
    for (const auto& [id, count] : log.toggles) {
      toggles += count;
      REQUIRE(by_id.count(id) == 1);
      CHECK(by_id[id].completed == (count % 2 == 1));
    }
    for (const auto& r : rows)
      if (!log.toggles.count(r.id))
        CHECK_FALSE(r.completed);
  }
  std::cout << "[crash_retry] kill -9 after 2 s of keyed load from " << clients << " users: "
            << acked << " writes acknowledged (" << creates << " create keys, " << toggles
            << " toggles), " << unanswered << " unanswered at the kill and retried, "
            << replayed << " of them answered from the stored key (committed before the kill)"
            << std::endl;
  CHECK(non_2xx == 0);
  CHECK(acked >= 100); // the load was real
  CHECK(unanswered >= clients / 2); // most clients were mid-write at the kill
}
