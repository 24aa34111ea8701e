#pragma once
// A CAF actor system on the deterministic test coordinator, for Catch2 actor tests.

#include <memory>
#include <optional>

#include <caf/all.hpp>

#include "actors/model/model.hpp"

namespace todo::test {

struct deterministic_system {
  deterministic_system();
  ~deterministic_system();

  /// Sends `xs` to `dest` and runs the system until the answer arrives (or nothing is left
  /// to run: then the answer is caf::sec::request_timeout).
  template <class T, class Handle, class... Ts>
  caf::expected<T> ask(const Handle& dest, Ts... xs) {
    auto out = ask_later<T>(dest, std::move(xs)...);
    run();
    if (!out->has_value())
      return caf::make_error(caf::sec::request_timeout);
    return std::move(**out);
  }

  /// Like ask, but returns the pending answer without running anything yet.
  template <class T, class Handle, class... Ts>
  std::shared_ptr<std::optional<caf::expected<T>>> ask_later(const Handle& dest, Ts... xs) {
    auto out = std::make_shared<std::optional<caf::expected<T>>>();
    sys.spawn([=](caf::event_based_actor* self, int) { // CAF 0.17: needs an argument
      self->request(dest, std::chrono::seconds(3600), xs...)
        .then([=](T& value) { *out = std::move(value); },
              [=](caf::error& err) { *out = std::move(err); });
    }, 0);
    return out;
  }

  /// Runs every actor that has something to do, without firing timeouts.
  void run() {
    sched.run();
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
};

/// A create command with `title`.
inline todo::task_cmd create_cmd(std::string title) {
  todo::task_cmd c;
  c.kind = todo::op::create;
  c.patch.title = std::move(title);
  return c;
}

} // namespace todo::test
