#include "control-plane/monitor/icmp_pinger.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <linux/icmp.h>  // ICMP_FILTER; <netinet/ip_icmp.h> would redefine its structs
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <new>
#include <type_traits>

#include "shared/net/checksum.h"
#include "shared/net/hash.h"

namespace fulcrum {

static_assert(std::is_same_v<evutil_socket_t, int>, "the header declares callbacks with int");

namespace {

constexpr uint8_t kEchoReply = 0;
constexpr uint8_t kEchoRequest = 8;
constexpr size_t kIcmpHeader = 8;
constexpr size_t kPayload = 16;                     // magic + the pinger's cookie
constexpr uint64_t kMagic = 0x46756c6372756d21ULL;  // "Fulcrum!"
// Bounded work per wake-up, so that a flood of ICMP on a raw socket (which
// sees every echo reply the host receives) cannot starve the other checks.
constexpr int kMaxRepliesPerWake = 256;
constexpr uint64_t kTicketValid = uint64_t{1} << 16;

uint64_t key(uint32_t address, uint16_t sequence) {
  return (uint64_t{address} << 32) | kTicketValid | sequence;
}

void store64(uint8_t* p, uint64_t v) {
  checksum::store32(p, static_cast<uint32_t>(v >> 32));
  checksum::store32(p + 4, static_cast<uint32_t>(v));
}

uint64_t load64(const uint8_t* p) {
  return (uint64_t{checksum::load32(p)} << 32) | checksum::load32(p + 4);
}

std::string errnoText(int err) {
  return std::strerror(err);
}

uint64_t newCookie(const void* self) {
  // Not a secret, only distinct between pingers (several Monitors in one
  // process, or a restarted control plane whose old replies are in flight).
  static std::atomic<uint64_t> counter{0};
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return hash::mix64(static_cast<uint64_t>(now) ^
                     (uint64_t{static_cast<uint32_t>(getpid())} << 32) ^
                     reinterpret_cast<uintptr_t>(self) ^ hash::mix64(++counter));
}

}  // namespace

IcmpPinger::IcmpPinger(event_base* base, IcmpSocketPolicy policy)
    : base_(base), policy_(policy), cookie_(newCookie(this)) {
  identifier_ = static_cast<uint16_t>(cookie_ >> 48);
}

IcmpPinger::~IcmpPinger() {
  if (readEvent_) event_free(readEvent_);
  if (fd_ >= 0) close(fd_);
}

std::string IcmpPinger::open() {
  std::string rawError;
  if (policy_ == IcmpSocketPolicy::kRawThenPing) {
    fd_ = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
    if (fd_ >= 0) {
      mode_ = Mode::kRaw;
      // A raw socket gets a copy of every ICMP message the host receives;
      // let the kernel drop all but echo replies before they reach us.
      icmp_filter filter{};
      filter.data = ~(uint32_t{1} << kEchoReply);
      (void)setsockopt(fd_, SOL_RAW, ICMP_FILTER, &filter, sizeof(filter));
    } else {
      rawError = errnoText(errno);
    }
  }
  if (fd_ < 0) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
    if (fd_ < 0) {
      const std::string pingError = errnoText(errno);
      return rawError.empty() ? "icmp socket: ping socket: " + pingError
                              : "icmp socket: raw: " + rawError + "; ping socket: " + pingError;
    }
    mode_ = Mode::kPing;
  }
  readEvent_ = event_new(base_, fd_, EV_READ | EV_PERSIST, &IcmpPinger::onReadable, this);
  if (!readEvent_ || event_add(readEvent_, nullptr) != 0) {
    if (readEvent_) event_free(readEvent_);
    readEvent_ = nullptr;
    close(fd_);
    fd_ = -1;
    mode_ = Mode::kClosed;
    return "icmp socket: cannot watch it on the event loop";
  }
  return "";
}

IcmpPinger::Sent IcmpPinger::ping(uint32_t destinationHostOrder, OnReply onReply) {
  if (fd_ < 0) {
    if (std::string error = open(); !error.empty()) return {0, std::move(error)};
  }
  // Sequences are shared by all destinations; skip one still waiting for the
  // same destination (only possible with 65536 checks of one server in flight).
  uint16_t sequence = nextSequence_++;
  for (int i = 0; i < 65536 && pending_.count(key(destinationHostOrder, sequence)); ++i) {
    sequence = nextSequence_++;
  }
  const uint64_t ticket = key(destinationHostOrder, sequence);
  if (pending_.count(ticket)) return {0, "send: too many echo requests in flight"};

  uint8_t packet[kIcmpHeader + kPayload] = {};
  packet[0] = kEchoRequest;
  packet[1] = 0;
  checksum::store16(packet + 4, identifier_);  // a ping socket replaces it with its own
  checksum::store16(packet + 6, sequence);
  store64(packet + 8, kMagic);
  store64(packet + 16, cookie_);
  checksum::store16(packet + 2, static_cast<uint16_t>(
                                    ~checksum::fold(checksum::sumBytes(packet, sizeof(packet)))));

  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(destinationHostOrder);
  const ssize_t n = sendto(fd_, packet, sizeof(packet), MSG_DONTWAIT,
                           reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  if (n < 0) return {0, "send: " + errnoText(errno)};
  pending_.emplace(ticket, std::move(onReply));
  return {ticket, ""};
}

void IcmpPinger::cancel(uint64_t ticket) {
  pending_.erase(ticket);
}

void IcmpPinger::onReadable(int, short, void* arg) {
  static_cast<IcmpPinger*>(arg)->readReplies();
}

void IcmpPinger::readReplies() {
  // Large enough for any reply to us; a longer packet is somebody else's
  // and arrives truncated, which the payload check then rejects.
  alignas(8) uint8_t buf[2048];
  for (int i = 0; i < kMaxRepliesPerWake; ++i) {
    sockaddr_in from{};
    socklen_t fromLength = sizeof(from);
    const ssize_t n =
        recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fromLength);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN, or an error that belongs to no check in particular
    }
    const auto length = static_cast<size_t>(n);
    if (mode_ == Mode::kPing) {
      // A ping socket hands over the ICMP message alone, already matched to
      // this socket's identifier by the kernel.
      deliver(ntohl(from.sin_addr.s_addr), buf, length);
      continue;
    }
    // A raw socket hands over the whole IPv4 packet.
    if (length < 20 || (buf[0] >> 4) != 4) continue;
    const size_t headerLength = size_t{buf[0] & 0x0fu} * 4;
    if (headerLength < 20 || length < headerLength) continue;
    size_t total = checksum::load16(buf + 2);
    if (total > length || total < headerLength) total = length;
    deliver(checksum::load32(buf + 12), buf + headerLength, total - headerLength);
  }
}

void IcmpPinger::deliver(uint32_t sourceHostOrder, const uint8_t* icmp, size_t length) {
  if (length < kIcmpHeader + kPayload) return;
  if (icmp[0] != kEchoReply || icmp[1] != 0) return;
  if (mode_ == Mode::kRaw) {
    // Raw sockets see packets before the ICMP layer has verified them.
    if (checksum::fold(checksum::sumBytes(icmp, length)) != 0xffff) return;
    if (checksum::load16(icmp + 4) != identifier_) return;
  }
  if (load64(icmp + 8) != kMagic || load64(icmp + 16) != cookie_) return;
  const auto it = pending_.find(key(sourceHostOrder, checksum::load16(icmp + 6)));
  if (it == pending_.end()) return;  // late (after a timeout) or duplicated
  OnReply onReply = std::move(it->second);
  pending_.erase(it);
  onReply();
}

}  // namespace fulcrum
