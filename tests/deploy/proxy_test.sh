#!/usr/bin/env bash
# The HTTP contract through a real nginx (issue 15, part 2): deploy/render renders the production
# config (deploy/nginx/todo-api.conf) in front of two instances of the real service on one
# throwaway PostgreSQL, and a representative part of the HTTP suite runs through it: statuses,
# Location, ETag/304, tenant isolation, 401/405/400, 413 from the service (its JSON, not nginx's
# HTML page), X-Request-Id, CORS, Retry-After, an event stream that is not buffered, and
# requests spread over both instances.
#   TODO_API_BINARY=build/todo-api bash tests/deploy/proxy_test.sh
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/lib.sh
source "$src/scripts/lib.sh"
trap - ERR
bin=${TODO_API_BINARY:?TODO_API_BINARY must name the todo-api binary}
bin=$(realpath "$bin")
command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
command -v nginx >/dev/null || { echo "FAIL: nginx is not installed (apt-get install nginx)"; exit 1; }
work=$(mktemp -d /tmp/todo-proxy.XXXXXX)
chmod 755 "$work" # PostgreSQL's files below belong to postgres when we are root
fails=0
ok() { printf 'ok: %s\n' "$*"; }
bad() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }
# abort WHAT [LOG...]: a step the rest depends on failed; shows the logs' ends, keeps them.
abort() {
  bad "$1"
  shift
  local f
  for f in "$@"; do [ -s "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
  exit 1
}
started=$(now)

pids=() # instances, nginx and event streams; all stopped on exit, also on failure
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  pg_stop "$work/pg"
  if [ "$fails" -gt 0 ] || [ -n "${KEEP_WORK:-}" ]; then
    echo "logs kept in $work (nginx/access.log, nginx/error.log, api-*.err)"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# --- one PostgreSQL, two instances, nginx
pg_port=$(free_port)
pg_start "$work/pg" "$pg_port" tcp || abort "PostgreSQL did not start" "$work/pg/postgres.log"
db_url="postgresql://postgres@127.0.0.1:$pg_port/todo"
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

# start_api NAME PORT [SETTING=VALUE...]: the service with its log in $work/api-NAME.err.
# SSE_MAX_PER_USER=1 so that a user's second stream on one instance is refused with 503.
start_api() {
  local name=$1 port=$2
  shift 2
  (cd / && exec env -i PATH="$PATH" DATABASE_URL="$db_url" BETTER_AUTH_SECRET="$secret" \
    PORT="$port" HOST=127.0.0.1 SSE_MAX_PER_USER=1 LOG_LEVEL=info "$@" "$bin") \
    >"$work/api-$name.out" 2>"$work/api-$name.err" &
  pids+=($!)
}
wait_ready() { # wait_ready URL PID: up to 30 s (a loaded machine), unless the process exits
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# Instance a trusts nginx (127.0.0.1) to name the client in X-Forwarded-For; b trusts no one.
port_a=$(free_port)
start_api a "$port_a" TRUSTED_PROXIES=127.0.0.1
# One at a time: the second must not wait on the first one's migrations for its deadline.
wait_ready "http://127.0.0.1:$port_a/ready" "${pids[-1]}" ||
  abort "instance a (:$port_a) did not become ready" "$work/api-a.err" "$work/pg/postgres.log"
port_b=$(free_port)
start_api b "$port_b"
wait_ready "http://127.0.0.1:$port_b/ready" "${pids[-1]}" ||
  abort "instance b (:$port_b) did not become ready" "$work/api-b.err" "$work/pg/postgres.log"

proxy_port=$(free_port)
"$src/deploy/render" nginx "$work/nginx" "$proxy_port" "$port_a" "$port_b" ||
  abort "deploy/render nginx failed"
nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" -g 'daemon off;' \
  >"$work/nginx.out" 2>&1 &
pids+=($!)
P=http://127.0.0.1:$proxy_port
wait_ready "$P/health" "${pids[-1]}" || abort "nginx on :$proxy_port did not answer /health" "$work/nginx.out" "$work/nginx/error.log"
ok "nginx on :$proxy_port in front of :$port_a and :$port_b ($(elapsed "$started") s to start all)"

token() { (cd / && env -i BETTER_AUTH_SECRET="$secret" "$bin" token --sub "$1" --ttl 600); }
alice=$(token alice) bob=$(token bob) carol=$(token carol)

# call NAME CURL-ARGS...: status in $code; headers in $work/NAME.h (the last block), body in
# $work/NAME.b. "Expect:" off: curl would otherwise wait for 100 Continue on large bodies.
call() {
  local name=$1
  shift
  code=$(curl -sS --max-time 10 -H 'Expect:' -o "$work/$name.b" -D "$work/$name.h" \
    -w '%{http_code}' "$@" 2>"$work/$name.curl") || code=000
}
hdr() { # hdr NAME FIELD: the field's value in the last header block, without CR
  awk -v f="$(printf '%s' "$2" | tr 'A-Z' 'a-z')" '
    /^HTTP\// { v = "" }
    { line = $0; sub(/\r$/, "", line); i = index(line, ":")
      if (i > 0 && tolower(substr(line, 1, i - 1)) == f) { v = substr(line, i + 1); sub(/^[ \t]+/, "", v) } }
    END { print v }' "$work/$1.h"
}
body() { cat "$work/$1.b"; }
expect() { # expect NAME STATUS WHAT: checks $code, shows the body when it differs
  if [ "$code" = "$2" ]; then ok "$3: $2"; else
    bad "$3: expected $2, got $code: $(head -c 300 "$work/$1.b") $(cat "$work/$1.curl" 2>/dev/null)"
  fi
}
json_error() { # json_error NAME WHAT: the API's error shape, not a proxy's page
  if grep -q '^{"detail":' "$work/$1.b" && ! grep -qi '<html' "$work/$1.b" &&
    hdr "$1" Content-Type | grep -q '^application/json'; then
    ok "$2: the service's JSON error body ($(head -c 80 "$work/$1.b"))"
  else
    bad "$2: not the API's JSON error (Content-Type '$(hdr "$1" Content-Type)'): $(head -c 200 "$work/$1.b")"
  fi
}
auth() { printf 'Authorization: Bearer %s' "$1"; }
json='Content-Type: application/json'

# --- CRUD, ETag, isolation
call create -H "$(auth "$alice")" -H "$json" -d '{"title":"through nginx"}' "$P/api/tasks"
expect create 201 "POST /api/tasks"
id=$(grep -o '"id":[0-9]*' "$work/create.b" | head -1 | cut -d: -f2)
[ "$(hdr create Location)" = "/api/tasks/$id" ] && ok "Location: /api/tasks/$id" ||
  bad "Location is '$(hdr create Location)', expected /api/tasks/$id"

call get -H "$(auth "$alice")" "$P/api/tasks/$id"
expect get 200 "GET /api/tasks/$id"
etag=$(hdr get ETag)
[ -n "$etag" ] && ok "ETag: $etag" || bad "GET answered without an ETag"
call cond -H "$(auth "$alice")" -H "If-None-Match: $etag" "$P/api/tasks/$id"
expect cond 304 "If-None-Match with the ETag"
[ "$(hdr cond ETag)" = "$etag" ] && ok "304 carries the same ETag" ||
  bad "304 carries ETag '$(hdr cond ETag)', expected $etag"
[ ! -s "$work/cond.b" ] && ok "304 has no body" || bad "304 has a body: $(head -c 100 "$work/cond.b")"

call list -H "$(auth "$alice")" "$P/api/tasks"
expect list 200 "GET /api/tasks"
grep -q "\"id\":$id," "$work/list.b" && [ "$(hdr list X-Total-Count)" = 1 ] &&
  ok "the list holds the task, X-Total-Count: 1" ||
  bad "list: X-Total-Count '$(hdr list X-Total-Count)', body $(head -c 200 "$work/list.b")"

call put -X PUT -H "$(auth "$alice")" -H "$json" -d '{"title":"renamed"}' "$P/api/tasks/$id"
expect put 200 "PUT /api/tasks/$id"
grep -q '"title":"renamed"' "$work/put.b" || bad "PUT did not rename: $(body put)"
call patch -X PATCH -H "$(auth "$alice")" -H "$json" -d '{"completed":true}' "$P/api/tasks/$id"
expect patch 200 "PATCH /api/tasks/$id"
grep -q '"completed":true' "$work/patch.b" || bad "PATCH did not complete it: $(body patch)"

call other -H "$(auth "$bob")" "$P/api/tasks/$id"
expect other 404 "another user's task (isolation through the proxy)"
grep -q '"Task not found"' "$work/other.b" || bad "404 body: $(body other)"
call scoped -H "$(auth "$bob")" "$P/api/alice/tasks"
expect scoped 403 "/api/alice/tasks with bob's token"

call del -X DELETE -H "$(auth "$alice")" "$P/api/tasks/$id"
expect del 204 "DELETE /api/tasks/$id"
call gone -H "$(auth "$alice")" "$P/api/tasks/$id"
expect gone 404 "GET after DELETE"

# --- errors: the service's, passed through untouched
call noauth "$P/api/tasks"
expect noauth 401 "no token"
hdr noauth WWW-Authenticate | grep -q '^Bearer' && ok "WWW-Authenticate: $(hdr noauth WWW-Authenticate)" ||
  bad "401 without WWW-Authenticate: Bearer"
call badtok -H "Authorization: Bearer not.a.token" "$P/api/tasks"
expect badtok 401 "a bad token"
hdr badtok WWW-Authenticate | grep -q 'error="invalid_token"' && ok "WWW-Authenticate names invalid_token" ||
  bad "bad token: WWW-Authenticate '$(hdr badtok WWW-Authenticate)'"
call method -X DELETE -H "$(auth "$alice")" "$P/api/tasks"
expect method 405 "DELETE /api/tasks"
[ -n "$(hdr method Allow)" ] && ok "Allow: $(hdr method Allow)" || bad "405 without Allow"
call badjson -H "$(auth "$alice")" -H "$json" -d '{"title":' "$P/api/tasks"
expect badjson 400 "malformed JSON"
json_error badjson "400"
head -c 102400 /dev/zero | tr '\0' 'x' | sed 's/^/{"title":"/; s/$/"}/' >"$work/big.json"
call big -H "$(auth "$alice")" -H "$json" --data-binary "@$work/big.json" "$P/api/tasks"
expect big 413 "a 100 KB body (MAX_BODY_BYTES 64 KiB, nginx's limit 1 MB)"
json_error big "413"

# --- X-Request-Id: a client's goes through and back; otherwise nginx's id is the service's too
call rid -H "X-Request-Id: deploy-test-$$" "$P/health"
[ "$(hdr rid X-Request-Id)" = "deploy-test-$$" ] && ok "X-Request-Id sent is echoed back" ||
  bad "X-Request-Id sent deploy-test-$$, got '$(hdr rid X-Request-Id)'"
call norid "$P/health"
gen=$(hdr norid X-Request-Id)
if [ -n "$gen" ]; then ok "X-Request-Id generated when absent: $gen"; else bad "no X-Request-Id when none was sent"; fi
sleep 0.2 # nginx writes its access log line after the answer
grep -q "rid=$gen " "$work/nginx/access.log" && ok "nginx's access log names the same request id" ||
  bad "request id $gen is not in nginx's access log"

# --- CORS
origin=http://localhost:3000
call pre -X OPTIONS -H "Origin: $origin" -H 'Access-Control-Request-Method: POST' \
  -H 'Access-Control-Request-Headers: authorization,content-type,idempotency-key' "$P/api/tasks"
expect pre 204 "CORS preflight from $origin"
[ "$(hdr pre Access-Control-Allow-Origin)" = "$origin" ] || bad "preflight Allow-Origin '$(hdr pre Access-Control-Allow-Origin)'"
hdr pre Access-Control-Allow-Methods | grep -q POST || bad "preflight Allow-Methods '$(hdr pre Access-Control-Allow-Methods)'"
hdr pre Access-Control-Allow-Headers | grep -qi authorization || bad "preflight Allow-Headers '$(hdr pre Access-Control-Allow-Headers)'"
[ "$(hdr pre Access-Control-Allow-Credentials)" = true ] || bad "preflight without Allow-Credentials: true"
hdr pre Vary | grep -qi origin || bad "preflight without Vary: Origin"
[ -n "$(hdr pre Access-Control-Max-Age)" ] && ok "preflight headers: Allow-Origin, -Methods, -Headers, -Credentials, Max-Age, Vary" ||
  bad "preflight without Access-Control-Max-Age"
call cors -H "Origin: $origin" -H "$(auth "$alice")" "$P/api/tasks"
expect cors 200 "CORS actual request"
[ "$(hdr cors Access-Control-Allow-Origin)" = "$origin" ] && hdr cors Access-Control-Expose-Headers | grep -q ETag &&
  ok "actual response: Allow-Origin $origin, Expose-Headers $(hdr cors Access-Control-Expose-Headers | cut -c1-40)..." ||
  bad "actual response: Allow-Origin '$(hdr cors Access-Control-Allow-Origin)', Expose '$(hdr cors Access-Control-Expose-Headers)'"
call evil -H "Origin: http://evil.example" -H "$(auth "$alice")" "$P/api/tasks"
grep -qi '^access-control-' "$work/evil.h" && bad "a disallowed origin got Access-Control-* headers" ||
  ok "a disallowed origin gets no Access-Control-* header"

# --- event streams: not buffered by nginx; Retry-After on a refused one
# open_stream NAME TOKEN: curl following the stream in the background, output in $work/NAME.sse
open_stream() {
  curl -sSN --max-time 30 -D "$work/$1.sh" -H "$(auth "$2")" "$P/api/tasks/events" \
    >"$work/$1.sse" 2>"$work/$1.err" &
  pids+=($!)
  for _ in $(seq 1 50); do
    grep -q '^HTTP/1.1 200' "$work/$1.sh" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
if open_stream alice_stream "$alice"; then
  t0=$(now)
  call sse_create -H "$(auth "$alice")" -H "$json" -d '{"title":"seen live"}' "$P/api/tasks"
  sid=$(grep -o '"id":[0-9]*' "$work/sse_create.b" | head -1 | cut -d: -f2)
  seen=
  for _ in $(seq 1 100); do
    grep -q "\"id\":$sid," "$work/alice_stream.sse" && grep -q '^event: task.created' "$work/alice_stream.sse" &&
      { seen=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }'); break; }
    sleep 0.01
  done
  if [ -n "$seen" ] && [ "$seen" -le 1000 ]; then
    ok "the stream through nginx got task.created $seen ms after the create (unbuffered)"
  else
    bad "no task.created for task $sid on the stream within 1 s: $(head -c 300 "$work/alice_stream.sse")"
  fi
else
  bad "alice's event stream did not open through nginx: $(cat "$work/alice_stream.sh" "$work/alice_stream.err")"
fi
# Two instances with SSE_MAX_PER_USER=1: carol's third stream finds both taken, whichever way
# round-robin sends it.
open_stream carol1 "$carol" || bad "carol's first stream did not open"
open_stream carol2 "$carol" || bad "carol's second stream did not open (the other instance)"
call carol3 -H "$(auth "$carol")" "$P/api/tasks/events"
expect carol3 503 "a third stream of one user (SSE_MAX_PER_USER=1 on each of 2 instances)"
[ -n "$(hdr carol3 Retry-After)" ] && ok "503 carries Retry-After: $(hdr carol3 Retry-After)" ||
  bad "503 without Retry-After"
json_error carol3 "503"

# --- both instances served: nginx's upstream field and each instance's own log
for _ in $(seq 1 10); do curl -s -o /dev/null --max-time 5 -H "$(auth "$alice")" "$P/api/tasks"; done
sleep 0.3 # the service's log writer flushes every 5 ms, nginx at once
n_a=$(grep -c "upstream=127.0.0.1:$port_a " "$work/nginx/access.log")
n_b=$(grep -c "upstream=127.0.0.1:$port_b " "$work/nginx/access.log")
l_a=$(grep -c ' info GET /api/tasks ' "$work/api-a.err")
l_b=$(grep -c ' info GET /api/tasks ' "$work/api-b.err")
if [ "$n_a" -ge 5 ] && [ "$n_b" -ge 5 ] && [ "$l_a" -ge 3 ] && [ "$l_b" -ge 3 ]; then
  ok "round-robin: nginx sent $n_a requests to a and $n_b to b; their logs hold $l_a and $l_b GET /api/tasks"
else
  bad "requests not spread: nginx sent $n_a to a, $n_b to b; GET /api/tasks in their logs: $l_a, $l_b"
fi
# --- the client address in the access log: from X-Forwarded-For only behind a trusted proxy.
# Round-robin sends some of these to each instance; each is found by its request id.
for i in 1 2 3 4; do
  curl -s -o /dev/null --max-time 5 -H "X-Forwarded-For: 203.0.113.7" -H "X-Request-Id: xff-$$-$i" "$P/health"
done
# From 127.0.0.2, a client nobody trusts, a forged X-Forwarded-For must not stick: nginx appends
# the address it saw, and that is the one named.
for i in 1 2 3 4; do
  curl -s -o /dev/null --max-time 5 --interface 127.0.0.2 -H "X-Forwarded-For: 203.0.113.66" \
    -H "X-Request-Id: forged-$$-$i" "$P/health"
done
sleep 0.3
forged=$(grep -h "rid=forged-$$-" "$work/api-a.err")
if [ -n "$forged" ] && ! grep -qv ' client=127\.0\.0\.2\( \|$\)' <<<"$forged"; then
  ok "a forged X-Forwarded-For from an untrusted client: the log names the client nginx saw (127.0.0.2)"
else
  bad "a forged X-Forwarded-For from 127.0.0.2 through nginx: expected client=127.0.0.2, got: ${forged:-no line}"
fi
xff_a=$(grep -h "rid=xff-$$-" "$work/api-a.err")
xff_b=$(grep -h "rid=xff-$$-" "$work/api-b.err")
if [ -n "$xff_a" ] && ! grep -qv ' client=203\.0\.113\.7\( \|$\)' <<<"$xff_a"; then
  ok "TRUSTED_PROXIES=127.0.0.1: the access log names the X-Forwarded-For client ($(grep -o 'client=[^ ]*' <<<"$xff_a" | sort -u | tr '\n' ' '))"
else
  bad "TRUSTED_PROXIES=127.0.0.1: expected client=203.0.113.7 on every line, got: ${xff_a:-no line}"
fi
if [ -n "$xff_b" ] && ! grep -qv ' client=127\.0\.0\.1\( \|$\)' <<<"$xff_b"; then
  ok "no TRUSTED_PROXIES: the access log names the peer, not X-Forwarded-For ($(grep -o 'client=[^ ]*' <<<"$xff_b" | sort -u | tr '\n' ' '))"
else
  bad "no TRUSTED_PROXIES: expected client=127.0.0.1 on every line, got: ${xff_b:-no line}"
fi

grep -q '\[\(error\|crit\|alert\|emerg\)\]' "$work/nginx/error.log" &&
  bad "nginx logged errors: $(grep '\[\(error\|crit\|alert\|emerg\)\]' "$work/nginx/error.log" | head -3)" ||
  ok "nginx's error log has no error"

echo
if [ "$fails" -gt 0 ]; then
  echo "FAIL: $fails check(s) failed ($(elapsed "$started") s)"
  exit 1
fi
echo "PASS: the HTTP contract through nginx ($(elapsed "$started") s)"
