#include "data-plane/affinity_store.h"

#include <string_view>

#include "shared/net/hash.h"

namespace fulcrum {

namespace {

uint64_t hashKey(const AffinityKey& k) {
  return hash::bytes(k.client.bytes().data(), k.client.bytes().size(), k.scope ^ k.clientPort);
}

bool live(uint32_t expiresAt, uint32_t now) {
  return static_cast<int32_t>(expiresAt - now) > 0;
}

}  // namespace

uint64_t stableNameId(std::string_view name) {
  return hash::fnv1a(name);
}

LocalAffinityStore::LocalAffinityStore(uint32_t capacity)
    : slotsPerShard_((capacity + kShards - 1) / kShards < kMaxProbe
                         ? kMaxProbe
                         : (capacity + kShards - 1) / kShards),
      shards_(std::make_unique<Shard[]>(kShards)) {
  for (uint32_t i = 0; i < kShards; ++i)
    shards_[i].entries = std::make_unique<Entry[]>(slotsPerShard_);
}

LocalAffinityStore::~LocalAffinityStore() = default;

AffinityResult LocalAffinityStore::readMissCreate(const AffinityKey& key, uint32_t proposed,
                                                  uint32_t ttlSeconds, uint32_t now) {
  const uint64_t h = hashKey(key);
  Shard& shard = shards_[h % kShards];
  const uint32_t start = static_cast<uint32_t>((h / kShards) % slotsPerShard_);
  std::lock_guard<std::mutex> guard(shard.mutex);
  Entry* reusable = nullptr;
  for (uint32_t i = 0; i < kMaxProbe; ++i) {
    Entry& e = shard.entries[(start + i) % slotsPerShard_];
    if (!e.used) {
      if (!reusable) reusable = &e;
      break;  // the key was never stored past a never-used slot
    }
    if (live(e.expiresAt, now)) {
      if (e.key == key) {
        e.expiresAt = now + ttlSeconds;
        return {e.value, false, false};
      }
    } else if (!reusable) {
      reusable = &e;
    }
  }
  if (!reusable) return {proposed, false, true};
  reusable->key = key;
  reusable->value = proposed;
  reusable->expiresAt = now + ttlSeconds;
  reusable->used = true;
  return {proposed, true, false};
}

uint32_t LocalAffinityStore::liveEntries(uint32_t now) const {
  uint32_t n = 0;
  for (uint32_t s = 0; s < kShards; ++s) {
    std::lock_guard<std::mutex> guard(shards_[s].mutex);
    for (uint32_t i = 0; i < slotsPerShard_; ++i) {
      const Entry& e = shards_[s].entries[i];
      if (e.used && live(e.expiresAt, now)) ++n;
    }
  }
  return n;
}

}  // namespace fulcrum
