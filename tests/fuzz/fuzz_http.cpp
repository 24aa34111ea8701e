// libFuzzer target: raw bytes -> Beast request parser (with the server's limits) -> router ->
// path, query and body validation. No network. Any crash, leak or UB is a finding.

#include <cstddef>
#include <cstdint>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "http/json_codec.hpp"
#include "http/router.hpp"

namespace bhttp = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(8192);
  parser.body_limit(65536);
  parser.eager(true);
  boost::beast::error_code ec;
  boost::asio::const_buffer buf{data, size};
  while (buf.size() > 0 && !parser.is_done()) {
    auto n = parser.put(buf, ec);
    if (ec == bhttp::error::need_more) {
      ec = {};
      break;
    }
    if (ec || n == 0)
      break;
    buf += n;
  }
  if (ec || !parser.is_done())
    return 0;
  auto req = parser.release();
  std::string_view target = req.target();
  auto q = target.find('?');
  auto path = target.substr(0, q);
  auto query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  auto r = todo::http::route(req.method_string(), path);
  if (r.result != todo::http::route_result::outcome::ok)
    return 0;
  if (!r.id.empty())
    (void) todo::http::parse_task_id(r.id);
  switch (r.act) {
    case todo::http::action::list:
      (void) todo::http::parse_query(query);
      break;
    case todo::http::action::create:
      (void) todo::http::parse_create(req.body());
      break;
    case todo::http::action::update:
      (void) todo::http::parse_update(req.body());
      break;
    case todo::http::action::complete:
      (void) todo::http::parse_complete(req.body());
      break;
    default:
      break;
  }
  return 0;
}
