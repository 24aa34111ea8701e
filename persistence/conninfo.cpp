#include "persistence/conninfo.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <utility>
#include <vector>

#include <libpq-fe.h>

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

namespace {

// Splits libpq's comma list of hosts or ports ("a,b,c"), keeping empty items.
std::vector<std::string> items_of(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto comma = list.find(',', start);
    out.push_back(list.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos)
      return out;
    start = comma + 1;
  }
}

} // namespace

std::optional<std::string> pooler_hint(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (!opts) {
    if (err)
      PQfreemem(err);
    return std::nullopt; // start-up names the problem (conninfo_problem)
  }
  std::string host, port;
  for (auto* o = opts; o->keyword; ++o) {
    if (!o->val)
      continue;
    if (std::string{o->keyword} == "host")
      host = o->val;
    else if (std::string{o->keyword} == "port")
      port = o->val;
  }
  PQconninfoFree(opts);
  // What libpq would use for what the string does not name.
  if (host.empty())
    if (const char* h = std::getenv("PGHOST"))
      host = h;
  if (port.empty())
    if (const char* p = std::getenv("PGPORT"))
      port = p;
  for (auto h : items_of(host)) {
    std::transform(h.begin(), h.end(), h.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (h.find("-pooler.") != std::string::npos)
      return "host " + h + " is a pooled endpoint (its name has -pooler., as Neon's have)";
  }
  for (const auto& p : items_of(port))
    if (p == "6432")
      return std::string{"port 6432 is PgBouncer's default"};
  return std::nullopt;
}

statement_mode choose_statement_mode(const std::string& setting, const std::string& conninfo) {
  const std::string unprepared =
    "unnamed statements, no session settings (statement_timeout belongs on the role: ALTER "
    "ROLE ... SET statement_timeout)";
  if (setting == "true")
    return {true, "DB_PREPARED=true: named prepared statements and session settings"};
  if (setting == "false")
    return {false, "DB_PREPARED=false: " + unprepared};
  if (auto hint = pooler_hint(conninfo))
    return {false, "DB_PREPARED=auto chose false, since DATABASE_URL looks like a pooler in "
                   "transaction mode (" + *hint + "): " + unprepared};
  return {true, "DB_PREPARED=auto chose true (named prepared statements): DATABASE_URL names "
                "no recognisable pooler (no host with -pooler., no port 6432); set "
                "DB_PREPARED=false behind PgBouncer in transaction mode"};
}

} // namespace todo::db
