#include <catch2/catch.hpp>

#include <random>

#include "actors/model/task_json.hpp"
#include "actors/task_manager.hpp"
#include "tests/support/deterministic_system.hpp"
#include "tests/support/fake_db.hpp"

using namespace todo;
using todo::test::deterministic_system;

namespace {

task_cmd by_id(op kind, int64_t id) {
  task_cmd c;
  c.kind = kind;
  c.id = id;
  return c;
}

struct manager_fixture : deterministic_system {
  std::shared_ptr<test::fake_db_data> data = std::make_shared<test::fake_db_data>();
  test::fake_db_actor db = sys.spawn(test::fake_db, data);
  task_manager_actor spawn_manager(std::string user, size_t cache_limit = 10000,
                                   cache_budget_ptr budget = nullptr) {
    return sys.spawn(task_manager, std::move(user), caf::actor_cast<db_actor>(db),
                     caf::timespan{std::chrono::seconds(2)}, cache_limit, nullptr,
                     std::move(budget));
  }
  ~manager_fixture() {
    caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
  }
  /// Creates alice's task "milk" and loads her cache; returns the task's id.
  int64_t milk_cached(const task_manager_actor& alice) {
    auto made = ask<task_result>(alice, atom::exec::value, test::create_cmd("milk"));
    REQUIRE(made);
    task_cmd list;
    list.kind = op::list;
    REQUIRE(ask<task_result>(alice, atom::exec::value, list));
    return made->rows.at(0).id;
  }
  /// Lets every held database call finish, and delivers the answers.
  void release_all() {
    data->hold = false;
    for (int i = 0; i < 5; ++i) {
      caf::anon_send(db, atom::tick::value);
      run();
    }
  }
};

} // namespace

