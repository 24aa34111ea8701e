// The auth actor on the deterministic coordinator, with a fake JWKS fetch: fetch at start,
// rotation and its rate limit, waiting tokens, failures, JWKS files, the token cache.

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <unistd.h>

#include "actors/auth.hpp"
#include "actors/tokens/jwks.hpp"
#include "tests/support/deterministic_system.hpp"
#include "tests/support/keys.hpp"

using namespace todo;
using namespace todo::test;

// ---------------------------------------------------------------------------------- auth actor

namespace {

/// A fake JWKS endpoint: serves `document` (or fails) and counts the fetches.
struct fake_endpoint {
  std::shared_ptr<std::string> document = std::make_shared<std::string>(R"({"keys":[]})");
  std::shared_ptr<bool> failing = std::make_shared<bool>(false);
  std::shared_ptr<int> calls = std::make_shared<int>(0);

  jwks_fetcher fetcher() const {
    auto doc = document;
    auto fail = failing;
    auto n = calls;
    return [doc, fail, n](const std::string& url) {
      ++*n;
      jwks_fetch_result r;
      if (url != "https://frontend.example/api/auth/jwks")
        r.error = "unexpected URL";
      else if (*fail)
        r.error = "connection failed";
      else
        r.body = *doc;
      return r;
    };
  }
};

auth_config url_config(const fake_endpoint& ep) {
  auth_config cfg;
  cfg.opts.hs256_secret = "test-secret-0123456789-abcdefghij";
  cfg.opts.algorithms = {"HS256", "EdDSA", "ES256", "RS256", "PS256"};
  cfg.jwks_url = "https://frontend.example/api/auth/jwks";
  cfg.fetch = ep.fetcher();
  cfg.detach_fetch = false;
  cfg.now = [] { return now; };
  return cfg;
}

using test::deterministic_system;

std::string reason_of(const caf::expected<std::string>& x) {
  return x ? std::string{"accepted"} : error_reason(x.error());
}

} // namespace

TEST_CASE_METHOD(deterministic_system, "auth: the JWKS is fetched at start and its keys work") {
  fake_endpoint ep;
  auto k1 = ed25519();
  *ep.document = jwks_of({jwks::to_public_jwk(k1.get(), "k1", "EdDSA")});
  auto a = sys.spawn(auth, url_config(ep));
  run();
  CHECK(*ep.calls == 1);
  auto sub = ask<std::string>(a, atom::verify::value, ed_token(k1.get(), "k1"));
  REQUIRE(sub);
  CHECK(*sub == "alice");
  CHECK(*ep.calls == 1);
  // HS256 still works beside it.
  CHECK(ask<std::string>(a, atom::verify::value,
                         jwt::sign_hs256("test-secret-0123456789-abcdefghij", payload("bob")))
        == std::string{"bob"});
  // A forged token: 401 with errc::unauthorized and a short reason, and no fetch.
  auto forged = ask<std::string>(a, atom::verify::value, ed_token(ed25519().get(), "k1"));
  REQUIRE_FALSE(forged);
  CHECK(forged.error().code() == static_cast<uint8_t>(errc::unauthorized));
  CHECK(forged.error().category() == caf::atom("todo"));
  CHECK(reason_of(forged) == "Invalid token signature");
  CHECK(*ep.calls == 1);
}

TEST_CASE_METHOD(deterministic_system, "auth: rotation refetches at most once per interval") {
  fake_endpoint ep;
  auto k1 = ed25519();
  auto k2 = ed25519();
  auto k3 = ed25519();
  auto k4 = ed25519();
  auto jwk = [](const pkey_ptr& k, const char* kid) {
    return jwks::to_public_jwk(k.get(), kid, "EdDSA");
  };
  *ep.document = jwks_of({jwk(k1, "k1")});
  auto a = sys.spawn(auth, url_config(ep));
  run();
  REQUIRE(*ep.calls == 1);

  // The frontend rotates to k2: the first token naming it triggers one refetch, then passes.
  *ep.document = jwks_of({jwk(k1, "k1"), jwk(k2, "k2")});
  CHECK(ask<std::string>(a, atom::verify::value, ed_token(k2.get(), "k2", payload("carol")))
        == std::string{"carol"});
  CHECK(*ep.calls == 2);

  // Another unknown kid within 30 s: refused at once, no fetch.
  *ep.document = jwks_of({jwk(k1, "k1"), jwk(k2, "k2"), jwk(k3, "k3")});
  auto early = ask<std::string>(a, atom::verify::value, ed_token(k3.get(), "k3"));
  CHECK(reason_of(early) == "Unknown token signing key");
  for (int i = 0; i < 50; ++i)
    CHECK_FALSE(ask<std::string>(a, atom::verify::value,
                                 ed_token(k4.get(), "bogus-" + std::to_string(i))));
  CHECK(*ep.calls == 2);

  // 31 s later the next unknown kid may fetch again.
  sched.clock().advance_time(std::chrono::seconds(31));
  CHECK(ask<std::string>(a, atom::verify::value, ed_token(k3.get(), "k3")) == std::string{"alice"});
  CHECK(*ep.calls == 3);

  // Known kids never fetch.
  CHECK(ask<std::string>(a, atom::verify::value, ed_token(k1.get(), "k1")));
  CHECK(*ep.calls == 3);

  // After another 31 s a kid the frontend does not have either: one fetch, then 401.
  sched.clock().advance_time(std::chrono::seconds(31));
  CHECK(reason_of(ask<std::string>(a, atom::verify::value, ed_token(k4.get(), "k4")))
        == "Unknown token signing key");
  CHECK(*ep.calls == 4);
}

