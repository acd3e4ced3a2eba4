#include "data-plane/affinity/affinity_cache.h"

#include <algorithm>
#include <mutex>

#include "shared/net/hash.h"

namespace fulcrum {

AffinityCache::AffinityCache(uint32_t capacity, uint32_t ttlMs)
    : slotsPerShard_(std::max<uint32_t>((capacity + kShards - 1) / kShards, kMaxProbe)),
      ttlMs_(ttlMs),
      shards_(std::make_unique<Shard[]>(kShards)) {
  for (uint32_t s = 0; s < kShards; ++s) {
    shards_[s].entries = std::make_unique<Entry[]>(slotsPerShard_);
    shards_[s].pending = std::make_unique<uint32_t[]>(slotsPerShard_);
  }
}

AffinityCache::~AffinityCache() = default;

AffinityCache::Shard& AffinityCache::shardOf(const AffinityKey& key, uint32_t* start) {
  // Not the local store's seed: the two tables need not collide alike.
  const uint64_t h = hash::bytes(key.client.bytes().data(), key.client.bytes().size(),
                                 hash::mix64(key.scope) ^ key.clientPort ^ 0x5ca1ab1eULL);
  *start = static_cast<uint32_t>((h / kShards) % slotsPerShard_);
  return shards_[h % kShards];
}

bool AffinityCache::lookup(const AffinityKey& key, uint32_t* value, uint64_t nowMs) {
  uint32_t start;
  Shard& shard = shardOf(key, &start);
  std::lock_guard<SpinLock> guard(shard.lock);
  for (uint32_t i = 0; i < kMaxProbe; ++i) {
    const uint32_t index = (start + i) % slotsPerShard_;
    Entry& e = shard.entries[index];
    if (e.expiresAtMs > nowMs && e.key == key) {
      *value = e.value;
      ++shard.hits;
      if (!e.pending) {
        e.pending = true;
        shard.pending[shard.pendingCount++] = index;
      }
      return true;
    }
  }
  ++shard.misses;
  return false;
}

void AffinityCache::put(const AffinityKey& key, uint32_t value, uint32_t ttlSeconds,
                        uint64_t nowMs) {
  // Never longer than the key lives in the store.
  const uint64_t lifetime = std::min<uint64_t>(ttlMs_, uint64_t{ttlSeconds} * 1000);
  if (lifetime == 0) return;
  uint32_t start;
  Shard& shard = shardOf(key, &start);
  std::lock_guard<SpinLock> guard(shard.lock);
  Entry* target = nullptr;
  Entry* soonest = nullptr;
  for (uint32_t i = 0; i < kMaxProbe; ++i) {
    Entry& e = shard.entries[(start + i) % slotsPerShard_];
    if (e.expiresAtMs > nowMs && e.key == key) {
      target = &e;
      break;
    }
    if (e.expiresAtMs <= nowMs) {
      if (!target) target = &e;  // free or expired; keep looking for the key itself
    } else if (!soonest || e.expiresAtMs < soonest->expiresAtMs) {
      soonest = &e;
    }
  }
  if (!target) {
    target = soonest;
    ++shard.evictions;
  }
  // A pending flag stays with the slot: its index is listed once, and the new
  // key inherits at most one extra refresh.
  target->key = key;
  target->value = value;
  target->ttlSeconds = ttlSeconds;
  target->expiresAtMs = nowMs + lifetime;
}

void AffinityCache::erase(const AffinityKey& key) {
  uint32_t start;
  Shard& shard = shardOf(key, &start);
  std::lock_guard<SpinLock> guard(shard.lock);
  for (uint32_t i = 0; i < kMaxProbe; ++i) {
    Entry& e = shard.entries[(start + i) % slotsPerShard_];
    if (e.expiresAtMs != 0 && e.key == key) e.expiresAtMs = 0;
  }
}

AffinityCache::Counters AffinityCache::counters() const {
  Counters c;
  for (uint32_t s = 0; s < kShards; ++s) {
    std::lock_guard<SpinLock> guard(shards_[s].lock);
    c.hits += shards_[s].hits;
    c.misses += shards_[s].misses;
    c.evictions += shards_[s].evictions;
  }
  return c;
}

}  // namespace fulcrum
