#include "tests/support/deterministic_system.hpp"

namespace todo::test {

namespace {

caf::actor_system_config& testing_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  return cfg;
}

} // namespace

deterministic_system::deterministic_system()
  : sys(testing_config(cfg)),
    sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
}

deterministic_system::~deterministic_system() {
  // A pending request timeout keeps its actor alive; drain everything, but never forever
  // (a periodic tick re-arms itself while its actor lives).
  for (int i = 0; i < 1000 && sched.run() + sched.trigger_timeouts() > 0; ++i) {
  }
  sys.await_actors_before_shutdown(false);
}

} // namespace todo::test
