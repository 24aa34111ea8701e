// todo-api: parses the command line and wires the server together (settings, database,
// actors, listener, signals). The token subcommands live in actors/tokens/token_cli.cpp.

#include <chrono>
#include <csignal>
#include <iostream>
#include <random>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/version.hpp>
#include <caf/config.hpp>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <pqxx/version.hxx>

#include "actors/actor_gateway.hpp"
#include "actors/auth.hpp"
#include "actors/model/stage_trace.hpp"
#include "actors/scheduler.hpp"
#include "actors/tokens/jwks.hpp"
#include "actors/tokens/token_cli.hpp"
#include "actors/user_registry.hpp"
#include "config/log.hpp"
#include "config/settings.hpp"
#include "http/jwks_fetch.hpp"
#include "http/listener.hpp"
#include "http/metrics.hpp"
#include "http/tls.hpp"
#include "persistence/change_listener.hpp"
#include "persistence/key_janitor.hpp"
#include "persistence/db_pool.hpp"
#include "persistence/migrations.hpp"
#include "persistence/startup_check.hpp"

namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

std::string random_prefix() {
  std::random_device rd;
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i)
    out += hex[rd() % 16];
  return out + "-";
}

int serve(const todo::settings& cfg) {
  todo::log::configure(todo::log::parse_level(cfg.log_level), cfg.log_format == "json");
  // HTTPS: both files or neither; a certificate that cannot serve stops start-up.
  std::unique_ptr<boost::asio::ssl::context> tls;
  if (cfg.tls_cert_file.empty() != cfg.tls_key_file.empty()) {
    std::cerr << (cfg.tls_cert_file.empty() ? "TLS_CERT_FILE: required with TLS_KEY_FILE\n"
                                            : "TLS_KEY_FILE: required with TLS_CERT_FILE\n");
    return 2;
  }
  if (!cfg.tls_cert_file.empty()) {
    auto setup = todo::http::make_tls_context(cfg.tls_cert_file, cfg.tls_key_file);
    if (!setup.context) {
      std::cerr << setup.setting << ": " << setup.error << "\n";
      return 2;
    }
    tls = std::move(setup.context);
  }
  todo::log::start_writer(); // the access log costs the I/O threads a memcpy per line
  if (!cfg.jwks_file.empty() && !todo::jwks::parse_file(cfg.jwks_file)) {
    std::cerr << "BETTER_AUTH_JWKS_FILE: not a usable JWKS document\n";
    return 2;
  }
  auto db_timeout = std::chrono::milliseconds(cfg.db_timeout_ms);
  if (auto problem = todo::db::prepare_database(cfg.database_url, cfg.db_timeout_ms,
                                                cfg.db_connect_wait_ms)) {
    std::cerr << "DATABASE_URL: " << *problem << "\n";
    return 2;
  }
  // Neon's pooled endpoint / PgBouncer in transaction mode: unnamed statements, and LISTEN on a
  // direct connection (DATABASE_LISTEN_URL), since it cannot work through such a pooler.
  auto statements = todo::db::choose_statement_mode(cfg.db_prepared, cfg.database_url);
  todo::log::info(statements.reason);
  const auto& listen_url =
    cfg.database_listen_url.empty() ? cfg.database_url : cfg.database_listen_url;
  if (!cfg.database_listen_url.empty()) {
    if (auto problem = todo::db::reach_database(listen_url, cfg.db_timeout_ms,
                                                cfg.db_connect_wait_ms, "DATABASE_LISTEN_URL")) {
      std::cerr << "DATABASE_LISTEN_URL: " << *problem << "\n";
      return 2;
    }
  } else if (!statements.prepared) {
    todo::log::warn(
      "!! DATABASE_LISTEN_URL is not set, and DATABASE_URL is taken to go through a pooler in "
      "transaction mode (DB_PREPARED resolved to false). LISTEN does not work through such a "
      "pooler: with more than one instance, the others' caches miss the writes made here (and "
      "serve stale tasks), and every live-update stream (GET /api/tasks/events) misses writes. "
      "Set DATABASE_LISTEN_URL to the direct (non-pooler) URL of the same database (Neon: the "
      "host without -pooler).");
  }

  caf::actor_system_config sys_cfg;
  sys_cfg.set("scheduler.max-threads", static_cast<size_t>(cfg.threads));
  sys_cfg.set("logger.console-verbosity", caf::atom("quiet"));
  sys_cfg.set("logger.file-verbosity", caf::atom("quiet"));
  todo::use_quiet_scheduler(sys_cfg); // CAF's work stealing without per-message logger work
  caf::actor_system sys{sys_cfg};

  todo::db::db_config db_cfg;
  db_cfg.conninfo = cfg.database_url;
  db_cfg.timeout = db_timeout;
  db_cfg.pool_size = static_cast<size_t>(cfg.db_pool_size);
  db_cfg.queue_limit = cfg.db_queue_limit;
  db_cfg.max_batch = cfg.group_commit_max;
  db_cfg.idempotency_ttl_s = cfg.idempotency_ttl_s;
  db_cfg.prepared = statements.prepared;

  todo::trace::enable(cfg.trace_stages);
  auto db = todo::db::spawn_db_pool(sys, db_cfg);

  todo::jwt::options jwt_opts;
  jwt_opts.hs256_secret = cfg.better_auth_secret;
  jwt_opts.algorithms = cfg.jwt_algorithms;
  jwt_opts.leeway_seconds = cfg.jwt_leeway_seconds;
  jwt_opts.require_exp = cfg.jwt_require_exp;
  jwt_opts.issuer = cfg.better_auth_issuer;
  jwt_opts.audience = cfg.better_auth_audience;
  todo::auth_config auth_cfg;
  auth_cfg.opts = jwt_opts;
  auth_cfg.jwks_url = cfg.jwks_url;
  auth_cfg.jwks_file = cfg.jwks_file;
  auth_cfg.cache_size = cfg.token_cache_size;
  // Couriers keep their own copy of recent verdicts (no auth round trip on a hit), dropped
  // whenever the auth actor installs another key set.
  todo::courier_tokens courier_tokens;
  if (cfg.token_cache_size > 0) {
    auth_cfg.generation = std::make_shared<std::atomic<uint64_t>>(0);
    courier_tokens.generation = auth_cfg.generation;
    courier_tokens.capacity = std::min<size_t>(cfg.token_cache_size, 4096);
    courier_tokens.max_ttl_seconds = auth_cfg.cache_ttl_seconds;
  }
  auth_cfg.fetch = [](const std::string& url) {
    auto r = todo::http::fetch_url(url);
    return todo::jwks_fetch_result{std::move(r.body), std::move(r.error)};
  };
  auto auth = sys.spawn(todo::auth, std::move(auth_cfg));

  todo::registry_limits limits;
  limits.db_timeout = db_timeout;
  limits.user_idle = std::chrono::milliseconds(cfg.user_idle_ms);
  limits.max_pending_per_user = cfg.max_pending_per_user;
  limits.cache_limit = cfg.cache_tasks_per_user;
  auto shards = 2 * static_cast<size_t>(cfg.threads);
  if (cfg.cache_max_mb > 0)
    limits.budget = std::make_shared<todo::cache_budget>(cfg.cache_max_mb << 20);
  todo::registry_shards registries;
  for (size_t i = 0; i < shards; ++i)
    registries.push_back(sys.spawn(todo::user_registry, db, limits));
  if (limits.budget)
    for (const auto& r : registries)
      limits.budget->shards.push_back(r.address());

  // Live updates: every committed change of a followed user, from any writer, in commit order.
  todo::http::hub_limits hub_limits;
  hub_limits.max_per_user = cfg.sse_max_per_user;
  hub_limits.max_streams = cfg.sse_max_streams;
  hub_limits.replay_events = cfg.sse_replay_events;
  todo::http::event_hub hub{hub_limits};

  // LISTEN/NOTIFY: every committed change (ours, other instances', psql's) updates the
  // user's cached copy in place, if a TaskManager holds one, and feeds the event hub. After a
  // reconnect both start over (notifications may have been lost).
  bool caching = cfg.cache_tasks_per_user > 0;
  std::optional<todo::db::change_listener> listener;
  listener.emplace(
    todo::db::with_timeouts(listen_url, db_timeout),
    [registries, caching, &hub](std::vector<todo::task_change>& changes) {
      for (const auto& change : changes)
        todo::http::publish_change(hub, change);
      if (!caching)
        return;
      // One message per registry shard for all that arrived together (not one per row).
      std::vector<std::vector<todo::task_change>> by_shard(registries.size());
      for (auto& change : changes)
        by_shard[todo::shard_index(registries, change.user)].push_back(std::move(change));
      for (size_t i = 0; i < by_shard.size(); ++i)
        if (!by_shard[i].empty())
          caf::anon_send(registries[i], todo::atom::apply::value, std::move(by_shard[i]));
    },
    [registries, caching, &hub] {
      if (caching)
        for (const auto& r : registries)
          caf::anon_send(r, todo::atom::invalidate::value);
      hub.reset_all();
    });

  // Serve only once the feed is listening: a cache filled or a stream opened before would
  // miss what was committed meanwhile.
  if (!listener->wait_connected(std::chrono::milliseconds(std::min<int64_t>(
        cfg.db_timeout_ms + cfg.db_connect_wait_ms, 10000))))
    todo::log::warn("the change listener is not connected yet; serving anyway (caches and "
                    "event streams are reset when it connects)");

  // Expired Idempotency-Keys go in the background.
  todo::db::key_janitor janitor{todo::db::with_timeouts(cfg.database_url, db_timeout),
                                cfg.idempotency_ttl_s,
                                std::chrono::milliseconds(cfg.idempotency_purge_ms)};

  // The client's wait is bounded by the database timeout plus a little for the hops.
  auto gw = todo::make_actor_gateway(sys, auth, registries, db, db_timeout + 500ms,
                                     2 * static_cast<size_t>(cfg.threads), courier_tokens);
  todo::http::server_context ctx{cfg, *gw};
  ctx.hub = &hub;
  ctx.request_id_prefix = random_prefix();
  ctx.docs = todo::http::load_docs_assets(cfg.docs_dir.empty() ? todo::http::default_docs_dir()
                                                               : cfg.docs_dir);
  if (!ctx.docs.ok())
    todo::log::warn("/docs has no Swagger UI: " + ctx.docs.problem +
                              " (the build installs swagger-ui-dist with npm; see README)");

  // One io_context per I/O thread: sessions never share a scheduler lock. The first one
  // also runs the acceptor, the signals and the drain timer.
  std::vector<std::unique_ptr<net::io_context>> iocs;
  std::vector<net::io_context*> workers;
  for (int i = 0; i < cfg.threads; ++i) {
    iocs.push_back(std::make_unique<net::io_context>(1));
    workers.push_back(iocs.back().get());
  }
  auto& ioc = *iocs.front();
  todo::http::listener lst{ioc, workers, ctx, tls.get()};
  try {
    lst.open();
  } catch (const std::exception& e) {
    std::string why = e.what();
    if (auto sys = dynamic_cast<const boost::system::system_error*>(&e)) {
      // The error's own words, without Boost's source location; what to do about the usual one.
      why = sys->code().message();
      if (sys->code() == boost::asio::error::address_in_use)
        why += " (another process listens on port " + std::to_string(cfg.port) +
               "; stop it or set PORT)";
    }
    todo::log::error("cannot listen on " + cfg.host + ":" + std::to_string(cfg.port) + ": " + why);
    for (const auto& r : registries)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(auth, caf::exit_reason::user_shutdown);
    return 1;
  }
  lst.start();
  todo::log::info(std::string{"listening on "} + (tls ? "https://" : "http://") + cfg.host + ":" +
                  std::to_string(lst.port()) + " (" +
                  std::to_string(cfg.threads) + " I/O threads, " +
                  std::to_string(cfg.db_pool_size) + " DB connections)");

  // Shutdown: stop accepting, let in-flight requests finish (up to the grace period), stop.
  net::signal_set signals{ioc, SIGINT, SIGTERM};
  net::steady_timer drain{ioc};
  auto deadline = std::make_shared<std::chrono::steady_clock::time_point>();
  std::function<void()> poll = [&] {
    // Done when every session has answered what it read and closed.
    bool idle = ctx.in_flight.load() == 0 && ctx.connections.load() == 0;
    if (idle || std::chrono::steady_clock::now() >= *deadline) {
      if (!idle)
        todo::log::warn("shutdown grace period over with requests still in flight");
      for (auto& x : iocs)
        x->stop();
      return;
    }
    drain.expires_after(10ms);
    drain.async_wait([&](boost::system::error_code) { poll(); });
  };
  auto start_drain = [&] {
    if (ctx.draining)
      return;
    lst.stop();
    ctx.drain();
    *deadline = std::chrono::steady_clock::now() +
                std::chrono::milliseconds(cfg.shutdown_grace_ms);
    poll();
  };
  // SIGTERM (an orchestrator's stop) with DRAIN_DELAY_MS: first only /ready turns 503 so that
  // the load balancer's health check takes this instance out while it still serves; then the
  // drain. SIGINT (a person at a terminal), or a second signal, drains at once.
  net::steady_timer leave_timer{ioc};
  std::function<void()> await_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec)
        return;
      const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
      if (sig == SIGTERM && cfg.drain_delay_ms > 0 && !ctx.leaving) {
        todo::log::info(std::string{"received "} + name + ": /ready answers 503 for " +
                        std::to_string(cfg.drain_delay_ms) + " ms, then draining");
        ctx.leaving = true;
        leave_timer.expires_after(std::chrono::milliseconds(cfg.drain_delay_ms));
        leave_timer.async_wait([&](boost::system::error_code e) {
          if (!e)
            start_drain();
        });
        await_signal();
        return;
      }
      todo::log::info(std::string{"received "} + name + ", draining");
      leave_timer.cancel();
      start_drain();
    });
  };
  await_signal();

  std::vector<std::thread> threads;
  for (int i = 1; i < cfg.threads; ++i)
    threads.emplace_back([&x = *iocs[static_cast<size_t>(i)]] {
      // Idle I/O threads must keep running until shutdown stops them.
      auto guard = net::make_work_guard(x);
      x.run();
    });
  ioc.run();
  for (auto& t : threads)
    t.join();

  listener.reset();
  gw.reset(); // stops the couriers
  for (const auto& r : registries)
    caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(auth, caf::exit_reason::user_shutdown);
  // Couriers still in flight hold session callbacks: let every actor finish while the
  // io_context (which the sessions' sockets belong to) is still alive.
  sys.await_all_actors_done();
  if (cfg.trace_stages)
    for (const auto& line : todo::trace::report())
      todo::log::info("trace: " + line);
  todo::log::info("stopped");
  todo::log::stop_writer(); // every line written before the process exits
  return 0;
}

