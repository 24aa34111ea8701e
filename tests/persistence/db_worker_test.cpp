// Runs the DB pool and workers against the real PostgreSQL that scripts/test starts.

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <thread>

#include <unistd.h>

#include <pqxx/pqxx>

#include "persistence/db_pool.hpp"
#include "persistence/migrations.hpp"
#include "test_database.hpp"
#include "persistence/sql.hpp"

using namespace todo;

namespace {

using test::database_url;

std::string fresh_user() {
  static std::atomic<int> n{0};
  return "persist-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

caf::actor_system_config& quiet(caf::actor_system_config& cfg) {
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  return cfg;
}

struct pool_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{quiet(cfg)};
  db_actor pool;
  caf::scoped_actor self{sys};
  explicit pool_fixture(bool prepared = true) {
    db::migrate(database_url());
    db::db_config c;
    c.conninfo = database_url();
    c.pool_size = 2;
    c.prepared = prepared;
    pool = db::spawn_db_pool(sys, c);
  }
  ~pool_fixture() {
    self->send_exit(pool, caf::exit_reason::user_shutdown);
  }
  caf::expected<task_result> exec(const std::string& user, task_cmd cmd) {
    caf::expected<task_result> out{caf::make_error(caf::sec::request_timeout)};
    self->request(pool, std::chrono::seconds(10), atom::exec::value, user, std::move(cmd))
      .receive([&](task_result& r) { out = std::move(r); },
               [&](caf::error& e) { out = std::move(e); });
    return out;
  }
  task make(const std::string& user, std::string title) {
    task_cmd c;
    c.kind = op::create;
    c.patch.title = std::move(title);
    auto r = exec(user, c);
    REQUIRE(r);
    return r->rows.at(0);
  }
};

task_cmd cmd_for(op kind, int64_t id = 0) {
  task_cmd c;
  c.kind = kind;
  c.id = id;
  return c;
}

// DB_PREPARED=false: what runs behind a pooler in transaction mode.
struct unprepared_pool_fixture : pool_fixture {
  unprepared_pool_fixture() : pool_fixture(false) {
  }
};

} // namespace

TEST_CASE("migrations run concurrently from several instances without colliding") {
  auto url = database_url();
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      try {
        db::migrate(url);
      } catch (...) {
        ++failures;
      }
    });
  for (auto& t : ts)
    t.join();
  CHECK(failures == 0);
  pqxx::connection c{url};
  pqxx::work w{c};
  auto n = w.exec("SELECT count(*) FROM schema_migrations")[0][0].as<int>();
  CHECK(n == static_cast<int>(db::embedded_migrations().size()));
  // The primary key and the list index (user_id first, serving every query); the
  // single-column ones were dropped by 003, and 004 took `completed` out of the list index.
  auto idx = w.exec("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes "
                    "WHERE tablename = 'tasks'")[0][0].as<std::string>();
  CHECK(idx == "tasks_pkey,tasks_user_created_idx");
}

TEST_CASE("a toggle and a rename are HOT updates (no indexed column changes)") {
  // 004 took `completed` out of the list index; with it in, a toggle inserted a new entry into
  // every index of the table. The statements are the service's own (sql::all_statements).
  auto url = database_url();
  db::migrate(url);
  pqxx::connection c{url};
  for (const auto& s : sql::all_statements())
    c.prepare(s.name, s.text);
  pqxx::work w{c};
  auto user = fresh_user();
  const char* null = nullptr;
  auto id = w.exec_prepared("create", user, "hot", null)[0]["id"].as<int64_t>();
  w.exec_prepared("complete", id, user, null);                        // toggle
  w.exec_prepared("complete", id, user, "true");                      // set
  w.exec_prepared("update", id, user, "renamed", "false", null, null); // rename
  auto counts = w.exec("SELECT pg_stat_get_xact_tuples_updated('tasks'::regclass), "
                       "pg_stat_get_xact_tuples_hot_updated('tasks'::regclass)")[0];
  CHECK(counts[0].as<int>() == 3);
  CHECK(counts[1].as<int>() == 3);
  auto ff = w.exec("SELECT reloptions::text FROM pg_class WHERE relname = 'tasks'")[0][0];
  CHECK(ff.c_str() == std::string{"{fillfactor=85}"});
}