TEST_CASE_METHOD(deterministic_system, "auth: tokens wait for the fetch in flight, bounded") {
  fake_endpoint ep;
  auto k1 = ed25519();
  *ep.document = jwks_of({jwks::to_public_jwk(k1.get(), "k1", "EdDSA")});
  auto cfg = url_config(ep);
  cfg.max_waiting = 3;
  auto a = sys.spawn(auth, cfg);
  // The start-up fetch has not run yet: four tokens arrive while it is in flight.
  std::vector<std::shared_ptr<std::optional<caf::expected<std::string>>>> answers;
  for (int i = 0; i < 4; ++i)
    answers.push_back(ask_later<std::string>(a, atom::verify::value,
                                             ed_token(k1.get(), "k1", payload("u" + std::to_string(i)))));
  run();
  CHECK(*ep.calls == 1);
  int accepted = 0;
  int refused = 0;
  for (auto& x : answers) {
    REQUIRE(x->has_value());
    if (**x)
      ++accepted;
    else
      ++refused;
  }
  // The spawning order of the askers decides which one is over the bound.
  CHECK(accepted == 3);
  CHECK(refused == 1);
}

TEST_CASE_METHOD(deterministic_system, "auth: a failed fetch answers the waiting tokens with 401") {
  fake_endpoint ep;
  *ep.failing = true;
  auto k1 = ed25519();
  auto a = sys.spawn(auth, url_config(ep));
  run();
  CHECK(*ep.calls == 1);
  // The start-up fetch does not count against the interval: the first token may refetch.
  CHECK(reason_of(ask<std::string>(a, atom::verify::value, ed_token(k1.get(), "k1")))
        == "Unknown token signing key");
  CHECK(*ep.calls == 2);
  // The frontend comes back, but the interval has not passed.
  *ep.failing = false;
  *ep.document = jwks_of({jwks::to_public_jwk(k1.get(), "k1", "EdDSA")});
  CHECK_FALSE(ask<std::string>(a, atom::verify::value, ed_token(k1.get(), "k1")));
  CHECK(*ep.calls == 2);
  sched.clock().advance_time(std::chrono::seconds(31));
  CHECK(ask<std::string>(a, atom::verify::value, ed_token(k1.get(), "k1")));
  CHECK(*ep.calls == 3);
  // A bad document keeps the keys we have.
  sched.clock().advance_time(std::chrono::seconds(31));
  *ep.document = "<html>oops</html>";
  CHECK_FALSE(ask<std::string>(a, atom::verify::value, ed_token(k1.get(), "k9")));
  CHECK(*ep.calls == 4);
  CHECK(ask<std::string>(a, atom::verify::value, ed_token(k1.get(), "k1")));
}

TEST_CASE_METHOD(deterministic_system, "auth: HS256 and unknown algorithms never fetch") {
  fake_endpoint ep;
  auto cfg = url_config(ep);
  cfg.opts.hs256_secret.clear();
  auto a = sys.spawn(auth, cfg);
  run();
  CHECK(*ep.calls == 1);
  CHECK(reason_of(ask<std::string>(a, atom::verify::value, jwt::sign_hs256("x", payload())))
        == "Unknown token signing key");
  CHECK(reason_of(ask<std::string>(a, atom::verify::value, std::string{"garbage"}))
        == "Invalid token");
  CHECK(reason_of(ask<std::string>(a, atom::verify::value, std::string{})) == "Not authenticated");
  CHECK(*ep.calls == 1);
}

