// TUN backend: each service interface of a service set is a multi-queue TUN
// device (IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE) that fulcrum-data creates;
// each packet loop owns one queue of each. The host kernel routes traffic
// into and out of the devices (README: "Routing traffic through Fulcrum").
#pragma once

#include <memory>
#include <string>

#include "data-plane/io/packet_io.h"

struct io_uring;

namespace fulcrum {

// How a TUN queue moves its bursts through the kernel.
enum class TunIo {
  // One read()/write() (readv/writev with offloads) per packet.
  kSyscalls,
  // io_uring (fulcrum-data's default): a burst's writes go in one
  // io_uring_enter, and reads are issued in rounds of non-blocking reads,
  // each round one io_uring_enter.
  // Where the kernel refuses io_uring (io_uring_setup fails: seccomp,
  // kernel.io_uring_disabled, no CONFIG_IO_URING), the queue falls back to
  // kSyscalls and says so in the log once per process.
  kUring,
};

class TunQueue final : public PacketQueue {
 public:
  // Opens (creating when absent) queue `name` in multi-queue mode, non-blocking.
  // With `offload`, the device takes and gives GSO super-packets with partial
  // checksums (IFF_VNET_HDR, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6): up to
  // 64 KiB of a TCP stream per read() and write() instead of one MTU-sized
  // packet. Every queue of a device must be opened the same way.
  static std::unique_ptr<TunQueue> open(const std::string& name, bool offload, TunIo io,
                                        std::string* error);
  static std::unique_ptr<TunQueue> open(const std::string& name, bool offload, std::string* error) {
    return open(name, offload, TunIo::kSyscalls, error);
  }
  ~TunQueue() override;
  TunQueue(const TunQueue&) = delete;
  TunQueue& operator=(const TunQueue&) = delete;

  int pollFd() const override { return fd_; }
  size_t receiveBurst(PacketBuffer** buffers, size_t max) override;
  size_t transmitBurst(PacketBuffer* const* buffers, size_t count) override;
  // What this queue really uses: kSyscalls when kUring was asked for and refused.
  TunIo io() const { return ring_ ? TunIo::kUring : TunIo::kSyscalls; }

 private:
  TunQueue(int fd, bool offload);
  size_t receiveSyscalls(PacketBuffer** buffers, size_t max);
  size_t transmitSyscalls(PacketBuffer* const* buffers, size_t count);
  size_t receiveUring(PacketBuffer** buffers, size_t max);
  size_t transmitUring(PacketBuffer* const* buffers, size_t count);
  // Frees the ring (unregistering the file first); the queue then uses
  // system calls.
  void releaseRing();
  // A ring that failed mid-burst: logged, freed and counted in
  // tun_io_fallbacks.
  void fallBackToSyscalls();

  int fd_;
  bool offload_;
  std::unique_ptr<io_uring> ring_;  // null: system calls
  bool fixedFile_ = false;          // fd_ is registered with ring_ as file 0
  // Reads in the first round of the next receive: what the last receive got,
  // plus one, so a busy queue is drained in about one round and an idle one
  // costs one read.
  size_t readHint_ = 1;
};

// Brings interface `name` up (and sets its MTU when mtu > 0).
bool setInterfaceUp(const std::string& name, int mtu, std::string* error);

}  // namespace fulcrum
