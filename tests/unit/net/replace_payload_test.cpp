// PacketView::replacePayload, frameLengthAfter and the TCP-word rewrites
// (setSeq, setAck, rewriteTcp32), and checksum::sumBytesAt. Every result is
// checked against a packet built from scratch by tests/common/packet_builder.h
// (byte for byte) or against checksums computed from scratch here.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "shared/net/checksum.h"
#include "shared/net/packet_view.h"
#include "tests/common/packet_builder.h"

namespace fulcrum {
namespace {

using testing::buildTcp;
using testing::ip4;
using testing::TcpPacketSpec;

// The payload with every edit replaced by `value`, computed the naive way.
std::string applyEdits(const std::string& payload, const std::vector<PayloadEdit>& edits,
                       const std::string& value) {
  std::string out;
  size_t at = 0;
  for (const PayloadEdit& e : edits) {
    out += payload.substr(at, e.offset - at);
    out += value;
    at = e.offset + e.length;
  }
  out += payload.substr(at);
  return out;
}

// A packet in a buffer with `extra` spare bytes after it, parsed.
struct Buffer {
  std::vector<uint8_t> bytes;
  size_t length = 0;
  PacketView view;

  Buffer(std::vector<uint8_t> packet, size_t extra, LinkType link = LinkType::kEthernet) {
    length = packet.size();
    bytes = std::move(packet);
    bytes.resize(length + extra, 0xcc);
    EXPECT_EQ(parsePacket(bytes.data(), length, link, view), ParseStatus::kTcpIpv4);
    view.frameCapacity = bytes.size();
  }
  std::vector<uint8_t> frame() const {
    return {bytes.begin(), bytes.begin() + static_cast<long>(view.frameLength)};
  }
  std::string payload() const {
    return {reinterpret_cast<const char*>(view.payload), view.payloadLength};
  }
};

// The folded, uncomplemented pseudo-header sum a partial checksum holds.
uint16_t pseudoHeaderSum(uint32_t src, uint32_t dst, size_t segmentLength) {
  return checksum::fold(uint64_t{src >> 16} + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + 6 +
                        segmentLength);
}

// The TCP checksum a from-scratch computation gives for the view's segment.
uint16_t scratchTcpChecksum(const PacketView& v) {
  return checksum::ipv4TransportChecksum(v.srcV4(), v.dstV4(), 6, v.tcp, v.tcpSegmentLength(), 16);
}

// a - b in one's complement arithmetic, with -0 (0xffff) taken as 0.
uint16_t onesDifference(uint16_t a, uint16_t b) {
  const uint16_t d = checksum::fold(uint32_t{a} + static_cast<uint16_t>(~b));
  return d == 0xffff ? 0 : d;
}

TEST(SumBytesAt, OddOffsetIsTheByteSwappedSum) {
  std::mt19937 rng(7);
  for (size_t n = 1; n < 40; ++n) {
    std::vector<uint8_t> data(n + 1);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    // The whole buffer's sum is its first byte's plus the rest's, the rest
    // sitting at an odd offset.
    const uint16_t whole = checksum::fold(checksum::sumBytes(data.data(), data.size()));
    const uint16_t head = checksum::fold(checksum::sumBytes(data.data(), 1));
    const uint16_t rest = checksum::sumBytesAt(data.data() + 1, n, true);
    EXPECT_EQ(checksum::fold(uint32_t{head} + rest) % 0xffff, whole % 0xffff) << n;
    // At an even offset it is the plain folded sum.
    EXPECT_EQ(checksum::sumBytesAt(data.data() + 1, n, false),
              checksum::fold(checksum::sumBytes(data.data() + 1, n)));
  }
  const uint8_t two[] = {0x12, 0x34};
  EXPECT_EQ(checksum::sumBytesAt(two, 2, false), 0x1234);
  EXPECT_EQ(checksum::sumBytesAt(two, 2, true), 0x3412);
  const uint8_t one[] = {0xab};
  EXPECT_EQ(checksum::sumBytesAt(one, 1, false), 0xab00);
  EXPECT_EQ(checksum::sumBytesAt(one, 1, true), 0x00ab);
}

struct ReplaceCase {
  const char* description;
  std::string payload;
  std::vector<PayloadEdit> edits;
  std::string value;
  bool ethernet = true;
  size_t padTo = 0;  // Ethernet padding: the frame is extended with junk to this size
};

std::vector<ReplaceCase> replaceCases() {
  const std::string req = "GET / HTTP/1.1\r\nHost: 198.18.0.10\r\nAccept: */*\r\n\r\n";
  const size_t host = req.find("198.18.0.10");
  return {
      {"grows at an even offset", req, {{host, 11}}, "198.18.1.11:8080"},
      {"shrinks at an even offset", req, {{host, 11}}, "10.0.0.1"},
      {"same length", req, {{host, 11}}, "198.18.1.11"},
      {"grows at an odd offset", "x" + req, {{host + 1, 11}}, "198.18.1.11:8080"},
      {"shrinks at an odd offset", "x" + req, {{host + 1, 11}}, "10.0.0.1"},
      {"grows by an odd amount to an odd total", req, {{host, 11}}, "198.18.1.11:80"},
      {"shrinks by an odd amount", req + "z", {{host, 11}}, "10.0.0.12"},
      {"edit at the very start", req, {{0, 3}}, "PROPFIND"},
      {"edit at the very end", req, {{req.size() - 4, 4}}, "\r\n\r\n\r\n"},
      {"the whole payload", "abc", {{0, 3}}, "defghij"},
      {"two edits, odd then even", "a123456789b123456789", {{1, 3}, {10, 2}}, "XYZW"},
      {"two edits, both odd", "a123456789b123456789", {{1, 3}, {11, 5}}, "XYZW"},
      {"mixed: one grows, one shrinks", "aaHOSTbbHOST_LONG_VALUEcc", {{2, 4}, {8, 15}}, "SERVER1"},
      {"mixed: shrinks before it grows",
       "aaHOST_LONG_VALUEbbHOSTcc",
       {{2, 15}, {19, 4}},
       "SERVER1"},
      {"three pipelined values",
       req + req + req,
       {{host, 11}, {req.size() + host, 11}, {2 * req.size() + host, 11}},
       "198.18.1.11:8080"},
      {"value emptied", "keep-DROP-keep", {{4, 6}}, ""},
      {"raw IP", req, {{host, 11}}, "198.18.1.11:8080", false},
      {"padded frame grows", "ab", {{0, 1}}, "XYZ", true, 60},
      {"padded frame shrinks", "abcd", {{1, 2}}, "", true, 60},
  };
}

TEST(ReplacePayload, MatchesAPacketBuiltFromScratch) {
  for (const ReplaceCase& c : replaceCases()) {
    SCOPED_TRACE(c.description);
    TcpPacketSpec spec;
    spec.flags = tcpflag::kAck | tcpflag::kPsh;
    spec.seq = 0x01020304;
    spec.ack = 0xa0b0c0d0;
    spec.ethernet = c.ethernet;
    spec.payload = c.payload;
    auto packet = buildTcp(spec);
    if (c.padTo > packet.size()) packet.resize(c.padTo, 0xee);
    Buffer b(packet, 64, c.ethernet ? LinkType::kEthernet : LinkType::kRawIp);
    const size_t predicted =
        b.view.frameLengthAfter(c.edits.data(), c.edits.size(), c.value.size());

    ASSERT_TRUE(b.view.replacePayload(c.edits.data(), c.edits.size(), c.value));

    const std::string expected = applyEdits(c.payload, c.edits, c.value);
    TcpPacketSpec after = spec;
    after.payload = expected;
    EXPECT_EQ(b.frame(), buildTcp(after));  // headers, length, both checksums, payload
    EXPECT_EQ(b.payload(), expected);
    EXPECT_EQ(b.view.payloadLength, expected.size());
    EXPECT_EQ(b.view.ipTotalLength, 40 + expected.size());
    EXPECT_EQ(b.view.frameLength, predicted);
    EXPECT_EQ(b.view.frameLength, (c.ethernet ? 14u : 0u) + 40 + expected.size());
    EXPECT_TRUE(b.view.ipv4ChecksumValid());
    EXPECT_TRUE(b.view.tcpChecksumValid());
    // The view describes the new packet as a fresh parse would.
    PacketView again;
    ASSERT_EQ(parsePacket(b.bytes.data(), b.view.frameLength,
                          c.ethernet ? LinkType::kEthernet : LinkType::kRawIp, again),
              ParseStatus::kTcpIpv4);
    EXPECT_EQ(again.payloadLength, b.view.payloadLength);
  }
}

TEST(ReplacePayload, RandomEditsMatchFromScratch) {
  std::mt19937 rng(2024);
  for (int round = 0; round < 3000; ++round) {
    std::string payload(1 + rng() % 400, '\0');
    for (char& ch : payload) ch = static_cast<char>(rng());
    std::string value(rng() % 30, '\0');
    for (char& ch : value) ch = static_cast<char>(rng());
    // Up to 5 disjoint sorted edits of random lengths at random offsets.
    std::vector<PayloadEdit> edits;
    size_t at = 0;
    const size_t wanted = 1 + rng() % 5;
    while (edits.size() < wanted && at < payload.size()) {
      const size_t offset = at + rng() % (payload.size() - at);
      const size_t length = rng() % (payload.size() - offset + 1);
      edits.push_back({offset, length > 40 ? 40 : length});
      at = offset + edits.back().length;
      if (edits.back().length == 0) ++at;  // keep them disjoint and ordered
    }
    TcpPacketSpec spec;
    spec.flags = tcpflag::kAck;
    spec.seq = static_cast<uint32_t>(rng());
    spec.src = static_cast<uint32_t>(rng());
    spec.dst = static_cast<uint32_t>(rng());
    spec.ethernet = rng() % 2 == 0;
    if (rng() % 3 == 0) spec.tcpOptions = {1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8};
    spec.payload = payload;
    const LinkType link = spec.ethernet ? LinkType::kEthernet : LinkType::kRawIp;
    Buffer b(buildTcp(spec), 300, link);
    ASSERT_TRUE(b.view.replacePayload(edits.data(), edits.size(), value)) << round;
    const std::string expected = applyEdits(payload, edits, value);
    TcpPacketSpec after = spec;
    after.payload = expected;
    ASSERT_EQ(b.frame(), buildTcp(after)) << "round " << round;
    ASSERT_TRUE(b.view.tcpChecksumValid());
  }
}

TEST(ReplacePayload, NoEditsChangesNothing) {
  TcpPacketSpec spec;
  spec.payload = "hello";
  Buffer b(buildTcp(spec), 16);
  const auto before = b.bytes;
  EXPECT_TRUE(b.view.replacePayload(nullptr, 0, "xyz"));
  EXPECT_EQ(b.bytes, before);
  EXPECT_EQ(b.view.frameLengthAfter(nullptr, 0, 3), b.length);
}

TEST(ReplacePayload, AWrongChecksumStaysWrongByAsMuch) {
  const std::string payload = "GET / HTTP/1.1\r\nHost: 198.18.0.10\r\n\r\n";
  const PayloadEdit edit{payload.find("198"), 11};
  for (const std::string value : {"198.18.1.11:8080", "1.2.3.4", "198.18.1.11:80"}) {
    for (const bool odd : {false, true}) {
      SCOPED_TRACE(value + (odd ? " odd" : " even"));
      TcpPacketSpec spec;
      spec.flags = tcpflag::kAck;
      const std::string p = odd ? "x" + payload : payload;
      spec.payload = p;
      PayloadEdit e = edit;
      e.offset += odd ? 1 : 0;

      // Fixed first, then edited: valid.
      Buffer good(buildTcp(spec), 32);
      ASSERT_TRUE(good.view.replacePayload(&e, 1, value));
      EXPECT_TRUE(good.view.tcpChecksumValid());
      EXPECT_TRUE(good.view.ipv4ChecksumValid());

      // Wrong by 0x1234 (TCP) and 0x0101 (IP) in, wrong by as much out.
      Buffer bad(buildTcp(spec), 32);
      uint8_t* tcpField = bad.view.tcpChecksumField();
      uint8_t* ipField = bad.view.ipChecksumField();
      checksum::store16(tcpField, checksum::update16(checksum::load16(tcpField), 0, 0x1234));
      checksum::store16(ipField, checksum::update16(checksum::load16(ipField), 0, 0x0101));
      ASSERT_FALSE(bad.view.tcpChecksumValid());
      ASSERT_FALSE(bad.view.ipv4ChecksumValid());
      const uint16_t tcpOff =
          onesDifference(checksum::load16(tcpField), scratchTcpChecksum(bad.view));
      const uint16_t ipOff =
          onesDifference(checksum::load16(ipField),
                         checksum::ipv4HeaderChecksum(bad.view.ip, bad.view.ipHeaderLength));
      ASSERT_NE(tcpOff, 0);
      ASSERT_TRUE(bad.view.replacePayload(&e, 1, value));
      EXPECT_FALSE(bad.view.tcpChecksumValid());
      EXPECT_FALSE(bad.view.ipv4ChecksumValid());
      EXPECT_EQ(onesDifference(checksum::load16(tcpField), scratchTcpChecksum(bad.view)), tcpOff);
      EXPECT_EQ(onesDifference(checksum::load16(ipField),
                               checksum::ipv4HeaderChecksum(bad.view.ip, bad.view.ipHeaderLength)),
                ipOff);
      // Apart from the checksum fields, the same bytes as the good one.
      EXPECT_EQ(bad.payload(), good.payload());
      EXPECT_EQ(bad.view.frameLength, good.view.frameLength);
    }
  }
}

TEST(ReplacePayload, PartialChecksumTracksThePseudoHeaderLength) {
  const std::string payload = "GET / HTTP/1.1\r\nHost: 198.18.0.10\r\n\r\n";
  const PayloadEdit edit{payload.find("198"), 11};
  for (const std::string value : {"198.18.1.11:8080", "1.2.3.4", "198.18.1.11"}) {
    SCOPED_TRACE(value);
    TcpPacketSpec spec;
    spec.src = ip4(203, 0, 113, 200);
    spec.dst = ip4(198, 51, 100, 255);
    spec.flags = tcpflag::kAck;
    spec.payload = payload;
    Buffer b(buildTcp(spec), 32);
    b.view.l4ChecksumPartial = true;
    checksum::store16(b.view.tcpChecksumField(),
                      pseudoHeaderSum(spec.src, spec.dst, b.view.tcpSegmentLength()));
    ASSERT_TRUE(b.view.replacePayload(&edit, 1, value));
    const size_t newSegment = 20 + payload.size() - 11 + value.size();
    EXPECT_EQ(b.view.tcpSegmentLength(), newSegment);
    EXPECT_EQ(checksum::load16(b.view.tcpChecksumField()),
              pseudoHeaderSum(spec.src, spec.dst, newSegment));
    EXPECT_TRUE(b.view.ipv4ChecksumValid());
    EXPECT_EQ(b.payload(), applyEdits(payload, {edit}, value));
  }
}

// keepPayload: the kept bytes, at their new sequence number, without the FIN
// when the end goes, exactly as a packet built with them from the start.
TEST(KeepPayload, MatchesAPacketBuiltFromScratch) {
  const std::string payload = "GET /x HTTP/1.1\r\nHost: 198.18.0.10\r\nAccept: */*\r\n\r\n!";
  struct Case {
    size_t offset, length;
  };
  for (bool ethernet : {true, false}) {
    for (uint8_t flags : {uint8_t(tcpflag::kAck | tcpflag::kPsh),
                          uint8_t(tcpflag::kAck | tcpflag::kPsh | tcpflag::kFin)}) {
      for (Case k : {Case{0, 10}, Case{7, payload.size() - 7}, Case{3, 11}, Case{1, 0},
                     Case{0, payload.size()}}) {
        SCOPED_TRACE(std::to_string(k.offset) + "+" + std::to_string(k.length));
        TcpPacketSpec spec;
        spec.ethernet = ethernet;
        spec.seq = 0xfffffff0;  // wraps when moved
        spec.flags = flags;
        spec.payload = payload;
        spec.tcpOptions = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};  // timestamps
        Buffer b(buildTcp(spec), 0, ethernet ? LinkType::kEthernet : LinkType::kRawIp);
        b.view.keepPayload(k.offset, k.length);
        TcpPacketSpec want = spec;
        want.seq = spec.seq + static_cast<uint32_t>(k.offset);
        const std::string kept = payload.substr(k.offset, k.length);
        want.payload = kept;
        if (k.offset + k.length < payload.size()) want.flags &= ~tcpflag::kFin;
        EXPECT_EQ(b.frame(), buildTcp(want));
        EXPECT_EQ(b.payload(), kept);
        EXPECT_TRUE(b.view.ipv4ChecksumValid());
        EXPECT_TRUE(b.view.tcpChecksumValid());
      }
    }
  }
}

TEST(KeepPayload, PartialChecksumTracksThePseudoHeaderLength) {
  const std::string payload = "0123456789abcdef";
  TcpPacketSpec spec;
  spec.flags = tcpflag::kAck | tcpflag::kFin;
  spec.payload = payload;
  Buffer b(buildTcp(spec), 0);
  b.view.l4ChecksumPartial = true;
  checksum::store16(b.view.tcpChecksumField(),
                    pseudoHeaderSum(spec.src, spec.dst, b.view.tcpSegmentLength()));
  b.view.keepPayload(4, 6);
  EXPECT_EQ(b.payload(), "456789");
  EXPECT_EQ(b.view.seq(), spec.seq + 4);
  EXPECT_EQ(b.view.tcpFlags(), tcpflag::kAck);
  EXPECT_EQ(checksum::load16(b.view.tcpChecksumField()), pseudoHeaderSum(spec.src, spec.dst, 26));
  EXPECT_TRUE(b.view.ipv4ChecksumValid());
}

TEST(ReplacePayload, RefusedWhenItDoesNotFitAndNothingChanges) {
  const std::string payload = "GET / HTTP/1.1\r\nHost: 198.18.0.10\r\n\r\n";
  const PayloadEdit edit{payload.find("198"), 11};
  TcpPacketSpec spec;
  spec.flags = tcpflag::kAck;
  spec.payload = payload;
  {
    Buffer b(buildTcp(spec), 4);  // needs 5 more
    const auto before = b.bytes;
    const PacketView viewBefore = b.view;
    EXPECT_EQ(b.view.frameLengthAfter(&edit, 1, 16), b.length + 5);
    EXPECT_FALSE(b.view.replacePayload(&edit, 1, "198.18.1.11:8080"));
    EXPECT_EQ(b.bytes, before);
    EXPECT_EQ(b.view.frameLength, viewBefore.frameLength);
    EXPECT_EQ(b.view.payloadLength, viewBefore.payloadLength);
    EXPECT_EQ(b.view.ipTotalLength, viewBefore.ipTotalLength);
    // Exactly the room it needs is enough.
    EXPECT_TRUE(b.view.replacePayload(&edit, 1, "198.18.1.11:808"));
    EXPECT_EQ(b.view.frameLength, b.length + 4);
    EXPECT_TRUE(b.view.tcpChecksumValid());
  }
  {
    // frameCapacity unset: no room beyond the frame, but shrinking works.
    Buffer b(buildTcp(spec), 0);
    b.view.frameCapacity = 0;
    const auto before = b.bytes;
    EXPECT_FALSE(b.view.replacePayload(&edit, 1, "198.18.1.11:80"));
    EXPECT_EQ(b.bytes, before);
    EXPECT_TRUE(b.view.replacePayload(&edit, 1, "10.1.1.1"));
    EXPECT_EQ(b.view.frameLength, b.length - 3);
    EXPECT_TRUE(b.view.tcpChecksumValid());
  }
  {
    // Ethernet padding is room: a 2-byte payload padded to 60 bytes may grow by 4.
    TcpPacketSpec small = spec;
    small.payload = "ab";
    auto p = buildTcp(small);
    ASSERT_EQ(p.size(), 56u);
    p.resize(60, 0);
    Buffer b(p, 0);
    b.view.frameCapacity = 0;
    const PayloadEdit e{0, 1};
    EXPECT_FALSE(b.view.replacePayload(&e, 1, "123456"));  // 61 bytes
    EXPECT_TRUE(b.view.replacePayload(&e, 1, "12345"));    // 60 bytes
    small.payload = "12345b";
    EXPECT_EQ(b.frame(), buildTcp(small));
  }
  {
    // An IPv4 packet is at most 65535 bytes, whatever the buffer holds.
    std::string big(65535 - 40, 'a');
    TcpPacketSpec huge;
    huge.flags = tcpflag::kAck;
    huge.ethernet = false;
    huge.payload = big;
    Buffer b(buildTcp(huge), 100, LinkType::kRawIp);
    ASSERT_EQ(b.view.ipTotalLength, 65535u);
    const auto before = b.bytes;
    const PayloadEdit e{100, 1};
    EXPECT_FALSE(b.view.replacePayload(&e, 1, "bb"));
    EXPECT_EQ(b.bytes, before);
    EXPECT_EQ(b.view.ipTotalLength, 65535u);
    EXPECT_TRUE(b.view.replacePayload(&e, 1, "b"));  // same length: fine
    EXPECT_TRUE(b.view.tcpChecksumValid());
  }
}

TEST(TcpWords, SeqAndAckKeepTheChecksumValid) {
  TcpPacketSpec spec;
  spec.flags = tcpflag::kAck;
  spec.seq = 0xfffffff0;
  spec.ack = 12345;
  spec.payload = "odd";
  Buffer b(buildTcp(spec), 0);
  b.view.setSeq(0x0000000b);
  b.view.setAck(0x89abcdef);
  spec.seq = 0x0000000b;
  spec.ack = 0x89abcdef;
  EXPECT_EQ(b.frame(), buildTcp(spec));

  // With a partial checksum they are not in the sum: the field stays.
  Buffer p(buildTcp(spec), 0);
  p.view.l4ChecksumPartial = true;
  const uint16_t partial = pseudoHeaderSum(spec.src, spec.dst, p.view.tcpSegmentLength());
  checksum::store16(p.view.tcpChecksumField(), partial);
  p.view.setSeq(1);
  p.view.setAck(2);
  EXPECT_EQ(p.view.seq(), 1u);
  EXPECT_EQ(p.view.ack(), 2u);
  EXPECT_EQ(checksum::load16(p.view.tcpChecksumField()), partial);
}

TEST(TcpWords, SackEdgesAtOddAndEvenOffsets) {
  // NOP, SACK with two blocks (18 bytes), then padding: edges at 23, 27, 31, 35.
  // NOP, NOP, SACK: edges at 24, 28.
  const std::vector<uint8_t> oddOptions = {1, 5, 18, 0, 0, 0, 1, 0, 0, 0,
                                           2, 0, 0,  0, 3, 0, 0, 0, 4, 0};
  const std::vector<uint8_t> evenOptions = {1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2};
  for (const auto& [options, firstEdge] :
       {std::pair{oddOptions, size_t{23}}, std::pair{evenOptions, size_t{24}}}) {
    SCOPED_TRACE(firstEdge);
    TcpPacketSpec spec;
    spec.flags = tcpflag::kAck;
    spec.tcpOptions = options;
    spec.payload = "abcde";
    Buffer b(buildTcp(spec), 0);
    uint8_t* edge = b.view.tcp + firstEdge;
    b.view.rewriteTcp32(edge, 0xdeadbeef);
    b.view.rewriteTcp32(edge + 4, 0x00fffe01);
    std::vector<uint8_t> expectedOptions = options;
    const size_t at = firstEdge - 20;
    checksum::store32(expectedOptions.data() + at, 0xdeadbeef);
    checksum::store32(expectedOptions.data() + at + 4, 0x00fffe01);
    spec.tcpOptions = expectedOptions;
    EXPECT_EQ(b.frame(), buildTcp(spec));
    EXPECT_TRUE(b.view.tcpChecksumValid());
  }
  // Random values at every offset in the options area.
  std::mt19937 rng(99);
  for (size_t offset = 20; offset + 4 <= 40; ++offset) {
    TcpPacketSpec spec;
    spec.flags = tcpflag::kAck;
    spec.tcpOptions.assign(20, 1);
    spec.payload = "xyz";
    Buffer b(buildTcp(spec), 0);
    const auto value = static_cast<uint32_t>(rng());
    b.view.rewriteTcp32(b.view.tcp + offset, value);
    EXPECT_EQ(checksum::load32(b.view.tcp + offset), value);
    EXPECT_TRUE(b.view.tcpChecksumValid()) << offset;
  }
}

}  // namespace
}  // namespace fulcrum
