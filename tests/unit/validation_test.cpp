#include "actors/model/task_json.hpp"
#include "http/json_codec.hpp"
#include "config/text.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

using namespace todo;
using namespace todo::http;

namespace {

/// One expected error entry: type and the loc array as compact JSON.
using entry = std::pair<std::string, std::string>;

/// Returns the (type, loc) pairs of a {"detail":[...]} body, checking each entry's shape.
std::vector<entry> errors_of(const std::string& body) {
  std::vector<entry> out;
  auto doc = boost::json::parse(body);
  for (const auto& e : doc.at("detail").as_array()) {
    const auto& obj = e.as_object();
    CHECK(obj.size() == 3);
    CHECK(obj.at("msg").is_string());
    out.emplace_back(std::string(obj.at("type").as_string()),
                     boost::json::serialize(obj.at("loc")));
  }
  return out;
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out += s;
  return out;
}

const std::string emoji = "\xF0\x9F\x98\x80"; // U+1F600, four bytes, one code point

/// A body case: the input and the errors expected (none means it must parse).
struct body_case {
  std::string body;
  std::vector<entry> errors;
};

const entry title_missing{"missing", R"(["body","title"])"};
const entry title_type{"string_type", R"(["body","title"])"};
const entry title_short{"string_too_short", R"(["body","title"])"};
const entry title_long{"string_too_long", R"(["body","title"])"};
const entry title_value{"value_error", R"(["body","title"])"};
const entry desc_type{"string_type", R"(["body","description"])"};
const entry desc_long{"string_too_long", R"(["body","description"])"};
const entry desc_value{"value_error", R"(["body","description"])"};
const entry completed_type{"bool_type", R"(["body","completed"])"};
const entry body_missing{"missing", R"(["body"])"};
const entry not_object{"model_attributes_type", R"(["body"])"};

entry json_invalid_at(int offset) {
  return {"json_invalid", "[\"body\"," + std::to_string(offset) + "]"};
}

template <class Parse>
void check_cases(Parse parse, const std::vector<body_case>& cases) {
  for (const auto& c : cases) {
    CAPTURE(c.body);
    auto r = parse(c.body);
    if (c.errors.empty()) {
      CHECK(r);
      CHECK(r.error_body.empty());
    } else {
      REQUIRE_FALSE(r);
      CHECK(errors_of(r.error_body) == c.errors);
    }
  }
}

} // namespace

