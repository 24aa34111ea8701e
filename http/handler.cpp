#include "http/handler.hpp"

#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <openssl/evp.h>

#include "actors/model/task_json.hpp" // etag_of, etag_listed
#include "actors/tokens/base64url.hpp"
#include "config/text.hpp"
#include "http/docs.hpp"
#include "http/json_codec.hpp"
#include "http/router.hpp"
#include "http/status.hpp"

namespace todo::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr char json_type[] = "application/json";

/// Returns the token of an `Authorization: Bearer <token>` header, or empty.
std::string_view bearer_token(std::string_view header) {
  header = text::trim(header);
  if (header.size() < 7 || !text::iequals(header.substr(0, 6), "bearer") ||
      (header[6] != ' ' && header[6] != '\t'))
    return {};
  return text::trim(header.substr(7));
}

/// Returns whether a Content-Type names JSON (parameters such as charset allowed).
bool is_json(std::string_view content_type) {
  auto semi = content_type.find(';');
  return text::iequals(text::trim(content_type.substr(0, semi)), json_type);
}

/// Reads an Idempotency-Key field: a Structured Field string ("...", the IETF httpapi draft's
/// form) or the bare value most clients send. Its content must be 1..255 printable ASCII
/// characters; nullopt otherwise.
std::optional<std::string> idempotency_key(std::string_view v) {
  v = text::trim(v);
  std::string key;
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
    for (size_t i = 1; i + 1 < v.size(); ++i) {
      char c = v[i];
      if (c == '\\') {
        if (i + 2 >= v.size() || (v[i + 1] != '"' && v[i + 1] != '\\'))
          return std::nullopt; // RFC 8941 §3.3.3: only \" and \\ are escapes
        c = v[++i];
      } else if (c == '"') {
        return std::nullopt;
      }
      key += c;
    }
  } else {
    key = std::string{v};
  }
  if (key.empty() || key.size() > 255)
    return std::nullopt;
  for (char c : key)
    if (c < 0x20 || c > 0x7e)
      return std::nullopt;
  return key;
}

/// The fingerprint of a keyed request: SHA-256 (hex) over its method, route and body. The two
/// route families name the same route, so a retry may use either.
std::string request_fingerprint(std::string_view method, const task_cmd& cmd,
                                 std::string_view body) {
  std::string input{method};
  input += " /api/tasks";
  if (cmd.kind != op::create)
    input += "/" + std::to_string(cmd.id);
  if (cmd.kind == op::complete)
    input += "/complete";
  input += '\n';
  input += body;
  unsigned char md[EVP_MAX_MD_SIZE];
  size_t len = 0;
  if (!EVP_Q_digest(nullptr, "SHA256", nullptr, input.data(), input.size(), md, &len))
    throw std::runtime_error("SHA-256 unavailable");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 0xf];
  }
  return out;
}

/// Returns whether a client-sent X-Request-Id is safe to echo and log.
bool usable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128)
    return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

/// Percent-encodes `s` for one path segment of a URI: only unreserved characters stay
/// (RFC 3986 §2.3), so no user id can bend a Location header or leave its segment.
std::string encode_segment(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

bool lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

bool all_zeros(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}

/// Our span's id for `traceresponse`: 16 hex digits from the request id (unique per process)
/// and the process's random prefix, never all zeros.
std::string span_id(std::string_view request_id) {
  uint64_t h = 1469598103934665603ull;
  for (char c : request_id)
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  h ^= h >> 31;
  h *= 0x9e3779b97f4a7c15ull;
  h ^= h >> 29;
  if (h == 0)
    h = 1;
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4)
    out[static_cast<size_t>(i)] = hex[h & 0xf];
  return out;
}