TEST_CASE_METHOD(deterministic_system, "auth: a JWKS file is loaded at start") {
  auto k1 = ed25519();
  std::string path = "jwks_auth_test_" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream out{path};
    out << jwks_of({jwks::to_public_jwk(k1.get(), "f1", "EdDSA")});
  }
  auth_config cfg;
  cfg.opts.algorithms = {"EdDSA"};
  cfg.jwks_file = path;
  cfg.now = [] { return now; };
  auto a = sys.spawn(auth, cfg);
  run(); // the file is read when the actor starts
  std::remove(path.c_str());
  CHECK(ask<std::string>(a, atom::verify::value, ed_token(k1.get(), "f1")) == std::string{"alice"});
  CHECK(reason_of(ask<std::string>(a, atom::verify::value, ed_token(k1.get(), "f2")))
        == "Unknown token signing key");
}

TEST_CASE_METHOD(deterministic_system, "auth: a cached token still expires at its exp") {
  auto clock = std::make_shared<int64_t>(now);
  auth_config cfg;
  cfg.opts.hs256_secret = "s";
  cfg.opts.leeway_seconds = 0;
  cfg.now = [clock] { return *clock; };
  auto a = sys.spawn(auth, cfg);
  auto tok = jwt::sign_hs256("s", payload("dave", now + 10));
  CHECK(ask<std::string>(a, atom::verify::value, tok) == std::string{"dave"});
  *clock = now + 5;
  CHECK(ask<std::string>(a, atom::verify::value, tok) == std::string{"dave"});
  *clock = now + 11;
  CHECK(reason_of(ask<std::string>(a, atom::verify::value, tok)) == "Token expired");
}

TEST_CASE("auth: on a real scheduler the fetch runs on a detached helper") {
  caf::actor_system_config cfg;
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  fake_endpoint ep;
  auto k1 = ed25519();
  *ep.document = jwks_of({jwks::to_public_jwk(k1.get(), "k1", "EdDSA")});
  auto acfg = url_config(ep);
  acfg.detach_fetch = true;
  auto fetched_on = std::make_shared<std::thread::id>();
  auto inner = acfg.fetch;
  acfg.fetch = [inner, fetched_on](const std::string& url) {
    *fetched_on = std::this_thread::get_id();
    return inner(url);
  };
  auto a = sys.spawn(auth, acfg);
  caf::scoped_actor self{sys};
  std::string answer;
  self->request(a, std::chrono::seconds(10), atom::verify::value, ed_token(k1.get(), "k1"))
    .receive([&](std::string& sub) { answer = sub; },
             [&](caf::error& err) { answer = "error: " + error_reason(err); });
  CHECK(answer == "alice");
  CHECK(*ep.calls == 1);
  CHECK(*fetched_on != std::this_thread::get_id());
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(deterministic_system,
                 "auth: claims say how long a verdict may be reused and under which key set") {
  fake_endpoint ep;
  auto k1 = ed25519();
  auto k2 = ed25519();
  auto jwk = [](const pkey_ptr& k, const char* kid) {
    return jwks::to_public_jwk(k.get(), kid, "EdDSA");
  };
  *ep.document = jwks_of({jwk(k1, "k1")});
  auto cfg = url_config(ep);
  auto generation = std::make_shared<std::atomic<uint64_t>>(0);
  cfg.generation = generation;
  auto a = sys.spawn(auth, cfg);
  run();
  CHECK(generation->load() == 1); // the key set fetched at start
  struct answer {
    bool ok = false;
    std::string sub;
    int64_t until = 0;
    uint64_t gen = 0;
  };
  auto claims = [&](const std::string& token) {
    auto got = std::make_shared<answer>();
    sys.spawn([=](caf::event_based_actor* self, int) {
      self->request(a, std::chrono::seconds(3600), atom::claims::value, token)
        .then([=](std::string& s, int64_t u, uint64_t g) { *got = answer{true, s, u, g}; },
              [=](caf::error&) { got->ok = false; });
    }, 0);
    run();
    return *got;
  };
  // Reusable until the token's exp or the cache's 300 s, whichever comes first.
  auto x = claims(ed_token(k1.get(), "k1"));
  REQUIRE(x.ok);
  CHECK(x.sub == "alice");
  CHECK(x.until == now + 300);
  CHECK(x.gen == 1);
  auto brief = claims(ed_token(k1.get(), "k1", payload("bob", now + 60)));
  REQUIRE(brief.ok);
  CHECK(brief.until == now + 60);
  // The frontend rotates: the new kid's fetch installs another key set, the generation moves.
  *ep.document = jwks_of({jwk(k1, "k1"), jwk(k2, "k2")});
  auto y = claims(ed_token(k2.get(), "k2", payload("carol")));
  REQUIRE(y.ok);
  CHECK(y.sub == "carol");
  CHECK(y.gen == 2);
  CHECK(generation->load() == 2);
  CHECK_FALSE(claims("not.a.token").ok);
  CHECK_FALSE(claims(ed_token(ed25519().get(), "k1")).ok); // forged
}
