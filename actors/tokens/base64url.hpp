#pragma once
// Base64url (RFC 4648 §5) as JOSE uses it: no padding, nothing lenient.

#include <optional>
#include <string>
#include <string_view>

namespace todo::jwt {

/// Returns `bytes` in unpadded base64url (RFC 4648 §5).
std::string base64url_encode(std::string_view bytes);

/// Decodes strict unpadded base64url: only A-Z a-z 0-9 - _, no '=', no whitespace, no length
/// that is 1 mod 4, and unused trailing bits must be zero. Returns nullopt otherwise.
std::optional<std::string> base64url_decode(std::string_view text);

} // namespace todo::jwt