/// A response with the headers every answer carries: type, request id, CORS.
response make_response(const server_context& ctx, const exchange& ex, unsigned status,
                       std::string body) {
  response res{static_cast<bhttp::status>(status), ex.version};
  bool bodiless = status == 204 || status == 304;
  if (!bodiless) {
    res.set(bhttp::field::content_type, json_type);
    res.body() = std::move(body);
  }
  res.set("X-Request-Id", ex.request_id);
  if (!ex.traceresponse.empty())
    res.set("traceresponse", ex.traceresponse);
  if (!ex.origin.empty()) {
    res.set(bhttp::field::access_control_allow_origin, ex.origin);
    res.set(bhttp::field::access_control_allow_credentials, "true");
    res.set(bhttp::field::access_control_expose_headers,
            "Location, ETag, X-Total-Count, X-Request-Id, traceresponse, "
            "Idempotent-Replayed, Retry-After");
  }
  if (!ctx.cfg.cors_origins.empty())
    res.set(bhttp::field::vary, "Origin");
  return res;
}

/// Fixes the framing once every header is set: RFC 9110 allows no Content-Length on a 204,
/// and a 304 has no body.
void frame(response& res) {
  auto status = res.result_int();
  if (status == 204 || status == 304)
    res.erase(bhttp::field::content_length);
  else
    res.prepare_payload();
}

/// The answer to a HEAD: the GET answer's fields (Content-Length included), no body bytes
/// (RFC 9110 §9.3.2); anything else would be read as the start of the next response.
response& headless(const exchange& ex, response& res) {
  if (ex.head && !res.body().empty()) {
    auto n = res.body().size();
    res.body().clear();
    res.content_length(n);
  }
  return res;
}

response error_response(const server_context& ctx, const exchange& ex, errc code,
                        const std::string& reason, std::string body = {}) {
  auto e = status_of(code, reason);
  if (code == errc::unauthorized && ctx.cfg.metrics)
    ctx.metrics.auth_failure(reason.empty() ? std::string_view{"Not authenticated"} : reason);
  auto res = make_response(ctx, ex, e.status, body.empty() ? std::move(e.body) : std::move(body));
  if (e.www_authenticate)
    res.set(bhttp::field::www_authenticate, e.www_authenticate);
  if (e.retry_after)
    res.set(bhttp::field::retry_after, e.retry_after);
  frame(res);
  return res;
}

/// A GET's answer with an ETag (a hash of the exact body: `tag` when the caller knows it), or
/// 304 when If-None-Match has it.
response cacheable_response(const server_context& ctx, const exchange& ex, std::string body,
                            std::string tag = {}) {
  if (tag.empty())
    tag = etag_of(body);
  bool fresh = etag_listed(ex.if_none_match, tag);
  auto res = make_response(ctx, ex, fresh ? 304 : 200, fresh ? std::string{} : std::move(body));
  res.set(bhttp::field::etag, tag);
  return res;
}

/// A file the service serves as it is (the OpenAPI document, Swagger UI's assets): its ETag
/// was computed once, and a 304 copies no body.
response static_response(const server_context& ctx, const exchange& ex, std::string_view bytes,
                         const std::string& tag, std::string_view type,
                         std::string_view cache_control) {
  bool fresh = etag_listed(ex.if_none_match, tag);
  auto res = make_response(ctx, ex, fresh ? 304 : 200, fresh ? std::string{} : std::string{bytes});
  if (!fresh)
    res.set(bhttp::field::content_type, type);
  res.set(bhttp::field::etag, tag);
  res.set(bhttp::field::cache_control, cache_control);
  frame(res);
  return res;
}

response preflight_response(const server_context& ctx, const exchange& ex) {
  auto r = route(std::string_view{"GET"}, ex.path);
  auto res = make_response(ctx, ex, 204, {});
  if (r.result != route_result::outcome::not_found && !r.allow.empty())
    res.set(bhttp::field::allow, std::string{r.allow} + ", OPTIONS");
  if (!ex.origin.empty()) {
    res.set(bhttp::field::access_control_allow_methods, "GET, POST, PUT, PATCH, DELETE, OPTIONS");
    res.set(bhttp::field::access_control_allow_headers,
            "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, "
            "Last-Event-ID, X-Request-Id, traceparent");
    res.set(bhttp::field::access_control_max_age, "600");
  }
  frame(res);
  return res;
}

