#pragma once
// What every HTTP session shares: settings, the gateway into the actors, and counters.

#include <atomic>
#include <cstdint>
#include <string>

#include "actors/gateway.hpp"
#include "config/settings.hpp"

namespace todo::http {

struct server_context {
  server_context(const settings& c, gateway& g) : cfg(c), gw(g) {
  }
  const settings& cfg;
  gateway& gw;
  std::atomic<size_t> connections{0};  // open client connections
  std::atomic<size_t> in_flight{0};    // requests handed to the actors, not yet answered
  std::atomic<uint64_t> request_counter{0};
  std::string request_id_prefix;       // random per process
};

} // namespace todo::http
