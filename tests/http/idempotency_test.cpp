// Idempotency-Key (API.md §4, issue 14): a retried mutation gets the first answer, byte for
// byte, and changes nothing; on every mutation route, across restarts and instances.

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include "tests/http/http_client.hpp"

using namespace todo::test;
namespace json = boost::json;

namespace {

long sql_count(const std::string& query, const std::string& user) {
  pqxx::connection c{test_database_url()};
  pqxx::nontransaction tx{c};
  return tx.exec_params(query, user)[0][0].as<long>();
}

long tasks_of(const std::string& user) {
  return sql_count("SELECT count(*) FROM tasks WHERE user_id = $1", user);
}

long keys_of(const std::string& user) {
  return sql_count("SELECT count(*) FROM idempotency_keys WHERE user_id = $1", user);
}

header_list keyed(const std::string& user, const std::string& key, header_list extra = {}) {
  extra.emplace_back("Authorization", "Bearer " + token_for(user));
  extra.emplace_back("Content-Type", "application/json");
  extra.emplace_back("Idempotency-Key", key);
  return extra;
}

header_list plain(const std::string& user) {
  return {{"Authorization", "Bearer " + token_for(user)}, {"Content-Type", "application/json"}};
}

int64_t id_of(const http_response& r) {
  return json::parse(r.body).at("id").as_int64();
}

// A user of the shared server, a client, and a task made without a key.
struct idem {
  server_process& server = shared_server();
  http_client c{server.port()};
  std::string user = fresh_user("idem");
  std::string create_task() {
    auto created = c.request("POST", "/api/tasks", plain(user), R"({"title":"t"})");
    REQUIRE(created.status == 201);
    return std::to_string(id_of(created));
  }
};

// The same answer: status, body byte for byte, Location.
void check_same_answer(const http_response& first, const http_response& again) {
  CHECK(again.status == first.status);
  CHECK(again.body == first.body);
  CHECK(again.header("location") == first.header("location"));
}

} // namespace

TEST_CASE_METHOD(idem, "a create retried with its Idempotency-Key answers the first answer and makes one task") {
  auto first = c.request("POST", "/api/tasks", keyed(user, "create-1"), R"({"title":"once"})");
  REQUIRE(first.status == 201);
  CHECK_FALSE(first.has("idempotent-replayed"));
  for (int i = 0; i < 3; ++i) {
    auto again = c.request("POST", "/api/tasks", keyed(user, "create-1"), R"({"title":"once"})");
    check_same_answer(first, again);
    CHECK(again.header("idempotent-replayed") == "true");
  }
  CHECK(tasks_of(user) == 1);
  CHECK(keys_of(user) == 1);
  // The replay is the first answer even after the task changed.
  auto id = std::to_string(id_of(first));
  REQUIRE(c.request("PATCH", "/api/tasks/" + id, plain(user), R"({"title":"changed"})").status ==
          200);
  auto later = c.request("POST", "/api/tasks", keyed(user, "create-1"), R"({"title":"once"})");
  check_same_answer(first, later);
  // Another key is another request.
  auto other = c.request("POST", "/api/tasks", keyed(user, "create-2"), R"({"title":"once"})");
  CHECK(other.status == 201);
  CHECK(id_of(other) != id_of(first));
  CHECK(tasks_of(user) == 2);
}

