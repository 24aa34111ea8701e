#pragma once
// GET /metrics: Prometheus' text format (version 0.0.4). The HTTP layer's counters live here
// (requests by route template, method and status; latency by route; 401s by reason); the
// actors' and the pool's in config/metrics.hpp; process_* are read from /proc when scraped.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/metrics.hpp"

namespace todo::http {

struct server_context;

/// The service's version (CMake's project version) and the commit it was built from
/// (`git describe --dirty` at build time, "unknown" outside a checkout).
std::string_view build_version();
std::string_view build_commit_id();

class http_metrics {
public:
  http_metrics();
  static constexpr size_t routes = 15;  // known_routes() and "unmatched" (the last)
  static constexpr size_t methods = 8;  // GET HEAD POST PUT PATCH DELETE OPTIONS other
  static constexpr size_t statuses = 500; // 100..599
  static constexpr size_t reasons = 15; // 401 reasons (see reason_names in metrics.cpp)

  /// Counts one answered request (`route`: a known_routes() index or -1).
  void observe(int route, std::string_view method, unsigned status, int64_t micros) const;
  /// Counts one 401 by its `detail` text (a bounded set of labels; anything else: "other").
  void auth_failure(std::string_view reason) const;
  /// The whole exposition.
  std::string render(const server_context& ctx) const;

private:
  // Counted from const paths (a response being built): the counters are the only mutable part.
  mutable std::array<metrics::counter, routes * methods * statuses> requests_{};
  mutable std::array<metrics::histogram<14>, routes> latency_{};
  mutable std::array<metrics::counter, reasons> auth_failures_{};
};

} // namespace todo::http
