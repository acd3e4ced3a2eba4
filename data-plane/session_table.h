// SessionTable: the IPv4 session lookup table shared by every packet loop.
//
// Shape: a fixed pool of Session4 records allocated at start, and one array of
// bucket heads. Each session has two entries, its egress key and (for
// application sessions) its ingress key; an entry reference is
// (record index << 1 | side), and entries chain through Session4::next[side].
// Both entries point at one record and age as one: a session is unlinked from
// both chains in one step, so there are no half-expired sessions.
//
// Concurrency: every bucket is its own spinlock. A bucket is one 32-bit word,
// the chain's head entry in bits 0-30 and a lock bit in bit 31, so taking the
// lock touches the cache line the lookup reads anyway. (Striped locks in an
// array of their own cost a second random line per packet, and every lookup
// of every loop wrote one of the same 1024 lines.) A lookup holds one bucket
// for the length of a chain walk and the caller's per-packet update, never
// across a whole packet. create() and removals take both buckets of a
// session in ascending order. TCP state and expiry are atomics because the
// egress and ingress entries of one session may be used by two loops at once
// under different buckets. Free records sit on a lock-free tagged stack.
//
// Memory: records, buckets and free links are MappedArrays (2 MiB aligned,
// offered to transparent huge pages), with exactly two buckets per session:
// 48 + 2 * 4 + 4 = 60 bytes a session at every capacity.
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

#include "data-plane/mapped_array.h"
#include "data-plane/session_types.h"
#include "shared/net/hash.h"

namespace fulcrum {

class SessionTable {
 public:
  static constexpr uint32_t kDefaultCapacity = 1'000'000;
  // Entry references (index << 1 | side) must fit the 31 bits of a bucket
  // word below kEmpty.
  static constexpr uint32_t kMaxCapacity = 1u << 29;

  explicit SessionTable(uint32_t capacity = kDefaultCapacity,
                        uint64_t hashSeed = 0x9e3779b97f4a7c15);
  ~SessionTable();
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  uint64_t hash(const FlowKey4& k) const {
    const uint64_t a = (uint64_t{k.src} << 32) | k.dst;
    const uint64_t b = (uint64_t{k.srcPort} << 48) | (uint64_t{k.dstPort} << 32) |
                       (uint64_t{k.serviceSet} << 8) | static_cast<uint64_t>(k.direction);
    return hash::mix64(hash::mix64(a ^ seed_) ^ b);
  }
  // Hints the CPU to fetch the bucket of `hash` (burst processing: hash all
  // packets first, prefetch, then look up).
  void prefetch(uint64_t h) const { __builtin_prefetch(&buckets_[bucketOf(h)]); }
  // Pipeline stage of a burst, once the bucket has had time to arrive: hints
  // the CPU to fetch the record the bucket's chain starts with (the one a
  // lookup most often wants: a full table holds one entry per bucket on
  // average). Reads the head without the lock; a stale head only wastes the
  // hint.
  void prefetchRecord(uint64_t h) const {
    const uint32_t e = buckets_[bucketOf(h)].load(std::memory_order_relaxed) & kEmpty;
    if (e != kEmpty) prefetchWhole(e >> 1);
  }
  // The next stage: when the chain's first record is not `key`'s, hints the
  // record after it (a bucket that holds this key holds about two entries,
  // so a third of lookups need a second record).
  //
  // Unlocked reads, hints only: next[] is read through a relaxed atomic_ref
  // (its writers use one too), so it is always a valid reference or kEmpty
  // (freed records keep their links: the free stack has its own). The
  // identity fields compared may be being written by create() for a new
  // session in that record; a torn compare only changes whether a hint is
  // issued, and the lookup proper reads them under the lock.
  __attribute__((no_sanitize("thread"))) void prefetchSecond(uint64_t h,
                                                             const FlowKey4& key) const {
    const uint32_t e = buckets_[bucketOf(h)].load(std::memory_order_relaxed) & kEmpty;
    if (e == kEmpty || keyMatches(sessions_[e >> 1], e & 1, key)) return;
    const uint32_t next = nextOf(e) & kEmpty;
    if (next != kEmpty) prefetchWhole(next >> 1);
  }

