#!/usr/bin/env bash
# The deployment files are checked by the tools that will read them (issue 15, part 5):
# nginx -t and haproxy -c on the production configs and on what deploy/render makes of them
# (which must differ only in the lines it is meant to change), systemd-analyze verify and
# security on the unit, and the Kubernetes example (tests/deploy/k8s_check.mjs). Also the few
# lines each file exists for (keep-alive upstream, body limit, unbuffered events, /ready
# checks, the drain's timeouts).
#   TODO_API_BINARY=build/todo-api bash tests/deploy/configs_test.sh
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TODO_API_BINARY:?TODO_API_BINARY must name the todo-api binary}
bin=$(realpath "$bin")
PATH=$PATH:/usr/sbin:/sbin
work=$(mktemp -d /tmp/todo-deploy-configs.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
ok() { printf 'ok: %s\n' "$*"; }
bad() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }
need() { # need TOOL PACKAGE
  command -v "$1" >/dev/null && return 0
  bad "$1 is not installed: apt-get install $2"
  return 1
}
started=$(date +%s.%N)
nginx_conf=$src/deploy/nginx/todo-api.conf
haproxy_cfg=$src/deploy/haproxy/haproxy.cfg
unit=$src/deploy/systemd/todo-api.service
for f in "$nginx_conf" "$haproxy_cfg" "$unit" "$src/deploy/systemd/env.example" "$src/deploy/render" \
  "$src/deploy/k8s/todo-api.yaml" "$src/tests/deploy/k8s_check.mjs"; do
  [ -s "$f" ] || { echo "FAIL: $f is missing or empty"; exit 1; }
done
has() { grep -Eq "$2" "$1"; } # has FILE REGEX
# same_except FILE RENDERED SKIP-REGEX: the lines of FILE that SKIP-REGEX does not match, in
# order and untouched (indentation aside), are the lines of RENDERED it does not match.
same_except() {
  diff <(grep -Ev "$3" "$1" | sed 's/^[[:space:]]*//') \
    <(grep -Ev "$3" "$2" | grep -v '^# Rendered by' | sed 's/^[[:space:]]*//') >"$work/diff" 2>&1
}

# --- nginx
if need nginx nginx; then
  mkdir -p "$work/n-prod/log"
  # The production file inside the minimal main context Debian's nginx.conf gives it; its log
  # path moves into the test's directory (nginx -t opens log files, and may not write there).
  sed "s|/var/log/nginx/|$work/n-prod/log/|" "$nginx_conf" >"$work/n-prod/todo-api.conf"
  cat >"$work/n-prod/nginx.conf" <<EOF
