#include "persistence/conninfo.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace todo::db {

std::string with_timeouts(const std::string& conninfo, std::chrono::nanoseconds timeout) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
  auto secs = std::max<long long>(1, (ms + 999) / 1000);
  // A peer that vanishes without closing (a network black hole) must not pin a worker: TCP
  // keepalives and tcp_user_timeout make libpq notice. Settings the URL has win.
  std::vector<std::pair<std::string, std::string>> params{
    {"connect_timeout", std::to_string(secs)},
    {"keepalives", "1"},
    {"keepalives_idle", "10"},
    {"keepalives_interval", "5"},
    {"keepalives_count", "3"},
    {"tcp_user_timeout", std::to_string(std::max<long long>(5000, 2 * ms))},
  };
  bool url = conninfo.rfind("postgres://", 0) == 0 || conninfo.rfind("postgresql://", 0) == 0;
  std::string out = conninfo;
  for (const auto& [key, value] : params) {
    if (conninfo.find(key + "=") != std::string::npos)
      continue;
    if (url)
      out += (out.find('?') == std::string::npos ? "?" : "&") + key + "=" + value;
    else
      out += (out.empty() ? "" : " ") + key + "=" + value;
  }
  return out;
}

} // namespace todo::db
