#include "persistence/startup_check.hpp"

#include <algorithm>
#include <cctype>
#include <memory>
#include <thread>
#include <vector>

#include <libpq-fe.h>

#include "config/log.hpp"
#include "config/text.hpp"
#include "persistence/conninfo.hpp"
#include "persistence/migrations.hpp"

namespace todo::db {

namespace {

using text::lower;

// Every spelling of the password that `conninfo` may hold, as written and as decoded; found
// without libpq, because the string may be one libpq cannot parse.
std::vector<std::string> password_spellings(const std::string& conninfo) {
  std::vector<std::string> out;
  auto scheme = conninfo.find("://");
  if (scheme != std::string::npos) {
    auto start = scheme + 3;
    auto at = conninfo.rfind('@');
    if (at != std::string::npos && at > start) {
      auto userinfo = conninfo.substr(start, at - start);
      auto colon = userinfo.find(':');
      if (colon != std::string::npos)
        out.push_back(userinfo.substr(colon + 1));
    }
  }
  // key=value strings, and URL query parameters (?password=...): the value after "password",
  // optional blanks and "=", quoted or up to the next blank or "&".
  auto low = lower(conninfo);
  for (auto pos = low.find("password"); pos != std::string::npos;
       pos = low.find("password", pos + 1)) {
    auto i = pos + 8;
    while (i < conninfo.size() && std::isspace(static_cast<unsigned char>(conninfo[i])))
      ++i;
    if (i >= conninfo.size() || conninfo[i] != '=')
      continue;
    ++i;
    while (i < conninfo.size() && std::isspace(static_cast<unsigned char>(conninfo[i])))
      ++i;
    std::string v;
    if (i < conninfo.size() && conninfo[i] == '\'') {
      for (++i; i < conninfo.size() && conninfo[i] != '\''; ++i) {
        if (conninfo[i] == '\\' && i + 1 < conninfo.size())
          ++i;
        v += conninfo[i];
      }
    } else {
      for (; i < conninfo.size() && !std::isspace(static_cast<unsigned char>(conninfo[i])) &&
             conninfo[i] != '&';
           ++i)
        v += conninfo[i];
    }
    out.push_back(v);
  }
  std::vector<std::string> all;
  for (const auto& p : out) {
    if (p.empty())
      continue;
    all.push_back(p);
    std::string decoded;
    if (text::percent_decode(p, decoded))
      all.push_back(decoded);
  }
  return all;
}

void replace_all(std::string& s, const std::string& what, const std::string& with) {
  for (auto pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + with.size()))
    s.replace(pos, what.size(), with);
}

} // namespace

std::string redact(const std::string& message, const std::string& conninfo) {
  std::string out;
  // One line: libpq ends with a newline and indents its hints with a tab.
  for (char c : message)
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  while (out.find("  ") != std::string::npos)
    replace_all(out, "  ", " ");
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  auto secrets = password_spellings(conninfo);
  // A quoted fragment that is part of the password (libpq quotes what it could not parse).
  std::string result;
  size_t i = 0;
  while (i < out.size()) {
    auto open = out.find('"', i);
    auto close = open == std::string::npos ? open : out.find('"', open + 1);
    if (close == std::string::npos) {
      result += out.substr(i);
      break;
    }
    auto inside = out.substr(open + 1, close - open - 1);
    bool secret = std::any_of(secrets.begin(), secrets.end(), [&](const std::string& p) {
      return !inside.empty() &&
             (p.find(inside) != std::string::npos || inside.find(p) != std::string::npos);
    });
    result += out.substr(i, open - i) + '"' + (secret ? "***" : inside) + '"';
    i = close + 1;
  }
  for (const auto& p : secrets)
    if (p.size() >= 3)
      replace_all(result, p, "***");
  return result;
}

std::optional<std::string> conninfo_problem(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts) {
    PQconninfoFree(opts);
    return std::nullopt;
  }
  std::string reason = err ? err : "cannot be parsed (out of memory)";
  if (err)
    PQfreemem(err);
  return redact(reason, conninfo);
}

bool is_transient(const std::string& libpq_message) {
  auto m = lower(libpq_message);
  static const char* const passing[] = {
    "connection refused",
    "timeout expired",
    "could not translate host name",
    "temporary failure in name resolution",
    "network is unreachable",
    "no route to host",
    "connection reset",
    "server closed the connection unexpectedly",
    "could not receive data from server",
    "could not send data to server",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "too many clients",
    "remaining connection slots are reserved",
  };
  for (const char* p : passing)
    if (m.find(p) != std::string::npos)
      return true;
  // A missing socket file: the local server has not created it yet. (A missing certificate
  // file is a mistake, not a wait.)
  return m.find("on socket") != std::string::npos &&
         m.find("no such file or directory") != std::string::npos;
}

probe_result probe(const std::string& conninfo) {
  if (auto problem = conninfo_problem(conninfo))
    return {probe_result::fatal, *problem};
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn{PQconnectdb(conninfo.c_str()), &PQfinish};
  if (!conn)
    return {probe_result::retry, "out of memory"};
  if (PQstatus(conn.get()) == CONNECTION_OK)
    return {probe_result::ok, {}};
  std::string message = PQerrorMessage(conn.get());
  auto reason = redact(message, conninfo);
  if (reason.empty())
    reason = "connection failed without a reason";
  return {is_transient(message) ? probe_result::retry : probe_result::fatal, reason};
}

probe_result wait_for_database(
  const std::string& conninfo, std::chrono::milliseconds wait,
  const std::function<void(const std::string&, std::chrono::milliseconds)>& on_retry) {
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    auto r = probe(conninfo);
    auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
    if (r.outcome != probe_result::retry)
      return r;
    if (spent >= wait) {
      r.outcome = probe_result::fatal;
      r.reason = "not reachable after " + std::to_string(spent.count()) + " ms (DB_CONNECT_WAIT_MS=" +
                 std::to_string(wait.count()) + "): " + r.reason;
      return r;
    }
    if (on_retry)
      on_retry(r.reason, spent);
    std::this_thread::sleep_for(std::min(backoff, wait - spent));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

std::optional<std::string> reach_database(const std::string& url, int64_t timeout_ms,
                                          int64_t connect_wait_ms, const std::string& what) {
  if (auto problem = conninfo_problem(url))
    return "cannot be parsed: " + *problem;
  auto conninfo = with_timeouts(url, std::chrono::milliseconds(timeout_ms));
  auto reached = wait_for_database(
    conninfo, std::chrono::milliseconds(connect_wait_ms),
    [connect_wait_ms, what](const std::string& reason, std::chrono::milliseconds spent) {
      log::warn(what + " not reachable yet (" + std::to_string(spent.count()) + " of " +
                std::to_string(connect_wait_ms) + " ms): " + reason + "; retrying");
    });
  if (reached.outcome != probe_result::ok)
    return reached.reason;
  return std::nullopt;
}

std::optional<std::string> prepare_database(const std::string& database_url, int64_t timeout_ms,
                                            int64_t connect_wait_ms) {
  if (auto problem = reach_database(database_url, timeout_ms, connect_wait_ms, "database"))
    return problem;
  auto conninfo = with_timeouts(database_url, std::chrono::milliseconds(timeout_ms));
  try {
    auto n = migrate(conninfo);
    log::info("schema up to date (" + std::to_string(n) + " migration(s) applied)");
    return std::nullopt;
  } catch (const std::exception& e) {
    return "cannot apply the schema migrations: " + redact(e.what(), database_url);
  }
}

} // namespace todo::db