TEST_CASE_METHOD(pool_fixture, "the pool creates, reads, updates, toggles and deletes tasks") {
  auto user = fresh_user();
  auto t = make(user, "first");
  CHECK(t.id > 0);
  CHECK(t.title == "first");
  CHECK_FALSE(t.description);
  CHECK_FALSE(t.completed);
  CHECK(t.created_us == t.updated_us);

  auto got = exec(user, cmd_for(op::fetch, t.id));
  REQUIRE(got);
  CHECK(got->rows.at(0).title == "first");

  auto upd = cmd_for(op::update, t.id);
  upd.patch.set_description = true;
  upd.patch.description = "details";
  auto u = exec(user, upd);
  REQUIRE(u);
  CHECK(u->rows.at(0).title == "first"); // absent fields keep their value
  CHECK(u->rows.at(0).description == std::optional<std::string>{"details"});
  CHECK(u->rows.at(0).updated_us >= t.updated_us);

  auto empty = exec(user, cmd_for(op::update, t.id));
  REQUIRE(empty);
  CHECK(empty->rows.at(0).updated_us == u->rows.at(0).updated_us); // {} changes nothing

  auto tg = exec(user, cmd_for(op::complete, t.id));
  REQUIRE(tg);
  CHECK(tg->rows.at(0).completed);
  auto set = cmd_for(op::complete, t.id);
  set.patch.completed = true;
  auto s1 = exec(user, set);
  REQUIRE(s1);
  CHECK(s1->rows.at(0).completed); // setting is idempotent

  auto other = exec(fresh_user(), cmd_for(op::fetch, t.id));
  REQUIRE_FALSE(other);
  CHECK(other.error() == errc::task_not_found);

  REQUIRE(exec(user, cmd_for(op::remove, t.id)));
  auto gone = exec(user, cmd_for(op::remove, t.id));
  REQUIRE_FALSE(gone);
  CHECK(gone.error() == errc::task_not_found);
}

TEST_CASE_METHOD(pool_fixture, "the pool lists with filter, order and paging") {
  auto user = fresh_user();
  std::vector<int64_t> ids;
  for (auto title : {"b", "a", "c", "d"})
    ids.push_back(make(user, title).id);
  auto done = cmd_for(op::complete, ids[1]);
  REQUIRE(exec(user, done));

  auto list = cmd_for(op::list);
  auto all = exec(user, list);
  REQUIRE(all);
  REQUIRE(all->rows.size() == 4);
  CHECK(all->total == 4);
  CHECK(all->rows[0].id == ids[3]); // default: newest first

  list.query.sort = task_sort::title;
  list.query.descending = false;
  auto by_title = exec(user, list);
  REQUIRE(by_title);
  CHECK(by_title->rows[0].title == "a");
  CHECK(by_title->rows[3].title == "d");

  list.query.status = task_status::completed;
  auto completed = exec(user, list);
  REQUIRE(completed);
  REQUIRE(completed->rows.size() == 1);
  CHECK(completed->rows[0].id == ids[1]);

  list.query.status = task_status::pending;
  list.query.limit = 2;
  list.query.offset = 1;
  auto page = exec(user, list);
  REQUIRE(page);
  CHECK(page->rows.size() == 2);
  CHECK(page->total == 3);

  list.query.offset = 10;
  auto past = exec(user, list);
  REQUIRE(past);
  CHECK(past->rows.empty());
  CHECK(past->total == 3); // the count survives paging past the end
}