// ------------------------------------------------------------------ subcommands

const char* const usage_text =
  "usage: todo-api [COMMAND] [OPTIONS]\n"
  "commands:\n"
  "  serve      run the service (the default when no command is given)\n"
  "  migrate    apply pending database migrations and exit (--status: list them)\n"
  "  check      validate the settings and that the database and the JWKS answer\n"
  "  token      print a signed development token (--sub USER_ID)\n"
  "  gen-jwk    print a fresh Ed25519 private JWK\n"
  "  version    print the versions of the service and its libraries\n"
  "`todo-api COMMAND --help` tells more. Exit codes: 0 success, 2 a setting, the database or\n"
  "the JWKS is wrong or unreachable (one line on stderr names it), 1 anything else.\n\n";

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h")
      return true;
  return false;
}

/// DATABASE_URL from `--database-url`, the environment or .env (in that order).
std::string database_url_of(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--database-url" && i + 1 < args.size())
      return args[i + 1];
    if (args[i].rfind("--database-url=", 0) == 0)
      return args[i].substr(15);
  }
  auto env = todo::environment_map();
  if (auto i = env.find("DATABASE_URL"); i != env.end() && !i->second.empty())
    return i->second;
  auto dotenv = todo::parse_dotenv(todo::read_dotenv_file());
  return dotenv["DATABASE_URL"];
}

