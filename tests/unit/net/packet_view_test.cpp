#include "shared/net/packet_view.h"

#include <gtest/gtest.h>

#include <memory>

#include "tests/common/packet_builder.h"

namespace fulcrum {
namespace {

using testing::buildTcp;
using testing::ip4;
using testing::TcpPacketSpec;

ParseStatus parseCopy(const std::vector<uint8_t>& bytes, size_t n, LinkType link) {
  // An exactly sized heap copy, so AddressSanitizer flags any read past n.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[n == 0 ? 1 : n]);
  std::copy(bytes.begin(), bytes.begin() + static_cast<long>(n), copy.get());
  PacketView v;
  return parsePacket(n == 0 ? nullptr : copy.get(), n, link, v);
}

TEST(PacketView, ParsesEthernetIpv4Tcp) {
  TcpPacketSpec spec;
  spec.payload = "GET / HTTP/1.1\r\n";
  spec.flags = tcpflag::kAck | tcpflag::kPsh;
  spec.seq = 0x11223344;
  spec.ack = 0x55667788;
  auto p = buildTcp(spec);
  PacketView v;
  ASSERT_EQ(parsePacket(p.data(), p.size(), LinkType::kEthernet, v), ParseStatus::kTcpIpv4);
  EXPECT_EQ(v.ip, p.data() + 14);
  EXPECT_EQ(v.srcV4(), spec.src);
  EXPECT_EQ(v.dstV4(), spec.dst);
  EXPECT_EQ(v.srcPort(), 40000);
  EXPECT_EQ(v.dstPort(), 80);
  EXPECT_EQ(v.seq(), 0x11223344u);
  EXPECT_EQ(v.ack(), 0x55667788u);
  EXPECT_EQ(v.tcpFlags(), tcpflag::kAck | tcpflag::kPsh);
  EXPECT_EQ(v.payloadLength, spec.payload.size());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(v.payload), v.payloadLength), spec.payload);
  EXPECT_EQ(v.vlanId, 0);
}

TEST(PacketView, ParsesVlanTagsOptionsAndRawIp) {
  TcpPacketSpec spec;
  spec.vlanTags = 1;
  spec.ipOptions = {1, 1, 1, 1};                     // four NOPs: IHL 6
  spec.tcpOptions = {2, 4, 0x05, 0xb4, 1, 1, 4, 2};  // MSS, NOP, NOP, SACK-permitted
  auto p = buildTcp(spec);
  PacketView v;
  ASSERT_EQ(parsePacket(p.data(), p.size(), LinkType::kEthernet, v), ParseStatus::kTcpIpv4);
  EXPECT_EQ(v.vlanId, 100);
  EXPECT_EQ(v.ipHeaderLength, 24u);
  EXPECT_EQ(v.tcpHeaderLength, 28u);
  EXPECT_EQ(v.dstPort(), 80);

  spec.vlanTags = 2;
  p = buildTcp(spec);
  ASSERT_EQ(parsePacket(p.data(), p.size(), LinkType::kEthernet, v), ParseStatus::kTcpIpv4);
  EXPECT_EQ(v.vlanId, 101);  // innermost tag

  spec.ethernet = false;
  p = buildTcp(spec);
  ASSERT_EQ(parsePacket(p.data(), p.size(), LinkType::kRawIp, v), ParseStatus::kTcpIpv4);
  EXPECT_EQ(v.ip, p.data());
}

TEST(PacketView, IgnoresEthernetPaddingAfterTotalLength) {
  TcpPacketSpec spec;
  spec.flags = tcpflag::kAck;
  auto p = buildTcp(spec);
  p.resize(60, 0xee);  // minimum Ethernet frame, padded
  PacketView v;
  ASSERT_EQ(parsePacket(p.data(), p.size(), LinkType::kEthernet, v), ParseStatus::kTcpIpv4);
  EXPECT_EQ(v.payloadLength, 0u);
  EXPECT_TRUE(v.tcpChecksumValid());
}

// Every header cut at every byte offset: never TCP, never a read past the end.
TEST(PacketView, TruncatedAtEveryOffsetIsMalformed) {
  for (int tags = 0; tags <= 2; ++tags) {
    for (bool ethernet : {true, false}) {
      if (!ethernet && tags) continue;
      TcpPacketSpec spec;
      spec.ethernet = ethernet;
      spec.vlanTags = tags;
      spec.ipOptions = {7, 7, 4, 0};  // record route, room for nothing: still an option
      spec.tcpOptions = {2, 4, 0x05, 0xb4};
      spec.payload = "abc";
      auto p = buildTcp(spec);
      const LinkType link = ethernet ? LinkType::kEthernet : LinkType::kRawIp;
      for (size_t n = 0; n < p.size(); ++n) {
        ParseStatus s = parseCopy(p, n, link);
        if (!ethernet && n == 0) {
          EXPECT_EQ(s, ParseStatus::kNotIp);
          continue;
        }
        EXPECT_TRUE(isMalformed(s))
            << "tags " << tags << " length " << n << " gave " << parseStatusName(s);
      }
      EXPECT_EQ(parseCopy(p, p.size(), link), ParseStatus::kTcpIpv4);
    }
  }
}

