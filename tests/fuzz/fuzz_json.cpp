// libFuzzer target: raw bytes -> every body/query validator; whatever a validator accepts must
// serialize back to JSON that parses and carries the same title (round-trip oracle).

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <boost/json.hpp>

#include "actors/model/task_json.hpp"
#include "http/json_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  (void) todo::http::parse_query(in);
  (void) todo::http::parse_task_id(in);
  (void) todo::http::parse_complete(in);
  auto upd = todo::http::parse_update(in);
  if (!upd && upd.error_body.empty())
    std::abort(); // a rejection must say why
  auto made = todo::http::parse_create(in);
  if (!made) {
    if (made.error_body.empty() || boost::json::parse(made.error_body).as_object().empty())
      std::abort();
    return 0;
  }
  todo::task t;
  t.id = 1;
  t.title = made.value->title.value_or("");
  t.description = made.value->description;
  std::string out;
  todo::write_task(out, t);
  auto back = boost::json::parse(out);
  if (back.at("title").as_string() != t.title)
    std::abort();
  return 0;
}
