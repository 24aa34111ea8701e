// The server's scheduler (actors/scheduler.hpp): CAF's work stealing with its own worker loop.
// These run a real multi-threaded actor system on it, as main.cpp does, and check that every
// path of the loop works: messages between actors on both threads (resume_later and
// awaiting_message), actors that finish (done), delayed messages (the clock thread), detached
// actors next to it, and a clean shutdown (shutdown_execution_unit).

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "actors/scheduler.hpp"

namespace {

caf::actor_system_config quiet_config(size_t threads) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", threads);
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  todo::use_quiet_scheduler(cfg);
  return cfg;
}

// Adds one and passes the number on; the last of the chain answers it.
caf::behavior relay(caf::event_based_actor* self, caf::actor next) {
  return {[=](int x) -> caf::result<int> {
    if (next) {
      self->delegate(next, x + 1); // the last relay answers the original requester
      return caf::delegated<int>{};
    }
    return x + 1;
  }};
}

// Answers x + bias. (It takes an argument because CAF 0.17 dereferences a null argument
// tuple when it starts a function actor spawned without any: UBSan reports it.)
caf::behavior echo(int bias) {
  return {[bias](int x) { return x + bias; }};
}

// Asks `peer` `rounds` times, one after the other, then reports the sum of its answers to
// `report` and quits.
void pinger(caf::event_based_actor* self, caf::actor peer, int rounds, caf::actor report) {
  struct state {
    int left;
    long sum = 0;
  };
  auto st = std::make_shared<state>(state{rounds});
  auto step = std::make_shared<std::function<void()>>();
  *step = [=] {
    if (st->left == 0) {
      self->send(report, st->sum);
      self->quit();
      return;
    }
    int n = st->left--;
    self->request(peer, caf::infinite, n).then([=](int answer) {
      st->sum += answer;
      (*step)();
    });
  };
  (*step)();
  self->attach_functor([step] { *step = nullptr; }); // break the self-reference on exit
}

} // namespace

TEST_CASE("scheduler: the server's actor system runs on the quiet work-stealing scheduler") {
  auto cfg = quiet_config(2);
  caf::actor_system sys{cfg};
  CHECK(todo::runs_quiet_scheduler(sys));
  CHECK(sys.scheduler().num_workers() == 2);

  caf::actor_system_config plain;
  plain.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system caf_default{plain};
  CHECK_FALSE(todo::runs_quiet_scheduler(caf_default));
}

TEST_CASE("scheduler: request chains, many concurrent actors that finish, timers, shutdown") {
  auto cfg = quiet_config(2);
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  // A chain of 32 relays: each request crosses 32 mailboxes (and both worker threads).
  caf::actor next;
  for (int i = 0; i < 32; ++i)
    next = sys.spawn(relay, next);
  for (int start = 0; start < 200; ++start) {
    int got = -1;
    self->request(next, std::chrono::seconds(10), start)
      .receive([&](int x) { got = x; }, [&](caf::error&) { got = -2; });
    REQUIRE(got == start + 32);
  }

  // 64 pingers, 300 round trips each against 4 echo actors, all at once; each finishes
  // (resumable::done) after reporting the sum of 300..1.
  std::vector<caf::actor> echoes;
  for (int i = 0; i < 4; ++i)
    echoes.push_back(sys.spawn(echo, 0));
  for (int i = 0; i < 64; ++i)
    sys.spawn(pinger, echoes[i % 4], 300, caf::actor{self});
  long expected = 300L * 301 / 2;
  int reports = 0;
  self->receive_for(reports, 64)(
    [&](long sum) { CHECK(sum == expected); },
    caf::after(std::chrono::seconds(30)) >> [&] { FAIL("pingers did not all report"); });
  CHECK(reports == 64);

  // A delayed message goes through the coordinator's clock thread back to a worker.
  auto started = std::chrono::steady_clock::now();
  self->delayed_send(self, std::chrono::milliseconds(50), std::string{"later"});
  std::string what;
  self->receive([&](std::string& s) { what = s; },
                caf::after(std::chrono::seconds(10)) >> [&] { what = "timeout"; });
  CHECK(what == "later");
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(50));

  // A detached actor (the DB workers are) lives on its own thread beside the workers.
  auto detached = sys.spawn<caf::detached>(echo, 1);
  int back = 0;
  self->request(detached, std::chrono::seconds(10), 7).receive([&](int x) { back = x; },
                                                                 [&](caf::error&) { back = -1; });
  CHECK(back == 8);

  for (auto& e : echoes)
    self->send_exit(e, caf::exit_reason::user_shutdown);
  self->send_exit(detached, caf::exit_reason::user_shutdown);
  self->send_exit(next, caf::exit_reason::user_shutdown);
  // Leaving the scope stops the system: every worker must take its shutdown job and return.
}

