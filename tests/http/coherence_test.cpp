// The TaskManager cache against the truth in PostgreSQL: one instance, two instances, and
// writes from outside; group commit with a failing statement.

#include <catch2/catch.hpp>

#include <cctype>
#include <csignal>
#include <map>
#include <fstream>
#include <sstream>
#include <cstdlib>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <unistd.h>

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include "actors/model/task_json.hpp"
#include "http/json_codec.hpp"
#include "tests/http/http_client.hpp"

using namespace todo::test;
namespace json = boost::json;

namespace {

// Returns the user's tasks as the API shows them, straight from PostgreSQL, newest first.
std::string sql_view(const std::string& user) {
  pqxx::connection c{test_database_url()};
  pqxx::work w{c};
  auto r = w.exec_params(
    "SELECT id, title, description, completed, "
    "(extract(epoch from created_at) * 1000000)::int8, "
    "(extract(epoch from updated_at) * 1000000)::int8 "
    "FROM tasks WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
    user);
  std::vector<todo::task> ts;
  for (const auto& row : r) {
    todo::task t;
    t.id = row[0].as<int64_t>();
    t.title = row[1].as<std::string>();
    if (!row[2].is_null())
      t.description = row[2].as<std::string>();
    t.completed = row[3].as<bool>();
    t.created_us = row[4].as<int64_t>();
    t.updated_us = row[5].as<int64_t>();
    ts.push_back(t);
  }
  std::string out;
  todo::write_tasks(out, ts);
  return out;
}

// Applies a random mix of mutations for `user` through the given clients.
void random_mutations(std::vector<http_client*> clients, const std::string& user, int steps,
                      unsigned seed) {
  header_list auth{{"Authorization", "Bearer " + token_for(user)},
                   {"Content-Type", "application/json"}};
  std::mt19937 rng{seed};
  std::vector<std::string> ids;
  for (int i = 0; i < steps; ++i) {
    auto& c = *clients[rng() % clients.size()];
    auto pick = [&] { return ids.empty() ? std::string{"1"} : ids[rng() % ids.size()]; };
    switch (rng() % 5) {
      case 0:
      case 1: {
        auto r = c.request("POST", "/api/tasks", auth, R"({"title":"t)" + std::to_string(i) + "\"}");
        REQUIRE(r.status == 201);
        ids.push_back(std::to_string(json::parse(r.body).at("id").as_int64()));
        break;
      }
      case 2:
        c.request("PATCH", "/api/tasks/" + pick() + "/complete", {auth[0]});
        break;
      case 3:
        c.request("PUT", "/api/tasks/" + pick(), auth,
                  R"({"title":"u)" + std::to_string(i) + R"(","description":"d"})");
        break;
      default:
        c.request("DELETE", "/api/tasks/" + pick(), {auth[0]});
    }
  }
}

// Polls until the instance's list equals the SQL view, for at most `patience`.
bool converges(http_client& c, const std::string& user, std::chrono::milliseconds patience) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  header_list auth{{"Authorization", "Bearer " + token_for(user)}};
  do {
    if (c.request("GET", "/api/tasks", auth).body == sql_view(user))
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

// Stated bound for a second instance to see a write (LISTEN/NOTIFY delivery).
constexpr auto coherence_bound = std::chrono::milliseconds(1000);

} // namespace

TEST_CASE("after random mutations the API's list equals a direct SQL query") {
  auto& server = shared_server();
  http_client c{server.port()};
  auto user = fresh_user("coherent");
  random_mutations({&c}, user, 120, 7);
  header_list auth{{"Authorization", "Bearer " + token_for(user)}};
  CHECK(c.request("GET", "/api/tasks", auth).body == sql_view(user)); // no delay: one instance
}

