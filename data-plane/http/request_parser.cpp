#include "data-plane/http/request_parser.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string_view>

namespace fulcrum {

const char* httpParseStatusName(HttpParseStatus s) {
  switch (s) {
#define FULCRUM_X(e, name, help) \
  case HttpParseStatus::e:       \
    return name;
    FULCRUM_HTTP_PARSE_STATUS(FULCRUM_X)
#undef FULCRUM_X
  }
  return "http_unknown";
}

const char* httpParseStatusHelp(HttpParseStatus s) {
  switch (s) {
#define FULCRUM_X(e, name, help) \
  case HttpParseStatus::e:       \
    return help;
    FULCRUM_HTTP_PARSE_STATUS(FULCRUM_X)
#undef FULCRUM_X
  }
  return "";
}

namespace {

enum State : uint8_t {
  kRequestStart,    // before a request line; empty lines are skipped here
  kRequestStartLf,  // CR of an empty line before a request line
  kMethod,
  kTarget,
  kVersion,         // match_ bytes of "HTTP/1." seen, then the minor digit
  kRequestLineEnd,  // after the version: CR or LF
  kRequestLineLf,
  kFieldStart,  // first byte of a header line (or of the empty line)
  kFieldName,
  kValueSpace,  // whitespace between ':' and the value
  kValue,
  kValueLf,
  kFoldedLine,  // obsolete continuation line of an uninterpreted header
  kBlockEndLf,  // CR of the empty line that ends the header block
  kBody,        // Content-Length bytes to skip (remaining_)
  kChunkSize,
  kChunkSizeSpace,  // BWS between the size and ';' or the line end
  kChunkExtension,
  kChunkSizeLf,
  kChunkData,  // chunk bytes to skip (remaining_)
  kChunkDataCr,
  kChunkDataLf,
  kTrailerStart,
  kTrailerLine,
  kTrailerEndLf,
  kTunnel,  // CONNECT / Upgrade: nothing more to parse
  kDead,    // terminal status
};

// Headers the parser interprets; the rest are skipped.
enum Header : uint8_t {
  kHeaderOther,
  kHeaderHost,
  kHeaderContentLength,
  kHeaderTransferEncoding,
  kHeaderExpect,
  kHeaderUpgrade,
};
constexpr std::string_view kHeaderNames[] = {
    "", "host", "content-length", "transfer-encoding", "expect", "upgrade",
};

namespace flag {
constexpr uint32_t kSeenRequestLine = 1u
                                      << 0;  // past the first request line: errors are kMalformed
constexpr uint32_t kHostPresent = 1u << 1;
constexpr uint32_t kExpectContinue = 1u << 2;
constexpr uint32_t kContentLength = 1u << 3;
constexpr uint32_t kTransferEncoding = 1u << 4;
constexpr uint32_t kChunkedLast = 1u << 5;  // the last transfer coding seen so far is "chunked"
constexpr uint32_t kUpgrade = 1u << 6;
constexpr uint32_t kConnectMismatch = 1u << 7;  // while reading the method: it is not "CONNECT"
constexpr uint32_t kConnect = 1u << 15;
constexpr uint32_t kMethodCopied = 1u << 8;  // value continues in buffer_, not in a segment
constexpr uint32_t kPathCopied = 1u << 9;
constexpr uint32_t kHostCopied = 1u << 10;
// Matching one list element of a header value against a literal.
constexpr uint32_t kElementStarted = 1u << 11;
constexpr uint32_t kElementEnded = 1u << 12;  // whitespace after the element's first bytes
constexpr uint32_t kElementMismatch = 1u << 13;
constexpr uint32_t kDigits = 1u << 14;  // Content-Length or chunk size has a digit
// Flags that belong to one request head; kUpgrade lives until its body is over.
constexpr uint32_t kPerHead = kHostPresent | kExpectContinue | kContentLength | kTransferEncoding |
                              kChunkedLast | kConnect | kConnectMismatch | kMethodCopied |
                              kPathCopied | kHostCopied | kElementStarted | kElementEnded |
                              kElementMismatch | kDigits;
constexpr uint32_t kElement = kElementStarted | kElementEnded | kElementMismatch;
}  // namespace flag

constexpr std::string_view kVersionPrefix = "HTTP/1.";
constexpr std::string_view kVersions[10] = {"HTTP/1.0", "HTTP/1.1", "HTTP/1.2", "HTTP/1.3",
                                            "HTTP/1.4", "HTTP/1.5", "HTTP/1.6", "HTTP/1.7",
                                            "HTTP/1.8", "HTTP/1.9"};
constexpr std::string_view kConnectMethod = "CONNECT";
constexpr std::string_view kChunked = "chunked";
constexpr std::string_view kContinue = "100-continue";
constexpr size_t kNowhere = std::numeric_limits<size_t>::max();

bool isUpper(uint8_t c) {
  return c >= 'A' && c <= 'Z';
}
bool isDigit(uint8_t c) {
  return c >= '0' && c <= '9';
}
bool isSpace(uint8_t c) {
  return c == ' ' || c == '\t';
}
bool isControl(uint8_t c) {
  return c < 0x20 || c == 0x7f;
}
uint8_t toLower(uint8_t c) {
  return isUpper(c) ? static_cast<uint8_t>(c + ('a' - 'A')) : c;
}

bool isTokenChar(uint8_t c) {
  if (isDigit(c) || isUpper(c) || (c >= 'a' && c <= 'z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

int hexValue(uint8_t c) {
  if (isDigit(c)) return c - '0';
  const uint8_t l = toLower(c);
  if (l >= 'a' && l <= 'f') return l - 'a' + 10;
  return -1;
}

}  // namespace

bool HttpRequestParser::tunneled() const {
  return state_ == kTunnel;
}

// Positions in the segment of one feed() call. A value whose bytes so far all
// lie in this segment is tracked by its start here and costs no copy; at the
// end of the call, values of a head not yet reported are copied to buffer_,
// because the segment will be gone when the head completes.
class HttpRequestParser::Run {
 public:
  Run(HttpRequestParser& p, const uint8_t* data, size_t length, Callback onRequest, void* fn)
      : p_(p), data_(data), length_(length), onRequest_(onRequest), fn_(fn) {}

  HttpParseStatus run() {
    size_t i = 0;
    while (i < length_) {
      switch (p_.state_) {
        case kBody:
        case kChunkData: {
          // Bodies are skipped whole: no per-byte work for payload.
          const size_t n = static_cast<size_t>(std::min<uint64_t>(p_.remaining_, length_ - i));
          i += n;
          p_.remaining_ -= n;
          if (p_.remaining_ == 0) {
            if (p_.state_ == kBody) {
              bodyDone();
            } else {
              p_.state_ = kChunkDataCr;
            }
          }
          break;
        }
        case kTunnel:
          i = length_;
          break;
        default:
          if (!step(data_[i], i)) return p_.status();
          ++i;
      }
    }
    keepValues();
    return p_.status();
  }

 private:
  // Where each value goes in buffer_: method first, then path, then host, each
  // at its kept length, so a long method and path leave the host less room.
  // Derived from the lengths as sent, the layout (and so every cut) is the
  // same for every segmentation of the stream.
  size_t pathAt() const { return std::min<size_t>(p_.methodLength_, kMaxMethod); }
  size_t hostAt() const { return pathAt() + std::min<size_t>(p_.pathLength_, kMaxPath); }
  size_t hostCap() const { return std::min(kMaxHost, kBufferSize - hostAt()); }

  bool fail(HttpParseStatus s) {
    p_.status_ = static_cast<uint8_t>(s);
    p_.state_ = kDead;
    return false;
  }
  // Only the first request line decides whether the connection is HTTP at all;
  // after one was accepted, the same failure is a broken request.
  bool failNotHttp() {
    return fail((p_.flags_ & flag::kSeenRequestLine) ? HttpParseStatus::kMalformed
                                                     : HttpParseStatus::kNotHttp);
  }
  bool malformed() { return fail(HttpParseStatus::kMalformed); }

  void keepByte(uint16_t& length, size_t& start, uint32_t copied, size_t at, size_t cap, uint8_t c,
                size_t i) {
    if (p_.flags_ & copied) {
      if (length < cap) p_.buffer_[at + length] = static_cast<char>(c);
    } else if (start == kNowhere) {
      start = i;
    }
    ++length;
  }

  void copyValue(uint16_t length, size_t start, uint32_t copied, size_t at, size_t cap) {
    if (start == kNowhere || (p_.flags_ & copied)) return;
    std::memcpy(p_.buffer_ + at, data_ + start, std::min<size_t>(length, cap));
    p_.flags_ |= copied;
  }

  void keepValues() {
    if (p_.state_ < kMethod || p_.state_ > kBlockEndLf) return;
    copyValue(p_.methodLength_, methodStart_, flag::kMethodCopied, 0, kMaxMethod);
    copyValue(p_.pathLength_, pathStart_, flag::kPathCopied, pathAt(), kMaxPath);
    copyValue(p_.hostLength_, hostStart_, flag::kHostCopied, hostAt(), hostCap());
  }

  std::string_view view(uint16_t length, size_t start, uint32_t copied, size_t at,
                        size_t cap) const {
    const size_t n = std::min<size_t>(length, cap);
    if (p_.flags_ & copied) return {p_.buffer_ + at, n};
    if (start == kNowhere) return {};
    return {reinterpret_cast<const char*>(data_) + start, n};
  }

  // Matching one element of a header value (between commas for
  // Transfer-Encoding) against `literal`, case-insensitively, whitespace
  // around it ignored.
  void elementByte(uint8_t c, std::string_view literal) {
    uint32_t& f = p_.flags_;
    if (isSpace(c)) {
      if (f & flag::kElementStarted) f |= flag::kElementEnded;
      return;
    }
    if (f & flag::kElementEnded) f |= flag::kElementMismatch;
    f |= flag::kElementStarted;
    if (p_.match_ < literal.size() && toLower(c) == static_cast<uint8_t>(literal[p_.match_])) {
      ++p_.match_;
    } else {
      f |= flag::kElementMismatch;
    }
  }
  // Returns whether the element was empty (no bytes but whitespace).
  bool elementEnd(std::string_view literal, bool* matched) {
    const uint32_t f = p_.flags_;
    *matched = !(f & flag::kElementMismatch) && p_.match_ == literal.size();
    const bool empty = !(f & flag::kElementStarted);
    p_.flags_ &= ~flag::kElement;
    p_.match_ = 0;
    return empty;
  }
  void transferCodingEnd() {
    bool chunked = false;
    if (elementEnd(kChunked, &chunked)) return;
    if (chunked) {
      p_.flags_ |= flag::kChunkedLast;
    } else {
      p_.flags_ &= ~flag::kChunkedLast;
    }
  }

  bool contentLengthByte(uint8_t c) {
    if (isDigit(c) && !(p_.flags_ & flag::kElementEnded)) {
      const uint64_t d = c - '0';
      if (p_.remaining_ > (std::numeric_limits<uint64_t>::max() - d) / 10) return malformed();
      p_.remaining_ = p_.remaining_ * 10 + d;
      p_.flags_ |= flag::kDigits;
      return true;
    }
    // Trailing whitespace only; "42, 42" is rejected (RFC 9110 8.6 allows either).
    if (isSpace(c) && (p_.flags_ & flag::kDigits)) {
      p_.flags_ |= flag::kElementEnded;
      return true;
    }
    return malformed();
  }

  bool headerNameEnd() {
    if (p_.header_ != kHeaderOther && p_.match_ != kHeaderNames[p_.header_].size()) {
      p_.header_ = kHeaderOther;  // only a prefix of a known name ("Host" vs "Hostname")
    }
    if (p_.header_ == kHeaderHost) {
      // Two Hosts: the server must refuse the request (RFC 9112 3.2), and which
      // one we rewrote would be a guess.
      if (p_.flags_ & flag::kHostPresent) return malformed();
      p_.flags_ |= flag::kHostPresent;
    }
    p_.match_ = 0;
    p_.flags_ &= ~(flag::kElement | flag::kDigits);
    p_.remaining_ = 0;
    p_.state_ = kValueSpace;
    return true;
  }

  bool valueByte(uint8_t c, size_t i) {
    switch (p_.header_) {
      case kHeaderHost:
        keepByte(p_.hostLength_, hostStart_, flag::kHostCopied, hostAt(), hostCap(), c, i);
        if (!isSpace(c)) p_.hostTrimmedLength_ = p_.hostLength_;
        return true;
      case kHeaderContentLength:
        return contentLengthByte(c);
      case kHeaderTransferEncoding:
        if (c == ',') {
          transferCodingEnd();
        } else {
          elementByte(c, kChunked);
        }
        return true;
      case kHeaderExpect:
        elementByte(c, kContinue);
        return true;
      case kHeaderUpgrade:
        if (p_.versionMinor_ >= 1) p_.flags_ |= flag::kUpgrade;  // HTTP/1.0 ignores it
        return true;
      default:
        return true;
    }
  }

  bool headerLineEnd() {
    switch (p_.header_) {
      case kHeaderContentLength:
        if (!(p_.flags_ & flag::kDigits)) return malformed();
        if ((p_.flags_ & flag::kContentLength) && p_.remaining_ != p_.contentLength_) {
          return malformed();
        }
        p_.contentLength_ = p_.remaining_;
        p_.remaining_ = 0;
        p_.flags_ |= flag::kContentLength;
        break;
      case kHeaderTransferEncoding:
        transferCodingEnd();
        p_.flags_ |= flag::kTransferEncoding;
        break;
      case kHeaderExpect: {
        bool matched = false;
        elementEnd(kContinue, &matched);
        if (matched) p_.flags_ |= flag::kExpectContinue;
        break;
      }
      default:
        break;
    }
    p_.state_ = kFieldStart;
    return true;
  }

  bool blockEnd() {
    const uint32_t f = p_.flags_;
    bool chunked = false;
    if (f & flag::kTransferEncoding) {
      // Any other final coding leaves the request length unknowable, and
      // HTTP/1.0 has no chunked coding: both are framing errors (RFC 9112 6.1, 6.3).
      if (!(f & flag::kChunkedLast) || p_.versionMinor_ == 0) return malformed();
      chunked = true;
    }
    report();
    resetHead();
    if (f & flag::kConnect) {
      p_.state_ = kTunnel;
    } else if (chunked) {
      chunkLineStart();
    } else if (p_.contentLength_ > 0) {
      p_.remaining_ = p_.contentLength_;
      p_.state_ = kBody;
    } else {
      bodyDone();
    }
    p_.contentLength_ = 0;
    return true;
  }

  void report() {
    HttpRequestHead head;
    head.method = view(p_.methodLength_, methodStart_, flag::kMethodCopied, 0, kMaxMethod);
    head.path = view(p_.pathLength_, pathStart_, flag::kPathCopied, pathAt(), kMaxPath);
    head.version = kVersions[p_.versionMinor_];
    head.hostPresent = p_.flags_ & flag::kHostPresent;
    const size_t cap = hostCap();
    if (head.hostPresent) {
      head.host = view(p_.hostTrimmedLength_, hostStart_, flag::kHostCopied, hostAt(), cap);
      head.hostInSegment = !(p_.flags_ & flag::kHostCopied) && hostStart_ != kNowhere;
      if (head.hostInSegment) {
        head.hostOffset = hostStart_;
        head.hostLength = p_.hostTrimmedLength_;
      }
    }
    head.truncated =
        p_.methodLength_ > kMaxMethod || p_.pathLength_ > kMaxPath || p_.hostTrimmedLength_ > cap;
    head.expectContinue = p_.flags_ & flag::kExpectContinue;
    ++p_.requests_;
    onRequest_(fn_, head);
  }

  void resetHead() {
    p_.flags_ &= ~flag::kPerHead;
    p_.methodLength_ = p_.pathLength_ = p_.hostLength_ = p_.hostTrimmedLength_ = 0;
    p_.match_ = 0;
    p_.header_ = kHeaderOther;
    p_.lineBytes_ = 0;
    methodStart_ = pathStart_ = hostStart_ = kNowhere;
  }

  void chunkLineStart() {
    p_.state_ = kChunkSize;
    p_.remaining_ = 0;
    p_.flags_ &= ~flag::kDigits;
    p_.lineBytes_ = 0;
  }

  bool chunkLineEnd() {
    if (!(p_.flags_ & flag::kDigits)) return malformed();
    p_.state_ = p_.remaining_ == 0 ? kTrailerStart : kChunkData;
    return true;
  }

  void bodyDone() {
    p_.lineBytes_ = 0;
    if (p_.flags_ & flag::kUpgrade) {
      p_.state_ = kTunnel;
    } else {
      p_.state_ = kRequestStart;
    }
    p_.flags_ &= ~flag::kUpgrade;
  }

  // One byte of a line-oriented part of the stream: request line, headers,
  // chunk lines, trailers.
  bool step(uint8_t c, size_t i) {
    // Counted before anything else so that which failure a stream gets does
    // not depend on where it was cut.
    if (++p_.lineBytes_ > kMaxHeaderBlock) return fail(HttpParseStatus::kTooLong);
    switch (p_.state_) {
      case kRequestStart:
        if (c == '\r') {
          p_.state_ = kRequestStartLf;
          return true;
        }
        if (c == '\n') return true;
        if (!isUpper(c)) return failNotHttp();
        p_.state_ = kMethod;
        p_.match_ = 0;
        [[fallthrough]];
      case kMethod:
        if (isUpper(c)) {
          keepByte(p_.methodLength_, methodStart_, flag::kMethodCopied, 0, kMaxMethod, c, i);
          if (p_.match_ < kConnectMethod.size() &&
              c == static_cast<uint8_t>(kConnectMethod[p_.match_])) {
            ++p_.match_;
          } else {
            p_.flags_ |= flag::kConnectMismatch;
          }
          return true;
        }
        if (c != ' ') return failNotHttp();
        if (!(p_.flags_ & flag::kConnectMismatch) && p_.match_ == kConnectMethod.size()) {
          p_.flags_ |= flag::kConnect;
        }
        p_.state_ = kTarget;
        return true;
      case kRequestStartLf:
        if (c != '\n') return failNotHttp();
        p_.state_ = kRequestStart;
        return true;
      case kTarget:
        if (c == ' ') {
          if (p_.pathLength_ == 0) return malformed();
          p_.state_ = kVersion;
          p_.versionMinor_ = 0;  // counts "HTTP/1." bytes until the digit arrives
          return true;
        }
        if (isControl(c)) return malformed();
        keepByte(p_.pathLength_, pathStart_, flag::kPathCopied, pathAt(), kMaxPath, c, i);
        return true;
      case kVersion:
        if (isControl(c)) return malformed();
        if (p_.versionMinor_ < kVersionPrefix.size()) {
          if (c != static_cast<uint8_t>(kVersionPrefix[p_.versionMinor_])) return failNotHttp();
          ++p_.versionMinor_;
          return true;
        }
        if (!isDigit(c)) return failNotHttp();
        p_.versionMinor_ = static_cast<uint8_t>(c - '0');
        p_.state_ = kRequestLineEnd;
        return true;
      case kRequestLineEnd:
        if (c == '\r') {
          p_.state_ = kRequestLineLf;
          return true;
        }
        if (c != '\n') return malformed();
        [[fallthrough]];
      case kRequestLineLf:
        if (c != '\n') return malformed();
        p_.flags_ |= flag::kSeenRequestLine;
        p_.header_ = kHeaderOther;
        p_.state_ = kFieldStart;
        return true;
      case kFieldStart:
        if (c == '\r') {
          p_.state_ = kBlockEndLf;
          return true;
        }
        if (c == '\n') return blockEnd();
        if (isSpace(c)) {
          // obs-fold (RFC 9112 5.2): harmless to skip for a header we ignore;
          // for one we interpret it would change the value we act on.
          if (p_.header_ != kHeaderOther) return malformed();
          p_.state_ = kFoldedLine;
          return true;
        }
        if (!isTokenChar(c)) return malformed();
        switch (toLower(c)) {
          case 'h':
            p_.header_ = kHeaderHost;
            break;
          case 'c':
            p_.header_ = kHeaderContentLength;
            break;
          case 't':
            p_.header_ = kHeaderTransferEncoding;
            break;
          case 'e':
            p_.header_ = kHeaderExpect;
            break;
          case 'u':
            p_.header_ = kHeaderUpgrade;
            break;
          default:
            p_.header_ = kHeaderOther;
        }
        p_.match_ = 1;
        p_.state_ = kFieldName;
        return true;
      case kFieldName:
        if (c == ':') return headerNameEnd();
        if (!isTokenChar(c)) return malformed();
        if (p_.header_ != kHeaderOther) {
          const std::string_view name = kHeaderNames[p_.header_];
          if (p_.match_ < name.size() && toLower(c) == static_cast<uint8_t>(name[p_.match_])) {
            ++p_.match_;
          } else {
            p_.header_ = kHeaderOther;
          }
        }
        return true;
      case kValueSpace:
        if (isSpace(c)) return true;
        // The Host value starts here even when it is empty (CR or LF next), so
        // that an empty value has a position too.
        if (p_.header_ == kHeaderHost && !(p_.flags_ & flag::kHostCopied) &&
            hostStart_ == kNowhere) {
          hostStart_ = i;
        }
        p_.state_ = kValue;
        [[fallthrough]];
      case kValue:
        if (c == '\r') {
          p_.state_ = kValueLf;
          return true;
        }
        if (c == '\n') return headerLineEnd();
        // NUL is never allowed in a field (RFC 9110 5.5); servers differ on
        // what they do with it, which is what request smuggling feeds on.
        if (c == 0) return malformed();
        return valueByte(c, i);
      case kValueLf:
        if (c != '\n') return malformed();
        return headerLineEnd();
      case kFoldedLine:
        if (c == '\n') p_.state_ = kFieldStart;
        if (c == 0) return malformed();
        return true;
      case kBlockEndLf:
        if (c != '\n') return malformed();
        return blockEnd();
      case kChunkSize: {
        const int v = hexValue(c);
        if (v >= 0) {
          if (p_.remaining_ > (std::numeric_limits<uint64_t>::max() >> 4)) return malformed();
          p_.remaining_ = (p_.remaining_ << 4) | static_cast<uint64_t>(v);
          p_.flags_ |= flag::kDigits;
          return true;
        }
        if (!(p_.flags_ & flag::kDigits)) return malformed();
        p_.state_ = kChunkSizeSpace;
        [[fallthrough]];
      }
      case kChunkSizeSpace:
        if (isSpace(c)) return true;
        if (c == ';') {
          p_.state_ = kChunkExtension;
          return true;
        }
        [[fallthrough]];
      case kChunkExtension:
        if (c == '\r') {
          p_.state_ = kChunkSizeLf;
          return true;
        }
        if (c == '\n') return chunkLineEnd();
        if (p_.state_ != kChunkExtension || c == 0) return malformed();
        return true;
      case kChunkSizeLf:
        if (c != '\n') return malformed();
        return chunkLineEnd();
      case kChunkDataCr:
        if (c == '\n') {
          chunkLineStart();
          return true;
        }
        if (c != '\r') return malformed();
        p_.state_ = kChunkDataLf;
        return true;
      case kChunkDataLf:
        if (c != '\n') return malformed();
        chunkLineStart();
        return true;
      case kTrailerStart:
        if (c == '\r') {
          p_.state_ = kTrailerEndLf;
        } else if (c == '\n') {
          bodyDone();
        } else {
          p_.state_ = kTrailerLine;
        }
        return true;
      case kTrailerLine:
        if (c == '\n') p_.state_ = kTrailerStart;
        return true;
      case kTrailerEndLf:
        if (c != '\n') return malformed();
        bodyDone();
        return true;
      default:
        // kBody, kChunkData and kTunnel are handled by run(); kDead never gets here.
        return malformed();
    }
  }

  HttpRequestParser& p_;
  const uint8_t* data_;
  size_t length_;
  Callback onRequest_;
  void* fn_;
  size_t methodStart_ = kNowhere;
  size_t pathStart_ = kNowhere;
  size_t hostStart_ = kNowhere;
};

uint64_t HttpRequestParser::skippable() const {
  if (status() != HttpParseStatus::kOk) return 0;
  return state_ == kBody || state_ == kChunkData ? remaining_ : 0;
}

void HttpRequestParser::skip(uint64_t n) {
  if (n == 0 || n > skippable()) return;
  // Body bytes are only counted, never read, so there is no data to pass.
  Run(*this, nullptr, static_cast<size_t>(n), nullptr, nullptr).run();
}

HttpParseStatus HttpRequestParser::feedBytes(const uint8_t* data, size_t length, Callback onRequest,
                                             void* fn) {
  if (status_ != static_cast<uint8_t>(HttpParseStatus::kOk)) return status();
  return Run(*this, data, length, onRequest, fn).run();
}

}  // namespace fulcrum
