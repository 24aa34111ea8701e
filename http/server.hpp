#pragma once
// What every HTTP session shares: settings, the gateway into the actors, and counters.

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/gateway.hpp"
#include "config/settings.hpp"
#include "http/docs.hpp"
#include "http/event_hub.hpp"
#include "http/metrics.hpp"

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
  std::atomic<bool> draining{false};   // shutting down: read no new requests
  /// SIGTERM arrived and DRAIN_DELAY_MS runs: /ready answers 503 so that load balancers take
  /// this instance out, while every request is still served, each connection closing after
  /// its response (a proxy then opens its next one to another instance).
  std::atomic<bool> leaving{false};
  docs_assets docs;                    // Swagger UI's files for /docs (read at start-up)
  http_metrics metrics;                // GET /metrics (counted only when cfg.metrics)
  event_hub* hub = nullptr;            // live updates (GET /api/tasks/events)
  std::atomic<uint64_t> sse_sent{0};   // event frames queued to streams
  std::atomic<uint64_t> sse_slow_readers{0}; // streams ended because their queue was full
  std::atomic<uint64_t> sse_reauth{0};       // streams ended because their token expired

  /// Registers a function that `drain` calls; returns its id for remove_drain_hook.
  uint64_t add_drain_hook(std::function<void()> fn) {
    std::lock_guard<std::mutex> guard{hooks_mutex_};
    hooks_.emplace(++next_hook_, std::move(fn));
    return next_hook_;
  }

  void remove_drain_hook(uint64_t id) {
    std::lock_guard<std::mutex> guard{hooks_mutex_};
    hooks_.erase(id);
  }

  /// Starts a graceful shutdown: every session finishes what it has read and closes.
  void drain() {
    draining = true;
    std::vector<std::function<void()>> fns;
    {
      std::lock_guard<std::mutex> guard{hooks_mutex_};
      for (auto& [id, fn] : hooks_)
        fns.push_back(fn);
    }
    for (auto& fn : fns)
      fn();
  }

private:
  std::mutex hooks_mutex_;
  std::unordered_map<uint64_t, std::function<void()>> hooks_;
  uint64_t next_hook_ = 0;
};

} // namespace todo::http
