#include "actors/actor_gateway.hpp"

#include <atomic>
#include <chrono>

#include "actors/courier.hpp"

namespace todo {

namespace {

class actor_gateway final : public gateway {
public:
  actor_gateway(caf::actor_system& sys, auth_actor auth, registry_shards registries,
                db_actor db, caf::timespan timeout, size_t couriers, courier_tokens tokens)
    : sys_(sys), db_(std::move(db)), timeout_(timeout) {
    auto shared = std::make_shared<const registry_shards>(std::move(registries));
    for (size_t i = 0; i < couriers; ++i)
      couriers_.push_back(sys_.spawn(courier, auth, shared, tokens));
  }

  ~actor_gateway() override {
    for (auto& c : couriers_)
      caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
  }

  void submit(std::string token, std::string scoped_user, task_cmd cmd,
              std::function<void(reply)> done) override {
    auto job = std::make_shared<courier_job>();
    job->token = std::move(token);
    job->scoped_user = std::move(scoped_user);
    job->cmd = std::move(cmd);
    job->cmd.deadline_ns = deadline();
    if (job->cmd.kind == op::create || job->cmd.kind == op::update ||
        job->cmd.kind == op::complete || job->cmd.kind == op::remove)
      job->cmd.trace = trace::start(); // null unless TRACE_STAGES is on
    job->done = std::move(done);
    caf::anon_send(next_courier(), std::move(job));
  }

  void authorize(std::string token, std::string scoped_user,
                 std::function<void(reply)> done) override {
    auto job = std::make_shared<courier_job>();
    job->token = std::move(token);
    job->scoped_user = std::move(scoped_user);
    job->authorize_only = true;
    job->done = std::move(done);
    caf::anon_send(next_courier(), std::move(job));
  }

  void ready(std::function<void(bool)> done) override {
    // Rare (a probe): a short-lived actor with a timeout is fine here.
    sys_.spawn(
      [db = db_, timeout = timeout_, done = std::move(done)](caf::event_based_actor* self, int) {
        self->request(db, timeout, atom::ping::value)
          .then(
            [=](bool ok) {
              forget_request_timeout(self);
              done(ok);
            },
            [=](caf::error&) {
              forget_request_timeout(self);
              done(false);
            });
      },
      0); // CAF 0.17: a spawn without arguments is UB
  }

private:
  const courier_actor& next_courier() {
    return couriers_[next_.fetch_add(1, std::memory_order_relaxed) % couriers_.size()];
  }

  int64_t deadline() const {
    auto now = std::chrono::steady_clock::now().time_since_epoch();
    return std::chrono::duration_cast<std::chrono::nanoseconds>(now + timeout_).count();
  }

  caf::actor_system& sys_;
  db_actor db_;
  caf::timespan timeout_;
  std::vector<courier_actor> couriers_;
  std::atomic<size_t> next_{0};
};

} // namespace

std::unique_ptr<gateway> make_actor_gateway(caf::actor_system& sys, auth_actor auth,
                                            registry_shards registries, db_actor db,
                                            caf::timespan timeout, size_t couriers,
                                            courier_tokens tokens) {
  return std::make_unique<actor_gateway>(sys, std::move(auth), std::move(registries),
                                         std::move(db), timeout, std::max<size_t>(1, couriers),
                                         std::move(tokens));
}

} // namespace todo