namespace {

// Workers that spin for nothing and then sleep on their condition variable for an hour: a job
// reaches a parked worker only if the enqueue wakes it (the hour-long timeout never helps).
caf::actor_system_config parking_config() {
  auto cfg = quiet_config(2);
  cfg.set("work-stealing.aggressive-poll-attempts", size_t{0});
  cfg.set("work-stealing.relaxed-sleep-duration", caf::timespan{std::chrono::hours(1)});
  return cfg;
}

// Waits (bounded) until both workers are parked.
bool both_parked(caf::actor_system& sys) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (todo::parked_workers(sys) != 2) {
    if (std::chrono::steady_clock::now() > until)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

struct rendezvous {
  std::atomic<int> arrived{0};
};

// On any int: counts itself in, waits (blocking its worker, at most 5 s) until the other one
// of the pair has arrived too, and reports to `report` whether it did.
caf::behavior meet(caf::event_based_actor* self, std::shared_ptr<rendezvous> r,
                   caf::actor report) {
  return {[=](int) {
    r->arrived.fetch_add(1);
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (r->arrived.load() < 2 && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    self->send(report, r->arrived.load() >= 2);
  }};
}

// On any int: sends it to both actors of the pair, one after the other, from its worker.
caf::behavior fan_out(caf::event_based_actor* self, caf::actor a, caf::actor b) {
  return {[=](int x) {
    self->send(a, x);
    self->send(b, x);
  }};
}

} // namespace

TEST_CASE("scheduler: parked workers are woken by every job from outside, and shut down") {
  auto cfg = parking_config();
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto e = sys.spawn(echo, 1);
  // Each request comes from this thread (as from an I/O thread or a DB worker) while both
  // workers sleep; a lost wake-up would leave it unanswered for an hour.
  for (int i = 0; i < 200; ++i) {
    REQUIRE(both_parked(sys));
    int got = -1;
    self->request(e, std::chrono::seconds(10), i)
      .receive([&](int x) { got = x; }, [&](caf::error&) { got = -2; });
    REQUIRE(got == i + 1);
  }
  self->send_exit(e, caf::exit_reason::user_shutdown);
  REQUIRE(both_parked(sys));
  // Leaving the scope stops the system: its shutdown jobs must wake both sleeping workers.
}

TEST_CASE("scheduler: a job queued behind another on a busy worker wakes a parked peer") {
  auto cfg = parking_config();
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  for (int round = 0; round < 20; ++round) {
    auto r = std::make_shared<rendezvous>();
    auto a = sys.spawn(meet, r, caf::actor{self});
    auto b = sys.spawn(meet, r, caf::actor{self});
    auto f = sys.spawn(fan_out, a, b);
    REQUIRE(both_parked(sys));
    // `f` runs on one worker and queues a, then b, on that worker's own queue. a and b can
    // only meet if they run at the same time, i.e. if the other worker was woken to steal one.
    self->send(f, round);
    int met = 0;
    int reports = 0;
    self->receive_for(reports, 2)(
      [&](bool ok) { met += ok ? 1 : 0; },
      caf::after(std::chrono::seconds(30)) >> [&] { FAIL("the pair did not report"); });
    CHECK(met == 2);
    for (auto& x : {a, b, f})
      self->send_exit(x, caf::exit_reason::user_shutdown);
  }
}
