#include <catch2/catch.hpp>

#include "actors/user_registry.hpp"
#include "tests/support/deterministic_system.hpp"
#include "tests/support/fake_db.hpp"

using namespace todo;
using todo::test::deterministic_system;

namespace {

struct registry_fixture : deterministic_system {
  std::shared_ptr<test::fake_db_data> data = std::make_shared<test::fake_db_data>();
  test::fake_db_actor db = sys.spawn(test::fake_db, data);
  user_registry_actor registry;
  cache_budget_ptr budget;
  explicit registry_fixture(size_t max_pending = 256, cache_budget_ptr b = nullptr)
      : budget(std::move(b)) {
    registry_limits limits;
    limits.user_idle = std::chrono::seconds(60);
    limits.max_pending_per_user = max_pending;
    limits.budget = budget;
    registry = sys.spawn(user_registry, caf::actor_cast<db_actor>(db), limits);
  }
  ~registry_fixture() {
    caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
  }
  /// Lets the held database statements finish and delivers their answers.
  void release_db() {
    data->hold = false;
    for (int i = 0; i < 3; ++i) {
      caf::anon_send(db, atom::tick::value);
      run();
    }
  }
  size_t managers() {
    auto n = ask<size_t>(registry, atom::count::value);
    REQUIRE(n);
    return *n;
  }
};

struct small_registry : registry_fixture {
  small_registry() : registry_fixture(2) {
  }
};

// Room for about two users of 40 tasks with 300-byte descriptions (~40 KiB each).
struct budget_registry : registry_fixture {
  budget_registry() : registry_fixture(256, std::make_shared<cache_budget>(64 * 1024)) {
    budget->shards.push_back(registry.address()); // evictions go by message, as in the server
  }
  void seed(const std::string& user, int n) {
    for (int i = 0; i < n; ++i) {
      auto id = data->next_id++;
      data->rows[user][id] = task{id, user + " " + std::to_string(i), std::string(300, 'd'),
                                  false, data->clock_us + id, data->clock_us + id};
    }
  }
  static task_cmd list_cmd() {
    task_cmd c;
    c.kind = op::list;
    c.query.limit = 1000;
    return c;
  }
  caf::expected<task_result> list(const std::string& user) {
    auto r = ask<task_result>(registry, atom::exec::value, user, list_cmd());
    REQUIRE(r);
    return *r;
  }
};

} // namespace

TEST_CASE_METHOD(registry_fixture, "the registry spawns exactly one manager per user") {
  CHECK(managers() == 0);
  REQUIRE(ask<task_result>(registry, atom::exec::value, std::string{"alice"}, test::create_cmd("a")));
  REQUIRE(ask<task_result>(registry, atom::exec::value, std::string{"alice"}, test::create_cmd("b")));
  CHECK(managers() == 1);
  REQUIRE(ask<task_result>(registry, atom::exec::value, std::string{"bob"}, test::create_cmd("c")));
  CHECK(managers() == 2);
  CHECK(data->rows["alice"].size() == 2);
  CHECK(data->rows["bob"].size() == 1);
}

TEST_CASE_METHOD(registry_fixture, "the registry evicts idle managers and respawns on demand") {
  REQUIRE(ask<task_result>(registry, atom::exec::value, std::string{"alice"}, test::create_cmd("a")));
  REQUIRE(ask<task_result>(registry, atom::exec::value, std::string{"bob"}, test::create_cmd("b")));
  CHECK(managers() == 2);
  sched.clock().advance_time(std::chrono::seconds(30));
  run();
  CHECK(managers() == 2); // not idle long enough yet
  sched.clock().advance_time(std::chrono::seconds(60));
  run();
  CHECK(managers() == 0);
  // A returning user gets a fresh actor that sees the stored tasks.
  task_cmd list;
  list.kind = op::list;
  auto page = ask<task_result>(registry, atom::exec::value, std::string{"alice"}, list);
  REQUIRE(page);
  CHECK(page->total == 1);
  CHECK(managers() == 1);
}

