// The start-up check against the real PostgreSQL that scripts/test starts: DATABASE_URL mistakes
// are fatal at once and never echo the password; a server that is not up is retried, saying why,
// within the bound; a server that comes up during the wait is reached.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pqxx/pqxx>

#include "persistence/conninfo.hpp"
#include "persistence/startup_check.hpp"

using namespace todo;
using namespace std::chrono_literals;

namespace {

std::string env_or_fail(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v)
    FAIL(std::string{name} + " is not set: run the tests through scripts/test");
  return v;
}

std::string pg_port() {
  return env_or_fail("TEST_PG_PORT");
}

// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Listens on `port` only after `delay`, then relays each connection to the real PostgreSQL:
// a database that comes up while the service waits for it.
class late_relay {
public:
  late_relay(int port, std::chrono::milliseconds delay) {
    thread_ = std::thread([this, port, delay] { run(port, delay); });
  }
  ~late_relay() {
    stop_ = true;
    thread_.join();
    for (auto& t : pumps_)
      t.join();
  }
  int accepted() const { return accepted_; }

private:
  void run(int port, std::chrono::milliseconds delay) {
    std::this_thread::sleep_for(delay);
    int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lfd, 8) != 0) {
      ::close(lfd);
      return;
    }
    timeval tv{0, 100'000};
    ::setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (!stop_) {
      int cfd = ::accept(lfd, nullptr, nullptr);
      if (cfd < 0)
        continue;
      ++accepted_;
      int sfd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in pg{};
      pg.sin_family = AF_INET;
      pg.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      pg.sin_port = htons(static_cast<uint16_t>(std::stoi(pg_port())));
      if (::connect(sfd, reinterpret_cast<sockaddr*>(&pg), sizeof pg) != 0) {
        ::close(cfd);
        ::close(sfd);
        continue;
      }
      pumps_.emplace_back([cfd, sfd] { pump(cfd, sfd); });
      pumps_.emplace_back([cfd, sfd] { pump(sfd, cfd); });
    }
    ::close(lfd);
  }
  static void pump(int from, int to) {
    char buf[8192];
    for (;;) {
      auto n = ::read(from, buf, sizeof buf);
      if (n <= 0 || ::write(to, buf, static_cast<size_t>(n)) != n)
        break;
    }
    ::shutdown(to, SHUT_WR);
  }
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::vector<std::thread> pumps_;
  std::thread thread_;
};

} // namespace

TEST_CASE("a connection string libpq cannot parse is named with libpq's reason, never the "
          "password") {
  CHECK_FALSE(db::conninfo_problem(env_or_fail("TEST_DATABASE_URL")));
  CHECK_FALSE(db::conninfo_problem("host=/tmp dbname=todo"));

  auto garbage = db::conninfo_problem("garbage");
  REQUIRE(garbage);
  CHECK(garbage->find("missing \"=\"") != std::string::npos);

  auto bad_escape = db::conninfo_problem("postgresql://app:Hunter%zz-secret@db.example/todo");
  REQUIRE(bad_escape);
  CHECK(bad_escape->find("percent") != std::string::npos);
  CHECK(bad_escape->find("Hunter") == std::string::npos);
  CHECK(bad_escape->find("secret") == std::string::npos);

  auto bad_param = db::conninfo_problem("postgresql://app:pw-Shh@db.example/todo?nosuchoption=1");
  REQUIRE(bad_param);
  CHECK(bad_param->find("nosuchoption") != std::string::npos);
  CHECK(bad_param->find("pw-Shh") == std::string::npos);

  auto kv = db::conninfo_problem("host=db password='Open Sesame' nosuch=1");
  REQUIRE(kv);
  CHECK(kv->find("nosuch") != std::string::npos);
  CHECK(kv->find("Sesame") == std::string::npos);
}

