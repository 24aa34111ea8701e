#include "persistence/db_worker.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "actors/model/task_json.hpp"
#include "config/log.hpp"
#include "persistence/conninfo.hpp"
#include "persistence/sql.hpp"

namespace todo::db {

struct connection_holder {
  pqxx::connection conn;
  explicit connection_holder(const std::string& conninfo) : conn(conninfo) {
  }
};

db_worker_state::db_worker_state() = default;
db_worker_state::~db_worker_state() = default;

namespace {

// Stamps traced jobs when a worker starts them and when it has their results (TRACE_STAGES).
struct worker_stamps {
  explicit worker_stamps(const task_cmd& c) : one(&c) { each(trace::started); }
  explicit worker_stamps(const std::vector<db_job>& j) : jobs(&j) { each(trace::started); }
  worker_stamps(const worker_stamps&) = delete;
  worker_stamps& operator=(const worker_stamps&) = delete;
  ~worker_stamps() { each(trace::committed); }
  void each(trace::stage st) const {
    if (one)
      trace::mark(one->trace, st);
    if (jobs)
      for (const auto& j : *jobs)
        trace::mark(j.cmd.trace, st);
  }
  const task_cmd* one = nullptr;
  const std::vector<db_job>* jobs = nullptr;
};


constexpr auto max_backoff = std::chrono::seconds(2);

// Runs the statements of sql::all_statements() by name inside one transaction: as the named
// statements prepared on the connection (DB_PREPARED=true), or unnamed with their text and
// parameters each time (false), so that nothing outlives the transaction, as a pooler in
// transaction mode (PgBouncer, Neon's pooled endpoint) requires. Every call site goes
// through here, so both modes run the same statements.
struct statements {
  pqxx::transaction_base& tx;
  bool prepared;
  template <class... Args>
  pqxx::result operator()(const std::string& name, Args&&... args) const {
    if (prepared)
      return tx.exec_prepared(name, std::forward<Args>(args)...);
    return tx.exec_params(sql::statement_text(name), std::forward<Args>(args)...);
  }
};

// Reads sql::task_columns starting at column `first`.
task read_task(const pqxx::row& r, pqxx::row::size_type first = 0) {
  task t;
  t.id = r[first].as<int64_t>();
  t.title = r[first + 1].as<std::string>();
  if (!r[first + 2].is_null())
    t.description = r[first + 2].as<std::string>();
  t.completed = r[first + 3].as<bool>();
  t.created_us = r[first + 4].as<int64_t>();
  t.updated_us = r[first + 5].as<int64_t>();
  t.version = r[first + 6].as<int64_t>();
  return t;
}

const char* opt_cstr(const std::optional<std::string>& s) {
  return s ? s->c_str() : nullptr;
}

const char* opt_bool(const std::optional<bool>& b) {
  if (!b)
    return nullptr;
  return *b ? "true" : "false";
}

// Runs one command inside `tx`. Throws what libpqxx throws.
caf::expected<task_result> run(const statements& st, const std::string& user,
                               const task_cmd& cmd) {
  task_result out;
  auto one = [&](const pqxx::result& r) -> caf::expected<task_result> {
    if (r.empty())
      return caf::make_error(errc::task_not_found);
    out.rows.push_back(read_task(r[0]));
    out.total = 1;
    return std::move(out);
  };
  const auto& p = cmd.patch;
  switch (cmd.kind) {
    case op::create:
      return one(st("create", user, opt_cstr(p.title), opt_cstr(p.description)));
    case op::fetch:
      return one(st("fetch", cmd.id, user));
    case op::update:
      return one(st("update", cmd.id, user, opt_cstr(p.title),
                                  p.set_description ? "true" : "false",
                                  opt_cstr(p.description), opt_bool(p.completed)));
    case op::complete:
      return one(st("complete", cmd.id, user, opt_bool(p.completed)));
    case op::remove: {
      auto r = st("remove", cmd.id, user);
      if (r.affected_rows() == 0)
        return caf::make_error(errc::task_not_found);
      return std::move(out);
    }
    case op::list: {
      const auto& q = cmd.query;
      auto r = st(sql::list_name(q), user, q.limit, q.offset);
      out.rows.reserve(r.size());
      for (const auto& row : r)
        out.rows.push_back(read_task(row));
      if (!r.empty()) {
        out.total = r[0][7].as<int64_t>();
      } else if (q.offset > 0) {
        // Past the last page the window count is gone: ask for it.
        static const char* counts[] = {"count_all", "count_pending", "count_completed"};
        out.total = st(counts[static_cast<int>(q.status)], user)[0][0]
                      .as<int64_t>();
      }
      return std::move(out);
    }
  }
  return caf::make_error(errc::internal);
}

// The status a committed mutation answers with.
int success_status(op kind) {
  return kind == op::create ? 201 : kind == op::remove ? 204 : 200;
}

// The stored answer of an Idempotency-Key, as a replayed result.
task_result replay_of(const pqxx::row& row) {
  task_result out;
  out.replayed = true;
  out.replayed_status = row[1].is_null() ? 500 : row[1].as<int>();
  if (!row[2].is_null())
    out.json = row[2].as<std::string>();
  if (!row[3].is_null()) {
    task t;
    t.id = row[3].as<int64_t>();
    out.rows.push_back(std::move(t));
    out.total = 1;
  }
  return out;
}

// Runs a mutation that carries an Idempotency-Key or an If-Match inside a real transaction:
// claims the key, checks If-Match on the locked row (here, not against a cache that another
// instance's write may not have reached yet), runs the mutation and stores its answer beside
// the key; or, when the key already has a live answer, answers that one and changes nothing.
// A mutation that fails (404, 412, ...) keeps no key: a retry runs again. Throws what libpqxx
// throws.
caf::expected<task_result> run_checked(const statements& st, const std::string& user,
                                       const task_cmd& cmd, int64_t ttl_s) {
  const auto& key = cmd.idem_key;
  const bool keyed = !key.empty();
  for (int attempt = 0; keyed; ++attempt) {
    if (!st("idem_claim", user, key, cmd.idem_fingerprint, ttl_s).empty())
      break; // ours
    auto prev = st("idem_get", user, key);
    if (!prev.empty()) {
      if (prev[0][0].as<std::string>() != cmd.idem_fingerprint)
        return caf::make_error(errc::idempotency_mismatch);
      return replay_of(prev[0]);
    }
    // It expired and the purge took it between the two statements: claim again.
    if (attempt == 2)
      return caf::make_error(errc::db_unavailable);
  }
  auto failed = [&](errc code) -> caf::expected<task_result> {
    if (keyed)
      st("idem_forget", user, key);
    return caf::make_error(code);
  };
  if (cmd.if_match) {
    auto cur = st("fetch_locked", cmd.id, user);
    if (cur.empty())
      return failed(errc::task_not_found);
    std::string json;
    write_task(json, read_task(cur[0]));
    if (!etag_listed(*cmd.if_match, etag_of(json), true))
      return failed(errc::precondition_failed);
  }
  auto r = run(st, user, cmd);
  if (!r)
    return failed(static_cast<errc>(r.error().code()));
  if (!keyed)
    return r;
  int64_t task_id = cmd.id;
  if (cmd.kind != op::remove && !r->rows.empty()) {
    write_task(r->json, r->rows.front());
    task_id = r->rows.front().id;
  }
  st("idem_store", user, key, success_status(cmd.kind),
                   cmd.kind == op::remove ? nullptr : r->json.c_str(), task_id);
  return r;
}

// A job that needs statements of its own (run_checked), not the set statements.
bool checked(const db_job& j) {
  return !j.cmd.idem_key.empty() || j.cmd.if_match;
}

// Builds a PostgreSQL array literal; nullopt elements are NULL.
class array_literal {
public:
  void add(const std::optional<std::string>& v) {
    sep();
    if (!v) {
      text_ += "NULL";
      return;
    }
    text_ += '"';
    for (char c : *v) {
      if (c == '"' || c == '\\')
        text_ += '\\';
      text_ += c;
    }
    text_ += '"';
  }
  void add(int64_t v) {
    sep();
    text_ += std::to_string(v);
  }
  void add(std::optional<bool> v) {
    sep();
    text_ += !v ? "NULL" : (*v ? "t" : "f");
  }
  std::string done() {
    return text_ + "}";
  }

private:
  void sep() {
    if (text_.size() > 1)
      text_ += ',';
  }
  std::string text_ = "{";
};

// Runs a batch of mutations of different users inside `tx`: one set statement for a batch
// of one kind, write_many (all kinds in one statement) for a mix. Returns false (and runs
// nothing) when the batch does not fit that shape.
bool run_set(const statements& st, const std::vector<db_job>& jobs,
             std::vector<db_outcome>& out) {
  std::unordered_map<std::string_view, size_t> by_user;
  for (size_t i = 0; i < jobs.size(); ++i)
    if (!by_user.emplace(jobs[i].user, i).second)
      return false; // one user twice: cannot key the answers by user
  std::vector<bool> seen(jobs.size());
  // A row names its user (column `first` - 1) and, unless a remove, the task from `first`.
  auto take = [&](const pqxx::row& row, pqxx::row::size_type first) {
    const auto& who = row[first - 1];
    auto i = by_user.at(std::string_view{who.c_str(), who.size()});
    seen[i] = true;
    if (jobs[i].cmd.kind != op::remove) {
      out[i].result.rows.push_back(read_task(row, first));
      out[i].result.total = 1;
    }
  };
  array_literal cu, ct, cd;                 // create
  array_literal ui, uu, ut, usd, ud, uc;    // update
  array_literal ti, tu, tv;                 // complete
  array_literal ri, ru;                     // remove
  size_t creates = 0, updates = 0, completes = 0, removes = 0;
  // Rows in ascending id order, so that two group commits (of two instances) that share rows
  // mostly lock them in the same order and wait instead of deadlocking; a deadlock that still
  // happens (another writer, another plan) is retried by the caller, row by row.
  std::vector<size_t> order(jobs.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return jobs[x].cmd.id < jobs[y].cmd.id; });
  for (auto i : order) {
    const auto& j = jobs[i];
    const auto& p = j.cmd.patch;
    switch (j.cmd.kind) {
      case op::create:
        cu.add(std::optional<std::string>{j.user});
        ct.add(p.title);
        cd.add(p.description);
        ++creates;
        break;
      case op::update:
        ui.add(j.cmd.id);
        uu.add(std::optional<std::string>{j.user});
        ut.add(p.title);
        usd.add(std::optional<bool>{p.set_description});
        ud.add(p.description);
        uc.add(p.completed);
        ++updates;
        break;
      case op::complete:
        ti.add(j.cmd.id);
        tu.add(std::optional<std::string>{j.user});
        tv.add(p.completed);
        ++completes;
        break;
      case op::remove:
        ri.add(j.cmd.id);
        ru.add(std::optional<std::string>{j.user});
        ++removes;
        break;
      default:
        return false;
    }
  }
  auto each_row = [&](const pqxx::result& r, pqxx::row::size_type first) {
    for (const auto& row : r)
      take(row, first);
  };
  int kinds = (creates > 0) + (updates > 0) + (completes > 0) + (removes > 0);
  if (kinds > 1)
    each_row(st("write_many", cu.done(), ct.done(), cd.done(), ui.done(), uu.done(), ut.done(),
                usd.done(), ud.done(), uc.done(), ti.done(), tu.done(), tv.done(), ri.done(),
                ru.done()),
             2);
  else if (creates > 0)
    each_row(st("create_many", cu.done(), ct.done(), cd.done()), 1);
  else if (updates > 0)
    each_row(st("update_many", ui.done(), uu.done(), ut.done(), usd.done(), ud.done(),
                uc.done()),
             1);
  else if (completes > 0)
    each_row(st("complete_many", ti.done(), tu.done(), tv.done()), 1);
  else if (removes > 0)
    each_row(st("remove_many", ri.done(), ru.done()), 1);
  for (size_t i = 0; i < jobs.size(); ++i)
    if (!seen[i])
      out[i].code = errc::task_not_found;
  return true;
}

// Splits a batch into rounds in which each user appears at most once: a user's n-th job goes
// to round n, so running the rounds in order keeps each user's jobs in order.
std::vector<std::vector<size_t>> rounds_of(const std::vector<db_job>& jobs) {
  std::vector<std::vector<size_t>> rounds(1);
  std::unordered_map<std::string_view, size_t> seen;
  for (size_t i = 0; i < jobs.size(); ++i) {
    auto n = seen[jobs[i].user]++;
    if (n >= rounds.size())
      rounds.resize(n + 1);
    rounds[n].push_back(i);
  }
  return rounds;
}

bool is_unavailable(const pqxx::sql_error& e) {
  // Class 57 (statement_timeout, admin shutdown), 08 (connection), 53 (resources):
  // the database is not serving us right now.
  auto state = e.sqlstate();
  return state.rfind("57", 0) == 0 || state.rfind("08", 0) == 0 || state.rfind("53", 0) == 0;
}

// A deadlock or serialization failure: PostgreSQL rolled the transaction back, so nothing of
// it committed and it can run again. (libpqxx 6 derives these from pqxx::failure, not
// sql_error; statement_completion_unknown shares their base but means "maybe committed".)
bool rolled_back(const std::exception& ex) {
  return (dynamic_cast<const pqxx::deadlock_detected*>(&ex) ||
          dynamic_cast<const pqxx::serialization_failure*>(&ex));
}

// Maps an exception from a statement to an error code; drops a connection it broke.
template <class Drop>
errc classify(const std::exception& ex, pqxx::connection& conn, Drop drop) {
  if (dynamic_cast<const pqxx::broken_connection*>(&ex) ||
      dynamic_cast<const pqxx::in_doubt_error*>(&ex) ||
      dynamic_cast<const pqxx::statement_completion_unknown*>(&ex)) {
    // Includes "the commit may or may not have happened": never answer 2xx.
    drop();
    return errc::db_unavailable;
  }
  if (rolled_back(ex)) {
    // PostgreSQL rolled the transaction back (deadlock, serialization failure): nothing
    // committed and the connection is fine; the client may retry.
    log::warn("db transaction rolled back by PostgreSQL (deadlock or serialization failure)");
    return errc::db_unavailable;
  }
  if (auto e = dynamic_cast<const pqxx::sql_error*>(&ex)) {
    if (!conn.is_open())
      drop();
    if (is_unavailable(*e))
      return errc::db_unavailable;
    if (e->sqlstate().rfind("23", 0) == 0)
      return errc::invalid_input; // a constraint of the database refused the row
    // The libpq message may quote data: log only the SQLSTATE.
    log::error("db statement failed, sqlstate " + e->sqlstate());
    return errc::internal;
  }
  drop();
  return errc::db_unavailable;
}

} // namespace

