#include "control-plane/monitor/http_response.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace fulcrum {

namespace {

constexpr std::string_view kHttpPrefix = "HTTP/";
// A status line is "HTTP/1.1 200 OK"; a real one is far shorter. Past this
// without a line end the server is not speaking HTTP, and waiting for the
// timeout would only hide that.
constexpr size_t kMaxStatusLine = 1024;
constexpr size_t kQuoteLimit = 40;

// Server bytes end up in logs and on terminals: never pass control characters
// or invalid UTF-8 through.
std::string quoted(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kQuoteLimit; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > kQuoteLimit) out += "...";
  out += "'";
  return out;
}

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

std::string_view stripCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// "HTTP/d.d NNN" followed by the end of the line or a space and a reason.
std::optional<uint16_t> parseStatusLine(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 5) != kHttpPrefix) return std::nullopt;
  if (!isDigit(line[5]) || line[6] != '.' || !isDigit(line[7]) || line[8] != ' ') {
    return std::nullopt;
  }
  if (!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11])) return std::nullopt;
  if (line.size() > 12 && line[12] != ' ') return std::nullopt;
  return static_cast<uint16_t>((line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
}

std::string codeList(const std::vector<uint16_t>& codes) {
  std::string out;
  for (size_t i = 0; i < codes.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(codes[i]);
  }
  return out;
}

CheckResult fail(std::string detail) {
  return {false, std::move(detail)};
}

}  // namespace

std::string buildHttpRequest(const IpAddress& address, uint16_t port, std::string_view path) {
  std::string host = port == 80
                         ? (address.isV4() ? address.toString() : "[" + address.toString() + "]")
                         : formatEndpoint(address, port);
  std::string request = "GET ";
  request += path.empty() ? std::string_view("/") : path;
  request += " HTTP/1.0\r\nHost: ";
  request += host;
  request += "\r\nUser-Agent: fulcrum-monitor\r\nConnection: close\r\n\r\n";
  return request;
}

std::optional<CheckResult> evaluateHttpResponse(std::string_view response, ResponseEnd end,
                                                const MonitorConfig& config) {
  const bool more = end == ResponseEnd::kOpen;
  if (response.empty()) {
    if (more) return std::nullopt;
    return fail("connection closed without a response");
  }

  // Fail on the first bytes that cannot begin a status line, so that a
  // server speaking another protocol is reported as such, not as a timeout.
  const size_t prefix = std::min(response.size(), kHttpPrefix.size());
  const size_t lineEnd = response.find('\n');
  const std::string_view firstLine =
      stripCr(response.substr(0, lineEnd == std::string_view::npos ? response.size() : lineEnd));
  if (response.substr(0, prefix) != kHttpPrefix.substr(0, prefix)) {
    return fail("malformed status line " + quoted(firstLine));
  }
  if (lineEnd == std::string_view::npos) {
    if (firstLine.size() > kMaxStatusLine) {
      return fail("malformed status line " + quoted(firstLine) + " (no line end within " +
                  std::to_string(kMaxStatusLine) + " bytes)");
    }
    // A server may close right after a status line without CRLF; judge it
    // then, but never guess while bytes may still come.
    if (more) return std::nullopt;
  }
  const std::optional<uint16_t> status = parseStatusLine(firstLine);
  if (!status) return fail("malformed status line " + quoted(firstLine));
  const std::string http = "HTTP " + std::to_string(*status);
  if (std::find(config.expect.begin(), config.expect.end(), *status) == config.expect.end()) {
    return fail(http + " not in " + codeList(config.expect));
  }
  if (config.expectBody.empty()) return CheckResult{true, http};

  // Headers: lines up to the first empty one. Content-Length (unless the
  // body is chunked) tells when the body is complete even if the server keeps
  // the connection open despite "Connection: close".
  std::optional<size_t> contentLength;
  bool chunked = false;
  std::optional<size_t> bodyStart;
  size_t pos = lineEnd == std::string_view::npos ? response.size() : lineEnd + 1;
  while (pos < response.size()) {
    const size_t nl = response.find('\n', pos);
    if (nl == std::string_view::npos) break;
    const std::string_view line = stripCr(response.substr(pos, nl - pos));
    pos = nl + 1;
    if (line.empty()) {
      bodyStart = pos;
      break;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // not ours to police
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (equalsIgnoreCase(name, "content-length") && !contentLength && !value.empty() &&
        value.size() <= 18 && std::all_of(value.begin(), value.end(), isDigit)) {
      contentLength = std::stoull(std::string(value));
    } else if (equalsIgnoreCase(name, "transfer-encoding")) {
      chunked = true;
    }
  }
  if (!bodyStart) {
    if (more) return std::nullopt;
    if (end == ResponseEnd::kCapped) {
      return fail(http + " but the headers exceed " + std::to_string(kMaxHttpResponseBytes / 1024) +
                  " KiB");
    }
    return fail(http + " but the response ends inside the headers");
  }

  std::string_view body = response.substr(*bodyStart);
  bool bodyComplete = !more;
  if (contentLength && !chunked && body.size() >= *contentLength) {
    body = body.substr(0, *contentLength);
    bodyComplete = true;
  }
  // A chunked body is searched as received: chunk-size lines could split the
  // text, but an HTTP/1.0 request should never get a chunked answer.
  if (body.find(config.expectBody) != std::string_view::npos) return CheckResult{true, http};
  if (!bodyComplete) return std::nullopt;
  std::string detail = http + " but body lacks " + quoted(config.expectBody);
  if (end == ResponseEnd::kCapped && !(contentLength && body.size() == *contentLength)) {
    detail += " (in the first " + std::to_string(kMaxHttpResponseBytes / 1024) + " KiB)";
  }
  return fail(std::move(detail));
}

}  // namespace fulcrum
