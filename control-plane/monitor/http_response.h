// The HTTP side of an http monitor check, without sockets: the request bytes
// and the verdict on the response bytes read so far. Kept apart from the
// socket code so that every malformed-response case is tested as a table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "control-plane/monitor/monitor_types.h"
#include "shared/config/config_types.h"
#include "shared/net/address.h"

namespace fulcrum {

// A check reads at most this much of a response; more is not an error, the
// check just judges the first kMaxHttpResponseBytes.
inline constexpr size_t kMaxHttpResponseBytes = 64 * 1024;

// "GET <path> HTTP/1.0\r\nHost: <address>[:port]\r\nUser-Agent: fulcrum-monitor\r\n
// Connection: close\r\n\r\n". The port is left out of Host when it is 80; an
// IPv6 address is bracketed. `path` is used as given (the configuration
// parser admits only visible ASCII starting with '/'); empty means "/".
std::string buildHttpRequest(const IpAddress& address, uint16_t port, std::string_view path);

// How the bytes handed to evaluateHttpResponse end.
enum class ResponseEnd : uint8_t {
  kOpen,    // more may come
  kClosed,  // the server closed the connection (or reset it after sending these)
  kCapped,  // kMaxHttpResponseBytes read; the rest is ignored
};

// Judges `response` against `config` (expect, expectBody):
// - returns nullopt while `end` is kOpen and more bytes could change the verdict;
//   with kClosed/kCapped it always returns a result;
// - ok when the status line is "HTTP/d.d NNN[ reason]" with NNN in
//   config.expect and, when config.expectBody is non-empty, the body (after the
//   blank line ending the headers, limited to Content-Length when given)
//   contains it. A verdict is given as early as the bytes allow: a status not
//   in expect fails at once, without waiting for the rest;
// - ok detail: "HTTP 200" (the caller adds the elapsed time). Failures:
//   "connection closed without a response", "malformed status line '...'",
//   "HTTP 503 not in 200,204", "HTTP 200 but body lacks 'ok'",
//   "HTTP 200 but the response ends inside the headers". Bytes from the server
//   are quoted, cut to 40 characters, with anything unprintable as \xNN.
std::optional<CheckResult> evaluateHttpResponse(std::string_view response, ResponseEnd end,
                                                const MonitorConfig& config);

}  // namespace fulcrum
