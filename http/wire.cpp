#include "http/wire.hpp"

#include <charconv>

namespace todo::http {

void append_head(std::string& out, const response& res) {
  auto reason = res.reason();
  // Status line. The parser accepts HTTP/1.0 and 1.1 only, and a response carries the
  // request's version: the major digit is always 1, as in Beast's writer.
  out += "HTTP/1.";
  out += static_cast<char>('0' + res.version() % 10);
  out += ' ';
  char digits[10];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, res.result_int());
  (void)ec; // an unsigned always fits in ten digits
  out.append(digits, end);
  out += ' ';
  out.append(reason.data(), reason.size());
  out += "\r\n";

  for (const auto& f : res) {
    auto name = f.name_string();
    auto value = f.value();
    out.append(name.data(), name.size());
    out += ": ";
    out.append(value.data(), value.size());
    out += "\r\n";
  }
  out += "\r\n";
}

} // namespace todo::http
