#include "actors/actor_gateway.hpp"

namespace todo {

namespace {

reply failure(const caf::error& err) {
  reply out;
  if (err.category() == caf::atom("todo")) {
    out.code = static_cast<errc>(err.code());
    out.reason = error_reason(err);
  } else if (err == caf::sec::request_timeout) {
    out.code = errc::db_unavailable;
  } else {
    out.code = errc::internal;
  }
  return out;
}

class actor_gateway final : public gateway {
public:
  actor_gateway(caf::actor_system& sys, auth_actor auth, user_registry_actor registry,
                db_actor db, caf::timespan timeout)
    : sys_(sys),
      auth_(std::move(auth)),
      registry_(std::move(registry)),
      db_(std::move(db)),
      timeout_(timeout) {
  }

  void submit(std::string token, std::string scoped_user, task_cmd cmd,
              std::function<void(reply)> done) override {
    sys_.spawn([auth = auth_, registry = registry_, timeout = timeout_,
                token = std::move(token), scoped_user = std::move(scoped_user),
                cmd = std::move(cmd), done = std::move(done)](caf::event_based_actor* self, int) {
      self->request(auth, timeout, atom::verify::value, token)
        .then(
          [=](std::string& user) {
            forget_request_timeout(self);
            if (!scoped_user.empty() && scoped_user != user) {
              done(reply{errc::forbidden, {}, {}});
              return;
            }
            self->request(registry, timeout, atom::exec::value, std::move(user), cmd)
              .then(
                [=](task_result& r) {
                  forget_request_timeout(self);
                  done(reply{errc::none, {}, std::move(r)});
                },
                [=](caf::error& err) {
                  forget_request_timeout(self);
                  done(failure(err));
                });
          },
          [=](caf::error& err) {
            forget_request_timeout(self);
            done(failure(err));
          });
    }, 0); // CAF 0.17: a spawn without arguments is UB
  }

  void authorize(std::string token, std::string scoped_user,
                 std::function<void(reply)> done) override {
    sys_.spawn([auth = auth_, timeout = timeout_, token = std::move(token),
                scoped_user = std::move(scoped_user),
                done = std::move(done)](caf::event_based_actor* self, int) {
      self->request(auth, timeout, atom::verify::value, token)
        .then(
          [=](std::string& user) {
            forget_request_timeout(self);
            if (!scoped_user.empty() && scoped_user != user)
              done(reply{errc::forbidden, {}, {}});
            else
              done(reply{});
          },
          [=](caf::error& err) {
            forget_request_timeout(self);
            done(failure(err));
          });
    }, 0); // CAF 0.17: a spawn without arguments is UB
  }

  void ready(std::function<void(bool)> done) override {
    sys_.spawn([db = db_, timeout = timeout_, done = std::move(done)](
                 caf::event_based_actor* self, int) {
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
    }, 0);
  }

private:
  caf::actor_system& sys_;
  auth_actor auth_;
  user_registry_actor registry_;
  db_actor db_;
  caf::timespan timeout_;
};

} // namespace

std::unique_ptr<gateway> make_actor_gateway(caf::actor_system& sys, auth_actor auth,
                                            user_registry_actor registry, db_actor db,
                                            caf::timespan timeout) {
  return std::make_unique<actor_gateway>(sys, std::move(auth), std::move(registry),
                                         std::move(db), timeout);
}

} // namespace todo