TEST_CASE("TaskCreate bodies are validated like pydantic would") {
  std::vector<body_case> cases = {
    {R"({"title":"Buy milk"})", {}},
    {R"({"title":"Buy milk","description":null})", {}},
    {R"({"title":"Buy milk","description":""})", {}},
    {R"({"title":" x ","description":"d"})", {}},
    {R"({"title":"x","completed":"not a bool","extra":[1,{"a":null}]})", {}},
    {R"({"title":"x","extra":1e999})", {}},
    {" \n{\"title\":\"x\"}\t ", {}},
    {"{\"title\":\"" + repeat("a", 200) + "\"}", {}},
    {"{\"title\":\"" + repeat(emoji, 200) + "\"}", {}},
    {"{\"title\":\"x\",\"description\":\"" + repeat("d", 1000) + "\"}", {}},
    {"{\"title\":\"x\",\"description\":\"" + repeat("\xC3\xA9", 1000) + "\"}", {}},
    // title
    {R"({})", {title_missing}},
    {R"({"description":"d"})", {title_missing}},
    {R"({"Title":"x"})", {title_missing}},
    {R"({"title":null})", {title_type}},
    {R"({"title":5})", {title_type}},
    {R"({"title":true})", {title_type}},
    {R"({"title":["a"]})", {title_type}},
    {R"({"title":{"a":1}})", {title_type}},
    {R"({"title":123456789012345678901234567890})", {title_type}},
    {R"({"title":""})", {title_short}},
    {"{\"title\":\"" + repeat("a", 201) + "\"}", {title_long}},
    {"{\"title\":\"" + repeat(emoji, 201) + "\"}", {title_long}},
    {"{\"title\":\"" + repeat(" ", 201) + "\"}", {title_long}},
    {R"({"title":" "})", {title_value}},
    {R"({"title":"\t\n\r\f\u000b "})", {title_value}},
    {R"({"title":"\u00a0\u3000\u2003\u200a\u2028\u2029\u1680\u202f\u205f\ufeff"})",
     {title_value}},
    {"{\"title\":\"\xC2\xA0\xE3\x80\x80\"}", {title_value}},
    {R"({"title":"\u0000"})", {title_value}},
    {R"({"title":"a\u0000b"})", {title_value}},
    {R"({"title":"   \u0000"})", {title_value}},
    // description
    {R"({"title":"x","description":5})", {desc_type}},
    {R"({"title":"x","description":false})", {desc_type}},
    {R"({"title":"x","description":["d"]})", {desc_type}},
    {"{\"title\":\"x\",\"description\":\"" + repeat("d", 1001) + "\"}", {desc_long}},
    {"{\"title\":\"x\",\"description\":\"" + repeat(emoji, 1001) + "\"}", {desc_long}},
    {R"({"title":"x","description":"a\u0000"})", {desc_value}},
    // every field error is reported, in field order
    {R"({"description":7,"title":""})", {title_short, desc_type}},
    {R"({"description":7})", {title_missing, desc_type}},
    // not an object
    {"", {body_missing}},
    {"null", {body_missing}},
    {"[]", {not_object}},
    {R"(["title"])", {not_object}},
    {R"("title")", {not_object}},
    {"42", {not_object}},
    {"true", {not_object}},
    // malformed JSON: loc names the byte offset of the error
    {"   ", {json_invalid_at(3)}},
    {"{", {json_invalid_at(1)}},
    {R"({"title":"x",})", {json_invalid_at(13)}},
    {R"({"title":"x"} x)", {json_invalid_at(14)}},
    {R"({"title":"x"}{})", {json_invalid_at(13)}},
    {R"({'title':'x'})", {json_invalid_at(1)}},
    {R"({"title":"x"/* c */})", {json_invalid_at(12)}},
    {R"({"title":"x","n":NaN})", {json_invalid_at(17)}},
    {"\xEF\xBB\xBF{\"title\":\"x\"}", {json_invalid_at(0)}},
    {"{\"title\":\"a\nb\"}", {json_invalid_at(11)}},
    // invalid UTF-8 (stray continuation, overlong, surrogate, > U+10FFFF, truncated)
    {"{\"title\":\"\xFF\"}", {json_invalid_at(10)}},
    {"{\"title\":\"\x80\"}", {json_invalid_at(10)}},
    {"{\"title\":\"\xC0\x80\"}", {json_invalid_at(10)}},
    {"{\"title\":\"\xED\xA0\x80\"}", {json_invalid_at(10)}},
    {"{\"title\":\"\xF4\x90\x80\x80\"}", {json_invalid_at(10)}},
    {"{\"title\":\"\xE2\x82\"}", {json_invalid_at(10)}},
    {"{\"title\":\"x\",\"junk\":\"\xFF\"}", {json_invalid_at(21)}},
    {"{\"ti\xFFtle\":\"x\"}", {json_invalid_at(4)}},
    // lone UTF-16 surrogates cannot become UTF-8
    {R"({"title":"\ud800"})", {json_invalid_at(16)}},
    {R"({"title":"\udc00"})", {json_invalid_at(16)}},
  };
  check_cases(parse_create, cases);
}

TEST_CASE("a valid TaskCreate yields the title and description") {
  auto r = parse_create(R"({"title":"Buy \"milk\"","description":"2 l","completed":true})");
  REQUIRE(r);
  CHECK(r.value->title == "Buy \"milk\"");
  CHECK(r.value->set_description);
  CHECK(r.value->description == "2 l");
  CHECK_FALSE(r.value->completed); // TaskCreate has no completed field

  auto bare = parse_create(R"({"title":"\ud83d\ude00"})");
  REQUIRE(bare);
  CHECK(bare.value->title == emoji);
  CHECK_FALSE(bare.value->set_description);
  CHECK_FALSE(bare.value->description);

  auto null_desc = parse_create(R"({"title":"x","description":null})");
  REQUIRE(null_desc);
  CHECK(null_desc.value->set_description);
  CHECK_FALSE(null_desc.value->description);
}

TEST_CASE("a duplicate key takes its last value") {
  auto r = parse_create(R"({"title":"","title":"second"})");
  REQUIRE(r);
  CHECK(r.value->title == "second");
  auto bad = parse_create(R"({"title":"first","title":""})");
  REQUIRE_FALSE(bad);
  CHECK(errors_of(bad.error_body) == std::vector<entry>{title_short});
  auto upd = parse_update(R"({"completed":"x","completed":false})");
  REQUIRE(upd);
  CHECK(upd.value->completed == false);
}

