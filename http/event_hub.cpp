#include "http/event_hub.hpp"

#include <algorithm>
#include <charconv>
#include <functional>


#include "actors/model/task_json.hpp"

namespace todo::http {

namespace {

constexpr size_t shard_count = 16;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::optional<int64_t> parse_id(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v <= 0)
    return std::nullopt;
  return v;
}

} // namespace

event_hub::event_hub(hub_limits limits) : limits_(limits) {
  for (size_t i = 0; i < shard_count; ++i)
    shards_.push_back(std::make_unique<shard>());
}

event_hub::shard& event_hub::shard_of(const std::string& user) {
  return *shards_[std::hash<std::string>{}(user) % shards_.size()];
}

std::string event_hub::frame(std::string_view id, std::string_view type, std::string_view data) {
  std::string out;
  out.reserve(id.size() + type.size() + data.size() + 24);
  if (!id.empty()) {
    out += "id: ";
    out += id;
    out += '\n';
  }
  out += "event: ";
  out += type;
  out += "\ndata: ";
  out += data; // JSON from our writer: never a raw line break
  out += "\n\n";
  return out;
}

void event_hub::sweep(shard& s, std::chrono::steady_clock::time_point now) {
  for (auto i = s.users.begin(); i != s.users.end();) {
    if (i->second.sinks.empty() && now - i->second.idle_since >= limits_.keep_idle)
      i = s.users.erase(i);
    else
      ++i;
  }
}

event_hub::opening event_hub::subscribe(const std::string& user,
                                        const std::optional<std::string>& last_event_id,
                                        std::shared_ptr<event_sink> sink) {
  opening out;
  auto& s = shard_of(user);
  std::lock_guard<std::mutex> lock{s.m};
  auto now = std::chrono::steady_clock::now();
  sweep(s, now);
  auto& e = s.users[user];
  if (e.sinks.size() >= limits_.max_per_user) {
    out.result = admission::user_full;
    return out;
  }
  // Counted optimistically, so that two shards admitting at once cannot both pass the bound.
  if (streams_.fetch_add(1, std::memory_order_relaxed) >= limits_.max_streams) {
    streams_.fetch_sub(1, std::memory_order_relaxed);
    if (e.sinks.empty() && e.recent.empty())
      s.users.erase(user);
    out.result = admission::total_full;
    return out;
  }
  if (last_event_id) {
    auto id = parse_id(*last_event_id);
    auto at = std::find_if(e.recent.begin(), e.recent.end(),
                           [&](const auto& ev) { return id && ev.first == *id; });
    if (at == e.recent.end()) {
      out.reset = true; // not one of ours, or older than what is kept
    } else {
      for (++at; at != e.recent.end(); ++at)
        out.backlog.push_back(at->second);
    }
  }
  e.sinks.push_back(std::move(sink));
  return out;
}

void event_hub::unsubscribe(const std::string& user, const event_sink* sink) {
  auto& s = shard_of(user);
  std::lock_guard<std::mutex> lock{s.m};
  auto i = s.users.find(user);
  if (i == s.users.end())
    return;
  auto& sinks = i->second.sinks;
  auto it = std::find_if(sinks.begin(), sinks.end(), [&](const auto& p) { return p.get() == sink; });
  if (it == sinks.end())
    return;
  sinks.erase(it);
  streams_.fetch_sub(1, std::memory_order_relaxed);
  if (sinks.empty())
    i->second.idle_since = std::chrono::steady_clock::now();
}

void event_hub::publish(const std::string& user, std::string_view type, std::string_view data) {
  auto& s = shard_of(user);
  std::lock_guard<std::mutex> lock{s.m};
  auto i = s.users.find(user);
  if (i == s.users.end())
    return; // nobody follows this user
  auto& e = i->second;
  // Microseconds of the wall clock, and always above the last one: ids grow across restarts
  // and stay exact in a JavaScript number.
  e.last_id = std::max(e.last_id + 1, now_us());
  auto f = std::make_shared<const std::string>(frame(std::to_string(e.last_id), type, data));
  e.recent.emplace_back(e.last_id, f);
  while (e.recent.size() > limits_.replay_events)
    e.recent.pop_front();
  for (const auto& sink : e.sinks)
    sink->push(f);
  published_.fetch_add(1, std::memory_order_relaxed);
}

bool event_hub::followed(const std::string& user) {
  auto& s = shard_of(user);
  std::lock_guard<std::mutex> lock{s.m};
  return s.users.count(user) > 0;
}

void event_hub::send_reset(user_entry& e) {
  // Events before this point cannot be resumed from: the client refetches the list.
  e.recent.clear();
  static const auto reset = std::make_shared<const std::string>(frame({}, "reset", "{}"));
  for (const auto& sink : e.sinks)
    sink->push(reset);
}

void event_hub::reset_user(const std::string& user) {
  auto& s = shard_of(user);
  std::lock_guard<std::mutex> lock{s.m};
  if (auto i = s.users.find(user); i != s.users.end())
    send_reset(i->second);
}

void event_hub::reset_all() {
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> lock{s->m};
    for (auto& [user, e] : s->users)
      send_reset(e);
  }
}

void publish_change(event_hub& hub, const task_change& change) {
  if (!hub.followed(change.user))
    return; // most writes: nobody follows their user on this instance
  switch (change.what) {
    case task_change::kind::deleted:
      hub.publish(change.user, "task.deleted",
                  "{\"id\":" + std::to_string(change.row.id) + "}");
      return;
    case task_change::kind::created:
    case task_change::kind::updated: {
      std::string data;
      write_task(data, change.row);
      hub.publish(change.user,
                  change.what == task_change::kind::created ? "task.created" : "task.updated",
                  data);
      return;
    }
    case task_change::kind::unknown:
      hub.reset_user(change.user); // the row did not fit: the client refetches
      return;
  }
}

} // namespace todo::http
