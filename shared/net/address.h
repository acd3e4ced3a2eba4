// Address types shared by both planes.
//
// IpAddress always holds 128 bits: an IPv4 address is stored IPv4-mapped
// (::ffff:a.b.c.d), so configuration, the control channel and the CLI never
// need a second type when IPv6 NAT arrives. The data plane's IPv4 session table
// keeps addresses as 32-bit values for density and converts at its edge.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fulcrum {

class IpAddress {
 public:
  constexpr IpAddress() = default;

  // `hostOrder` is the IPv4 address as a number, e.g. 0xC6120001 for 198.18.0.1.
  static constexpr IpAddress v4(uint32_t hostOrder) {
    IpAddress a;
    a.bytes_[10] = 0xff;
    a.bytes_[11] = 0xff;
    a.bytes_[12] = static_cast<uint8_t>(hostOrder >> 24);
    a.bytes_[13] = static_cast<uint8_t>(hostOrder >> 16);
    a.bytes_[14] = static_cast<uint8_t>(hostOrder >> 8);
    a.bytes_[15] = static_cast<uint8_t>(hostOrder);
    return a;
  }
  static IpAddress v6(const std::array<uint8_t, 16>& bytes) {
    IpAddress a;
    a.bytes_ = bytes;
    return a;
  }

  // Accepts dotted-quad IPv4 ("198.18.0.10") or textual IPv6 ("2001:db8::1").
  // Returns nullopt for anything else (no host names, no leading zeros tricks).
  static std::optional<IpAddress> parse(std::string_view text);

  constexpr bool isV4() const {
    for (int i = 0; i < 10; ++i)
      if (bytes_[i] != 0) return false;
    return bytes_[10] == 0xff && bytes_[11] == 0xff;
  }
  // Meaningful only when isV4().
  constexpr uint32_t v4HostOrder() const {
    return (uint32_t{bytes_[12]} << 24) | (uint32_t{bytes_[13]} << 16) |
           (uint32_t{bytes_[14]} << 8) | uint32_t{bytes_[15]};
  }
  constexpr const std::array<uint8_t, 16>& bytes() const { return bytes_; }

  std::string toString() const;

  constexpr auto operator<=>(const IpAddress&) const = default;

 private:
  std::array<uint8_t, 16> bytes_{};
};

// "198.18.0.10:80" or "[2001:db8::1]:80".
std::string formatEndpoint(const IpAddress& address, uint16_t port);

}  // namespace fulcrum
