#pragma once
// Live updates (GET /api/tasks/events): who listens to which user's changes, and the last few
// events of each such user for resuming with Last-Event-ID. Beast- and CAF-free.
//
// Every change reaches the hub from one place, the change listener's thread (PostgreSQL's
// LISTEN/NOTIFY, fed by a trigger on `tasks`), so every stream of a user sees that user's
// changes in commit order, whichever route, connection or instance made them, and the hub
// gives each event its id in that order.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "actors/model/model.hpp"

namespace todo::http {

/// One ready-to-send piece of an event stream ("id: ...\nevent: ...\ndata: ...\n\n").
using frame_ptr = std::shared_ptr<const std::string>;

/// The receiving end of one stream. `push` is called with the hub's lock held, from any
/// thread: it must only queue (never block, never call back into the hub).
class event_sink {
public:
  virtual ~event_sink() = default;
  virtual void push(frame_ptr frame) = 0;
};

struct hub_limits {
  size_t max_per_user = 10;       // SSE_MAX_PER_USER
  size_t max_streams = 10000;     // SSE_MAX_STREAMS
  size_t replay_events = 256;     // events kept per user for Last-Event-ID
  std::chrono::milliseconds keep_idle{300000}; // a user's buffer outlives its last stream this long
};

class event_hub {
public:
  explicit event_hub(hub_limits limits = {});

  enum class admission { ok, user_full, total_full };

  /// What a new stream starts with.
  struct opening {
    admission result = admission::ok;
    bool reset = false;             // Last-Event-ID was not resumable: refetch, then follow
    std::vector<frame_ptr> backlog; // the events after Last-Event-ID, in order
  };

  /// Adds `sink` to `user`'s streams (unless a bound is reached) and returns what it starts
  /// with: with a Last-Event-ID this hub issued for the user and still holds, the events after
  /// it; with any other Last-Event-ID, `reset`. Atomic with publish: nothing is missed or
  /// sent twice between the backlog and the live events.
  opening subscribe(const std::string& user, const std::optional<std::string>& last_event_id,
                    std::shared_ptr<event_sink> sink);

  /// Removes `sink` (no-op when it is not there).
  void unsubscribe(const std::string& user, const event_sink* sink);

  /// Publishes one committed change of `user` to that user's streams: `type` is the SSE event
  /// name, `data` its JSON. Users without streams (or a recent one) cost a lookup only.
  void publish(const std::string& user, std::string_view type, std::string_view data);

  /// Returns whether `user` has streams, or a recent one (then its changes are worth rendering).
  bool followed(const std::string& user);

  /// Tells `user`'s streams to refetch (`event: reset`): a change could not be described.
  void reset_user(const std::string& user);

  /// Tells every stream to refetch: changes may have been missed (the listener reconnected).
  void reset_all();

  size_t streams() const { return streams_.load(std::memory_order_relaxed); }
  uint64_t events_published() const { return published_.load(std::memory_order_relaxed); }

  /// Formats an event frame (also used for the stream's own `reauth` and `reset`).
  static std::string frame(std::string_view id, std::string_view type, std::string_view data);

private:
  struct user_entry {
    std::vector<std::shared_ptr<event_sink>> sinks;
    std::deque<std::pair<int64_t, frame_ptr>> recent; // (id, frame), oldest first
    int64_t last_id = 0;
    std::chrono::steady_clock::time_point idle_since{};
  };
  struct shard {
    std::mutex m;
    std::unordered_map<std::string, user_entry> users;
  };

  shard& shard_of(const std::string& user);
  void sweep(shard& s, std::chrono::steady_clock::time_point now); // drops long-idle users
  void send_reset(user_entry& e);

  hub_limits limits_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::atomic<size_t> streams_{0};
  std::atomic<uint64_t> published_{0};
};

/// Publishes one change of the feed to its user's streams: task.created / task.updated with
/// the task's JSON as the API renders it, task.deleted with {"id": N}; a row too big for
/// NOTIFY resets the user's streams.
void publish_change(event_hub& hub, const task_change& change);

} // namespace todo::http
