// The database the persistence tests run against: the throwaway PostgreSQL that scripts/test
// starts (never a mock). Shared by the test files of tests/persistence.
#pragma once

#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>

namespace todo::test {

inline std::string database_url() {
  const char* url = std::getenv("TEST_DATABASE_URL");
  if (!url || !*url)
    FAIL("TEST_DATABASE_URL is not set: run the tests through scripts/test");
  return url;
}

} // namespace todo::test
