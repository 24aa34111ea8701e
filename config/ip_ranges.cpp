#include "config/ip_ranges.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace todo {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

} // namespace

std::optional<std::array<uint8_t, 16>> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > 45)
    return std::nullopt;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  std::array<uint8_t, 16> out{};
  in_addr v4{};
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

std::optional<ip_range> parse_ip_range(std::string_view text) {
  text = trim(text);
  auto slash = text.find('/');
  auto addr = parse_ip(text.substr(0, slash));
  if (!addr)
    return std::nullopt;
  bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
  ip_range r;
  r.bytes = *addr;
  r.prefix = 128;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3)
      return std::nullopt;
    int n = 0;
    for (char c : digits) {
      if (c < '0' || c > '9')
        return std::nullopt;
      n = n * 10 + (c - '0');
    }
    if (n > (v4 ? 32 : 128))
      return std::nullopt;
    r.prefix = v4 ? 96 + n : n;
  }
  return r;
}

bool in_ranges(const std::vector<ip_range>& ranges, const std::array<uint8_t, 16>& addr) {
  for (const auto& r : ranges) {
    int bits = r.prefix, i = 0;
    bool match = true;
    for (; bits >= 8; bits -= 8, ++i)
      if (addr[i] != r.bytes[i]) {
        match = false;
        break;
      }
    if (match && bits > 0) {
      auto mask = static_cast<uint8_t>(0xff << (8 - bits));
      match = (addr[i] & mask) == (r.bytes[i] & mask);
    }
    if (match)
      return true;
  }
  return false;
}

std::string client_address(const std::vector<ip_range>& trusted, const std::string& peer,
                           std::string_view forwarded_for) {
  if (trusted.empty() || forwarded_for.empty())
    return peer;
  auto peer_addr = parse_ip(peer);
  if (!peer_addr || !in_ranges(trusted, *peer_addr))
    return peer; // anyone else could have written the header
  std::string_view last_trusted = peer;
  while (!forwarded_for.empty()) {
    auto comma = forwarded_for.rfind(',');
    auto hop = trim(comma == std::string_view::npos ? forwarded_for
                                                    : forwarded_for.substr(comma + 1));
    forwarded_for = comma == std::string_view::npos ? std::string_view{}
                                                    : forwarded_for.substr(0, comma);
    auto addr = parse_ip(hop);
    if (!addr)
      break; // not an address: nothing left of it can be believed
    if (!in_ranges(trusted, *addr))
      return std::string{hop};
    last_trusted = hop;
  }
  return std::string{last_trusted};
}

} // namespace todo
