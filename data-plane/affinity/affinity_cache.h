// AffinityCache: an engine's short-lived copy of what a remote affinity store
// answered, read by every packet loop without I/O.
//
//   - lookup(): any thread, concurrently. A hit is a value the store answered
//     less than the entry's lifetime ago (`ttlMs`, and never longer than the
//     key's own TTL in the store). A hit also marks the key as used, so that
//     the store's thread can refresh the key's TTL in the store
//     (drainHits()); a key is reported once however often it was hit.
//   - put() / erase(): the store's thread only (one writer).
//
// Fixed capacity, allocated at construction; no allocation afterwards. The
// table is split into 64 shards, each under a spin lock held for one probe of
// at most 8 slots. When all 8 slots of a probe window are live, put() evicts
// the one that expires first (counted): the cache is only an accelerator, a
// lost entry costs one round trip to the store.
#pragma once

#include <cstdint>
#include <memory>

#include "data-plane/affinity_store.h"
#include "data-plane/spin_lock.h"

namespace fulcrum {

class AffinityCache {
 public:
  struct Counters {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;  // live entries replaced for lack of room
  };

  AffinityCache(uint32_t capacity, uint32_t ttlMs);
  ~AffinityCache();

  // `nowMs` is a monotonic clock in milliseconds (one clock for all callers).
  bool lookup(const AffinityKey& key, uint32_t* value, uint64_t nowMs);

  // The store answered `value` for `key`, whose TTL in the store is
  // `ttlSeconds` from now.
  void put(const AffinityKey& key, uint32_t value, uint32_t ttlSeconds, uint64_t nowMs);
  // The store does not hold `key` (a lookup-only miss).
  void erase(const AffinityKey& key);

  // Calls fn(const AffinityKey&, uint32_t ttlSeconds) for up to `max` keys hit
  // since they were last drained and still cached; returns how many. Keys
  // left over are reported by the next call.
  template <class Fn>
  uint32_t drainHits(uint32_t max, Fn&& fn);

  Counters counters() const;
  uint32_t capacity() const { return kShards * slotsPerShard_; }

 private:
  struct Entry {
    AffinityKey key;
    uint64_t expiresAtMs = 0;  // 0: free
    uint32_t value = 0;
    uint32_t ttlSeconds = 0;  // the key's TTL in the store, for its refresh
    bool pending = false;     // hit since last drained; its index is in Shard::pending
  };
  struct alignas(64) Shard {
    mutable SpinLock lock;
    // All below guarded by lock.
    std::unique_ptr<Entry[]> entries;
    // Indices of entries with `pending` set, each once (an index is listed
    // exactly when its entry's flag is set, so the list never overflows).
    std::unique_ptr<uint32_t[]> pending;
    uint32_t pendingCount = 0;
    uint64_t hits = 0, misses = 0, evictions = 0;
  };
  static constexpr uint32_t kShards = 64;
  static constexpr uint32_t kMaxProbe = 8;

  Shard& shardOf(const AffinityKey& key, uint32_t* start);

  const uint32_t slotsPerShard_;
  const uint32_t ttlMs_;
  std::unique_ptr<Shard[]> shards_;
};

template <class Fn>
uint32_t AffinityCache::drainHits(uint32_t max, Fn&& fn) {
  uint32_t n = 0;
  for (uint32_t s = 0; s < kShards && n < max; ++s) {
    Shard& shard = shards_[s];
    std::lock_guard<SpinLock> guard(shard.lock);
    while (shard.pendingCount > 0 && n < max) {
      Entry& e = shard.entries[shard.pending[--shard.pendingCount]];
      e.pending = false;
      if (e.expiresAtMs == 0) continue;  // erased since
      fn(e.key, e.ttlSeconds);
      ++n;
    }
  }
  return n;
}

}  // namespace fulcrum