/// The response to a command's reply.
response reply_response(const server_context& ctx, const exchange& ex, op kind,
                        const std::string& location_prefix, reply rep) {
  if (rep.code != errc::none)
    return error_response(ctx, ex, rep.code, rep.reason);
  auto& result = rep.result;
  if (result.replayed) {
    // The stored answer of the first request with this Idempotency-Key, byte for byte.
    auto status = static_cast<unsigned>(result.replayed_status);
    auto res = make_response(ctx, ex, status, std::move(result.json));
    if (kind == op::create && status == 201 && !result.rows.empty())
      res.set(bhttp::field::location, location_prefix + std::to_string(result.rows.front().id));
    res.set("Idempotent-Replayed", "true");
    frame(res);
    return res;
  }
  if (kind == op::list) {
    auto res = cacheable_response(ctx, ex, std::move(result.json));
    res.set("X-Total-Count", std::to_string(result.total));
    frame(res);
    return res;
  }
  if (kind == op::remove) {
    auto res = make_response(ctx, ex, 204, {});
    frame(res);
    return res;
  }
  // The task manager renders every answer's JSON (task_manager.cpp, render).
  if (result.rows.empty() || result.json.empty())
    return error_response(ctx, ex, errc::internal, {});
  std::string body = std::move(result.json);
  if (kind == op::fetch) {
    auto res = cacheable_response(ctx, ex, std::move(body), std::move(result.etag));
    frame(res);
    return res;
  }
  auto res = make_response(ctx, ex, kind == op::create ? 201 : 200, std::move(body));
  if (kind == op::create)
    res.set(bhttp::field::location, location_prefix + std::to_string(result.rows.front().id));
  frame(res);
  return res;
}

/// Translates an API request into a command. Returns the command, or (when the request is
/// invalid) the error to answer once the token has been checked.
struct translation {
  task_cmd cmd;
  std::optional<std::pair<errc, std::string>> invalid; // code and ready body
};

translation translate(const route_result& r, std::string_view query, const request& req) {
  translation t;
  auto& cmd = t.cmd;
  auto fail = [&t](errc code, std::string body) { t.invalid.emplace(code, std::move(body)); };
  if (!r.id.empty()) {
    auto id = parse_task_id(r.id);
    if (!id) {
      fail(errc::invalid_input, std::move(id.error_body));
      return t;
    }
    cmd.id = *id.value;
  }
  bool takes_body = r.act == action::create || r.act == action::update ||
                    r.act == action::complete;
  if (takes_body && !req.body().empty() && !is_json(req[bhttp::field::content_type])) {
    fail(errc::unsupported_media_type, {});
    return t;
  }
  auto take = [&](auto parsed, auto&& store) {
    if (parsed)
      store(std::move(*parsed.value));
    else
      fail(errc::invalid_input, std::move(parsed.error_body));
  };
  switch (r.act) {
    case action::list:
      cmd.kind = op::list;
      take(parse_query(query), [&](task_query q) { cmd.query = q; });
      break;
    case action::create:
      cmd.kind = op::create;
      take(parse_create(req.body()), [&](task_patch p) { cmd.patch = std::move(p); });
      break;
    case action::update:
      cmd.kind = op::update;
      take(parse_update(req.body()), [&](task_patch p) { cmd.patch = std::move(p); });
      break;
    case action::complete:
      cmd.kind = op::complete;
      take(parse_complete(req.body()), [&](std::optional<bool> c) { cmd.patch.completed = c; });
      break;
    case action::fetch:
      cmd.kind = op::fetch;
      break;
    case action::remove:
      cmd.kind = op::remove;
      break;
    default:
      break;
  }
  if ((r.act == action::update || r.act == action::remove || r.act == action::complete) &&
      req.count(bhttp::field::if_match) > 0) {
    std::string list;
    for (auto it = req.find(bhttp::field::if_match);
         it != req.end() && it->name() == bhttp::field::if_match; ++it)
      list += (list.empty() ? "" : ",") + std::string{it->value()};
    cmd.if_match = std::move(list); // present, even when empty: then nothing matches
  }
  bool mutation = r.act == action::create || r.act == action::update ||
                  r.act == action::remove || r.act == action::complete;
  if (mutation && !t.invalid && req.count("Idempotency-Key") > 0) {
    auto key = req.count("Idempotency-Key") == 1
                 ? idempotency_key(req["Idempotency-Key"])
                 : std::nullopt; // two keys: which one was meant is a guess we do not make
    if (!key) {
      fail(errc::invalid_input,
           detail_body("Idempotency-Key must be one value of 1 to 255 printable ASCII characters"));
      return t;
    }
    cmd.idem_key = std::move(*key);
    cmd.idem_fingerprint = request_fingerprint(req.method_string(), cmd, req.body());
  }
  return t;
}

