#include "actors/model/stage_trace.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>

namespace todo::trace {

namespace {

std::atomic<bool> on{false};

// Log-linear buckets over microseconds: 8 sub-buckets per power of two (< 10% error).
constexpr int sub = 8;
constexpr int buckets = 40 * sub;

struct histogram {
  std::array<std::atomic<uint64_t>, buckets> n{};
  std::atomic<uint64_t> count{0};
  std::atomic<int64_t> max{0};
};

// One per stage difference, plus the whole request.
std::array<histogram, stage_count> hists;

int bucket_of(int64_t us) {
  if (us < sub)
    return static_cast<int>(us < 0 ? 0 : us);
  int log = 63 - __builtin_clzll(static_cast<uint64_t>(us)); // >= 3
  int frac = static_cast<int>((us >> (log - 3)) & (sub - 1));
  int b = (log - 2) * sub + frac;
  return b < buckets ? b : buckets - 1;
}

// The upper edge of bucket `b`, in microseconds.
int64_t upper_of(int b) {
  if (b < sub)
    return b;
  int log = b / sub + 2;
  int64_t frac = b % sub;
  return ((int64_t{sub} + frac + 1) << (log - 3)) - 1;
}

void add(histogram& h, int64_t us) {
  h.n[static_cast<size_t>(bucket_of(us))].fetch_add(1, std::memory_order_relaxed);
  h.count.fetch_add(1, std::memory_order_relaxed);
  auto m = h.max.load(std::memory_order_relaxed);
  while (us > m && !h.max.compare_exchange_weak(m, us, std::memory_order_relaxed)) {
  }
}

int64_t percentile(const histogram& h, double p) {
  auto total = h.count.load(std::memory_order_relaxed);
  if (total == 0)
    return 0;
  auto want = static_cast<uint64_t>(p * static_cast<double>(total) + 0.5);
  uint64_t seen = 0;
  for (int b = 0; b < buckets; ++b) {
    seen += h.n[static_cast<size_t>(b)].load(std::memory_order_relaxed);
    if (seen >= want && seen > 0)
      return upper_of(b);
  }
  return h.max.load(std::memory_order_relaxed);
}

const char* names[stage_count] = {
  "total (session to session)", "to a courier", "token check", "to the user's TaskManager",
  "to the DB pool", "waiting for a DB worker", "statement + commit", "back to the TaskManager",
  "back to the courier"};

} // namespace

void enable(bool value) {
  on.store(value, std::memory_order_relaxed);
}

bool enabled() {
  return on.load(std::memory_order_relaxed);
}

stamps_ptr start() {
  if (!enabled())
    return nullptr;
  auto s = std::make_shared<stamps>();
  mark(s, submitted);
  return s;
}

void mark(const stamps_ptr& s, stage st) {
  if (s)
    s->ns[st] = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now().time_since_epoch())
                  .count();
}

void record(const stamps& s) {
  // Stage i's histogram holds the time from the last stamped stage before i to i; slot 0
  // holds the whole request.
  int64_t last = s.ns[submitted];
  for (int i = 1; i < stage_count; ++i) {
    if (s.ns[static_cast<size_t>(i)] == 0)
      continue;
    add(hists[static_cast<size_t>(i)], (s.ns[static_cast<size_t>(i)] - last) / 1000);
    last = s.ns[static_cast<size_t>(i)];
  }
  add(hists[0], (last - s.ns[submitted]) / 1000);
}

std::vector<std::string> report() {
  std::vector<std::string> lines;
  char buf[200];
  std::snprintf(buf, sizeof buf, "%-28s %9s %9s %9s %9s %9s", "write stage (us)", "count", "p50",
                "p90", "p99", "max");
  lines.emplace_back(buf);
  for (int i = 1; i <= stage_count; ++i) {
    const auto& h = hists[static_cast<size_t>(i % stage_count)]; // the total comes last
    std::snprintf(buf, sizeof buf, "%-28s %9llu %9lld %9lld %9lld %9lld",
                  names[i % stage_count],
                  static_cast<unsigned long long>(h.count.load(std::memory_order_relaxed)),
                  static_cast<long long>(percentile(h, 0.5)),
                  static_cast<long long>(percentile(h, 0.9)),
                  static_cast<long long>(percentile(h, 0.99)),
                  static_cast<long long>(h.max.load(std::memory_order_relaxed)));
    lines.emplace_back(buf);
  }
  return lines;
}

} // namespace todo::trace
