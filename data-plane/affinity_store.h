// AffinityStore: decisions that must agree across engines (persistence by
// source address) go through one atomic operation, readMissCreate.
//
// readMissCreate(key, proposed, ttl, now):
//   - key present and not expired: returns the stored value and refreshes its
//     TTL to `ttl` seconds from `now`;
//   - otherwise stores `proposed` with that TTL and returns it.
// The whole operation is atomic: when several callers race on one key, all of
// them get the first value stored. `fallback` is set when the store could not
// answer (full, or unreachable for a remote store): `proposed` is returned
// without being stored, and the caller counts it (a counter that should read 0).
//
// LocalAffinityStore is the embedded implementation for one engine: a
// fixed-capacity table (no allocation after construction) split into shards,
// each under its own mutex; expired entries are reused in place.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "shared/net/address.h"

namespace fulcrum {

struct AffinityKey {
  uint64_t scope = 0;  // which application (a stable id of its name)
  IpAddress client;
  // 0 for a client address (persistence); a client port for one connection
  // (session sync: the decision for one 5-tuple, under its own scope).
  uint16_t clientPort = 0;
  bool operator==(const AffinityKey&) const = default;
};

struct AffinityResult {
  uint32_t value = 0;
  bool created = false;   // `proposed` was stored
  bool fallback = false;  // the store could not answer; `proposed` returned unstored
};

class AffinityStore {
 public:
  virtual ~AffinityStore() = default;
  virtual AffinityResult readMissCreate(const AffinityKey& key, uint32_t proposed,
                                        uint32_t ttlSeconds, uint32_t now) = 0;
};

class LocalAffinityStore final : public AffinityStore {
 public:
  static constexpr uint32_t kDefaultCapacity = 1 << 20;
  explicit LocalAffinityStore(uint32_t capacity = kDefaultCapacity);
  ~LocalAffinityStore() override;

  AffinityResult readMissCreate(const AffinityKey& key, uint32_t proposed, uint32_t ttlSeconds,
                                uint32_t now) override;

  // Live (unexpired) entries at `now`; walks the table, for tests and status.
  uint32_t liveEntries(uint32_t now) const;

 private:
  struct Entry {
    AffinityKey key;
    uint32_t value = 0;
    uint32_t expiresAt = 0;
    bool used = false;  // ever written: a probe may stop at a never-used slot
  };
  struct Shard {
    std::mutex mutex;
    std::unique_ptr<Entry[]> entries;  // guarded by mutex
  };
  static constexpr uint32_t kShards = 64;
  static constexpr uint32_t kMaxProbe = 32;

  uint32_t slotsPerShard_;
  std::unique_ptr<Shard[]> shards_;
};

// Stores across the network (Redis) answer later, and a packet loop never
// waits for the network. RemoteAffinity is their asynchronous side:
//   - cached(): the engine's own short-lived copy of what the store said (a
//     value read or written less than a few seconds ago); no I/O, any loop;
//   - submit(): a request queued for the store's thread, never blocking; false
//     when the loop's queue is full or the store is down: the caller decides
//     locally and counts it;
//   - poll(): the replies to one loop's requests, in any order, by token.
// Each loop is the only caller of submit() and poll() with its index.
struct AffinityRequest {
  uint64_t token = 0;  // the caller's, returned with the reply
  AffinityKey key;
  uint32_t proposed = 0;
  uint32_t ttlSeconds = 0;
  // Read only (session sync asks what another engine decided): a miss is
  // reported, nothing is stored, and `proposed` is ignored; a hit has its TTL
  // refreshed to ttlSeconds.
  bool lookupOnly = false;
  // Store `proposed` whatever the key held (session sync records the server
  // of a new connection: a reused client port must not find the old one).
  bool overwrite = false;
};

struct AffinityReply {
  uint64_t token = 0;
  bool answered = false;  // false: the store failed (down, timeout, error)
  bool found = false;     // the key was present (before this request)
  uint32_t value = 0;     // the stored value (when answered and found or created)
};

class RemoteAffinity {
 public:
  virtual ~RemoteAffinity() = default;
  virtual bool cached(const AffinityKey& key, uint32_t* value) = 0;
  virtual bool submit(size_t loop, const AffinityRequest& request) = 0;
  virtual size_t poll(size_t loop, AffinityReply* replies, size_t max) = 0;
  virtual bool up() const = 0;  // connected and answering
};

// A stable 64-bit id for a name (FNV-1a), the same in every engine and build.
uint64_t stableNameId(std::string_view name);

}  // namespace fulcrum
