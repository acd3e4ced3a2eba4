#include "shared/net/checksum.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "shared/net/address.h"
#include "shared/net/packet_view.h"
#include "tests/common/packet_builder.h"

namespace fulcrum {
namespace {

using testing::buildTcp;
using testing::ip4;
using testing::TcpPacketSpec;

std::vector<uint8_t> fromHex(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::string toHex(const std::vector<uint8_t>& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t x : b) {
    s += d[x >> 4];
    s += d[x & 15];
  }
  return s;
}

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 section 3 example: the sum of these words is 0xddf2.
  const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(checksum::fold(checksum::sumBytes(data, sizeof(data))), 0xddf2);
}

TEST(Checksum, Rfc1624ZeroCase) {
  // RFC 1624 section 3: the other words sum to 0xcd7a and m = 0x5555
  // changes to 0x3285. Equation 3 must give 0x0000, as a from-scratch
  // computation does, where the older equation 2 gave 0xffff.
  const uint16_t hc = static_cast<uint16_t>(~checksum::fold(0xcd7a + 0x5555));
  EXPECT_EQ(hc, 0xdd2f);
  EXPECT_EQ(checksum::update16(hc, 0x5555, 0x3285), 0x0000);
  EXPECT_EQ(static_cast<uint16_t>(~checksum::fold(0xcd7a + 0x3285)), 0x0000);
}

TEST(Checksum, IncrementalMatchesScratchOnRandomPackets) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 2000; ++round) {
    std::string payload(rng() % 300, '\0');
    for (char& c : payload) c = static_cast<char>(rng());
    TcpPacketSpec spec;
    spec.ethernet = false;
    spec.src = rng();
    spec.dst = rng();
    spec.srcPort = static_cast<uint16_t>(rng());
    spec.dstPort = static_cast<uint16_t>(rng());
    spec.seq = rng();
    spec.flags = static_cast<uint8_t>(rng());
    spec.payload = payload;
    std::vector<uint8_t> p = buildTcp(spec);
    PacketView v;
    ASSERT_EQ(parsePacket(p.data(), p.size(), LinkType::kRawIp, v), ParseStatus::kTcpIpv4);
    ASSERT_TRUE(v.ipv4ChecksumValid());
    ASSERT_TRUE(v.tcpChecksumValid());
    v.setDstV4(rng());
    v.setDstPort(static_cast<uint16_t>(rng()));
    v.setSrcV4(rng());
    v.setSrcPort(static_cast<uint16_t>(rng()));
    EXPECT_TRUE(v.ipv4ChecksumValid()) << round;
    EXPECT_TRUE(v.tcpChecksumValid()) << round;
  }
}

// Vectors written by scapy (an independent implementation); see
// tests/captures/make-checksum-vectors.py for the command that made them.
TEST(Checksum, MatchesScapyVectors) {
  std::ifstream file(std::string(FULCRUM_SOURCE_DIR) + "/tests/data/checksum_vectors.txt");
  ASSERT_TRUE(file) << "tests/data/checksum_vectors.txt missing";
  std::string line;
  int vectors = 0;
  while (std::getline(file, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string name, origHex, field, addr, expectedHex;
    unsigned port = 0;
    ASSERT_TRUE(in >> name >> origHex >> field >> addr >> port >> expectedHex) << line;
    std::vector<uint8_t> packet = fromHex(origHex);
    PacketView v;
    ASSERT_EQ(parsePacket(packet.data(), packet.size(), LinkType::kRawIp, v), ParseStatus::kTcpIpv4)
        << name;
    EXPECT_TRUE(v.ipv4ChecksumValid()) << name;
    EXPECT_TRUE(v.tcpChecksumValid()) << name;
    auto address = IpAddress::parse(addr);
    ASSERT_TRUE(address && address->isV4()) << name;
    if (field == "dst") {
      v.setDstV4(address->v4HostOrder());
      v.setDstPort(static_cast<uint16_t>(port));
    } else {
      ASSERT_EQ(field, "src") << name;
      v.setSrcV4(address->v4HostOrder());
      v.setSrcPort(static_cast<uint16_t>(port));
    }
    EXPECT_EQ(toHex(packet), expectedHex) << name;
    ++vectors;
  }
  EXPECT_GE(vectors, 12);
}

}  // namespace
}  // namespace fulcrum

namespace fulcrum {
namespace {

// What a kernel with checksum offload does: the TCP checksum field starts as
// the folded pseudo-header sum, and the stack completes it over the segment.
uint16_t pseudoSum(const PacketView& v) {
  uint64_t sum = (v.srcV4() >> 16) + (v.srcV4() & 0xffff) + (v.dstV4() >> 16) +
                 (v.dstV4() & 0xffff) + 6 + v.tcpSegmentLength();
  return checksum::fold(sum);
}
uint16_t complete(const PacketView& v) {
  return static_cast<uint16_t>(~checksum::fold(checksum::sumBytes(v.tcp, v.tcpSegmentLength())));
}

TEST(Checksum, PartialChecksumsFollowAddressAndPortRewrites) {
  std::mt19937 rng(99);
  for (int round = 0; round < 500; ++round) {
    std::string payload(rng() % 200, 'x');
    testing::TcpPacketSpec spec;
    spec.ethernet = false;
    spec.src = rng();
    spec.dst = rng();
    spec.srcPort = static_cast<uint16_t>(rng());
    spec.dstPort = static_cast<uint16_t>(rng());
    spec.payload = payload;
    std::vector<uint8_t> p = testing::buildTcp(spec);
    PacketView v;
    ASSERT_EQ(parsePacket(p.data(), p.size(), LinkType::kRawIp, v), ParseStatus::kTcpIpv4);
    checksum::store16(v.tcpChecksumField(), pseudoSum(v));  // as handed over with NEEDS_CSUM
    v.l4ChecksumPartial = true;
    v.setDstV4(rng());
    v.setDstPort(static_cast<uint16_t>(rng()));
    v.setSrcV4(rng());
    v.setSrcPort(static_cast<uint16_t>(rng()));
    EXPECT_TRUE(v.ipv4ChecksumValid()) << round;
    // Still the pseudo-header sum of the new addresses...
    EXPECT_EQ(checksum::load16(v.tcpChecksumField()), pseudoSum(v)) << round;
    // ...so completing it as the kernel does gives the right checksum.
    checksum::store16(v.tcpChecksumField(), complete(v));
    EXPECT_TRUE(v.tcpChecksumValid()) << round;
  }
}

}  // namespace
}  // namespace fulcrum
