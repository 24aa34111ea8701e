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
  explicit registry_fixture(size_t max_pending = 256) {
    registry_limits limits;
    limits.user_idle = std::chrono::seconds(60);
    limits.max_pending_per_user = max_pending;
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
