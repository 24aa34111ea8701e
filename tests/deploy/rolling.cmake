# A rolling deploy seen from the client's side (issue 15, part 4), included from
# tests/deploy/CMakeLists.txt: 3 instances behind nginx (deploy/render), 16 keep-alive clients
# reading and writing (Idempotency-Key on every write, retried as README tells clients to) while
# each instance in turn gets SIGTERM, exits 0 and is started again. Fails on any failed read,
# any write still failing after its retries, any acknowledged write missing or doubled in the
# database, any exit other than 0. Node's built-in modules only (no npm ci); runs from the source
# tree. Takes ~35 s. TEST_DATABASE_URL (scripts/test) is where it creates its own database.
include(${CMAKE_SOURCE_DIR}/tests/node_tests.cmake)
todo_node_missing_tests(deploy deploy.rolling_restart)
if(NOT TODO_NODE_MISSING)
  add_test(NAME deploy.rolling_restart
    COMMAND ${TODO_NODE_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/rolling_restart_test.mjs)
  set_tests_properties(deploy.rolling_restart PROPERTIES TIMEOUT 180
    ENVIRONMENT "TODO_API_BINARY=$<TARGET_FILE:todo-api>;CT_TEST_TIMEOUT_S=150")
endif()
