// kill -9 under load: every acknowledged write is in the database, nothing else appeared
// except writes that were in flight at the kill.

#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "tests/faults/fault_support.hpp"

using namespace todo::faults;
using todo::test::fresh_user;
using todo::test::server_process;

namespace {

struct in_flight {
  bool is_create = false;
  std::string title;   // for a create
  std::int64_t id = 0; // for a toggle
};

// What one client (one user, one connection) saw.
struct client_log {
  std::string user;
  std::map<std::int64_t, std::string> created;  // acknowledged creates: id -> title
  std::map<std::int64_t, bool> last_completed;  // acknowledged toggles: id -> last value
  long acked_creates = 0;
  long acked_toggles = 0;
  long non_2xx = 0;                             // answered, but not 2xx
  std::vector<std::string> non_2xx_samples;
  std::optional<in_flight> unanswered;          // the write without an answer (at most one)
  std::string unanswered_error;
  clock::time_point unanswered_sent_at{};
};

void drive(unsigned short port, client_log& log, std::atomic<bool>& stop, unsigned seed) {
  std::mt19937 rng{seed};
  std::optional<conn> c;
  try {
    c.emplace(port);
  } catch (const std::exception&) {
    return; // the server is already gone: nothing was sent
  }
  auto hdr = json_auth(log.user);
  auto auth = auth_only(log.user);
  long n = 0;
  std::vector<std::int64_t> ids;
  // Runs until the connection fails (the kill); `stop` only bounds a run where it never does.
  while (!stop.load()) {
    in_flight w;
    reply r;
    if (ids.empty() || rng() % 2 == 0) {
      w.is_create = true;
      w.title = "crash-" + log.user + "-" + std::to_string(++n);
      r = c->exchange("POST", "/api/tasks", hdr, "{\"title\":\"" + w.title + "\"}", 10000);
    } else {
      w.id = ids[rng() % ids.size()];
      r = c->exchange("PATCH", "/api/tasks/" + std::to_string(w.id) + "/complete", auth, {},
                      10000);
    }
    if (!r.answered) {
      log.unanswered = w;
      log.unanswered_error = r.error;
      log.unanswered_sent_at = r.sent_at;
      return; // the server is gone: this connection is done
    }
    if (r.status / 100 != 2) {
      ++log.non_2xx;
      if (log.non_2xx_samples.size() < 3)
        log.non_2xx_samples.push_back(std::to_string(r.status) + " " + r.body);
      continue;
    }
    if (w.is_create) {
      auto id = json_int(r.body, "id");
      log.created[id] = json_str(r.body, "title");
      ++log.acked_creates;
      ids.push_back(id);
    } else {
      bool ok = false;
      log.last_completed[w.id] = json_bool(r.body, "completed", &ok);
      ++log.acked_toggles;
    }
  }
}

} // namespace

