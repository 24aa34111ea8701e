#pragma once
// A finished response's head as the bytes that go on the wire; the session writes it and the
// body with one async_write of two buffers. Beast's own writer (http::async_write with its
// serializer) walks a nested buffer-sequence view of the status line, every header field and
// the body on every partial write: about 22,000 instructions per response here, a quarter of
// a cached GET (callgrind, `scripts/instructions`). The bytes are the same as Beast's (tests/unit/wire_test
// compares them); framing (Content-Length, Connection) is already in the fields when the
// response gets here (handler.cpp `frame`, the session's keep_alive).

#include <string>

#include "http/handler.hpp"

namespace todo::http {

/// Appends the head of `res` as HTTP/1.x bytes to `out`: the status line, the fields in their
/// order and the empty line. The body follows as it is (a HEAD's body is already empty).
/// The session reuses one string per connection, so its capacity is already there.
void append_head(std::string& out, const response& res);

} // namespace todo::http
