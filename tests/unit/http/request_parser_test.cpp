// HTTP request parser: a table of streams and the heads they must report.
// Every stream is fed whole, cut in two at every byte offset, and one byte at
// a time; all feedings must report the same heads and end in the same status.
// Host positions are checked against the segment they were reported in.
#include "data-plane/http/request_parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace fulcrum {
namespace {

using Status = HttpParseStatus;
using namespace std::string_literals;

struct Head {
  std::string method;
  std::string path;
  std::string version = "HTTP/1.1";
  std::string host;
  bool hostPresent = false;
  bool truncated = false;
  bool expectContinue = false;
  bool operator==(const Head&) const = default;

  Head withHost(std::string h) const {
    Head c = *this;
    c.host = std::move(h);
    c.hostPresent = true;
    return c;
  }
  Head cut() const {
    Head c = *this;
    c.truncated = true;
    return c;
  }
  Head expecting100() const {
    Head c = *this;
    c.expectContinue = true;
    return c;
  }
};

Head req(std::string method, std::string path, std::string version = "HTTP/1.1") {
  Head h;
  h.method = std::move(method);
  h.path = std::move(path);
  h.version = std::move(version);
  return h;
}

std::ostream& operator<<(std::ostream& os, const Head& h) {
  return os << "{" << h.method << " " << h.path << " " << h.version
            << (h.hostPresent ? " host=" + h.host : std::string(" no-host"))
            << (h.truncated ? " truncated" : "") << (h.expectContinue ? " expect-100" : "") << "}";
}

Head get(std::string path, std::string host) {
  return req("GET", std::move(path)).withHost(std::move(host));
}

// One head as reported, with where it was reported.
struct Seen {
  Head head;
  bool hostInSegment = false;
  size_t hostAt = 0;   // stream offset of the Host value, when hostInSegment
  size_t segment = 0;  // index of the segment whose feed() reported the head
};

struct Outcome {
  std::vector<Seen> heads;
  Status status = Status::kOk;
  bool tunneled = false;
};

// Feeds `input` cut at the ascending offsets `cuts`. Each segment gets a heap
// buffer of exactly its size, so AddressSanitizer sees any read past it.
Outcome feedCut(const std::string& input, const std::vector<size_t>& cuts) {
  HttpRequestParser parser;
  Outcome out;
  size_t begin = 0;
  for (size_t s = 0; s <= cuts.size(); ++s) {
    const size_t end = s < cuts.size() ? cuts[s] : input.size();
    const size_t length = end - begin;
    auto segment = std::make_unique<uint8_t[]>(length);
    if (length > 0) std::memcpy(segment.get(), input.data() + begin, length);
    const Status before = parser.status();
    const uint64_t requestsBefore = parser.requests();
    const Status returned = parser.feed(segment.get(), length, [&](const HttpRequestHead& h) {
      Seen seen;
      seen.head = {std::string(h.method), std::string(h.path), std::string(h.version),
                   std::string(h.host),   h.hostPresent,       h.truncated,
                   h.expectContinue};
      seen.segment = s;
      seen.hostInSegment = h.hostInSegment;
      if (h.hostInSegment) {
        EXPECT_TRUE(h.hostPresent);
        EXPECT_LE(h.hostOffset + h.hostLength, length);
        if (h.hostOffset + h.hostLength <= length) {
          const std::string_view inSegment(
              reinterpret_cast<const char*>(segment.get()) + h.hostOffset, h.hostLength);
          // The position is that of the whole value; the view may be cut.
          if (h.truncated) {
            EXPECT_EQ(inSegment.substr(0, h.host.size()), h.host);
          } else {
            EXPECT_EQ(inSegment, h.host);
          }
        }
        seen.hostAt = begin + h.hostOffset;
      }
      out.heads.push_back(std::move(seen));
    });
    EXPECT_EQ(returned, parser.status());
    if (before != Status::kOk) {
      EXPECT_EQ(returned, before) << "a terminal status must stay";
      EXPECT_EQ(parser.requests(), requestsBefore) << "no heads after a terminal status";
    }
    begin = end;
  }
  EXPECT_EQ(parser.requests(), out.heads.size());
  out.status = parser.status();
  out.tunneled = parser.tunneled();
  return out;
}

std::vector<Head> headsOf(const Outcome& o) {
  std::vector<Head> heads;
  for (const Seen& s : o.heads) heads.push_back(s.head);
  return heads;
}

struct Case {
  const char* name;
  std::string input;
  std::vector<Head> heads;
  Status status = Status::kOk;
  bool tunneled = false;
};

std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.name;
}