TEST_CASE("an unknown option value, database or role is fatal at once") {
  auto base = "postgresql://postgres@127.0.0.1:" + pg_port();
  struct row {
    std::string url, expect;
  };
  std::vector<row> rows{
    {base + "/todo?sslmode=bogus", "sslmode"},
    {base + "/no_such_database_x", "does not exist"},
    {"postgresql://no_such_role_x@127.0.0.1:" + pg_port() + "/todo", "no_such_role_x"},
  };
  for (const auto& r : rows) {
    INFO(r.url);
    auto t0 = std::chrono::steady_clock::now();
    auto p = db::wait_for_database(r.url, 5000ms, [](const std::string& why, auto) {
      FAIL("a fatal error must not be retried: " + why);
    });
    CHECK(p.outcome == db::probe_result::fatal);
    CHECK(p.reason.find(r.expect) != std::string::npos);
    CHECK(p.reason.find('\n') == std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  }
}

TEST_CASE("bad credentials are fatal at once and the password is not in the reason") {
  // scripts/test makes this role authenticate with scram-sha-256 (all others use trust).
  {
    pqxx::connection c{env_or_fail("TEST_DATABASE_URL")};
    pqxx::nontransaction n{c};
    n.exec("DO $$ BEGIN CREATE ROLE todo_pw_probe LOGIN PASSWORD 'Right-Horse-42'; "
           "EXCEPTION WHEN duplicate_object THEN NULL; END $$");
  }
  auto url = [](const std::string& pw) {
    return "postgresql://todo_pw_probe:" + pw + "@127.0.0.1:" + pg_port() + "/todo";
  };
  REQUIRE(db::probe(url("Right-Horse-42")).outcome == db::probe_result::ok);
  auto p = db::probe(url("Wrong-Battery-77"));
  CHECK(p.outcome == db::probe_result::fatal);
  CHECK(p.reason.find("password authentication failed") != std::string::npos);
  CHECK(p.reason.find("Wrong-Battery-77") == std::string::npos);
}

TEST_CASE("a server that is not up is retried, each attempt saying why, within the bound") {
  auto url = "postgresql://postgres:Pass-Word-9@127.0.0.1:" + std::to_string(closed_port()) +
             "/todo?connect_timeout=1";
  std::vector<std::string> reasons;
  auto t0 = std::chrono::steady_clock::now();
  auto p = db::wait_for_database(url, 800ms, [&](const std::string& why, auto) {
    reasons.push_back(why);
  });
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(p.outcome == db::probe_result::fatal);
  CHECK(p.reason.find("DB_CONNECT_WAIT_MS=800") != std::string::npos);
  CHECK(p.reason.find("Connection refused") != std::string::npos);
  CHECK(reasons.size() >= 2);
  for (const auto& r : reasons) {
    CHECK(r.find("Connection refused") != std::string::npos);
    CHECK(r.find("Pass-Word-9") == std::string::npos);
  }
  CHECK(took >= 500ms);
  CHECK(took < 3s);

  // No wait at all: the first failure is the answer.
  auto none = db::wait_for_database(url, 0ms, [](const std::string&, auto) {
    FAIL("DB_CONNECT_WAIT_MS=0 must not retry");
  });
  CHECK(none.outcome == db::probe_result::fatal);
}

TEST_CASE("a database that comes up during the wait is reached") {
  int port = closed_port();
  late_relay relay{port, 700ms};
  int retries = 0;
  auto p = db::wait_for_database(
    "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/todo?connect_timeout=2", 10s,
    [&](const std::string&, auto) { ++retries; });
  CHECK(p.outcome == db::probe_result::ok);
  CHECK(retries >= 1);
  CHECK(relay.accepted() >= 1);
}

TEST_CASE("only conditions that pass by themselves count as transient") {
  CHECK(db::is_transient("connection to server at \"127.0.0.1\", port 5 failed: Connection "
                         "refused\n\tIs the server running on that host?"));
  CHECK(db::is_transient("connection to server on socket \"/x/.s.PGSQL.5432\" failed: No such "
                         "file or directory"));
  CHECK(db::is_transient("FATAL:  the database system is starting up"));
  CHECK(db::is_transient("FATAL:  sorry, too many clients already"));
  CHECK_FALSE(db::is_transient("FATAL:  password authentication failed for user \"x\""));
  CHECK_FALSE(db::is_transient("FATAL:  database \"x\" does not exist"));
  CHECK_FALSE(db::is_transient("invalid sslmode value: \"bogus\""));
  CHECK_FALSE(db::is_transient("could not open certificate file \"/r.crt\": No such file or "
                               "directory"));
}

TEST_CASE("a pooler in transaction mode is recognised by its host or port (DB_PREPARED=auto)") {
  // Neon's pooled endpoint, in URL and key=value form, any case.
  auto neon = db::pooler_hint("postgresql://u:pw-secret@ep-cool-1234-pooler.us-east-2.aws.neon"
                              ".tech/db?sslmode=require");
  REQUIRE(neon);
  CHECK(neon->find("ep-cool-1234-pooler.us-east-2.aws.neon.tech") != std::string::npos);
  CHECK(neon->find("pw-secret") == std::string::npos);
  CHECK(db::pooler_hint("host=EP-X-POOLER.eu.neon.tech port=5432 dbname=db password=pw"));
  // PgBouncer's default port; one of several hosts; host names a pooler but hostaddr connects.
  CHECK(db::pooler_hint("postgresql://u@10.0.0.5:6432/db"));
  CHECK(db::pooler_hint("host=db1,db2 port=5432,6432 dbname=db"));
  CHECK(db::pooler_hint("postgresql://u@ep-a-pooler.example:5433/db?hostaddr=127.0.0.1"));
  // Direct connections: Neon's direct endpoint, another port, a socket; unparsable: none.
  CHECK_FALSE(db::pooler_hint("postgresql://u:p@ep-cool-1234.us-east-2.aws.neon.tech:5432/db"));
  CHECK_FALSE(db::pooler_hint("postgresql://u@127.0.0.1:16432/db"));
  CHECK_FALSE(db::pooler_hint("host=/var/run/postgresql port=5432 dbname=todo"));
  CHECK_FALSE(db::pooler_hint("postgresql://u@pooler.example:5432/db")); // no "-pooler."
  CHECK_FALSE(db::pooler_hint("host='unterminated"));

  auto chosen = db::choose_statement_mode("auto", "postgresql://u@h-pooler.x:5432/db");
  CHECK_FALSE(chosen.prepared);
  CHECK(chosen.reason.find("DB_PREPARED=auto chose false") == 0);
  CHECK(db::choose_statement_mode("auto", "postgresql://u@h:5432/db").prepared);
  CHECK(db::choose_statement_mode("true", "postgresql://u@h-pooler.x:6432/db").prepared);
  CHECK_FALSE(db::choose_statement_mode("false", "postgresql://u@h:5432/db").prepared);
}