  // Finds the entry for `key` (whose hash is `h`). When found and not expired
  // at `now`, calls fn(Session4&, Direction entrySide) with the entry's bucket
  // locked and returns true. fn must be short: it runs under a spinlock.
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
  size_t bucketCount() const { return bucketCount_; }
  // The bucket of hash `h`. Any bucket count, not only powers of two: the
  // high half of the hash scaled to [0, bucketCount) (multiply-shift), so
  // the table can hold exactly two buckets per session.
  uint32_t bucketOf(uint64_t h) const {
    return static_cast<uint32_t>(((h >> 32) * bucketCount_) >> 32);
  }
  // Memory held per session slot: record, free-stack link and bucket heads.
  double bytesPerSession() const;
  // Bytes of the table the kernel backs with huge pages now; -1 if unknown.
  long hugePageBytes() const;

 private:
  // Records are 48 bytes, so half of them straddle two cache lines: both
  // are fetched (the same line twice costs nothing).
  void prefetchWhole(uint32_t index) const {
    const char* r = reinterpret_cast<const char*>(&sessions_[index]);
    __builtin_prefetch(r);
    __builtin_prefetch(r + sizeof(Session4) - 1);
  }

  static constexpr uint32_t kLocked = 1u << 31;
  static constexpr uint32_t kEmpty = kLocked - 1;  // also the mask of the head
  static_assert(((kMaxCapacity - 1) << 1 | 1) < kEmpty, "entry references must fit a bucket");

  // Locks two buckets in ascending order (once if they are the same).
  class PairLock;

  void lockBucket(uint32_t b) {
    if ((buckets_[b].fetch_or(kLocked, std::memory_order_acquire) & kLocked) == 0) return;
    lockContended(b);
  }
  void lockContended(uint32_t b);  // out of line: the spin is the rare case
  void unlockBucket(uint32_t b) {
    // Only the holder changes a locked word (others' fetch_or leaves it as
    // it is), so a plain store of the head releases the lock.
    buckets_[b].store(buckets_[b].load(std::memory_order_relaxed) & kEmpty,
                      std::memory_order_release);
  }
  // The head of a bucket's chain; the caller holds the bucket.
  uint32_t head(uint32_t b) const { return buckets_[b].load(std::memory_order_relaxed) & kEmpty; }
  void setHead(uint32_t b, uint32_t entry) {
    buckets_[b].store(entry | kLocked, std::memory_order_relaxed);
  }
  // The link after `entry` in its chain. Written under the bucket's lock but
  // also read without it (prefetchSecond), so both go through atomic_ref;
  // relaxed, these are plain moves.
  uint32_t nextOf(uint32_t entry) const {
    // atomic_ref takes no const object; this only loads.
    return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(sessions_[entry >> 1].next[entry & 1]))
        .load(std::memory_order_relaxed);
  }
  void setNext(uint32_t entry, uint32_t next) {
    std::atomic_ref<uint32_t>(sessions_[entry >> 1].next[entry & 1])
        .store(next, std::memory_order_relaxed);
  }
  static bool keyMatches(const Session4& s, uint32_t side, const FlowKey4& k) {
    if (side == 0) {
      return k.direction == Direction::kEgress && s.client == k.src && s.facade == k.dst &&
             s.clientPort == k.srcPort && s.facadePort == k.dstPort && s.serviceSet == k.serviceSet;
    }
    return k.direction == Direction::kIngress && s.server == k.src && s.client == k.dst &&
           s.serverPort == k.srcPort && s.clientPort == k.dstPort && s.serviceSet == k.serviceSet;
  }
  // Walks the chain of `bucket` for `key`; returns the entry reference or kEmpty.
  uint32_t findEntry(uint32_t bucket, const FlowKey4& key) const;
  void link(uint32_t bucket, uint32_t entry);
  void unlink(uint32_t bucket, uint32_t entry);
  // Unlinks both entries of record `index` (both buckets held) and copies it.
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
  uint64_t bucketCount_;
  MappedArray<Session4> sessions_;
  MappedArray<std::atomic<uint32_t>> buckets_;   // lock bit | head entry reference
  MappedArray<std::atomic<uint32_t>> freeNext_;  // free-stack links
  alignas(64) std::atomic<uint64_t> freeHead_;   // (tag << 32) | index
  alignas(64) std::atomic<uint32_t> size_{0};
};

