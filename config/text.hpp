#pragma once
// Small text helpers every layer uses. Pure code.

#include <cstdint>
#include <string>
#include <string_view>

namespace todo::text {

/// Returns `s` without leading and trailing ASCII whitespace.
std::string_view trim(std::string_view s);

/// Returns whether `a` and `b` are equal ignoring ASCII letter case.
bool iequals(std::string_view a, std::string_view b);

/// Returns `s` with ASCII letters in lower case.
std::string lower(std::string_view s);

/// Returns the value of a hexadecimal digit, or -1 for anything else.
int hex_value(char c);

/// Percent-decodes `in` into `out` (RFC 3986 §2.1); returns false on a malformed escape.
bool percent_decode(std::string_view in, std::string& out);

/// Returns `s` with every byte that is not part of well-formed UTF-8 written as %XX, so that
/// a log line stays valid UTF-8 (and valid JSON) whatever a client sent.
std::string valid_utf8(std::string_view s);

/// Appends `s` as the inside of a JSON string: escapes quotes, backslash and control chars.
void append_json_escaped(std::string& out, std::string_view s);

/// Appends the decimal form of `x`.
void append_int(std::string& out, int64_t x);

} // namespace todo::text
