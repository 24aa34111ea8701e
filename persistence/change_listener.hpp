#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "actors/model/model.hpp"

namespace todo::db {

/// Appends the changes one notification of the feed describes to `out`, in order: a JSON
/// array of row objects (migration 008: one per statement, as many rows as fit) or a single
/// row object (007). Returns how many were added; what is not a row is skipped.
size_t parse_changes(const std::string& payload, std::vector<task_change>& out);

/// Listens (LISTEN todo_task_events) for every committed change to tasks, from any writer
/// (this instance, others, psql), and reports them in commit order (`on_changes`: cache
/// coherence and live updates), as many at a time as arrived together (a group commit's rows
/// arrive together: one hand-over for all of them). Runs on a thread of its own with its own connection (LISTEN
/// needs a session: DATABASE_LISTEN_URL behind a transaction pooler); reconnects by itself
/// and reports a reset after each (re)connect, since notifications may have been missed.
class change_listener {
public:
  change_listener(std::string conninfo,
                  std::function<void(std::vector<task_change>&)> on_changes,
                  std::function<void()> on_reset);
  ~change_listener();

  /// Waits until the first LISTEN is in place (true), or `timeout` passed (false).
  bool wait_connected(std::chrono::milliseconds timeout);

  change_listener(const change_listener&) = delete;
  change_listener& operator=(const change_listener&) = delete;

private:
  void run();

  std::string conninfo_;
  std::function<void(std::vector<task_change>&)> on_changes_;
  std::function<void()> on_reset_;
  std::atomic<bool> stop_{false};
  std::mutex m_;
  std::condition_variable cv_;
  bool connected_ = false; // guarded by m_
  std::thread thread_;
};

} // namespace todo::db
