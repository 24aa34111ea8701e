#include "actors/model/task_json.hpp"

#include <charconv>
#include <cstdio>

#include "config/text.hpp"

namespace todo {

using text::append_int;
using text::append_json_escaped;

namespace {

/// Writes `x` (0 <= x < 10^width) as exactly `width` digits ending just before `end`.
void put_digits(char* end, int64_t x, int width) {
  for (int i = 0; i < width; ++i) {
    *--end = static_cast<char>('0' + x % 10);
    x /= 10;
  }
}

/// Appends a timestamp such as 2026-11-24T03:10:00.123456Z.
void append_timestamp(std::string& out, int64_t micros) {
  int64_t secs = micros / 1'000'000;
  int64_t frac = micros % 1'000'000;
  if (frac < 0) { // floor division, so pre-1970 instants count forward from a whole second
    frac += 1'000'000;
    --secs;
  }
  int64_t days = secs / 86'400;
  int64_t sod = secs % 86'400;
  if (sod < 0) {
    sod += 86'400;
    --days;
  }
  // Howard Hinnant's civil_from_days.
  int64_t z = days + 719'468;
  int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
  int64_t doe = z - era * 146'097;
  int64_t yoe = (doe - doe / 1'460 + doe / 36'524 - doe / 146'096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t day = doy - (153 * mp + 2) / 5 + 1;
  int64_t month = mp < 10 ? mp + 3 : mp - 9;
  int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year >= 0 && year <= 9999) {
    char y[4];
    put_digits(y + 4, year, 4);
    out.append(y, 4);
  } else {
    append_int(out, year); // outside RFC 3339's range; never produced by PostgreSQL data
  }
  char b[] = "-MM-DDThh:mm:ss.uuuuuuZ";
  put_digits(b + 3, month, 2);
  put_digits(b + 6, day, 2);
  put_digits(b + 9, sod / 3600, 2);
  put_digits(b + 12, sod / 60 % 60, 2);
  put_digits(b + 15, sod % 60, 2);
  put_digits(b + 22, frac, 6);
  out.append(b, sizeof b - 1);
}

} // namespace

void write_task(std::string& out, const task& t) {
  out.reserve(out.size() + 160 + t.title.size() + (t.description ? t.description->size() : 0));
  out += "{\"id\":";
  append_int(out, t.id);
  out += ",\"title\":\"";
  append_json_escaped(out, t.title);
  if (t.description) {
    out += "\",\"description\":\"";
    append_json_escaped(out, *t.description);
    out += '"';
  } else {
    out += "\",\"description\":null";
  }
  out += t.completed ? ",\"completed\":true" : ",\"completed\":false";
  out += ",\"created_at\":\"";
  append_timestamp(out, t.created_us);
  out += "\",\"updated_at\":\"";
  append_timestamp(out, t.updated_us);
  out += "\"}";
}

void write_tasks(std::string& out, const std::vector<task>& ts) {
  out += '[';
  for (std::size_t i = 0; i < ts.size(); ++i) {
    if (i > 0)
      out += ',';
    write_task(out, ts[i]);
  }
  out += ']';
}

std::string format_timestamp(int64_t micros) {
  std::string out;
  append_timestamp(out, micros);
  return out;
}

/// Returns a strong ETag for a body: FNV-1a 64 of its bytes, quoted.
std::string etag_of(std::string_view body) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

/// Returns whether an If-None-Match value lists `tag` (weak comparison) or is "*".
bool etag_listed(std::string_view header, std::string_view tag, bool strong) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = text::trim(header.substr(0, comma));
    if (item == "*")
      return true;
    bool weak = item.size() > 2 && item[0] == 'W' && item[1] == '/';
    // Under the strong comparison (If-Match) a weak tag never matches.
    if (!(weak && strong) && (weak ? item.substr(2) : item) == tag)
      return true;
    if (comma == std::string_view::npos)
      break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

} // namespace todo
