#!/usr/bin/env bash
# PostgreSQL over TLS, the Neon path without Neon (issue 13, part 6): a throwaway cluster with
# ssl=on, a certificate from a CA made here (for DNS:localhost only), password authentication
# and TLS-only pg_hba (a plain connection is rejected, so every connection that works is TLS).
# The service connects with sslmode=verify-full and the CA and serves; a host name the
# certificate does not cover, a CA that did not sign it, or TLS turned off stop start-up with
# exit 2 and one line naming DATABASE_URL, never the password.
#   TODO_API_BINARY=build/todo-api bash tests/scripts/pg_tls_test.sh
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/lib.sh
source "$src/scripts/lib.sh"
trap - ERR
bin=${TODO_API_BINARY:?TODO_API_BINARY must name the todo-api binary}
bin=$(realpath "$bin")
work=$(mktemp -d /tmp/todo-pg-tls.XXXXXX)
chmod 755 "$work"
fails=0
ok() { printf 'ok: %s\n' "$*"; }
bad() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }
api_pid=
cleanup() {
  [ -n "$api_pid" ] && kill -9 "$api_pid" 2>/dev/null
  pg_stop "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT

password=pw-s3cret-$$
port=$(free_port)

# --- a CA, and a server certificate it signs for DNS:localhost only; another CA besides
cd "$work" || exit 1
gen() { openssl "$@" >>"$work/openssl.log" 2>&1 || { cat "$work/openssl.log"; echo "FAIL: openssl $1"; exit 1; }; }
gen req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
  -subj "/CN=todo test CA" -days 2
gen req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -out other-ca.crt \
  -subj "/CN=another CA" -days 2
gen req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
  -subj "/CN=localhost"
printf 'subjectAltName=DNS:localhost\n' >san.ext
gen x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 \
  -extfile san.ext
chmod 644 ca.crt other-ca.crt server.crt
chmod 600 server.key
[ "$(id -u)" -eq 0 ] && chown postgres server.key server.crt

# --- the cluster: TLS only, passwords
mkdir -p "$work/pg"
[ "$(id -u)" -eq 0 ] && chown postgres "$work/pg"
as_pg "$PG_BIN/initdb" -D "$work/pg/data" --auth=trust --username=postgres -E UTF8 \
  --locale=C.UTF-8 >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log"; echo "FAIL: initdb"; exit 1; }
as_pg sh -c "cat > '$work/pg/data/pg_hba.conf'" <<EOF
local     all all                trust
hostssl   all all 127.0.0.1/32   scram-sha-256
hostnossl all all 127.0.0.1/32   reject
EOF
as_pg mkdir -p "$work/pg/sock"
as_pg "$PG_BIN/pg_ctl" -D "$work/pg/data" -l "$work/pg/postgres.log" -w -t 60 \
  -o "-p $port -k $work/pg/sock -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=$work/server.crt -c ssl_key_file=$work/server.key" \
  start >/dev/null || { cat "$work/pg/postgres.log"; echo "FAIL: PostgreSQL with ssl=on did not start"; exit 1; }
as_pg "$PG_BIN/psql" -h "$work/pg/sock" -p "$port" -U postgres -d postgres -qc \
  "ALTER ROLE postgres PASSWORD '$password'" -c "CREATE DATABASE todo" >/dev/null

url="postgresql://postgres:$password@localhost:$port/todo?sslmode=verify-full&sslrootcert=$work/ca.crt"
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

# run_api NAME URL: runs `todo-api` (serve) with URL until it exits (at most 20 s); output in
# $work/NAME.err, exit status in $work/NAME.rc.
run_api() {
  local name=$1 u=$2
  (cd / && exec env -i PATH="$PATH" DATABASE_URL="$u" BETTER_AUTH_SECRET="$secret" PORT="$(free_port)" \
    HOST=127.0.0.1 DB_CONNECT_WAIT_MS=0 timeout 20 "$bin") >"$work/$name.out" 2>"$work/$name.err"
  echo $? >"$work/$name.rc"
}
expect_refused() { # expect_refused NAME WHAT
  local rc
  rc=$(cat "$work/$1.rc")
  if [ "$rc" = 2 ] && head -1 "$work/$1.err" | grep -q '^DATABASE_URL: '; then
    ok "$2: exit 2, '$(head -1 "$work/$1.err" | cut -c1-110)'"
  else
    bad "$2: expected exit 2 and a line naming DATABASE_URL, got exit $rc:"
    sed 's/^/    /' "$work/$1.err"
  fi
  if grep -q "$password" "$work/$1.err" "$work/$1.out"; then
    bad "$2: the password appears in the output"
  else
    ok "$2: no password in the output"
  fi
}

# --- 1. verify-full against the CA: check, then serve and use it
if (cd / && env -i PATH="$PATH" DATABASE_URL="$url" BETTER_AUTH_SECRET="$secret" "$bin" check) >"$work/check.out" 2>&1; then
  ok "todo-api check with sslmode=verify-full: $(grep database: "$work/check.out")"
else
  bad "todo-api check with sslmode=verify-full failed:"; sed 's/^/    /' "$work/check.out"
fi
api_port=$(free_port)
(cd / && exec env -i PATH="$PATH" DATABASE_URL="$url" BETTER_AUTH_SECRET="$secret" PORT="$api_port" \
  HOST=127.0.0.1 "$bin") >"$work/serve.out" 2>"$work/serve.err" &
api_pid=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$api_port/ready" 2>/dev/null && break
  sleep 0.1
done
token=$(cd / && env -i BETTER_AUTH_SECRET="$secret" "$bin" token --sub tls-user)
code=$(curl -sS -o "$work/created.json" -w '%{http_code}' -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"title":"over a TLS database connection"}' \
  "http://127.0.0.1:$api_port/api/tasks")
if [ "$code" = 201 ]; then ok "a task was created through the TLS connection (201)"; else
  bad "create answered $code: $(cat "$work/created.json")"; sed 's/^/    /' "$work/serve.err"; fi
ssl_conns=$(as_pg "$PG_BIN/psql" -h "$work/pg/sock" -p "$port" -U postgres -d postgres -qtAc \
  "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
   WHERE a.datname = 'todo' AND s.ssl AND s.version IN ('TLSv1.2', 'TLSv1.3')")
if [ "${ssl_conns:-0}" -ge 1 ]; then ok "the service's connections are TLS ($ssl_conns, pg_stat_ssl)"; else
  bad "no TLS connection of the service in pg_stat_ssl"; fi
rows=$(as_pg "$PG_BIN/psql" -h "$work/pg/sock" -p "$port" -U postgres -d todo -qtAc \
  "SELECT count(*) FROM tasks WHERE user_id = 'tls-user'")
[ "$rows" = 1 ] && ok "the row is in the database" || bad "expected 1 row, found '$rows'"
kill -TERM "$api_pid"; wait "$api_pid"; rc=$?; api_pid=
[ "$rc" = 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $rc"
if grep -q "$password" "$work/serve.err" "$work/serve.out"; then bad "the password appears in the server's log"; fi

# --- 2. refusals at start-up
run_api mismatch "postgresql://postgres:$password@127.0.0.1:$port/todo?sslmode=verify-full&sslrootcert=$work/ca.crt"
expect_refused mismatch "a host name the certificate does not cover (127.0.0.1, verify-full)"
grep -qi "certificate\|host name\|hostname" "$work/mismatch.err" && ok "mismatch: the reason names the certificate" ||
  bad "mismatch: the reason does not say it is the certificate: $(head -1 "$work/mismatch.err")"
run_api wrong_ca "postgresql://postgres:$password@localhost:$port/todo?sslmode=verify-full&sslrootcert=$work/other-ca.crt"
expect_refused wrong_ca "a CA that did not sign the server's certificate"
run_api no_tls "postgresql://postgres:$password@localhost:$port/todo?sslmode=disable"
expect_refused no_tls "TLS turned off (the server only accepts TLS)"
run_api wrong_pw "postgresql://postgres:not-the-password@localhost:$port/todo?sslmode=verify-full&sslrootcert=$work/ca.crt"
expect_refused wrong_pw "a wrong password"

echo
if [ "$fails" -gt 0 ]; then
  echo "FAIL: $fails check(s) failed"
  exit 1
fi
echo "PASS: PostgreSQL over TLS"
