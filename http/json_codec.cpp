#include "http/json_codec.hpp"

#include "actors/model/task_json.hpp"
#include "config/text.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <limits>

namespace todo::http {

namespace json = boost::json;

namespace {

// Deeper JSON is rejected as json_invalid; our bodies nest one level, so 32 is generous.
constexpr std::size_t max_depth = 32;
constexpr std::size_t title_max = 200;
constexpr std::size_t description_max = 1000;

constexpr std::string_view msg_missing = "Field required";
constexpr std::string_view msg_string_type = "Input should be a valid string";
constexpr std::string_view msg_too_short = "String should have at least 1 character";
constexpr std::string_view msg_bool_type = "Input should be a valid boolean";
constexpr std::string_view msg_json_invalid = "JSON decode error";
constexpr std::string_view msg_not_object =
  "Input should be a valid dictionary or object to extract fields from";
constexpr std::string_view msg_blank = "Value error, title must not be blank";
constexpr std::string_view msg_nul = "Value error, string must not contain NUL";
constexpr std::string_view msg_int_parsing =
  "Input should be a valid integer, unable to parse string as an integer";

// loc arrays, pre-rendered without their brackets.
constexpr std::string_view loc_body = R"("body")";
constexpr std::string_view loc_title = R"("body","title")";
constexpr std::string_view loc_description = R"("body","description")";
constexpr std::string_view loc_completed = R"("body","completed")";

using text::append_int;
using text::append_json_escaped;

/// Collects pydantic-style error entries and renders the {"detail":[...]} body.
class error_list {
public:
  /// Adds one entry; `loc` is the rendered inside of the loc array.
  void add(std::string_view type, std::string_view loc, std::string_view msg) {
    entries_ += entries_.empty() ? "{\"type\":\"" : ",{\"type\":\"";
    entries_ += type;
    entries_ += "\",\"loc\":[";
    entries_ += loc;
    entries_ += "],\"msg\":\"";
    append_json_escaped(entries_, msg);
    entries_ += "\"}";
  }

  bool empty() const { return entries_.empty(); }