TEST_CASE("after kill -9 under load every acknowledged write is in the database and nothing "
          "else appeared",
          "[crash]") {
  constexpr int clients = 8;
  server_process server{{{"DB_POOL_SIZE", "4"}}};
  server.start();
  std::vector<client_log> logs(clients);
  for (int i = 0; i < clients; ++i)
    logs[i].user = fresh_user("crash");
  auto port = server.port();
  auto k = kill_under_load(server, clients, [&](int i, std::atomic<bool>& stop) {
    drive(port, logs[i], stop, 1234u + i);
  });
  int killed_pid = k.pid, rc = k.rc;
  auto dead_at = k.dead_at;
  CHECK(k.clients_stopped);
  // A write first sent after the process was dead cannot have reached it: it is not "in
  // flight" and must not appear.
  long sent_after_death = 0;
  for (auto& log : logs)
    if (log.unanswered && log.unanswered_sent_at > dead_at) {
      ++sent_after_death;
      log.unanswered.reset();
    }
  CHECK(rc == -SIGKILL);
  CHECK_FALSE(process_alive(killed_pid));

  // Restart: the server must come up on the same database and serve the data.
  server_process again;
  again.start();

  long acked_creates = 0, acked_toggles = 0, found_creates = 0, in_flight_writes = 0,
       in_flight_creates = 0, extra_rows = 0, toggled_tasks = 0, toggles_matching = 0,
       non_2xx = 0;
  for (auto& log : logs) {
    INFO("user " << log.user);
    acked_creates += log.acked_creates;
    acked_toggles += log.acked_toggles;
    non_2xx += log.non_2xx;
    for (const auto& s : log.non_2xx_samples)
      UNSCOPED_INFO("non-2xx answer before the kill: " << s);
    if (log.unanswered) {
      ++in_flight_writes;
      if (log.unanswered->is_create)
        ++in_flight_creates;
    }
    auto rows = db_rows(log.user);
    std::map<std::int64_t, todo::faults::db_row> by_id;
    for (const auto& r : rows)
      by_id[r.id] = r;
    // Every acknowledged create is there, with its title.
    for (const auto& [id, title] : log.created) {
      auto it = by_id.find(id);
      if (it != by_id.end()) {
        ++found_creates;
        CHECK(it->second.title == title);
      } else {
        FAIL_CHECK("acknowledged create " << id << " (" << title << ") is missing");
      }
    }
    // Nothing else, except the one create that was in flight on this connection.
    long extra_here = 0;
    for (const auto& r : rows)
      if (!log.created.count(r.id)) {
        ++extra_here;
        bool explained = log.unanswered && log.unanswered->is_create &&
                         r.title == log.unanswered->title;
        if (!explained)
          FAIL_CHECK("row " << r.id << " (" << r.title
                            << ") appeared without an acknowledgement or a write in flight");
      }
    extra_rows += extra_here;
    CHECK(extra_here <= ((log.unanswered && log.unanswered->is_create) ? 1 : 0));
    // Toggled tasks end in their last acknowledged state, unless a toggle on them was in
    // flight at the kill.
    for (const auto& [id, completed] : log.last_completed) {
      ++toggled_tasks;
      if (log.unanswered && !log.unanswered->is_create && log.unanswered->id == id)
        continue;
      auto it = by_id.find(id);
      REQUIRE(it != by_id.end());
      CHECK(it->second.completed == completed);
      if (it->second.completed == completed)
        ++toggles_matching;
    }
    // Created but never acknowledged-toggled tasks are still false (no toggle was acked;
    // an in-flight toggle may have flipped one).
    for (const auto& [id, title] : log.created)
      if (!log.last_completed.count(id) && by_id.count(id) &&
          !(log.unanswered && !log.unanswered->is_create && log.unanswered->id == id))
        CHECK(by_id[id].completed == false);
    // The restarted server sees the same rows.
    conn c{again.port()};
    auto list = c.exchange("GET", "/api/tasks?limit=1", auth_only(log.user));
    REQUIRE(list.answered);
    CHECK(list.status == 200);
    CHECK(list.header("x-total-count") == std::to_string(rows.size()));
  }
  std::cout << "[crash] kill -9 after 2 s of load from " << clients << " users:\n"
            << "  creates acknowledged " << acked_creates << ", found " << found_creates
            << "; toggles acknowledged " << acked_toggles << " on " << toggled_tasks
            << " tasks, final state matching " << toggles_matching << "\n"
            << "  writes in flight at the kill " << in_flight_writes << " (creates "
            << in_flight_creates << "), unacknowledged rows found " << extra_rows
            << ", non-2xx answers before the kill " << non_2xx
            << "; clients whose next write was only sent after the kill " << sent_after_death
            << std::endl;
  CHECK(acked_creates >= 50); // the load was real
  CHECK(found_creates == acked_creates);
  CHECK(extra_rows <= in_flight_creates);
  CHECK(non_2xx == 0);
  CHECK(in_flight_writes + sent_after_death == clients); // every client saw the kill
}