TEST_CASE("two instances on one database stay coherent within a bounded delay") {
  auto& first = shared_server();
  server_process second;
  second.start();
  http_client a{first.port()};
  http_client b{second.port()};
  auto user = fresh_user("two");
  header_list auth{{"Authorization", "Bearer " + token_for(user)}};
  // Both instances cache the user before the writes start.
  a.request("GET", "/api/tasks", auth);
  b.request("GET", "/api/tasks", auth);
  random_mutations({&a, &b}, user, 120, 11);
  CHECK(converges(a, user, coherence_bound));
  CHECK(converges(b, user, coherence_bound));
  // A write from outside the service (psql, a migration, ...) reaches both caches too.
  {
    pqxx::connection c{test_database_url()};
    pqxx::work w{c};
    w.exec_params("INSERT INTO tasks (user_id, title) VALUES ($1, 'from psql')", user);
    w.commit();
  }
  CHECK(converges(a, user, coherence_bound));
  CHECK(converges(b, user, coherence_bound));
  CHECK(a.request("GET", "/api/tasks", auth).body.find("from psql") != std::string::npos);
  // Per-user toggles across instances rest on the database's atomic UPDATE.
  header_list wauth{auth[0], {"Content-Type", "application/json"}};
  auto made = a.request("POST", "/api/tasks", wauth, R"({"title":"shared flip"})");
  auto id = std::to_string(json::parse(made.body).at("id").as_int64());
  std::vector<std::thread> ts;
  for (int i = 0; i < 20; ++i)
    ts.emplace_back([&, i] {
      http_client mine{i % 2 ? first.port() : second.port()};
      CHECK(mine.request("PATCH", "/api/tasks/" + id + "/complete", {auth[0]}).status == 200);
    });
  for (auto& t : ts)
    t.join();
  CHECK(converges(a, user, coherence_bound));
  CHECK(json::parse(a.request("GET", "/api/tasks/" + id, auth).body).at("completed") == false);
  second.stop(SIGTERM);
}

namespace {

// Reads one unlabelled counter, or the counter with `labels`, from an instance's /metrics.
double metric(http_client& c, const std::string& name, const std::string& labels = "") {
  auto body = c.request("GET", "/metrics").body;
  auto key = name + (labels.empty() ? "" : "{" + labels + "}") + " ";
  auto at = body.find("\n" + key);
  REQUIRE(at != std::string::npos);
  return std::stod(body.substr(at + 1 + key.size()));
}

} // namespace

TEST_CASE("another instance's writes update a cache in place: no reload, reads stay cached") {
  server_process a_proc, b_proc;
  a_proc.start();
  b_proc.start();
  http_client a{a_proc.port()};
  http_client b{b_proc.port()};
  auto user = fresh_user("inplace");
  header_list auth{{"Authorization", "Bearer " + token_for(user)}};
  header_list wauth{auth[0], {"Content-Type", "application/json"}};
  for (int i = 0; i < 5; ++i)
    REQUIRE(a.request("POST", "/api/tasks", wauth, R"({"title":"seed"})").status == 201);
  REQUIRE(a.request("GET", "/api/tasks", auth).status == 200); // A caches the user
  auto loads = metric(a, "todo_cache_loads_total");
  auto applied = metric(a, "todo_cache_changes_total", "result=\"applied\"");
  // B writes: creates, toggles, edits, deletes.
  random_mutations({&b}, user, 60, 23);
  CHECK(converges(a, user, coherence_bound));
  // Fresh from B, read at once on A by id: answered (the database, if the notification is
  // still on its way), never a 404.
  for (int i = 0; i < 20; ++i) {
    auto made = b.request("POST", "/api/tasks", wauth, R"({"title":"fresh"})");
    REQUIRE(made.status == 201);
    auto id = std::to_string(json::parse(made.body).at("id").as_int64());
    auto got = a.request("GET", "/api/tasks/" + id, auth);
    CHECK(got.status == 200);
    CHECK(got.body == made.body);
  }
  CHECK(converges(a, user, coherence_bound));
  // All of it reached A's cache in place: no reload of the user's tasks.
  CHECK(metric(a, "todo_cache_loads_total") == loads);
  auto now_applied = metric(a, "todo_cache_changes_total", "result=\"applied\"");
  INFO("changes applied on A: " << now_applied - applied);
  CHECK(now_applied - applied >= 60);
  // A psql UPDATE that does not touch `version` still reaches A's cache.
  {
    pqxx::connection c{test_database_url()};
    pqxx::work w{c};
    w.exec_params("UPDATE tasks SET title = 'psql was here' WHERE user_id = $1", user);
    w.commit();
  }
  CHECK(converges(a, user, coherence_bound));
  CHECK(metric(a, "todo_cache_loads_total") == loads);
  b_proc.stop(SIGTERM);
  a_proc.stop(SIGTERM);
}

