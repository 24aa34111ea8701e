#include "config/log.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <unistd.h>

#include "config/text.hpp"

namespace todo::log {

namespace {

std::atomic<level> min_level{level::info};
std::atomic<bool> as_json{false};

const char* names[] = {"debug", "info", "warn", "error"};

using text::append_json_escaped;

/// Appends the UTC time with milliseconds; the part up to the second is formatted once per
/// second per thread.
void append_time(std::string& out) {
  struct cached {
    int64_t second = -1;
    char text[32];
    size_t size = 0;
  };
  thread_local cached c;
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  int64_t second = ms / 1000;
  if (second != c.second) {
    auto t = static_cast<std::time_t>(second);
    std::tm tm{};
    gmtime_r(&t, &tm);
    int n = std::snprintf(c.text, sizeof c.text, "%04d-%02d-%02dT%02d:%02d:%02d.",
                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                          tm.tm_sec);
    c.size = n > 0 ? static_cast<size_t>(n) : 0;
    c.second = second;
  }
  out.append(c.text, c.size);
  auto frac = static_cast<int>(ms % 1000);
  out += static_cast<char>('0' + frac / 100);
  out += static_cast<char>('0' + frac / 10 % 10);
  out += static_cast<char>('0' + frac % 10);
  out += 'Z';
}

/// Appends `us` microseconds as milliseconds with three decimals.
void append_millis(std::string& out, int64_t us) {
  if (us < 0)
    us = 0;
  text::append_int(out, us / 1000);
  out += '.';
  auto frac = static_cast<int>(us % 1000);
  out += static_cast<char>('0' + frac / 100);
  out += static_cast<char>('0' + frac / 10 % 10);
  out += static_cast<char>('0' + frac % 10);
}

void write_fully(int fd, const char* p, size_t n) {
  while (n > 0) {
    auto rc = ::write(fd, p, n);
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc <= 0)
      return; // nowhere to log to: nothing better to do
    p += rc;
    n -= static_cast<size_t>(rc);
  }
}

// ---- the background writer --------------------------------------------------------------
// Each thread that logs owns a ring of bytes (one producer: that thread; one consumer: the
// writer thread). A line is copied into the ring with no lock, allocation or syscall; when
// the ring is full (stderr slow or blocked) the line is dropped and counted. The writer wakes
// every few milliseconds, takes whole lines from every ring and writes them with one write(2).

constexpr size_t ring_bytes = size_t{1} << 18; // per thread: ~2000 access-log lines
constexpr auto flush_every = std::chrono::milliseconds(5);

struct ring {
  std::unique_ptr<char[]> data{new char[ring_bytes]};
  std::atomic<uint64_t> head{0}; // bytes ever produced (written by the owning thread only)
  std::atomic<uint64_t> tail{0}; // bytes ever consumed (written by the writer only)
  std::atomic<bool> orphaned{false}; // the owning thread has exited
};

struct writer_state {
  std::mutex rings_mutex; // registering a thread's ring (once per thread), and the writer's scan
  std::vector<std::shared_ptr<ring>> rings;
  std::atomic<bool> running{false};
  std::atomic<uint64_t> dropped{0};
  std::mutex control; // start/stop
  std::mutex wake_mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::thread thread;
  int fd = STDERR_FILENO;
};

// Never destroyed: threads may log while static objects are torn down.
writer_state& state() {
  static auto* s = new writer_state;
  return *s;
}

struct thread_ring {
  std::shared_ptr<ring> r;
  ~thread_ring() {
    if (r)
      r->orphaned = true; // the writer drains it, then lets it go
  }
};
thread_local thread_ring this_thread_ring;

ring& ring_of_this_thread() {
  auto& mine = this_thread_ring.r;
  if (!mine) {
    mine = std::make_shared<ring>();
    std::lock_guard<std::mutex> guard{state().rings_mutex};
    state().rings.push_back(mine);
  }
  return *mine;
}

/// Copies `line` into this thread's ring; false when it does not fit.
bool push(const std::string& line) {
  auto& r = ring_of_this_thread();
  auto head = r.head.load(std::memory_order_relaxed);
  auto tail = r.tail.load(std::memory_order_acquire);
  if (ring_bytes - (head - tail) < line.size())
    return false;
  auto at = static_cast<size_t>(head % ring_bytes);
  auto first = std::min(line.size(), ring_bytes - at);
  std::memcpy(r.data.get() + at, line.data(), first);
  std::memcpy(r.data.get(), line.data() + first, line.size() - first);
  r.head.store(head + line.size(), std::memory_order_release);
  return true;
}

/// Moves every ring's finished lines into `out`; forgets rings of exited threads once empty.
void collect(std::string& out) {
  auto& st = state();
  std::lock_guard<std::mutex> guard{st.rings_mutex};
  for (auto it = st.rings.begin(); it != st.rings.end();) {
    auto& r = **it;
    bool orphaned = r.orphaned.load(std::memory_order_acquire);
    auto tail = r.tail.load(std::memory_order_relaxed);
    auto head = r.head.load(std::memory_order_acquire);
    auto n = static_cast<size_t>(head - tail);
    if (n > 0) {
      auto at = static_cast<size_t>(tail % ring_bytes);
      auto first = std::min(n, ring_bytes - at);
      out.append(r.data.get() + at, first);
      out.append(r.data.get(), n - first);
      r.tail.store(head, std::memory_order_release);
    }
    if (orphaned && r.head.load(std::memory_order_acquire) == head)
      it = st.rings.erase(it);
    else
      ++it;
  }
}

void writer_loop() {
  auto& st = state();
  std::string batch;
  uint64_t reported = 0;
  for (;;) {
    bool stop;
    {
      std::unique_lock<std::mutex> lock{st.wake_mutex};
      st.wake.wait_for(lock, flush_every, [&] { return st.stopping; });
      stop = st.stopping;
    }
    batch.clear();
    collect(batch);
    auto dropped = st.dropped.load();
    if (dropped != reported) {
      std::string line;
      append_time(line);
      line += " warn log: " + std::to_string(dropped - reported) +
              " line(s) dropped: stderr did not keep up\n";
      if (as_json)
        line = "{\"time\":\"" + line.substr(0, line.find(' ')) +
               "\",\"level\":\"warn\",\"msg\":\"log: " + std::to_string(dropped - reported) +
               " line(s) dropped: stderr did not keep up\"}\n";
      batch += line;
      reported = dropped;
    }
    if (!batch.empty())
      write_fully(st.fd, batch.data(), batch.size());
    if (stop)
      return;
  }
}

// One line: to the ring while the writer runs, else straight to the file (one write(2) per
// line keeps lines from different threads whole).
void emit(std::string& line) {
  line += '\n';
  auto& st = state();
  if (st.running.load(std::memory_order_acquire)) {
    if (!push(line))
      st.dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  write_fully(st.fd, line.data(), line.size());
}

/// A per-thread line buffer: no allocation per line once it has grown.
std::string& line_buffer(size_t reserve) {
  thread_local std::string line;
  line.clear();
  if (line.capacity() < reserve)
    line.reserve(reserve);
  return line;
}

} // namespace

void start_writer(int fd) {
  auto& st = state();
  std::lock_guard<std::mutex> guard{st.control};
  if (st.running)
    return;
  st.fd = fd;
  st.stopping = false;
  st.dropped = 0;
  st.thread = std::thread{writer_loop};
  st.running.store(true, std::memory_order_release);
  static bool registered = false;
  if (!registered) {
    registered = true;
    std::atexit(stop_writer); // lines of a process that exits early are not lost
  }
}

void stop_writer() {
  auto& st = state();
  std::lock_guard<std::mutex> guard{st.control};
  if (!st.running)
    return;
  st.running.store(false, std::memory_order_release); // new lines go straight to the file
  {
    std::lock_guard<std::mutex> lock{st.wake_mutex};
    st.stopping = true;
  }
  st.wake.notify_one();
  st.thread.join(); // its last round takes every line pushed before `running` went false
  std::string rest;
  collect(rest); // a line pushed while the writer finished
  write_fully(st.fd, rest.data(), rest.size());
  st.fd = STDERR_FILENO;
}

uint64_t dropped_lines() {
  return state().dropped.load();
}

level parse_level(std::string_view name) {
  if (name == "debug")
    return level::debug;
  if (name == "warn")
    return level::warn;
  if (name == "error")
    return level::error;
  return level::info;
}

void configure(level min, bool json) {
  min_level = min;
  as_json = json;
}

bool enabled(level lvl) {
  return lvl >= min_level.load(std::memory_order_relaxed);
}

void write(level lvl, std::string_view msg) {
  if (!enabled(lvl))
    return;
  auto& line = line_buffer(msg.size() + 64);
  if (as_json) {
    line += "{\"time\":\"";
    append_time(line);
    line += "\",\"level\":\"";
    line += names[static_cast<int>(lvl)];
    line += "\",\"msg\":\"";
    append_json_escaped(line, msg);
    line += "\"}";
  } else {
    append_time(line);
    line += ' ';
    line += names[static_cast<int>(lvl)];
    line += ' ';
    line += msg;
  }
  emit(line);
}

void request(std::string_view method, std::string_view path, unsigned status,
             int64_t duration_us, std::string_view request_id, std::string_view trace_id,
             std::string_view client) {
  if (!enabled(level::info))
    return;
  // Request targets come from clients: bytes that are not UTF-8 are written as %XX.
  std::string cleaned;
  if (std::any_of(path.begin(), path.end(), [](char c) { return (c & 0x80) != 0; })) {
    cleaned = text::valid_utf8(path);
    path = cleaned;
  }
  auto& line = line_buffer(128 + path.size());
  if (as_json) {
    line += "{\"time\":\"";
    append_time(line);
    line += "\",\"level\":\"info\",\"method\":\"";
    append_json_escaped(line, method);
    line += "\",\"path\":\"";
    append_json_escaped(line, path);
    line += "\",\"status\":";
    text::append_int(line, status);
    line += ",\"duration_ms\":";
    append_millis(line, duration_us);
    line += ",\"request_id\":\"";
    append_json_escaped(line, request_id);
    if (!trace_id.empty()) {
      line += "\",\"trace_id\":\"";
      line += trace_id; // 32 lowercase hex digits (checked by the handler)
    }
    if (!client.empty()) {
      line += "\",\"client\":\"";
      line += client; // an IP address (parsed, never the header's raw text)
    }
    line += "\"}";
  } else {
    append_time(line);
    line += " info ";
    line += method;
    line += ' ';
    // Paths come from clients: keep control characters out of the log.
    for (char c : path)
      line += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
    line += ' ';
    text::append_int(line, status);
    line += ' ';
    append_millis(line, duration_us);
    line += "ms rid=";
    line += request_id;
    if (!trace_id.empty()) {
      line += " trace=";
      line += trace_id;
    }
    if (!client.empty()) {
      line += " client=";
      line += client;
    }
  }
  emit(line);
}

} // namespace todo::log