TEST_CASE("TaskUpdate bodies are validated field by field") {
  std::vector<body_case> cases = {
    {"{}", {}},
    {R"({"completed":true})", {}},
    {R"({"completed":false})", {}},
    {R"({"description":null})", {}},
    {R"({"title":"new","description":"d","completed":true,"id":9})", {}},
    {R"({"title":null})", {title_type}},
    {R"({"title":""})", {title_short}},
    {R"({"title":" \u3000"})", {title_value}},
    {R"({"title":"\u0000"})", {title_value}},
    {"{\"title\":\"" + repeat("a", 201) + "\"}", {title_long}},
    {R"({"description":1})", {desc_type}},
    {"{\"description\":\"" + repeat("d", 1001) + "\"}", {desc_long}},
    {R"({"description":"\u0000"})", {desc_value}},
    {R"({"completed":"true"})", {completed_type}},
    {R"({"completed":1})", {completed_type}},
    {R"({"completed":0})", {completed_type}},
    {R"({"completed":null})", {completed_type}},
    {R"({"completed":[]})", {completed_type}},
    {R"({"completed":1e999})", {completed_type}},
    {R"({"completed":5,"description":5,"title":5})", {title_type, desc_type, completed_type}},
    {"", {body_missing}},
    {"null", {body_missing}},
    {"[{}]", {not_object}},
    {"{\"completed\":tru}", {json_invalid_at(13)}},
  };
  check_cases(parse_update, cases);
}

TEST_CASE("a valid TaskUpdate keeps absent fields unset") {
  auto empty = parse_update("{}");
  REQUIRE(empty);
  CHECK_FALSE(empty.value->title);
  CHECK_FALSE(empty.value->set_description);
  CHECK_FALSE(empty.value->completed);

  auto clear = parse_update(R"({"description":null,"completed":false})");
  REQUIRE(clear);
  CHECK_FALSE(clear.value->title);
  CHECK(clear.value->set_description);
  CHECK_FALSE(clear.value->description);
  CHECK(clear.value->completed == false);

  auto all = parse_update(R"({"title":"t","description":"d","completed":true})");
  REQUIRE(all);
  CHECK(all.value->title == "t");
  CHECK(all.value->description == "d");
  CHECK(all.value->completed == true);
}

TEST_CASE("the complete body is optional and only sets a boolean") {
  struct complete_case {
    std::string body;
    std::optional<bool> value; // when errors is empty
    std::vector<entry> errors;
  };
  std::vector<complete_case> cases = {
    {"", std::nullopt, {}},
    {" \r\n\t", std::nullopt, {}},
    {"{}", std::nullopt, {}},
    {"null", std::nullopt, {}},
    {R"({"other":1})", std::nullopt, {}},
    {R"({"completed":true})", true, {}},
    {R"({"completed":false})", false, {}},
    {R"( {"completed":false,"x":"y"} )", false, {}},
    {R"({"completed":"false"})", std::nullopt, {completed_type}},
    {R"({"completed":null})", std::nullopt, {completed_type}},
    {R"({"completed":0})", std::nullopt, {completed_type}},
    {"true", std::nullopt, {not_object}},
    {"[true]", std::nullopt, {not_object}},
    {"{", std::nullopt, {json_invalid_at(1)}},
    {"{\"completed\":\"\xFF\"}", std::nullopt, {json_invalid_at(14)}},
    {std::string(10000, '['), std::nullopt, {json_invalid_at(32)}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.body);
    auto r = parse_complete(c.body);
    if (c.errors.empty()) {
      REQUIRE(r);
      CHECK(*r.value == c.value);
    } else {
      REQUIRE_FALSE(r);
      CHECK(errors_of(r.error_body) == c.errors);
    }
  }
}

TEST_CASE("deeply nested JSON is a 400, not a crash") {
  for (const auto& body : {std::string(10000, '['), std::string(100000, '{'),
                           "{\"title\":\"x\",\"e\":" + std::string(5000, '[') +
                             std::string(5000, ']') + "}"}) {
    auto c = parse_create(body);
    REQUIRE_FALSE(c);
    CHECK(errors_of(c.error_body)[0].first == "json_invalid");
    CHECK_FALSE(parse_update(body));
  }
  auto ok = parse_create("{\"title\":\"x\",\"e\":" + std::string(30, '[') +
                         std::string(30, ']') + "}");
  CHECK(ok);
}

