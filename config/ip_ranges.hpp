#pragma once
// TRUSTED_PROXIES: which peers may tell us the client's address (X-Forwarded-For).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace todo {

/// One address block; IPv4 is kept as IPv4-mapped IPv6 so that both families compare alike.
struct ip_range {
  std::array<uint8_t, 16> bytes{};
  int prefix = 128; // leading bits that must match
};

/// Parses "203.0.113.7", "10.0.0.0/8", "::1" or "fd00::/8"; nullopt when it is none of them.
std::optional<ip_range> parse_ip_range(std::string_view text);

/// Parses one address (no prefix); nullopt when `text` is not an IPv4 or IPv6 address.
std::optional<std::array<uint8_t, 16>> parse_ip(std::string_view text);

/// True when `addr` lies in one of `ranges`.
bool in_ranges(const std::vector<ip_range>& ranges, const std::array<uint8_t, 16>& addr);

/// The client of a request that arrived from `peer` (an address, as text) with the given
/// X-Forwarded-For value (empty: none). Only a trusted peer is believed: the list is read from
/// its right end (the hop nearest to us), skipping trusted proxies; the first other address is
/// the client. Anything unparsable stops the walk at the last address we could trust.
std::string client_address(const std::vector<ip_range>& trusted, const std::string& peer,
                           std::string_view forwarded_for);

} // namespace todo