/// Hands a finished response to the session, without a body when the request was a HEAD.
void answer(responder& to, const exchange& ex, response res) {
  to.respond(ex, std::move(headless(ex, res)));
}

/// The Authorization fields of `req`: how many, and the last one's value. One pass over the
/// fields comparing the parser's field codes: a request has a handful of fields, and Beast's
/// find() compares names case-insensitively down its tree (about 500 instructions).
std::pair<size_t, std::string_view> authorization_of(const request& req) {
  std::pair<size_t, std::string_view> found{0, {}};
  for (const auto& f : req)
    if (f.name() == bhttp::field::authorization)
      found = {found.first + 1, f.value()};
  return found;
}

/// What a command's answer needs on the session's thread, moved here once. Both callbacks
/// (the gateway's, then the session's) capture only this pointer: the exchange, the route's
/// prefix and the reply are not moved again from one callback into the next.
struct pending_answer {
  pending_answer(server_context& c, std::shared_ptr<responder> t, exchange&& e, op k,
                 std::string prefix)
      : ctx(c), to(std::move(t)), ex(std::move(e)), kind(k), location_prefix(std::move(prefix)) {}
  server_context& ctx;
  std::shared_ptr<responder> to;
  exchange ex;
  op kind;
  std::string location_prefix;
  reply rep;
};

void handle_api(server_context& ctx, exchange&& ex, const route_result& r,
                std::string_view query, request& req, std::shared_ptr<responder> to) {
  auto [authorizations, credentials] = authorization_of(req);
  if (authorizations > 1) {
    // Two credentials: which one the client meant is a guess we do not make.
    answer(*to, ex, error_response(ctx, ex, errc::bad_request, {}));
    return;
  }
  auto token = bearer_token(credentials);
  if (token.empty()) {
    answer(*to, ex, error_response(ctx, ex, errc::unauthorized, {}));
    return;
  }
  auto t = translate(r, query, req);
  ++ctx.in_flight;
  auto& c = ctx;
  if (t.invalid) {
    // Authentication comes first (401/403 before 400/415): check the token only.
    auto [code, body] = std::move(*t.invalid);
    // The callbacks run once each: what they captured moves on instead of being copied.
    ctx.gw.authorize(std::string{token}, r.user_id,
                     [&c, to = std::move(to), ex = std::move(ex), code = code,
                      body = std::move(body)](reply rep) mutable {
                       auto& session = *to;
                       session.post([&c, to = std::move(to), ex = std::move(ex), code,
                                     body = std::move(body), rep = std::move(rep)] {
                         --c.in_flight;
                         answer(*to, ex, rep.code != errc::none
                                           ? error_response(c, ex, rep.code, rep.reason)
                                           : error_response(c, ex, code, {}, body));
                       });
                     });
    return;
  }
  auto kind = t.cmd.kind;
  std::string location_prefix =
    r.scoped ? "/api/" + encode_segment(r.user_id) + "/tasks/" : "/api/tasks/";
  auto p = std::make_shared<pending_answer>(ctx, std::move(to), std::move(ex), kind,
                                            std::move(location_prefix));
  ctx.gw.submit(std::string{token}, r.user_id, std::move(t.cmd),
                [p = std::move(p)](reply rep) mutable {
                  p->rep = std::move(rep);
                  auto& session = *p->to;
                  session.post([p = std::move(p)] {
                    auto& a = *p;
                    --a.ctx.in_flight;
                    answer(*a.to, a.ex,
                           reply_response(a.ctx, a.ex, a.kind, a.location_prefix, std::move(a.rep)));
                  });
                });
}