TEST_CASE_METHOD(registry_fixture, "a manager with work in flight is never evicted") {
  data->hold = true;
  auto answer =
    ask_later<task_result>(registry, atom::exec::value, std::string{"alice"}, test::create_cmd("slow"));
  run();
  sched.clock().advance_time(std::chrono::seconds(120));
  run();
  CHECK(managers() == 1);
  caf::anon_send(db, atom::tick::value);
  run();
  // The manager's own DB request may have timed out meanwhile; either way an answer came.
  REQUIRE(answer->has_value());
  sched.clock().advance_time(std::chrono::seconds(120));
  run();
  CHECK(managers() == 0);
}

TEST_CASE_METHOD(small_registry, "too many pending requests for one user are refused") {
  data->hold = true;
  auto a = ask_later<task_result>(registry, atom::exec::value, std::string{"alice"}, test::create_cmd("1"));
  auto b = ask_later<task_result>(registry, atom::exec::value, std::string{"alice"}, test::create_cmd("2"));
  auto c = ask_later<task_result>(registry, atom::exec::value, std::string{"alice"}, test::create_cmd("3"));
  auto d = ask_later<task_result>(registry, atom::exec::value, std::string{"bob"}, test::create_cmd("4"));
  run();
  REQUIRE(c->has_value());
  REQUIRE_FALSE(**c);
  CHECK((*c)->error() == errc::overloaded);
  CHECK_FALSE(a->has_value());
  CHECK_FALSE(b->has_value());
  CHECK_FALSE(d->has_value()); // bob has his own budget
  release_db();
  REQUIRE(a->has_value());
  CHECK(**a);
  REQUIRE(b->has_value());
  CHECK(**b);
  REQUIRE(d->has_value());
  CHECK(**d);
  // The managers answered the requesters directly and counted their work down: alice has her
  // whole budget again (two more at once are accepted, a third is not).
  data->hold = true;
  auto e = ask_later<task_result>(registry, atom::exec::value, std::string{"alice"}, test::create_cmd("5"));
  auto f = ask_later<task_result>(registry, atom::exec::value, std::string{"alice"}, test::create_cmd("6"));
  auto g = ask_later<task_result>(registry, atom::exec::value, std::string{"alice"}, test::create_cmd("7"));
  run();
  CHECK_FALSE(e->has_value());
  CHECK_FALSE(f->has_value());
  REQUIRE(g->has_value());
  CHECK((*g)->error() == errc::overloaded);
  release_db();
  REQUIRE(e->has_value());
  CHECK(**e);
  REQUIRE(f->has_value());
  CHECK(**f);
}

TEST_CASE_METHOD(budget_registry, "over the cache budget the least recently used users are evicted "
                                  "whole, and reload what the database holds") {
  for (const auto* u : {"alice", "bob", "carol"})
    seed(u, 40);
  REQUIRE(list("alice"));
  sched.clock().advance_time(std::chrono::milliseconds(100));
  REQUIRE(list("bob"));
  auto two = budget->used.load();
  CHECK(two > 64 * 1024); // alice and bob together are over; nobody asked since
  CHECK(managers() == 2);
  sched.clock().advance_time(std::chrono::milliseconds(100));
  REQUIRE(list("carol")); // sees the total over: alice, least recently used, goes
  CHECK(managers() == 2);
  CHECK(budget->used.load() < two / 2 * 3); // two users' worth, not three
  // A write the cache cannot have seen (no invalidation): only a reload shows it.
  data->rows["alice"].begin()->second.title = "changed behind the cache";
  sched.clock().advance_time(std::chrono::milliseconds(100));
  auto again = list("alice"); // over again: bob goes now, alice reloads
  REQUIRE(again);
  CHECK(again->total == 40);
  CHECK(again->json.find("changed behind the cache") != std::string::npos);
  CHECK(managers() == 2);
  // bob was the one evicted: he reloads too, and sees the same kind of outside change.
  data->rows["bob"].begin()->second.title = "bob changed behind the cache";
  sched.clock().advance_time(std::chrono::milliseconds(100));
  auto b = list("bob");
  REQUIRE(b);
  CHECK(b->json.find("bob changed behind the cache") != std::string::npos);
  // (bob's request evicted carol, then least recently used.) alice, more recent, kept her
  // cache: asking again evicts bob, not her, and she answers from the cache, which cannot
  // have seen this change.
  data->rows["alice"].begin()->second.title = "changed again behind the cache";
  sched.clock().advance_time(std::chrono::milliseconds(100));
  auto kept = list("alice");
  REQUIRE(kept);
  CHECK(kept->json.find("changed again behind the cache") == std::string::npos);
  CHECK(kept->json.find("changed behind the cache") != std::string::npos);
  CHECK(managers() == 1);
  // Every byte counted is given back when the managers stop.
  caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
  run();
  CHECK(budget->used.load() == 0);
}

