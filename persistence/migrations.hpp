#pragma once

#include <string>
#include <vector>

namespace todo::db {

struct migration {
  int version;
  const char* name;
  const char* sql;
};

/// Returns the migrations compiled into the binary, in version order.
const std::vector<migration>& embedded_migrations();

/// Applies every pending migration, each in a transaction holding a transaction-level advisory
/// lock, so that instances starting together do not collide (also through a pooler in
/// transaction mode). Returns the number applied; throws on failure.
int migrate(const std::string& conninfo);

/// One migration as the database knows it: applied (when) or pending; `known` is false for a
/// version applied by a newer binary than this one.
struct migration_state {
  int version = 0;
  std::string name;
  std::string applied_at; // empty: pending
  bool known = true;
};

/// The embedded migrations and the applied ones, in version order. Changes nothing; throws
/// when the database cannot be read.
std::vector<migration_state> migration_states(const std::string& conninfo);

} // namespace todo::db
