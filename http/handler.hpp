#pragma once
// What a request means: a parsed request becomes a command for the actors (or an answer at
// once), and the actors' reply becomes a response. The session (session.cpp) only moves bytes;
// this is the `handle_request` of Beast's examples, kept out of it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "actors/errc.hpp"
#include "http/server.hpp"

namespace todo::http {

using response = boost::beast::http::response<boost::beast::http::string_body>;
using request = boost::beast::http::request<boost::beast::http::string_body>;

/// One request's facts that its response needs.
struct exchange {
  uint64_t seq = 0; // position on its connection (the session's business)
  std::chrono::steady_clock::time_point started;
  std::string method = "-";
  std::string path = "-";
  std::string request_id;
  std::string origin; // set only when CORS allows it
  std::string if_none_match;
  bool keep_alive = true;
  bool head = false; // a HEAD request: the GET answer's header fields, no body
  int8_t route = -1; // the path's index in known_routes() (the /metrics label), -1: none
  std::string client; // the client's address for the access log (TRUSTED_PROXIES)
  std::string trace_id; // W3C traceparent's trace id (32 hex digits) when valid, else empty
  std::string traceresponse; // the `traceresponse` value answered with it
  unsigned version = 11;
};

/// A live-update stream the handler has authorized (GET /api/tasks/events).
struct stream_request {
  std::string user;         // the token's subject
  std::string token;        // checked again while the stream is open
  std::string scoped_user;  // {user_id} of the scoped family, else empty
  int64_t valid_until = 0;  // Unix seconds until the token needs no new check (0: next beat)
  int64_t expires_at = 0;   // the token's `exp` (Unix seconds; 0: none): the stream ends then
  std::optional<std::string> last_event_id;
};

/// The session side of one request.
class responder {
public:
  virtual ~responder() = default;
  /// Starts the event stream of `ex` (its response head is `head`), or answers 503 when a
  /// bound on streams is reached; call it on the session's thread only.
  virtual void open_stream(const exchange& ex, response head, stream_request req) = 0;
  /// Runs `fn` later on the session's own thread (the actors answer on theirs).
  virtual void post(std::function<void()> fn) = 0;
  /// Queues the finished response of `ex`; call it on the session's thread only.
  virtual void respond(const exchange& ex, response res) = 0;
};

/// Returns whether a request's header frames its body unambiguously (RFC 9112 §6): any
/// Transfer-Encoding must end in chunked (and comes with no Content-Length), and an HTTP/1.1
/// request has exactly one Host. Otherwise the session answers 400 and closes.
bool framing_acceptable(const request& req);

/// What a request's Expect field asks (RFC 9110 §10.1.1). HTTP/1.0 expectations are ignored.
enum class expectation {
  none,
  continue_100, // "100-continue": the client waits for 100 Continue before sending the body
  unmet,        // anything else: 417 and close, the body unread
};
expectation expectation_of(const request& req);

/// Returns whether no header value of `res` holds CR, LF or NUL (checked before every write).
bool header_values_safe(const response& res);

/// Returns the trace id of a W3C `traceparent` value (version 00: "00-" 32 hex "-" 16 hex "-"
/// 2 hex, lowercase, neither id all zeros; a later version may append "-..." fields), or empty
/// when it is not one (W3C Trace Context §3.2: then the trace restarts).
std::string traceparent_trace_id(std::string_view value);

/// Returns a new request id: the process prefix and a counter.
std::string next_request_id(server_context& ctx);

/// Answers `req`, whose `seq` and `started` are set in `ex`: at once for what needs no actor
/// (routing errors, health, preflight), else through the gateway. `to->respond` is called
/// exactly once.
void handle_request(server_context& ctx, exchange ex, request& req,
                    std::shared_ptr<responder> to);

/// A response decided before a request could be read: `code` is bad_request,
/// headers_too_large, body_too_large or too_many_connections. The connection closes after it.
response early_response(server_context& ctx, const exchange& ex, errc code);

} // namespace todo::http