TEST_CASE_METHOD(idem, "every mutation route replays instead of applying twice") {
  auto id = create_task();

  // A toggle retried does not toggle back.
  auto t1 = c.request("PATCH", "/api/tasks/" + id + "/complete", keyed(user, "toggle"));
  REQUIRE(t1.status == 200);
  CHECK(json::parse(t1.body).at("completed").as_bool());
  auto t2 = c.request("PATCH", "/api/tasks/" + id + "/complete", keyed(user, "toggle"));
  check_same_answer(t1, t2);
  CHECK(t2.header("idempotent-replayed") == "true");
  CHECK(json::parse(c.request("GET", "/api/tasks/" + id, plain(user)).body)
          .at("completed")
          .as_bool());

  // PUT and PATCH updates.
  for (std::string method : {"PUT", "PATCH"}) {
    auto key = "update-" + method;
    auto u1 = c.request(method, "/api/tasks/" + id, keyed(user, key), R"({"title":"u"})");
    REQUIRE(u1.status == 200);
    auto u2 = c.request(method, "/api/tasks/" + id, keyed(user, key), R"({"title":"u"})");
    check_same_answer(u1, u2);
    CHECK(u2.header("idempotent-replayed") == "true");
  }

  // The scoped route family is the same route: a retry may use either.
  auto scoped = "/api/" + user + "/tasks/" + id + "/complete";
  auto s1 = c.request("PATCH", scoped, keyed(user, "toggle-scoped"));
  REQUIRE(s1.status == 200);
  auto s2 = c.request("PATCH", "/api/tasks/" + id + "/complete", keyed(user, "toggle-scoped"));
  check_same_answer(s1, s2);
  CHECK(s2.header("idempotent-replayed") == "true");

  // A delete retried answers 204 again, not 404.
  auto d1 = c.request("DELETE", "/api/tasks/" + id, keyed(user, "delete"));
  REQUIRE(d1.status == 204);
  auto d2 = c.request("DELETE", "/api/tasks/" + id, keyed(user, "delete"));
  CHECK(d2.status == 204);
  CHECK(d2.body.empty());
  CHECK(d2.header("idempotent-replayed") == "true");
  CHECK(c.request("DELETE", "/api/tasks/" + id, plain(user)).status == 404);

  // A write that failed keeps no key: the same key runs again (and fails again).
  auto missing = c.request("PATCH", "/api/tasks/999999999999/complete", keyed(user, "nothing"));
  CHECK(missing.status == 404);
  CHECK_FALSE(missing.has("idempotent-replayed"));
  CHECK(c.request("PATCH", "/api/tasks/999999999999/complete", keyed(user, "nothing")).status ==
        404);
  // toggle, update-PUT, update-PATCH, toggle-scoped, delete; not the 404s
  CHECK(keys_of(user) == 5);
}

TEST_CASE_METHOD(idem, "a conditional write retried with its key gets its answer, not 412") {
  auto id = create_task();
  auto tag = c.request("GET", "/api/tasks/" + id, plain(user)).header("etag");
  REQUIRE_FALSE(tag.empty());
  auto w1 = c.request("PATCH", "/api/tasks/" + id, keyed(user, "cond", {{"If-Match", tag}}),
                      R"({"title":"v2"})");
  REQUIRE(w1.status == 200);
  // The ETag changed with the write; the retry still gets the first answer.
  auto w2 = c.request("PATCH", "/api/tasks/" + id, keyed(user, "cond", {{"If-Match", tag}}),
                      R"({"title":"v2"})");
  check_same_answer(w1, w2);
  CHECK(w2.header("idempotent-replayed") == "true");
  // A stale ETag under a new key is still 412, and keeps no key.
  auto stale = c.request("PATCH", "/api/tasks/" + id, keyed(user, "cond-2", {{"If-Match", tag}}),
                         R"({"title":"v3"})");
  CHECK(stale.status == 412);
  CHECK(keys_of(user) == 1);
}