TEST_CASE("group commit: one failing statement does not fail its neighbours") {
  server_process server{{{"DB_POOL_SIZE", "1"}}};
  server.start();
  struct constraint_guard {
    constraint_guard() {
      pqxx::connection c{test_database_url()};
      pqxx::work w{c};
      w.exec("ALTER TABLE tasks ADD CONSTRAINT test_poison CHECK (title <> 'poison') NOT VALID");
      w.commit();
    }
    ~constraint_guard() {
      pqxx::connection c{test_database_url()};
      pqxx::work w{c};
      w.exec("ALTER TABLE tasks DROP CONSTRAINT IF EXISTS test_poison");
      w.commit();
    }
  } guard;
  std::vector<std::string> users;
  for (int i = 0; i < 40; ++i)
    users.push_back(fresh_user("batch"));
  std::mutex m;
  std::vector<unsigned> statuses(users.size());
  std::vector<std::thread> ts;
  for (size_t i = 0; i < users.size(); ++i)
    ts.emplace_back([&, i] {
      http_client c{server.port()};
      auto title = i == 17 ? std::string{"poison"} : "ok " + std::to_string(i);
      auto r = c.request("POST", "/api/tasks",
                         {{"Authorization", "Bearer " + token_for(users[i])},
                          {"Content-Type", "application/json"}},
                         R"({"title":")" + title + "\"}");
      std::lock_guard<std::mutex> g{m};
      statuses[i] = r.status;
    });
  for (auto& t : ts)
    t.join();
  pqxx::connection c{test_database_url()};
  pqxx::work w{c};
  for (size_t i = 0; i < users.size(); ++i) {
    auto rows = w.exec_params("SELECT count(*) FROM tasks WHERE user_id = $1", users[i])[0][0]
                  .as<int>();
    INFO("user " << i);
    if (i == 17) {
      CHECK(statuses[i] == 400);
      CHECK(rows == 0);
    } else {
      CHECK(statuses[i] == 201);
      CHECK(rows == 1);
    }
  }
}

TEST_CASE("group commit: concurrent writes share transactions") {
  server_process server{{{"DB_POOL_SIZE", "1"}}};
  server.start();
  auto prefix = fresh_user("gc");
  std::vector<std::thread> ts;
  std::atomic<int> created{0};
  for (int i = 0; i < 48; ++i)
    ts.emplace_back([&, i] {
      http_client c{server.port()};
      for (int k = 0; k < 5; ++k) {
        auto r = c.request("POST", "/api/tasks",
                           {{"Authorization", "Bearer " + token_for(prefix + "-" +
                                                                    std::to_string(i))},
                            {"Content-Type", "application/json"}},
                           R"({"title":"x"})");
        if (r.status == 201)
          ++created;
      }
    });
  for (auto& t : ts)
    t.join();
  CHECK(created == 240);
  pqxx::connection c{test_database_url()};
  pqxx::work w{c};
  auto r = w.exec_params("SELECT count(*), count(DISTINCT created_at) FROM tasks "
                         "WHERE user_id LIKE $1",
                         prefix + "-%")[0];
  CHECK(r[0].as<int>() == 240);
  // One transaction gives its rows one now(): fewer distinct stamps than rows means batches.
  CHECK(r[1].as<int>() < 240);
}

