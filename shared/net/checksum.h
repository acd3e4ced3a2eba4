// Internet checksum helpers (RFC 1071) and incremental updates (RFC 1624).
//
// Every rewrite in Fulcrum goes through the incremental helpers: a NAT rewrite
// touches a few 16-bit words, so recomputing over the whole segment would cost
// time proportional to the payload for no gain. The from-scratch helpers exist
// for tests and for the replay harness, which verifies every packet it emits.
//
// All values are in network byte order *as 16-bit words read from the packet*
// (use load16/store16), so callers never swap bytes twice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace fulcrum::checksum {

inline uint16_t load16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline void store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline uint32_t load32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void store32(uint8_t* p, uint32_t v) {
  store16(p, static_cast<uint16_t>(v >> 16));
  store16(p + 2, static_cast<uint16_t>(v));
}

// Folds a 32-bit accumulator into 16 bits of one's complement sum.
inline uint16_t fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// One's complement sum of `len` bytes (odd tail padded with zero), plus `initial`.
inline uint64_t sumBytes(const uint8_t* data, size_t len, uint64_t initial = 0) {
  uint64_t sum = initial;
  size_t i = 0;
  for (; i + 1 < len; i += 2) sum += load16(data + i);
  if (i < len) sum += uint32_t{data[i]} << 8;
  return sum;
}

// The folded sum of `len` bytes that sit at an odd offset of the checksummed
// data: its 16-bit words are the byte-swapped ones sumBytes() pairs up.
inline uint16_t sumBytesAt(const uint8_t* data, size_t len, bool oddOffset) {
  const uint16_t s = fold(sumBytes(data, len));
  return oddOffset ? static_cast<uint16_t>((s << 8) | (s >> 8)) : s;
}

// Checksum of an IPv4 header of `headerLen` bytes, with its checksum field taken as zero.
inline uint16_t ipv4HeaderChecksum(const uint8_t* header, size_t headerLen) {
  uint64_t sum = sumBytes(header, headerLen) - load16(header + 10);
  return static_cast<uint16_t>(~fold(sum));
}

// TCP (or UDP) checksum over the IPv4 pseudo-header and `segmentLen` bytes of
// segment, with the segment's checksum field (at `checksumOffset`) taken as zero.
inline uint16_t ipv4TransportChecksum(uint32_t srcHostOrder, uint32_t dstHostOrder,
                                      uint8_t protocol, const uint8_t* segment, size_t segmentLen,
                                      size_t checksumOffset) {
  uint64_t sum = (srcHostOrder >> 16) + (srcHostOrder & 0xffff) + (dstHostOrder >> 16) +
                 (dstHostOrder & 0xffff) + protocol + segmentLen;
  sum = sumBytes(segment, segmentLen, sum) - load16(segment + checksumOffset);
  return static_cast<uint16_t>(~fold(sum));
}

// RFC 1624 equation 3: HC' = ~(~HC + ~m + m'), for one 16-bit word m -> m'.
// Unlike equation 2 of RFC 1141 it never yields 0xffff from a non-zero sum,
// so a checksum stays the one a from-scratch computation would give.
inline uint16_t update16(uint16_t checksum, uint16_t oldWord, uint16_t newWord) {
  uint32_t sum = uint32_t{static_cast<uint16_t>(~checksum)} +
                 uint32_t{static_cast<uint16_t>(~oldWord)} + newWord;
  return static_cast<uint16_t>(~fold(sum));
}

// The same for a 32-bit field (an IPv4 address, a sequence number).
inline uint16_t update32(uint16_t checksum, uint32_t oldValue, uint32_t newValue) {
  uint32_t sum = uint32_t{static_cast<uint16_t>(~checksum)} +
                 uint32_t{static_cast<uint16_t>(~(oldValue >> 16))} +
                 uint32_t{static_cast<uint16_t>(~oldValue)} + (newValue >> 16) +
                 (newValue & 0xffff);
  return static_cast<uint16_t>(~fold(sum));
}

// Rewrites a 16-bit field in place and updates the checksum stored at `checksumField`.
inline void rewrite16(uint8_t* field, uint16_t newValue, uint8_t* checksumField) {
  store16(checksumField, update16(load16(checksumField), load16(field), newValue));
  store16(field, newValue);
}

// Rewrites a 32-bit field in place and updates each of the given checksums
// (an IPv4 address is covered by both the IP header and the TCP pseudo-header).
inline void rewrite32(uint8_t* field, uint32_t newValue, uint8_t* checksumA,
                      uint8_t* checksumB = nullptr) {
  uint32_t old = load32(field);
  store16(checksumA, update32(load16(checksumA), old, newValue));
  if (checksumB) store16(checksumB, update32(load16(checksumB), old, newValue));
  store32(field, newValue);
}

}  // namespace fulcrum::checksum
