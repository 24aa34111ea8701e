// The change feed (migrations 007 to 010) through the real listener, against the real
// PostgreSQL that scripts/test starts: what a statement's rows look like on the wire and
// whether a cache rebuilt from the feed alone equals the table.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include <unistd.h>

#include <pqxx/pqxx>

#include "persistence/change_listener.hpp"
#include "persistence/migrations.hpp"
#include "test_database.hpp"

using namespace todo;

namespace {

using test::database_url;

std::string fresh_user(const std::string& tag) {
  static std::atomic<int> n{0};
  return "feed-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

// Every raw payload on the feed's channel whose changes are all `user`'s (others' statements
// are other notifications: the test database is shared).
class raw_feed : public pqxx::notification_receiver {
public:
  raw_feed(pqxx::connection_base& c, std::string user)
    : pqxx::notification_receiver(c, "todo_task_events"), user_(std::move(user)) {
  }
  void operator()(const std::string& payload, int) override {
    std::vector<task_change> changes;
    db::parse_changes(payload, changes);
    if (!changes.empty() && changes.front().user == user_)
      payloads.push_back(payload);
  }
  std::vector<std::string> payloads;

private:
  std::string user_;
};

// Collects `user`'s changes through the service's own listener (its thread, its parser).
struct feed_collector {
  explicit feed_collector(std::string user)
    : user_(std::move(user)),
      listener_(database_url(),
                [this](std::vector<task_change>& got) {
                  std::lock_guard<std::mutex> g{m_};
                  for (auto& c : got)
                    if (c.user == user_)
                      changes_.push_back(c);
                },
                [] {}) {
    REQUIRE(listener_.wait_connected(std::chrono::seconds(10)));
  }
  // Waits until at least `n` changes arrived (or 5 s), then returns all of them.
  std::vector<task_change> wait_for(size_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard<std::mutex> g{m_};
        if (changes_.size() >= n)
          return changes_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard<std::mutex> g{m_};
    return changes_;
  }

private:
  std::string user_;
  std::mutex m_;
  std::vector<task_change> changes_;
  db::change_listener listener_;
};

void run(const std::vector<std::string>& statements) {
  pqxx::connection c{database_url()};
  pqxx::work w{c};
  for (const auto& s : statements)
    w.exec(s);
  w.commit();
}

} // namespace

TEST_CASE("parse_changes reads 008's arrays and 007's single objects, and skips the rest") {
  std::vector<task_change> out;
  CHECK(db::parse_changes(R"([{"u":"a","op":"c","id":1,"v":1,"title":"t","description":null,)"
                          R"("completed":false,"c":1,"m":2},{"u":"a","op":"d","id":2},)"
                          R"({"u":"a","op":"big","id":3,"v":4},{"nope":1},7])",
                          out) == 3);
  REQUIRE(out.size() == 3);
  CHECK(out[0].what == task_change::kind::created);
  CHECK(out[0].row.title == "t");
  CHECK_FALSE(out[0].row.description);
  CHECK(out[0].row.updated_us == 2);
  CHECK(out[1].what == task_change::kind::deleted);
  CHECK(out[1].row.id == 2);
  CHECK(out[2].what == task_change::kind::unknown);
  CHECK(out[2].row.version == 4);
  CHECK(db::parse_changes(R"({"u":"b","op":"u","id":9,"v":3,"title":"x","description":"d",)"
                          R"("completed":true,"c":1,"m":5})",
                          out) == 1);
  CHECK(out.back().what == task_change::kind::updated);
  CHECK(out.back().row.description == std::optional<std::string>{"d"});
  CHECK(db::parse_changes("[", out) == 0);
  CHECK(db::parse_changes("\"text\"", out) == 0);
  CHECK(db::parse_changes("[]", out) == 0);
  CHECK(out.size() == 4);
}

TEST_CASE("each row of a statement arrives as a notification of its own, under 8000 bytes, "
          "every row once and in order") {
  db::migrate(database_url());
  auto user = fresh_user("rows");
  pqxx::connection listen{database_url()};
  raw_feed raw{listen, user};
  // 300 rows: most short, every 50th with a 1000-character description of control characters
  // (6000 bytes once escaped as \u0001).
  run({"INSERT INTO tasks (user_id, title, description) SELECT '" + user +
       "', 'row ' || g, CASE WHEN g % 50 = 0 THEN repeat(chr(1), 1000) ELSE 'd' || g END "
       "FROM generate_series(1, 300) AS g"});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::vector<task_change> changes;
  while (changes.size() < 300 && std::chrono::steady_clock::now() < deadline) {
    listen.await_notification(0, 100000);
    changes.clear();
    for (const auto& p : raw.payloads)
      db::parse_changes(p, changes);
  }
  REQUIRE(changes.size() == 300);
  // Migration 010: one notification per row again (007's objects, not 008/009's arrays).
  CHECK(raw.payloads.size() == 300);
  for (const auto& p : raw.payloads) {
    CHECK(p.size() < 8000);
    CHECK(p.front() == '{');
  }
  for (size_t i = 0; i < changes.size(); ++i) {
    CHECK(changes[i].what == task_change::kind::created);
    CHECK(changes[i].row.title == "row " + std::to_string(i + 1));
    if (i > 0)
      CHECK(changes[i].row.id > changes[i - 1].row.id);
  }
  CHECK(changes[49].row.description == std::optional<std::string>{std::string(1000, '\x01')});
}

TEST_CASE("a row too large for a notification arrives as 'big' (refetch), its neighbours whole") {
  db::migrate(database_url());
  // A 1,500-character user id and escaped control characters take the row past 8000 bytes.
  auto user = fresh_user("big") + std::string(1500, 'u');
  feed_collector feed{user};
  run({"INSERT INTO tasks (user_id, title, description) VALUES "
       "('" + user + "', 'small', NULL), "
       "('" + user + "', repeat(chr(2), 200), repeat(chr(1), 1000)), "
       "('" + user + "', 'small too', 'x')"});
  auto got = feed.wait_for(3);
  REQUIRE(got.size() == 3);
  CHECK(got[0].what == task_change::kind::created);
  CHECK(got[1].what == task_change::kind::unknown);
  CHECK(got[1].row.version == 1);
  CHECK(got[2].what == task_change::kind::created);
  CHECK(got[2].row.description == std::optional<std::string>{"x"});
}

TEST_CASE("a cache rebuilt from the feed alone equals the table after multi-statement "
          "transactions") {
  db::migrate(database_url());
  auto user = fresh_user("replay");
  auto other = fresh_user("moved");
  feed_collector feed{user};
  feed_collector moved{other};
  // Inserts, an update of some rows (version bumped, as the service does), an update that
  // changes nothing (no event), a row moved to another user, deletes: in two transactions.
  run({"INSERT INTO tasks (user_id, title) SELECT '" + user + "', 't' || g "
       "FROM generate_series(1, 40) AS g",
       "UPDATE tasks SET completed = NOT completed, version = version + 1 "
       "WHERE user_id = '" + user + "' AND title IN ('t1', 't2', 't3', 't4')",
       "UPDATE tasks SET title = title WHERE user_id = '" + user + "'"});
  run({"UPDATE tasks SET title = 'again', version = version + 1 WHERE user_id = '" + user +
         "' AND title IN ('t1', 't5')",
       "UPDATE tasks SET user_id = '" + other + "' WHERE user_id = '" + user +
         "' AND title = 't6'",
       "DELETE FROM tasks WHERE user_id = '" + user + "' AND title IN ('t2', 't7', 't8')"});
  // 40 creates + 4 + 2 updates + 1 delete (moved away) + 3 deletes.
  auto got = feed.wait_for(50);
  CHECK(got.size() == 50);
  std::map<int64_t, task> cache;
  for (const auto& c : got) {
    if (c.what == task_change::kind::deleted)
      cache.erase(c.row.id);
    else {
      REQUIRE(c.what != task_change::kind::unknown);
      cache[c.row.id] = c.row;
    }
  }
  pqxx::connection conn{database_url()};
  pqxx::work w{conn};
  auto rows = w.exec_params("SELECT id, title, completed, version FROM tasks WHERE user_id = $1 "
                            "ORDER BY id",
                            user);
  REQUIRE(rows.size() == cache.size());
  auto it = cache.begin();
  for (const auto& row : rows) {
    CHECK(it->first == row[0].as<int64_t>());
    CHECK(it->second.title == row[1].as<std::string>());
    CHECK(it->second.completed == row[2].as<bool>());
    CHECK(it->second.version == row[3].as<int64_t>());
    ++it;
  }
  auto arrived = moved.wait_for(1);
  REQUIRE(arrived.size() == 1);
  CHECK(arrived[0].what == task_change::kind::created);
  CHECK(arrived[0].row.title == "t6");
}