TEST_CASE_METHOD(pool_fixture, "workers reconnect by themselves after their connections drop") {
  auto user = fresh_user();
  auto t = make(user, "before");
  {
    pqxx::connection c{database_url()};
    pqxx::nontransaction n{c};
    n.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
           "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  }
  // The first calls may see the broken connection (never a false success); soon all succeed.
  int failures = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = exec(user, cmd_for(op::fetch, t.id));
    if (!r) {
      CHECK(r.error() == errc::db_unavailable);
      ++failures;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  CHECK(failures <= 2);
  auto again = exec(user, cmd_for(op::fetch, t.id));
  REQUIRE(again);
  CHECK(again->rows.at(0).title == "before");
  bool ok = false;
  self->request(pool, std::chrono::seconds(5), atom::ping::value)
    .receive([&](bool b) { ok = b; }, [&](caf::error&) { ok = false; });
  CHECK(ok);
}

TEST_CASE("a pool pointed at a dead database answers db_unavailable quickly") {
  caf::actor_system_config cfg;
  caf::actor_system sys{quiet(cfg)};
  db::db_config c;
  c.conninfo = "postgresql://127.0.0.1:1/none"; // nothing listens on port 1
  c.pool_size = 1;
  c.timeout = std::chrono::seconds(1);
  auto pool = db::spawn_db_pool(sys, c);
  caf::scoped_actor self{sys};
  auto start = std::chrono::steady_clock::now();
  task_cmd list;
  list.kind = op::list;
  caf::error err;
  self->request(pool, std::chrono::seconds(10), atom::exec::value, std::string{"x"}, list)
    .receive([&](task_result&) {}, [&](caf::error& e) { err = e; });
  CHECK(err == errc::db_unavailable);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
  self->send_exit(pool, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(pool_fixture, "a worker runs a group commit of many users' mutations") {
  db::db_config c;
  c.conninfo = database_url();
  auto worker = sys.spawn<caf::detached>(db::db_worker, c);
  auto batch = [&](std::vector<db_job> jobs) {
    std::vector<db_outcome> out;
    self->request(worker, std::chrono::seconds(10), atom::batch::value, std::move(jobs))
      .receive([&](std::vector<db_outcome>& r) { out = std::move(r); },
               [&](caf::error&) { FAIL("batch failed"); });
    return out;
  };
  auto a = fresh_user(), b = fresh_user(), d = fresh_user(), e = fresh_user();
  auto ta = make(a, "a1");
  auto tb = make(b, "b1");
  auto td = make(d, "d1");
  task_cmd create_c;
  create_c.kind = op::create;
  create_c.patch.title = "quote \" and \\ backslash, {braces}";
  create_c.patch.description = "NULL";
  auto toggle_a = cmd_for(op::complete, ta.id);
  auto update_b = cmd_for(op::update, tb.id);
  update_b.patch.title = "b2";
  update_b.patch.set_description = true; // to null
  auto remove_d = cmd_for(op::remove, td.id);
  auto toggle_missing = cmd_for(op::complete, ta.id); // e does not own it
  auto remove_missing = cmd_for(op::remove, tb.id);   // nor does f
  // Four kinds in one statement (write_many); each user once.
  auto out = batch({{fresh_user(), create_c}, {a, toggle_a}, {b, update_b}, {d, remove_d},
                    {e, toggle_missing}, {fresh_user(), remove_missing}});
  REQUIRE(out.size() == 6);
  CHECK(out[5].code == errc::task_not_found);
  CHECK(exec(b, cmd_for(op::fetch, tb.id))->rows.at(0).title == "b2");
  REQUIRE(out[0].code == errc::none);
  CHECK(out[0].result.rows.at(0).title == "quote \" and \\ backslash, {braces}");
  CHECK(out[0].result.rows.at(0).description == std::optional<std::string>{"NULL"});
  REQUIRE(out[1].code == errc::none);
  CHECK(out[1].result.rows.at(0).completed);
  REQUIRE(out[2].code == errc::none);
  CHECK(out[2].result.rows.at(0).title == "b2");
  CHECK(out[2].result.rows.at(0).version == tb.version + 1);
  CHECK_FALSE(out[2].result.rows.at(0).description);
  CHECK(out[3].code == errc::none);
  CHECK(out[4].code == errc::task_not_found);
  CHECK(exec(d, cmd_for(op::fetch, td.id)).error() == errc::task_not_found);
  CHECK(exec(a, cmd_for(op::fetch, ta.id))->rows.at(0).completed);
  // The same user twice cannot be keyed by user: it runs statement by statement, in order.
  auto twice = batch({{a, cmd_for(op::complete, ta.id)}, {a, cmd_for(op::complete, ta.id)}});
  REQUIRE(twice.size() == 2);
  CHECK_FALSE(twice[0].result.rows.at(0).completed);
  CHECK(twice[1].result.rows.at(0).completed);
  self->send_exit(worker, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(pool_fixture, "a group commit PostgreSQL rolls back for a deadlock is run again, "
                               "row by row, and every write commits") {
  db::db_config c;
  c.conninfo = database_url();
  auto worker = sys.spawn<caf::detached>(db::db_worker, c);
  auto a = fresh_user(), b = fresh_user();
  auto ta = make(a, "a");
  auto tb = make(b, "b");
  // Another writer (another instance, psql) holds b's row, and will want a's.
  pqxx::connection other{database_url()};
  pqxx::work hold{other};
  // This side never runs the deadlock check first: PostgreSQL must pick the group commit.
  hold.exec("SET LOCAL deadlock_timeout = '20s'");
  hold.exec("UPDATE tasks SET title = title WHERE id = " + std::to_string(tb.id));
  // The group commit locks a's row, then waits for b's.
  auto pending = self->request(worker, std::chrono::seconds(20), atom::batch::value,
                               std::vector<db_job>{{a, cmd_for(op::complete, ta.id)},
                                                   {b, cmd_for(op::complete, tb.id)}});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Now the other writer wants a's row: a lock cycle, found after the group commit's 1 s.
  std::thread closer{[&] {
    hold.exec("UPDATE tasks SET title = title WHERE id = " + std::to_string(ta.id));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    hold.commit();
  }};
  std::vector<db_outcome> out;
  pending.receive([&](std::vector<db_outcome>& r) { out = std::move(r); },
                  [&](caf::error&) { FAIL("batch failed"); });
  closer.join();
  REQUIRE(out.size() == 2);
  for (const auto& o : out) {
    REQUIRE(o.code == errc::none); // not 503: nothing was lost, it ran again
    CHECK(o.result.rows.at(0).completed);
  }
  CHECK(exec(a, cmd_for(op::fetch, ta.id))->rows.at(0).completed);
  CHECK(exec(b, cmd_for(op::fetch, tb.id))->rows.at(0).completed);
  self->send_exit(worker, caf::exit_reason::user_shutdown);
}

TEST_CASE("connection strings get timeouts and keepalives unless they name them") {
  auto url = db::with_timeouts("postgresql://u@h/db", std::chrono::milliseconds(2000));
  CHECK(url == "postgresql://u@h/db?connect_timeout=2&keepalives=1&keepalives_idle=10"
               "&keepalives_interval=5&keepalives_count=3&tcp_user_timeout=5000");
  auto neon = db::with_timeouts("postgresql://u:p@ep.neon.tech/db?sslmode=require"
                                       "&connect_timeout=9",
                                       std::chrono::milliseconds(3000));
  CHECK(neon.find("sslmode=require&connect_timeout=9&keepalives=1") != std::string::npos);
  CHECK(neon.find("connect_timeout=3") == std::string::npos);
  CHECK(neon.find("tcp_user_timeout=6000") != std::string::npos);
  auto kv = db::with_timeouts("host=/tmp dbname=todo", std::chrono::milliseconds(500));
  CHECK(kv.rfind("host=/tmp dbname=todo connect_timeout=1 keepalives=1", 0) == 0);
}

TEST_CASE_METHOD(pool_fixture, "the pool runs a user's queued writes together, in order, each "
                               "with its own outcome") {
  auto a = fresh_user(), b = fresh_user();
  auto x = make(a, "x");
  auto y = make(a, "y");
  auto other = make(b, "b's");
  auto rename = cmd_for(op::update, x.id);
  rename.patch.title = "x renamed";
  task_cmd create;
  create.kind = op::create;
  create.patch.title = "new";
  std::vector<db_job> seq{{a, cmd_for(op::complete, x.id)}, {a, rename},
                          {a, cmd_for(op::complete, x.id)}, {a, cmd_for(op::remove, y.id)},
                          {a, cmd_for(op::complete, other.id)}, // not a's: 404, alone
                          {a, create}};
  // Another user's write queued at the same time may share the transaction.
  caf::scoped_actor second{sys};
  auto single = second->request(pool, std::chrono::seconds(10), atom::exec::value, b,
                                cmd_for(op::complete, other.id));
  std::vector<db_outcome> out;
  self->request(pool, std::chrono::seconds(10), atom::batch::value, std::move(seq))
    .receive([&](std::vector<db_outcome>& r) { out = std::move(r); },
             [&](caf::error&) { FAIL("batch failed"); });
  REQUIRE(out.size() == 6);
  REQUIRE(out[0].code == errc::none);
  CHECK(out[0].result.rows.at(0).completed);
  REQUIRE(out[1].code == errc::none);
  CHECK(out[1].result.rows.at(0).title == "x renamed");
  CHECK(out[1].result.rows.at(0).completed); // saw the first toggle
  REQUIRE(out[2].code == errc::none);
  CHECK_FALSE(out[2].result.rows.at(0).completed);
  CHECK(out[3].code == errc::none);
  CHECK(out[4].code == errc::task_not_found);
  REQUIRE(out[5].code == errc::none);
  CHECK(out[5].result.rows.at(0).title == "new");
  single.receive([](task_result& r) { CHECK(r.rows.at(0).completed); },
                 [](caf::error&) { FAIL("b's toggle failed"); });
  auto now_x = exec(a, cmd_for(op::fetch, x.id));
  REQUIRE(now_x);
  CHECK(now_x->rows.at(0).title == "x renamed");
  CHECK_FALSE(now_x->rows.at(0).completed);
  CHECK(exec(a, cmd_for(op::fetch, y.id)).error() == errc::task_not_found);
  CHECK(exec(b, cmd_for(op::fetch, other.id))->rows.at(0).completed); // b's own toggle
}

TEST_CASE_METHOD(unprepared_pool_fixture, "with DB_PREPARED=false every statement runs unnamed "
                                          "with the same results") {
  auto user = fresh_user();
  auto t = make(user, "unnamed");
  auto got = exec(user, cmd_for(op::fetch, t.id));
  REQUIRE(got);
  CHECK(got->rows.at(0).title == "unnamed");
  auto upd = cmd_for(op::update, t.id);
  upd.patch.set_description = true;
  upd.patch.description = "d";
  auto u = exec(user, upd);
  REQUIRE(u);
  CHECK(u->rows.at(0).description == std::optional<std::string>{"d"});
  auto tg = exec(user, cmd_for(op::complete, t.id));
  REQUIRE(tg);
  CHECK(tg->rows.at(0).completed);
  make(user, "second");
  task_cmd list;
  list.kind = op::list;
  list.query.limit = 1;
  list.query.offset = 5; // past the end: the count statement
  auto page = exec(user, list);
  REQUIRE(page);
  CHECK(page->rows.empty());
  CHECK(page->total == 2);
  list.query.offset = 0;
  page = exec(user, list);
  REQUIRE(page);
  CHECK(page->rows.size() == 1);
  CHECK(page->total == 2);
  // An Idempotency-Key: claim, write and answer in one transaction; a replay changes nothing.
  task_cmd keyed;
  keyed.kind = op::create;
  keyed.patch.title = "keyed";
  keyed.idem_key = "k-" + user;
  keyed.idem_fingerprint = "fp";
  auto k1 = exec(user, keyed);
  REQUIRE(k1);
  CHECK_FALSE(k1->replayed);
  auto k2 = exec(user, keyed);
  REQUIRE(k2);
  CHECK(k2->replayed);
  // A group commit (set statements with array parameters) on a worker of its own.
  db::db_config c;
  c.conninfo = database_url();
  c.prepared = false;
  auto worker = sys.spawn<caf::detached>(db::db_worker, c);
  auto other = fresh_user();
  task_cmd create_c;
  create_c.kind = op::create;
  create_c.patch.title = "in a batch";
  std::vector<db_outcome> out;
  self->request(worker, std::chrono::seconds(10), atom::batch::value,
                std::vector<db_job>{{other, create_c}, {user, cmd_for(op::complete, t.id)}})
    .receive([&](std::vector<db_outcome>& r) { out = std::move(r); },
             [&](caf::error&) { FAIL("batch failed"); });
  REQUIRE(out.size() == 2);
  CHECK(out[0].code == errc::none);
  REQUIRE(out[1].code == errc::none);
  CHECK_FALSE(out[1].result.rows.at(0).completed);
  bool alive = false;
  self->request(worker, std::chrono::seconds(10), atom::ping::value)
    .receive([&](bool ok) { alive = ok; }, [&](caf::error&) {});
  CHECK(alive);
  self->send_exit(worker, caf::exit_reason::user_shutdown);
  REQUIRE(exec(user, cmd_for(op::remove, t.id)));
}
