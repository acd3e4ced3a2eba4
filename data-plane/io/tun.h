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
  static std::unique_ptr<TunQueue> open(const std::string& name, std::string* error);
  ~TunQueue() override;
  int pollFd() const override { return fd_; }
  size_t receiveBurst(PacketBuffer** buffers, size_t max) override;
  size_t transmitBurst(PacketBuffer* const* buffers, size_t count) override;

 private:
  explicit TunQueue(int fd) : fd_(fd) {}
  int fd_;
};

// Brings interface `name` up (and sets its MTU when mtu > 0).
bool setInterfaceUp(const std::string& name, int mtu, std::string* error);

}  // namespace fulcrum