TEST_CASE_METHOD(manager_fixture, "a task manager sends a user's plain writes at once, in order, "
                                  "and a read waits for all of them") {
  auto alice = spawn_manager("alice");
  auto id = milk_cached(alice);
  data->hold = true;
  auto before = data->log.size();
  std::vector<std::shared_ptr<std::optional<caf::expected<task_result>>>> answers;
  for (int i = 0; i < 5; ++i)
    answers.push_back(ask_later<task_result>(alice, atom::exec::value, by_id(op::complete, id)));
  // A read behind the writes waits for them (it must see them), a write behind it waits too.
  auto read = ask_later<task_result>(alice, atom::exec::value, by_id(op::fetch, id));
  auto last = ask_later<task_result>(alice, atom::exec::value, by_id(op::complete, id));
  run();
  // The five toggles went to the database without waiting for each other, in order.
  CHECK(data->log.size() == before + 5);
  CHECK(data->batches.empty());
  for (int i = 0; i < 4; ++i) {
    caf::anon_send(db, atom::tick::value);
    run();
  }
  CHECK_FALSE(read->has_value()); // one toggle is still in flight
  CHECK(data->log.size() == before + 5);
  caf::anon_send(db, atom::tick::value);
  run();
  // Then the read (from the cache, after the five) and the last toggle.
  REQUIRE(read->has_value());
  REQUIRE(**read);
  CHECK((**read)->rows.at(0).completed == true); // five toggles from false
  CHECK(data->log.size() == before + 6);
  caf::anon_send(db, atom::tick::value);
  run();
  answers.push_back(last);
  for (size_t i = 0; i < answers.size(); ++i) {
    REQUIRE(answers[i]->has_value());
    auto& r = **answers[i];
    REQUIRE(r);
    // Answers alternate: each toggle saw the previous one's result.
    CHECK(r->rows.at(0).completed == (i % 2 == 0));
  }
  CHECK(data->rows["alice"][id].completed == false);
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(manager_fixture, "writes queued behind a conditional write go together, in "
                                  "order, and one that fails does not fail the others") {
  auto alice = spawn_manager("alice");
  auto id = milk_cached(alice);
  task_cmd list;
  list.kind = op::list;
  data->hold = true;
  auto before = data->log.size();
  // If-Match holds the user's later requests until it has answered.
  auto rename = by_id(op::update, id);
  rename.patch.title = "oat milk";
  rename.if_match = "*";
  auto first = ask_later<task_result>(alice, atom::exec::value, rename);
  auto missing = ask_later<task_result>(alice, atom::exec::value, by_id(op::complete, 999999));
  auto toggle = ask_later<task_result>(alice, atom::exec::value, by_id(op::complete, id));
  auto gone = ask_later<task_result>(alice, atom::exec::value, by_id(op::remove, id));
  auto made = ask_later<task_result>(alice, atom::exec::value, test::create_cmd("first"));
  run();
  CHECK(data->log.size() == before + 1);
  release_all();
  REQUIRE(data->batches.size() == 1);
  CHECK(data->batches[0] == 4);
  REQUIRE(first->has_value());
  REQUIRE(**first);
  CHECK((**first)->rows.at(0).title == "oat milk");
  REQUIRE(missing->has_value());
  REQUIRE_FALSE(**missing);
  CHECK((**missing).error() == errc::task_not_found);
  REQUIRE(toggle->has_value());
  REQUIRE(**toggle);
  CHECK((**toggle)->rows.at(0).completed == true);
  CHECK((**toggle)->rows.at(0).title == "oat milk");
  REQUIRE(gone->has_value());
  CHECK(**gone);
  REQUIRE(made->has_value());
  CHECK(**made);
  auto page = ask<task_result>(alice, atom::exec::value, list);
  REQUIRE(page);
  CHECK(page->total == 1);
  CHECK(page->json.find("first") != std::string::npos);
  CHECK(page->json.find("milk") == std::string::npos);
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(manager_fixture, "a burst of creates is applied in arrival order") {
  auto alice = spawn_manager("alice");
  std::vector<std::shared_ptr<std::optional<caf::expected<task_result>>>> answers;
  for (int i = 0; i < 100; ++i)
    answers.push_back(
      ask_later<task_result>(alice, atom::exec::value, test::create_cmd("t" + std::to_string(i))));
  run();
  int64_t last_id = 0;
  for (int i = 0; i < 100; ++i) {
    auto& r = **answers[static_cast<size_t>(i)];
    REQUIRE(r);
    CHECK(r->rows.at(0).title == "t" + std::to_string(i));
    CHECK(r->rows.at(0).id > last_id);
    last_id = r->rows.at(0).id;
  }
  task_cmd list;
  list.kind = op::list;
  auto page = ask<task_result>(alice, atom::exec::value, list);
  REQUIRE(page);
  CHECK(page->total == 100);
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(manager_fixture, "a user's actor never sees another user's tasks") {
  auto alice = spawn_manager("alice");
  auto bob = spawn_manager("bob");
  auto made = ask<task_result>(alice, atom::exec::value, test::create_cmd("alice's"));
  REQUIRE(made);
  auto id = made->rows.at(0).id;
  for (auto kind : {op::fetch, op::complete, op::remove}) {
    auto r = ask<task_result>(bob, atom::exec::value, by_id(kind, id));
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::task_not_found);
  }
  auto upd = by_id(op::update, id);
  upd.patch.title = "stolen";
  auto r = ask<task_result>(bob, atom::exec::value, upd);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::task_not_found);
  task_cmd list;
  list.kind = op::list;
  auto bobs = ask<task_result>(bob, atom::exec::value, list);
  REQUIRE(bobs);
  CHECK(bobs->rows.empty());
  auto still = ask<task_result>(alice, atom::exec::value, by_id(op::fetch, id));
  REQUIRE(still);
  CHECK(still->rows.at(0).title == "alice's");
  CHECK_FALSE(still->rows.at(0).completed);
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(bob, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(manager_fixture, "a database that does not answer in time gives db_unavailable") {
  auto alice = spawn_manager("alice");
  data->hold = true;
  auto answer = ask_later<task_result>(alice, atom::exec::value, test::create_cmd("slow"));
  run();
  CHECK_FALSE(answer->has_value());
  sched.clock().advance_time(std::chrono::seconds(3));
  run();
  REQUIRE(answer->has_value());
  REQUIRE_FALSE(**answer);
  CHECK((*answer)->error() == errc::db_unavailable);
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(manager_fixture, "reads are answered from the cache after one load") {
  auto alice = spawn_manager("alice");
  auto made = ask<task_result>(alice, atom::exec::value, test::create_cmd("cached"));
  REQUIRE(made);
  CHECK(data->log.size() == 1); // the insert: a write does not load the cache
  task_cmd list;
  list.kind = op::list;
  REQUIRE(ask<task_result>(alice, atom::exec::value, list)); // the first read loads it
  auto after_create = data->log.size();
  CHECK(after_create == 2);
  CHECK(data->log.back().second.kind == op::list);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(ask<task_result>(alice, atom::exec::value, list));
    REQUIRE(ask<task_result>(alice, atom::exec::value, by_id(op::fetch, made->rows[0].id)));
  }
  CHECK(data->log.size() == after_create); // no database reads
  auto missing = ask<task_result>(alice, atom::exec::value, by_id(op::fetch, 424242));
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == errc::task_not_found);
  // An id the cache does not hold is asked of the database (another instance may have
  // created it a moment ago).
  CHECK(data->log.size() == after_create + 1);
  // Another process changed the data: after an invalidation the next read reloads.
  data->rows["alice"][made->rows[0].id].title = "changed elsewhere";
  caf::anon_send(alice, atom::invalidate::value);
  auto got = ask<task_result>(alice, atom::exec::value, by_id(op::fetch, made->rows[0].id));
  REQUIRE(got);
  CHECK(got->rows.at(0).title == "changed elsewhere");
  CHECK(data->log.size() == after_create + 2);
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(manager_fixture, "after any mix of mutations the cached view equals the data") {
  auto alice = spawn_manager("alice");
  std::mt19937 rng{42};
  std::vector<int64_t> ids;
  for (int step = 0; step < 400; ++step) {
    auto pick = [&] { return ids.empty() ? int64_t{999} : ids[rng() % ids.size()]; };
    task_cmd c;
    switch (rng() % 5) {
      case 0:
        c = test::create_cmd("t" + std::to_string(step));
        break;
      case 1:
        c = by_id(op::complete, pick());
        if (rng() % 2)
          c.patch.completed = rng() % 2 == 0;
        break;
      case 2:
        c = by_id(op::update, pick());
        c.patch.title = "u" + std::to_string(step);
        if (rng() % 2) {
          c.patch.set_description = true;
          c.patch.description = "d";
        }
        break;
      case 3:
        c = by_id(op::remove, pick());
        break;
      default:
        c = by_id(op::fetch, pick());
    }
    auto r = ask<task_result>(alice, atom::exec::value, c);
    if (r && c.kind == op::create)
      ids.push_back(r->rows.at(0).id);
  }
  for (auto status : {task_status::all, task_status::pending, task_status::completed})
    for (auto sort : {task_sort::created, task_sort::updated, task_sort::title})
      for (bool desc : {false, true}) {
        task_cmd list;
        list.kind = op::list;
        list.query.status = status;
        list.query.sort = sort;
        list.query.descending = desc;
        list.query.limit = 7;
        list.query.offset = 3;
        auto cached = ask<task_result>(alice, atom::exec::value, list);
        REQUIRE(cached);
        task_cache truth;
        for (const auto& [id, t] : data->rows["alice"])
          truth.emplace(id, make_cached(t));
        auto expected = list_tasks(truth, list.query);
        CHECK(cached->total == expected.total);
        // The same ids, titles, states, descriptions and timestamps, in the same order.
        CHECK(cached->json == expected.json);
        if (status == task_status::all)
          CHECK(cached->json.size() > 2); // the page is not trivially empty
      }
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(manager_fixture, "a manager without a cache reads through to the database") {
  auto alice = spawn_manager("alice", 0);
  auto made = ask<task_result>(alice, atom::exec::value, test::create_cmd("plain"));
  REQUIRE(made);
  auto before = data->log.size();
  REQUIRE(ask<task_result>(alice, atom::exec::value, by_id(op::fetch, made->rows[0].id)));
  CHECK(data->log.size() == before + 1);
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(manager_fixture, "If-Match is checked with and without a cache") {
  for (size_t cache_limit : {size_t{10000}, size_t{0}}) {
    auto alice = spawn_manager("alice", cache_limit);
    auto made = ask<task_result>(alice, atom::exec::value, test::create_cmd("v1"));
    REQUIRE(made);
    std::string json;
    write_task(json, made->rows.at(0));
    auto upd = by_id(op::update, made->rows[0].id);
    upd.patch.title = "v2";
    upd.if_match = "\"not-the-tag\"";
    auto refused = ask<task_result>(alice, atom::exec::value, upd);
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == errc::precondition_failed);
    CHECK(data->rows["alice"][made->rows[0].id].title == "v1");
    upd.if_match = etag_of(json);
    auto done = ask<task_result>(alice, atom::exec::value, upd);
    REQUIRE(done);
    CHECK(done->rows.at(0).title == "v2");
    auto missing = by_id(op::remove, 987654);
    missing.if_match = "*";
    CHECK(ask<task_result>(alice, atom::exec::value, missing).error() == errc::task_not_found);
    caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE_METHOD(manager_fixture, "a manager tells the cache budget what its cache holds") {
  auto budget = std::make_shared<cache_budget>(size_t{1} << 20);
  for (int i = 0; i < 10; ++i)
    data->rows["alice"][100 + i] = task{100 + i, "seeded " + std::to_string(i),
                                        std::string(200, 'd'), false, 1, 1};
  auto alice = spawn_manager("alice", 10000, budget);
  task_cmd list;
  list.kind = op::list;
  REQUIRE(ask<task_result>(alice, atom::exec::value, list)); // loads the cache
  auto loaded = budget->used.load();
  // Ten entries, each at least its JSON and description on the heap.
  CHECK(loaded > 10 * (200 + 200));
  CHECK(loaded < 10 * 2000);
  auto made = ask<task_result>(alice, atom::exec::value, test::create_cmd("one more"));
  REQUIRE(made);
  CHECK(budget->used.load() > loaded);
  auto grown = budget->used.load();
  // A longer description costs more; the old entry's bytes are given back.
  task_cmd edit = by_id(op::update, made->rows.at(0).id);
  edit.patch.set_description = true;
  edit.patch.description = std::string(1000, 'x');
  REQUIRE(ask<task_result>(alice, atom::exec::value, edit));
  CHECK(budget->used.load() >= grown + 1000);
  REQUIRE(ask<task_result>(alice, atom::exec::value, by_id(op::remove, made->rows.at(0).id)));
  CHECK(budget->used.load() == loaded);
  // Dropped cache: nothing held; reloaded: the same as before; a stopped manager: nothing.
  caf::anon_send(alice, atom::invalidate::value);
  run();
  CHECK(budget->used.load() == 0);
  REQUIRE(ask<task_result>(alice, atom::exec::value, list));
  CHECK(budget->used.load() == loaded);
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
  run();
  CHECK(budget->used.load() == 0);
}

TEST_CASE_METHOD(manager_fixture, "an invalidation that arrives while the cache loads is not lost") {
  auto alice = spawn_manager("alice");
  REQUIRE(ask<task_result>(alice, atom::exec::value, test::create_cmd("milk")));
  task_cmd list;
  list.kind = op::list;
  data->hold = true;
  auto first = ask_later<task_result>(alice, atom::exec::value, list);
  run(); // the load is in flight
  caf::anon_send(alice, atom::invalidate::value); // another instance wrote meanwhile
  run();
  release_all();
  REQUIRE(first->has_value());
  REQUIRE(**first);
  CHECK((**first)->total == 1);
  // The rows loaded before the invalidation were not kept: the next read loads again.
  auto before = data->log.size();
  REQUIRE(ask<task_result>(alice, atom::exec::value, list));
  CHECK(data->log.size() == before + 1);
  // And that cache is kept.
  REQUIRE(ask<task_result>(alice, atom::exec::value, list));
  CHECK(data->log.size() == before + 1);
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(manager_fixture, "a key in flight is 409 (same request) or 422 (another one), and "
                                  "a replayed answer leaves the cache alone") {
  auto alice = spawn_manager("alice");
  auto id = milk_cached(alice);
  auto keyed = [&](op kind, const char* fp) {
    auto c = by_id(kind, id);
    c.idem_key = "k1";
    c.idem_fingerprint = fp;
    return c;
  };
  data->hold = true;
  auto first = ask_later<task_result>(alice, atom::exec::value, keyed(op::complete, "toggle"));
  auto same = ask_later<task_result>(alice, atom::exec::value, keyed(op::complete, "toggle"));
  auto other = ask_later<task_result>(alice, atom::exec::value, keyed(op::update, "update"));
  run();
  REQUIRE(same->has_value());
  CHECK((*same)->error() == errc::idempotency_in_flight);
  REQUIRE(other->has_value());
  CHECK((*other)->error() == errc::idempotency_mismatch);
  CHECK_FALSE(first->has_value()); // still in the database
  release_all();
  REQUIRE(first->has_value());
  REQUIRE(**first);
  CHECK((**first)->rows.at(0).completed);
  CHECK_FALSE((**first)->replayed);

  // Answered: the key is no longer in flight; the database's stored answer comes back.
  auto again = ask<task_result>(alice, atom::exec::value, keyed(op::complete, "toggle"));
  REQUIRE(again);
  CHECK(again->replayed);
  CHECK(again->replayed_status == 200);
  // The toggle ran once, and the cache still holds the task as committed.
  CHECK(data->rows["alice"][id].completed);
  auto cached = ask<task_result>(alice, atom::exec::value, by_id(op::fetch, id));
  REQUIRE(cached);
  CHECK(cached->rows.at(0).completed);
  CHECK(cached->rows.at(0).title == "milk");
  auto mismatch = ask<task_result>(alice, atom::exec::value, keyed(op::update, "update"));
  CHECK(mismatch.error() == errc::idempotency_mismatch);
}

namespace {

task_change change_of(task_change::kind what, task row) {
  task_change c;
  c.what = what;
  c.user = "alice";
  c.row = std::move(row);
  return c;
}

} // namespace

TEST_CASE_METHOD(manager_fixture, "the change feed updates a cache in place, and an older copy "
                                  "never overwrites a newer one") {
  auto alice = spawn_manager("alice");
  auto id = milk_cached(alice);
  auto fetch = [&](int64_t which) { return ask<task_result>(alice, atom::exec::value,
                                                            by_id(op::fetch, which)); };
  auto cached = [&](int64_t which) {
    auto r = fetch(which);
    REQUIRE(r);
    return r->rows.at(0);
  };
  auto base = cached(id);
  REQUIRE(base.version == 1);
  auto reads = data->log.size();

  // Another instance renamed it (version 2): applied without a database read.
  auto v2 = base;
  v2.title = "oat milk";
  v2.version = 2;
  v2.updated_us = base.updated_us + 10;
  caf::anon_send(alice, atom::apply::value, change_of(task_change::kind::updated, v2));
  run();
  CHECK(cached(id).title == "oat milk");
  // A late copy (version 1) changes nothing; the same copy again neither.
  caf::anon_send(alice, atom::apply::value, change_of(task_change::kind::updated, base));
  caf::anon_send(alice, atom::apply::value, change_of(task_change::kind::updated, v2));
  run();
  CHECK(cached(id).title == "oat milk");
  // A writer that does not bump the version (psql): same version, other content: applied.
  auto manual = v2;
  manual.completed = true;
  caf::anon_send(alice, atom::apply::value, change_of(task_change::kind::updated, manual));
  run();
  CHECK(cached(id).completed);
  // Created elsewhere: listed and fetched from the cache.
  task other;
  other.id = 4242;
  other.title = "from B";
  other.version = 1;
  other.created_us = other.updated_us = base.created_us + 1;
  caf::anon_send(alice, atom::apply::value, change_of(task_change::kind::created, other));
  run();
  CHECK(cached(4242).title == "from B");
  task_cmd list;
  list.kind = op::list;
  auto listed = ask<task_result>(alice, atom::exec::value, list);
  REQUIRE(listed);
  CHECK(listed->total == 2);
  // Deleted elsewhere: gone.
  caf::anon_send(alice, atom::apply::value, change_of(task_change::kind::deleted, other));
  run();
  listed = ask<task_result>(alice, atom::exec::value, list);
  REQUIRE(listed);
  CHECK(listed->total == 1);
  // An update of a row the cache does not hold (deleted here since) is not applied.
  caf::anon_send(alice, atom::apply::value, change_of(task_change::kind::updated, other));
  run();
  listed = ask<task_result>(alice, atom::exec::value, list);
  REQUIRE(listed);
  CHECK(listed->total == 1);
  CHECK(data->log.size() == reads); // all of it from the cache

  // Our own write answers with what it committed even when a newer copy from the feed got
  // into the cache first; the cache keeps the newer one.
  data->rows["alice"][id].version = 5; // the database has seen versions 3..5 meanwhile
  task_cmd toggle = by_id(op::complete, id);
  auto newer = cached(id);
  newer.version = 9;
  newer.title = "newest";
  caf::anon_send(alice, atom::apply::value, change_of(task_change::kind::updated, newer));
  run();
  auto done = ask<task_result>(alice, atom::exec::value, toggle);
  REQUIRE(done);
  CHECK(done->rows.at(0).version == 6);
  CHECK(done->json.find("\"title\":\"milk\"") != std::string::npos); // what it committed
  CHECK(cached(id).title == "newest");

  // A late "created" of a row this manager deleted does not bring it back.
  auto gone = ask<task_result>(alice, atom::exec::value, test::create_cmd("short-lived"));
  REQUIRE(gone);
  auto gone_row = gone->rows.at(0);
  REQUIRE(ask<task_result>(alice, atom::exec::value, by_id(op::remove, gone_row.id)));
  caf::anon_send(alice, atom::apply::value, change_of(task_change::kind::created, gone_row));
  run();
  reads = data->log.size();
  CHECK(fetch(gone_row.id).error() == errc::task_not_found);
  CHECK(data->log.size() == reads + 1); // not held: the database answered

  // A row too big for the notification: the cache is dropped and reloads on the next read.
  caf::anon_send(alice, atom::apply::value, change_of(task_change::kind::unknown, base));
  run();
  reads = data->log.size();
  REQUIRE(ask<task_result>(alice, atom::exec::value, list));
  CHECK(data->log.size() == reads + 1);
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(manager_fixture, "a fetch the cache cannot answer asks the database (a task "
                                  "created on another instance a moment ago)") {
  auto alice = spawn_manager("alice");
  milk_cached(alice);
  // Committed by another instance; its notification has not arrived yet.
  task t;
  t.id = 777;
  t.title = "elsewhere";
  t.version = 1;
  data->rows["alice"][777] = t;
  auto got = ask<task_result>(alice, atom::exec::value, by_id(op::fetch, 777));
  REQUIRE(got);
  CHECK(got->rows.at(0).title == "elsewhere");
  CHECK(got->json.find("\"elsewhere\"") != std::string::npos);
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(manager_fixture, "If-Match is checked against the database, not a cache that "
                                  "may be stale") {
  auto alice = spawn_manager("alice");
  auto id = milk_cached(alice);
  // Another instance changed the row; this cache has not heard of it yet.
  data->rows["alice"][id].title = "changed elsewhere";
  ++data->rows["alice"][id].version;
  std::string stale_json, fresh_json;
  write_task(fresh_json, data->rows["alice"][id]);
  auto stale = ask<task_result>(alice, atom::exec::value, by_id(op::fetch, id));
  REQUIRE(stale);
  auto upd = by_id(op::update, id);
  upd.patch.title = "mine";
  upd.if_match = etag_of(stale->json); // the cache's tag: a lost update if it were believed
  auto refused = ask<task_result>(alice, atom::exec::value, upd);
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == errc::precondition_failed);
  upd.if_match = etag_of(fresh_json); // the current tag, which the cache does not know yet
  auto done = ask<task_result>(alice, atom::exec::value, upd);
  REQUIRE(done);
  CHECK(done->rows.at(0).title == "mine");
  caf::anon_send_exit(alice, caf::exit_reason::user_shutdown);
}
