#include "shared/net/packet_view.h"

namespace fulcrum {

namespace {

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint16_t kEtherTypeVlan = 0x8100;
constexpr uint16_t kEtherTypeQinQ = 0x88a8;
constexpr uint8_t kProtoTcp = 6;

ParseStatus parseIpv6(uint8_t* p, size_t avail, PacketView& v) {
  if (avail < 40) return ParseStatus::kIpv6Truncated;
  size_t payload = checksum::load16(p + 4);
  if (40 + payload > avail) return ParseStatus::kIpv6Truncated;
  v.ip = p;
  v.ipHeaderLength = 40;
  v.ipTotalLength = 40 + payload;
  return p[6] == kProtoTcp ? ParseStatus::kTcpIpv6 : ParseStatus::kIpv6Other;
}

ParseStatus parseIpv4(uint8_t* p, size_t avail, PacketView& v) {
  if (avail < 20) return ParseStatus::kIpv4Truncated;
  if ((p[0] >> 4) != 4) return ParseStatus::kIpv4BadVersion;
  size_t ihl = size_t{p[0] & 0x0fu} * 4;
  if (ihl < 20 || ihl > avail) return ParseStatus::kIpv4BadIhl;
  size_t total = checksum::load16(p + 2);
  if (total < ihl || total > avail) return ParseStatus::kIpv4BadTotalLength;
  v.ip = p;
  v.ipHeaderLength = ihl;
  v.ipTotalLength = total;
  uint16_t fragment = checksum::load16(p + 6);
  bool isFragment = (fragment & 0x2000) != 0 || (fragment & 0x1fff) != 0;
  if (p[9] != kProtoTcp) return ParseStatus::kNotTcp;
  // Only the first fragment carries ports; a session cannot be found for the
  // others, and forwarding them un-NATed would deliver half a segment to the
  // wrong host. Servers and clients use PMTU discovery, so these are rare.
  if (isFragment) return ParseStatus::kIpv4Fragment;
  size_t segment = total - ihl;
  if (segment < 20) return ParseStatus::kTcpTruncated;
  uint8_t* tcp = p + ihl;
  size_t doff = static_cast<size_t>(tcp[12] >> 4) * 4;
  if (doff < 20 || doff > segment) return ParseStatus::kTcpBadOffset;
  v.tcp = tcp;
  v.tcpHeaderLength = doff;
  v.payload = tcp + doff;
  v.payloadLength = segment - doff;
  return ParseStatus::kTcpIpv4;
}

}  // namespace

const char* parseStatusName(ParseStatus s) {
  switch (s) {
    case ParseStatus::kTcpIpv4:
      return "tcp_ipv4";
    case ParseStatus::kTcpIpv6:
      return "tcp_ipv6";
    case ParseStatus::kIpv6Other:
      return "ipv6_other";
    case ParseStatus::kNotIp:
      return "not_ip";
    case ParseStatus::kNotTcp:
      return "not_tcp";
#define FULCRUM_X(e, name, help) \
  case ParseStatus::e:           \
    return name;
      FULCRUM_PACKET_MALFORMED(FULCRUM_X)
#undef FULCRUM_X
  }
  return "unknown";
}

ParseStatus parsePacket(uint8_t* frame, size_t length, LinkType link, PacketView& v) {
  v = PacketView{};
  v.frame = frame;
  v.frameLength = length;
  if (link == LinkType::kRawIp) {
    if (length < 1) return ParseStatus::kNotIp;
    uint8_t version = frame[0] >> 4;
    if (version == 4) return parseIpv4(frame, length, v);
    if (version == 6) return parseIpv6(frame, length, v);
    return ParseStatus::kNotIp;
  }
  if (length < 14) return ParseStatus::kEthernetTruncated;
  size_t offset = 12;
  uint16_t type = checksum::load16(frame + offset);
  for (int tags = 0; type == kEtherTypeVlan || type == kEtherTypeQinQ; ++tags) {
    if (tags == 2 || offset + 6 > length) return ParseStatus::kVlanTruncated;
    v.vlanId = checksum::load16(frame + offset + 2) & 0x0fff;
    offset += 4;
    type = checksum::load16(frame + offset);
  }
  offset += 2;
  if (type == kEtherTypeIpv4) return parseIpv4(frame + offset, length - offset, v);
  if (type == kEtherTypeIpv6) return parseIpv6(frame + offset, length - offset, v);
  return ParseStatus::kNotIp;
}

bool PacketView::ipv4ChecksumValid() const {
  return checksum::ipv4HeaderChecksum(ip, ipHeaderLength) == checksum::load16(ip + 10);
}

bool PacketView::tcpChecksumValid() const {
  return checksum::ipv4TransportChecksum(srcV4(), dstV4(), 6, tcp, tcpSegmentLength(), 16) ==
         checksum::load16(tcp + 16);
}

}  // namespace fulcrum