/// The PostgreSQL server's version, or why it is not known (never the password).
std::string server_version(const std::string& url) {
  if (url.empty())
    return "unknown (DATABASE_URL is not set)";
  if (auto problem = todo::db::conninfo_problem(url))
    return "unknown (DATABASE_URL: " + *problem + ")";
  const char* keys[] = {"dbname", "connect_timeout", nullptr};
  const char* values[] = {url.c_str(), "3", nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 1);
  std::string out;
  if (PQstatus(c) == CONNECTION_OK) {
    out = PQparameterStatus(c, "server_version") ? PQparameterStatus(c, "server_version") : "?";
  } else {
    out = "unknown (" + todo::db::redact(PQerrorMessage(c), url) + ")";
  }
  PQfinish(c);
  return out;
}

int version_command(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << "usage: todo-api version [--database-url URL]\n"
                 "Prints the service's version and commit and the versions of CAF, Boost,\n"
                 "libpqxx, libpq, OpenSSL and (when DATABASE_URL answers) the PostgreSQL server.\n";
    return 0;
  }
  int pq = PQlibVersion();
  std::cout << "todo-api " << todo::http::build_version() << " (commit "
            << todo::http::build_commit_id() << ")\n"
            << "CAF " << CAF_MAJOR_VERSION << "." << CAF_MINOR_VERSION << "."
            << CAF_PATCH_VERSION << "\n"
            << "Boost " << BOOST_VERSION / 100000 << "." << BOOST_VERSION / 100 % 1000 << "."
            << BOOST_VERSION % 100 << "\n"
            << "libpqxx " << PQXX_VERSION << "\n"
            << "libpq " << pq / 10000 << "." << pq % 10000 << "\n"
            << OpenSSL_version(OPENSSL_VERSION) << "\n"
            << "PostgreSQL server " << server_version(database_url_of(args)) << "\n";
  return 0;
}

