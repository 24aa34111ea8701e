# Shared helpers for scripts/run, scripts/test and scripts/bench. Source it; do not run it.

TODO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

say() { printf '%s\n' "$*" >&2; }

# Installs the Debian packages the project needs when a header or tool is missing.
# $@: extra "path:package" pairs (for tools only one script needs).
ensure_deps() {
  local need=(
    "/usr/include/caf/all.hpp:libcaf-dev"
    "/usr/include/boost/beast.hpp:libboost1.81-all-dev"
    "/usr/include/boost/json.hpp:libboost1.81-all-dev"
    "/usr/include/pqxx/pqxx:libpqxx-dev"
    "/usr/include/openssl/evp.h:libssl-dev"
    "/usr/include/catch2/catch.hpp:catch2"
    "$PG_BIN/initdb:postgresql"
    "/usr/bin/cmake:cmake"
    "/usr/bin/g++:g++"
    "/usr/bin/make:make"
    "/usr/bin/pkg-config:pkg-config"
    "$@"
  )
  local missing=() pair
  for pair in "${need[@]}"; do
    [ -e "${pair%%:*}" ] || missing+=("${pair##*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ]; then
    say "Missing packages: ${missing[*]}"
    say "Install them with: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  say "Installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Configures and builds into $1 with build type $2 and tests ON/OFF $3; more cmake args follow.
build_tree() {
  local dir=$1 type=$2 tests=$3
  shift 3
  mkdir -p "$dir"
  cmake -S "$TODO_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DTODO_BUILD_TESTS="$tests" "$@" \
    >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log" >&2; exit 1; }
  cmake --build "$dir" -j2 >"$dir/build.log" 2>&1 || {
    grep -E "error|Error" -A5 "$dir/build.log" | head -60 >&2
    say "build failed; full log: $dir/build.log"
    exit 1
  }
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
    as_pg "$PG_BIN/initdb" -D "$dir/data" --auth=trust --username=postgres -E UTF8 \
      --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  fi
  as_pg mkdir -p "$dir/sock"
  local listen="''"
  [ "$mode" = tcp ] && listen="127.0.0.1"
  if ! as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port -k $dir/sock -c listen_addresses=$listen -c max_connections=1100" \
      start >/dev/null || { tail -20 "$dir/postgres.log" >&2; return 1; }
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