db_worker_actor::behavior_type db_worker(db_worker_actor::stateful_pointer<db_worker_state> self,
                                         db_config cfg) {
  self->state.cfg = std::move(cfg);
  self->state.cfg.conninfo = with_timeouts(self->state.cfg.conninfo,
                                                  self->state.cfg.timeout);
  // Returns the live connection, (re)connecting unless a recent attempt failed.
  auto connection = [self]() -> pqxx::connection* {
    auto& st = self->state;
    if (st.conn)
      return &st.conn->conn;
    auto now = caf::make_timestamp();
    if (now < st.retry_at)
      return nullptr;
    try {
      auto h = std::make_unique<connection_holder>(st.cfg.conninfo);
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg.timeout).count();
      // Session state (SET, named statements) only when the connection is ours alone: behind
      // a pooler in transaction mode it would stay on whichever server connection ran it.
      if (st.cfg.prepared) {
        {
          pqxx::nontransaction tx{h->conn};
          tx.exec("SET statement_timeout = " + std::to_string(ms));
        }
        for (const auto& s : sql::all_statements())
          h->conn.prepare(s.name, s.text);
      }
      st.conn = std::move(h);
      if (st.backoff.count() > 0)
        log::info("db worker reconnected");
      st.backoff = std::chrono::milliseconds(0);
      return &st.conn->conn;
    } catch (const std::exception&) {
      // libpq's message may quote the connection string: never log it.
      st.backoff = std::min<caf::timespan>(
        max_backoff, std::max<caf::timespan>(std::chrono::milliseconds(100), st.backoff * 2));
      st.retry_at = now + st.backoff;
      log::warn("db worker cannot connect; retrying in " +
                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 st.backoff).count()) + " ms");
      return nullptr;
    }
  };
  // Drops the connection after an error that may have broken it.
  auto drop = [self] {
    self->state.conn.reset();
    self->state.retry_at = caf::make_timestamp();
  };
  connection(); // connect eagerly so that the first request does not pay for it
  // Runs one command in autocommit mode (one round trip, committed when the answer arrives)
  // and maps every failure to an error code.
  auto run_one = [self, connection, drop](const std::string& user,
                                          const task_cmd& cmd) -> db_outcome {
    db_outcome out;
    auto* conn = connection();
    if (!conn) {
      out.code = errc::db_unavailable;
      return out;
    }
    // A deadlock or serialization failure rolled everything back: run it again (twice at most).
    for (int attempt = 0;; ++attempt) try {
      caf::expected<task_result> r{caf::error{}};
      if (cmd.idem_key.empty() && !cmd.if_match) {
        pqxx::nontransaction tx{*conn};
        r = run(statements{tx, self->state.cfg.prepared}, user, cmd);
      } else {
        // The key and the write commit together, or neither does; If-Match holds the row.
        pqxx::work tx{*conn};
        r = run_checked(statements{tx, self->state.cfg.prepared}, user, cmd,
                        self->state.cfg.idempotency_ttl_s);
        tx.commit();
      }
      if (r)
        out.result = std::move(*r);
      else
        out.code = static_cast<errc>(r.error().code());
      return out;
    } catch (const std::exception& e) {
      if (rolled_back(e) && attempt < 2)
        continue;
      out.code = classify(e, *conn, drop);
      return out;
    }
  };
  return {
    [run_one](atom::exec, const std::string& user,
              const task_cmd& cmd) -> caf::result<task_result> {
      worker_stamps stamps{cmd};
      auto o = run_one(user, cmd);
      if (o.code != errc::none)
        return caf::make_error(o.code);
      return std::move(o.result);
    },
    [self, connection, drop, run_one](atom::batch,
                                const std::vector<db_job>& jobs) -> std::vector<db_outcome> {
      worker_stamps stamps{jobs};
      std::vector<db_outcome> out(jobs.size());
      if (jobs.empty())
        return out;
      auto* conn = connection();
      if (!conn) {
        for (auto& o : out)
          o.code = errc::db_unavailable;
        return out;
      }
      // Group commit: one statement for all of them (set statements), one WAL flush.
      // A single statement needs no explicit transaction (autocommit is atomic).
      try {
        auto rounds = rounds_of(jobs);
        if (rounds.size() == 1 && std::none_of(jobs.begin(), jobs.end(), checked)) {
          pqxx::nontransaction tx{*conn};
          if (run_set(statements{tx, self->state.cfg.prepared}, jobs, out))
            return out;
        }
        out.assign(jobs.size(), db_outcome{});
        pqxx::work tx{*conn};
        const statements st{tx, self->state.cfg.prepared};
        // A user with several writes (its queued ones, in order) has one in each round; the
        // rounds run one after the other, each as set statements.
        if (rounds.size() > 1) {
          std::vector<std::pair<int64_t, const std::string*>> rows;
          for (const auto& j : jobs)
            if (j.cmd.kind != op::create && j.cmd.id > 0)
              rows.emplace_back(j.cmd.id, &j.user);
          if (!rows.empty()) {
            array_literal ids, users;
            for (const auto& [id, user] : rows) {
              ids.add(id);
              users.add(std::optional<std::string>{*user});
            }
            st("lock_rows", ids.done(), users.done());
          }
        }
        auto ttl_s = self->state.cfg.idempotency_ttl_s;
        for (const auto& round : rounds) {
          // Writes with an Idempotency-Key run one by one (claim, write, answer stored);
          // the others of the round together.
          std::vector<db_job> part;
          std::vector<size_t> plain;
          part.reserve(round.size());
          for (auto i : round) {
            if (checked(jobs[i])) {
              auto r = run_checked(st, jobs[i].user, jobs[i].cmd, ttl_s);
              if (r)
                out[i].result = std::move(*r);
              else
                out[i].code = static_cast<errc>(r.error().code());
              continue;
            }
            part.push_back(jobs[i]);
            plain.push_back(i);
          }
          std::vector<db_outcome> part_out(part.size());
          if (!run_set(st, part, part_out)) {
            part_out.assign(part.size(), db_outcome{});
            for (size_t k = 0; k < part.size(); ++k) {
              auto r = run(st, part[k].user, part[k].cmd);
              if (r)
                part_out[k].result = std::move(*r);
              else
                part_out[k].code = static_cast<errc>(r.error().code());
            }
          }
          for (size_t k = 0; k < plain.size(); ++k)
            out[plain[k]] = std::move(part_out[k]);
        }
        tx.commit();
        return out;
      } catch (const pqxx::sql_error& e) {
        if (is_unavailable(e) || !conn->is_open()) {
          if (!conn->is_open())
            drop();
          for (auto& o : out)
            o = db_outcome{errc::db_unavailable, {}};
          return out;
        }
        // One statement failed and took the transaction with it: nothing committed. Run
        // each on its own so that only the failing one answers an error.
        for (size_t i = 0; i < jobs.size(); ++i)
          out[i] = run_one(jobs[i].user, jobs[i].cmd);
        return out;
      } catch (const std::exception& e) {
        if (rolled_back(e)) {
          // Another transaction (another instance's group commit, or any other writer) took
          // the same rows in another order and PostgreSQL chose this one to roll back:
          // nothing committed; run each on its own (one row each: no lock cycle).
          for (size_t i = 0; i < jobs.size(); ++i)
            out[i] = run_one(jobs[i].user, jobs[i].cmd);
          return out;
        }
        auto code = classify(e, *conn, drop);
        for (auto& o : out)
          o = db_outcome{code, {}};
        return out;
      }
    },
    [self, connection, drop](atom::ping) -> bool {
      auto* conn = connection();
      if (!conn)
        return false;
      try {
        pqxx::nontransaction tx{*conn};
        statements{tx, self->state.cfg.prepared}("ping");
        return true;
      } catch (const std::exception&) {
        drop();
        return false;
      }
    },
  };
}

} // namespace todo::db