pid $work/n-prod/nginx.pid;
error_log $work/n-prod/error.log;
events {}
http {
  client_body_temp_path $work/n-prod/tmp;
  proxy_temp_path $work/n-prod/tmp;
  include $work/n-prod/todo-api.conf;
}
EOF
  if nginx -t -q -p "$work/n-prod" -e "$work/n-prod/error.log" -c "$work/n-prod/nginx.conf" >"$work/nt" 2>&1 &&
    [ ! -s "$work/nt" ]; then
    ok "nginx -t: deploy/nginx/todo-api.conf (in a minimal http {} block)"
  else
    bad "nginx -t on deploy/nginx/todo-api.conf: $(cat "$work/nt")"
  fi
  if "$src/deploy/render" nginx "$work/n-render" 18080 18001 18002 18003 2>"$work/rt" &&
    nginx -t -q -p "$work/n-render" -e "$work/n-render/error.log" -c "$work/n-render/nginx.conf" >"$work/nt" 2>&1 &&
    [ ! -s "$work/nt" ]; then
    ok "nginx -t: deploy/render nginx (3 backends)"
  else
    bad "nginx -t on the rendered config: $(cat "$work/rt" "$work/nt")"
  fi
  r=$work/n-render/nginx.conf
  if [ "$(grep -c '^ *server 127\.0\.0\.1:1800[123] ' "$r")" = 3 ] && has "$r" '^ *listen 127\.0\.0\.1:18080;$' &&
    ! grep -v '^[[:space:]]*#' "$r" | grep -q '/var/\|/run/\|/etc/'; then
    ok "rendered nginx: 3 servers, listens on 127.0.0.1:18080, no path outside its directory"
  else
    bad "rendered nginx: servers, listen line or paths wrong:"; grep -n 'server 1\|listen\|/var/\|/run/' "$r"
  fi
  # Everything but the main context, the upstream's servers, listen and log lines is the
  # production file's, line for line.
  if awk '/^http \{/ { on = 1; next } on' "$r" | sed '$d' | grep -Ev '_temp_path |^  access_log [^ ]*;$' >"$work/r-body" &&
    same_except "$nginx_conf" "$work/r-body" '^[[:space:]]*(server[[:space:]]+[0-9]|listen[[:space:]]|access_log[[:space:]])'; then
    ok "rendered nginx = the production file except its server, listen and access_log lines"
  else
    bad "the rendered nginx config differs from deploy/nginx/todo-api.conf beyond the substituted lines:"
    sed 's/^/    /' "$work/diff" | head -20
  fi
  # Each rendered server keeps the production server's parameters (max_fails, fail_timeout).
  params=$(sed -n 's/^[[:space:]]*server[[:space:]]\+[0-9][^[:space:];]*\(.*\)$/\1/p' "$nginx_conf" | sort -u)
  rparams=$(sed -n 's/^[[:space:]]*server[[:space:]]\+127\.0\.0\.1:1800[123]\(.*\)$/\1/p' "$r" | sort -u)
  [ -n "$params" ] && [ "$params" = "$rparams" ] && ok "rendered nginx servers keep the production parameters:$params" ||
    bad "rendered nginx server parameters '$rparams' differ from the production file's '$params'"
  # The lines the file exists for.
  c=$nginx_conf
  has "$c" '^[[:space:]]*keepalive[[:space:]]+[0-9]+;' && has "$c" 'proxy_http_version 1\.1;' &&
    has "$c" 'proxy_set_header Connection "";' && ok "nginx: keep-alive upstream (keepalive, HTTP/1.1, Connection \"\")" ||
    bad "nginx: the upstream keep-alive needs keepalive N, proxy_http_version 1.1 and proxy_set_header Connection \"\""
  has "$c" 'X-Forwarded-For \$proxy_add_x_forwarded_for' && has "$c" 'X-Forwarded-Proto \$scheme' &&
    has "$c" 'proxy_set_header X-Request-Id' && ok "nginx: X-Forwarded-For, X-Forwarded-Proto, X-Request-Id" ||
    bad "nginx: X-Forwarded-For / X-Forwarded-Proto / X-Request-Id are not all set"
  limit=$(sed -n 's/^[[:space:]]*client_max_body_size[[:space:]]*\([0-9]*[kKmMgG]\?\);.*/\1/p' "$c" | head -1)
  bytes=$(echo "$limit" | awk '{ n = $0 + 0; u = tolower(substr($0, length($0)))
    print (u == "k") ? n * 1024 : (u == "m") ? n * 1048576 : (u == "g") ? n * 1073741824 : n }')
  [ -n "$limit" ] && [ "$bytes" -gt 65536 ] && ok "nginx: client_max_body_size $limit > MAX_BODY_BYTES (413 comes from the service)" ||
    bad "nginx: client_max_body_size '$limit' must exceed the service's 64 KiB, or 413 is nginx's HTML page"
  events=$(awk '/location .*tasks\/events/ { on = 1 } on { print } on && /}/ { exit }' "$c")
  if grep -q 'proxy_buffering off;' <<<"$events" && grep -q 'proxy_read_timeout' <<<"$events" &&
    ! grep -q 'proxy_set_header' <<<"$events"; then
    ok "nginx: the events location is unbuffered with a long read timeout (and inherits the headers)"
  else
    bad "nginx: the events location needs proxy_buffering off and proxy_read_timeout, and no proxy_set_header (it would drop the inherited ones)"
  fi
  nu=$(sed -n 's/^[[:space:]]*proxy_next_upstream[[:space:]]\+\([^;]*\);.*/\1/p' "$c")
  [ "$nu" = "error timeout" ] && has "$c" 'max_fails=[0-9]+ fail_timeout=' &&
    ok "nginx: proxy_next_upstream error timeout, passive max_fails/fail_timeout" ||
    bad "nginx: proxy_next_upstream is '$nu' (want 'error timeout': no http_503, no non_idempotent) or max_fails/fail_timeout missing"
