#include <catch2/catch.hpp>

#include "persistence/db_pool.hpp"
#include "tests/support/deterministic_system.hpp"
#include "tests/support/fake_db.hpp"

using namespace todo;
using todo::test::deterministic_system;

namespace {

// A pool of two workers that hold every command until the test releases it, so the test
// sees which worker got what, and when.
struct pool_fixture : deterministic_system {
  std::shared_ptr<test::fake_db_data> d1 = std::make_shared<test::fake_db_data>();
  std::shared_ptr<test::fake_db_data> d2 = std::make_shared<test::fake_db_data>();
  test::fake_db_actor w1 = sys.spawn(test::fake_db, d1);
  test::fake_db_actor w2 = sys.spawn(test::fake_db, d2);
  db_actor pool;

  explicit pool_fixture(size_t max_batch = 64) {
    d1->hold = d2->hold = true;
    std::vector<db_worker_actor> workers{caf::actor_cast<db_worker_actor>(w1),
                                         caf::actor_cast<db_worker_actor>(w2)};
    pool = sys.spawn(db::db_pool, std::move(workers), size_t{100},
                     caf::timespan{std::chrono::seconds(10)}, max_batch,
                     db::write_limit_for(2));
  }
  ~pool_fixture() {
    caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  }
  size_t commands_seen() const {
    return d1->log.size() + d2->log.size();
  }
  auto create(std::string user, std::string title) {
    return ask_later<task_result>(pool, atom::exec::value, std::move(user),
                                  test::create_cmd(std::move(title)));
  }
  // Releases the oldest command held by the worker of `d`, and delivers the answers.
  void release(const std::shared_ptr<test::fake_db_data>& d) {
    caf::anon_send(d == d1 ? w1 : w2, atom::tick::value);
    run();
  }
};

struct unbatched_pool : pool_fixture {
  unbatched_pool() : pool_fixture(1) {
  }
};

} // namespace

TEST_CASE("a pool of n workers runs n/2 group commits at once, at least one") {
  CHECK(db::write_limit_for(1) == 1);
  CHECK(db::write_limit_for(2) == 1);
  CHECK(db::write_limit_for(4) == 2);
  CHECK(db::write_limit_for(5) == 2);
}

TEST_CASE_METHOD(pool_fixture, "while a group commit is in flight, writes wait for the next one "
                               "and an idle worker is left to reads") {
  auto a = create("alice", "a");
  run();
  REQUIRE(commands_seen() == 1);
  auto& first = d1->held.empty() ? d2 : d1;  // the worker running alice's write
  auto& other = d1->held.empty() ? d1 : d2;
  REQUIRE(first->held.size() == 1);

  // Two more users write while alice's commit runs: the other worker is idle, but they wait.
  auto b = create("bob", "b");
  auto c = create("carol", "c");
  run();
  CHECK(commands_seen() == 1);
  CHECK(other->log.empty());

  // A read does not wait behind them: it goes to the idle worker at once.
  task_cmd list;
  list.kind = op::list;
  auto r = ask_later<task_result>(pool, atom::exec::value, std::string{"dave"}, list);
  run();
  REQUIRE(other->log.size() == 1);
  CHECK(other->log.front().first == "dave");
  release(other);
  REQUIRE(r->has_value());
  CHECK(r->value());

  // Alice's commit ends: bob's and carol's writes go together, as one transaction.
  release(first);
  REQUIRE(a->has_value());
  CHECK(a->value());
  CHECK(!b->has_value());
  CHECK(!c->has_value());
  auto batches = d1->batches.size() + d2->batches.size();
  REQUIRE(batches == 1);
  auto& third = d1->batches.empty() ? d2 : d1;
  CHECK(third->batches.front() == 2);
  release(third);
  REQUIRE(b->has_value());
  REQUIRE(c->has_value());
  CHECK(b->value());
  CHECK(c->value());
  CHECK(b->value()->rows.at(0).title == "b");
  CHECK(c->value()->rows.at(0).title == "c");
}

TEST_CASE_METHOD(unbatched_pool, "without group commit (a batch of one) writes use every worker") {
  auto a = create("alice", "a");
  auto b = create("bob", "b");
  run();
  CHECK(d1->log.size() == 1);
  CHECK(d2->log.size() == 1);
  release(d1);
  release(d2);
  CHECK(a->has_value());
  CHECK(b->has_value());
}

TEST_CASE_METHOD(unbatched_pool, "a user's later write never starts while an earlier one of that "
                                 "user is in flight, even with a worker idle") {
  auto a1 = create("alice", "a1");
  auto a2 = create("alice", "a2");
  auto b = create("bob", "b");
  run();
  // alice's first and bob's run; alice's second waits for her first.
  REQUIRE(commands_seen() == 2);
  auto& first = d1->log.front().first == "alice" ? d1 : d2;
  auto& other = d1->log.front().first == "alice" ? d2 : d1;
  CHECK(other->log.front().first == "bob");
  release(other); // bob's answer frees a worker: alice's second still waits
  REQUIRE(b->has_value());
  CHECK(commands_seen() == 2);
  CHECK_FALSE(a2->has_value());
  release(first);
  REQUIRE(a1->has_value());
  CHECK(a1->value());
  REQUIRE(commands_seen() == 3); // now alice's second
  auto& second = d1->held.empty() ? d2 : d1;
  CHECK(second->log.back().second.patch.title == std::optional<std::string>{"a2"});
  release(second);
  REQUIRE(a2->has_value());
  CHECK(a2->value());
}

TEST_CASE_METHOD(pool_fixture, "a user's writes that queued behind a commit ride the next one "
                               "together, in order") {
  auto a1 = create("alice", "a1");
  run();
  auto& first = d1->held.empty() ? d2 : d1;
  auto a2 = create("alice", "a2");
  auto b = create("bob", "b");
  auto a3 = create("alice", "a3");
  run();
  CHECK(commands_seen() == 1);
  release(first);
  REQUIRE(a1->has_value());
  auto& next = d1->batches.empty() ? d2 : d1;
  REQUIRE(next->batches.size() == 1);
  CHECK(next->batches.front() == 3);
  // In the batch, alice's second comes before her third.
  std::vector<std::string> titles;
  REQUIRE(next->log.size() >= 3);
  for (auto i = next->log.end() - 3; i != next->log.end(); ++i) // the batch's three
    if (i->first == "alice" && i->second.patch.title)
      titles.push_back(*i->second.patch.title);
  CHECK(titles == std::vector<std::string>{"a2", "a3"});
  release(next);
  REQUIRE(a2->has_value());
  REQUIRE(a3->has_value());
  REQUIRE(b->has_value());
  CHECK(a2->value()->rows.at(0).id < a3->value()->rows.at(0).id);
}
