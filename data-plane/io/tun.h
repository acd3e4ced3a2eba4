// TUN backend: each service interface of a service set is a multi-queue TUN
// device (IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE) that fulcrum-data creates;
// each packet loop owns one queue of each. The host kernel routes traffic
// into and out of the devices (README: "Routing traffic through Fulcrum").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data-plane/io/packet_io.h"

namespace fulcrum {

class TunQueue final : public PacketQueue {
 public:
  // Opens (creating when absent) queue `name` in multi-queue mode, non-blocking.
  // With `offload`, the device takes and gives GSO super-packets with partial
  // checksums (IFF_VNET_HDR, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6): up to
  // 64 KiB of a TCP stream per read() and write() instead of one MTU-sized
  // packet. Every queue of a device must be opened the same way.
  static std::unique_ptr<TunQueue> open(const std::string& name, bool offload, std::string* error);
  ~TunQueue() override;
  int pollFd() const override { return fd_; }
  size_t receiveBurst(PacketBuffer** buffers, size_t max) override;
  size_t transmitBurst(PacketBuffer* const* buffers, size_t count) override;

 private:
  TunQueue(int fd, bool offload) : fd_(fd), offload_(offload) {}
  int fd_;
  bool offload_;
};

// Brings interface `name` up (and sets its MTU when mtu > 0).
bool setInterfaceUp(const std::string& name, int mtu, std::string* error);

}  // namespace fulcrum