fi

# --- HAProxy
if need haproxy haproxy; then
  # haproxy -c passes a config with warnings: they fail here.
  hmsg() { grep -E 'ALERT|WARNING' "$work/hc" | head -5; }
  if haproxy -c -f "$haproxy_cfg" >"$work/hc" 2>&1 && [ -z "$(hmsg)" ]; then
    ok "haproxy -c: deploy/haproxy/haproxy.cfg"
  else
    bad "haproxy -c on deploy/haproxy/haproxy.cfg: $(hmsg)"
  fi
  if "$src/deploy/render" haproxy "$work/h-render" 18080 18001 18002 2>"$work/rt" &&
    haproxy -c -f "$work/h-render/haproxy.cfg" >"$work/hc" 2>&1 && [ -z "$(hmsg)" ]; then
    ok "haproxy -c: deploy/render haproxy (2 backends)"
  else
    bad "haproxy -c on the rendered config: $(cat "$work/rt") $(hmsg)"
  fi
  r=$work/h-render/haproxy.cfg
  if [ "$(grep -c '^ *server app[12] 127\.0\.0\.1:1800[12] check' "$r")" = 2 ] && has "$r" '^ *bind 127\.0\.0\.1:18080$' &&
    ! grep -v '^ *#' "$r" | grep -Eq '/var/|/run/|/dev/log|^ *(user|group|chroot|daemon)( |$)'; then
    ok "rendered haproxy: 2 servers, binds 127.0.0.1:18080, no privileges or paths outside its directory"
  else
    bad "rendered haproxy: servers, bind, privileges or paths wrong:"; grep -n 'server\|bind\|/var/\|/run/\|user\|chroot' "$r"
  fi
  if same_except "$haproxy_cfg" "$r" '^[[:space:]]*(server[[:space:]]|bind[[:space:]]|log[[:space:]]+(/|stderr )|pidfile|stats[[:space:]]+socket|chroot|user[[:space:]]|group[[:space:]]|daemon$)'; then
    ok "rendered haproxy = the production file except its server, bind, log, pid, socket and privilege lines"
  else
    bad "the rendered haproxy config differs from deploy/haproxy/haproxy.cfg beyond the substituted lines:"
    sed 's/^/    /' "$work/diff" | head -20
  fi
  params=$(sed -n 's/^[[:space:]]*server[[:space:]]\+[^[:space:]]\+[[:space:]]\+[^[:space:]]\+\(.*\)$/\1/p' "$haproxy_cfg" | sort -u)
  rparams=$(sed -n 's/^[[:space:]]*server[[:space:]]\+app[12][[:space:]]\+127\.0\.0\.1:1800[12]\(.*\)$/\1/p' "$r" | sort -u)
  [ -n "$params" ] && [ "$params" = "$rparams" ] && ok "rendered haproxy servers keep the production parameters:$params" ||
    bad "rendered haproxy server parameters '$rparams' differ from the production file's '$params'"
  c=$haproxy_cfg
  has "$c" '^[[:space:]]*option httpchk GET /ready$' && has "$c" '^[[:space:]]*http-check expect status 200$' &&
    has "$c" 'inter [0-9]+m?s .*fall [0-9]+ rise [0-9]+' && ok "haproxy: health checks on /ready (inter, fall, rise)" ||
    bad "haproxy: needs option httpchk GET /ready, http-check expect status 200, inter/fall/rise"
  has "$c" '^[[:space:]]*balance roundrobin$' && has "$c" '^[[:space:]]*option forwardfor' &&
    has "$c" '^[[:space:]]*http-reuse safe$' && has "$c" '^[[:space:]]*timeout tunnel ' &&
    has "$c" '^[[:space:]]*retry-on conn-failure empty-response$' && has "$c" 'disable-l7-retry' &&
    ok "haproxy: roundrobin, forwardfor, http-reuse safe, timeout tunnel, retries only where safe" ||
    bad "haproxy: balance roundrobin, option forwardfor, http-reuse safe, timeout tunnel, retry-on conn-failure empty-response with disable-l7-retry are not all there"
