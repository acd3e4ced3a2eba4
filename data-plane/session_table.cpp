#include "data-plane/session_table.h"

#include <bit>
#include <thread>

#include "shared/net/hash.h"

namespace fulcrum {

using hash::mix64;

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

void SessionTable::Stripe::lock() {
  for (;;) {
    if (!locked.exchange(true, std::memory_order_acquire)) return;
    // Spin on a plain load so waiting does not bounce the cache line; yield
    // eventually so an oversubscribed machine (tests, CI) still progresses.
    for (int spins = 0; locked.load(std::memory_order_relaxed); ++spins) {
      if (spins > 1000) std::this_thread::yield();
    }
  }
}

SessionTable::SessionTable(uint32_t capacity, uint64_t hashSeed)
    : capacity_(capacity == 0 ? 1 : capacity), seed_(hashSeed) {
  // About two buckets per session keeps chains short (mean < 1 at full load)
  // while the heads cost ~8 bytes per session.
  uint64_t buckets = std::bit_ceil(uint64_t{capacity_} * 2);
  if (buckets < kStripes) buckets = kStripes;
  bucketMask_ = buckets - 1;
  sessions_ = std::make_unique<Session4[]>(capacity_);
  buckets_ = std::make_unique<uint32_t[]>(buckets);
  for (uint64_t i = 0; i < buckets; ++i) buckets_[i] = kEmpty;
  stripes_ = std::make_unique<Stripe[]>(kStripes);
  // Free stack, lowest index on top. Its links live apart from next[] so a
  // loop popping a record never reads a field another loop is writing.
  freeNext_ = std::make_unique<std::atomic<uint32_t>[]>(capacity_);
  for (uint32_t i = 0; i < capacity_; ++i)
    freeNext_[i].store(i + 1 < capacity_ ? i + 1 : kEmpty, std::memory_order_relaxed);
  freeHead_.store(0, std::memory_order_relaxed);
}

SessionTable::~SessionTable() = default;

uint64_t SessionTable::hash(const FlowKey4& k) const {
  uint64_t a = (uint64_t{k.src} << 32) | k.dst;
  uint64_t b = (uint64_t{k.srcPort} << 48) | (uint64_t{k.dstPort} << 32) |
               (uint64_t{k.serviceSet} << 8) | static_cast<uint64_t>(k.direction);
  return mix64(mix64(a ^ seed_) ^ b);
}

void SessionTable::prefetch(uint64_t h) const {
  __builtin_prefetch(&buckets_[bucketOf(h)]);
}

bool SessionTable::keyMatches(const Session4& s, uint32_t side, const FlowKey4& k) const {
  if (side == 0) {
    return k.direction == Direction::kEgress && s.client == k.src && s.facade == k.dst &&
           s.clientPort == k.srcPort && s.facadePort == k.dstPort && s.serviceSet == k.serviceSet;
  }
  return k.direction == Direction::kIngress && s.server == k.src && s.client == k.dst &&
         s.serverPort == k.srcPort && s.clientPort == k.dstPort && s.serviceSet == k.serviceSet;
}

uint32_t SessionTable::findEntry(uint32_t bucket, const FlowKey4& key) const {
  for (uint32_t e = buckets_[bucket]; e != kEmpty; e = sessions_[e >> 1].next[e & 1]) {
    if (keyMatches(sessions_[e >> 1], e & 1, key)) return e;
  }
  return kEmpty;
}

void SessionTable::link(uint32_t bucket, uint32_t entry) {
  sessions_[entry >> 1].next[entry & 1] = buckets_[bucket];
  buckets_[bucket] = entry;
}

void SessionTable::unlink(uint32_t bucket, uint32_t entry) {
  uint32_t* slot = &buckets_[bucket];
  while (*slot != kEmpty) {
    if (*slot == entry) {
      *slot = sessions_[entry >> 1].next[entry & 1];
      return;
    }
    slot = &sessions_[*slot >> 1].next[*slot & 1];
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

}  // namespace fulcrum
