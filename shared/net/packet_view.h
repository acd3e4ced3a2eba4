// Views over raw packet buffers: Ethernet (optional 802.1Q / 802.1ad tags),
// IPv4 (options, fragments), IPv6 (fixed header only) and TCP.
//
// parsePacket() never copies and never reads a byte it has not first checked
// to lie inside [frame, frame + length). A packet that is not IP, or IP that is
// not TCP, is reported as such (the data plane forwards it unchanged); a
// packet whose headers are inconsistent gets a named reason from
// FULCRUM_PACKET_MALFORMED (the data plane drops and counts it, see README).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shared/net/checksum.h"

namespace fulcrum {

enum class LinkType : uint8_t {
  kEthernet,  // Ethernet II, optionally with up to two VLAN tags
  kRawIp,     // the IP header starts at byte 0 (TUN devices, LINKTYPE_RAW)
};

// X(enumerator, counter name, help). The single definition of malformed-packet
// reasons: the enum, the counter names and their help text all come from here.
#define FULCRUM_PACKET_MALFORMED(X)                                                          \
  X(kEthernetTruncated, "drop_ethernet_truncated", "frame shorter than its Ethernet header") \
  X(kVlanTruncated, "drop_vlan_truncated", "802.1Q tag cut short or more than two tags")     \
  X(kIpv4Truncated, "drop_ipv4_truncated", "fewer bytes than an IPv4 header")                \
  X(kIpv4BadVersion, "drop_ipv4_bad_version", "EtherType IPv4 but version field not 4")      \
  X(kIpv4BadIhl, "drop_ipv4_bad_ihl", "IHL below 5 or beyond the frame")                     \
  X(kIpv4BadTotalLength, "drop_ipv4_bad_total_length",                                       \
    "IPv4 total length below the header or beyond the frame")                                \
  X(kIpv4Fragment, "drop_ipv4_fragment", "IPv4 TCP fragment (not reassembled)")              \
  X(kTcpTruncated, "drop_tcp_truncated", "fewer bytes than a TCP header")                    \
  X(kTcpBadOffset, "drop_tcp_bad_offset", "TCP data offset below 5 or beyond the segment")   \
  X(kIpv6Truncated, "drop_ipv6_truncated", "fewer bytes than the IPv6 header or its payload length")

enum class ParseStatus : uint8_t {
  kTcpIpv4,    // a well-formed IPv4 TCP segment: every view field is set
  kTcpIpv6,    // IPv6 with TCP as next header: forwarded unchanged for now
  kIpv6Other,  // IPv6, not directly TCP (extension headers or other protocols)
  kNotIp,      // not IPv4/IPv6 (ARP, LLDP, ...)
  kNotTcp,     // IPv4, another protocol (or a non-TCP fragment)
#define FULCRUM_X(e, name, help) e,
  FULCRUM_PACKET_MALFORMED(FULCRUM_X)
#undef FULCRUM_X
};

inline constexpr int kFirstMalformed = static_cast<int>(ParseStatus::kEthernetTruncated);
inline constexpr bool isMalformed(ParseStatus s) {
  return static_cast<int>(s) >= kFirstMalformed;
}
const char* parseStatusName(ParseStatus s);

namespace tcpflag {
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
}  // namespace tcpflag

// Valid only when parsePacket() returned kTcpIpv4 (ip/tcp/payload set) or
// kTcpIpv6/kIpv6Other (ip set). Accessors read network byte order.
// A byte range of a TCP payload to replace (PacketView::replacePayload).
struct PayloadEdit {
  size_t offset = 0;  // from the first payload byte
  size_t length = 0;
};

struct PacketView {
  uint8_t* frame = nullptr;
  size_t frameLength = 0;
  // Bytes the buffer has room for from `frame` on; set by the caller when the
  // payload may grow (replacePayload). 0 means no room beyond frameLength.
  size_t frameCapacity = 0;
  uint8_t* ip = nullptr;  // start of the IP header
  size_t ipHeaderLength = 0;
  size_t ipTotalLength = 0;  // from the header; bytes after it (Ethernet padding) are ignored
  uint8_t* tcp = nullptr;
  size_t tcpHeaderLength = 0;
  uint8_t* payload = nullptr;
  size_t payloadLength = 0;
  uint16_t vlanId = 0;  // innermost tag, 0 when untagged
  // Set by the caller for packets from a device with checksum offload: the
  // TCP checksum field holds the folded pseudo-header sum (not complemented),
  // and the kernel completes it over the segment later. Address rewrites then
  // update that sum; port rewrites leave it alone (ports are not in it).
  bool l4ChecksumPartial = false;

