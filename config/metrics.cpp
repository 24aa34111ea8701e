#include "config/metrics.hpp"

namespace todo::metrics {

actor_metrics& actors() {
  static actor_metrics m;
  return m;
}

} // namespace todo::metrics