class SessionTable::PairLock {
 public:
  PairLock(SessionTable& t, uint32_t a, uint32_t b)
      : t_(t), lo_(a < b ? a : b), hi_(a < b ? b : a) {
    t_.lockBucket(lo_);
    if (hi_ != lo_) t_.lockBucket(hi_);
  }
  ~PairLock() {
    if (hi_ != lo_) t_.unlockBucket(hi_);
    t_.unlockBucket(lo_);
  }
  PairLock(const PairLock&) = delete;
  PairLock& operator=(const PairLock&) = delete;

 private:
  SessionTable& t_;
  uint32_t lo_, hi_;
};

template <class Fn>
bool SessionTable::find(const FlowKey4& key, uint64_t h, uint32_t now, Fn&& fn) {
  const uint32_t bucket = bucketOf(h);
  lockBucket(bucket);
  uint32_t entry = findEntry(bucket, key);
  bool hit = false;
  if (entry != kEmpty) {
    Session4& s = sessions_[entry >> 1];
    if (!expired(s, now)) {
      fn(s, static_cast<Direction>(entry & 1));
      hit = true;
    }
  }
  unlockBucket(bucket);
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
      PairLock lock(*this, bucketOf(eh), bucketOf(ih));
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
      // The holder's other entry may sit in a bucket we do not hold, so it
      // is removed under its own pair of locks once these are released. Its
      // identity is safe to read here: it was written under this bucket.
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
  // bucket; then both are locked in order and the record checked again.
  uint64_t ih = eh;
  {
    const uint32_t bucket = bucketOf(eh);
    lockBucket(bucket);
    uint32_t entry = findEntry(bucket, egressKey);
    if (entry == kEmpty) {
      unlockBucket(bucket);
      return false;
    }
    const Session4& s = sessions_[entry >> 1];
    if (hasIngress(s)) ih = hash(s.ingressKey());
    unlockBucket(bucket);
  }
  SessionInfo info;
  {
    PairLock lock(*this, bucketOf(eh), bucketOf(ih));
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
  if (end > bucketCount_) end = static_cast<uint32_t>(bucketCount_);
  // Expired egress keys of one bucket, collected under its lock; removed
  // after it is released because removal needs the session's pair of buckets.
  constexpr int kBatch = 16;
  FlowKey4 keys[kBatch];
  uint32_t removed = 0;
  for (uint32_t b = begin; b < end; ++b) {
    bool more = true;
    while (more) {
      int n = 0;
      more = false;
      lockBucket(b);
      for (uint32_t e = head(b); e != kEmpty; e = sessions_[e >> 1].next[e & 1]) {
        const Session4& s = sessions_[e >> 1];
        if ((e & 1) != 0 || !expired(s, now)) continue;
        if (n == kBatch) {
          more = true;
          break;
        }
        keys[n++] = s.egressKey();
      }
      unlockBucket(b);
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
  for (uint32_t b = 0; b < bucketCount_; ++b) {
    lockBucket(b);
    for (uint32_t e = head(b); e != kEmpty; e = sessions_[e >> 1].next[e & 1]) {
      // Report each session once, from its egress entry.
      if ((e & 1) == 0) fn(infoOf(e >> 1, sessions_[e >> 1]));
    }
    unlockBucket(b);
  }
}

}  // namespace fulcrum