TEST_CASE_METHOD(idem, "the same key with another request is 422; a malformed key is 400") {
  auto first = c.request("POST", "/api/tasks", keyed(user, "k"), R"({"title":"a"})");
  REQUIRE(first.status == 201);
  auto other_body = c.request("POST", "/api/tasks", keyed(user, "k"), R"({"title":"b"})");
  CHECK(other_body.status == 422);
  CHECK(json::parse(other_body.body).at("detail").is_string());
  auto id = std::to_string(id_of(first));
  auto other_route = c.request("PATCH", "/api/tasks/" + id + "/complete", keyed(user, "k"));
  CHECK(other_route.status == 422);
  CHECK(tasks_of(user) == 1);
  CHECK_FALSE(json::parse(c.request("GET", "/api/tasks/" + id, plain(user)).body)
                .at("completed")
                .as_bool());

  // The Structured Field string form ("...") names the same key as the bare form.
  auto quoted = c.request("POST", "/api/tasks", keyed(user, "\"k\""), R"({"title":"a"})");
  check_same_answer(first, quoted);

  for (std::string bad : {std::string{}, std::string(256, 'x'), std::string{"tab\there"},
                          std::string{"caf\xc3\xa9"}, std::string{"\"open"} + "\\x\""}) {
    INFO("key [" << bad << "]");
    auto r = c.request("POST", "/api/tasks", keyed(user, bad), R"({"title":"a"})");
    CHECK(r.status == 400);
    CHECK(json::parse(r.body).at("detail").is_string());
  }
  auto two = c.request("POST", "/api/tasks", keyed(user, "x", {{"Idempotency-Key", "y"}}),
                       R"({"title":"a"})");
  CHECK(two.status == 400);
  CHECK(c.request("POST", "/api/tasks", keyed(user, std::string(255, '~')), R"({"title":"a"})")
          .status == 201);
  CHECK(tasks_of(user) == 2);
}

TEST_CASE("different users with the same key get a task each") {
  auto& server = shared_server();
  http_client c{server.port()};
  auto alice = fresh_user("idem-a"), bob = fresh_user("idem-b");
  auto a = c.request("POST", "/api/tasks", keyed(alice, "shared"), R"({"title":"x"})");
  auto b = c.request("POST", "/api/tasks", keyed(bob, "shared"), R"({"title":"x"})");
  REQUIRE(a.status == 201);
  REQUIRE(b.status == 201);
  CHECK_FALSE(b.has("idempotent-replayed"));
  CHECK(id_of(a) != id_of(b));
  CHECK(tasks_of(alice) == 1);
  CHECK(tasks_of(bob) == 1);
}

TEST_CASE("20 concurrent duplicates make one task; the others are 409 until it is done") {
  auto& server = shared_server();
  auto user = fresh_user("idem");
  std::mutex m;
  std::vector<http_response> answers;
  std::vector<std::thread> ts;
  for (int i = 0; i < 20; ++i)
    ts.emplace_back([&] {
      http_client c{server.port()};
      auto r = c.request("POST", "/api/tasks", keyed(user, "burst"), R"({"title":"burst"})");
      std::lock_guard<std::mutex> lock{m};
      answers.push_back(std::move(r));
    });
  for (auto& t : ts)
    t.join();
  CHECK(tasks_of(user) == 1);
  const http_response* first = nullptr;
  int created = 0, conflicts = 0;
  for (const auto& r : answers) {
    INFO(r.status << " " << r.body);
    if (r.status == 409) {
      ++conflicts;
      CHECK(r.header("retry-after") == "1");
      continue;
    }
    REQUIRE(r.status == 201);
    if (!r.has("idempotent-replayed"))
      ++created;
    if (!first)
      first = &r;
    check_same_answer(*first, r);
  }
  CHECK(created == 1);
  REQUIRE(first != nullptr);
  // Each 409 retried (after its Retry-After) gets the same answer.
  http_client c{server.port()};
  for (int i = 0; i < conflicts; ++i) {
    auto again = c.request("POST", "/api/tasks", keyed(user, "burst"), R"({"title":"burst"})");
    check_same_answer(*first, again);
    CHECK(again.header("idempotent-replayed") == "true");
  }
  CHECK(tasks_of(user) == 1);
}