TEST_CASE("a list query is validated parameter by parameter") {
  const entry status{"enum", R"(["query","status"])"};
  const entry sort{"enum", R"(["query","sort"])"};
  const entry limit_int{"int_parsing", R"(["query","limit"])"};
  const entry limit_ge{"greater_than_equal", R"(["query","limit"])"};
  const entry limit_le{"less_than_equal", R"(["query","limit"])"};
  const entry offset_int{"int_parsing", R"(["query","offset"])"};
  const entry offset_ge{"greater_than_equal", R"(["query","offset"])"};
  std::vector<body_case> cases = {
    {"", {}},
    {"status=all", {}},
    {"status=pending", {}},
    {"status=completed&sort=title&limit=1&offset=0", {}},
    {"limit=1000&offset=9223372036854775807", {}},
    {"foo=bar&&status=pending&", {}},
    {"status=bad&status=pending", {}},
    {"status", {status}},
    {"status=", {status}},
    {"status=Pending", {status}},
    {"status=pending&status=bad", {status}},
    {"status=all%20", {status}},
    {"sort=name", {sort}},
    {"sort=", {sort}},
    {"sort=-", {sort}},
    {"sort=--created", {sort}},
    {"sort=+created", {sort}},
    {"sort=%2Bcreated", {sort}},
    {"sort=Title", {sort}},
    {"limit=", {limit_int}},
    {"limit=abc", {limit_int}},
    {"limit=1.5", {limit_int}},
    {"limit=1e3", {limit_int}},
    {"limit=+5", {limit_int}},
    {"limit=%2B5", {limit_int}},
    {"limit= 5", {limit_int}},
    {"limit=-", {limit_int}},
    {"limit=0", {limit_ge}},
    {"limit=-1", {limit_ge}},
    {"limit=-99999999999999999999", {limit_ge}},
    {"limit=1001", {limit_le}},
    {"limit=99999999999999999999", {limit_le}},
    {"offset=", {offset_int}},
    {"offset=x", {offset_int}},
    {"offset=9223372036854775808", {offset_int}},
    {"offset=-1", {offset_ge}},
    {"offset=-9223372036854775809", {offset_ge}},
    {"status=x&sort=y&limit=0&offset=-1", {status, sort, limit_ge, offset_ge}},
    {"offset=-1&limit=z&sort=y&status=x", {status, sort, limit_int, offset_ge}},
  };
  check_cases(parse_query, cases);
}

TEST_CASE("a valid list query yields its values and defaults") {
  auto d = parse_query("");
  REQUIRE(d);
  CHECK(d.value->status == task_status::all);
  CHECK(d.value->sort == task_sort::created);
  CHECK(d.value->descending);
  CHECK(d.value->limit == 1000);
  CHECK(d.value->offset == 0);

  auto q = parse_query("status=pend%69ng&sort=%2Dtitle&limit=0025&offset=7&x=%zz");
  REQUIRE(q);
  CHECK(q.value->status == task_status::pending);
  CHECK(q.value->sort == task_sort::title);
  CHECK(q.value->descending);
  CHECK(q.value->limit == 25);
  CHECK(q.value->offset == 7);

  auto asc = parse_query("sort=updated&status=completed");
  REQUIRE(asc);
  CHECK(asc.value->sort == task_sort::updated);
  CHECK_FALSE(asc.value->descending);
  CHECK(asc.value->status == task_status::completed);

  auto created = parse_query("sort=created");
  REQUIRE(created);
  CHECK(created.value->sort == task_sort::created);
  CHECK_FALSE(created.value->descending);

  auto last = parse_query("limit=5&limit=6");
  REQUIRE(last);
  CHECK(last.value->limit == 6);
}

