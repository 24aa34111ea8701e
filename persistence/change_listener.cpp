#include "persistence/change_listener.hpp"

#include <chrono>

#include <pqxx/pqxx>

#include "config/log.hpp"

namespace todo::db {

namespace {

class receiver : public pqxx::notification_receiver {
public:
  receiver(pqxx::connection_base& c, const std::string& self_id,
           const std::function<void(const std::string&)>& fn)
    : pqxx::notification_receiver(c, "todo_tasks"), self_id_(self_id), fn_(fn) {
  }
  void operator()(const std::string& payload, int) override {
    auto colon = payload.find(':');
    if (colon == std::string::npos)
      return;
    if (colon > 0 && payload.compare(0, colon, self_id_) == 0)
      return; // our own write: the writer's cache is already up to date
    fn_(payload.substr(colon + 1));
  }

private:
  const std::string& self_id_;
  const std::function<void(const std::string&)>& fn_;
};

class event_receiver : public pqxx::notification_receiver {
public:
  event_receiver(pqxx::connection_base& c, const std::function<void(const std::string&)>& fn)
    : pqxx::notification_receiver(c, "todo_task_events"), fn_(fn) {
  }
  void operator()(const std::string& payload, int) override {
    fn_(payload);
  }

private:
  const std::function<void(const std::string&)>& fn_;
};

} // namespace

change_listener::change_listener(std::string conninfo, std::string instance_id,
                                 std::function<void(const std::string&)> on_change,
                                 std::function<void(const std::string&)> on_event,
                                 std::function<void()> on_reset)
  : conninfo_(std::move(conninfo)),
    instance_id_(std::move(instance_id)),
    on_change_(std::move(on_change)),
    on_event_(std::move(on_event)),
    on_reset_(std::move(on_reset)) {
  thread_ = std::thread([this] { run(); });
}

change_listener::~change_listener() {
  stop_ = true;
  if (thread_.joinable())
    thread_.join();
}

void change_listener::run() {
  auto backoff = std::chrono::milliseconds(100);
  bool warned = false;
  while (!stop_) {
    try {
      pqxx::connection conn{conninfo_};
      receiver r{conn, instance_id_, on_change_};
      event_receiver events{conn, on_event_};
      on_reset_();
      if (warned)
        log::info("change listener reconnected");
      warned = false;
      backoff = std::chrono::milliseconds(100);
      while (!stop_)
        conn.await_notification(0, 200000);
    } catch (const std::exception&) {
      if (!warned)
        log::warn("change listener lost its database connection; caches are dropped");
      warned = true;
      on_reset_();
      for (auto waited = std::chrono::milliseconds(0); waited < backoff && !stop_;
           waited += std::chrono::milliseconds(50))
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
  }
}

} // namespace todo::db