TEST_CASE_METHOD(idem, "a key whose first request is still running is 409 with Retry-After") {
  auto id = create_task();
  // Hold the task's row so that the first keyed toggle waits in the database.
  pqxx::connection holder{test_database_url()};
  pqxx::work lock{holder};
  lock.exec_params("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", std::stoll(id));
  http_response first;
  std::thread t{[&] {
    http_client own{server.port()};
    first = own.request("PATCH", "/api/tasks/" + id + "/complete", keyed(user, "slow"));
  }};
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto during = c.request("PATCH", "/api/tasks/" + id + "/complete", keyed(user, "slow"));
  CHECK(during.status == 409);
  CHECK(during.header("retry-after") == "1");
  auto mismatch = c.request("PATCH", "/api/tasks/" + id, keyed(user, "slow"), R"({"title":"z"})");
  CHECK(mismatch.status == 422);
  lock.abort();
  t.join();
  REQUIRE(first.status == 200);
  auto after = c.request("PATCH", "/api/tasks/" + id + "/complete", keyed(user, "slow"));
  check_same_answer(first, after);
  CHECK(after.header("idempotent-replayed") == "true");
  CHECK(json::parse(c.request("GET", "/api/tasks/" + id, plain(user)).body)
          .at("completed")
          .as_bool());
}

TEST_CASE("a key outlives a restart and is shared by two instances") {
  auto user = fresh_user("idem");
  http_response first;
  {
    server_process a;
    a.start();
    http_client c{a.port()};
    first = c.request("POST", "/api/tasks", keyed(user, "restart"), R"({"title":"r"})");
    REQUIRE(first.status == 201);
    a.stop(SIGTERM);
  }
  server_process a, b;
  a.start();
  b.start();
  http_client ca{a.port()}, cb{b.port()};
  auto after_restart = ca.request("POST", "/api/tasks", keyed(user, "restart"), R"({"title":"r"})");
  check_same_answer(first, after_restart);
  CHECK(after_restart.header("idempotent-replayed") == "true");
  auto on_b = cb.request("POST", "/api/tasks", keyed(user, "restart"), R"({"title":"r"})");
  check_same_answer(first, on_b);
  CHECK(tasks_of(user) == 1);

  // Both instances at once with one key, many times: one task per key, the same answer.
  for (int round = 0; round < 10; ++round) {
    auto key = "race-" + std::to_string(round);
    http_response ra, rb;
    std::thread ta{[&] {
      http_client own{a.port()};
      ra = own.request("POST", "/api/tasks", keyed(user, key), R"({"title":"race"})");
    }};
    std::thread tb{[&] {
      http_client own{b.port()};
      rb = own.request("POST", "/api/tasks", keyed(user, key), R"({"title":"race"})");
    }};
    ta.join();
    tb.join();
    INFO("round " << round << ": " << ra.status << " " << rb.status);
    REQUIRE(ra.status == 201);
    REQUIRE(rb.status == 201);
    check_same_answer(ra, rb);
    CHECK(ra.has("idempotent-replayed") != rb.has("idempotent-replayed"));
  }
  CHECK(tasks_of(user) == 11);
}

TEST_CASE("expired keys are purged in the background and then run again") {
  server_process server{{{"IDEMPOTENCY_TTL_S", "1"}, {"IDEMPOTENCY_PURGE_MS", "200"}}};
  server.start();
  http_client c{server.port()};
  auto user = fresh_user("idem");
  auto first = c.request("POST", "/api/tasks", keyed(user, "short"), R"({"title":"e"})");
  REQUIRE(first.status == 201);
  CHECK(keys_of(user) == 1);
  auto soon = c.request("POST", "/api/tasks", keyed(user, "short"), R"({"title":"e"})");
  CHECK(soon.header("idempotent-replayed") == "true");
  for (int i = 0; i < 50 && keys_of(user) > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(keys_of(user) == 0);
  auto late = c.request("POST", "/api/tasks", keyed(user, "short"), R"({"title":"e"})");
  CHECK(late.status == 201);
  CHECK_FALSE(late.has("idempotent-replayed"));
  CHECK(id_of(late) != id_of(first));
  CHECK(tasks_of(user) == 2);
}
