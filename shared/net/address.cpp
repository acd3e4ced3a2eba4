#include "shared/net/address.h"

#include <arpa/inet.h>

#include <cstring>

namespace fulcrum {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton needs a terminated string; addresses are short, so a stack
  // buffer bounds the copy and rejects absurd inputs early.
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  if (text.find(':') == std::string_view::npos) {
    in_addr v4{};
    if (inet_pton(AF_INET, buf, &v4) != 1) return std::nullopt;
    return IpAddress::v4(ntohl(v4.s_addr));
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) != 1) return std::nullopt;
  std::array<uint8_t, 16> bytes{};
  std::memcpy(bytes.data(), v6.s6_addr, 16);
  return IpAddress::v6(bytes);
}

std::string IpAddress::toString() const {
  char buf[INET6_ADDRSTRLEN];
  if (isV4()) {
    in_addr v4{};
    v4.s_addr = htonl(v4HostOrder());
    inet_ntop(AF_INET, &v4, buf, sizeof(buf));
  } else {
    in6_addr v6{};
    std::memcpy(v6.s6_addr, bytes_.data(), 16);
    inet_ntop(AF_INET6, &v6, buf, sizeof(buf));
  }
  return buf;
}

std::string formatEndpoint(const IpAddress& address, uint16_t port) {
  if (address.isV4()) return address.toString() + ":" + std::to_string(port);
  return "[" + address.toString() + "]:" + std::to_string(port);
}

}  // namespace fulcrum
