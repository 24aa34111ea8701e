#!/usr/bin/env bash
# Neon's pooled endpoint without Neon (issue 15, part 3): Debian's PgBouncer 1.18 in transaction
# mode in front of a throwaway cluster, with fewer server connections (default_pool_size = 2)
# than the service has DB workers (DB_POOL_SIZE=4), so that every worker's transactions land on
# server connections the others used before. The service reaches it under a host name with
# "-pooler." (hostaddr=127.0.0.1 connects; no DNS), so DB_PREPARED=auto must choose unnamed
# statements on its own, and listens on the direct URL (DATABASE_LISTEN_URL). Checked through
# the API: every route, If-Match, Idempotency-Key, concurrent writes of several users counted in
# PostgreSQL, and a live-update stream. Then: without DATABASE_LISTEN_URL the start-up warning
# (and streams that miss writes); and the negative control: DB_PREPARED=true through the same
# pooler answers errors under the same load.
#   TODO_API_BINARY=build/todo-api bash tests/scripts/pgbouncer_test.sh
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/lib.sh
source "$src/scripts/lib.sh"
trap - ERR
bin=${TODO_API_BINARY:?TODO_API_BINARY must name the todo-api binary}
bin=$(realpath "$bin")
pgbouncer=${PGBOUNCER:-/usr/sbin/pgbouncer}
[ -x "$pgbouncer" ] || { echo "FAIL: $pgbouncer not found (apt-get install pgbouncer)"; exit 1; }
work=$(mktemp -d /tmp/todo-pgbouncer.XXXXXX)
chmod 755 "$work"
fails=0
t_start=$(now)
ok() { printf 'ok: %s\n' "$*"; }
bad() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }
api_pid="" sse_pid=""
stop_pgbouncer() {
  local pid
  pid=$(cat "$work/pgb/pgbouncer.pid" 2>/dev/null) || return 0
  kill -INT "$pid" 2>/dev/null # SIGINT: safe shutdown
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
}
cleanup() {
  [ -n "$sse_pid" ] && kill "$sse_pid" 2>/dev/null
  [ -n "$api_pid" ] && kill -9 "$api_pid" 2>/dev/null
  stop_pgbouncer
  pg_stop "$work/pg"
  if [ "$fails" -gt 0 ]; then
    # Keep what explains the failure: the service's, PgBouncer's and PostgreSQL's logs.
    mkdir -p "$TODO_LOG_DIR/pgbouncer-test"
    cp "$work"/*.err "$work"/*.txt "$work/pgb/pgbouncer.log" "$work/pg/postgres.log" \
      "$TODO_LOG_DIR/pgbouncer-test/" 2>/dev/null
    echo "logs kept in $TODO_LOG_DIR/pgbouncer-test"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- PostgreSQL (direct, TCP) and PgBouncer in front of it
pg_port=$(free_port)
pg_start "$work/pg" "$pg_port" tcp || { echo "FAIL: PostgreSQL did not start"; exit 1; }
psql_() { as_pg "$PG_BIN/psql" -h "$work/pg/sock" -p "$pg_port" -U postgres -d todo -qtAX "$@"; }
pgb_port=$(free_port)
mkdir -p "$work/pgb"
cat >"$work/pgb/pgbouncer.ini" <<EOF
[databases]
todo = host=127.0.0.1 port=$pg_port dbname=todo
todo_one = host=127.0.0.1 port=$pg_port dbname=todo pool_size=1
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir =
pool_mode = transaction
default_pool_size = 2
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
auth_type = trust
auth_file = $work/pgb/userlist.txt
logfile = $work/pgb/pgbouncer.log
pidfile = $work/pgb/pgbouncer.pid
admin_users = postgres
EOF
echo '"postgres" ""' >"$work/pgb/userlist.txt"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$work/pgb"
as_pg "$pgbouncer" -d "$work/pgb/pgbouncer.ini" >"$work/pgb/start.log" 2>&1 ||
  { cat "$work/pgb/start.log" "$work/pgb/pgbouncer.log" 2>/dev/null; echo "FAIL: pgbouncer did not start"; exit 1; }
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$pgb_port") 2>/dev/null && break; sleep 0.1; done
ok "PgBouncer $("$pgbouncer" --version | head -1 | awk '{ print $2 }') in transaction mode on :$pgb_port, 2 server connections, PostgreSQL on :$pg_port"

# The pooled URL under a name with "-pooler." (as Neon's pooled endpoints have): auto-detection
# sees the host, libpq connects to hostaddr. The direct URL for LISTEN.
pooled="postgresql://postgres@todo-test-pooler.invalid:$pgb_port/todo?hostaddr=127.0.0.1"
direct="postgresql://postgres@127.0.0.1:$pg_port/todo"
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
token() { (cd / && env -i BETTER_AUTH_SECRET="$secret" "$bin" token --sub "$1" --ttl 600); }

# start_api NAME [ENV...]: starts the service through the pooler (DB_POOL_SIZE=4) and waits for
# $wait_for (/ready); output in $work/NAME.err. Sets api_pid and api (its base URL).
start_api() {
  local name=$1 port
  shift
  port=$(free_port)
  (cd / && exec env -i PATH="$PATH" DATABASE_URL="$pooled" BETTER_AUTH_SECRET="$secret" \
    PORT="$port" HOST=127.0.0.1 DB_POOL_SIZE=4 DB_CONNECT_WAIT_MS=5000 "$@" "$bin") \
    >"$work/$name.out" 2>"$work/$name.err" &
  api_pid=$!
  api=http://127.0.0.1:$port
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "$api${wait_for:-/ready}" 2>/dev/null && return 0
    kill -0 "$api_pid" 2>/dev/null || break
    sleep 0.1
  done
  bad "$name: the service did not become ready:"
  sed 's/^/    /' "$work/$name.err" | tail -20
  return 1
}
stop_api() {
  local rc
  kill -TERM "$api_pid" 2>/dev/null
  wait "$api_pid"
  rc=$?
  api_pid=""
  [ "$rc" = 0 ] && ok "$1: SIGTERM, exit 0" || bad "$1: SIGTERM, exit $rc"
}

# req METHOD PATH TOKEN [BODY] [HEADER...]: one request; the status in $code, the body in
# $work/body, the headers in $work/headers.
req() {
  local method=$1 path=$2 tok=$3 body=${4:-} args=()
  shift 4 2>/dev/null || shift $#
  for h in "$@"; do args+=(-H "$h"); done
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  code=$(curl -sS -o "$work/body" -D "$work/headers" -w '%{http_code}' -X "$method" \
    -H "Authorization: Bearer $tok" "${args[@]}" "$api$path")
}
expect() { # expect CODE WHAT
  if [ "$code" = "$1" ]; then ok "$2: $code"; else bad "$2: expected $1, got $code: $(head -c 300 "$work/body")"; fi
}
json_field() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p" "$work/body" | head -1 | tr -d '"'; }
header() { awk -v h="$1" 'BEGIN { IGNORECASE = 1 } tolower($1) == tolower(h) ":" { sub(/\r$/, ""); print $2 }' "$work/headers"; }

# parallel_writes FILE USERS N: each of USERS users creates N tasks and toggles its first task
# N times, all at once (curl --parallel, 24 at a time). One status per line in FILE.
parallel_writes() {
  local out=$1 users=$2 n=$3 cfg=$work/parallel.cfg u i tok first
  : >"$cfg"
  for ((u = 1; u <= users; u++)); do
    tok=$(token "$4-$u")
    first=$(psql_ -c "SELECT min(id) FROM tasks WHERE user_id = '$4-$u'")
    for ((i = 1; i <= n; i++)); do
      printf 'url = "%s/api/tasks"\nheader = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\ndata = "{\\"title\\":\\"w%d-%d\\"}"\noutput = "/dev/null"\nwrite-out = "%%{http_code} create\\n"\nsilent\nnext\n' \
        "$api" "$tok" "$u" "$i" >>"$cfg"
      printf 'url = "%s/api/tasks/%s/complete"\nrequest = "PATCH"\nheader = "Authorization: Bearer %s"\noutput = "/dev/null"\nwrite-out = "%%{http_code} toggle\\n"\nsilent\nnext\n' \
        "$api" "$first" "$tok" >>"$cfg"
    done
  done
  sed -i '$d' "$cfg" # the last "next"
  curl --parallel --parallel-immediate --parallel-max 24 -K "$cfg" >"$out" 2>>"$work/curl.err"
}
# seed_users PREFIX USERS: one task per user (the one the parallel toggles hit).
seed_users() {
  local u
  for ((u = 1; u <= $2; u++)); do
    req POST /api/tasks "$(token "$1-$u")" '{"title":"first"}'
    [ "$code" = 201 ] || bad "seeding $1-$u: $code $(cat "$work/body")"
  done
}

# ============================================================ 1. auto-detection, the API through the pooler
start_api pooled DATABASE_LISTEN_URL="$direct" || exit 1
if grep -q 'DB_PREPARED=auto chose false' "$work/pooled.err"; then
  ok "DB_PREPARED=auto chose unnamed statements: '$(grep -o 'DB_PREPARED=auto chose false[^(]*([^)]*)' "$work/pooled.err" | head -1)'"
else
  bad "DB_PREPARED=auto did not choose false through the pooler:"; sed 's/^/    /' "$work/pooled.err" | head
fi
grep -q 'DATABASE_LISTEN_URL is not set' "$work/pooled.err" && bad "the warning appeared although DATABASE_LISTEN_URL is set"
migr=$(psql_ -c "SELECT count(*) FROM schema_migrations")
[ "${migr:-0}" -ge 6 ] && ok "the migrations ran through the pooler ($migr applied, transaction-level advisory lock)" ||
  bad "schema_migrations has '$migr' rows"

alice=$(token alice)
# a live-update stream, opened first (the listener is on the direct URL)
curl -sSN -H "Authorization: Bearer $alice" "$api/api/tasks/events" >"$work/events.txt" 2>/dev/null &
sse_pid=$!
sleep 0.5
req POST /api/tasks "$alice" '{"title":"through PgBouncer","description":"pooled"}'
expect 201 "create"
id=$(json_field id)
for _ in $(seq 1 50); do grep -q '^event: task.created' "$work/events.txt" && break; sleep 0.1; done
if grep -q '^event: task.created' "$work/events.txt" && grep -q "\"id\":$id" "$work/events.txt"; then
  ok "the live-update stream got task.created for task $id (LISTEN on DATABASE_LISTEN_URL)"
else
  bad "no task.created on the event stream within 5 s: $(head -c 300 "$work/events.txt")"
fi
kill "$sse_pid" 2>/dev/null; wait "$sse_pid" 2>/dev/null; sse_pid=""
req GET /api/tasks "$alice"
expect 200 "list"
[ "$(header X-Total-Count)" = 1 ] && ok "list: X-Total-Count 1" || bad "list: X-Total-Count '$(header X-Total-Count)'"
req GET "/api/tasks/$id" "$alice"
expect 200 "get"
etag=$(header ETag)
req PUT "/api/tasks/$id" "$alice" '{"title":"renamed","description":"put"}'
expect 200 "PUT"
req PATCH "/api/tasks/$id" "$alice" '{"description":"patched"}'
expect 200 "PATCH"
[ "$(json_field description)" = patched ] && [ "$(json_field title)" = renamed ] && ok "PUT and PATCH took effect" ||
  bad "after PUT and PATCH: $(cat "$work/body")"
req PATCH "/api/tasks/$id/complete" "$alice"
expect 200 "toggle"
[ "$(json_field completed)" = true ] && ok "toggle: completed" || bad "toggle: $(cat "$work/body")"
req PATCH "/api/tasks/$id" "$alice" '{"title":"stale"}' "If-Match: $etag"
expect 412 "If-Match with a stale ETag"
req POST /api/tasks "$alice" '{"title":"keyed"}' "Idempotency-Key: pgb-key-1"
expect 201 "create with an Idempotency-Key"
kid=$(json_field id)
req POST /api/tasks "$alice" '{"title":"keyed"}' "Idempotency-Key: pgb-key-1"
expect 201 "the same key again"
if [ "$(header Idempotent-Replayed)" = true ] && [ "$(json_field id)" = "$kid" ]; then
  ok "replayed (Idempotent-Replayed: true, task $kid), one row: $(psql_ -c "SELECT count(*) FROM tasks WHERE user_id = 'alice' AND title = 'keyed'")"
else
  bad "the retry was not a replay: $(cat "$work/headers" "$work/body")"
fi
req DELETE "/api/tasks/$id" "$alice"
expect 204 "delete"
req GET "/api/tasks/$id" "$alice"
expect 404 "get after delete"

# many concurrent writes of several users: 6 users x (40 creates + 40 toggles), 24 at a time
seed_users ok 6
t0=$(now)
parallel_writes "$work/writes.txt" 6 40 ok
total=$(wc -l <"$work/writes.txt")
good=$(grep -c '^20[01] ' "$work/writes.txt")
if [ "$total" = 480 ] && [ "$good" = 480 ]; then
  ok "480 concurrent writes of 6 users through the pooler in $(elapsed "$t0") s: all 2xx"
else
  bad "concurrent writes: $good of $total 2xx ($(awk '{ print $1 }' "$work/writes.txt" | sort | uniq -c | tr '\n' ' '))"
  grep -i 'sqlstate\|error' "$work/pooled.err" | head -5 | sed 's/^/    /'
fi
mism=0
for u in 1 2 3 4 5 6; do
  req GET "/api/tasks?limit=100" "$(token "ok-$u")"
  api_n=$(header X-Total-Count)
  db_n=$(psql_ -c "SELECT count(*) FROM tasks WHERE user_id = 'ok-$u'")
  done_db=$(psql_ -c "SELECT completed FROM tasks WHERE user_id = 'ok-$u' ORDER BY id LIMIT 1")
  [ "$api_n" = 41 ] && [ "$db_n" = 41 ] && [ "$done_db" = f ] || { mism=1; bad "user ok-$u: list says $api_n, PostgreSQL $db_n tasks (want 41), first task completed=$done_db (40 toggles: want f)"; }
done
[ "$mism" = 0 ] && ok "each user's list and PostgreSQL agree: 41 tasks, the toggled task back to completed=false after 40 toggles"
stop_api pooled

# ============================================================ 2. no DATABASE_LISTEN_URL: the warning
start_api nolisten || exit 1
if grep -q 'DATABASE_LISTEN_URL is not set' "$work/nolisten.err"; then
  ok "without DATABASE_LISTEN_URL the start-up warns: '$(grep -o '!! DATABASE_LISTEN_URL is not set.\{0,90\}' "$work/nolisten.err" | head -1)...'"
else
  bad "no warning without DATABASE_LISTEN_URL:"; sed 's/^/    /' "$work/nolisten.err" | head
fi
bob=$(token bob)
curl -sSN -H "Authorization: Bearer $bob" "$api/api/tasks/events" >"$work/events2.txt" 2>/dev/null &
sse_pid=$!
sleep 0.5
req POST /api/tasks "$bob" '{"title":"unheard"}'
expect 201 "create (no DATABASE_LISTEN_URL)"
sleep 1.5
if grep -q '^event: task.created' "$work/events2.txt"; then
  bad "a stream got task.created through the pooler's LISTEN: the warning's claim is wrong"
else
  ok "as the warning says, the stream missed the write (LISTEN through the pooler hears nothing)"
fi
kill "$sse_pid" 2>/dev/null; wait "$sse_pid" 2>/dev/null; sse_pid=""
stop_api nolisten

# ============================================================ 3. negative control: named statements through the pooler
# With 2 server connections named statements fail only while they are being prepared (every
# worker prepares the same names with the same text, so once both server connections hold all
# of them, a worker succeeds by accident): 0 to 41 failures in trial runs, not a reliable
# control. Through an alias of the same database with one server connection, a second
# worker's first use of a name always meets the first worker's statement ("already exists"),
# so the same load fails every time.
# (/ready's ping is a named statement too: it may answer 503 here, so wait for /health.)
wait_for=/health start_api prepared DATABASE_LISTEN_URL="$direct" DB_PREPARED=true \
  DATABASE_URL="postgresql://postgres@todo-test-pooler.invalid:$pgb_port/todo_one?hostaddr=127.0.0.1" || exit 1
grep -q 'DB_PREPARED=true' "$work/prepared.err" && ok "DB_PREPARED=true: named prepared statements" ||
  bad "DB_PREPARED=true was not logged"
psql_ -c "INSERT INTO tasks (user_id, title) SELECT 'neg-' || g, 'first' FROM generate_series(1, 6) g"
parallel_writes "$work/writes-prepared.txt" 6 40 neg
errs=$(grep -vc '^20[01] ' "$work/writes-prepared.txt")
if [ "$errs" -gt 0 ]; then
  ok "negative control: with named statements the same load through the pooler fails ($errs of $(wc -l <"$work/writes-prepared.txt") non-2xx: $(awk '{ print $1 }' "$work/writes-prepared.txt" | sort | uniq -c | tr -s ' ' | tr '\n' ' '); logged: $(grep -o 'sqlstate [0-9A-Z]*' "$work/prepared.err" | sort | uniq -c | tr -s ' ' | tr '\n' ' '))"
else
  bad "negative control: DB_PREPARED=true through the pooler did not fail: the test cannot tell the modes apart"
fi
stop_api prepared

for f in "$work"/*.err "$work"/*.out; do
  grep -q 'postgresql://' "$f" && bad "$(basename "$f") prints a connection string"
done
echo
echo "took $(elapsed "$t_start") s"
if [ "$fails" -gt 0 ]; then
  echo "FAIL: $fails check(s) failed"
  exit 1
fi
echo "PASS: the service through PgBouncer in transaction mode"
