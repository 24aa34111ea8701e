#include "tests/support/fake_db.hpp"

#include <algorithm>

#include "actors/model/task_json.hpp"

namespace todo::test {

namespace {
caf::expected<task_result> apply_unkeyed(fake_db_data& d, const std::string& user,
                                         const task_cmd& cmd);

// If-Match against the stored row, as the real worker checks it (after the key).
caf::expected<task_result> apply_checked(fake_db_data& d, const std::string& user,
                                         const task_cmd& cmd) {
  if (cmd.if_match) {
    auto& mine = d.rows[user];
    auto found = mine.find(cmd.id);
    if (found == mine.end())
      return caf::make_error(errc::task_not_found);
    std::string json;
    write_task(json, found->second);
    if (!etag_listed(*cmd.if_match, etag_of(json), true))
      return caf::make_error(errc::precondition_failed);
  }
  return apply_unkeyed(d, user, cmd);
}
} // namespace

caf::expected<task_result> apply(fake_db_data& d, const std::string& user, const task_cmd& cmd) {
  if (cmd.idem_key.empty())
    return apply_checked(d, user, cmd);
  auto k = std::make_pair(user, cmd.idem_key);
  if (auto i = d.keys.find(k); i != d.keys.end()) {
    if (i->second.first != cmd.idem_fingerprint)
      return caf::make_error(errc::idempotency_mismatch);
    auto r = i->second.second;
    r.replayed = true;
    return r;
  }
  auto r = apply_checked(d, user, cmd);
  if (r) {
    task_result stored;
    stored.replayed_status = cmd.kind == op::create ? 201 : cmd.kind == op::remove ? 204 : 200;
    stored.rows = r->rows;
    d.keys[k] = {cmd.idem_fingerprint, stored};
  }
  return r;
}

namespace {

caf::expected<task_result> apply_unkeyed(fake_db_data& d, const std::string& user,
                                         const task_cmd& cmd) {
  auto& mine = d.rows[user];
  task_result out;
  auto now = ++d.clock_us;
  auto found = mine.find(cmd.id);
  switch (cmd.kind) {
    case op::create: {
      task t;
      t.id = d.next_id++;
      t.title = cmd.patch.title.value_or("");
      t.description = cmd.patch.description;
      t.created_us = t.updated_us = now;
      t.version = 1;
      mine[t.id] = t;
      out.rows.push_back(t);
      return out;
    }
    case op::list: {
      std::vector<task> all;
      for (auto& [id, t] : mine)
        if (cmd.query.status == task_status::all ||
            t.completed == (cmd.query.status == task_status::completed))
          all.push_back(t);
      std::sort(all.begin(), all.end(), [&](const task& a, const task& b) {
        return cmd.query.descending ? a.id > b.id : a.id < b.id;
      });
      out.total = static_cast<int64_t>(all.size());
      for (auto i = cmd.query.offset; i < out.total && i < cmd.query.offset + cmd.query.limit; ++i)
        out.rows.push_back(all[static_cast<size_t>(i)]);
      return out;
    }
    default:
      break;
  }
  if (found == mine.end())
    return caf::make_error(errc::task_not_found);
  auto& t = found->second;
  switch (cmd.kind) {
    case op::update:
      if (cmd.patch.title)
        t.title = *cmd.patch.title;
      if (cmd.patch.set_description)
        t.description = cmd.patch.description;
      if (cmd.patch.completed)
        t.completed = *cmd.patch.completed;
      t.updated_us = now;
      ++t.version;
      break;
    case op::complete:
      t.completed = cmd.patch.completed.value_or(!t.completed);
      t.updated_us = now;
      ++t.version;
      break;
    case op::remove:
      mine.erase(found);
      return out;
    default:
      break;
  }
  out.rows.push_back(t);
  return out;
}

} // namespace

std::vector<db_outcome> apply_all(fake_db_data& d, const std::vector<db_job>& jobs) {
  std::vector<db_outcome> out;
  for (const auto& j : jobs) {
    auto r = apply(d, j.user, j.cmd);
    if (r)
      out.push_back(db_outcome{errc::none, std::move(*r)});
    else
      out.push_back(db_outcome{static_cast<errc>(r.error().code()), {}});
  }
  return out;
}

fake_db_actor::behavior_type fake_db(fake_db_actor::stateful_pointer<fake_db_state> self,
                                     std::shared_ptr<fake_db_data> data) {
  self->state.data = std::move(data);
  return {
    [self](atom::exec, std::string& user, task_cmd& cmd) -> caf::result<task_result> {
      auto& d = *self->state.data;
      d.log.emplace_back(user, cmd);
      if (d.hold) {
        auto rp = self->make_response_promise<task_result>();
        d.held.push_back({std::move(user), std::move(cmd), rp, {}, {}});
        return rp;
      }
      auto r = apply(d, user, cmd);
      if (!r)
        return r.error();
      return std::move(*r);
    },
    [self](atom::batch, std::vector<db_job>& jobs) -> caf::result<std::vector<db_outcome>> {
      auto& d = *self->state.data;
      d.batches.push_back(jobs.size());
      for (const auto& j : jobs)
        d.log.emplace_back(j.user, j.cmd);
      if (d.hold) {
        auto rp = self->make_response_promise<std::vector<db_outcome>>();
        fake_db_data::held_job h;
        h.batch = std::move(jobs);
        h.batch_rp = rp;
        d.held.push_back(std::move(h));
        return rp;
      }
      return apply_all(d, jobs);
    },
    [](atom::ping) { return true; },
    [self](atom::tick) {
      auto& d = *self->state.data;
      if (d.held.empty())
        return;
      auto job = std::move(d.held.front());
      d.held.pop_front();
      if (!job.batch.empty()) {
        job.batch_rp.deliver(apply_all(d, job.batch));
        return;
      }
      auto r = apply(d, job.user, job.cmd);
      if (r)
        job.rp.deliver(std::move(*r));
      else
        job.rp.deliver(r.error());
    },
  };
}

} // namespace todo::test
