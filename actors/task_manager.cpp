#include "actors/task_manager.hpp"

#include <algorithm>
#include <chrono>

#include "actors/model/task_json.hpp"
#include "config/metrics.hpp"

namespace todo {

namespace {

using self_ptr = task_manager_actor::stateful_pointer<task_manager_state>;

// The promise of one request's answer: delivering it also counts the request as done for the
// registry (exactly once per request: every path below delivers once).
struct promise {
  caf::typed_response_promise<task_result> rp;
  pending_counter pending;
  caf::actor_clock* clock = nullptr;
  task_manager_state* owner = nullptr; // set with idem_key: the key is in flight until answered
  std::string idem_key;
  void deliver(task_result r) {
    done();
    rp.deliver(std::move(r));
  }
  void deliver(caf::error err) {
    done();
    rp.deliver(std::move(err));
  }
  void done() {
    if (owner && !idem_key.empty())
      owner->keys_in_flight.erase(idem_key);
    if (pending) {
      pending->last_answer.store(clock->now().time_since_epoch().count(),
                                 std::memory_order_relaxed);
      pending->pending.fetch_sub(1, std::memory_order_release);
      metrics::actors().user_queue.fetch_sub(1, std::memory_order_relaxed);
    }
  }
};

// The promise of `cmd`'s answer.
promise promise_for(self_ptr self, caf::typed_response_promise<task_result> rp,
                    const task_cmd& cmd) {
  promise p{std::move(rp), self->state.pending, &self->clock(), nullptr, {}};
  if (!cmd.idem_key.empty()) {
    p.owner = &self->state;
    p.idem_key = cmd.idem_key;
  }
  return p;
}

// Tells the registry's slot and the global budget what the cache holds now.
void publish(task_manager_state& st) {
  auto tasks = st.cache ? static_cast<int64_t>(st.cache->size()) : 0;
  if (tasks != st.published_tasks) {
    metrics::actors().cached_tasks.fetch_add(tasks - st.published_tasks, std::memory_order_relaxed);
    st.published_tasks = tasks;
  }
  auto now = static_cast<int64_t>(st.cache_bytes);
  auto delta = now - st.published;
  if (delta == 0)
    return;
  st.published = now;
  metrics::actors().cache_bytes.fetch_add(delta, std::memory_order_relaxed);
  if (st.pending)
    st.pending->cache_bytes.store(now, std::memory_order_relaxed);
  if (st.budget)
    st.budget->used.fetch_add(delta, std::memory_order_relaxed);
}

// The only ways the cache changes (they keep `cache_bytes` true; callers publish).
void cache_put(task_manager_state& st, task t) {
  auto [i, fresh] = st.cache->try_emplace(t.id);
  if (!fresh)
    st.cache_bytes -= heap_bytes(i->second);
  i->second = make_cached(std::move(t));
  st.cache_bytes += heap_bytes(i->second);
}

bool same_content(const task& a, const task& b) {
  return a.completed == b.completed && a.updated_us == b.updated_us &&
         a.created_us == b.created_us && a.title == b.title && a.description == b.description;
}

// Puts a committed copy of a task unless the cache holds a newer one (a later change, from
// another writer, that reached us first) or this very one. An equal version with other
// content counts as newer: a writer outside the service may not bump the version.
bool cache_offer(task_manager_state& st, task t) {
  if (auto i = st.cache->find(t.id); i != st.cache->end()) {
    const auto& held = i->second.value;
    if (held.version > t.version || (held.version == t.version && same_content(held, t)))
      return false;
  }
  cache_put(st, std::move(t));
  return true;
}

void cache_erase(task_manager_state& st, int64_t id) {
  if (auto i = st.cache->find(id); i != st.cache->end()) {
    st.cache_bytes -= heap_bytes(i->second);
    st.cache->erase(i);
  }
}

void cache_drop(task_manager_state& st) {
  st.cache.reset();
  st.cache_bytes = 0;
}

bool is_mutation(op kind) {
  return kind == op::create || kind == op::update || kind == op::complete || kind == op::remove;
}

// Keeps the cache equal to what the database committed for one answered mutation.
void apply_to_cache(self_ptr self, const task_cmd& cmd, const task_result& r) {
  auto& st = self->state;
  if (!st.cache)
    return;
  if (cmd.kind == op::remove) {
    cache_erase(st, cmd.id);
    // Until the feed brings this delete back, a late "created" of the same row must not
    // bring it back to life.
    st.deleted_here.push_back(cmd.id);
    if (st.deleted_here.size() > 64)
      st.deleted_here.pop_front();
  } else {
    for (const auto& t : r.rows)
      cache_offer(st, t);
    if (st.cache->size() > st.cache_limit) {
      cache_drop(st);
      st.too_big = true;
    }
  }
  publish(st);
}

void read_from_db(self_ptr self, task_cmd cmd, promise rp);

void answer_from_cache(self_ptr self, const task_cmd& cmd, promise rp) {
  const auto& cache = *self->state.cache;
  if (cmd.kind == op::list) {
    rp.deliver(list_tasks(cache, cmd.query));
    return;
  }
  auto i = cache.find(cmd.id);
  if (i == cache.end()) {
    // Not held here: it may have been created on another instance a moment ago (its
    // notification still on the way), so the database answers, not the cache. The row is
    // not kept: only the feed and our own writes change the cache, in commit order.
    read_from_db(self, cmd, std::move(rp));
    return;
  }
  task_result r;
  r.rows.push_back(i->second.value);
  r.json = i->second.json;
  r.etag = i->second.etag;
  r.total = 1;
  rp.deliver(std::move(r));
}

// Returns whether the requester has given up on `cmd` already.
bool expired(const task_cmd& cmd) {
  if (cmd.deadline_ns == 0)
    return false;
  auto now = std::chrono::steady_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() > cmd.deadline_ns;
}

void mutate(self_ptr self, task_cmd cmd, promise rp);
void drain(self_ptr self);

// Renders an answer's JSON when the cache did not supply it: the one place a reply becomes
// JSON, so that the HTTP layer only sends bytes.
void render(op kind, task_result& r) {
  if (!r.json.empty() || kind == op::remove)
    return;
  if (kind == op::list)
    write_tasks(r.json, r.rows);
  else if (!r.rows.empty())
    write_task(r.json, r.rows.front());
}

void handle(self_ptr self, task_cmd cmd, promise rp) {
  auto& st = self->state;
  bool from_cache = st.cache && (cmd.kind == op::list || cmd.kind == op::fetch);
  if (!from_cache && expired(cmd)) {
    // It waited behind this user's earlier work past its deadline: nobody waits for the
    // answer, so do not run a statement for it.
    rp.deliver(caf::make_error(errc::db_unavailable));
    return;
  }
  if (!is_mutation(cmd.kind)) {
    if (st.cache) {
      answer_from_cache(self, cmd, std::move(rp));
      return;
    }
    read_from_db(self, std::move(cmd), std::move(rp));
    return;
  }
  // If-Match is checked by the DB worker on the locked row, inside the write's transaction:
  // never against the cache, which another instance's write may not have reached yet (a
  // stale match would be a lost update). With an Idempotency-Key it comes after the key: a
  // retry of a conditional write that succeeded gets its answer, not a 412.
  mutate(self, std::move(cmd), std::move(rp));
}

// Answers a read from the database; the user's later requests need not wait for it.
void read_from_db(self_ptr self, task_cmd cmd, promise rp) {
  auto& st = self->state;
  auto kind = cmd.kind;
  self->request(st.db, st.db_timeout, atom::exec::value, st.user_id, std::move(cmd))
    .then(
      [self, rp, kind](task_result& r) mutable {
        forget_request_timeout(self);
        render(kind, r);
        rp.deliver(std::move(r));
      },
      [self, rp](caf::error& err) mutable {
        forget_request_timeout(self);
        rp.deliver(as_service_error(std::move(err)));
      });
}

// The error handler of a call the user's later requests wait for: answers, then goes on.
auto busy_call_failed(self_ptr self, promise rp) {
  return [self, rp](caf::error& err) mutable {
    forget_request_timeout(self);
    self->state.busy = false;
    rp.deliver(as_service_error(std::move(err)));
    drain(self);
  };
}

// Applies one committed write to the cache and answers it.
void write_done(self_ptr self, const task_cmd& cmd, promise& rp, task_result r) {
  if (r.replayed) {
    // An earlier request's stored answer: nothing changed.
    rp.deliver(std::move(r));
    return;
  }
  apply_to_cache(self, cmd, r);
  if (self->state.cache && r.rows.size() == 1) {
    auto i = self->state.cache->find(r.rows.front().id);
    if (i != self->state.cache->end() && i->second.value.version == r.rows.front().version &&
        same_content(i->second.value, r.rows.front()))
      r.json = i->second.json; // rendered once, for the cache and this answer
  }
  render(cmd.kind, r);
  trace::mark(cmd.trace, trace::answered);
  rp.deliver(std::move(r));
}

// Brings the cache up to date with one committed change from the feed (any writer's, ours
// too, in commit order). Without a cache there is nothing to update, but a load in flight may
// have read the rows before this change: it will not be kept.
void apply_change(task_manager_state& st, task_change& change) {
  auto& m = metrics::actors();
  if (!st.cache) {
    ++st.invalidations;
    return;
  }
  auto id = change.row.id;
  bool changed = false;
  switch (change.what) {
    case task_change::kind::deleted: {
      changed = st.cache->count(id) > 0;
      cache_erase(st, id);
      auto i = std::find(st.deleted_here.begin(), st.deleted_here.end(), id);
      if (i != st.deleted_here.end())
        st.deleted_here.erase(i); // our own delete came back: nothing older can follow
      break;
    }
    case task_change::kind::created:
      if (std::find(st.deleted_here.begin(), st.deleted_here.end(), id) !=
          st.deleted_here.end())
        break; // we deleted it since
      changed = cache_offer(st, std::move(change.row));
      break;
    case task_change::kind::updated:
      // A row we do not hold was deleted here since (or never was this user's to us).
      if (st.cache->count(id) > 0)
        changed = cache_offer(st, std::move(change.row));
      break;
    case task_change::kind::unknown:
      // Too big for the notification: forget the user's copy; the next read reloads it.
      ++st.invalidations;
      cache_drop(st);
      st.too_big = false;
      publish(st);
      m.cache_changes_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
  }
  if (st.cache->size() > st.cache_limit) {
    cache_drop(st);
    st.too_big = true;
  }
  publish(st);
  (changed ? m.cache_changes_applied : m.cache_changes_skipped)
    .fetch_add(1, std::memory_order_relaxed);
}

// Answers one failed write and makes the cache forget what may have changed.
void write_failed(self_ptr self, const task_cmd& cmd, promise& rp, caf::error err) {
  auto& st = self->state;
  if (err == errc::task_not_found) {
    if (st.cache)
      cache_erase(st, cmd.id);
  } else if (err == errc::precondition_failed || err == errc::idempotency_mismatch) {
    // Refused before anything was written.
  } else {
    // The outcome is unknown (or odd): forget what we knew, reload on next use.
    cache_drop(st);
  }
  publish(st);
  rp.deliver(as_service_error(std::move(err)));
}

bool plain_write(const task_cmd& cmd) {
  return is_mutation(cmd.kind) && !cmd.if_match;
}

// Marks a write call as sent: a plain one counts as in flight (later plain writes need not
// wait for it), any other holds the user's later requests.
void write_sent(task_manager_state& st, bool plain) {
  if (plain)
    ++st.writes_in_flight;
  else
    st.busy = true;
}

void write_answered(task_manager_state& st, bool plain) {
  if (plain)
    --st.writes_in_flight;
  else
    st.busy = false;
}

// Sends one mutation to the database. Per-user order: a plain write is sent after every
// earlier one of its user and the DB pool commits it after them; a conditional one is sent
// only when none is in flight and holds the user's later requests until it has answered.
void mutate(self_ptr self, task_cmd cmd, promise rp) {
  auto& st = self->state;
  bool plain = plain_write(cmd);
  write_sent(st, plain);
  auto copy = cmd;
  self->request(st.db, st.db_timeout, atom::exec::value, st.user_id, std::move(cmd))
    .then(
      [self, rp, copy, plain](task_result& r) mutable {
        forget_request_timeout(self);
        write_answered(self->state, plain);
        write_done(self, copy, rp, std::move(r));
        drain(self);
      },
      [self, rp, copy, plain](caf::error& err) mutable {
        forget_request_timeout(self);
        write_answered(self->state, plain);
        write_failed(self, copy, rp, std::move(err));
        drain(self);
      });
}

using queued_write = std::pair<task_cmd, promise>;

// Sends the plain writes that queued up behind a conditional write or a cache load to the
// database together, in order, in one transaction (each with its own outcome), instead of
// one call each.
void mutate_run(self_ptr self, std::vector<queued_write> run) {
  auto& st = self->state;
  write_sent(st, true);
  std::vector<db_job> jobs;
  jobs.reserve(run.size());
  for (const auto& w : run)
    jobs.push_back(db_job{st.user_id, w.first});
  self->request(st.db, st.db_timeout, atom::batch::value, std::move(jobs))
    .then(
      [self, run](std::vector<db_outcome>& outs) mutable {
        forget_request_timeout(self);
        write_answered(self->state, true);
        for (size_t i = 0; i < run.size(); ++i) {
          if (i >= outs.size())
            write_failed(self, run[i].first, run[i].second, caf::make_error(errc::internal));
          else if (outs[i].code == errc::none)
            write_done(self, run[i].first, run[i].second, std::move(outs[i].result));
          else
            write_failed(self, run[i].first, run[i].second, caf::make_error(outs[i].code));
        }
        drain(self);
      },
      [self, run](caf::error& err) mutable {
        forget_request_timeout(self);
        write_answered(self->state, true);
        for (auto& w : run)
          write_failed(self, w.first, w.second, err);
        drain(self);
      });
}

void start(self_ptr self, task_cmd cmd, promise rp);

// Runs what waited while the user was busy, in order, until it is busy again.
void drain(self_ptr self) {
  auto& st = self->state;
  constexpr size_t max_run = 32;
  while (!st.busy && !st.queue.empty()) {
    auto wrap = [self](caf::typed_response_promise<task_result> rp, const task_cmd& cmd) {
      return promise_for(self, std::move(rp), cmd);
    };
    if (plain_write(st.queue.front().first)) {
      std::vector<queued_write> run;
      while (!st.queue.empty() && run.size() < max_run && plain_write(st.queue.front().first)) {
        auto [cmd, rp] = std::move(st.queue.front());
        st.queue.pop_front();
        auto p = wrap(std::move(rp), cmd);
        trace::mark(cmd.trace, trace::managed);
        if (expired(cmd))
          p.deliver(caf::make_error(errc::db_unavailable));
        else
          run.emplace_back(std::move(cmd), std::move(p));
      }
      if (run.size() == 1)
        mutate(self, std::move(run.front().first), run.front().second);
      else if (!run.empty())
        mutate_run(self, std::move(run));
      continue;
    }
    if (st.writes_in_flight > 0)
      break; // a read or conditional write sees every earlier write: it waits for them
    auto [cmd, rp] = std::move(st.queue.front());
    st.queue.pop_front();
    auto p = wrap(std::move(rp), cmd);
    start(self, std::move(cmd), std::move(p));
  }
}

task_cmd load_command(size_t limit) {
  task_cmd c;
  c.kind = op::list;
  c.query.sort = task_sort::created;
  c.query.descending = false;
  c.query.limit = static_cast<int64_t>(limit) + 1; // one more tells us it is too big
  return c;
}

// Runs one command of the user whose earlier work is done.
void start(self_ptr self, task_cmd cmd, promise rp) {
  trace::mark(cmd.trace, trace::managed);
  auto& st = self->state;
  // A plain write does not need the cache: it goes to the database without loading it
  // (creates by users whose cache was evicted for the budget do not reload it).
  if (st.cache || st.too_big || st.cache_limit == 0 || expired(cmd) || plain_write(cmd)) {
    handle(self, std::move(cmd), rp);
    return;
  }
  // First read: load the user's tasks; later requests wait meanwhile.
  st.busy = true;
  metrics::actors().cache_loads.fetch_add(1, std::memory_order_relaxed);
  auto seen = st.invalidations;
  self->request(st.db, st.db_timeout, atom::exec::value, st.user_id,
                load_command(st.cache_limit))
    .then(
      [self, rp, cmd, seen](task_result& r) mutable {
        forget_request_timeout(self);
        auto& st = self->state;
        st.busy = false;
        if (r.rows.size() > st.cache_limit) {
          st.too_big = true;
        } else {
          st.cache.emplace();
          st.cache->reserve(r.rows.size());
          for (auto& t : r.rows)
            cache_put(st, std::move(t));
          publish(st);
        }
        handle(self, std::move(cmd), rp);
        if (st.invalidations != seen) {
          // Another writer changed the user's tasks while the load ran: the rows may predate
          // that change. They answered this request (a read concurrent with the change); they
          // are not kept.
          cache_drop(st);
          publish(st);
        }
        drain(self);
      },
      busy_call_failed(self, rp));
}

} // namespace

namespace {

// glibc's chunk for a request of `n` bytes: its size word, rounded up to 16, at least 32.
size_t chunk(size_t n) {
  return std::max<size_t>(32, (n + sizeof(size_t) + 15) & ~size_t{15});
}

size_t string_heap(const std::string& s) {
  return s.capacity() > 15 ? chunk(s.capacity() + 1) : 0; // short strings live inline
}

} // namespace

size_t heap_bytes(const cached_task& c) {
  // One hash node (next pointer, key, value) and its bucket pointer, plus the strings.
  constexpr size_t node = sizeof(void*) + sizeof(std::pair<const int64_t, cached_task>);
  return chunk(node) + sizeof(void*) + string_heap(c.value.title) +
         (c.value.description ? string_heap(*c.value.description) : 0) + string_heap(c.json) +
         string_heap(c.etag);
}

task_manager_state::~task_manager_state() {
  cache_bytes = 0;
  cache.reset();
  publish(*this);
  metrics::actors().managers.fetch_sub(1, std::memory_order_relaxed);
}

cached_task make_cached(task t) {
  cached_task c;
  c.json.reserve(160 + t.title.size() + (t.description ? t.description->size() : 0));
  write_task(c.json, t);
  c.etag = etag_of(c.json);
  c.value = std::move(t);
  return c;
}

task_result list_tasks(const task_cache& tasks, const task_query& q) {
  std::vector<const cached_task*> picked;
  picked.reserve(tasks.size());
  for (const auto& [id, c] : tasks)
    if (q.status == task_status::all ||
        c.value.completed == (q.status == task_status::completed))
      picked.push_back(&c);
  auto key_less = [&q](const cached_task* x, const cached_task* y) {
    const auto& a = x->value;
    const auto& b = y->value;
    switch (q.sort) {
      case task_sort::created:
        if (a.created_us != b.created_us)
          return a.created_us < b.created_us;
        break;
      case task_sort::updated:
        if (a.updated_us != b.updated_us)
          return a.updated_us < b.updated_us;
        break;
      case task_sort::title:
        // Byte order of UTF-8 is code point order; the SQL uses COLLATE "C" to match.
        if (a.title != b.title)
          return a.title < b.title;
        break;
    }
    return a.id < b.id;
  };
  task_result r;
  r.total = static_cast<int64_t>(picked.size());
  r.json = "[";
  if (q.offset < r.total) {
    auto first = picked.begin() + q.offset;
    auto last = picked.begin() + std::min<int64_t>(r.total, q.offset + q.limit);
    std::partial_sort(picked.begin(), last, picked.end(),
                      [&](const cached_task* a, const cached_task* b) {
                        return q.descending ? key_less(b, a) : key_less(a, b);
                      });
    size_t size = 2;
    for (auto i = first; i != last; ++i)
      size += (*i)->json.size() + 1;
    r.json.reserve(size);
    for (auto i = first; i != last; ++i) {
      if (i != first)
        r.json += ',';
      r.json += (*i)->json;
    }
  }
  r.json += ']';
  return r;
}

task_manager_actor::behavior_type
task_manager(task_manager_actor::stateful_pointer<task_manager_state> self, std::string user_id,
             db_actor db, caf::timespan db_timeout, size_t cache_limit,
             pending_counter pending, cache_budget_ptr budget) {
  metrics::actors().managers.fetch_add(1, std::memory_order_relaxed);
  self->state.user_id = std::move(user_id);
  self->state.pending = std::move(pending);
  self->state.budget = std::move(budget);
  self->state.db = std::move(db);
  self->state.db_timeout = db_timeout;
  self->state.cache_limit = cache_limit;
  return {
    [self](atom::exec, task_cmd& cmd) -> caf::result<task_result> {
      auto& st = self->state;
      auto rp = self->make_response_promise<task_result>();
      if (!cmd.idem_key.empty()) {
        auto [i, fresh] = st.keys_in_flight.try_emplace(cmd.idem_key, cmd.idem_fingerprint);
        if (!fresh) {
          // The first request with this key has not been answered yet.
          promise{rp, st.pending, &self->clock(), nullptr, {}}.deliver(caf::make_error(
            i->second == cmd.idem_fingerprint ? errc::idempotency_in_flight
                                              : errc::idempotency_mismatch));
          return rp;
        }
      }
      // A plain write need not wait for earlier writes in flight; anything else waits for
      // them; and everything waits behind what already waits (arrival order).
      if (st.busy || !st.queue.empty() || (st.writes_in_flight > 0 && !plain_write(cmd))) {
        st.queue.emplace_back(std::move(cmd), rp); // in order, behind the user's earlier work
        return rp;
      }
      auto p = promise_for(self, rp, cmd);
      start(self, std::move(cmd), std::move(p));
      return rp;
    },
    [self](atom::invalidate) {
      ++self->state.invalidations;
      cache_drop(self->state);
      self->state.too_big = false;
      publish(self->state);
      metrics::actors().cache_changes_dropped.fetch_add(1, std::memory_order_relaxed);
    },
    [self](atom::apply, task_change& change) { apply_change(self->state, change); },
  };
}

} // namespace todo