  /// Returns the complete response body.
  std::string body() const { return "{\"detail\":[" + entries_ + "]}"; }

private:
  std::string entries_;
};

/// Returns a body holding exactly one error entry.
std::string single_error(std::string_view type, std::string_view loc, std::string_view msg) {
  error_list errs;
  errs.add(type, loc, msg);
  return errs.body();
}

/// Returns a json_invalid body whose loc names the byte offset where parsing failed.
std::string json_invalid(std::size_t offset) {
  std::string loc{loc_body};
  loc += ',';
  append_int(loc, static_cast<int64_t>(offset));
  return single_error("json_invalid", loc, msg_json_invalid);
}

/// Parses `body` into `out` (allocated from `sp`); on failure sets `err` and returns false.
bool parse_json(std::string_view body, json::storage_ptr sp, json::value& out, std::string& err) {
  json::parse_options opt;
  opt.max_depth = max_depth;
  opt.allow_invalid_utf8 = false; // the default, spelled out: invalid UTF-8 must be a 400
  unsigned char temp[512];
  json::parser p(json::storage_ptr(), opt, temp);
  p.reset(std::move(sp));
  json::error_code ec;
  // On error, write() returns the offset of the offending byte (or the size if incomplete).
  std::size_t n = p.write(body.data(), body.size(), ec);
  if (ec) {
    err = json_invalid(n);
    return false;
  }
  out = p.release();
  return true;
}

bool is_unicode_space(uint32_t cp) {
  // Python's str.isspace() set (what a pydantic `strip()` validator sees), plus invisible
  // characters that make a title look empty: U+180E, U+200B, U+2060, U+FEFF.
  if (cp < 0x80)
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f);
  switch (cp) {
    case 0x85: case 0xa0: case 0x1680: case 0x180e: case 0x2028: case 0x2029: case 0x202f:
    case 0x205f: case 0x2060: case 0x3000: case 0xfeff:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200b;
  }
}

/// Facts about a string that the validators need, gathered in one pass.
struct text_facts {
  std::size_t code_points = 0;
  bool has_nul = false;
  bool all_space = true;
};

/// Scans UTF-8 text that the JSON parser has already validated.
text_facts scan(std::string_view s) {
  text_facts f;
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    std::size_t len;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if (c < 0xe0) {
      cp = c & 0x1f;
      len = 2;
    } else if (c < 0xf0) {
      cp = c & 0x0f;
      len = 3;
    } else {
      cp = c & 0x07;
      len = 4;
    }
    for (std::size_t k = 1; k < len && i + k < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    i += len;
    ++f.code_points;
    f.has_nul = f.has_nul || cp == 0;
    f.all_space = f.all_space && is_unicode_space(cp);
  }
  return f;
}

/// Validates a string field; adds at most one error and returns whether it was valid.
bool check_text(const json::value& v, std::string_view loc, std::size_t max_cp, bool title,
                error_list& errs) {
  if (!v.is_string()) {
    errs.add("string_type", loc, msg_string_type);
    return false;
  }
  auto facts = scan(v.get_string());
  if (title && facts.code_points == 0) {
    errs.add("string_too_short", loc, msg_too_short);
  } else if (facts.code_points > max_cp) {
    std::string msg = "String should have at most ";
    append_int(msg, static_cast<int64_t>(max_cp));
    msg += " characters";
    errs.add("string_too_long", loc, msg);
  } else if (facts.has_nul) {
    errs.add("value_error", loc, msg_nul);
  } else if (title && facts.all_space) {
    errs.add("value_error", loc, msg_blank);
  } else {
    return true;
  }
  return false;
}

std::string to_std(const json::value& v) {
  const auto& s = v.get_string();
  return std::string{s.data(), s.size()};
}

/// Reads title and description into `patch`; `create` makes title required.
void read_text_fields(const json::object& obj, bool create, task_patch& patch, error_list& errs) {
  if (const auto* title = obj.if_contains("title")) {
    if (check_text(*title, loc_title, title_max, true, errs))
      patch.title = to_std(*title);
  } else if (create) {
    errs.add("missing", loc_title, msg_missing);
  }
  if (const auto* desc = obj.if_contains("description")) {
    patch.set_description = true;
    if (!desc->is_null() && check_text(*desc, loc_description, description_max, false, errs))
      patch.description = to_std(*desc);
  }
}

/// Parses a required object body; returns nullptr and sets `err` when there is none.
const json::object* body_object(std::string_view body, json::storage_ptr sp, json::value& doc,
                                std::string& err) {
  // FastAPI treats an empty body (and JSON null) as an absent required body.
  if (body.empty()) {
    err = single_error("missing", loc_body, msg_missing);
    return nullptr;
  }
  if (!parse_json(body, std::move(sp), doc, err))
    return nullptr;
  if (doc.is_null()) {
    err = single_error("missing", loc_body, msg_missing);
    return nullptr;
  }
  if (!doc.is_object()) {
    err = single_error("model_attributes_type", loc_body, msg_not_object);
    return nullptr;
  }
  return &doc.get_object();
}

/// Parses a task body: create (TaskCreate) or update (TaskUpdate).
parsed<task_patch> parse_task_body(std::string_view body, bool create) {
  parsed<task_patch> out;
  unsigned char buf[2048];
  json::monotonic_resource mr(buf, sizeof buf);
  json::value doc;
  const auto* obj = body_object(body, &mr, doc, out.error_body);
  if (obj == nullptr)
    return out;
  task_patch patch;
  error_list errs;
  read_text_fields(*obj, create, patch, errs);
  if (!create) {
    if (const auto* done = obj->if_contains("completed")) {
      if (done->is_bool())
        patch.completed = done->get_bool();
      else
        errs.add("bool_type", loc_completed, msg_bool_type);
    }
  }
  if (errs.empty())
    out.value = std::move(patch);
  else
    out.error_body = errs.body();
  return out;
}

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/// Percent-decodes a query component with '+' as space; a malformed escape stays literal.
std::string query_decode(std::string_view in) {
  auto hex = text::hex_value;
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && in.size() - i >= 3 && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

/// How a decimal string parsed.
enum class int_form : uint8_t { ok, invalid, too_big, too_small };

/// Parses an optional '-' followed by ASCII digits into `x`, reporting int64 overflow.
int_form parse_decimal(std::string_view s, bool allow_minus, int64_t& x) {
  bool neg = allow_minus && !s.empty() && s[0] == '-';
  if (neg)
    s.remove_prefix(1);
  if (s.empty())
    return int_form::invalid;
  // Accumulate as a negative number: its range includes INT64_MIN.
  constexpr int64_t min = std::numeric_limits<int64_t>::min();
  int64_t acc = 0;
  bool overflow = false;
  for (char c : s) {
    if (c < '0' || c > '9')
      return int_form::invalid;
    int d = c - '0';
    if (acc < (min + d) / 10)
      overflow = true; // keep scanning: a later non-digit still makes it invalid
    else
      acc = acc * 10 - d;
  }
  if (overflow)
    return neg ? int_form::too_small : int_form::too_big;
  if (!neg && acc == min)
    return int_form::too_big;
  x = neg ? acc : -acc;
  return int_form::ok;
}

} // namespace

parsed<task_patch> parse_create(std::string_view body) {
  return parse_task_body(body, true);
}

parsed<task_patch> parse_update(std::string_view body) {
  return parse_task_body(body, false);
}

parsed<std::optional<bool>> parse_complete(std::string_view body) {
  parsed<std::optional<bool>> out;
  std::size_t i = 0;
  while (i < body.size() && is_json_space(body[i]))
    ++i;
  if (i == body.size()) {
    out.value.emplace(); // engaged, holding nullopt: flip
    return out;
  }
  unsigned char buf[1024];
  json::monotonic_resource mr(buf, sizeof buf);
  json::value doc;
  if (!parse_json(body, &mr, doc, out.error_body))
    return out;
  if (doc.is_null()) { // an optional body that is null means "no body", as in FastAPI
    out.value.emplace();
    return out;
  }
  if (!doc.is_object()) {
    out.error_body = single_error("model_attributes_type", loc_body, msg_not_object);
    return out;
  }
  const auto* done = doc.get_object().if_contains("completed");
  if (done == nullptr)
    out.value.emplace();
  else if (done->is_bool())
    out.value.emplace(done->get_bool());
  else
    out.error_body = single_error("bool_type", loc_completed, msg_bool_type);
  return out;
}

parsed<task_query> parse_query(std::string_view query_string) {
  std::optional<std::string> status, sort, limit, offset;
  while (!query_string.empty()) {
    auto amp = query_string.find('&');
    auto pair = query_string.substr(0, amp);
    query_string.remove_prefix(amp == std::string_view::npos ? query_string.size() : amp + 1);
    if (pair.empty())
      continue;
    auto eq = pair.find('=');
    auto name = query_decode(pair.substr(0, eq));
    auto value = eq == std::string_view::npos ? std::string{} : query_decode(pair.substr(eq + 1));
    if (name == "status")
      status = std::move(value);
    else if (name == "sort")
      sort = std::move(value);
    else if (name == "limit")
      limit = std::move(value);
    else if (name == "offset")
      offset = std::move(value);
  }
  task_query q;
  error_list errs;
  if (status) {
    if (*status == "all")
      q.status = task_status::all;
    else if (*status == "pending")
      q.status = task_status::pending;
    else if (*status == "completed")
      q.status = task_status::completed;
    else
      errs.add("enum", R"("query","status")", "Input should be 'all', 'pending' or 'completed'");
  }
  if (sort) {
    std::string_view key = *sort;
    q.descending = !key.empty() && key[0] == '-';
    if (q.descending)
      key.remove_prefix(1);
    if (key == "created")
      q.sort = task_sort::created;
    else if (key == "updated")
      q.sort = task_sort::updated;
    else if (key == "title")
      q.sort = task_sort::title;
    else
      errs.add("enum", R"("query","sort")",
               "Input should be 'created', 'updated', 'title', '-created', '-updated' or "
               "'-title'");
  }
  if (limit) {
    constexpr std::string_view loc = R"("query","limit")";
    constexpr std::string_view msg_ge = "Input should be greater than or equal to 1";
    constexpr std::string_view msg_le = "Input should be less than or equal to 1000";
    switch (parse_decimal(*limit, true, q.limit)) {
      case int_form::invalid: errs.add("int_parsing", loc, msg_int_parsing); break;
      case int_form::too_small: errs.add("greater_than_equal", loc, msg_ge); break;
      case int_form::too_big: errs.add("less_than_equal", loc, msg_le); break;
      case int_form::ok:
        if (q.limit < 1)
          errs.add("greater_than_equal", loc, msg_ge);
        else if (q.limit > 1000)
          errs.add("less_than_equal", loc, msg_le);
    }
  }
  if (offset) {
    constexpr std::string_view loc = R"("query","offset")";
    switch (parse_decimal(*offset, true, q.offset)) {
      case int_form::invalid:
      case int_form::too_big: errs.add("int_parsing", loc, msg_int_parsing); break;
      case int_form::too_small: q.offset = -1; [[fallthrough]];
      case int_form::ok:
        if (q.offset < 0)
          errs.add("greater_than_equal", loc, "Input should be greater than or equal to 0");
        break;
    }
  }
  parsed<task_query> out;
  if (errs.empty())
    out.value = q;
  else
    out.error_body = errs.body();
  return out;
}

parsed<int64_t> parse_task_id(std::string_view segment) {
  constexpr std::string_view loc = R"("path","task_id")";
  parsed<int64_t> out;
  int64_t id = 0;
  switch (parse_decimal(segment, false, id)) {
    case int_form::ok:
      if (id > 0)
        out.value = id;
      else
        out.error_body = single_error("greater_than", loc, "Input should be greater than 0");
      break;
    default: out.error_body = single_error("int_parsing", loc, msg_int_parsing);
  }
  return out;
}

std::string detail_body(std::string_view msg) {
  std::string out = "{\"detail\":\"";
  append_json_escaped(out, msg);
  out += "\"}";
  return out;
}

} // namespace todo::http
