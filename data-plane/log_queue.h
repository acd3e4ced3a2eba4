// Request-log entries on their way from a packet loop to the control plane.
//
// Each loop owns one LogRing (single producer: the loop; single consumer: the
// control-channel thread). Entries are fixed-size and the ring is allocated
// once, so logging a request costs a copy and two atomic operations, no
// allocation and no lock. A full ring drops the entry and counts it; the
// count reaches `show statistics` through the engine's status.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <type_traits>

#include "data-plane/http/request_parser.h"

namespace fulcrum {

struct RequestLogEntry {
  int64_t timeUnixUs = 0;
  uint32_t client = 0, facade = 0, server = 0;  // IPv4, host order
  uint16_t clientPort = 0, facadePort = 0, serverPort = 0;
  char application[64] = {0};
  char serverName[64] = {0};
  char method[16] = {0};
  char version[16] = {0};
  // As much as the HTTP parser keeps of each (a longer value is cut there).
  char host[HttpRequestParser::kMaxHost + 1] = {0};
  char path[HttpRequestParser::kMaxPath + 1] = {0};

  // Copies `value` into `field`, cut to fit and always terminated.
  template <size_t N>
  static void set(char (&field)[N], std::string_view value) {
    size_t n = value.size() < N - 1 ? value.size() : N - 1;
    if (n > 0) std::memcpy(field, value.data(), n);  // an empty view may have no data()
    field[n] = '\0';
  }
};

static_assert(std::is_trivially_copyable_v<RequestLogEntry>);

class LogRing {
 public:
  // 16384 entries of about 700 bytes: 11 MiB per loop, a quarter second of
  // requests at 64k/s between two shipments (ControlClient ships every 50 ms).
  // The memory is not written here: a loop that logs nothing (no filtered
  // application) never makes it resident.
  explicit LogRing(uint32_t capacity = 16384)
      : capacity_(capacity), storage_(new std::byte[sizeof(RequestLogEntry) * capacity]) {}

  // Producer (the loop). False, and counted, when full.
  bool push(const RequestLogEntry& e) {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_.load(std::memory_order_acquire) >= capacity_) {
      dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      return false;
    }
    std::memcpy(slot(head), &e, sizeof(RequestLogEntry));
    head_.store(head + 1, std::memory_order_release);
    return true;
  }
  // Consumer (the control thread): calls fn(const RequestLogEntry&) for up to
  // `max` entries, oldest first. Returns how many.
  template <class Fn>
  uint32_t drain(uint32_t max, Fn&& fn) {
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    const uint64_t head = head_.load(std::memory_order_acquire);
    uint32_t n = 0;
    for (; tail != head && n < max; ++tail, ++n)
      fn(*std::launder(reinterpret_cast<const RequestLogEntry*>(slot(tail))));
    tail_.store(tail, std::memory_order_release);
    return n;
  }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Entries waiting (exact for the producer; a moment old for anyone else).
  uint64_t size() const {
    return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_acquire);
  }

 private:
  std::byte* slot(uint64_t position) {
    return storage_.get() + sizeof(RequestLogEntry) * (position % capacity_);
  }

  const uint32_t capacity_;
  // Raw bytes holding entries copied in whole (RequestLogEntry is trivially
  // copyable), so that allocating the ring does not touch its pages.
  std::unique_ptr<std::byte[]> storage_;
  alignas(64) std::atomic<uint64_t> head_{0};  // written by the producer
  alignas(64) std::atomic<uint64_t> tail_{0};  // written by the consumer
  alignas(64) std::atomic<uint64_t> dropped_{0};
};

}  // namespace fulcrum