  uint32_t srcV4() const { return checksum::load32(ip + 12); }
  uint32_t dstV4() const { return checksum::load32(ip + 16); }
  uint16_t srcPort() const { return checksum::load16(tcp); }
  uint16_t dstPort() const { return checksum::load16(tcp + 2); }
  uint32_t seq() const { return checksum::load32(tcp + 4); }
  uint32_t ack() const { return checksum::load32(tcp + 8); }
  uint8_t tcpFlags() const { return tcp[13]; }
  size_t tcpSegmentLength() const { return ipTotalLength - ipHeaderLength; }

  uint8_t* ipChecksumField() const { return ip + 10; }
  uint8_t* tcpChecksumField() const { return tcp + 16; }

  // IPv4 NAT rewrites; both checksums are updated incrementally (RFC 1624).
  void setSrcV4(uint32_t addr) const { rewriteAddress(ip + 12, addr); }
  void setDstV4(uint32_t addr) const { rewriteAddress(ip + 16, addr); }
  void setSrcPort(uint16_t port) const { rewritePort(tcp, port); }
  void setDstPort(uint16_t port) const { rewritePort(tcp + 2, port); }

  void rewriteAddress(uint8_t* field, uint32_t addr) const {
    if (!l4ChecksumPartial) {
      checksum::rewrite32(field, addr, ipChecksumField(), tcpChecksumField());
      return;
    }
    const uint32_t old = checksum::load32(field);
    checksum::store16(ipChecksumField(),
                      checksum::update32(checksum::load16(ipChecksumField()), old, addr));
    // An uncomplemented sum is updated as the complement of a checksum.
    const auto partial = static_cast<uint16_t>(~checksum::load16(tcpChecksumField()));
    checksum::store16(tcpChecksumField(),
                      static_cast<uint16_t>(~checksum::update32(partial, old, addr)));
    checksum::store32(field, addr);
  }
  void rewritePort(uint8_t* field, uint16_t port) const {
    if (l4ChecksumPartial)
      checksum::store16(field, port);
    else
      checksum::rewrite16(field, port, tcpChecksumField());
  }

  // TCP header words outside the pseudo-header: sequence and acknowledgement
  // numbers, SACK edges. A partial checksum does not cover them yet.
  void setSeq(uint32_t seq) const { rewriteTcp32(tcp + 4, seq); }
  void setAck(uint32_t ack) const { rewriteTcp32(tcp + 8, ack); }
  void rewriteTcp32(uint8_t* field, uint32_t value) const;

  // Replaces `count` payload ranges (sorted by offset, disjoint, inside the
  // payload) with `value` each, moving the bytes after them. The IP total
  // length and both checksums are updated incrementally (a checksum that was
  // wrong stays wrong by as much), and so are ipTotalLength, payloadLength
  // and frameLength; Ethernet padding after the IP packet is dropped. False,
  // with nothing changed, when the packet would not fit frameCapacity or the
  // 65535 bytes of an IPv4 packet.
  bool replacePayload(const PayloadEdit* edits, size_t count, std::string_view value);
  // Keeps only payload bytes [offset, offset + length) (within the payload):
  // the segment then starts `offset` bytes later (its sequence number moves)
  // and, when bytes at the end go, it loses its FIN, which follows the last
  // byte. IP length and checksums are updated incrementally.
  void keepPayload(size_t offset, size_t length);
  // The size the frame would have after replacePayload(), without changing it.
  size_t frameLengthAfter(const PayloadEdit* edits, size_t count, size_t valueLength) const;

  // From-scratch verification (tests and the replay harness; not the hot path).
  bool ipv4ChecksumValid() const;
  bool tcpChecksumValid() const;
};

ParseStatus parsePacket(uint8_t* frame, size_t length, LinkType link, PacketView& view);

}  // namespace fulcrum
