// The server's scheduler (actors/scheduler.hpp): CAF's work stealing with its own worker loop.
// These run a real multi-threaded actor system on it, as main.cpp does, and check that every
// path of the loop works: messages between actors on both threads (resume_later and
// awaiting_message), actors that finish (done), delayed messages (the clock thread), detached
// actors next to it, and a clean shutdown (shutdown_execution_unit).

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
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