struct BadHeaderCase {
  const char* description;
  void (*mutate)(std::vector<uint8_t>& raw);  // on a raw IPv4 packet
  ParseStatus expected;
};

class BadHeaders : public ::testing::TestWithParam<BadHeaderCase> {};

TEST_P(BadHeaders, AreNamed) {
  TcpPacketSpec spec;
  spec.ethernet = false;
  spec.payload = "0123456789";
  auto p = buildTcp(spec);
  GetParam().mutate(p);
  EXPECT_EQ(parseCopy(p, p.size(), LinkType::kRawIp), GetParam().expected)
      << GetParam().description;
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadHeaders,
    ::testing::Values(
        BadHeaderCase{"IHL 4", [](auto& p) { p[0] = 0x44; }, ParseStatus::kIpv4BadIhl},
        BadHeaderCase{"IHL 0", [](auto& p) { p[0] = 0x40; }, ParseStatus::kIpv4BadIhl},
        BadHeaderCase{"IHL beyond the packet",
                      [](auto& p) {
                        p[0] = 0x4f;
                        p.resize(50);
                      },
                      ParseStatus::kIpv4BadIhl},
        BadHeaderCase{"total length beyond the frame",
                      [](auto& p) { checksum::store16(p.data() + 2, 1500); },
                      ParseStatus::kIpv4BadTotalLength},
        BadHeaderCase{"total length below IHL",
                      [](auto& p) { checksum::store16(p.data() + 2, 19); },
                      ParseStatus::kIpv4BadTotalLength},
        BadHeaderCase{"total length cuts TCP header",
                      [](auto& p) { checksum::store16(p.data() + 2, 30); },
                      ParseStatus::kTcpTruncated},
        BadHeaderCase{"more fragments", [](auto& p) { p[6] = 0x20; }, ParseStatus::kIpv4Fragment},
        BadHeaderCase{"later fragment",
                      [](auto& p) {
                        p[6] = 0x00;
                        p[7] = 0x10;
                      },
                      ParseStatus::kIpv4Fragment},
        BadHeaderCase{"TCP data offset 4", [](auto& p) { p[20 + 12] = 0x40; },
                      ParseStatus::kTcpBadOffset},
        BadHeaderCase{"TCP data offset beyond segment", [](auto& p) { p[20 + 12] = 0xf0; },
                      ParseStatus::kTcpBadOffset},
        BadHeaderCase{"UDP is not TCP", [](auto& p) { p[9] = 17; }, ParseStatus::kNotTcp},
        BadHeaderCase{"UDP fragment is not TCP",
                      [](auto& p) {
                        p[9] = 17;
                        p[6] = 0x20;
                      },
                      ParseStatus::kNotTcp},
        BadHeaderCase{"version 5", [](auto& p) { p[0] = 0x55; }, ParseStatus::kNotIp}));

TEST(PacketView, EthernetTypesAndIpv6) {
  TcpPacketSpec spec;
  auto p = buildTcp(spec);
  PacketView v;
  auto q = p;
  q[12] = 0x08;
  q[13] = 0x06;  // ARP
  EXPECT_EQ(parsePacket(q.data(), q.size(), LinkType::kEthernet, v), ParseStatus::kNotIp);
  q = p;
  q[14] = 0x65;  // EtherType IPv4, version 6
  EXPECT_EQ(parsePacket(q.data(), q.size(), LinkType::kEthernet, v), ParseStatus::kIpv4BadVersion);

  std::vector<uint8_t> v6(14 + 40 + 20, 0);
  v6[12] = 0x86;
  v6[13] = 0xdd;
  v6[14] = 0x60;
  v6[14 + 5] = 20;  // payload length
  v6[14 + 6] = 6;   // next header TCP
  EXPECT_EQ(parsePacket(v6.data(), v6.size(), LinkType::kEthernet, v), ParseStatus::kTcpIpv6);
  v6[14 + 6] = 0;  // hop-by-hop options first
  EXPECT_EQ(parsePacket(v6.data(), v6.size(), LinkType::kEthernet, v), ParseStatus::kIpv6Other);
  v6[14 + 5] = 21;  // claims more than the frame holds
  EXPECT_EQ(parsePacket(v6.data(), v6.size(), LinkType::kEthernet, v), ParseStatus::kIpv6Truncated);
  for (size_t n = 14; n < 14 + 40; ++n)
    EXPECT_EQ(parseCopy(v6, n, LinkType::kEthernet), ParseStatus::kIpv6Truncated) << n;

  std::vector<uint8_t> tagged(14 + 4 * 3 + 20, 0);
  for (int i = 0; i < 3; ++i) {
    tagged[12 + 4 * i] = 0x81;
  }
  EXPECT_EQ(parsePacket(tagged.data(), tagged.size(), LinkType::kEthernet, v),
            ParseStatus::kVlanTruncated);
}

TEST(PacketView, EveryStatusHasAName) {
  for (int s = 0; s <= static_cast<int>(ParseStatus::kIpv6Truncated); ++s)
    EXPECT_STRNE(parseStatusName(static_cast<ParseStatus>(s)), "unknown") << s;
}

}  // namespace
}  // namespace fulcrum