TEST_CASE("a task id must be a positive decimal integer that fits in int64") {
  const entry parsing{"int_parsing", R"(["path","task_id"])"};
  const entry zero{"greater_than", R"(["path","task_id"])"};
  std::vector<body_case> cases = {
    {"1", {}},
    {"42", {}},
    {"0007", {}},
    {"9223372036854775807", {}},
    {"0", {zero}},
    {"000", {zero}},
    {"9223372036854775808", {parsing}},
    {"99999999999999999999999999", {parsing}},
    {"", {parsing}},
    {"-1", {parsing}},
    {"+1", {parsing}},
    {" 1", {parsing}},
    {"1 ", {parsing}},
    {"1a", {parsing}},
    {"1.0", {parsing}},
    {"1e3", {parsing}},
    {"0x10", {parsing}},
    {"tasks", {parsing}},
    {"%31", {parsing}},
    {"\xEF\xBC\x91", {parsing}}, // FULLWIDTH DIGIT ONE
  };
  check_cases(parse_task_id, cases);
  CHECK(parse_task_id("0007").value == 7);
  CHECK(parse_task_id("9223372036854775807").value == INT64_MAX);
}

TEST_CASE("error bodies are exactly FastAPI's shape") {
  CHECK(parse_create(R"({"title":""})").error_body ==
        R"({"detail":[{"type":"string_too_short","loc":["body","title"],)"
        R"("msg":"String should have at least 1 character"}]})");
  CHECK(parse_create("{\"title\":\"" + repeat("a", 201) + "\"}").error_body ==
        R"({"detail":[{"type":"string_too_long","loc":["body","title"],)"
        R"("msg":"String should have at most 200 characters"}]})");
  CHECK(parse_create("{").error_body ==
        R"({"detail":[{"type":"json_invalid","loc":["body",1],"msg":"JSON decode error"}]})");
  CHECK(parse_create("[]").error_body ==
        R"({"detail":[{"type":"model_attributes_type","loc":["body"],)"
        R"("msg":"Input should be a valid dictionary or object to extract fields from"}]})");
  CHECK(parse_update(R"({"title":"  ","completed":"yes"})").error_body ==
        R"({"detail":[{"type":"value_error","loc":["body","title"],)"
        R"("msg":"Value error, title must not be blank"},)"
        R"({"type":"bool_type","loc":["body","completed"],)"
        R"("msg":"Input should be a valid boolean"}]})");
  CHECK(parse_update(R"({"description":"\u0000"})").error_body ==
        R"({"detail":[{"type":"value_error","loc":["body","description"],)"
        R"("msg":"Value error, string must not contain NUL"}]})");
  CHECK(parse_create("{}").error_body ==
        R"({"detail":[{"type":"missing","loc":["body","title"],"msg":"Field required"}]})");
  CHECK(parse_task_id("0").error_body ==
        R"({"detail":[{"type":"greater_than","loc":["path","task_id"],)"
        R"("msg":"Input should be greater than 0"}]})");
  CHECK(parse_task_id("x").error_body ==
        R"({"detail":[{"type":"int_parsing","loc":["path","task_id"],)"
        R"("msg":"Input should be a valid integer, unable to parse string as an integer"}]})");
  CHECK(parse_query("status=x").error_body ==
        R"({"detail":[{"type":"enum","loc":["query","status"],)"
        R"("msg":"Input should be 'all', 'pending' or 'completed'"}]})");
  CHECK(parse_query("sort=x&limit=0").error_body ==
        R"({"detail":[{"type":"enum","loc":["query","sort"],)"
        R"("msg":"Input should be 'created', 'updated', 'title', '-created', '-updated' or )"
        R"('-title'"},{"type":"greater_than_equal","loc":["query","limit"],)"
        R"("msg":"Input should be greater than or equal to 1"}]})");
}

