// SessionTable: the IPv4 session lookup table shared by every packet loop.
//
// Shape: a fixed pool of Session4 records allocated at start, and one array of
// bucket heads. Each session has two entries, its egress key and (for
// application sessions) its ingress key; an entry reference is
// (record index << 1 | side), and entries chain through Session4::next[side].
// Both entries point at one record and age as one: a session is unlinked from
// both chains in one step, so there are no half-expired sessions.
//
// Concurrency: buckets are guarded by striped spinlocks (kStripes of them,
// each on its own cache line). A lookup holds one stripe for the length of a
// chain walk and the caller's per-packet update, never across a whole packet.
// create() and removals take both stripes of a session in ascending order.
// TCP state and expiry are atomics because the egress and ingress entries of
// one session may be used by two loops at once under different stripes.
// Free records sit on a lock-free tagged stack.
//
// Capacity: fixed at construction; create() fails with kFull when the pool is
// empty (the caller counts it and applies the table-full policy, see README).
//
// Time: `now` is in seconds on any monotonic scale the caller picks (the
// daemon's clock, or capture timestamps in the replay harness).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "data-plane/session_types.h"

namespace fulcrum {

class SessionTable {
 public:
  static constexpr uint32_t kDefaultCapacity = 1'000'000;
  static constexpr uint32_t kStripes = 1024;

  explicit SessionTable(uint32_t capacity = kDefaultCapacity,
                        uint64_t hashSeed = 0x9e3779b97f4a7c15);
  ~SessionTable();
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  uint64_t hash(const FlowKey4& key) const;
  // Hints the CPU to fetch the bucket of `hash` (burst processing: hash all
  // packets first, prefetch, then look up).
  void prefetch(uint64_t hash) const;

  // Finds the entry for `key` (whose hash is `h`). When found and not expired
  // at `now`, calls fn(Session4&, Direction entrySide) with the entry's stripe
  // held and returns true. fn must be short: it runs under a spinlock.
  template <class Fn>
  bool find(const FlowKey4& key, uint64_t h, uint32_t now, Fn&& fn);

  enum class CreateStatus : uint8_t {
    kCreated,
    kExists,           // a live session with this egress key exists (a race: use it)
    kIngressConflict,  // another live session already owns the ingress key
    kFull,             // no free record
  };
  struct CreateResult {
    CreateStatus status;
    uint32_t index;  // valid for kCreated
  };
  // Creates a session from `init` (identity, kind, state, expiry are taken
  // from it). Expired sessions holding either key are removed first and
  // handed to onRemoved(const SessionInfo&) after the locks are released.
  template <class OnRemoved>
  CreateResult create(const SessionInit& init, uint32_t now, OnRemoved&& onRemoved);

  // Removes the session whose egress key is `egressKey` if pred(Session4&)
  // holds (checked under both locks). onRemoved(const SessionInfo&) runs after
  // the locks are released. Returns true when removed.
  template <class Pred, class OnRemoved>
  bool removeIf(const FlowKey4& egressKey, Pred&& pred, OnRemoved&& onRemoved);

  // Removes expired sessions whose egress entry is in buckets [begin, end)
  // (clamped to bucketCount()); onRemoved(const SessionInfo&) for each.
  // Returns how many. Loops call it with disjoint slices, a little per burst,
  // so ageing needs no extra thread.
  template <class OnRemoved>
  uint32_t expire(uint32_t now, uint32_t begin, uint32_t end, OnRemoved&& onRemoved);

  // Copies every live session (under its lock) to fn(const SessionInfo&).
  template <class Fn>
  void forEach(Fn&& fn);

  uint32_t capacity() const { return capacity_; }
  uint32_t size() const { return size_.load(std::memory_order_relaxed); }
  size_t bucketCount() const { return bucketMask_ + 1; }
  // Memory held per session slot: record, free-stack link and bucket heads.
  double bytesPerSession() const;

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;

  struct alignas(64) Stripe {
    std::atomic<bool> locked{false};
    void lock();
    void unlock() { locked.store(false, std::memory_order_release); }
  };
  // Locks two stripes in ascending order (once if they are the same).
  class PairLock;

