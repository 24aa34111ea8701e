#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace todo::db {

/// Listens (LISTEN todo_tasks) for changes to tasks made by other instances or programs and
/// reports the user whose tasks changed. Runs on a thread of its own; reconnects by itself
/// and reports a reset after each (re)connect, since notifications may have been missed.
class change_listener {
public:
  change_listener(std::string conninfo, std::string instance_id,
                  std::function<void(const std::string& user)> on_change,
                  std::function<void()> on_reset);
  ~change_listener();

  change_listener(const change_listener&) = delete;
  change_listener& operator=(const change_listener&) = delete;

private:
  void run();

  std::string conninfo_;
  std::string instance_id_;
  std::function<void(const std::string&)> on_change_;
  std::function<void()> on_reset_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

} // namespace todo::db
