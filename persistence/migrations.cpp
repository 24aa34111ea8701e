#include "persistence/migrations.hpp"

#include <map>

#include <pqxx/pqxx>

namespace todo::db {

namespace {
// Any constant shared by all instances of this service; "todo" in ASCII.
constexpr long long migration_lock_key = 0x746f646f;
} // namespace

int migrate(const std::string& conninfo) {
  pqxx::connection conn{conninfo};
  // Each step is one transaction that first takes a transaction-level advisory lock, so that
  // instances starting together take turns, and then looks at what is applied (READ
  // COMMITTED: that statement sees what the previous holder committed). Nothing outlives the
  // transaction, so this also works through a pooler in transaction mode (PgBouncer, Neon's
  // pooled endpoint), where a session-level lock and its unlock could run on different
  // server connections and the lock could stay behind on one of them.
  auto locked = [&conn](const auto& body) {
    pqxx::work w{conn};
    w.exec("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
    w.exec("SELECT pg_advisory_xact_lock(" + std::to_string(migration_lock_key) + ")");
    bool changed = body(w);
    w.commit();
    return changed;
  };
  locked([](pqxx::work& w) {
    w.exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
           "version int PRIMARY KEY, name text NOT NULL, "
           "applied_at timestamptz NOT NULL DEFAULT now())");
    return true;
  });
  int applied = 0;
  for (const auto& m : embedded_migrations()) {
    bool done = locked([&m](pqxx::work& w) {
      auto r = w.exec("SELECT 1 FROM schema_migrations WHERE version = " +
                      std::to_string(m.version));
      if (!r.empty())
        return false;
      w.exec(m.sql);
      w.exec("INSERT INTO schema_migrations (version, name) VALUES (" +
             std::to_string(m.version) + ", " + w.quote(std::string{m.name}) + ")");
      return true;
    });
    applied += done ? 1 : 0;
  }
  return applied;
}

std::vector<migration_state> migration_states(const std::string& conninfo) {
  pqxx::connection conn{conninfo};
  pqxx::nontransaction n{conn};
  std::map<int, migration_state> all;
  for (const auto& m : embedded_migrations())
    all[m.version] = migration_state{m.version, m.name, {}, true};
  if (!n.exec("SELECT to_regclass('schema_migrations')")[0][0].is_null()) {
    auto rows = n.exec("SELECT version, name, to_char(applied_at AT TIME ZONE 'UTC', "
                       "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM schema_migrations ORDER BY version");
    for (const auto& r : rows) {
      auto v = r[0].as<int>();
      auto i = all.find(v);
      if (i == all.end())
        i = all.emplace(v, migration_state{v, r[1].as<std::string>(), {}, false}).first;
      i->second.applied_at = r[2].as<std::string>();
    }
  }
  std::vector<migration_state> out;
  for (auto& [v, s] : all)
    out.push_back(std::move(s));
  return out;
}

} // namespace todo::db
