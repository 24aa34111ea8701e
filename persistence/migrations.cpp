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
  auto run = [&conn](const std::string& text) {
    pqxx::nontransaction n{conn};
    n.exec(text);
  };
  // A session-level lock: it outlives the transactions below and dies with the connection.
  run("SELECT pg_advisory_lock(" + std::to_string(migration_lock_key) + ")");
  int applied = 0;
  try {
    {
      pqxx::work w{conn};
      w.exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
             "version int PRIMARY KEY, name text NOT NULL, "
             "applied_at timestamptz NOT NULL DEFAULT now())");
      w.commit();
    }
    for (const auto& m : embedded_migrations()) {
      pqxx::work w{conn};
      auto r = w.exec("SELECT 1 FROM schema_migrations WHERE version = " +
                      std::to_string(m.version));
      if (!r.empty())
        continue;
      w.exec(m.sql);
      w.exec("INSERT INTO schema_migrations (version, name) VALUES (" +
             std::to_string(m.version) + ", " + w.quote(std::string{m.name}) + ")");
      w.commit();
      ++applied;
    }
  } catch (...) {
    run("SELECT pg_advisory_unlock(" + std::to_string(migration_lock_key) + ")");
    throw;
  }
  run("SELECT pg_advisory_unlock(" + std::to_string(migration_lock_key) + ")");
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
