#pragma once
// A bounded cache of verified tokens, so that a client's repeated requests skip the signature
// check. Pure code: no actors, no I/O, not thread-safe (the auth actor owns one).

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "actors/tokens/jwt.hpp"

namespace todo {

/// Maps SHA-256(token) to its verified claims. Holds at most `capacity` entries and evicts the
/// least recently used one; an entry expires at the token's `exp` or `max_ttl_seconds` after it
/// was stored, whichever comes first, so a rotated-out key stops working within that bound.
class token_cache {
public:
  /// With `hashed_keys` (the auth actor's cache) a token is kept only as its SHA-256; without
  /// (the couriers' caches, on the path of every request) the token itself is the key, which
  /// saves the digest per lookup (see README, "Authentication").
  explicit token_cache(size_t capacity, int64_t max_ttl_seconds = 300, bool hashed_keys = true);

  /// A live entry: the claims and when the entry expires (Unix seconds).
  struct hit {
    jwt::verified claims;
    int64_t expires_at;
  };

  /// Returns the entry stored for `token` if it is still live at `now` (Unix seconds).
  std::optional<hit> lookup(std::string_view token, int64_t now);

  /// As `lookup`, without copying the claims: the entry stays valid until the cache is next
  /// changed (insert, clear, or a lookup that finds an expired entry). Null when not live.
  const hit* peek(std::string_view token, int64_t now);

  /// Stores `claims` for `token` as verified at `now` and returns when the entry expires.
  /// Does nothing (and returns 0) when the capacity is zero or the token's exp is not after
  /// `now` (it was accepted within the leeway).
  int64_t insert(std::string_view token, const jwt::verified& claims, int64_t now);

  /// Drops every entry, e.g. after the key set changed.
  void clear();

  /// Returns the number of entries, live or not yet noticed to be expired.
  size_t size() const { return index_.size(); }

  size_t capacity() const { return capacity_; }

  /// Returns the raw 32-byte SHA-256 of `token`.
  static std::string digest(std::string_view token);

private:
  struct node {
    std::string digest; // the key (the index refers to these bytes: a list node never moves)
    hit entry;          // the claims, and when the entry expires: live while now < expires_at
  };
  using list_type = std::list<node>;

  std::string key_of(std::string_view token) const {
    return hashed_keys_ ? digest(token) : std::string{token};
  }

  size_t capacity_;
  int64_t max_ttl_;
  bool hashed_keys_;
  list_type lru_; // most recently used first
  // Keyed by views of the nodes' own keys, so that a lookup by the token itself (the
  // couriers' caches) needs no copy of it.
  std::unordered_map<std::string_view, list_type::iterator> index_;
};

} // namespace todo
