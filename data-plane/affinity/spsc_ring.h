// SpscRing: a bounded single-producer single-consumer queue of trivially
// copyable values, allocated once.
//
// push() is called by one thread only (the producer), pop() by one other
// thread only (the consumer). Neither blocks nor allocates: push() returns
// false when the ring holds `capacity` values. Each side keeps a private copy
// of the other side's index and reads the shared one only when that copy says
// full (or empty), so the two cache lines are not bounced on every call.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <type_traits>

namespace fulcrum {

template <class T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  explicit SpscRing(uint32_t capacity)
      : capacity_(capacity > 0 ? capacity : 1), slots_(std::make_unique<T[]>(capacity_)) {}

  uint32_t capacity() const { return capacity_; }

  // Producer only.
  bool push(const T& value) {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    if (head - tailCache_ >= capacity_) {
      tailCache_ = tail_.load(std::memory_order_acquire);
      if (head - tailCache_ >= capacity_) return false;
    }
    slots_[head % capacity_] = value;
    head_.store(head + 1, std::memory_order_release);
    return true;
  }
  // Producer only: room left now (the consumer may make more at any time).
  uint32_t freeSlots() {
    tailCache_ = tail_.load(std::memory_order_acquire);
    return capacity_ - static_cast<uint32_t>(head_.load(std::memory_order_relaxed) - tailCache_);
  }

  // Consumer only.
  bool pop(T* out) {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail == headCache_) {
      headCache_ = head_.load(std::memory_order_acquire);
      if (tail == headCache_) return false;
    }
    *out = slots_[tail % capacity_];
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }
  // Consumer only: nothing to pop now (the producer may push at any time).
  bool empty() {
    if (tail_.load(std::memory_order_relaxed) != headCache_) return false;
    headCache_ = head_.load(std::memory_order_acquire);
    return tail_.load(std::memory_order_relaxed) == headCache_;
  }

 private:
  const uint32_t capacity_;
  const std::unique_ptr<T[]> slots_;
  alignas(64) std::atomic<uint64_t> head_{0};  // written by the producer
  uint64_t tailCache_ = 0;                     // the producer's copy of tail_
  alignas(64) std::atomic<uint64_t> tail_{0};  // written by the consumer
  uint64_t headCache_ = 0;                     // the consumer's copy of head_
};

}  // namespace fulcrum
