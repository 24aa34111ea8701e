#include "http/metrics.hpp"

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <sys/resource.h>
#include <unistd.h>

#include "http/router.hpp"
#include "http/server.hpp"

#ifndef TODO_VERSION
#define TODO_VERSION "unknown"
#endif

namespace todo::http {

extern const char build_commit[]; // generated at build time (config/build_info.cmake)

namespace {

constexpr std::string_view method_names[] = {"GET",   "HEAD",   "POST",    "PUT",
                                             "PATCH", "DELETE", "OPTIONS", "other"};

// The `detail` of each 401 (jwt.cpp's failure texts and the handler's) and its label.
constexpr std::pair<std::string_view, std::string_view> reason_names[] = {
  {"Not authenticated", "missing"},
  {"Invalid token", "malformed"},
  {"Token too large", "too_large"},
  {"Token algorithm not allowed", "algorithm"},
  {"Unknown token signing key", "unknown_key"},
  {"Unsupported critical token header", "crit"},
  {"Invalid token signature", "signature"},
  {"Token expired", "expired"},
  {"Token not yet valid", "not_yet_valid"},
  {"Token issued in the future", "issued_in_future"},
  {"Token has no expiry", "no_exp"},
  {"Invalid token subject", "subject"},
  {"Invalid token issuer", "issuer"},
  {"Invalid token audience", "audience"},
  {"", "other"},
};
static_assert(std::size(reason_names) == http_metrics::reasons);

constexpr double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,    10};

size_t method_index(std::string_view m) {
  for (size_t i = 0; i + 1 < std::size(method_names); ++i)
    if (m == method_names[i])
      return i;
  return std::size(method_names) - 1;
}

std::string_view route_label(size_t i) {
  return i < known_routes().size() ? known_routes()[i].path : std::string_view{"unmatched"};
}

const auto process_start = std::time(nullptr);

void line(std::string& out, std::string_view name, std::string_view labels, double v) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, " %.17g\n", v);
  out += buf;
}

void head(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

template <size_t N>
void histogram_lines(std::string& out, std::string_view name, std::string labels,
                     const metrics::histogram<N>& h) {
  uint64_t cumulative = 0;
  auto sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i <= N; ++i) {
    cumulative += h.buckets[i].load(std::memory_order_relaxed);
    char le[32];
    if (i < N)
      std::snprintf(le, sizeof le, "%g", h.bounds[i]);
    else
      std::snprintf(le, sizeof le, "+Inf");
    line(out, std::string{name} + "_bucket", labels + sep + "le=\"" + le + "\"",
         static_cast<double>(cumulative));
  }
  line(out, std::string{name} + "_sum", labels,
       static_cast<double>(h.sum_micro.load(std::memory_order_relaxed)) / 1e6);
  line(out, std::string{name} + "_count", labels, static_cast<double>(cumulative));
}

double read(const std::atomic<int64_t>& g) {
  return static_cast<double>(g.load(std::memory_order_relaxed));
}
double read(const std::atomic<uint64_t>& c) {
  return static_cast<double>(c.load(std::memory_order_relaxed));
}

