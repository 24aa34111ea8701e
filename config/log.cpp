#include "config/log.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <string>
#include <unistd.h>

#include "config/text.hpp"

namespace todo::log {

namespace {

std::atomic<level> min_level{level::info};
std::atomic<bool> as_json{false};

const char* names[] = {"debug", "info", "warn", "error"};

using text::append_json_escaped;

void append_time(std::string& out) {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms.count()));
  out += buf;
}

// One write(2) per line keeps lines from different threads whole.
void emit(std::string& line) {
  line += '\n';
  auto rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void) rc;
}

} // namespace

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
  std::string line;
  line.reserve(msg.size() + 64);
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
             int64_t duration_us, std::string_view request_id) {
  if (!enabled(level::info))
    return;
  // Request targets come from clients: bytes that are not UTF-8 are written as %XX.
  std::string cleaned;
  if (std::any_of(path.begin(), path.end(), [](char c) { return (c & 0x80) != 0; })) {
    cleaned = text::valid_utf8(path);
    path = cleaned;
  }
  std::string line;
  line.reserve(128 + path.size());
  char dur[32];
  std::snprintf(dur, sizeof dur, "%.3f", static_cast<double>(duration_us) / 1000.0);
  if (as_json) {
    line += "{\"time\":\"";
    append_time(line);
    line += "\",\"level\":\"info\",\"method\":\"";
    append_json_escaped(line, method);
    line += "\",\"path\":\"";
    append_json_escaped(line, path);
    line += "\",\"status\":" + std::to_string(status) + ",\"duration_ms\":" + dur +
            ",\"request_id\":\"";
    append_json_escaped(line, request_id);
    line += "\"}";
  } else {
    append_time(line);
    line += " info ";
    line += method;
    line += ' ';
    // Paths come from clients: keep control characters out of the log.
    for (char c : path)
      line += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
    line += ' ' + std::to_string(status) + ' ' + dur + "ms rid=";
    line += request_id;
  }
  emit(line);
}

} // namespace todo::log
