#include "actors/tokens/token_cache.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <openssl/evp.h>

namespace todo {

token_cache::token_cache(size_t capacity, int64_t max_ttl_seconds, bool hashed_keys)
  : capacity_(capacity), max_ttl_(std::max<int64_t>(max_ttl_seconds, 0)),
    hashed_keys_(hashed_keys) {
}

std::string token_cache::digest(std::string_view token) {
  // Fetched once: with EVP_sha256() OpenSSL 3 looks the implementation up on every call (a
  // lock and a hash lookup), which was a tenth of a cached GET's instructions.
  static EVP_MD* const sha256 = [] {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (!md)
      throw std::runtime_error("SHA-256 unavailable");
    return md;
  }();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(token.data(), token.size(), md, &len, sha256, nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::optional<token_cache::hit> token_cache::lookup(std::string_view token, int64_t now) {
  if (const auto* h = peek(token, now))
    return *h;
  return std::nullopt;
}

const token_cache::hit* token_cache::peek(std::string_view token, int64_t now) {
  if (index_.empty())
    return nullptr;
  auto i = hashed_keys_ ? index_.find(digest(token)) : index_.find(token);
  if (i == index_.end())
    return nullptr;
  auto pos = i->second;
  if (now >= pos->entry.expires_at) {
    index_.erase(i);
    lru_.erase(pos);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, pos);
  return &pos->entry;
}

int64_t token_cache::insert(std::string_view token, const jwt::verified& claims, int64_t now) {
  if (capacity_ == 0)
    return 0;
  constexpr auto max = std::numeric_limits<int64_t>::max();
  int64_t expires_at = now > max - max_ttl_ ? max : now + max_ttl_;
  if (claims.expires_at != 0)
    expires_at = std::min(expires_at, claims.expires_at);
  if (expires_at <= now)
    return 0;
  auto key = key_of(token);
  if (auto i = index_.find(key); i != index_.end()) {
    i->second->entry = hit{claims, expires_at};
    lru_.splice(lru_.begin(), lru_, i->second);
    return expires_at;
  }
  if (index_.size() >= capacity_) {
    index_.erase(std::string_view{lru_.back().digest});
    lru_.pop_back();
  }
  lru_.push_front(node{std::move(key), hit{claims, expires_at}});
  index_.emplace(std::string_view{lru_.front().digest}, lru_.begin());
  return expires_at;
}

void token_cache::clear() {
  index_.clear();
  lru_.clear();
}

} // namespace todo
