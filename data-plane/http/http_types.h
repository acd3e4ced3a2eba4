// Plain types of the HTTP request filter (operations live in request_parser.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fulcrum {

// One request, reported when its header block is complete. Every view is valid
// only during the callback that receives it: it points into the segment being
// fed, or into the parser's own buffer when the value spanned segments, or (for
// version) at a constant string.
struct HttpRequestHead {
  std::string_view method;   // [A-Z]+, at most HttpRequestParser::kMaxMethod bytes kept
  std::string_view path;     // the request-target as sent (origin, absolute, authority or
                             // asterisk form), at most kMaxPath bytes kept
  std::string_view version;  // "HTTP/1.0" ... "HTTP/1.9"
  std::string_view host;     // Host value without surrounding whitespace, at most kMaxHost
                             // bytes kept (fewer when path and host are both very long: see
                             // request_parser.h); empty when !hostPresent
  bool hostPresent = false;
  // method, path or host was longer than what the parser keeps: the view holds
  // the first bytes. The cut is the same however the stream was segmented.
  bool truncated = false;
  // Where the whole Host value (without surrounding whitespace, not cut) sits in
  // the segment being fed: [hostOffset, hostOffset + hostLength). False when the
  // value started in an earlier segment than the one that ends the header block
  // (the caller counts that as "host split" and cannot rewrite it).
  bool hostInSegment = false;
  size_t hostOffset = 0;
  size_t hostLength = 0;
  bool expectContinue = false;  // "Expect: 100-continue"; the body follows as declared
};

// X(enumerator, counter name, help). Terminal statuses end parsing for the
// rest of the connection: the data plane passes its bytes unchanged and counts
// the connection under the name given here.
#define FULCRUM_HTTP_PARSE_STATUS(X)                                             \
  X(kOk, "http_ok", "connection parsed as HTTP/1.x so far")                      \
  X(kNotHttp, "http_not_http",                                                   \
    "connection did not start with an HTTP/1.x request line (TLS, HTTP/2, ...)") \
  X(kMalformed, "http_malformed",                                                \
    "HTTP/1.x request that breaks the syntax or has ambiguous framing")          \
  X(kTooLong, "http_too_long", "request header block (or chunk line, trailers) over 16 KiB")

enum class HttpParseStatus : uint8_t {
#define FULCRUM_X(e, name, help) e,
  FULCRUM_HTTP_PARSE_STATUS(FULCRUM_X)
#undef FULCRUM_X
};

const char* httpParseStatusName(HttpParseStatus s);
const char* httpParseStatusHelp(HttpParseStatus s);

}  // namespace fulcrum
