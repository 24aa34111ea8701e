// todo-api: the Todo REST API server, and a `token` subcommand that mints dev tokens.

#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "actors/actor_gateway.hpp"
#include "actors/auth.hpp"
#include "actors/jwks.hpp"
#include "actors/user_registry.hpp"
#include "config/log.hpp"
#include "config/settings.hpp"
#include "http/jwks_fetch.hpp"
#include "http/listener.hpp"
#include "persistence/change_listener.hpp"
#include "persistence/db_pool.hpp"
#include "persistence/migrations.hpp"
#include "persistence/startup_check.hpp"

namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

std::string read_dotenv() {
  std::ifstream in{".env"};
  if (!in)
    return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20)
      out += c;
  }
  return out;
}

int token_command(const std::vector<std::string>& args) {
  std::string sub, jwk_file, iss, aud;
  long long ttl = 3600;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= args.size()) {
        std::cerr << name << ": missing value\n";
        std::exit(2);
      }
      return args[++i];
    };
    if (args[i] == "--sub")
      sub = value("--sub");
    else if (args[i] == "--ttl")
      ttl = std::stoll(value("--ttl"));
    else if (args[i] == "--jwk")
      jwk_file = value("--jwk");
    else if (args[i] == "--iss")
      iss = value("--iss");
    else if (args[i] == "--aud")
      aud = value("--aud");
    else if (args[i] == "--help" || args[i] == "-h") {
      std::cout << "usage: todo-api token --sub USER_ID [--ttl SECONDS] [--iss I] [--aud A]"
                   " [--jwk PRIVATE_JWK_FILE]\n"
                   "Prints an HS256 token signed with BETTER_AUTH_SECRET (env or .env), or an\n"
                   "EdDSA token signed with the private JWK (see `todo-api gen-jwk`).\n";
      return 0;
    } else {
      std::cerr << args[i] << ": unknown option\n";
      return 2;
    }
  }
  if (sub.empty()) {
    std::cerr << "--sub: required\n";
    return 2;
  }
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  std::string payload = "{\"sub\":\"" + json_escape(sub) + "\",\"iat\":" + std::to_string(now) +
                        ",\"exp\":" + std::to_string(now + ttl);
  if (!iss.empty())
    payload += ",\"iss\":\"" + json_escape(iss) + "\"";
  if (!aud.empty())
    payload += ",\"aud\":\"" + json_escape(aud) + "\"";
  payload += "}";
  if (!jwk_file.empty()) {
    std::ifstream in{jwk_file};
    if (!in) {
      std::cerr << "--jwk: cannot read the file\n";
      return 2;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    try {
      std::cout << todo::jwt::sign_eddsa(ss.str(), payload) << "\n";
    } catch (const std::exception&) {
      std::cerr << "--jwk: not an Ed25519 private JWK\n";
      return 2;
    }
    return 0;
  }
  auto env = todo::environment_map();
  auto dotenv = todo::parse_dotenv(read_dotenv());
  std::string secret = env.count("BETTER_AUTH_SECRET") ? env["BETTER_AUTH_SECRET"]
                                                       : dotenv["BETTER_AUTH_SECRET"];
  if (secret.empty()) {
    std::cerr << "BETTER_AUTH_SECRET: required\n";
    return 2;
  }
  std::cout << todo::jwt::sign_hs256(secret, payload) << "\n";
  return 0;
}

todo::log::level parse_level(const std::string& s) {
  if (s == "debug")
    return todo::log::level::debug;
  if (s == "warn")
    return todo::log::level::warn;
  if (s == "error")
    return todo::log::level::error;
  return todo::log::level::info;
}

// Reaches the database and applies the migrations. A DATABASE_URL mistake (unparsable, unknown
// option value, database or role, bad credentials) is named at once; a server that is not up
// yet is waited for, up to DB_CONNECT_WAIT_MS, each failed attempt saying why. Returns false
// after printing the one line that names DATABASE_URL.
bool prepare_database(const todo::settings& cfg) {
  auto fail = [](const std::string& why) {
    std::cerr << "DATABASE_URL: " << why << "\n";
    return false;
  };
  if (auto problem = todo::db::conninfo_problem(cfg.database_url))
    return fail("cannot be parsed: " + *problem);
  auto conninfo =
    todo::db::with_timeouts(cfg.database_url, std::chrono::milliseconds(cfg.db_timeout_ms));
  auto reached = todo::db::wait_for_database(
    conninfo, std::chrono::milliseconds(cfg.db_connect_wait_ms),
    [&cfg](const std::string& reason, std::chrono::milliseconds spent) {
      todo::log::warn("database not reachable yet (" + std::to_string(spent.count()) + " of " +
                      std::to_string(cfg.db_connect_wait_ms) + " ms): " + reason +
                      "; retrying");
    });
  if (reached.outcome != todo::db::probe_result::ok)
    return fail(reached.reason);
  try {
    auto n = todo::db::migrate(conninfo);
    todo::log::info("schema up to date (" + std::to_string(n) + " migration(s) applied)");
    return true;
  } catch (const std::exception& e) {
    return fail("cannot apply the schema migrations: " +
                todo::db::redact(e.what(), cfg.database_url));
  }
}

