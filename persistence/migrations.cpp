#include "persistence/migrations.hpp"

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

} // namespace todo::db