fi

# --- systemd
drain=$(sed -n 's/^DRAIN_DELAY_MS=\([0-9]*\)$/\1/p' "$src/deploy/systemd/env.example")
grace=$(sed -n 's/^SHUTDOWN_GRACE_MS=\([0-9]*\)$/\1/p' "$src/deploy/systemd/env.example")
if need systemd-analyze systemd; then
  # verify needs ExecStart's binary to exist: a copy that starts the binary under test.
  exec_line=$(grep '^ExecStart=' "$unit")
  [ "$exec_line" = "ExecStart=/usr/local/bin/todo-api serve" ] ||
    bad "the unit's ExecStart is '$exec_line', expected /usr/local/bin/todo-api serve (where the install puts it)"
  sed "s|^ExecStart=/usr/local/bin/todo-api |ExecStart=$bin |" "$unit" >"$work/todo-api.service"
  changed=$(diff "$unit" "$work/todo-api.service" | grep -c '^[<>]')
  [ "$changed" = 2 ] || bad "the verified copy differs from the unit in $changed line(s), expected only ExecStart"
  # verify exits 0 on warnings ("ignoring"): any output is a failure.
  if (cd "$work" && systemd-analyze verify ./todo-api.service) >"$work/sv" 2>&1 && [ ! -s "$work/sv" ]; then
    ok "systemd-analyze verify: deploy/systemd/todo-api.service (ExecStart pointed at the binary under test)"
  else
    bad "systemd-analyze verify: $(cat "$work/sv")"
  fi
  if (cd "$work" && systemd-analyze security --offline=true --threshold=20 ./todo-api.service) >"$work/ss" 2>&1; then
    ok "systemd-analyze security: $(grep -o 'exposure level.*' "$work/ss" | sed 's/ for [^:]*:/:/')"
  else
    bad "systemd-analyze security: exposure above 2.0: $(grep -E '✗|exposure' "$work/ss" | head -10)"
  fi
fi
missing=
for d in 'User=\|DynamicUser=yes' ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
  NoNewPrivileges=yes 'CapabilityBoundingSet=$' RestrictAddressFamilies= SystemCallFilter=@system-service \
  MemoryDenyWriteExecute=yes LockPersonality=yes ProtectKernelTunables=yes ProtectKernelModules=yes \
  ProtectKernelLogs=yes RestrictNamespaces=yes EnvironmentFile=/etc/todo-api/env KillSignal=SIGTERM \
  Restart=on-failure; do
  grep -q "^\($d\)" "$unit" || missing="$missing $d"
done
[ -z "$missing" ] && ok "unit: hardening, EnvironmentFile, KillSignal, Restart all set" || bad "unit lacks:$missing"
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\?$/\1/p' "$unit")
if [ -n "$stop" ] && [ -n "$drain" ] && [ -n "$grace" ] && [ $((stop * 1000)) -gt $((drain + grace)) ]; then
  ok "unit: TimeoutStopSec ${stop}s > DRAIN_DELAY_MS $drain + SHUTDOWN_GRACE_MS $grace (env.example)"
else
  bad "unit: TimeoutStopSec '$stop' must exceed DRAIN_DELAY_MS '$drain' + SHUTDOWN_GRACE_MS '$grace' of env.example, or systemd kills the drain"
fi

# --- Kubernetes
if need node nodejs; then
  node "$src/tests/deploy/k8s_check.mjs" "$src/deploy/k8s/todo-api.yaml" || [ "$fails" -gt 0 ] ||
    fails=$((fails + 1)) # k8s_check printed its own FAIL lines
fi

echo
secs=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if [ "$fails" -gt 0 ]; then
  echo "FAIL: deployment files: $fails check(s) failed (${secs} s)"
  exit 1
fi
echo "PASS: deployment files (${secs} s)"