TEST_CASE_METHOD(budget_registry, "a user with work in flight keeps its manager when evicted for "
                                  "the budget, and reloads") {
  for (const auto* u : {"alice", "bob", "carol"})
    seed(u, 40);
  REQUIRE(list("alice"));
  auto alone = budget->used.load();
  sched.clock().advance_time(std::chrono::milliseconds(100));
  data->hold = true;
  auto slow = ask_later<task_result>(registry, atom::exec::value, std::string{"alice"},
                                     test::create_cmd("in flight"));
  run();
  sched.clock().advance_time(std::chrono::milliseconds(100));
  auto bob = ask_later<task_result>(registry, atom::exec::value, std::string{"bob"},
                                    list_cmd());
  run();
  // Let bob's load through, alice's create stays held.
  REQUIRE(data->held.size() == 2);
  std::swap(data->held.front(), data->held.back());
  caf::anon_send(db, atom::tick::value);
  run();
  REQUIRE(bob->has_value());
  REQUIRE(**bob);
  CHECK(budget->used.load() > 64 * 1024);
  sched.clock().advance_time(std::chrono::milliseconds(100));
  // carol's request finds the total over; alice is the least recently used but has a request
  // in flight: she keeps her manager (the request is answered) and only loses the cache.
  auto carol = ask_later<task_result>(registry, atom::exec::value, std::string{"carol"},
                                      list_cmd());
  run();
  CHECK(managers() == 3);
  data->rows["alice"].begin()->second.title = "changed behind the cache";
  release_db();
  REQUIRE(slow->has_value());
  REQUIRE(**slow);
  CHECK((*slow)->value().rows.at(0).title == "in flight");
  REQUIRE(carol->has_value());
  REQUIRE(**carol);
  auto again = list("alice");
  REQUIRE(again);
  CHECK(again->total == 41);
  CHECK(again->json.find("changed behind the cache") != std::string::npos);
  CHECK(again->json.find("in flight") != std::string::npos);
  CHECK(budget->used.load() > alone);
}

TEST_CASE_METHOD(registry_fixture, "changes from the feed reach the managers of their users, in "
                                   "order, and users without a manager cost nothing") {
  auto made = ask<task_result>(registry, atom::exec::value, std::string{"alice"},
                               test::create_cmd("milk"));
  REQUIRE(made);
  task_cmd list;
  list.kind = op::list;
  REQUIRE(ask<task_result>(registry, atom::exec::value, std::string{"alice"}, list));
  auto reads = data->log.size();
  auto row = made->rows.at(0);
  std::vector<task_change> changes;
  for (int v = 2; v <= 4; ++v) { // three updates of one row, in commit order
    task_change c;
    c.what = task_change::kind::updated;
    c.user = "alice";
    c.row = row;
    c.row.version = v;
    c.row.title = "v" + std::to_string(v);
    changes.push_back(c);
  }
  task_change other; // a user nobody asked for here: no manager is spawned for it
  other.what = task_change::kind::created;
  other.user = "bob";
  other.row.id = 99;
  changes.push_back(other);
  caf::anon_send(registry, atom::apply::value, changes);
  run();
  task_cmd fetch;
  fetch.kind = op::fetch;
  fetch.id = row.id;
  auto got = ask<task_result>(registry, atom::exec::value, std::string{"alice"}, fetch);
  REQUIRE(got);
  CHECK(got->rows.at(0).title == "v4");
  CHECK(data->log.size() == reads); // from the cache
  CHECK(managers() == 1);
}
