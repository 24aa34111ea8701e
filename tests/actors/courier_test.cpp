// The courier on the deterministic coordinator, with the real auth actor (HS256) and the real
// registry over the in-memory fake DB: it answers every job exactly once, with the outcome of
// the right step, and runs nothing for a request that fails a check.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "actors/auth.hpp"
#include "actors/courier.hpp"
#include "actors/tokens/jwt.hpp"
#include "tests/support/deterministic_system.hpp"
#include "tests/support/fake_db.hpp"

using namespace todo;

namespace {

constexpr char secret[] = "courier-test-secret-0123456789abcdef";

std::string token_for(const std::string& sub) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  return jwt::sign_hs256(secret, R"({"sub":")" + sub + R"(","exp":)" +
                                   std::to_string(now + 600) + "}");
}

struct courier_fixture : test::deterministic_system {
  std::shared_ptr<test::fake_db_data> data = std::make_shared<test::fake_db_data>();
  test::fake_db_actor db = sys.spawn(test::fake_db, data);
  auth_actor auth;
  registry_shards shards;
  courier_actor carrier;
  std::vector<reply> replies; // every call of a job's `done`, in order

  // The couriers' token cache (on in the server): the key-set generation and a clock both
  // the auth actor and the courier read.
  std::shared_ptr<std::atomic<uint64_t>> generation;
  int64_t clock = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();

  explicit courier_fixture(bool token_cache = false,
                           caf::timespan user_idle = std::chrono::minutes(5)) {
    auth_config acfg;
    acfg.opts.hs256_secret = secret;
    acfg.detach_fetch = false;
    acfg.now = [this] { return clock; };
    courier_tokens tokens;
    if (token_cache) {
      generation = std::make_shared<std::atomic<uint64_t>>(0);
      acfg.generation = generation;
      tokens.generation = generation;
      tokens.capacity = 16;
      tokens.max_ttl_seconds = 300;
      tokens.now = [this] { return clock; };
    }
    auth = sys.spawn(todo::auth, acfg);
    registry_limits limits;
    limits.user_idle = user_idle;
    for (int i = 0; i < 2; ++i)
      shards.push_back(sys.spawn(user_registry, caf::actor_cast<db_actor>(db), limits));
    carrier = sys.spawn(courier, auth, std::make_shared<const registry_shards>(shards), tokens);
    run();
  }
  ~courier_fixture() {
    for (auto& s : shards)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(carrier, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(auth, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
  }

  // Sends one job and runs the system until nothing is left to do; returns how many actor
  // steps (resumes) that took.
  size_t carry(std::string token, std::string scoped_user, task_cmd cmd,
             bool authorize_only = false) {
    auto job = std::make_shared<courier_job>();
    job->token = std::move(token);
    job->scoped_user = std::move(scoped_user);
    job->cmd = std::move(cmd);
    job->authorize_only = authorize_only;
    job->done = [this](reply r) { replies.push_back(std::move(r)); };
    caf::anon_send(carrier, std::move(job));
    return sched.run();
  }
};

// Managers idle for a second are evicted (on the registry's next tick).
struct quick_eviction : courier_fixture {
  quick_eviction() : courier_fixture(false, std::chrono::seconds(1)) {
  }
};

struct caching_courier : courier_fixture {
  caching_courier() : courier_fixture(true) {
  }
  // Stops the auth actor: from now on only the courier's own cache can answer for a token.
  void stop_auth() {
    caf::anon_send_exit(auth, caf::exit_reason::user_shutdown);
    run();
  }
};

} // namespace

TEST_CASE_METHOD(caching_courier, "a courier reuses a verified token without asking the auth actor") {
  auto alice = token_for("alice");
  carry(alice, "", test::create_cmd("first"));
  stop_auth();
  carry(alice, "", test::create_cmd("second")); // no auth actor any more: the cache answered
  carry(token_for("bob"), "", test::create_cmd("never")); // not cached: needs the auth actor
  REQUIRE(replies.size() == 3);
  CHECK(replies[0].code == errc::none);
  CHECK(replies[1].code == errc::none);
  CHECK(replies[2].code != errc::none);
  CHECK(data->rows["alice"].size() == 2);
  CHECK(data->rows["bob"].empty());
  // The scope is still checked on a cache hit.
  carry(alice, "bob", test::create_cmd("scoped"));
  REQUIRE(replies.size() == 4);
  CHECK(replies[3].code == errc::forbidden);
}

TEST_CASE_METHOD(caching_courier, "a new key set empties the couriers' token caches") {
  auto alice = token_for("alice");
  carry(alice, "", test::create_cmd("first"));
  generation->fetch_add(1); // what the auth actor does when it installs a JWKS
  stop_auth();
  carry(alice, "", test::create_cmd("after rotation"));
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].code == errc::none);
  CHECK(replies[1].code != errc::none); // had to ask the auth actor again
  CHECK(data->rows["alice"].size() == 1);
}

TEST_CASE_METHOD(caching_courier, "a cached token stops working at its exp") {
  auto soon = jwt::sign_hs256(secret, R"({"sub":"alice","exp":)" + std::to_string(clock + 5) + "}");
  carry(soon, "", test::create_cmd("in time"));
  stop_auth();
  clock += 4;
  carry(soon, "", test::create_cmd("still in time"));
  clock += 2;
  carry(soon, "", test::create_cmd("too late"));
  REQUIRE(replies.size() == 3);
  CHECK(replies[0].code == errc::none);
  CHECK(replies[1].code == errc::none);
  CHECK(replies[2].code != errc::none);
  CHECK(data->rows["alice"].size() == 2);
}

