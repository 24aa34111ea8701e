#pragma once
// Where a write's time goes (TRACE_STAGES=1): each traced request carries a few steady-clock
// stamps from the gateway through the actors and the database worker back to the session;
// the differences between consecutive stages go into process-wide histograms, printed at
// shutdown. Off by default: then no request carries stamps and nothing is recorded.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace todo::trace {

enum stage : uint8_t {
  submitted,  // the session handed the request to the gateway
  couriered,  // a courier took it
  verified,   // its token's user is known (courier cache or auth actor)
  managed,    // the user's TaskManager took it (registry hop + wait behind the user's work)
  pooled,     // the DB pool queued it
  started,    // a DB worker began the statement (or the group-commit transaction)
  committed,  // the DB worker has the result (after COMMIT)
  answered,   // the TaskManager applied it to the cache and answered
  replied,    // the courier handed the reply back to the session
  stage_count
};

/// The stamps of one request (nanoseconds of the steady clock; 0: not reached).
struct stamps {
  std::array<int64_t, stage_count> ns{};
};
using stamps_ptr = std::shared_ptr<stamps>;

/// Turns tracing on or off (main.cpp, from TRACE_STAGES).
void enable(bool on);
bool enabled();

/// Returns fresh stamps when tracing is on, else null.
stamps_ptr start();

/// Stamps `s` (if any) with the current time at `st`.
void mark(const stamps_ptr& s, stage st);

/// Adds one finished write's stage times to the histograms.
void record(const stamps& s);

/// Returns the report: one line per stage with count, p50, p90, p99 and max in microseconds.
std::vector<std::string> report();

} // namespace todo::trace
