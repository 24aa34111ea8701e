#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace todo::db {

/// Listens (LISTEN todo_tasks, todo_task_events) for changes to tasks. Reports the user whose
/// tasks another instance or program changed (`on_change`, for cache coherence), and every
/// change of any writer as its JSON description (`on_event`, for live updates; migration 006),
/// in commit order. Runs on a thread of its own; reconnects by itself and reports a reset
/// after each (re)connect, since notifications may have been missed.
class change_listener {
public:
  change_listener(std::string conninfo, std::string instance_id,
                  std::function<void(const std::string& user)> on_change,
                  std::function<void(const std::string& payload)> on_event,
                  std::function<void()> on_reset);
  ~change_listener();

  change_listener(const change_listener&) = delete;
  change_listener& operator=(const change_listener&) = delete;

private:
  void run();

  std::string conninfo_;
  std::string instance_id_;
  std::function<void(const std::string&)> on_change_;
  std::function<void(const std::string&)> on_event_;
  std::function<void()> on_reset_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

} // namespace todo::db