// Whole, every split in two, one byte at a time.
void checkEveryFeeding(const Case& c) {
  const std::string& in = c.input;
  const Outcome whole = feedCut(in, {});
  EXPECT_EQ(headsOf(whole), c.heads);
  EXPECT_EQ(whole.status, c.status) << httpParseStatusName(whole.status);
  EXPECT_EQ(whole.tunneled, c.tunneled);
  for (const Seen& s : whole.heads) {
    EXPECT_EQ(s.hostInSegment, s.head.hostPresent) << "one segment holds every Host value";
  }

  std::vector<size_t> everyByte;
  for (size_t k = 1; k < in.size(); ++k) everyByte.push_back(k);
  const Outcome bytes = feedCut(in, everyByte);
  EXPECT_EQ(headsOf(bytes), c.heads) << "one byte at a time";
  EXPECT_EQ(bytes.status, c.status) << "one byte at a time";
  EXPECT_EQ(bytes.tunneled, c.tunneled) << "one byte at a time";
  for (const Seen& s : bytes.heads) {
    // The value starts before the byte that ends the header block.
    EXPECT_FALSE(s.hostInSegment) << "one byte at a time";
  }
  if (::testing::Test::HasFailure()) return;

  for (size_t k = 1; k < in.size(); ++k) {
    const Outcome split = feedCut(in, {k});
    EXPECT_EQ(headsOf(split), c.heads) << "split at " << k;
    EXPECT_EQ(split.status, c.status) << "split at " << k;
    EXPECT_EQ(split.tunneled, c.tunneled) << "split at " << k;
    for (size_t h = 0; h < split.heads.size() && h < bytes.heads.size(); ++h) {
      const Seen& s = split.heads[h];
      // Byte-at-a-time feeding tells which byte ended each header block.
      const size_t endByte = bytes.heads[h].segment;
      EXPECT_EQ(s.segment, endByte >= k ? 1u : 0u) << "split at " << k << " head " << h;
      const bool expected = s.head.hostPresent && (whole.heads[h].hostAt >= k) == (endByte >= k);
      EXPECT_EQ(s.hostInSegment, expected) << "split at " << k << " head " << h;
      if (s.hostInSegment) {
        EXPECT_EQ(s.hostAt, whole.heads[h].hostAt) << "split at " << k;
      }
    }
    if (::testing::Test::HasFailure()) return;
  }
}

std::string repeat(char c, size_t n) {
  return std::string(n, c);
}

std::string keepAlive50() {
  std::string s;
  for (int i = 0; i < 50; ++i) {
    s += "GET /item/" + std::to_string(i) + " HTTP/1.1\r\nHost: h" + std::to_string(i) +
         ".example\r\nConnection: keep-alive\r\n\r\n";
  }
  return s;
}
std::vector<Head> keepAlive50Heads() {
  std::vector<Head> heads;
  for (int i = 0; i < 50; ++i) {
    heads.push_back(get("/item/" + std::to_string(i), "h" + std::to_string(i) + ".example"));
  }
  return heads;
}

const std::string kGetB = "GET /b HTTP/1.1\r\nHost: b\r\n\r\n";
const std::string kClientHello = std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11) +
                                 repeat('\x5a', 32) +
                                 std::string("\x00\x00\x20\xcc\xa8\xcc\xa9\xc0\x2f", 9);
const std::string kLongPath = "/" + repeat('p', 399);  // 400 bytes
const std::string kLongHost = repeat('h', 290) + ".example";

std::string headerBlockOf(size_t total) {
  // "GET / HTTP/1.1\r\n" (16) + "X: " (3) + value + "\r\n\r\n" (4)
  return "GET / HTTP/1.1\r\nX: " + repeat('v', total - 23) + "\r\n\r\n";
}