/// Returns the percent-decoded value of `name` in a query string, or empty.
std::string query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) != name || eq == std::string_view::npos)
      continue;
    std::string out;
    if (!text::percent_decode(pair.substr(eq + 1), out))
      return {};
    return out;
  }
  return {};
}

/// Returns the `exp` claim of a token the auth actor has verified (0 when it has none or it
/// cannot be read): a live-update stream ends when its token expires.
int64_t token_exp(std::string_view token) {
  auto first = token.find('.');
  auto second = token.find('.', first + 1);
  if (first == std::string_view::npos || second == std::string_view::npos)
    return 0;
  auto json = jwt::base64url_decode(token.substr(first + 1, second - first - 1));
  if (!json)
    return 0;
  boost::system::error_code ec;
  auto v = boost::json::parse(*json, ec);
  if (ec || !v.is_object())
    return 0;
  const auto* exp = v.get_object().if_contains("exp");
  if (!exp)
    return 0;
  if (exp->is_int64())
    return exp->get_int64();
  if (exp->is_double())
    return static_cast<int64_t>(exp->get_double());
  return 0;
}

/// GET /api/tasks/events: the user's live updates (Server-Sent Events). The token comes from
/// the Authorization header or, because browsers' EventSource cannot send headers, from
/// `?access_token=` (this route only: the query is never logged, see README).
void handle_events(server_context& ctx, exchange ex, const route_result& r,
                   std::string_view query, request& req, std::shared_ptr<responder> to) {
  auto [authorizations, credentials] = authorization_of(req);
  if (authorizations > 1) {
    answer(*to, ex, error_response(ctx, ex, errc::bad_request, {}));
    return;
  }
  std::string token;
  if (authorizations > 0)
    token = std::string{bearer_token(credentials)};
  else
    token = query_value(query, "access_token");
  if (token.empty()) {
    answer(*to, ex, error_response(ctx, ex, errc::unauthorized, {}));
    return;
  }
  stream_request sreq;
  sreq.token = token;
  sreq.scoped_user = r.user_id;
  if (auto it = req.find("Last-Event-ID"); it != req.end() && !text::trim(it->value()).empty())
    sreq.last_event_id = std::string{text::trim(it->value())};
  ++ctx.in_flight;
  ctx.gw.authorize(std::move(token), r.user_id,
                   [&c = ctx, to, ex, sreq = std::move(sreq)](reply rep) mutable {
                     to->post([&c, to, ex, sreq = std::move(sreq), rep = std::move(rep)]() mutable {
                       --c.in_flight;
                       if (rep.code != errc::none) {
                         answer(*to, ex, error_response(c, ex, rep.code, rep.reason));
                         return;
                       }
                       sreq.user = std::move(rep.user);
                       sreq.valid_until = rep.valid_until;
                       sreq.expires_at = token_exp(sreq.token);
                       auto head = make_response(c, ex, 200, {});
                       head.set(bhttp::field::content_type, "text/event-stream");
                       head.set(bhttp::field::cache_control, "no-store");
                       head.set("X-Accel-Buffering", "no"); // nginx: pass events at once
                       to->open_stream(ex, std::move(head), std::move(sreq));
                     });
                   });
}

} // namespace