  uint32_t stripeOf(uint64_t h) const { return static_cast<uint32_t>(h & bucketMask_) % kStripes; }
  uint32_t bucketOf(uint64_t h) const { return static_cast<uint32_t>(h & bucketMask_); }
  bool keyMatches(const Session4& s, uint32_t side, const FlowKey4& key) const;
  // Walks the chain of `bucket` for `key`; returns the entry reference or kEmpty.
  uint32_t findEntry(uint32_t bucket, const FlowKey4& key) const;
  void link(uint32_t bucket, uint32_t entry);
  void unlink(uint32_t bucket, uint32_t entry);
  // Unlinks both entries of record `index` (both stripes held) and copies it.
  SessionInfo detach(uint32_t index);
  uint32_t allocate();
  void release(uint32_t index);
  static SessionInfo infoOf(uint32_t index, const Session4& s);
  static bool expired(const Session4& s, uint32_t now) {
    return static_cast<int32_t>(s.expiresAt.load(std::memory_order_relaxed) - now) <= 0;
  }
  template <class S>
  static bool hasIngress(const S& s) {
    return s.kind == SessionKind::kApplication;
  }

  uint32_t capacity_;
  uint64_t seed_;
  uint64_t bucketMask_;
  std::unique_ptr<Session4[]> sessions_;
  std::unique_ptr<uint32_t[]> buckets_;  // entry references, guarded by stripes_
  std::unique_ptr<Stripe[]> stripes_;
  std::unique_ptr<std::atomic<uint32_t>[]> freeNext_;  // free-stack links
  alignas(64) std::atomic<uint64_t> freeHead_;         // (tag << 32) | index
  alignas(64) std::atomic<uint32_t> size_{0};
};

class SessionTable::PairLock {
 public:
  PairLock(SessionTable& t, uint32_t a, uint32_t b)
      : t_(t), lo_(a < b ? a : b), hi_(a < b ? b : a) {
    t_.stripes_[lo_].lock();
    if (hi_ != lo_) t_.stripes_[hi_].lock();
  }
  ~PairLock() {
    if (hi_ != lo_) t_.stripes_[hi_].unlock();
    t_.stripes_[lo_].unlock();
  }
  PairLock(const PairLock&) = delete;
  PairLock& operator=(const PairLock&) = delete;

