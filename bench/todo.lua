-- wrk script for scripts/bench: one file, every workload.
--
-- Environment (set by scripts/bench):
--   BENCH_WORKLOAD  health | list | get | create | update | toggle | delete | mixed
--   BENCH_DATA      Lua file defining run (tag), users, tokens and either lo/cnt (user u owns
--                   task ids lo[u] .. lo[u]+cnt[u]-1) or ids (ids[u] = {task ids of user u})
--   BENCH_OUT       path prefix: done() writes BENCH_OUT (summary), each thread of a write
--                   workload writes its events to BENCH_OUT.<thread>
--   BENCH_SEED      optional seed offset for math.random (differs per wrk process)
--   BENCH_KEYS      1: every write sends a unique Idempotency-Key
--
-- Requests spread over every user at random (each request picks a user and, where it needs
-- one, one of that user's tasks). Every request carries X-Request-Id "b<kind>-<task or user>",
-- which the server echoes: response() uses it to match each answer to its request, so the
-- counts per task are exact although wrk does not say which connection answered.
--
-- Why files and not thread:get(): wrk 4.1's thread:get() crashes now and then inside LuaJIT
-- when done() reads a worker's tables. Each worker thread appends one short line per event
-- to its own buffered file instead (flushed when wrk exits); bench/verify.awk and
-- scripts/bench aggregate them. Event lines:
--   s<K> <id>           a write request sent (K = C with the user index, T/U/D with the task id)
--   o<K> <id> [<user>]  a 2xx answer (oC <new id> <user index>)
--   b<K> <id> <status>  a non-2xx answer
--   n                   an answer without our X-Request-Id (matching impossible)
--   w                   a 2xx answer whose body does not match its request

local wl = os.getenv("BENCH_WORKLOAD") or "list"
local data = os.getenv("BENCH_DATA")
local out = os.getenv("BENCH_OUT")
local seed = tonumber(os.getenv("BENCH_SEED") or "0")
-- BENCH_KEYS=1: every write carries a unique Idempotency-Key (what a client that always sends
-- one costs the server)
local keys = os.getenv("BENCH_KEYS") == "1"
local kseq = 0

if wl ~= "health" then
  assert(data, "BENCH_DATA is not set")
  dofile(data)
end

-- ---------------------------------------------------------------- main state (setup/done)
local nthreads = 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tix", nthreads)
end

if wl == "health" then
  wrk.method = "GET"
  wrk.path = "/health"
end

-- One line: R requests duration_us bytes connect read write status timeout p50 p90 p99 max (us),
-- then "Q p:value ..." for more of the distribution, so that several runs (slices) can be
-- merged into one p99 over all their requests.
local quantiles = {10, 25, 50, 75, 90, 95, 97, 98, 98.5, 99, 99.3, 99.6, 99.8, 99.9, 99.99}
function done(summary, latency, requests)
  local e = summary.errors
  local fields = {"R", summary.requests, summary.duration, summary.bytes, e.connect,
    e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, "Q"}
  for _, p in ipairs(quantiles) do
    table.insert(fields, p .. ":" .. latency:percentile(p))
  end
  table.insert(fields, "100:" .. latency.max)
  local line = table.concat(fields, " ")
  if out then
    local f = assert(io.open(out, "w"))
    f:write(line, "\n")
    f:close()
  else
    print(line)
  end
end

-- ---------------------------------------------------------------- thread state
local writes = {create = true, update = true, toggle = true, delete = true, mixed = true}
local N = users and #users or 0
local auth = {}
for u = 1, N do auth[u] = "Bearer " .. tokens[u] end

local function task(u)
  if ids then
    local l = ids[u]
    return l[math.random(#l)]
  end
  return lo[u] + math.random(cnt[u]) - 1
end

local log          -- this thread's event file (write workloads only)
local dry = false  -- wrk calls request() once on its first thread only to validate it
local pool = {}    -- delete workload: user -> ids this thread created and has not deleted
local useq = 0

function init(args)
  math.randomseed(seed * 1000 + (tix or 1) * 7919)
  for u = 1, N do pool[u] = {} end
  if writes[wl] and out then
    log = assert(io.open(out .. "." .. (tix or 1), "w"))
    log:setvbuf("full", 65536)
  end
  dry = (tix or 1) == 1
end

local function note(...)
  if log and not dry then log:write(...) end
end

local json = "application/json"

local function req(method, path, u, rid, body)
  local h = {["Authorization"] = auth[u], ["X-Request-Id"] = rid}
  if body then h["Content-Type"] = json end
  if keys and method ~= "GET" then
    kseq = kseq + 1
    h["Idempotency-Key"] = run .. "-" .. wl .. "-" .. seed .. "-" .. (tix or 1) .. "-" .. kseq
  end
  return wrk.format(method, path, h, body)
end

local function make(kind, u)
  if kind == "L" then
    return req("GET", "/api/tasks", u, "bL-" .. u)
  elseif kind == "G" then
    local id = task(u)
    return req("GET", "/api/tasks/" .. id, u, "bG-" .. id)
  elseif kind == "C" then
    note("sC ", u, "\n")
    return req("POST", "/api/tasks", u, "bC-" .. u,
               '{"title":"c-' .. run .. '-' .. u .. '","description":"bench"}')
  elseif kind == "U" then
    local id = task(u)
    useq = useq + 1
    local s = (tix or 1) .. "x" .. useq
    note("sU ", id, "\n")
    return req("PUT", "/api/tasks/" .. id, u, "bU-" .. id .. "-" .. s,
               '{"title":"u-' .. run .. '-' .. s .. '"}')
  elseif kind == "T" then
    local id = task(u)
    note("sT ", id, "\n")
    return req("PATCH", "/api/tasks/" .. id .. "/complete", u, "bT-" .. id)
  elseif kind == "D" then
    local id = dry and pool[u][#pool[u]] or table.remove(pool[u])
    note("sD ", id, "\n")
    return req("DELETE", "/api/tasks/" .. id, u, "bD-" .. id)
  end
end

if wl ~= "health" then
  function request()
    local r = pick()
    dry = false
    return r
  end

  function pick()
    local u = math.random(N)
    if wl == "list" then return make("L", u)
    elseif wl == "get" then return make("G", u)
    elseif wl == "create" then return make("C", u)
    elseif wl == "update" then return make("U", u)
    elseif wl == "toggle" then return make("T", u)
    elseif wl == "delete" then
      -- delete+create pairs: delete a task this thread created for the user, else create one
      if #pool[u] > 0 then return make("D", u) end
      return make("C", u)
    elseif wl == "mixed" then
      -- 70% reads (35 list, 35 get), 30% writes (10 create, 10 toggle, 10 update)
      local r = math.random(100)
      if r <= 35 then return make("L", u)
      elseif r <= 70 then return make("G", u)
      elseif r <= 80 then return make("C", u)
      elseif r <= 90 then return make("T", u)
      else return make("U", u) end
    end
    error("unknown workload " .. wl)
  end
end

-- Only workloads whose answers must be checked pay for response(): it makes wrk hand every
-- header and body to Lua. Reads rely on wrk's own count of statuses > 399.
if writes[wl] then
  function response(st, headers, body)
    local rid = headers["X-Request-Id"] or headers["x-request-id"]
    local ok = st >= 200 and st < 300
    local kind, rest
    if rid then kind, rest = rid:match("^b(%u)%-(.*)$") end
    if not kind then
      -- A server that does not echo X-Request-Id (a peer): a 2xx is counted, not checked,
      -- except that a created task and its user can still be learnt from the body.
      log:write("n\n")
      if not ok then log:write("b? 0 ", st, "\n") return end
      if st ~= 201 then return end
      kind, rest = "C", "0"
    end
    if not ok then
      log:write("b", kind, " ", rest:match("^%d*"), " ", st, "\n")
      return
    end
    if kind == "C" then
      local id = body:match('"id"%s*:%s*(%d+)')
      local u = tonumber(body:match('"c%-' .. run .. '%-(%d+)"'))
      if not id or not u then log:write("w\noC 0 0\n") return end
      log:write("oC ", id, " ", u, "\n")
      if wl == "delete" then table.insert(pool[u], tonumber(id)) end
    elseif kind == "U" then
      local id, s = rest:match("^(%d+)%-(.*)$")
      if not body:find('"id"%s*:%s*' .. id .. '[,}%s]') or
         not body:find('"u%-' .. run .. '%-' .. s .. '"') then log:write("w\n") end
      log:write("oU ", id, "\n")
    else
      if (kind == "T" or kind == "G") and not body:find('"id"%s*:%s*' .. rest .. '[,}%s]') then
        log:write("w\n")
      end
      log:write("o", kind, " ", rest, "\n")
    end
  end
end
