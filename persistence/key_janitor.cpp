#include "persistence/key_janitor.hpp"

#include <pqxx/pqxx>

#include "config/log.hpp"

namespace todo::db {

namespace {

constexpr int batch_rows = 500;

uint64_t delete_expired(pqxx::connection& conn, int64_t ttl_s, int batch) {
  pqxx::nontransaction tx{conn};
  auto r = tx.exec(
    "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(secs => " +
    std::to_string(ttl_s) + ") ORDER BY created_at LIMIT " + std::to_string(batch) +
    " FOR UPDATE SKIP LOCKED))");
  return static_cast<uint64_t>(r.affected_rows());
}

} // namespace

key_janitor::key_janitor(std::string conninfo, int64_t ttl_s, std::chrono::milliseconds every)
  : conninfo_(std::move(conninfo)), ttl_s_(ttl_s), every_(every) {
  thread_ = std::thread([this] { run(); });
}

key_janitor::~key_janitor() {
  {
    std::lock_guard<std::mutex> lock{m_};
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

bool key_janitor::wait(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock{m_};
  return !cv_.wait_for(lock, d, [this] { return stop_; });
}

void key_janitor::run() {
  bool warned = false;
  while (wait(every_)) {
    try {
      pqxx::connection conn{conninfo_};
      // Small batches with a pause between them: never one long delete holding many rows.
      for (;;) {
        auto n = delete_expired(conn, ttl_s_, batch_rows);
        if (n < static_cast<uint64_t>(batch_rows) || !wait(std::chrono::milliseconds(20)))
          break;
      }
      warned = false;
    } catch (const std::exception&) {
      // libpq's message may quote the connection string: never log it.
      if (!warned)
        log::warn("purging expired Idempotency-Keys failed; retrying at the next pass");
      warned = true;
    }
  }
}

} // namespace todo::db
