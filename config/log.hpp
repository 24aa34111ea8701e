#pragma once
// One-line logging to stderr. Callers never pass tokens, secrets or connection strings.

#include <cstdint>
#include <string_view>

namespace todo::log {

enum class level : uint8_t { debug, info, warn, error };

/// Returns the level named by LOG_LEVEL's validated value (debug, info, warn, error).
level parse_level(std::string_view name);

/// Sets the lowest level written and whether lines are JSON objects or plain text.
void configure(level min, bool json);

/// Returns whether a line at `lvl` would be written.
bool enabled(level lvl);

/// Writes one line at `lvl`.
void write(level lvl, std::string_view msg);

inline void debug(std::string_view m) { write(level::debug, m); }
inline void info(std::string_view m) { write(level::info, m); }
inline void warn(std::string_view m) { write(level::warn, m); }
inline void error(std::string_view m) { write(level::error, m); }

/// Starts the background writer: from now on a line is copied into a per-thread buffer (no
/// lock, allocation or syscall on the caller's thread) and a writer thread writes them to
/// `fd` in batches every few milliseconds. When `fd` does not keep up, lines are dropped and
/// counted (and a warning line says how many) rather than stalling the caller. Without it,
/// each line is one write(2) on the caller's thread.
void start_writer(int fd = 2);

/// Writes every line still buffered and stops the writer (also registered with atexit).
void stop_writer();

/// Lines dropped because the writer's buffers were full.
uint64_t dropped_lines();

/// Writes the access-log line of one request (at info), with the W3C trace id when the client
/// sent a valid `traceparent` (empty: none) and the client's address (empty: unknown).
void request(std::string_view method, std::string_view path, unsigned status,
             int64_t duration_us, std::string_view request_id, std::string_view trace_id = {},
             std::string_view client = {});

} // namespace todo::log