bool framing_acceptable(const request& req) {
  auto te = req.find(bhttp::field::transfer_encoding);
  if (te != req.end()) {
    if (req.count(bhttp::field::transfer_encoding) > 1 || req.version() < 11 ||
        req.count(bhttp::field::content_length) > 0)
      return false;
    auto codings = te->value();
    auto last = codings.substr(codings.rfind(',') == std::string_view::npos
                                 ? 0
                                 : codings.rfind(',') + 1);
    if (!text::iequals(text::trim(last), "chunked"))
      return false;
  }
  return req.version() < 11 || req.count(bhttp::field::host) == 1;
}

expectation expectation_of(const request& req) {
  if (req.version() < 11)
    return expectation::none;
  auto result = expectation::none;
  for (auto it = req.find(bhttp::field::expect);
       it != req.end() && it->name() == bhttp::field::expect; ++it) {
    std::string_view list = it->value();
    while (!list.empty()) {
      auto comma = list.find(',');
      auto member = text::trim(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      if (member.empty())
        continue;
      if (!text::iequals(member, "100-continue"))
        return expectation::unmet;
      result = expectation::continue_100;
    }
  }
  return result;
}

bool header_values_safe(const response& res) {
  for (const auto& f : res) {
    auto v = f.value();
    if (v.find_first_of(std::string_view{"\r\n\0", 3}) != std::string_view::npos)
      return false;
  }
  return true;
}

std::string traceparent_trace_id(std::string_view v) {
  v = text::trim(v);
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
    return {};
  auto version = v.substr(0, 2), trace = v.substr(3, 32), parent = v.substr(36, 16),
       flags = v.substr(53, 2);
  if (!lower_hex(version) || version == "ff" || !lower_hex(trace) || !lower_hex(parent) ||
      !lower_hex(flags) || all_zeros(trace) || all_zeros(parent))
    return {};
  // Version 00 is exactly 55 characters; a later version may append "-" and more.
  if (version == "00" ? v.size() != 55 : (v.size() > 55 && v[55] != '-'))
    return {};
  return std::string{trace};
}

std::string next_request_id(server_context& ctx) {
  return ctx.request_id_prefix + std::to_string(++ctx.request_counter);
}

response early_response(server_context& ctx, const exchange& ex, errc code) {
  return error_response(ctx, ex, code, {});
}

void handle_request(server_context& ctx, exchange ex, request& req,
                    std::shared_ptr<responder> to) {
  ex.method = std::string{req.method_string()};
  ex.head = req.method() == bhttp::verb::head;
  std::string_view target = req.target();
  // absolute-form (RFC 9112 §3.2.2): http://host/path is served as /path.
  if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) {
    auto path_at = target.find('/', target.find("//") + 2);
    target = path_at == std::string_view::npos ? std::string_view{"/"} : target.substr(path_at);
  }
  auto q = target.find('?');
  ex.path = std::string{target.substr(0, q)};
  std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  auto rid = req["X-Request-Id"];
  ex.request_id = usable_request_id(rid) ? std::string{rid} : next_request_id(ctx);
  if (auto tp = req.find("traceparent"); tp != req.end()) {
    // One traceparent only (W3C Trace Context §3.2.1: several are invalid).
    if (req.count("traceparent") == 1) {
      ex.trace_id = traceparent_trace_id(tp->value());
      if (!ex.trace_id.empty())
        ex.traceresponse = "00-" + ex.trace_id + "-" + span_id(ex.request_id) + "-" +
                           std::string{tp->value().substr(53, 2)};
    }
  }
  ex.keep_alive = req.keep_alive();
  ex.version = req.version();
  if (req.method() == bhttp::verb::get || ex.head)
    ex.if_none_match = std::string{req[bhttp::field::if_none_match]};
  auto origin = req[bhttp::field::origin];
  for (const auto& allowed : ctx.cfg.cors_origins)
    if (!origin.empty() && origin == allowed)
      ex.origin = std::string{origin};

  // asterisk-form (RFC 9112 §3.2.4) is only for a server-wide OPTIONS: it answers which
  // methods the server knows; with any other method the target is malformed.
  if (ex.path == "*") {
    if (req.method() != bhttp::verb::options) {
      answer(*to, ex, error_response(ctx, ex, errc::bad_request, {}));
      return;
    }
    auto res = make_response(ctx, ex, 204, {});
    res.set(bhttp::field::allow, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    frame(res);
    answer(*to, ex, std::move(res));
    return;
  }

  // HEAD is GET without the body, on every GET route (same handler, same fields).
  auto r = route(ex.head ? std::string_view{"GET"} : std::string_view{ex.method}, ex.path);
  ex.route = r.known;
  if (req.method() == bhttp::verb::options && r.api) {
    answer(*to, ex, preflight_response(ctx, ex));
    return;
  }
  if (r.result == route_result::outcome::not_found) {
    answer(*to, ex, error_response(ctx, ex, errc::route_not_found, {}));
    return;
  }
  if (r.result == route_result::outcome::method_not_allowed) {
    auto res = error_response(ctx, ex, errc::method_not_allowed, {});
    // RFC 9110 §15.5.6: Allow lists every method the resource supports, and every /api path
    // answers OPTIONS (CORS preflight), as the preflight's own Allow says.
    res.set(bhttp::field::allow, r.api ? std::string{r.allow} + ", OPTIONS" : std::string{r.allow});
    answer(*to, ex, std::move(res));
    return;
  }
  switch (r.act) {
    case action::health: {
      auto res = make_response(ctx, ex, 200, R"({"status":"ok"})");
      frame(res);
      answer(*to, ex, std::move(res));
      return;
    }
    case action::ready:
      if (ctx.leaving) {
        answer(*to, ex, error_response(ctx, ex, errc::shutting_down, {}));
        return;
      }
      ctx.gw.ready([&ctx, to, ex](bool ok) {
        to->post([&ctx, to, ex, ok] {
          if (!ok) {
            answer(*to, ex, error_response(ctx, ex, errc::db_unavailable, {}));
            return;
          }
          auto res = make_response(ctx, ex, 200, R"({"status":"ready"})");
          frame(res);
          answer(*to, ex, std::move(res));
        });
      });
      return;
    case action::openapi:
      answer(*to, ex, static_response(ctx, ex, openapi_json(), openapi_etag(), json_type,
                                      "no-cache"));
      return;
    case action::docs: {
      auto res = make_response(ctx, ex, 200, docs_page(ctx.docs));
      res.set(bhttp::field::content_type, "text/html; charset=utf-8");
      res.set(bhttp::field::cache_control, "no-cache");
      frame(res);
      answer(*to, ex, std::move(res));
      return;
    }
    case action::metrics: {
      if (!ctx.cfg.metrics) {
        answer(*to, ex, error_response(ctx, ex, errc::route_not_found, {}));
        return;
      }
      auto res = make_response(ctx, ex, 200, ctx.metrics.render(ctx));
      res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.set(bhttp::field::cache_control, "no-store");
      frame(res);
      answer(*to, ex, std::move(res));
      return;
    }
    case action::docs_asset: {
      const auto* file = docs_asset(ctx.docs, r.id);
      if (!file) {
        answer(*to, ex, error_response(ctx, ex, errc::route_not_found, {}));
        return;
      }
      answer(*to, ex, static_response(ctx, ex, file->bytes, file->etag, file->content_type,
                                      "public, max-age=86400"));
      return;
    }
    case action::events:
      handle_events(ctx, std::move(ex), r, query, req, std::move(to));
      return;
    default:
      handle_api(ctx, std::move(ex), r, query, req, std::move(to));
  }
}

} // namespace todo::http
