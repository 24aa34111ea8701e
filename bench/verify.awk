# Checks a write workload's effect on the database against the answers wrk received.
#
#   awk -v ubase=100000 -v run=TAG -f bench/verify.awk before.tsv after.tsv results...
#
# before.tsv / after.tsv: "id<TAB>user_id<TAB>completed(t|f)<TAB>title" for every row of
# tasks, taken before the workload and after the server stopped (so every request it
# accepted has finished). results: the files bench/todo.lua's done() wrote (one per wrk
# process). Requests still in flight when wrk stopped were sent but never answered; they
# may or may not have been committed, so they are the only slack any check allows, and the
# slack is the exact number counted per kind (and per task for toggles and updates).
#
# Prints one line starting with PASS or FAIL and exits 1 on FAIL.

BEGIN { FS = "\t" }

FILENAME == ARGV[1] { b[$1] = 1; bc[$1] = $3; bt[$1] = $4; nb++; next }
FILENAME == ARGV[2] { a[$1] = 1; ac[$1] = $3; at[$1] = $4; au[$1] = $2; na++; next }
{
  split($0, f, " ")
  k = substr(f[1], 2, 1); e = substr(f[1], 1, 1)
  if (f[1] == "R") { wrk_requests += f[2] }
  else if (f[1] == "n") { noid++ }
  else if (f[1] == "w") { wrong++ }
  else if (e == "s") {
    sent[k]++
    if (k == "T") ts[f[2]]++
    else if (k == "U") us[f[2]]++
    else if (k == "D") ds[f[2]]++
  }
  else if (e == "o") {
    ok[k]++; answered++
    if (k == "T") to[f[2]]++
    else if (k == "U") uo[f[2]]++
    else if (k == "D") dk[f[2]]++
    else if (k == "C") { if (f[2] in cu) cdup++; cu[f[2]] = f[3] }
  }
  else if (e == "b") { bad[k]++; answered++; nonok++ }
}

function fail(msg) { problems = problems (problems == "" ? "" : "; ") msg }

END {
  for (k in sent) fly[k] = sent[k] - ok[k] - bad[k]
  for (k in bad) if (bad[k] > 0) fail(bad[k] " non-2xx answers to " k)
  if (answered != wrk_requests) fail("Lua counted " answered " answers, wrk " wrk_requests)
  if (noid > 0) fail(noid " answers without the X-Request-Id sent")
  if (wrong > 0) fail(wrong " 2xx answers whose body does not match the request")
  if (cdup > 0) fail(cdup " created ids answered twice")

  # creates: every acknowledged id exists (unless a delete of it was sent), belongs to the
  # user who created it and carries this run's title; rows nobody acknowledged are at most
  # the creates still in flight.
  lost = 0; owner = 0; extra = 0
  for (id in cu) {
    if (!(id in a)) { if (!(id in ds)) lost++; continue }
    if (au[id] != ubase + cu[id] || at[id] != "c-" run "-" cu[id]) owner++
  }
  for (id in a) if (!(id in b) && !(id in cu)) extra++
  if (lost > 0) fail(lost " acknowledged creates missing")
  if (owner > 0) fail(owner " created rows with the wrong user or title")
  if (extra > fly["C"] + 0) fail(extra " unacknowledged new rows, only " (fly["C"] + 0) " creates in flight")

  # deletes: an acknowledged delete is gone; nothing else disappeared
  back = 0; vanished = 0; dacked = 0
  for (id in dk) if (dk[id] > 0) { dacked++; if (id in a) back++ }
  for (id in b) if (!(id in a) && !(id in ds)) vanished++
  if (back > 0) fail(back " acknowledged deletes still present")
  if (vanished > 0) fail(vanished " rows vanished without a delete")

  # toggles: per task, the number of acknowledged flips has the parity of the change in
  # `completed` (exact wherever no toggle of that task was in flight); untoggled tasks
  # keep their state.
  texact = 0; tfly = 0; tbad = 0; tspur = 0; tacked = 0
  for (id in b) if (id in a) {
    changed = (bc[id] != ac[id])
    if (id in ts) {
      tacked += to[id]
      if (ts[id] == to[id]) { texact++; if ((to[id] % 2 == 1) != changed) tbad++ }
      else tfly++
    } else if (changed) tspur++
  }
  if (tbad > 0) fail(tbad " tasks whose completed state disagrees with the acknowledged toggles")
  if (tspur > 0) fail(tspur " tasks changed completed without a toggle")

  # updates: a task with acknowledged updates (none in flight) carries one of this run's
  # titles; tasks nobody updated keep theirs.
  uexact = 0; ubad = 0; uspur = 0
  for (id in b) if (id in a) {
    if (id in us) {
      if (us[id] == uo[id] && uo[id] > 0) { uexact++; if (index(at[id], "u-" run "-") != 1) ubad++ }
    } else if (at[id] != bt[id]) uspur++
  }
  if (ubad > 0) fail(ubad " updated tasks without their acknowledged title")
  if (uspur > 0) fail(uspur " titles changed without an update")

  summary = "rows " nb "->" na
  if ("C" in sent) summary = summary ", creates acked " ok["C"] " (+" extra " unacked, " (fly["C"] + 0) " in flight)"
  if ("D" in sent) summary = summary ", deletes acked " dacked
  if ("T" in sent) summary = summary ", toggles acked " tacked " on " texact " tasks exact" (tfly ? ", " tfly " with one in flight" : "")
  if ("U" in sent) summary = summary ", updates on " uexact " tasks checked"
  if (problems == "") { print "PASS " summary; exit 0 }
  print "FAIL " problems " [" summary "]"
  exit 1
}
