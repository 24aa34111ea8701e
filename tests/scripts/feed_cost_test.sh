#!/usr/bin/env bash
# scripts/feed-cost works end to end (its own throwaway PostgreSQL, every migration, the feed
# trigger found and switched off, pgbench in each case) and prints its whole table: four rows
# of three positive rates. It checks that the measurement runs, never a speed.
#   bash tests/scripts/feed_cost_test.sh
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
fails=0
ok() { printf 'ok: %s\n' "$*"; }
bad() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }

err=$(mktemp)
trap 'rm -f "$err"' EXIT
out=$("$src/scripts/feed-cost" --seconds 1 2>"$err")
rc=$?
if [ "$rc" = 0 ]; then ok "feed-cost exited 0"; else
  bad "feed-cost exited $rc; its stderr ends:"; tail -30 "$err" | sed 's/^/    /'
fi
for label in "1 row(s)/txn, feed on" "1 row(s)/txn, feed off" \
             "16 row(s)/txn, feed on" "16 row(s)/txn, feed off"; do
  line=$(printf '%s\n' "$out" | grep -F -- "$label" | head -1)
  rates=$(printf '%s\n' "${line#"$label"}" | awk '{ print NF, ($1 > 0 && $2 > 0 && $3 > 0) }')
  if [ "$rates" = "3 1" ]; then ok "$label: ${line#"$label"}"; else bad "row '$label' is missing or not three positive rates: '$line'"; fi
done

"$src/scripts/feed-cost" --seconds 0 >/dev/null 2>&1
rc=$?
[ "$rc" = 2 ] && ok "--seconds 0 refused (exit 2)" || bad "--seconds 0 exited $rc, want 2"

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
