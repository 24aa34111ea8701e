#!/usr/bin/env bash
# The failure paths of scripts/run, in a copy of the checkout (issue 9): a failed configure
# followed by a second run, a half-made tree, a build error, a moved checkout, a wrong
# DATABASE_URL, missing packages without root. Every failure must say what failed, the log and
# what to do; every second run must recover by itself.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/todo-first-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
step() { printf '\n--- %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
bad() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }
expect_in() { # expect_in FILE TEXT WHAT
  if grep -qF -- "$2" "$1"; then ok "$3"; else bad "$3: '$2' not in output:"; sed 's/^/    /' "$1"; fi
}

# The tracked files (what a clone has), without any build tree.
mkdir -p "$work/repo"
if git -C "$src" rev-parse >/dev/null 2>&1; then
  git -C "$src" ls-files -z --cached --others --exclude-standard |
    (cd "$src" && xargs -0 cp --parents -t "$work/repo")
else
  (cd "$src" && tar --exclude='./build*' --exclude=./.data -cf - .) | tar -xf - -C "$work/repo"
fi
repo=$work/repo
export TODO_LOG_DIR=$work/logs
# This test builds the project twice from scratch (step 2, and step 6 after the move). With
# ccache (scripts/test installs it) and a private cache based at $work, the second build finds
# the first one's objects (the moved tree has the same paths relative to $work): it still
# reconfigures and runs the whole build, without recompiling. Saves about two minutes.
if command -v ccache >/dev/null; then
  export CCACHE_DIR=$work/ccache CCACHE_BASEDIR=$work
  unset CCACHE_DISABLE
fi
run() { # run NAME [env...] -- args: runs scripts/run in the copy, output in $work/NAME.out
  local name=$1
  shift
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  (cd "$repo" && env "${envs[@]}" scripts/run "$@") >"$work/$name.out" 2>&1
  echo $? >"$work/$name.rc"
}
rc() { cat "$work/$1.rc"; }

step "1. configure fails (a compiler that does not exist)"
run conf_fail CXX=/nonexistent/c++ -- --build-only
[ "$(rc conf_fail)" != 0 ] && ok "exit $(rc conf_fail)" || bad "a failed configure exited 0"
expect_in "$work/conf_fail.out" "configure (cmake) failed" "names the failed step"
expect_in "$work/conf_fail.out" "log: $repo/build/configure.log" "names the log"
expect_in "$work/conf_fail.out" "what to do:" "says what to do"

step "2. the second run recovers by itself and builds"
t0=$(date +%s)
run second -- --build-only
[ "$(rc second)" = 0 ] && ok "built in $(( $(date +%s) - t0 )) s" || { bad "second run failed:"; cat "$work/second.out"; }
[ -x "$repo/build/todo-api" ] && ok "todo-api exists" || bad "no todo-api after the second run"
expect_in "$work/second.out" "compiling" "prints progress while it builds"

step "3. a half-made tree (configure interrupted: cache, no Makefile)"
rm -f "$repo/build/Makefile"
run half -- --build-only
[ "$(rc half)" = 0 ] && ok "recovered" || { bad "did not recover:"; cat "$work/half.out"; }
expect_in "$work/half.out" "did not finish: configuring again" "says it reconfigures"

step "4. a build error is shown with its log, and fixing it is enough"
cp "$repo/main.cpp" "$work/main.cpp.orig"
printf '\n#error deliberately broken by first_run_test\n' >>"$repo/main.cpp"
run broken -- --build-only
[ "$(rc broken)" != 0 ] && ok "exit $(rc broken)" || bad "a broken build exited 0"
expect_in "$work/broken.out" "deliberately broken" "shows the compiler's error"
expect_in "$work/broken.out" "the build failed" "names the failed step"
expect_in "$work/broken.out" "log: $repo/build/build.log" "names the log"
cp "$work/main.cpp.orig" "$repo/main.cpp"
run fixed -- --build-only
[ "$(rc fixed)" = 0 ] && ok "fixed" || { bad "did not build after the fix:"; cat "$work/fixed.out"; }

step "5. a wrong DATABASE_URL: exit 2 and one line naming it, at once"
run badurl DATABASE_URL=garbage BETTER_AUTH_SECRET=x -- --port 1
[ "$(rc badurl)" = 2 ] && ok "exit 2" || { bad "exit $(rc badurl), not 2:"; cat "$work/badurl.out"; }
expect_in "$work/badurl.out" "DATABASE_URL: cannot be parsed" "names DATABASE_URL"
if grep -q "Bearer ey" "$work/badurl.out"; then bad "printed a token for a secret it did not make"; else ok "no token printed for a given secret"; fi
expect_in "$work/badurl.out" "no token is printed" "says why there is no token"

step "5b. the development secret scripts/run makes: the curl example carries a token"
rm -f "$repo/.env"
run devsecret DATABASE_URL=garbage -- --port 1
[ "$(rc devsecret)" = 2 ] && ok "exit 2" || bad "exit $(rc devsecret), not 2"
expect_in "$work/devsecret.out" "Generated a BETTER_AUTH_SECRET into .env" "generates the dev secret"
expect_in "$work/devsecret.out" "-H 'Authorization: Bearer ey" "prints the curl example with a token"

step "6. a moved checkout: the old tree is reconfigured for the new place"
mv "$work/repo" "$work/moved"
repo=$work/moved
t0=$(date +%s)
run moved -- --build-only
[ "$(rc moved)" = 0 ] && ok "rebuilt in $(( $(date +%s) - t0 )) s" || { bad "moved checkout failed:"; cat "$work/moved.out"; }
expect_in "$work/moved.out" "is stale (made for another checkout" "says why it reconfigures"

step "7. missing packages without root: the exact install command"
cat >"$work/deps.sh" <<EOF
source "$repo/scripts/lib.sh"
TODO_LOG_DIR=$work/logs-user
ensure_deps "/nonexistent/todo-test-file:todo-no-such-package" "/bin/sh:dash"
EOF
chmod -R a+rX "$work"
if [ "$(id -u)" = 0 ]; then
  runuser -u nobody -- bash "$work/deps.sh" >"$work/deps.out" 2>&1
else
  bash "$work/deps.sh" >"$work/deps.out" 2>&1
fi
[ $? != 0 ] && ok "exit non-zero" || bad "missing packages exited 0"
expect_in "$work/deps.out" "missing Debian packages: todo-no-such-package" "names only the missing package"
expect_in "$work/deps.out" "sudo apt-get install -y --no-install-recommends todo-no-such-package" "gives the command"

printf '\n%s\n' "$([ $fails = 0 ] && echo "first-run failure paths: all passed" || echo "first-run failure paths: $fails FAILED")"
[ $fails = 0 ]