const Case kCases[] = {
    {"SimpleGet",
     "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n",
     {get("/index.html", "example.com")}},
    {"Http10WithoutHost", "GET / HTTP/1.0\r\n\r\n", {req("GET", "/", "HTTP/1.0")}},
    {"HostWithPort",
     "GET /a?b=c HTTP/1.1\r\nHost: 198.18.0.10:8080\r\n\r\n",
     {get("/a?b=c", "198.18.0.10:8080")}},
    {"MixedCaseHeaderNames",
     "POST /x HTTP/1.1\r\nhOsT: Example.COM\r\nCONTENT-length: 5\r\n\r\nhello"
     "GET /y HTTP/1.1\r\nHOST: b\r\ntransfer-ENCODING: Chunked\r\n\r\n0\r\n\r\n" +
         kGetB,
     {req("POST", "/x").withHost("Example.COM"), get("/y", "b"), get("/b", "b")}},
    {"HostWhitespaceTrimmed",
     "GET / HTTP/1.1\r\nHost: \t a.example \t \r\n\r\n",
     {get("/", "a.example")}},
    {"EmptyHost", "GET / HTTP/1.1\r\nHost:\r\n\r\n", {get("/", "")}},
    {"HostIsLastBeforeBlockEnd",
     "GET / HTTP/1.1\r\nA: 1\r\nHost: z\r\n\r\n" + kGetB,
     {get("/", "z"), get("/b", "b")}},
    {"BareLfLineEnds",
     "GET / HTTP/1.1\nHost: a\nX: y\n\n" + kGetB,
     {get("/", "a"), get("/b", "b")}},
    {"EmptyLinesBeforeRequests",
     "\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n\r\n" + kGetB,
     {get("/", "a"), get("/b", "b")}},
    {"NamesThatOnlyStartLikeKnownOnes",
     "GET / HTTP/1.1\r\nHostname: x\r\nHost-Extra: y\r\nContent-Lengthy: z\r\n"
     "Expectation: 100-continue\r\nTransfer-Encodings: gzip\r\nExpect: 100-continued\r\n"
     "H: 1\r\nUpgrades: x\r\n\r\n" +
         kGetB,
     {req("GET", "/"), get("/b", "b")}},
    {"ObsFoldOfIgnoredHeaderSkipped",
     "GET / HTTP/1.1\r\nX-Long: a\r\n  continued\r\n\tmore\r\nHost: h\r\n\r\n",
     {get("/", "h")}},
    {"ObsFoldRightAfterRequestLineSkipped",
     "GET / HTTP/1.1\r\n folded\r\nHost: h\r\n\r\n",
     {get("/", "h")}},
    {"ObsFoldOfHostIsMalformed",
     "GET / HTTP/1.1\r\nHost: h\r\n continued\r\n\r\n" + kGetB,
     {},
     Status::kMalformed},
    {"KeepAlive50Requests", keepAlive50(), keepAlive50Heads()},
    {"Pipelined3",
     "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: b\r\n\r\n"
     "DELETE /3 HTTP/1.1\r\nHost: c\r\n\r\n",
     {get("/1", "a"), req("HEAD", "/2").withHost("b"), req("DELETE", "/3").withHost("c")}},
    {"ContentLengthBodyThatLooksLikeARequest",
     "POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 30\r\n\r\n"
     "GET / HTTP/1.1\r\nHost: evil\r\n\r\n" +
         kGetB,
     {req("POST", "/form").withHost("a"), get("/b", "b")}},
    {"ContentLengthZero",
     "POST / HTTP/1.1\r\nContent-Length: 0\r\nHost: a\r\n\r\n" + kGetB,
     {req("POST", "/").withHost("a"), get("/b", "b")}},
    {"ContentLengthRepeatedSame",
     "POST / HTTP/1.1\r\nContent-Length: 3 \r\nContent-Length:3\r\n\r\nabc" + kGetB,
     {req("POST", "/"), get("/b", "b")}},
    {"ChunkedWithExtensionsTrailersAndBothHexCases",
     "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "1a;name=value\r\n" +
         repeat('x', 26) +
         "\r\n"
         "A ; ext=\"q\" ; other\r\n"
         "GET / HTTP\r\n"
         "fF\r\n" +
         repeat('y', 255) +
         "\r\n"
         "0;last\r\nX-Trailer: 1\r\nX-Other: GET / HTTP/1.1\r\n\r\n" +
         kGetB,
     {req("POST", "/up").withHost("a"), get("/b", "b")}},
    {"ChunkedBareLfAndNoTrailers",
     "PUT /c HTTP/1.1\nTransfer-Encoding: gzip, chunked\n\n3\nabc\n0\n\n" + kGetB,
     {req("PUT", "/c"), get("/b", "b")}},
    {"ChunkedWinsOverContentLength",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5\r\nhello\r\n0\r\n\r\n" +
         kGetB,
     {req("POST", "/").withHost("a"), get("/b", "b")}},
    {"ExpectContinueWithBody",
     "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\nbody" + kGetB,
     {req("PUT", "/f").withHost("a").expecting100(), get("/b", "b")}},
    {"LongPathCut",
     "GET " + kLongPath + " HTTP/1.1\r\nHost: a\r\n\r\n" + kGetB,
     {req("GET", kLongPath.substr(0, 256)).withHost("a").cut(), get("/b", "b")}},
    {"PathOfExactly256Kept",
     "GET " + kLongPath.substr(0, 256) + " HTTP/1.1\r\nHost: a\r\n\r\n",
     {get(kLongPath.substr(0, 256), "a")}},
    {"LongHostCut",
     "GET / HTTP/1.1\r\nHost: " + kLongHost + "\r\n\r\n" + kGetB,
     {req("GET", "/").withHost(kLongHost.substr(0, 255)).cut(), get("/b", "b")}},
    {"LongPathAndHostShareTheBuffer",  // host keeps 464 - 3 - 256 = 205 bytes
     "GET " + kLongPath + " HTTP/1.1\r\nHost: " + kLongHost + "\r\n\r\n",
     {req("GET", kLongPath.substr(0, 256)).withHost(kLongHost.substr(0, 205)).cut()}},
    {"LongMethodCut",
     "ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\nHost: a\r\n\r\n",
     {req("ABCDEFGHIJKLMNOP", "/").withHost("a").cut()}},
    {"AbsoluteFormTarget",
     "GET http://a.example/x?y HTTP/1.1\r\nHost: a.example\r\n\r\n",
     {get("http://a.example/x?y", "a.example")}},
    {"ConnectTunnels",
     "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n" + kClientHello,
     {req("CONNECT", "a.example:443").withHost("a.example:443")},
     Status::kOk,
     true},
    {"ConnectLookalikeDoesNotTunnel",
     "CONNECTX / HTTP/1.1\r\n\r\nCONNEC / HTTP/1.1\r\n\r\n" + kGetB,
     {req("CONNECTX", "/"), req("CONNEC", "/"), get("/b", "b")}},
    {"UpgradeTunnelsAfterBody",
     "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Content-Length: 2\r\n\r\nok\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
     {get("/chat", "a")},
     Status::kOk,
     true},
    {"UpgradeIgnoredInHttp10",
     "GET / HTTP/1.0\r\nUpgrade: x\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
     {req("GET", "/", "HTTP/1.0"), req("GET", "/2", "HTTP/1.0")}},
    // Failures.
    {"TlsClientHelloIsNotHttp", kClientHello, {}, Status::kNotHttp},
    {"Http2PrefaceIsNotHttp1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {}, Status::kNotHttp},
    {"SshBannerIsNotHttp", "SSH-2.0-OpenSSH_9.2\r\n", {}, Status::kNotHttp},
    {"LowercaseMethodIsNotHttp", "get / HTTP/1.1\r\n\r\n", {}, Status::kNotHttp},
    {"RtspIsNotHttp", "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n", {}, Status::kNotHttp},
    {"GarbageAfterARequestIsMalformed", kGetB + kClientHello, {get("/b", "b")}, Status::kMalformed},
    {"ControlByteInTargetIsMalformed", "GET /a\x01z HTTP/1.1\r\n\r\n", {}, Status::kMalformed},
    {"ControlByteInVersionIsMalformed", "GET / HT\tTP/1.1\r\n\r\n", {}, Status::kMalformed},
    {"DelInTargetIsMalformed", "GET /\x7f HTTP/1.1\r\n\r\n", {}, Status::kMalformed},
    {"Http09IsMalformed", "GET /\r\n\r\n", {}, Status::kMalformed},
    {"EmptyTargetIsMalformed", "GET  / HTTP/1.1\r\n\r\n", {}, Status::kMalformed},
    {"JunkAfterVersionIsMalformed", "GET / HTTP/1.11\r\n\r\n", {}, Status::kMalformed},
    {"BareCrIsMalformed", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", {}, Status::kMalformed},
    {"NulInHeaderIsMalformed", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"s, {}, Status::kMalformed},
    {"SpaceBeforeColonIsMalformed", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", {}, Status::kMalformed},
    {"HeaderWithoutColonIsMalformed", "GET / HTTP/1.1\r\nHost\r\n\r\n", {}, Status::kMalformed},
    {"DuplicateHostIsMalformed",
     "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
     {},
     Status::kMalformed},
    {"ConflictingContentLengthIsMalformed",
     "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
     {},
     Status::kMalformed},
    {"ContentLengthWithLetterIsMalformed",
     "POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n",
     {},
     Status::kMalformed},
    {"ContentLengthSignedIsMalformed",
     "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
     {},
     Status::kMalformed},
    {"ContentLengthListIsMalformed",
     "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
     {},
     Status::kMalformed},
    {"ContentLengthEmptyIsMalformed",
     "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
     {},
     Status::kMalformed},
    {"ContentLengthOverflowIsMalformed",
     "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
     {},
     Status::kMalformed},
    {"ContentLengthMaxIsAHugeBody",
     "POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n" + kGetB,
     {req("POST", "/")}},
    {"TransferEncodingNotEndingInChunkedIsMalformed",
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
     {},
     Status::kMalformed},
    {"TransferEncodingInHttp10IsMalformed",
     "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     {},
     Status::kMalformed},
    {"BadChunkSizeIsMalformed",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     {req("POST", "/").withHost("a")},
     Status::kMalformed},
    {"ChunkSizeOverflowIsMalformed",
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
     {req("POST", "/")},
     Status::kMalformed},
    {"MissingCrlfAfterChunkDataIsMalformed",
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
     {req("POST", "/")},
     Status::kMalformed},
    {"HeaderBlockOf16KiBIsAccepted",
     headerBlockOf(HttpRequestParser::kMaxHeaderBlock) + kGetB,
     {req("GET", "/"), get("/b", "b")}},
    {"HeaderBlockOver16KiBIsTooLong",
     headerBlockOf(HttpRequestParser::kMaxHeaderBlock + 1) + kGetB,
     {},
     Status::kTooLong},
    {"EndlessHeaderIsTooLong", "GET / HTTP/1.1\r\nX: " + repeat('v', 20000), {}, Status::kTooLong},
};

class HttpStreams : public ::testing::TestWithParam<Case> {};

TEST_P(HttpStreams, SameHeadsWholeSplitAndByteByByte) {
  checkEveryFeeding(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Table, HttpStreams, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           return std::string(param.param.name);
                         });

TEST(HttpRequestParser, HostOffsetPointsIntoTheSegmentForRewriting) {
  const std::string in = "GET / HTTP/1.1\r\nUser-Agent: x\r\nHost:  198.18.0.10:80 \r\n\r\n";
  HttpRequestParser parser;
  int calls = 0;
  parser.feed(reinterpret_cast<const uint8_t*>(in.data()), in.size(),
              [&](const HttpRequestHead& h) {
                ++calls;
                EXPECT_TRUE(h.hostInSegment);
                EXPECT_EQ(h.hostOffset, in.find("198.18"));
                EXPECT_EQ(h.hostLength, 14u);
                EXPECT_EQ(h.host.data(), in.data() + h.hostOffset) << "zero copy";
                EXPECT_EQ(h.path.data(), in.data() + 4) << "zero copy";
              });
  EXPECT_EQ(calls, 1);
}

TEST(HttpRequestParser, HostStartedInEarlierSegmentIsNotInSegment) {
  const std::string a = "GET / HTTP/1.1\r\nHost: a.exam";
  const std::string b = "ple\r\n\r\n";
  HttpRequestParser parser;
  int calls = 0;
  parser.feed(reinterpret_cast<const uint8_t*>(a.data()), a.size(),
              [&](const HttpRequestHead&) { ++calls; });
  parser.feed(reinterpret_cast<const uint8_t*>(b.data()), b.size(), [&](const HttpRequestHead& h) {
    ++calls;
    EXPECT_FALSE(h.hostInSegment);
    EXPECT_EQ(h.host, "a.example");
    EXPECT_EQ(h.method, "GET");
  });
  EXPECT_EQ(calls, 1);
}

TEST(HttpRequestParser, TerminalStatusStaysAndIgnoresLaterRequests) {
  const std::string bad = "\x16\x03\x01";
  HttpRequestParser parser;
  int calls = 0;
  auto count = [&](const HttpRequestHead&) { ++calls; };
  EXPECT_EQ(parser.feed(reinterpret_cast<const uint8_t*>(bad.data()), bad.size(), count),
            Status::kNotHttp);
  EXPECT_EQ(parser.feed(reinterpret_cast<const uint8_t*>(kGetB.data()), kGetB.size(), count),
            Status::kNotHttp);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(parser.requests(), 0u);
}

// skip() passes over body bytes the caller never saw (reordered segments):
// only body and chunk data can be skipped, and what follows parses as if the
// bytes had been fed.
TEST(HttpRequestParser, SkipsOnlyBodyBytes) {
  HttpRequestParser p;
  std::vector<std::string> paths;
  auto collect = [&](const HttpRequestHead& h) { paths.emplace_back(h.path); };
  const std::string head = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n";
  EXPECT_EQ(p.skippable(), 0u);  // reading a head
  p.feed(reinterpret_cast<const uint8_t*>(head.data()), head.size(), collect);
  EXPECT_EQ(p.skippable(), 10u);
  p.feed(reinterpret_cast<const uint8_t*>("12"), 2, collect);
  EXPECT_EQ(p.skippable(), 8u);
  p.skip(9);  // more than the body: refused, nothing changes
  EXPECT_EQ(p.skippable(), 8u);
  p.skip(8);
  EXPECT_EQ(p.skippable(), 0u);
  const std::string chunked =
      "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n";
  p.feed(reinterpret_cast<const uint8_t*>(chunked.data()), chunked.size(), collect);
  EXPECT_EQ(p.skippable(), 5u);  // chunk data only, not the chunk's CRLF
  p.skip(5);
  EXPECT_EQ(p.skippable(), 0u);
  const std::string rest = "\r\n0\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  EXPECT_EQ(p.feed(reinterpret_cast<const uint8_t*>(rest.data()), rest.size(), collect),
            HttpParseStatus::kOk);
  EXPECT_EQ(paths, (std::vector<std::string>{"/a", "/b", "/c"}));
}

TEST(HttpRequestParser, EmptyFeedsChangeNothing) {
  HttpRequestParser parser;
  int calls = 0;
  auto count = [&](const HttpRequestHead&) { ++calls; };
  EXPECT_EQ(parser.feed(nullptr, 0, count), Status::kOk);
  const std::string a = "GET / HT";
  parser.feed(reinterpret_cast<const uint8_t*>(a.data()), a.size(), count);
  EXPECT_EQ(parser.feed(nullptr, 0, count), Status::kOk);
  const std::string b = "TP/1.1\r\nHost: x\r\n\r\n";
  parser.feed(reinterpret_cast<const uint8_t*>(b.data()), b.size(), count);
  EXPECT_EQ(calls, 1);
}

// The parser lives in a preallocated pool and may be moved between slots by
// copying its bytes; a copy taken mid-request continues where it left off.
TEST(HttpRequestParser, CopiedMidRequestContinues) {
  const std::string a = "POST /form HTTP/1.1\r\nHo";
  const std::string b = "st: copied.example\r\nContent-Length: 3\r\n\r\nab";
  const std::string c = "c" + kGetB;
  HttpRequestParser original;
  std::vector<std::string> hosts;
  auto record = [&](const HttpRequestHead& h) { hosts.emplace_back(h.host); };
  original.feed(reinterpret_cast<const uint8_t*>(a.data()), a.size(), record);
  alignas(HttpRequestParser) unsigned char slot[sizeof(HttpRequestParser)];
  std::memcpy(slot, &original, sizeof original);
  original = HttpRequestParser{};  // the old slot is reused
  auto* moved = reinterpret_cast<HttpRequestParser*>(slot);
  moved->feed(reinterpret_cast<const uint8_t*>(b.data()), b.size(), record);
  moved->feed(reinterpret_cast<const uint8_t*>(c.data()), c.size(), record);
  EXPECT_EQ(hosts, (std::vector<std::string>{"copied.example", "b"}));
  EXPECT_EQ(moved->status(), Status::kOk);
}

TEST(HttpRequestParser, StatusNamesComeFromOneTable) {
  EXPECT_STREQ(httpParseStatusName(Status::kOk), "http_ok");
  EXPECT_STREQ(httpParseStatusName(Status::kNotHttp), "http_not_http");
  EXPECT_STREQ(httpParseStatusName(Status::kMalformed), "http_malformed");
  EXPECT_STREQ(httpParseStatusName(Status::kTooLong), "http_too_long");
  EXPECT_STRNE(httpParseStatusHelp(Status::kTooLong), "");
}

void expectSameOutcome(const Outcome& a, const Outcome& b, const std::string& what) {
  EXPECT_EQ(headsOf(a), headsOf(b)) << what;
  EXPECT_EQ(a.status, b.status) << what;
  EXPECT_EQ(a.tunneled, b.tunneled) << what;
}

// Random cuts of one input: two segments at a random offset, a handful of
// random segments, and one byte at a time, all against the whole feed.
void checkRandomCuts(const std::string& in, std::mt19937& rng, const std::string& what) {
  const Outcome whole = feedCut(in, {});
  if (in.size() < 2) return;
  std::uniform_int_distribution<size_t> offset(1, in.size() - 1);
  expectSameOutcome(whole, feedCut(in, {offset(rng)}), what + " split");
  std::vector<size_t> cuts;
  for (int i = 0; i < 6; ++i) cuts.push_back(offset(rng));
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  expectSameOutcome(whole, feedCut(in, cuts), what + " several");
  std::vector<size_t> everyByte;
  for (size_t k = 1; k < in.size(); ++k) everyByte.push_back(k);
  expectSameOutcome(whole, feedCut(in, everyByte), what + " bytes");
}

TEST(HttpRequestParser, RandomBytesNeverCrashAndAgreeAcrossCuts) {
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<size_t> length(0, 400);
  for (int n = 0; n < 3000 && !HasFailure(); ++n) {
    std::string in(length(rng), '\0');
    for (char& c : in) c = static_cast<char>(byte(rng));
    // Half of them start like a request so that the parser gets past byte 0.
    if (n % 2) in = "GET / HTTP/1.1\r\n" + in;
    checkRandomCuts(in, rng, "random input " + std::to_string(n));
  }
}

TEST(HttpRequestParser, MutatedRequestsNeverCrashAndAgreeAcrossCuts) {
  std::mt19937 rng(7);
  const std::string alphabet = "\r\n :;,0123456789aAfFzZ\t\x00\x7f\x80-/";
  std::uniform_int_distribution<size_t> pick(0, std::size(kCases) - 1);
  std::uniform_int_distribution<int> edits(1, 8);
  std::uniform_int_distribution<int> kind(0, 3);
  std::uniform_int_distribution<size_t> letter(0, alphabet.size() - 1);
  int statuses[4] = {};
  for (int n = 0; n < 3000 && !HasFailure(); ++n) {
    std::string in = kCases[pick(rng)].input;
    for (int e = edits(rng); e > 0 && !in.empty(); --e) {
      const size_t at = std::uniform_int_distribution<size_t>(0, in.size() - 1)(rng);
      switch (kind(rng)) {
        case 0:
          in[at] = alphabet[letter(rng)];
          break;
        case 1:
          in.insert(in.begin() + at, alphabet[letter(rng)]);
          break;
        case 2:
          in.erase(at, 1);
          break;
        default:
          in.insert(at, in.substr(at, 8));  // duplicate a few bytes
      }
    }
    const Outcome whole = feedCut(in, {});
    ++statuses[static_cast<int>(whole.status)];
    checkRandomCuts(in, rng, "mutation " + std::to_string(n));
  }
  // The mutations reach every outcome, so the comparison above covers them all.
  for (int s = 0; s < 4; ++s) EXPECT_GT(statuses[s], 0) << httpParseStatusName(Status(s));
}

}  // namespace
}  // namespace fulcrum