TEST_CASE("over CACHE_MAX_MB the least recently used users are evicted and reload correctly") {
  // Three users of ~0.7 MB each (300 tasks with 1000-byte descriptions) against a 1 MB
  // budget: each request for one of them finds the others over it.
  auto log_path = "/tmp/todo-cache-budget-" + std::to_string(::getpid()) + ".log";
  server_process server{{{"CACHE_MAX_MB", "1"}, {"LOG_LEVEL", "debug"}}, log_path};
  server.start();
  http_client c{server.port()};
  std::vector<std::string> users;
  for (int i = 0; i < 3; ++i)
    users.push_back(fresh_user("budget"));
  {
    pqxx::connection db{test_database_url()};
    pqxx::work w{db};
    for (const auto& u : users)
      w.exec_params("INSERT INTO tasks (user_id, title, description) "
                    "SELECT $1, 'seeded ' || g, repeat('d', 1000) FROM generate_series(1, 300) g",
                    u);
    w.commit();
  }
  auto auth = [](const std::string& u) {
    return header_list{{"Authorization", "Bearer " + token_for(u)}};
  };
  auto evictions = [&] {
    std::ifstream in{log_path};
    std::stringstream text;
    text << in.rdbuf();
    auto all = text.str();
    size_t n = 0;
    for (auto at = all.find("over CACHE_MAX_MB; evicted"); at != std::string::npos;
         at = all.find("over CACHE_MAX_MB; evicted", at + 1))
      ++n;
    return n;
  };
  for (int round = 0; round < 3; ++round) {
    for (const auto& u : users) {
      auto page = c.request("GET", "/api/tasks", auth(u));
      REQUIRE(page.status == 200);
      CHECK(page.header("x-total-count") == std::to_string(300 + round));
      CHECK(page.body == sql_view(u));
      // A write after the reload lands in the reloaded cache and in the database alike.
      auto h = auth(u);
      h.emplace_back("Content-Type", "application/json");
      auto made = c.request("POST", "/api/tasks", h,
                            R"({"title":"round )" + std::to_string(round) + R"("})");
      REQUIRE(made.status == 201);
      auto id = std::to_string(json::parse(made.body).at("id").as_int64());
      CHECK(c.request("GET", "/api/tasks/" + id, auth(u)).body == made.body);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(60)); // past the pause between evictions
  }
  for (const auto& u : users)
    CHECK(c.request("GET", "/api/tasks", auth(u)).body == sql_view(u));
  // The log writer flushes every few milliseconds.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(evictions() >= 3); // users were evicted, and came back whole
  CHECK(server.stop(SIGTERM) == 0);
  ::unlink(log_path.c_str());
}

TEST_CASE("TRACE_STAGES=1 prints where each write spent its time, at shutdown") {
  auto log_path = "/tmp/todo-trace-" + std::to_string(::getpid()) + ".log";
  server_process server{{{"TRACE_STAGES", "1"}, {"LOG_LEVEL", "info"}}, log_path};
  server.start();
  http_client c{server.port()};
  auto user = fresh_user("trace");
  header_list auth{{"Authorization", "Bearer " + token_for(user)}};
  header_list wauth{auth[0], {"Content-Type", "application/json"}};
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    auto made = c.request("POST", "/api/tasks", wauth, R"({"title":"traced"})");
    REQUIRE(made.status == 201);
    ids.push_back(std::to_string(json::parse(made.body).at("id").as_int64()));
  }
  for (int i = 0; i < 10; ++i)
    REQUIRE(c.request("PATCH", "/api/tasks/" + ids[static_cast<size_t>(i)] + "/complete", auth)
              .status == 200);
  for (int i = 0; i < 5; ++i)
    REQUIRE(c.request("DELETE", "/api/tasks/" + ids[static_cast<size_t>(i)], auth).status == 204);
  for (int i = 0; i < 10; ++i) // reads are not traced
    REQUIRE(c.request("GET", "/api/tasks", auth).status == 200);
  REQUIRE(server.stop(SIGTERM) == 0);
  std::ifstream in{log_path};
  std::string line;
  std::map<std::string, long> counts;
  while (std::getline(in, line)) {
    auto at = line.find("trace: ");
    if (at == std::string::npos)
      continue;
    auto rest = line.substr(at + 7);
    // "<stage name>   <count> <p50> <p90> <p99> <max>": the name may contain spaces.
    std::istringstream fields{rest};
    std::vector<std::string> words;
    for (std::string w; fields >> w;)
      words.push_back(w);
    if (words.size() < 6 || !std::isdigit(static_cast<unsigned char>(words[words.size() - 5][0])))
      continue;
    std::string name;
    for (size_t i = 0; i + 5 < words.size(); ++i)
      name += (name.empty() ? "" : " ") + words[i];
    counts[name] = std::stol(words[words.size() - 5]);
    // p50 <= p90 <= p99 <= max (all in microseconds)
    auto p50 = std::stol(words[words.size() - 4]);
    auto p99 = std::stol(words[words.size() - 2]);
    auto max = std::stol(words[words.size() - 1]);
    CHECK(p50 <= p99);
    CHECK(p99 <= max * 2 + 1); // bucket edges round up by < 1/8
  }
  CHECK(counts["total (session to session)"] == 35);
  CHECK(counts["token check"] == 35);
  CHECK(counts["to the user's TaskManager"] == 35);
  CHECK(counts["waiting for a DB worker"] == 35);
  CHECK(counts["statement + commit"] == 35);
  CHECK(counts["back to the courier"] == 35);
  if (std::getenv("KEEP_TRACE_LOG") == nullptr)
    ::unlink(log_path.c_str());
}