std::string random_prefix() {
  std::random_device rd;
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i)
    out += hex[rd() % 16];
  return out + "-";
}

int serve(const todo::settings& cfg) {
  todo::log::configure(parse_level(cfg.log_level), cfg.log_format == "json");
  if (!cfg.jwks_file.empty() && !todo::jwks::parse_file(cfg.jwks_file)) {
    std::cerr << "BETTER_AUTH_JWKS_FILE: not a usable JWKS document\n";
    return 2;
  }
  auto db_timeout = std::chrono::milliseconds(cfg.db_timeout_ms);
  if (!prepare_database(cfg))
    return 2;

  caf::actor_system_config sys_cfg;
  sys_cfg.set("scheduler.max-threads", static_cast<size_t>(cfg.threads));
  sys_cfg.set("logger.console-verbosity", caf::atom("quiet"));
  sys_cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{sys_cfg};

  todo::db::db_config db_cfg;
  db_cfg.conninfo = cfg.database_url;
  db_cfg.timeout = db_timeout;
  db_cfg.pool_size = static_cast<size_t>(cfg.db_pool_size);
  db_cfg.queue_limit = cfg.db_queue_limit;
  db_cfg.max_batch = cfg.group_commit_max;
  db_cfg.instance_id = random_prefix();
  db_cfg.instance_id.pop_back(); // drop the '-'

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
  todo::registry_shards registries;
  for (int i = 0; i < 2 * cfg.threads; ++i)
    registries.push_back(sys.spawn(todo::user_registry, db, limits));

  // Other instances' writes invalidate our cached users (LISTEN/NOTIFY).
  std::optional<todo::db::change_listener> listener;
  if (cfg.cache_tasks_per_user > 0)
    listener.emplace(
      todo::db::with_timeouts(cfg.database_url, db_timeout), db_cfg.instance_id,
      [registries](const std::string& user) {
        caf::anon_send(todo::shard_for(registries, user), todo::atom::invalidate::value, user);
      },
      [registries] {
        for (const auto& r : registries)
          caf::anon_send(r, todo::atom::invalidate::value);
      });

  // The client's wait is bounded by the database timeout plus a little for the hops.
  auto gw = todo::make_actor_gateway(sys, auth, registries, db, db_timeout + 500ms,
                                     2 * static_cast<size_t>(cfg.threads));
  todo::http::server_context ctx{cfg, *gw};
  ctx.request_id_prefix = random_prefix();

  // One io_context per I/O thread: sessions never share a scheduler lock. The first one
  // also runs the acceptor, the signals and the drain timer.
  std::vector<std::unique_ptr<net::io_context>> iocs;
  std::vector<net::io_context*> workers;
  for (int i = 0; i < cfg.threads; ++i) {
    iocs.push_back(std::make_unique<net::io_context>(1));
    workers.push_back(iocs.back().get());
  }
  auto& ioc = *iocs.front();
  todo::http::listener lst{ioc, workers, ctx};
  try {
    lst.open();
  } catch (const std::exception& e) {
    todo::log::error("cannot listen on " + cfg.host + ":" + std::to_string(cfg.port) + ": " +
                     e.what());
    for (const auto& r : registries)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(auth, caf::exit_reason::user_shutdown);
    return 1;
  }
  lst.start();
  todo::log::info("listening on " + cfg.host + ":" + std::to_string(lst.port()) + " (" +
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
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec)
      return;
    todo::log::info(std::string{"received "} + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                    ", draining");
    lst.stop();
    ctx.drain();
    *deadline = std::chrono::steady_clock::now() +
                std::chrono::milliseconds(cfg.shutdown_grace_ms);
    poll();
  });

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
  todo::log::info("stopped");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "token")
    return token_command({args.begin() + 1, args.end()});
  if (!args.empty() && args[0] == "gen-jwk") {
    // Prints a fresh Ed25519 private JWK; its public half (without "d") is a one-key JWKS.
    std::string kid = args.size() > 2 && args[1] == "--kid" ? args[2] : "dev";
    std::cout << todo::jwks::generate_ed25519_jwk(kid) << "\n";
    return 0;
  }
  auto loaded = todo::load_settings(args, todo::environment_map(), read_dotenv());
  if (loaded.help) {
    std::cout << todo::help_text();
    return 0;
  }
  if (loaded.error) {
    std::cerr << loaded.error->line() << "\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  return serve(*loaded.value);
}
