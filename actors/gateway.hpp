#pragma once
// The door from the HTTP layer into the actors. CAF-free, so http/ compiles without CAF.

#include <functional>
#include <string>

#include "actors/errc.hpp"
#include "actors/model/model.hpp"

namespace todo {

/// The outcome of one request: a result, or an error code with a client-safe reason.
struct reply {
  errc code = errc::none;
  std::string reason;
  task_result result;
  // authorize only: the token's subject, and until when (Unix seconds) its verdict may be
  // reused without checking the token again (0: check it again at the next occasion)
  std::string user;
  int64_t valid_until = 0;
};

/// Hands requests to the actors and calls back with the answer, never blocking the caller.
class gateway {
public:
  virtual ~gateway() = default;

  /// Verifies `token`, checks that `scoped_user` (when not empty) is the token's subject,
  /// runs `cmd` through the subject's task manager and calls `done` once, on an actor thread.
  virtual void submit(std::string token, std::string scoped_user, task_cmd cmd,
                      std::function<void(reply)> done) = 0;

  /// Verifies `token` and the scoped user only; `done` gets errc::none when both pass, with
  /// the token's subject and how long the verdict holds.
  virtual void authorize(std::string token, std::string scoped_user,
                         std::function<void(reply)> done) = 0;

  /// Calls `done(true)` when the database answers within the timeout, else `done(false)`.
  virtual void ready(std::function<void(bool)> done) = 0;
};

} // namespace todo
