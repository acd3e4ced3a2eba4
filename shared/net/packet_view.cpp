#include "shared/net/packet_view.h"

#include <cstring>

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

size_t PacketView::frameLengthAfter(const PayloadEdit* edits, size_t count,
                                    size_t valueLength) const {
  size_t bytes = payloadLength;
  for (size_t i = 0; i < count; ++i) bytes = bytes - edits[i].length + valueLength;
  return static_cast<size_t>(payload - frame) + bytes;
}

namespace {

// Moves the tail of a payload while edits are applied: the original bytes
// after the first edit are copied here first, so edits that grow and edits
// that shrink can be mixed without overwriting bytes not yet moved.
thread_local uint8_t tailScratch[65536];

}  // namespace

bool PacketView::replacePayload(const PayloadEdit* edits, size_t count, std::string_view value) {
  if (count == 0) return true;
  const size_t newFrameLength = frameLengthAfter(edits, count, value.size());
  const size_t ipOffset = static_cast<size_t>(ip - frame);
  const size_t newIpTotal = newFrameLength - ipOffset;
  const size_t room = frameCapacity > frameLength ? frameCapacity : frameLength;
  if (newFrameLength > room || newIpTotal > 65535) return false;

  // Everything from the first edit to the end of the segment changes.
  const size_t first = edits[0].offset;
  uint8_t* from = payload + first;
  const size_t oldTail = payloadLength - first;
  const size_t newTail = newFrameLength - static_cast<size_t>(from - frame);
  const bool odd = ((from - tcp) & 1) != 0;
  const uint16_t oldSum = l4ChecksumPartial ? 0 : checksum::sumBytesAt(from, oldTail, odd);

  std::memcpy(tailScratch, from, oldTail);
  uint8_t* out = from;
  size_t in = 0;  // offset in tailScratch
  for (size_t i = 0; i < count; ++i) {
    const size_t at = edits[i].offset - first;
    std::memcpy(out, tailScratch + in, at - in);
    out += at - in;
    std::memcpy(out, value.data(), value.size());
    out += value.size();
    in = at + edits[i].length;
  }
  std::memcpy(out, tailScratch + in, oldTail - in);

  const auto oldSegment = static_cast<uint16_t>(tcpSegmentLength());
  const auto newSegment = static_cast<uint16_t>(newIpTotal - ipHeaderLength);
  checksum::rewrite16(ip + 2, static_cast<uint16_t>(newIpTotal), ipChecksumField());
  if (l4ChecksumPartial) {
    // Only the pseudo-header's length is in a partial sum; the payload is
    // summed later by the kernel.
    const auto partial = static_cast<uint16_t>(~checksum::load16(tcpChecksumField()));
    checksum::store16(tcpChecksumField(),
                      static_cast<uint16_t>(~checksum::update16(partial, oldSegment, newSegment)));
  } else {
    // RFC 1624 over whole runs: HC' = ~(~HC + ~m + m') with m the old tail's
    // sum and the pseudo-header's length.
    const uint16_t newSum = checksum::sumBytesAt(from, newTail, odd);
    uint16_t c = checksum::update16(checksum::load16(tcpChecksumField()), oldSum, newSum);
    c = checksum::update16(c, oldSegment, newSegment);
    checksum::store16(tcpChecksumField(), c);
  }
  ipTotalLength = newIpTotal;
  payloadLength = newFrameLength - static_cast<size_t>(payload - frame);
  frameLength = newFrameLength;
  return true;
}

void PacketView::keepPayload(size_t offset, size_t length) {
  if (offset > payloadLength || length > payloadLength - offset) return;
  if (offset == 0 && length == payloadLength) return;
  const bool dropsEnd = offset + length < payloadLength;
  // The payload starts at an even offset of the segment (the TCP header is
  // a multiple of 4 bytes), so its sums need no byte swap.
  const uint16_t oldSum =
      l4ChecksumPartial ? 0 : checksum::fold(checksum::sumBytes(payload, payloadLength));
  std::memmove(payload, payload + offset, length);
  const uint16_t newSum =
      l4ChecksumPartial ? 0 : checksum::fold(checksum::sumBytes(payload, length));
  const auto oldSegment = static_cast<uint16_t>(tcpSegmentLength());
  const auto newSegment = static_cast<uint16_t>(tcpHeaderLength + length);
  checksum::rewrite16(ip + 2, static_cast<uint16_t>(ipHeaderLength + newSegment),
                      ipChecksumField());
  if (l4ChecksumPartial) {
    const auto partial = static_cast<uint16_t>(~checksum::load16(tcpChecksumField()));
    checksum::store16(tcpChecksumField(),
                      static_cast<uint16_t>(~checksum::update16(partial, oldSegment, newSegment)));
  } else {
    uint16_t c = checksum::update16(checksum::load16(tcpChecksumField()), oldSum, newSum);
    c = checksum::update16(c, oldSegment, newSegment);
    checksum::store16(tcpChecksumField(), c);
  }
  ipTotalLength = ipHeaderLength + newSegment;
  payloadLength = length;
  frameLength = static_cast<size_t>(payload - frame) + length;
  if (offset > 0) setSeq(seq() + static_cast<uint32_t>(offset));
  if (dropsEnd && (tcpFlags() & tcpflag::kFin)) {
    // Data offset and flags share one checksum word.
    const uint16_t word = checksum::load16(tcp + 12);
    const auto cleared = static_cast<uint16_t>(word & ~uint16_t{tcpflag::kFin});
    if (l4ChecksumPartial)
      checksum::store16(tcp + 12, cleared);
    else
      checksum::rewrite16(tcp + 12, cleared, tcpChecksumField());
  }
}

void PacketView::rewriteTcp32(uint8_t* field, uint32_t value) const {
  if (l4ChecksumPartial) {
    checksum::store32(field, value);
  } else if (((field - tcp) & 1) == 0) {
    checksum::rewrite32(field, value, tcpChecksumField());
  } else {
    // A SACK edge after an odd run of options straddles checksum words.
    const uint16_t oldSum = checksum::sumBytesAt(field, 4, true);
    checksum::store32(field, value);
    const uint16_t newSum = checksum::sumBytesAt(field, 4, true);
    checksum::store16(tcpChecksumField(),
                      checksum::update16(checksum::load16(tcpChecksumField()), oldSum, newSum));
  }
}

bool PacketView::ipv4ChecksumValid() const {
  return checksum::ipv4HeaderChecksum(ip, ipHeaderLength) == checksum::load16(ip + 10);
}

bool PacketView::tcpChecksumValid() const {
  return checksum::ipv4TransportChecksum(srcV4(), dstV4(), 6, tcp, tcpSegmentLength(), 16) ==
         checksum::load16(tcp + 16);
}

}  // namespace fulcrum