TEST_CASE("a timestamp is RFC 3339 UTC with six fractional digits") {
  CHECK(format_timestamp(0) == "1970-01-01T00:00:00.000000Z");
  CHECK(format_timestamp(1) == "1970-01-01T00:00:00.000001Z");
  CHECK(format_timestamp(1'795'489'800'123'456) == "2026-11-24T03:10:00.123456Z");
  CHECK(format_timestamp(1'795'489'800'000'050) == "2026-11-24T03:10:00.000050Z");
  CHECK(format_timestamp(946'684'799'999'999) == "1999-12-31T23:59:59.999999Z");
  CHECK(format_timestamp(951'782'400'000'000) == "2000-02-29T00:00:00.000000Z");
  CHECK(format_timestamp(4'107'542'400'000'000) == "2100-03-01T00:00:00.000000Z");
  CHECK(format_timestamp(-1) == "1969-12-31T23:59:59.999999Z");
  CHECK(format_timestamp(-1'000'000) == "1969-12-31T23:59:59.000000Z");
  CHECK(format_timestamp(-14'182'940'000'001) == "1969-07-20T20:17:39.999999Z");
  CHECK(format_timestamp(-2'208'988'800'000'000) == "1900-01-01T00:00:00.000000Z");
  CHECK(format_timestamp(-62'135'596'800'000'000) == "0001-01-01T00:00:00.000000Z");
  CHECK(format_timestamp(253'402'300'799'999'999) == "9999-12-31T23:59:59.999999Z");
  // Out of RFC 3339's range: still well-formed text, never a crash.
  CHECK_NOTHROW(format_timestamp(INT64_MIN));
  CHECK_NOTHROW(format_timestamp(INT64_MAX));
}

TEST_CASE("a task is written as the exact JSON of API.md") {
  task t;
  t.id = 42;
  t.title = "Buy milk";
  t.completed = false;
  t.created_us = 1'795'489'800'123'456;
  t.updated_us = 1'795'489'800'123'456;
  std::string out;
  write_task(out, t);
  CHECK(out == R"({"id":42,"title":"Buy milk","description":null,"completed":false,)"
               R"("created_at":"2026-11-24T03:10:00.123456Z",)"
               R"("updated_at":"2026-11-24T03:10:00.123456Z"})");

  t.id = 9'223'372'036'854'775'807;
  t.title = "say \"hi\"\\ \n\t\x01\x1f\x7f caf\xC3\xA9 \xF0\x9F\x98\x80";
  t.description = std::string("line1\r\nline2\b\f/", 15);
  t.completed = true;
  t.updated_us = 1'795'489'801'000'007;
  out = "prefix";
  write_task(out, t);
  CHECK(out == "prefix"
               R"({"id":9223372036854775807,)"
               R"("title":"say \"hi\"\\ \n\t\u0001\u001f)"
               "\x7f caf\xC3\xA9 \xF0\x9F\x98\x80"
               R"(","description":"line1\r\nline2\b\f/","completed":true,)"
               R"("created_at":"2026-11-24T03:10:00.123456Z",)"
               R"("updated_at":"2026-11-24T03:10:01.000007Z"})");
  auto back = boost::json::parse(out.substr(6));
  CHECK(back.at("title").as_string() == t.title);
  CHECK(back.at("description").as_string() == *t.description);

  t.description = std::string("a\0b", 3);
  out.clear();
  write_task(out, t);
  CHECK(out.find(R"("description":"a\u0000b")") != std::string::npos);
}

TEST_CASE("a list of tasks is a JSON array") {
  std::string out;
  write_tasks(out, {});
  CHECK(out == "[]");
  task a;
  a.id = 1;
  a.title = "a";
  task b = a;
  b.id = 2;
  b.description = "d";
  out.clear();
  write_tasks(out, {a, b});
  auto doc = boost::json::parse(out);
  REQUIRE(doc.as_array().size() == 2);
  CHECK(doc.as_array()[0].at("id").as_int64() == 1);
  CHECK(doc.as_array()[0].at("description").is_null());
  CHECK(doc.as_array()[1].at("description").as_string() == "d");
}

TEST_CASE("a detail body escapes its message") {
  CHECK(detail_body("Task not found") == R"({"detail":"Task not found"})");
  CHECK(detail_body("a \"q\" \\ \n\x02") == R"({"detail":"a \"q\" \\ \n\u0002"})");
  CHECK(detail_body("\xC3\xA9") == "{\"detail\":\"\xC3\xA9\"}");
}

TEST_CASE("HTTP tokens compare case-insensitively in ASCII only") {
  CHECK(todo::text::iequals("Bearer", "bEARER"));
  CHECK(todo::text::iequals("100-Continue", "100-CONTINUE"));
  CHECK(todo::text::iequals("", ""));
  CHECK_FALSE(todo::text::iequals("bearer", "bearer "));
  CHECK_FALSE(todo::text::iequals("bearer", "bearex"));
  CHECK_FALSE(todo::text::iequals("\xC4", "\xE4")); // Latin-1 capital/small A umlaut: not ASCII
  CHECK_FALSE(todo::text::iequals("[", "{"));       // 0x20 apart, but not letters
  CHECK_FALSE(todo::text::iequals("@", "`"));
}