 private:
  SessionTable& t_;
  uint32_t lo_, hi_;
};

template <class Fn>
bool SessionTable::find(const FlowKey4& key, uint64_t h, uint32_t now, Fn&& fn) {
  Stripe& stripe = stripes_[stripeOf(h)];
  stripe.lock();
  uint32_t entry = findEntry(bucketOf(h), key);
  bool hit = false;
  if (entry != kEmpty) {
    Session4& s = sessions_[entry >> 1];
    if (!expired(s, now)) {
      fn(s, static_cast<Direction>(entry & 1));
      hit = true;
    }
  }
  stripe.unlock();
  return hit;
}

template <class OnRemoved>
SessionTable::CreateResult SessionTable::create(const SessionInit& init, uint32_t now,
                                                OnRemoved&& onRemoved) {
  const FlowKey4 ek = init.egressKey();
  const uint64_t eh = hash(ek);
  const bool withIngress = hasIngress(init);
  const FlowKey4 ik = init.ingressKey();
  const uint64_t ih = withIngress ? hash(ik) : eh;
  // An expired holder of either key is removed and creation retried; each
  // retry removes one session, and at most two keys can be held.
  for (int attempt = 0; attempt < 3; ++attempt) {
    FlowKey4 holderKey;
    {
      PairLock lock(*this, stripeOf(eh), stripeOf(ih));
      uint32_t holder = findEntry(bucketOf(eh), ek);
      if (holder == kEmpty && withIngress) holder = findEntry(bucketOf(ih), ik);
      if (holder == kEmpty) {
        uint32_t idx = allocate();
        if (idx == kEmpty) return {CreateStatus::kFull, 0};
        Session4& s = sessions_[idx];
        static_cast<SessionIdentity&>(s) = init;
        s.kind = init.kind;
        s.epoch = init.epoch;
        s.createdAt = init.createdAt;
        s.expiresAt.store(init.expiresAt, std::memory_order_relaxed);
        s.stateWord.store(static_cast<uint32_t>(init.state) | state_word::kInUse |
                              (init.httpSlot << state_word::kHttpSlotShift),
                          std::memory_order_release);
        link(bucketOf(eh), idx << 1);
        if (withIngress) link(bucketOf(ih), (idx << 1) | 1);
        size_.fetch_add(1, std::memory_order_relaxed);
        return {CreateStatus::kCreated, idx};
      }
      const Session4& h = sessions_[holder >> 1];
      if (!expired(h, now)) {
        bool sameEgress = (holder & 1) == 0;
        return {sameEgress ? CreateStatus::kExists : CreateStatus::kIngressConflict, holder >> 1};
      }
      // The holder's other entry may sit under a stripe we do not hold, so
      // it is removed under its own pair of locks once these are released.
      // Its identity is safe to read here: it was written under this stripe.
      holderKey = h.egressKey();
    }
    removeIf(
        holderKey, [&](Session4& s) { return expired(s, now); }, onRemoved);
  }
  return {CreateStatus::kFull, 0};
}

template <class Pred, class OnRemoved>
bool SessionTable::removeIf(const FlowKey4& egressKey, Pred&& pred, OnRemoved&& onRemoved) {
  const uint64_t eh = hash(egressKey);
  // The ingress key is only known from the record, which needs the egress
  // stripe; then both are locked in order and the record checked again.
  uint64_t ih = eh;
  {
    Stripe& stripe = stripes_[stripeOf(eh)];
    stripe.lock();
    uint32_t entry = findEntry(bucketOf(eh), egressKey);
    if (entry == kEmpty) {
      stripe.unlock();
      return false;
    }
    const Session4& s = sessions_[entry >> 1];
    if (hasIngress(s)) ih = hash(s.ingressKey());
    stripe.unlock();
  }
  SessionInfo info;
  {
    PairLock lock(*this, stripeOf(eh), stripeOf(ih));
    uint32_t entry = findEntry(bucketOf(eh), egressKey);
    if (entry == kEmpty) return false;
    Session4& s = sessions_[entry >> 1];
    // The record may have been replaced meanwhile by one with another server.
    if (hasIngress(s) && hash(s.ingressKey()) != ih) return false;
    if (!pred(s)) return false;
    info = detach(entry >> 1);
  }
  release(info.index);
  onRemoved(info);
  return true;
}

template <class OnRemoved>
uint32_t SessionTable::expire(uint32_t now, uint32_t begin, uint32_t end, OnRemoved&& onRemoved) {
  if (end > bucketMask_ + 1) end = static_cast<uint32_t>(bucketMask_ + 1);
  // Expired egress keys of one bucket, collected under its stripe; removed
  // after it is released because removal needs the session's pair of stripes.
  constexpr int kBatch = 16;
  FlowKey4 keys[kBatch];
  uint32_t removed = 0;
  for (uint32_t b = begin; b < end; ++b) {
    bool more = true;
    while (more) {
      int n = 0;
      more = false;
      Stripe& stripe = stripes_[b % kStripes];
      stripe.lock();
      for (uint32_t e = buckets_[b]; e != kEmpty; e = sessions_[e >> 1].next[e & 1]) {
        const Session4& s = sessions_[e >> 1];
        if ((e & 1) != 0 || !expired(s, now)) continue;
        if (n == kBatch) {
          more = true;
          break;
        }
        keys[n++] = s.egressKey();
      }
      stripe.unlock();
      for (int i = 0; i < n; ++i) {
        if (removeIf(
                keys[i], [&](Session4& r) { return expired(r, now); }, onRemoved))
          ++removed;
      }
    }
  }
  return removed;
}

template <class Fn>
void SessionTable::forEach(Fn&& fn) {
  for (uint32_t b = 0; b <= bucketMask_; ++b) {
    Stripe& stripe = stripes_[b % kStripes];
    stripe.lock();
    for (uint32_t e = buckets_[b]; e != kEmpty; e = sessions_[e >> 1].next[e & 1]) {
      // Report each session once, from its egress entry.
      if ((e & 1) == 0) fn(infoOf(e >> 1, sessions_[e >> 1]));
    }
    stripe.unlock();
  }
}

}  // namespace fulcrum
