# Helpers for the test areas that run Node.js (tests/better_auth, tests/contract). Each area
# installs its own pinned package-lock.json into the build directory and runs its scripts
# from there, next to node_modules; nothing is installed into the source tree.

find_program(TODO_NODE_EXECUTABLE NAMES node nodejs)
find_program(TODO_NPM_EXECUTABLE NAMES npm)

# Without node or npm the build still succeeds (the other tests must run), and each of TESTS
# is registered as a failing one that says what to install: never a silent skip. Sets
# TODO_NODE_MISSING in the caller when so.
function(todo_node_missing_tests area)
  if(TODO_NODE_EXECUTABLE AND TODO_NPM_EXECUTABLE)
    set(TODO_NODE_MISSING FALSE PARENT_SCOPE)
    return()
  endif()
  message(WARNING "${area} tests: node and/or npm not found; they will fail. Install Node.js >= 20 with npm (Debian packages: nodejs npm).")
  foreach(t ${ARGN})
    add_test(NAME ${t} COMMAND ${CMAKE_COMMAND} -E echo
      "FAIL: node and/or npm not found when CMake configured this build. Install Node.js >= 20 and npm (Debian packages: nodejs npm), then re-run cmake.")
    # `cmake -E echo` exits 0: make the test fail on its own message.
    set_tests_properties(${t} PROPERTIES FAIL_REGULAR_EXPRESSION "FAIL:")
  endforeach()
  set(TODO_NODE_MISSING TRUE PARENT_SCOPE)
endfunction()

# A test NAME that runs `npm ci` of SRC's package.json + package-lock.json in DIR, as the
# fixture FIXTURE for the tests that need it. `npm ci` runs as a test, not at build time: without
# the npm registry only these tests fail, never the build. A stamp inside node_modules skips it
# while the lock file is unchanged (deleting node_modules makes the next run reinstall).
function(todo_npm_ci_test name src dir fixture)
  file(MAKE_DIRECTORY ${dir})
  set(stamp ${dir}/node_modules/.todo-npm-ci.stamp)
  add_test(NAME ${name}
    COMMAND sh -c "if [ -f '${stamp}' ] && cmp -s '${src}/package-lock.json' '${dir}/package-lock.json'; then echo 'npm ci: up to date'; exit 0; fi; cp '${src}/package.json' '${src}/package-lock.json' '${dir}/' && '${TODO_NPM_EXECUTABLE}' ci --no-audit --no-fund --loglevel=error && touch '${stamp}'"
    WORKING_DIRECTORY ${dir})
  set_tests_properties(${name} PROPERTIES FIXTURES_SETUP ${fixture} TIMEOUT 600)
endfunction()

# A target TARGET (built by ALL) that copies FILES (relative to SRC) into DIR when they change.
function(todo_copy_to_build target src dir)
  set(outputs)
  foreach(f ${ARGN})
    get_filename_component(sub ${dir}/${f} DIRECTORY)
    file(MAKE_DIRECTORY ${sub})
    add_custom_command(
      OUTPUT ${dir}/${f}
      COMMAND ${CMAKE_COMMAND} -E copy_if_different ${src}/${f} ${dir}/${f}
      DEPENDS ${src}/${f}
      VERBATIM)
    list(APPEND outputs ${dir}/${f})
  endforeach()
  add_custom_target(${target} ALL DEPENDS ${outputs})
endfunction()
