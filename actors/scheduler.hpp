// The CAF scheduler the server runs on: CAF 0.17's work stealing, minus one cost per message.
//
// CAF 0.17.6's worker loop records the running actor's id for its logger before every resume
// (CAF_PUSH_AID_FROM_PTR), unconditionally, even with logging compiled out (Debian builds it
// at CAF_LOG_LEVEL_QUIET): a dynamic_cast from `resumable` to `abstract_actor` across a
// virtual-inheritance hierarchy plus two logger calls, about 2,300 instructions per resume,
// 11% of a cached GET (`scripts/instructions`, callgrind). `quiet_stealing` is the same
// policy under another name, so that `caf::scheduler::worker<quiet_stealing>::run` can be
// specialized (actors/scheduler.cpp) as the same loop without that bookkeeping.
#pragma once

#include <caf/actor_system_config.hpp>
#include <caf/policy/work_stealing.hpp>

namespace todo {

struct quiet_stealing : caf::policy::work_stealing {};

/// Makes an actor system built from `cfg` run on `caf::scheduler::coordinator<quiet_stealing>`
/// (CAF keeps a scheduler module the configuration loads instead of its own); threads and the
/// stealing settings are read from `cfg` as usual (`scheduler.max-threads`, `work-stealing.*`).
void use_quiet_scheduler(caf::actor_system_config& cfg);

/// True if `sys` runs on the scheduler above (for the tests).
bool runs_quiet_scheduler(caf::actor_system& sys);

} // namespace todo
