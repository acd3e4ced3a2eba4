#include "data-plane/session_table.h"

#include <algorithm>
#include <thread>

namespace fulcrum {

const char* tcpStateName(TcpState s) {
  switch (s) {
    case TcpState::kSynSent:
      return "syn-sent";
    case TcpState::kSynReceived:
      return "syn-received";
    case TcpState::kEstablished:
      return "established";
    case TcpState::kFinWait:
      return "fin-wait";
    case TcpState::kTimeWait:
      return "time-wait";
    case TcpState::kClosed:
      return "closed";
  }
  return "unknown";
}

void SessionTable::lockContended(uint32_t b) {
  std::atomic<uint32_t>& word = buckets_[b];
  for (;;) {
    // Spin on a plain load so waiting does not bounce the cache line; yield
    // eventually so an oversubscribed machine (tests, CI) still progresses.
    for (int spins = 0; word.load(std::memory_order_relaxed) & kLocked; ++spins) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();  // lets the holder's core (or SMT sibling) run
#endif
      if (spins > 1000) std::this_thread::yield();
    }
    if ((word.fetch_or(kLocked, std::memory_order_acquire) & kLocked) == 0) return;
  }
}

SessionTable::SessionTable(uint32_t capacity, uint64_t hashSeed)
    : capacity_(std::clamp<uint32_t>(capacity, 1, kMaxCapacity)), seed_(hashSeed) {
  // Two buckets per session keep chains short (one entry per bucket on
  // average at full load) for
  // 8 bytes a session.
  bucketCount_ = uint64_t{capacity_} * 2;
  sessions_ = MappedArray<Session4>(capacity_);
  buckets_ = MappedArray<std::atomic<uint32_t>>(bucketCount_);
  for (uint64_t i = 0; i < bucketCount_; ++i) buckets_[i].store(kEmpty, std::memory_order_relaxed);
  // Free stack, lowest index on top. Its links live apart from next[] so a
  // loop popping a record never reads a field another loop is writing.
  freeNext_ = MappedArray<std::atomic<uint32_t>>(capacity_);
  for (uint32_t i = 0; i < capacity_; ++i)
    freeNext_[i].store(i + 1 < capacity_ ? i + 1 : kEmpty, std::memory_order_relaxed);
  freeHead_.store(0, std::memory_order_relaxed);
}

SessionTable::~SessionTable() = default;

uint32_t SessionTable::findEntry(uint32_t bucket, const FlowKey4& key) const {
  for (uint32_t e = head(bucket); e != kEmpty; e = sessions_[e >> 1].next[e & 1]) {
    if (keyMatches(sessions_[e >> 1], e & 1, key)) return e;
  }
  return kEmpty;
}

void SessionTable::link(uint32_t bucket, uint32_t entry) {
  setNext(entry, head(bucket));
  setHead(bucket, entry);
}

void SessionTable::unlink(uint32_t bucket, uint32_t entry) {
  uint32_t e = head(bucket);
  if (e == entry) {
    setHead(bucket, nextOf(entry));
    return;
  }
  while (e != kEmpty) {
    const uint32_t next = nextOf(e);
    if (next == entry) {
      setNext(e, nextOf(entry));
      return;
    }
    e = next;
  }
}

SessionInfo SessionTable::infoOf(uint32_t index, const Session4& s) {
  SessionInfo i;
  static_cast<SessionIdentity&>(i) = s;
  i.index = index;
  i.kind = s.kind;
  i.epoch = s.epoch;
  const uint32_t w = s.stateWord.load(std::memory_order_relaxed);
  i.state = state_word::state(w);
  i.httpSlot = state_word::httpSlot(w);
  i.createdAt = s.createdAt;
  i.expiresAt = s.expiresAt.load(std::memory_order_relaxed);
  return i;
}

SessionInfo SessionTable::detach(uint32_t index) {
  Session4& s = sessions_[index];
  unlink(bucketOf(hash(s.egressKey())), index << 1);
  if (hasIngress(s)) unlink(bucketOf(hash(s.ingressKey())), (index << 1) | 1);
  SessionInfo info = infoOf(index, s);
  s.stateWord.store(0, std::memory_order_release);
  size_.fetch_sub(1, std::memory_order_relaxed);
  return info;
}

uint32_t SessionTable::allocate() {
  uint64_t head = freeHead_.load(std::memory_order_acquire);
  for (;;) {
    uint32_t idx = static_cast<uint32_t>(head);
    if (idx == kEmpty) return kEmpty;
    // The tag in the upper half defeats ABA: a record popped and pushed back
    // between our load and CAS changes the tag, so the CAS fails.
    uint32_t next = freeNext_[idx].load(std::memory_order_relaxed);
    uint64_t desired = ((head >> 32) + 1) << 32 | next;
    if (freeHead_.compare_exchange_weak(head, desired, std::memory_order_acq_rel,
                                        std::memory_order_acquire))
      return idx;
  }
}

void SessionTable::release(uint32_t idx) {
  uint64_t head = freeHead_.load(std::memory_order_acquire);
  for (;;) {
    freeNext_[idx].store(static_cast<uint32_t>(head), std::memory_order_relaxed);
    uint64_t desired = ((head >> 32) + 1) << 32 | idx;
    if (freeHead_.compare_exchange_weak(head, desired, std::memory_order_acq_rel,
                                        std::memory_order_acquire))
      return;
  }
}

double SessionTable::bytesPerSession() const {
  return sizeof(Session4) + sizeof(uint32_t) +
         static_cast<double>(bucketCount()) * sizeof(uint32_t) / capacity_;
}

long SessionTable::hugePageBytes() const {
  return anonHugePagesIn({&sessions_[0], &buckets_[0], &freeNext_[0]});
}

}  // namespace fulcrum
