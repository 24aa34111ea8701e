# Shared helpers for scripts/run, scripts/test and scripts/bench. Source it; do not run it.
# Every failure says what failed, where its log is, and what to do (die); a command that fails
# without a message of its own is named by the ERR trap.

TODO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
TODO_LOG_DIR=${TODO_LOG_DIR:-$TODO_ROOT/.data/logs}
MULTIARCH_LIB=/usr/lib/$(uname -m)-linux-gnu

say() { printf '%s\n' "$*" >&2; }

# die WHAT [LOG] [WHAT-TO-DO]: the one way a script gives up.
die() {
  say ""
  say "!! $(basename "$0"): $1"
  [ -n "${2:-}" ] && say "   log: $2"
  [ -n "${3:-}" ] && say "   what to do: $3"
  exit 1
}

# Names the command that failed when nothing else did (set -E carries it into functions).
on_err() {
  local rc=$1 line=$2 cmd=$3
  # Inside $(...) the caller decides; it reports the failure itself if it stops because of it.
  [ "$BASH_SUBSHELL" = 0 ] || return 0
  say ""
  say "!! $(basename "$0") stopped: '$cmd' exited $rc (line $line of ${BASH_SOURCE[1]:-$0})"
  say "   what to do: read the message above; run again with 'bash -x $0' to see every step"
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

# Seconds since the epoch, with a fraction; elapsed START prints the seconds since START.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }

# What the build needs, as "file:package": the file is what CMake (or the script) really uses,
# so a package that ships only a look-alike header does not count.
build_needs() {
  printf '%s\n' \
    "/usr/bin/g++:g++" "/usr/bin/make:make" "/usr/bin/cmake:cmake" \
    "/usr/bin/pkg-config:pkg-config" \
    "/usr/include/caf/all.hpp:libcaf-dev" "$MULTIARCH_LIB/libcaf_core.so:libcaf-dev" \
    "$MULTIARCH_LIB/cmake/Boost-1.81.0/BoostConfig.cmake:libboost1.81-dev" \
    "/usr/include/boost/beast.hpp:libboost1.81-dev" \
    "$MULTIARCH_LIB/cmake/boost_json-1.81.0/boost_json-config.cmake:libboost-json1.81-dev" \
    "$MULTIARCH_LIB/pkgconfig/libpqxx.pc:libpqxx-dev" \
    "$MULTIARCH_LIB/pkgconfig/libpq.pc:libpq-dev" \
    "$MULTIARCH_LIB/pkgconfig/openssl.pc:libssl-dev" \
    "/usr/bin/npm:npm" # Swagger UI's assets for /docs (swagger-ui-dist, npm ci at build time)
}

# What a local PostgreSQL needs (initdb, pg_ctl and psql of version 15).
postgres_needs() {
  printf '%s\n' "$PG_BIN/initdb:postgresql-15" "$PG_BIN/psql:postgresql-client-15"
}

# Lists the packages of the "file:package" lines on stdin whose file is missing.
missing_packages() {
  local pair
  while IFS= read -r pair; do
    [ -e "${pair%%:*}" ] || printf '%s\n' "${pair##*:}"
  done | sort -u
}

# Installs the packages behind the "file:package" arguments whose file is missing; checks
# afterwards that every file is there. Recovers from an interrupted earlier install.
ensure_deps() {
  local missing=() log=$TODO_LOG_DIR/apt-install.log
  mapfile -t missing < <(printf '%s\n' "$@" | missing_packages)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${missing[*]}" "" \
      "sudo apt-get install -y --no-install-recommends ${missing[*]}  (then run this again)"
  fi
  mkdir -p "$TODO_LOG_DIR"
  say "Installing Debian packages: ${missing[*]}"
  local t0
  t0=$(now)
  export DEBIAN_FRONTEND=noninteractive
  # Servers among them (postgresql, nginx, haproxy, pgbouncer) must not start as system
  # services on their default ports: the scripts start their own, privately. policy-rc.d
  # says so to every package's maintainer script, for the duration of the install.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  install_once() { apt-get install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1; }
  : >"$log"
  if ! compgen -G "/var/lib/apt/lists/*Packages*" >/dev/null; then
    # A new machine has no package lists yet.
    say "   fetching the package lists (apt-get update)"
    apt-get update >>"$log" 2>&1 || true
  fi
  if ! install_once; then
    # An earlier install that was interrupted leaves dpkg half-done; stale package lists name
    # files the mirror no longer has. Repair both, then try again.
    say "   first attempt failed; repairing dpkg and refreshing the package lists"
    dpkg --configure -a >>"$log" 2>&1 || true
    apt-get update >>"$log" 2>&1 || true
    install_once || { [ "$made_policy" = 1 ] && rm -f "$policy"; die "installing ${missing[*]} failed" "$log" \
      "check the network and the apt sources (/etc/apt), then run this again"; }
  fi
  [ "$made_policy" = 1 ] && rm -f "$policy"
  local still=()
  mapfile -t still < <(printf '%s\n' "$@" | missing_packages)
  [ ${#still[@]} -eq 0 ] || die "installed, but still missing files of: ${still[*]}" "$log" \
    "apt-get install --reinstall ${still[*]}"
  say "   packages installed in $(elapsed "$t0") s"
}

# The compiler a configure would pick now, as a real path ("" if unknown).
wanted_compiler() {
  local c=${1:-${CXX:-}}
  [ -n "$c" ] || return 0
  c=$(command -v "$c" 2>/dev/null) || return 0
  readlink -f "$c"
}

# Returns success when the build tree in $1 was configured for this checkout, with a compiler
# that still exists and is the one asked for ($2, may be empty). Otherwise its cache and objects
# are of no use.
tree_is_current() {
  local dir=$1 want=$2 cache=$1/CMakeCache.txt home cxx
  home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")
  [ "$home" = "$TODO_ROOT" ] || return 1
  cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$cache")
  [ -n "$cxx" ] && [ -x "$cxx" ] || return 1
  [ -z "$want" ] || [ "$(readlink -f "$cxx")" = "$want" ] || return 1
}

# configure DIR [cmake args]: configures the tree, starting it afresh when it is stale (another
# checkout, a compiler that changed or went away, a configure that never finished).
configure() {
  local dir=$1 log=$1/configure.log want="" arg
  shift
  for arg in "$@"; do
    case $arg in -DCMAKE_CXX_COMPILER=*) want=$(wanted_compiler "${arg#*=}") ;; esac
  done
  [ -n "$want" ] || want=$(wanted_compiler)
  mkdir -p "$dir"
  if [ -f "$dir/CMakeCache.txt" ] && ! tree_is_current "$dir" "$want"; then
    say "   $dir is stale (made for another checkout or compiler): configuring afresh"
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
  elif [ -f "$dir/CMakeCache.txt" ] && [ ! -f "$dir/Makefile" ]; then
    say "   the last configure of $dir did not finish: configuring again"
  fi
  if ! cmake -S "$TODO_ROOT" -B "$dir" "$@" >"$log" 2>&1; then
    if [ -f "$dir/CMakeCache.txt" ]; then
      say "   configure failed; once more from an empty cache"
      rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
      cmake -S "$TODO_ROOT" -B "$dir" "$@" >"$log" 2>&1 && return 0
    fi
    grep -E -A6 "CMake Error|error:" "$log" | head -30 >&2 || tail -20 "$log" >&2
    die "configure (cmake) failed in $dir" "$log" \
      "the lines above name what is missing; if a package is, install it and run this again"
  fi
}

# Shortens make's "[ 42%] Building CXX object CMakeFiles/x.dir/http/session.cpp.o" lines to
# "  [ 42%] http/session.cpp": a newcomer sees it is working.
show_progress() {
  sed -un -E 's#^\[ *([0-9]+)%\] Building CXX object .*\.dir/(.*)\.o$#  [\1%] compiling \2#p
              s#^\[ *([0-9]+)%\] Linking CXX executable (.*)$#  [\1%] linking \2#p' >&2
}

# compile DIR [targets...]: builds the targets (all without any) with progress lines.
compile() {
  local dir=$1 log=$1/build.log args=()
  shift
  for t in "$@"; do args+=(--target "$t"); done
  if ! cmake --build "$dir" -j2 "${args[@]}" 2>&1 | tee "$log" | show_progress; then
    say ""
    grep -E -m1 -B2 -A14 "error:|Error [0-9]|No rule to make|undefined reference" "$log" >&2 ||
      tail -30 "$log" >&2
    die "the build failed in $dir" "$log" \
      "the error is above; after changing the code run this again (a stale tree is reconfigured)"
  fi
}

# build_tree DIR TYPE TESTS [cmake args]: configure + compile everything.
build_tree() {
  local dir=$1 type=$2 tests=$3
  shift 3
  configure "$dir" -DCMAKE_BUILD_TYPE="$type" -DTODO_BUILD_TESTS="$tests" "$@"
  compile "$dir"
}

# Runs a command as the owner of PostgreSQL files: postgres when we are root.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Returns a TCP port on 127.0.0.1 that nothing listens on, below the kernel's ephemeral range
# (a port in use by an outgoing connection cannot be bound either).
free_port() {
  local p lo
  lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % (lo - 20000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  say "no free port found"
  return 1
}

# Creates (if needed) and starts a cluster in $1 listening on unix socket dir $1/sock and,
# when $3 is "tcp", on 127.0.0.1:$2. Creates database "todo".
pg_start() {
  local dir=$1 port=$2 mode=${3:-socket}
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data" # an initdb that was interrupted leaves a directory initdb refuses
    as_pg "$PG_BIN/initdb" -D "$dir/data" --auth=trust --username=postgres -E UTF8 \
      --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
      tail -20 "$dir/initdb.log" >&2
      say "initdb failed; log: $dir/initdb.log"
      return 1
    }
  fi
  as_pg mkdir -p "$dir/sock"
  local listen="''"
  [ "$mode" = tcp ] && listen="127.0.0.1"
  if ! as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port -k $dir/sock -c listen_addresses=$listen -c max_connections=1100" \
      start >/dev/null || {
      tail -20 "$dir/postgres.log" >&2
      say "PostgreSQL did not start; log: $dir/postgres.log"
      return 1
    }
  fi
  as_pg "$PG_BIN/psql" -h "$dir/sock" -p "$port" -U postgres -d postgres -qtAc \
    "SELECT 1 FROM pg_database WHERE datname = 'todo'" | grep -q 1 ||
    as_pg "$PG_BIN/psql" -h "$dir/sock" -p "$port" -U postgres -d postgres -qc \
      "CREATE DATABASE todo" >/dev/null
}

# Stops the cluster in $1 (fast shutdown), ignoring a cluster that is not running.
pg_stop() {
  local dir=$1
  [ -f "$dir/data/PG_VERSION" ] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}
