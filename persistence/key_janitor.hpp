#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace todo::db {

/// Deletes expired Idempotency-Keys in the background, in small batches (500 rows, oldest
/// first, skipping rows a writer holds), every `every`. Runs on a thread of its own with its
/// own connection, opened for each pass; a pass that fails is retried at the next one. Expiry
/// itself does not wait for it: a write claims an expired key as if it were absent.
class key_janitor {
public:
  key_janitor(std::string conninfo, int64_t ttl_s, std::chrono::milliseconds every);
  ~key_janitor();

  key_janitor(const key_janitor&) = delete;
  key_janitor& operator=(const key_janitor&) = delete;

private:
  void run();
  bool wait(std::chrono::milliseconds d); // false once stopping

  std::string conninfo_;
  int64_t ttl_s_;
  std::chrono::milliseconds every_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

} // namespace todo::db
