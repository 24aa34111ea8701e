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

/// Applies every pending migration under an advisory lock, so that instances starting
/// together do not collide. Returns the number applied; throws on failure.
int migrate(const std::string& conninfo);

} // namespace todo::db