int migrate_command(const std::vector<std::string>& args) {
  bool status = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--status")
      status = true;
    else if (args[i] == "--database-url")
      ++i;
    else if (args[i].rfind("--database-url=", 0) == 0 || args[i] == "--help" || args[i] == "-h")
      continue;
    else {
      std::cerr << args[i] << ": unknown option (see todo-api migrate --help)\n";
      return 2;
    }
  }
  if (wants_help(args)) {
    std::cout << "usage: todo-api migrate [--status] [--database-url URL]\n"
                 "Applies the pending migrations (embedded in this binary) to DATABASE_URL and\n"
                 "exits 0; --status lists each migration as applied (with its time) or pending\n"
                 "and changes nothing. Safe to run from several deploy jobs at once (an advisory\n"
                 "lock makes them take turns). Waits up to DB_CONNECT_WAIT_MS (30000) for a\n"
                 "database that is not up yet. Exit 2 when the database cannot be reached.\n";
    return 0;
  }
  auto url = database_url_of(args);
  if (url.empty()) {
    std::cerr << "DATABASE_URL: required (environment, .env or --database-url)\n";
    return 2;
  }
  if (auto problem = todo::db::conninfo_problem(url)) {
    std::cerr << "DATABASE_URL: " << *problem << "\n";
    return 2;
  }
  try {
    if (status) {
      auto states = todo::db::migration_states(url);
      size_t pending = 0;
      for (const auto& m : states) {
        std::cout << (m.applied_at.empty() ? "pending  " : "applied  ") << m.version << "  "
                  << m.name << (m.applied_at.empty() ? "" : "  " + m.applied_at)
                  << (m.known ? "" : "  (not in this binary: applied by a newer version)")
                  << "\n";
        pending += m.applied_at.empty() ? 1 : 0;
      }
      std::cout << pending << " pending\n";
      return 0;
    }
    auto env = todo::environment_map();
    int64_t wait = 30000;
    if (auto i = env.find("DB_CONNECT_WAIT_MS"); i != env.end())
      wait = std::atoll(i->second.c_str());
    auto before = todo::db::migration_states(url);
    if (auto problem = todo::db::prepare_database(url, 5000, wait)) {
      std::cerr << "DATABASE_URL: " << *problem << "\n";
      return 2;
    }
    auto after = todo::db::migration_states(url);
    size_t was = 0, now = 0;
    for (const auto& m : before)
      was += m.applied_at.empty() ? 0 : 1;
    for (const auto& m : after)
      now += m.applied_at.empty() ? 0 : 1;
    std::cout << "migrations: " << now - std::min(now, was) << " applied now, " << now
              << " applied in all, schema at version "
              << (after.empty() ? 0 : after.back().version) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "DATABASE_URL: " << todo::db::redact(e.what(), url) << "\n";
    return 2;
  }
}

