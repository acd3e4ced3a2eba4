// Builds IPv4 TCP packets for tests, fuzz seeds and benchmarks, with
// checksums computed from scratch. Header-only; test code, not the data plane.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "shared/net/checksum.h"
#include "shared/net/packet_view.h"

namespace fulcrum::testing {

inline constexpr uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return (uint32_t{a} << 24) | (uint32_t{b} << 16) | (uint32_t{c} << 8) | d;
}

struct TcpPacketSpec {
  uint32_t src = ip4(198, 18, 0, 1);
  uint32_t dst = ip4(198, 18, 0, 10);
  uint16_t srcPort = 40000;
  uint16_t dstPort = 80;
  uint32_t seq = 1000;
  uint32_t ack = 0;
  uint8_t flags = tcpflag::kSyn;
  uint16_t window = 64240;
  std::vector<uint8_t> tcpOptions;  // padded to a multiple of 4
  std::vector<uint8_t> ipOptions;   // padded to a multiple of 4
  std::string_view payload;
  bool ethernet = true;
  int vlanTags = 0;  // 0, 1 or 2
  uint16_t ipId = 1;
  uint16_t fragment = 0x4000;  // DF
  uint8_t ttl = 64;
};

inline std::vector<uint8_t> buildTcp(const TcpPacketSpec& s) {
  using checksum::store16;
  using checksum::store32;
  std::vector<uint8_t> ipOpt = s.ipOptions, tcpOpt = s.tcpOptions;
  while (ipOpt.size() % 4) ipOpt.push_back(0);
  while (tcpOpt.size() % 4) tcpOpt.push_back(0);
  const size_t ihl = 20 + ipOpt.size(), thl = 20 + tcpOpt.size();
  const size_t total = ihl + thl + s.payload.size();
  std::vector<uint8_t> p;
  if (s.ethernet) {
    uint8_t mac[12] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1};
    p.resize(12);
    std::memcpy(p.data(), mac, 12);
    for (int i = 0; i < s.vlanTags; ++i) {
      p.push_back(i == 0 && s.vlanTags == 2 ? 0x88 : 0x81);
      p.push_back(i == 0 && s.vlanTags == 2 ? 0xa8 : 0x00);
      p.push_back(0x00);
      p.push_back(static_cast<uint8_t>(100 + i));
    }
    p.push_back(0x08);
    p.push_back(0x00);
  }
  const size_t l3 = p.size();
  p.resize(l3 + total, 0);
  uint8_t* ip = p.data() + l3;
  ip[0] = static_cast<uint8_t>(0x40 | (ihl / 4));
  store16(ip + 2, static_cast<uint16_t>(total));
  store16(ip + 4, s.ipId);
  store16(ip + 6, s.fragment);
  ip[8] = s.ttl;
  ip[9] = 6;
  store32(ip + 12, s.src);
  store32(ip + 16, s.dst);
  // memcpy with explicit sizes: g++ 12 misreads std::copy of an empty vector
  // into a resized buffer as an overflow (-Wstringop-overflow).
  if (!ipOpt.empty()) std::memcpy(ip + 20, ipOpt.data(), ipOpt.size());
  uint8_t* tcp = ip + ihl;
  store16(tcp, s.srcPort);
  store16(tcp + 2, s.dstPort);
  store32(tcp + 4, s.seq);
  store32(tcp + 8, s.ack);
  tcp[12] = static_cast<uint8_t>((thl / 4) << 4);
  tcp[13] = s.flags;
  store16(tcp + 14, s.window);
  if (!tcpOpt.empty()) std::memcpy(tcp + 20, tcpOpt.data(), tcpOpt.size());
  if (!s.payload.empty()) std::memcpy(tcp + thl, s.payload.data(), s.payload.size());
  store16(ip + 10, checksum::ipv4HeaderChecksum(ip, ihl));
  store16(tcp + 16,
          checksum::ipv4TransportChecksum(s.src, s.dst, 6, tcp, thl + s.payload.size(), 16));
  return p;
}

}  // namespace fulcrum::testing