void process_lines(std::string& out) {
  long page = ::sysconf(_SC_PAGESIZE);
  unsigned long vm = 0, rss = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%lu %lu", &vm, &rss) != 2)
      vm = rss = 0;
    std::fclose(f);
  }
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  size_t fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++fds;
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  head(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.");
  line(out, "process_cpu_seconds_total", "", cpu);
  head(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  line(out, "process_resident_memory_bytes", "", static_cast<double>(rss) * page);
  head(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  line(out, "process_virtual_memory_bytes", "", static_cast<double>(vm) * page);
  head(out, "process_open_fds", "gauge", "Number of open file descriptors.");
  line(out, "process_open_fds", "", static_cast<double>(fds));
  head(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
  line(out, "process_max_fds", "", static_cast<double>(lim.rlim_cur));
  head(out, "process_start_time_seconds", "gauge",
       "Start time of the process since the Unix epoch, in seconds.");
  line(out, "process_start_time_seconds", "", static_cast<double>(process_start));
}

} // namespace

std::string_view build_version() {
  return TODO_VERSION;
}

std::string_view build_commit_id() {
  return build_commit;
}

http_metrics::http_metrics() {
  for (auto& h : latency_)
    std::copy(std::begin(latency_bounds), std::end(latency_bounds), h.bounds.begin());
}

void http_metrics::observe(int route, std::string_view method, unsigned status,
                           int64_t micros) const {
  size_t r = route >= 0 && static_cast<size_t>(route) < routes - 1 ? static_cast<size_t>(route)
                                                                    : routes - 1;
  size_t s = status >= 100 && status <= 599 ? status - 100 : 500 - 100;
  requests_[(r * methods + method_index(method)) * statuses + s].fetch_add(
    1, std::memory_order_relaxed);
  latency_[r].observe(static_cast<double>(micros) / 1e6);
}

void http_metrics::auth_failure(std::string_view reason) const {
  size_t i = 0;
  while (i + 1 < reasons && reason_names[i].first != reason)
    ++i;
  auth_failures_[i].fetch_add(1, std::memory_order_relaxed);
}

std::string http_metrics::render(const server_context& ctx) const {
  std::string out;
  out.reserve(16384);
  head(out, "http_requests_total", "counter",
       "HTTP requests answered, by method, route template and status.");
  for (size_t r = 0; r < routes; ++r)
    for (size_t m = 0; m < methods; ++m)
      for (size_t s = 0; s < statuses; ++s) {
        auto n = requests_[(r * methods + m) * statuses + s].load(std::memory_order_relaxed);
        if (n == 0)
          continue;
        std::string labels = "method=\"" + std::string{method_names[m]} + "\",route=\"" +
                             std::string{route_label(r)} + "\",status=\"" +
                             std::to_string(s + 100) + "\"";
        line(out, "http_requests_total", labels, static_cast<double>(n));
      }
  head(out, "http_request_duration_seconds", "histogram",
       "Time from a request's last byte read to its response queued, by route template.");
  for (size_t r = 0; r < routes; ++r) {
    if (latency_[r].buckets.back().load(std::memory_order_relaxed) == 0) {
      bool any = false;
      for (const auto& b : latency_[r].buckets)
        any = any || b.load(std::memory_order_relaxed) != 0;
      if (!any)
        continue;
    }
    histogram_lines(out, "http_request_duration_seconds",
                    "route=\"" + std::string{route_label(r)} + "\"", latency_[r]);
  }
  head(out, "http_requests_in_flight", "gauge", "Requests handed to the actors, not yet answered.");
  line(out, "http_requests_in_flight", "", static_cast<double>(ctx.in_flight.load()));
  head(out, "http_open_connections", "gauge", "Open client connections.");
  line(out, "http_open_connections", "", static_cast<double>(ctx.connections.load()));
  head(out, "todo_sse_streams", "gauge", "Open live-update streams (GET /api/tasks/events).");
  line(out, "todo_sse_streams", "", static_cast<double>(ctx.hub ? ctx.hub->streams() : 0));
  head(out, "todo_sse_events_total", "counter",
       "Live-update events: published (once per change of a followed user), sent (once per "
       "stream it reached).");
  line(out, "todo_sse_events_total", "kind=\"published\"",
       static_cast<double>(ctx.hub ? ctx.hub->events_published() : 0));
  line(out, "todo_sse_events_total", "kind=\"sent\"", static_cast<double>(ctx.sse_sent.load()));
  head(out, "todo_sse_disconnects_total", "counter",
       "Live-update streams the server ended, by reason (slow_reader: its send queue was full).");
  line(out, "todo_sse_disconnects_total", "reason=\"slow_reader\"",
       static_cast<double>(ctx.sse_slow_readers.load()));
  line(out, "todo_sse_disconnects_total", "reason=\"reauth\"",
       static_cast<double>(ctx.sse_reauth.load()));
  head(out, "todo_auth_failures_total", "counter", "Requests answered 401, by reason.");
  for (size_t i = 0; i < reasons; ++i)
    line(out, "todo_auth_failures_total",
         "reason=\"" + std::string{reason_names[i].second} + "\"", read(auth_failures_[i]));

  const auto& a = metrics::actors();
  head(out, "todo_task_managers", "gauge", "TaskManager actors alive (one per active user).");
  line(out, "todo_task_managers", "", read(a.managers));
  head(out, "todo_cached_tasks", "gauge", "Tasks held in the TaskManagers' caches.");
  line(out, "todo_cached_tasks", "", read(a.cached_tasks));
  head(out, "todo_cache_bytes", "gauge", "Estimated heap of those caches (bounded by CACHE_MAX_MB).");
  line(out, "todo_cache_bytes", "", read(a.cache_bytes));
  head(out, "todo_queue_depth", "gauge",
       "Work waiting: requests at users' TaskManagers, jobs for a DB worker.");
  line(out, "todo_queue_depth", "queue=\"user\"", read(a.user_queue));
  line(out, "todo_queue_depth", "queue=\"db\"", read(a.db_queue));
  head(out, "todo_db_workers", "gauge", "DB workers (one PostgreSQL connection each), by state.");
  auto busy = a.db_busy.load(std::memory_order_relaxed);
  line(out, "todo_db_workers", "state=\"busy\"", static_cast<double>(busy));
  line(out, "todo_db_workers", "state=\"idle\"",
       static_cast<double>(a.db_workers.load(std::memory_order_relaxed) - busy));
  head(out, "todo_db_commit_statements", "histogram",
       "Mutations per database commit (group commit batch size).");
  histogram_lines(out, "todo_db_commit_statements", "", a.batch_size);
  head(out, "todo_db_errors_total", "counter",
       "Database calls that failed: unavailable (no connection, timeout) or other.");
  line(out, "todo_db_errors_total", "kind=\"unavailable\"", read(a.db_errors_unavailable));
  line(out, "todo_db_errors_total", "kind=\"other\"", read(a.db_errors_other));
  head(out, "todo_cache_loads_total", "counter",
       "Users' tasks loaded from the database into their TaskManager's cache.");
  line(out, "todo_cache_loads_total", "", read(a.cache_loads));
  head(out, "todo_cache_changes_total", "counter",
       "Committed changes from the change feed, by what they did to the caches: applied in "
       "place, skipped (already held, or a newer copy), or dropped a whole cache.");
  line(out, "todo_cache_changes_total", "result=\"applied\"", read(a.cache_changes_applied));
  line(out, "todo_cache_changes_total", "result=\"skipped\"", read(a.cache_changes_skipped));
  line(out, "todo_cache_changes_total", "result=\"dropped\"", read(a.cache_changes_dropped));
  head(out, "todo_token_cache_requests_total", "counter",
       "Verified-token cache look-ups, by cache (courier, auth) and result.");
  line(out, "todo_token_cache_requests_total", "cache=\"courier\",result=\"hit\"",
       read(a.token_courier_hits));
  line(out, "todo_token_cache_requests_total", "cache=\"courier\",result=\"miss\"",
       read(a.token_courier_misses));
  line(out, "todo_token_cache_requests_total", "cache=\"auth\",result=\"hit\"",
       read(a.token_auth_hits));
  line(out, "todo_token_cache_requests_total", "cache=\"auth\",result=\"miss\"",
       read(a.token_auth_misses));
  head(out, "todo_jwks_fetches_total", "counter", "JWKS fetches, by result.");
  line(out, "todo_jwks_fetches_total", "result=\"ok\"", read(a.jwks_fetch_ok));
  line(out, "todo_jwks_fetches_total", "result=\"error\"", read(a.jwks_fetch_error));
  process_lines(out);
  head(out, "todo_api_build_info", "gauge", "Always 1; the labels say which build runs.");
  line(out, "todo_api_build_info",
       std::string{"version=\""} + TODO_VERSION + "\",commit=\"" + build_commit + "\"", 1);
  return out;
}

} // namespace todo::http