int check_command(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << "usage: todo-api check [SETTINGS FLAGS]\n"
                 "Validates every setting (as `serve` would), connects to DATABASE_URL and reports\n"
                 "pending migrations (it applies none), and reads the JWKS when one is set. Exit\n"
                 "0 when all is well, else 2 with one line naming the setting and the reason.\n";
    return 0;
  }
  auto loaded = todo::load_settings(args, todo::environment_map(), todo::read_dotenv_file());
  if (loaded.error) {
    std::cerr << loaded.error->line() << "\n";
    return 2;
  }
  const auto& cfg = *loaded.value;
  std::cout << "settings: ok\n";
  if (auto problem = todo::db::conninfo_problem(cfg.database_url)) {
    std::cerr << "DATABASE_URL: " << *problem << "\n";
    return 2;
  }
  auto probe = todo::db::probe(cfg.database_url);
  if (probe.outcome != todo::db::probe_result::ok) {
    std::cerr << "DATABASE_URL: " << probe.reason << "\n";
    return 2;
  }
  try {
    size_t pending = 0;
    for (const auto& m : todo::db::migration_states(cfg.database_url))
      pending += m.applied_at.empty() ? 1 : 0;
    std::cout << "database: ok (PostgreSQL " << server_version(cfg.database_url) << ", "
              << pending << " migration(s) pending; `serve` and `migrate` apply them)\n";
  } catch (const std::exception& e) {
    std::cerr << "DATABASE_URL: " << todo::db::redact(e.what(), cfg.database_url) << "\n";
    return 2;
  }
  std::cout << "statements: "
            << todo::db::choose_statement_mode(cfg.db_prepared, cfg.database_url).reason << "\n";
  if (!cfg.database_listen_url.empty()) {
    auto listen = todo::db::conninfo_problem(cfg.database_listen_url);
    if (!listen) {
      auto p = todo::db::probe(cfg.database_listen_url);
      if (p.outcome != todo::db::probe_result::ok)
        listen = p.reason;
    }
    if (listen) {
      std::cerr << "DATABASE_LISTEN_URL: " << *listen << "\n";
      return 2;
    }
    std::cout << "listen database: ok\n";
  }
  if (!cfg.jwks_file.empty()) {
    auto r = todo::jwks::parse_file(cfg.jwks_file);
    if (!r) {
      std::cerr << "BETTER_AUTH_JWKS_FILE: " << r.error << "\n";
      return 2;
    }
    std::cout << "jwks file: ok (" << r.keys->size() << " key(s))\n";
  }
  if (!cfg.jwks_url.empty()) {
    auto f = todo::http::fetch_url(cfg.jwks_url);
    if (!f.ok()) {
      std::cerr << "BETTER_AUTH_JWKS_URL: " << f.error << "\n";
      return 2;
    }
    auto r = todo::jwks::parse(f.body);
    if (!r) {
      std::cerr << "BETTER_AUTH_JWKS_URL: " << r.error << "\n";
      return 2;
    }
    std::cout << "jwks url: ok (" << r.keys->size() << " key(s))\n";
  }
  std::cout << "check: ok\n";
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "serve")
    args.erase(args.begin());
  else if (!args.empty() && args[0] == "migrate")
    return migrate_command({args.begin() + 1, args.end()});
  else if (!args.empty() && args[0] == "check")
    return check_command({args.begin() + 1, args.end()});
  else if (!args.empty() && args[0] == "version")
    return version_command({args.begin() + 1, args.end()});
  else if (!args.empty() && (args[0] == "--version" || args[0] == "-V"))
    return version_command({});
  if (auto code = todo::jwt::run_subcommand(args))
    return *code;
  auto loaded = todo::load_settings(args, todo::environment_map(), todo::read_dotenv_file());
  if (loaded.help) {
    std::cout << usage_text << todo::help_text();
    return 0;
  }
  if (loaded.error) {
    std::cerr << loaded.error->line() << "\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  return serve(*loaded.value);
}
