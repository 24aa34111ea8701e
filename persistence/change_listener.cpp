#include "persistence/change_listener.hpp"

#include <chrono>

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include "config/log.hpp"

namespace todo::db {

namespace {

// One row object of the feed (migration 007's format); nullopt when it is not one.
std::optional<task_change> parse_row(const boost::json::value& v) {
  namespace json = boost::json;
  if (!v.is_object())
    return std::nullopt;
  const auto& o = v.get_object();
  const auto* user = o.if_contains("u");
  const auto* op = o.if_contains("op");
  const auto* id = o.if_contains("id");
  if (!user || !user->is_string() || !op || !op->is_string() || !id || !id->is_int64())
    return std::nullopt;
  task_change out;
  out.user = std::string{user->get_string()};
  out.row.id = id->get_int64();
  if (const auto* ver = o.if_contains("v"); ver && ver->is_int64())
    out.row.version = ver->get_int64();
  std::string_view kind = op->get_string();
  if (kind == "d") {
    out.what = task_change::kind::deleted;
    return out;
  }
  if (kind != "c" && kind != "u")
    return out; // "big": unknown, refetch
  try {
    auto& t = out.row;
    t.title = std::string{o.at("title").as_string()};
    if (const auto& d = o.at("description"); d.is_string())
      t.description = std::string{d.get_string()};
    t.completed = o.at("completed").as_bool();
    t.created_us = o.at("c").to_number<int64_t>();
    t.updated_us = o.at("m").to_number<int64_t>();
    out.what = kind == "c" ? task_change::kind::created : task_change::kind::updated;
  } catch (const std::exception&) {
    out.what = task_change::kind::unknown;
  }
  return out;
}

} // namespace

size_t parse_changes(const std::string& payload, std::vector<task_change>& out) {
  boost::system::error_code ec;
  auto v = boost::json::parse(payload, ec);
  if (ec)
    return 0;
  size_t added = 0;
  auto take = [&](const boost::json::value& row) {
    if (auto change = parse_row(row)) {
      out.push_back(std::move(*change));
      ++added;
    }
  };
  if (v.is_array())
    for (const auto& row : v.get_array())
      take(row);
  else
    take(v);
  return added;
}

namespace {

class event_receiver : public pqxx::notification_receiver {
public:
  event_receiver(pqxx::connection_base& c, std::vector<task_change>& out)
    : pqxx::notification_receiver(c, "todo_task_events"), out_(out) {
  }
  void operator()(const std::string& payload, int) override {
    parse_changes(payload, out_);
  }

private:
  std::vector<task_change>& out_;
};

} // namespace

change_listener::change_listener(std::string conninfo,
                                 std::function<void(std::vector<task_change>&)> on_changes,
                                 std::function<void()> on_reset)
  : conninfo_(std::move(conninfo)),
    on_changes_(std::move(on_changes)),
    on_reset_(std::move(on_reset)) {
  thread_ = std::thread([this] { run(); });
}

change_listener::~change_listener() {
  stop_ = true;
  if (thread_.joinable())
    thread_.join();
}

bool change_listener::wait_connected(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock{m_};
  return cv_.wait_for(lock, timeout, [this] { return connected_; });
}

void change_listener::run() {
  auto backoff = std::chrono::milliseconds(100);
  bool warned = false;
  while (!stop_) {
    try {
      pqxx::connection conn{conninfo_};
      std::vector<task_change> arrived;
      event_receiver events{conn, arrived};
      on_reset_();
      {
        std::lock_guard<std::mutex> guard{m_};
        connected_ = true;
      }
      cv_.notify_all();
      if (warned)
        log::info("change listener reconnected");
      warned = false;
      backoff = std::chrono::milliseconds(100);
      while (!stop_) {
        conn.await_notification(0, 200000); // delivers every notification that is there
        if (!arrived.empty()) {
          on_changes_(arrived);
          arrived.clear();
        }
      }
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
