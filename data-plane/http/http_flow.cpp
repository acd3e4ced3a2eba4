#include "data-plane/http/http_flow.h"

#include <sys/mman.h>

#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

namespace fulcrum {

void HttpFlow::reset(uint32_t initialSeq) {
  parser = HttpRequestParser();
  adjust = SeqAdjust();
  isn = initialSeq;
  nextSeq = initialSeq + 1;
  serverAcked = 0;
  serverMss = 0;
  serverAckSeen = false;
  stopped = false;
  rewritten.store(false, std::memory_order_relaxed);
}

HttpFlowPool::HttpFlowPool(uint32_t capacity)
    : capacity_(capacity), free_(new uint32_t[capacity > 0 ? capacity : 1]) {
  if (capacity == 0) return;
  mappedBytes_ = sizeof(HttpFlow) * capacity;
  // MAP_NORESERVE: the pool may be far larger than what is ever in use at once.
  void* p = ::mmap(nullptr, mappedBytes_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    throw std::runtime_error("cannot reserve " + std::to_string(mappedBytes_) +
                             " bytes for the HTTP filter's connection states");
  flows_ = static_cast<HttpFlow*>(p);
}

HttpFlowPool::~HttpFlowPool() {
  if (!flows_) return;
  for (uint32_t slot = 1; slot < neverUsed_; ++slot) at(slot).~HttpFlow();
  ::munmap(flows_, mappedBytes_);
}

uint32_t HttpFlowPool::allocate() {
  std::lock_guard guard(mutex_);
  uint32_t slot = 0;
  if (freeCount_ > 0) {
    slot = free_[--freeCount_];
  } else if (neverUsed_ <= capacity_) {
    slot = neverUsed_++;
    new (&flows_[slot - 1]) HttpFlow();
  }
  if (slot != 0) inUse_.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

void HttpFlowPool::release(uint32_t slot) {
  if (slot == 0 || slot > capacity_) return;
  std::lock_guard guard(mutex_);
  free_[freeCount_++] = slot;
  inUse_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace fulcrum
