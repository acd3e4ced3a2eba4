// Incremental HTTP/1.x request-head parser for the client->server byte stream
// of one TCP connection (DESIGN.md "Packet path" step 5). It finds every
// request head, reports method, path, version and Host for the request log,
// and says where the Host value sits in the segment so the caller can rewrite
// it. Request bodies are skipped, not looked at.
//
// Input: the connection's client->server bytes, fed in order, without gaps or
// overlaps, one TCP segment per feed() call (any split works, down to one byte
// at a time). The parser never reads outside [data, data + length).
//
// Memory: all state, including the copies of values that span segments, lives
// in this fixed-size, trivially copyable object (512 bytes); nothing is
// allocated. Values that lie entirely in the segment being fed are reported as
// views into it. A value that crosses a segment boundary is copied, as far as it
// is kept, into one 464-byte buffer shared by method (kept up to 16 bytes), path
// (up to 256) and host (up to 255, or what the buffer has left after the kept
// method and path: never fewer than 192 bytes). Longer values are cut and the
// head says `truncated`. The cut depends only on the request, never on where
// the stream was segmented, so every segmentation reports identical heads.
//
// Syntax accepted (RFC 9112, with the leniencies noted):
//   request line  METHOD SP request-target SP HTTP/1.<digit> CRLF
//                 METHOD is [A-Z]+; the target is any run of non-control bytes
//                 except SP; empty lines before a request line are skipped.
//   header lines  name ":" OWS value OWS CRLF until an empty line; names are
//                 tokens, matched case-insensitively. An obsolete continuation
//                 line (starting with SP/HT) is skipped, unless it continues a
//                 header the parser interprets (Host, Content-Length,
//                 Transfer-Encoding, Expect, Upgrade): then kMalformed.
//   line ends     CRLF or a bare LF; a CR not followed by LF is kMalformed.
//   body          Transfer-Encoding whose last coding is "chunked": chunks (hex
//                 size, optional BWS and extensions, CRLF, data, CRLF) up to the
//                 last chunk "0" and its trailer lines. Otherwise
//                 Content-Length: N bytes. Otherwise none. Both present: chunked
//                 wins. Expect: 100-continue changes nothing here (the body
//                 still follows; the server's 100 is not on this stream).
//   tunnels       After a CONNECT head, or after the body of an HTTP/1.1 request
//                 carrying Upgrade (WebSocket, h2c), the rest of the connection
//                 is not HTTP/1.x: the parser stops reading it, status() stays
//                 kOk and tunneled() turns true.
//
// Failures (terminal: the parser ignores the rest of the connection, feed()
// returns the same status again and never calls back; heads completed before
// the failure were reported):
//   kNotHttp    the first request line of the connection fails in its method
//               (a byte that cannot begin or continue [A-Z]+ SP, e.g. a TLS
//               ClientHello) or in its version literal (e.g. "PRI * HTTP/2.0").
//   kMalformed  a control byte in the request target or version, an empty
//               target, junk after the version, a bad header name (empty,
//               non-token, whitespace before ':'), NUL or a bare CR in a header
//               line, a second Host, a Content-Length that is not 1*DIGIT or
//               overflows 64 bits or differs from an earlier one,
//               Transfer-Encoding whose last coding is not chunked or in an
//               HTTP/1.0 request, a bad chunk size or chunk terminator; also any
//               request-line failure after the first request.
//   kTooLong    a header block (request line through the empty line, counting
//               empty lines skipped before it) over kMaxHeaderBlock bytes; the
//               same limit applies to each chunk-size line and to the last-chunk
//               line with its trailers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "data-plane/http/http_types.h"

namespace fulcrum {

class HttpRequestParser {
 public:
  static constexpr size_t kMaxMethod = 16;
  static constexpr size_t kMaxPath = 256;
  static constexpr size_t kMaxHost = 255;
  static constexpr size_t kMaxHeaderBlock = 16 * 1024;
  static constexpr size_t kBufferSize = 464;  // shared copy buffer, see above

  // Feeds the next `length` bytes of the stream. Calls onRequest(const
  // HttpRequestHead&) once for each request whose header block ends in these
  // bytes, in stream order (several with pipelining). Returns status() after
  // the bytes; once terminal, returns at once without looking at them.
  template <class Fn>
  HttpParseStatus feed(const uint8_t* data, size_t length, Fn&& onRequest) {
    using F = std::remove_reference_t<Fn>;
    return feedBytes(
        data, length, [](void* fn, const HttpRequestHead& head) { (*static_cast<F*>(fn))(head); },
        const_cast<void*>(static_cast<const void*>(std::addressof(onRequest))));
  }

  HttpParseStatus status() const { return static_cast<HttpParseStatus>(status_); }
  uint64_t requests() const { return requests_; }  // heads reported so far
  bool tunneled() const;  // CONNECT or Upgrade: rest of the connection not parsed

  // Bytes from the current position that are request body or chunk data:
  // bytes the parser counts but never reads. A caller whose segments were
  // reordered may skip() up to this many it has not seen and feed what comes
  // after them. 0 while a head, chunk line or trailer is being read.
  uint64_t skippable() const;
  // Passes over `n` <= skippable() bytes as if they had been fed.
  void skip(uint64_t n);

 private:
  using Callback = void (*)(void*, const HttpRequestHead&);
  class Run;  // one feed() call: the positions that are only valid in its segment

  HttpParseStatus feedBytes(const uint8_t* data, size_t length, Callback onRequest, void* fn);

  uint64_t requests_ = 0;
  // Bytes of body or chunk data still to skip; while a Content-Length or a
  // chunk size is being read, the number read so far.
  uint64_t remaining_ = 0;
  uint64_t contentLength_ = 0;  // from the header block being read
  uint32_t flags_ = 0;          // request_parser.cpp: flag
  uint16_t lineBytes_ = 0;      // bytes of the header block / chunk line so far
  uint16_t methodLength_ = 0;   // lengths as sent (not cut); all <= kMaxHeaderBlock
  uint16_t pathLength_ = 0;
  uint16_t hostLength_ = 0;         // Host value bytes so far, trailing whitespace included
  uint16_t hostTrimmedLength_ = 0;  // ... up to the last byte that is not whitespace
  uint8_t state_ = 0;               // request_parser.cpp: State
  uint8_t status_ = 0;              // HttpParseStatus
  uint8_t header_ = 0;              // header being read (or last read): Header
  uint8_t match_ = 0;               // bytes matched of a literal (version, header name, value)
  uint8_t versionMinor_ = 0;
  char buffer_[kBufferSize] = {};  // method, then path, then host, each at its kept length
};

static_assert(sizeof(HttpRequestParser) == 512, "one parser per connection: keep it at 512 bytes");
static_assert(std::is_trivially_copyable_v<HttpRequestParser>);

}  // namespace fulcrum