TEST_CASE_METHOD(courier_fixture, "a courier runs a verified user's command and answers once") {
  carry(token_for("alice"), "", test::create_cmd("milk"));
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].code == errc::none);
  REQUIRE(replies[0].result.rows.size() == 1);
  CHECK(replies[0].result.rows[0].title == "milk");
  CHECK_FALSE(replies[0].result.json.empty()); // rendered by the task manager
  REQUIRE(data->log.size() >= 1);
  CHECK(data->log.back().first == "alice"); // the token's subject, nothing else
}

TEST_CASE_METHOD(courier_fixture, "a bad token is refused and nothing runs") {
  carry("not-a-token", "", test::create_cmd("x"));
  carry(jwt::sign_hs256("another-secret-0123456789abcdefgh", R"({"sub":"mallory"})"), "",
        test::create_cmd("y"));
  REQUIRE(replies.size() == 2);
  for (const auto& r : replies) {
    CHECK(r.code == errc::unauthorized);
    CHECK_FALSE(r.reason.empty());
  }
  CHECK(data->log.empty());
}

TEST_CASE_METHOD(courier_fixture, "a scoped user who is not the token's subject is forbidden") {
  carry(token_for("alice"), "bob", test::create_cmd("x"));
  carry(token_for("alice"), "alice", test::create_cmd("mine"));
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].code == errc::forbidden);
  CHECK(replies[1].code == errc::none);
  REQUIRE(data->log.size() >= 1);
  for (const auto& [user, cmd] : data->log)
    CHECK(user == "alice");
}

TEST_CASE_METHOD(courier_fixture, "authorize-only checks the token and the scope, runs nothing") {
  carry(token_for("alice"), "", test::create_cmd("x"), true);
  carry(token_for("alice"), "bob", test::create_cmd("x"), true);
  carry("junk", "", test::create_cmd("x"), true);
  REQUIRE(replies.size() == 3);
  CHECK(replies[0].code == errc::none);
  CHECK(replies[1].code == errc::forbidden);
  CHECK(replies[2].code == errc::unauthorized);
  CHECK(data->log.empty());
}

TEST_CASE_METHOD(courier_fixture, "an error from the task manager reaches done as its code") {
  task_cmd fetch;
  fetch.kind = op::fetch;
  fetch.id = 424242;
  carry(token_for("carol"), "", fetch);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].code == errc::task_not_found);
}

TEST_CASE_METHOD(courier_fixture, "a courier sends a known user's requests straight to the manager") {
  auto alice = token_for("alice");
  task_cmd list;
  list.kind = op::list;
  carry(alice, "", test::create_cmd("milk"));
  carry(alice, "", list); // loads the cache
  // Served from the cache, the registry not asked: the courier, the auth actor, the courier
  // again, the manager and the courier with the answer. Through the registry it is one more.
  CHECK(carry(alice, "", list) == 5);
  // A user this courier has not seen yet: the registry's route first (two steps more).
  carry(token_for("bob"), "", test::create_cmd("bread"));
  carry(token_for("bob"), "", list);
  REQUIRE(replies.size() == 5);
  for (const auto& r : replies)
    CHECK(r.code == errc::none);
  CHECK(replies[2].result.json.find("milk") != std::string::npos);
  CHECK(replies[4].result.json.find("bread") != std::string::npos);
  CHECK(replies[4].result.json.find("milk") == std::string::npos); // bob's list, not alice's
}

TEST_CASE_METHOD(quick_eviction, "a courier never uses an evicted manager: the registry spawns a new one") {
  auto alice = token_for("alice");
  carry(alice, "", test::create_cmd("first")); // the courier learns alice's manager
  auto managers = [&] {
    size_t n = 0;
    for (const auto& s : shards)
      if (auto k = ask<size_t>(s, atom::count::value))
        n += *k;
    return n;
  };
  REQUIRE(managers() == 1);
  // Idle for longer than USER_IDLE: the registry retires the slot and stops the manager.
  sched.clock().advance_time(std::chrono::seconds(2));
  run();
  sched.clock().advance_time(std::chrono::seconds(2));
  run();
  REQUIRE(managers() == 0);
  carry(alice, "", test::create_cmd("second")); // not to the stopped one
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].code == errc::none);
  CHECK(replies[1].code == errc::none);
  CHECK(data->rows["alice"].size() == 2);
  CHECK(managers() == 1);
}

TEST_CASE("a user's slot: claims up to the bound, retires only when idle, then refuses") {
  user_slot slot;
  slot.max_pending = 2;
  CHECK(slot.try_claim() == user_slot::claim::ok);
  CHECK_FALSE(slot.try_retire()); // one in flight
  CHECK(slot.try_claim() == user_slot::claim::ok);
  CHECK(slot.try_claim() == user_slot::claim::full);
  slot.pending.fetch_sub(2); // the manager answered both
  CHECK(slot.try_retire());
  CHECK(slot.try_claim() == user_slot::claim::retired);
  CHECK_FALSE(slot.try_retire());
}
