#include "data-plane/io/tun.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fulcrum {

std::unique_ptr<TunQueue> TunQueue::open(const std::string& name, bool offload,
                                         std::string* error) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    *error = "interface name '" + name + "' must have 1 to " + std::to_string(IFNAMSIZ - 1) +
             " characters";
    return nullptr;
  }
  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *error = "open /dev/net/tun: " + std::string(std::strerror(errno));
    return nullptr;
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE | (offload ? IFF_VNET_HDR : 0);
  std::memcpy(ifr.ifr_name, name.c_str(), name.size());
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    *error = "create TUN queue " + name + ": " + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  if (offload) {
    int size = static_cast<int>(kVnetHeaderSize);
    unsigned features = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    if (ioctl(fd, TUNSETVNETHDRSZ, &size) != 0 || ioctl(fd, TUNSETOFFLOAD, features) != 0) {
      *error = "enable offloads on TUN queue " + name + ": " + std::strerror(errno);
      ::close(fd);
      return nullptr;
    }
  }
  return std::unique_ptr<TunQueue>(new TunQueue(fd, offload));
}

TunQueue::~TunQueue() {
  ::close(fd_);
}

size_t TunQueue::receiveBurst(PacketBuffer** buffers, size_t max) {
  // A TUN queue hands out one packet per read(); there is no batched read.
  size_t n = 0;
  while (n < max) {
    PacketBuffer& b = *buffers[n];
    ssize_t got;
    if (offload_) {
      iovec iov[2] = {{b.vnet, kVnetHeaderSize}, {b.data, kMaxPacketSize}};
      got = ::readv(fd_, iov, 2);
      if (got < 0 && errno != EAGAIN && errno != EINTR) markDead();  // the device is gone
      if (got < static_cast<ssize_t>(kVnetHeaderSize)) break;        // drained (or a runt)
      got -= static_cast<ssize_t>(kVnetHeaderSize);
    } else {
      got = ::read(fd_, b.data, kMaxPacketSize);
      if (got < 0 && errno != EAGAIN && errno != EINTR) markDead();
      if (got <= 0) break;
      std::memset(b.vnet, 0, kVnetHeaderSize);
    }
    b.length = static_cast<uint32_t>(got);
    ++n;
  }
  return n;
}

size_t TunQueue::transmitBurst(PacketBuffer* const* buffers, size_t count) {
  size_t sent = 0;
  for (size_t i = 0; i < count; ++i) {
    PacketBuffer& b = *buffers[i];
    if (offload_) {
      iovec iov[2] = {{b.vnet, kVnetHeaderSize}, {b.data, b.length}};
      if (::writev(fd_, iov, 2) == static_cast<ssize_t>(kVnetHeaderSize + b.length)) ++sent;
    } else if (::write(fd_, b.data, b.length) == static_cast<ssize_t>(b.length)) {
      ++sent;
    }
  }
  return sent;
}

bool setInterfaceUp(const std::string& name, int mtu, std::string* error) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    *error = "socket: " + std::string(std::strerror(errno));
    return false;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  bool ok = true;
  if (mtu > 0) {
    ifr.ifr_mtu = mtu;
    if (ioctl(s, SIOCSIFMTU, &ifr) != 0) {
      *error = "set MTU of " + name + ": " + std::strerror(errno);
      ok = false;
    }
  }
  if (ok && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
      *error = "bring " + name + " up: " + std::strerror(errno);
      ok = false;
    }
  } else if (ok) {
    *error = "read flags of " + name + ": " + std::strerror(errno);
    ok = false;
  }
  ::close(s);
  return ok;
}

}  // namespace fulcrum
