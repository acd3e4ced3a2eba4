// Packet I/O: the interface in front of every backend (CONVENTIONS.md #14),
// so the packet loops above it are the same for TUN devices, AF_PACKET rings
// or captures.
//
// A PacketQueue is one queue of one device, owned by one packet loop: burst
// receive and burst transmit, never shared between threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace fulcrum {

// Room for the largest IPv4 packet: a GSO super-packet from a TUN device
// with offloads carries up to 64 KiB of TCP in one buffer.
inline constexpr size_t kMaxPacketSize = 65536;
inline constexpr size_t kVnetHeaderSize = 10;  // struct virtio_net_hdr

struct PacketBuffer {
  uint32_t length = 0;
  int64_t timestampUs = 0;  // when it was captured (pcap backend); 0 when the backend has none
  // The virtio_net_hdr a TUN device with offloads put before the packet,
  // written back unchanged with it (GSO size and type, checksum start and
  // offset stay right: NAT changes no header length). Zero otherwise.
  uint8_t vnet[kVnetHeaderSize] = {};
  // VIRTIO_NET_HDR_F_NEEDS_CSUM: the TCP checksum field holds only the
  // pseudo-header sum; the kernel completes it later.
  bool l4ChecksumPartial() const { return (vnet[0] & 1) != 0; }
  alignas(64) uint8_t data[kMaxPacketSize];
};

class PacketQueue {
 public:
  virtual ~PacketQueue() = default;
  // A descriptor that polls readable when packets wait (-1: none).
  virtual int pollFd() const = 0;
  // Receives up to `max` packets; returns how many (0 when none is ready).
  virtual size_t receiveBurst(PacketBuffer** buffers, size_t max) = 0;
  // Transmits `count` packets; returns how many the device took. The caller
  // counts the rest as dropped.
  virtual size_t transmitBurst(PacketBuffer* const* buffers, size_t count) = 0;

  // A queue whose device went away (deleted interface, closed peer) is dead:
  // its loop stops polling it, and the next sync opens it anew. Set by the
  // queue on a hard receive error, or by its loop on POLLERR/POLLHUP/POLLNVAL;
  // read by the control thread.
  bool dead() const { return dead_.load(std::memory_order_acquire); }
  void markDead() { dead_.store(true, std::memory_order_release); }

  // Times this queue gave up its preferred I/O for a slower way (a TUN queue
  // refused io_uring at open, or its ring failed later) since the last call;
  // its loop adds them to `tun_io_fallbacks`. Set from the control thread
  // (open) or the loop, read by the loop.
  uint32_t takeFallbacks() {
    return fallbacks_.load(std::memory_order_relaxed) == 0
               ? 0
               : fallbacks_.exchange(0, std::memory_order_relaxed);
  }

 protected:
  void countFallback() { fallbacks_.fetch_add(1, std::memory_order_relaxed); }

 private:
  std::atomic<bool> dead_{false};
  std::atomic<uint32_t> fallbacks_{0};
};

}  // namespace fulcrum
