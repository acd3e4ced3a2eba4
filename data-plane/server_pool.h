// ServerPool: the servers of one application, their runtime state (up, draining,
// active sessions) and the selection algorithm that picks among them.
//
// Contract:
// - A server is *eligible* when it is up, not draining, and under its
//   max-connections (0 = no limit).
// - acquire() picks an eligible server with the pool's algorithm and counts one
//   active session on it; it returns kNoServer when none is eligible (the caller
//   drops the SYN and counts it; no session is made).
// - acquireSpecific() counts a session on a given server if it is eligible
//   (persistence path); release() undoes one acquire when a session ends.
// - Every method is safe to call from several packet loops at once: the pool
//   holds one mutex, taken only on the slow path (new session, session end,
//   health or drain change), never per forwarded packet.
// - No method allocates after construction: maglev's setUp()/setDraining()
//   rebuild its lookup table in storage sized by the constructor.
//
// Algorithms:
// - least-connections: servers are kept in buckets ordered by active count
//   (an LFU-style list), so the pick is the head of the lowest bucket: O(1).
//   Weights are ignored. Ties rotate: a picked server moves behind its peers.
// - round-robin: the next eligible server after the last pick.
// - weighted-round-robin: smooth weighted round robin (as nginx): over any
//   window of sum(weights) picks each server gets exactly its weight.
// - source-hash: weighted rendezvous hashing of the client address, so one
//   client maps to one server, and a server leaving moves only its own clients.
// - maglev: Maglev consistent hashing (Eisenbud et al., NSDI 2016) with weights
//   over (client address, client port); a lookup table of prime size is
//   rebuilt from the up, undrained servers when that set changes. When one of
//   N servers leaves, about 1/N of keys move. A chosen server at its
//   max-connections is skipped by probing the following table entries.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "shared/config/config_types.h"
#include "shared/net/address.h"

namespace fulcrum {

struct PoolServer {
  std::string name;
  IpAddress address;
  uint16_t port = 0;  // the port the server listens on (already resolved)
  uint32_t weight = 1;
  uint32_t maxConnections = 0;  // 0 = no limit
};

// What the hashing algorithms look at. Hashes use a fixed seed so that every
// engine makes the same choice for the same client.
struct SelectionKey {
  IpAddress client;
  uint16_t clientPort = 0;
};

class ServerPool {
 public:
  static constexpr int32_t kNoServer = -1;
  static constexpr uint32_t kDefaultMaglevTableSize = 65537;  // prime

  // All servers start up and undrained. maglevTableSize must be a prime larger
  // than the number of servers; it is only used by the maglev algorithm.
  ServerPool(Algorithm algorithm, std::vector<PoolServer> servers,
             uint32_t maglevTableSize = kDefaultMaglevTableSize);
  ~ServerPool();
  ServerPool(const ServerPool&) = delete;
  ServerPool& operator=(const ServerPool&) = delete;

  // Index of the chosen server, or kNoServer.
  int32_t acquire(const SelectionKey& key);
  // True (and counted) if `index` is eligible; false otherwise.
  bool acquireSpecific(uint32_t index);
  // One session on `index` ended. Never underflows.
  void release(uint32_t index);
  // Counts `count` sessions that already exist on `index`, eligible or not:
  // sessions carried over from the pool of an earlier configuration.
  void adoptSessions(uint32_t index, uint32_t count);

  void setUp(uint32_t index, bool up);
  void setDraining(uint32_t index, bool draining);

  size_t size() const { return servers_.size(); }
  const PoolServer& server(uint32_t index) const { return servers_[index]; }
  Algorithm algorithm() const { return algorithm_; }
  uint32_t active(uint32_t index) const;
  bool isUp(uint32_t index) const;
  bool isDraining(uint32_t index) const;
  bool isEligible(uint32_t index) const;

 private:
  struct Impl;
  Algorithm algorithm_;
  std::vector<PoolServer> servers_;
  mutable std::mutex mutex_;
  Impl* impl_;  // guarded by mutex_
};

}  // namespace fulcrum
