// libFuzzer entry point for the HTTP request parser. The input after its first
// byte is one connection's client->server stream; the first byte says where to
// cut it in two. Fed whole and fed as two segments, the parser must report the
// same heads and end in the same status, every Host position it reports must
// hold the Host value, and a terminal status must stay terminal.
//   request_parser_fuzz -dict=tests/unit/http/request_parser_fuzz.dict CORPUS
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data-plane/http/request_parser.h"

namespace {

using fulcrum::HttpParseStatus;

struct Head {
  std::string method, path, version, host;
  bool hostPresent, truncated, expectContinue;
  bool operator==(const Head&) const = default;
};

struct Result {
  std::vector<Head> heads;
  HttpParseStatus status = HttpParseStatus::kOk;
  bool tunneled = false;
};

void require(bool ok) {
  if (!ok) std::abort();
}

// Each segment in a heap block of exactly its size, so that AddressSanitizer
// reports a read past the segment.
Result feedCut(const uint8_t* data, size_t size, size_t cut) {
  fulcrum::HttpRequestParser parser;
  Result r;
  const size_t bounds[] = {0, cut, size};
  for (int s = 0; s < 2; ++s) {
    const size_t length = bounds[s + 1] - bounds[s];
    auto segment = std::make_unique<uint8_t[]>(length);
    if (length > 0) std::memcpy(segment.get(), data + bounds[s], length);
    const HttpParseStatus before = parser.status();
    const size_t headsBefore = r.heads.size();
    const HttpParseStatus after =
        parser.feed(segment.get(), length, [&](const fulcrum::HttpRequestHead& h) {
          if (h.hostInSegment) {
            require(h.hostPresent && h.hostOffset <= length &&
                    h.hostLength <= length - h.hostOffset);
            const std::string_view at(reinterpret_cast<const char*>(segment.get()) + h.hostOffset,
                                      h.hostLength);
            require(h.truncated ? at.substr(0, h.host.size()) == h.host : at == h.host);
          }
          require(h.method.size() <= fulcrum::HttpRequestParser::kMaxMethod &&
                  h.path.size() <= fulcrum::HttpRequestParser::kMaxPath &&
                  h.host.size() <= fulcrum::HttpRequestParser::kMaxHost);
          r.heads.push_back({std::string(h.method), std::string(h.path), std::string(h.version),
                             std::string(h.host), h.hostPresent, h.truncated, h.expectContinue});
        });
    require(after == parser.status());
    if (before != HttpParseStatus::kOk) require(after == before && r.heads.size() == headsBefore);
  }
  require(parser.requests() == r.heads.size());
  r.status = parser.status();
  r.tunneled = parser.tunneled();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t cut = static_cast<size_t>(data[0]) * (size - 1) / 255;  // 0 .. stream size
  const Result whole = feedCut(data + 1, size - 1, size - 1);
  const Result split = feedCut(data + 1, size - 1, cut);
  require(whole.heads == split.heads);
  require(whole.status == split.status);
  require(whole.tunneled == split.tunneled);
  return 0;
}
