// A one-byte spin lock for critical sections of a few hundred nanoseconds
// that two packet loops may contend for (an HTTP filter state, the filter
// pool's free list). Waiters spin on a plain load with the CPU's pause hint,
// so the cache line is not bounced, and yield after a while, so a machine
// with more loops than cores (tests, CI) still makes progress.
#pragma once

#include <atomic>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace fulcrum {

class SpinLock {
 public:
  void lock() {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins > 1000) {
          std::this_thread::yield();
        } else {
#if defined(__x86_64__) || defined(__i386__)
          _mm_pause();
#endif
        }
      }
    }
  }
  void unlock() {
    locked_.store(false, std::memory_order_release);
  }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace fulcrum
