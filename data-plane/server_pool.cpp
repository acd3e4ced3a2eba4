#include "data-plane/server_pool.h"

#include "shared/net/hash.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>

namespace fulcrum {

namespace {

constexpr uint32_t kNil = std::numeric_limits<uint32_t>::max();

// Fixed seeds: every engine, on every host, must make the same choice for the
// same client, so nothing here may depend on the process or the library
// (std::hash differs between libstdc++ and libc++, and may be randomised).
constexpr uint64_t kAddressSeed = 0x243f6a8885a308d3ULL;
constexpr uint64_t kMaglevKeySeed = 0x13198a2e03707344ULL;
constexpr uint64_t kRendezvousSeed = 0xa4093822299f31d0ULL;
constexpr uint64_t kMaglevOffsetSeed = 0x082efa98ec4e6c89ULL;
constexpr uint64_t kMaglevSkipSeed = 0x452821e638d01377ULL;

using hash::mix64;

uint64_t hashName(const std::string& name, uint64_t seed) {
  return hash::bytes(reinterpret_cast<const uint8_t*>(name.data()), name.size(), seed);
}

uint64_t hashAddress(const IpAddress& address) {
  return hash::bytes(address.bytes().data(), address.bytes().size(), kAddressSeed);
}

uint64_t hashAddressPort(const IpAddress& address, uint16_t port) {
  uint8_t buf[18];
  std::copy(address.bytes().begin(), address.bytes().end(), buf);
  buf[16] = static_cast<uint8_t>(port >> 8);
  buf[17] = static_cast<uint8_t>(port);
  return hash::bytes(buf, sizeof(buf), kMaglevKeySeed);
}

bool isPrime(uint32_t n) {
  if (n < 2) return false;
  for (uint64_t d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}

// Maglev's permutations only cover the whole table when its size is prime; a
// composite size could leave a server cycling over full slots forever, so an
// out-of-contract size is corrected instead of trusted.
uint32_t maglevSizeFor(uint32_t requested, size_t servers) {
  uint64_t m = std::max<uint64_t>({requested, uint64_t{servers} + 1, 2});
  while (!isPrime(static_cast<uint32_t>(m))) ++m;
  return static_cast<uint32_t>(m);
}

}  // namespace

struct ServerPool::Impl {
  struct Server {
    uint32_t active = 0;
    uint32_t maxConnections = 0;
    // A weight of 0 would let a configured, healthy server starve forever (or
    // leave smooth WRR without a positive total), so it counts as 1.
    uint32_t weight = 1;
    bool up = true;
    bool draining = false;

    bool underLimit() const { return maxConnections == 0 || active < maxConnections; }
    bool inService() const { return up && !draining; }
    bool eligible() const { return inService() && underLimit(); }
  };

  // least-connections: one bucket per distinct active count among eligible
  // servers, in ascending order. Buckets are never empty, so there are at most
  // N, and the pool of N preallocated buckets cannot run dry.
  struct Bucket {
    uint32_t count = 0;
    uint32_t prev = kNil;
    uint32_t next = kNil;  // also links the free list
    uint32_t head = kNil;
    uint32_t tail = kNil;
  };
  struct LcLinks {
    uint32_t bucket = kNil;  // kNil: not eligible, so not in the structure
    uint32_t prev = kNil;
    uint32_t next = kNil;
  };

  Impl(Algorithm algorithm, const std::vector<PoolServer>& config, uint32_t maglevTableSize)
      : algorithm_(algorithm), servers_(config.size()) {
    for (size_t i = 0; i < config.size(); ++i) {
      servers_[i].maxConnections = config[i].maxConnections;
      servers_[i].weight = std::max<uint32_t>(config[i].weight, 1);
    }
    switch (algorithm_) {
      case Algorithm::kLeastConnections:
        buckets_.resize(servers_.size());
        links_.resize(servers_.size());
        for (uint32_t b = 0; b < buckets_.size(); ++b)
          buckets_[b].next = b + 1 < buckets_.size() ? b + 1 : kNil;
        freeBucket_ = buckets_.empty() ? kNil : 0;
        for (uint32_t s = 0; s < servers_.size(); ++s) lcInsert(s);
        break;
      case Algorithm::kRoundRobin:
        break;
      case Algorithm::kWeightedRoundRobin:
        wrrCurrent_.assign(servers_.size(), 0);
        break;
      case Algorithm::kSourceHash:
        nameHash_.resize(config.size());
        for (size_t i = 0; i < config.size(); ++i)
          nameHash_[i] = hashName(config[i].name, kRendezvousSeed);
        break;
      case Algorithm::kMaglev: {
        maglevSize_ = maglevSizeFor(maglevTableSize, servers_.size());
        maglevTable_.assign(maglevSize_, ServerPool::kNoServer);
        maglevOffset_.resize(config.size());
        maglevSkip_.resize(config.size());
        maglevPos_.resize(config.size());
        maglevCredit_.resize(config.size());
        // Permutations come from names, not indices: adding or deleting a
        // server in the configuration shifts indices, and keyed on names the
        // other servers keep their preferences, so few of their keys move.
        for (size_t i = 0; i < config.size(); ++i) {
          maglevOffset_[i] =
              static_cast<uint32_t>(hashName(config[i].name, kMaglevOffsetSeed) % maglevSize_);
          maglevSkip_[i] = static_cast<uint32_t>(
              hashName(config[i].name, kMaglevSkipSeed) % (maglevSize_ - 1) + 1);
        }
        maglevBuild();
        break;
      }
    }
  }

  bool valid(uint32_t s) const { return s < servers_.size(); }

  int32_t pick(const SelectionKey& key) {
    switch (algorithm_) {
      case Algorithm::kLeastConnections:
        return lowest_ == kNil ? kNoServer : static_cast<int32_t>(buckets_[lowest_].head);
      case Algorithm::kRoundRobin:
        return pickRoundRobin();
      case Algorithm::kWeightedRoundRobin:
        return pickWeighted();
      case Algorithm::kSourceHash:
        return pickRendezvous(key);
      case Algorithm::kMaglev:
        return pickMaglev(key);
    }
    return kNoServer;
  }

  void addSession(uint32_t s) {
    Server& srv = servers_[s];
    ++srv.active;
    if (algorithm_ != Algorithm::kLeastConnections) return;
    if (!srv.underLimit())
      lcUnlink(s);
    else
      lcPromote(s);
  }

  void removeSession(uint32_t s) {
    Server& srv = servers_[s];
    if (srv.active == 0) return;
    --srv.active;
    if (algorithm_ != Algorithm::kLeastConnections) return;
    if (links_[s].bucket != kNil)
      lcDemote(s);
    else if (srv.eligible())
      lcInsert(s);  // it was at its limit and has just dropped under it
  }

  // Called after up/draining changed on `s`.
  void serviceChanged(uint32_t s, bool wasInService) {
    const Server& srv = servers_[s];
    if (algorithm_ == Algorithm::kLeastConnections) {
      const bool in = links_[s].bucket != kNil;
      if (srv.eligible() && !in) lcInsert(s);
      if (!srv.eligible() && in) lcUnlink(s);
    } else if (algorithm_ == Algorithm::kMaglev && srv.inService() != wasInService) {
      maglevBuild();
    }
  }

  // ---- least-connections --------------------------------------------------

  uint32_t lcAllocBucket(uint32_t count, uint32_t prev, uint32_t next) {
    const uint32_t b = freeBucket_;
    freeBucket_ = buckets_[b].next;
    buckets_[b] = Bucket{count, prev, next, kNil, kNil};
    if (prev != kNil)
      buckets_[prev].next = b;
    else
      lowest_ = b;
    if (next != kNil) buckets_[next].prev = b;
    return b;
  }

  void lcFreeBucket(uint32_t b) {
    const Bucket& bk = buckets_[b];
    if (bk.prev != kNil)
      buckets_[bk.prev].next = bk.next;
    else
      lowest_ = bk.next;
    if (bk.next != kNil) buckets_[bk.next].prev = bk.prev;
    buckets_[b].next = freeBucket_;
    freeBucket_ = b;
  }

  // Appending at the tail is what makes ties rotate: a server that was just
  // picked queues behind the servers that already had its new count.
  void lcAppend(uint32_t b, uint32_t s) {
    Bucket& bk = buckets_[b];
    links_[s] = LcLinks{b, bk.tail, kNil};
    if (bk.tail != kNil)
      links_[bk.tail].next = s;
    else
      bk.head = s;
    bk.tail = s;
  }

  // Removes `s` from its bucket, and the bucket from the list once empty.
  void lcUnlink(uint32_t s) {
    LcLinks& l = links_[s];
    if (l.bucket == kNil) return;
    Bucket& bk = buckets_[l.bucket];
    if (l.prev != kNil)
      links_[l.prev].next = l.next;
    else
      bk.head = l.next;
    if (l.next != kNil)
      links_[l.next].prev = l.prev;
    else
      bk.tail = l.prev;
    if (bk.head == kNil) lcFreeBucket(l.bucket);
    l = LcLinks{};
  }

  bool lcAlone(uint32_t s) const {
    const Bucket& bk = buckets_[links_[s].bucket];
    return bk.head == s && bk.tail == s;
  }

  // `s` gained a session and is still eligible: O(1).
  void lcPromote(uint32_t s) {
    const uint32_t b = links_[s].bucket;
    const uint32_t count = servers_[s].active;
    const uint32_t next = buckets_[b].next;
    if (next != kNil && buckets_[next].count == count) {
      lcUnlink(s);
      lcAppend(next, s);
    } else if (lcAlone(s)) {
      buckets_[b].count = count;  // the bucket can move with its only server
    } else {
      lcUnlink(s);  // b keeps its other servers, so it stays where it is
      lcAppend(lcAllocBucket(count, b, next), s);
    }
  }

  // `s` lost a session and was already in the structure: O(1).
  void lcDemote(uint32_t s) {
    const uint32_t b = links_[s].bucket;
    const uint32_t count = servers_[s].active;
    const uint32_t prev = buckets_[b].prev;
    if (prev != kNil && buckets_[prev].count == count) {
      lcUnlink(s);
      lcAppend(prev, s);
    } else if (lcAlone(s)) {
      buckets_[b].count = count;
    } else {
      lcUnlink(s);
      lcAppend(lcAllocBucket(count, prev, b), s);
    }
  }

  // Re-entry of a server that became eligible. Its count can be anything, so
  // this walks the buckets (at most N); it only happens on health and drain
  // changes and when a full server drops under its limit, never per pick.
  void lcInsert(uint32_t s) {
    const uint32_t count = servers_[s].active;
    if (!servers_[s].eligible() || links_[s].bucket != kNil) return;
    uint32_t prev = kNil;
    uint32_t b = lowest_;
    while (b != kNil && buckets_[b].count < count) {
      prev = b;
      b = buckets_[b].next;
    }
    if (b == kNil || buckets_[b].count != count) b = lcAllocBucket(count, prev, b);
    lcAppend(b, s);
  }

  // ---- round-robin and weighted round-robin -------------------------------

  int32_t pickRoundRobin() {
    const size_t n = servers_.size();
    for (size_t i = 0; i < n; ++i) {
      const size_t s = (rrNext_ + i) % n;
      if (servers_[s].eligible()) {
        rrNext_ = (s + 1) % n;
        return static_cast<int32_t>(s);
      }
    }
    return kNoServer;
  }

  // nginx's smooth WRR. Ineligible servers keep their current value, as in
  // nginx, so a server that comes back resumes where it was rather than
  // receiving a burst.
  int32_t pickWeighted() {
    int64_t total = 0;
    int32_t best = kNoServer;
    for (size_t s = 0; s < servers_.size(); ++s) {
      if (!servers_[s].eligible()) continue;
      wrrCurrent_[s] += servers_[s].weight;
      total += servers_[s].weight;
      if (best == kNoServer || wrrCurrent_[s] > wrrCurrent_[static_cast<size_t>(best)])
        best = static_cast<int32_t>(s);
    }
    if (best != kNoServer) wrrCurrent_[static_cast<size_t>(best)] -= total;
    return best;
  }

  // ---- source-hash ---------------------------------------------------------

  // Weighted rendezvous: score = -w / ln(u) is the key of an exponential race
  // in which server s wins with probability w_s / sum(w), and each server's
  // score depends only on (client, server), so removing a server changes the
  // winner only for the clients it was winning.
  int32_t pickRendezvous(const SelectionKey& key) const {
    const uint64_t client = hashAddress(key.client);
    int32_t best = kNoServer;
    double bestScore = 0;
    for (size_t s = 0; s < servers_.size(); ++s) {
      if (!servers_[s].eligible()) continue;
      const uint64_t h = mix64(client ^ nameHash_[s]);
      // The top 53 bits, centred in their interval, give u strictly in (0,1).
      const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
      const double score = -static_cast<double>(servers_[s].weight) / std::log(u);
      if (best == kNoServer || score > bestScore) {
        best = static_cast<int32_t>(s);
        bestScore = score;
      }
    }
    return best;
  }

  // ---- maglev --------------------------------------------------------------

  // The table is a pure function of the set of in-service servers, so engines
  // that saw health changes in different orders still agree on every key.
  void maglevBuild() {
    std::fill(maglevTable_.begin(), maglevTable_.end(), kNoServer);
    uint32_t maxWeight = 0;
    for (size_t s = 0; s < servers_.size(); ++s) {
      maglevPos_[s] = maglevOffset_[s];
      maglevCredit_[s] = 0;
      if (servers_[s].inService()) maxWeight = std::max(maxWeight, servers_[s].weight);
    }
    if (maxWeight == 0) return;
    // Each round every server earns its weight in credit and claims one slot
    // per maxWeight of credit: the heaviest claims one per round, as in plain
    // Maglev, and the others in proportion. The prime size makes every
    // permutation a full cycle, so the search for a free slot always ends
    // while one is left.
    uint32_t filled = 0;
    for (;;) {
      for (size_t s = 0; s < servers_.size(); ++s) {
        if (!servers_[s].inService()) continue;
        maglevCredit_[s] += servers_[s].weight;
        while (maglevCredit_[s] >= maxWeight) {
          maglevCredit_[s] -= maxWeight;
          uint32_t slot = maglevPos_[s];
          while (maglevTable_[slot] != kNoServer) slot = maglevAdvance(s);
          maglevTable_[slot] = static_cast<int32_t>(s);
          maglevAdvance(s);
          if (++filled == maglevSize_) return;
        }
      }
    }
  }

  uint32_t maglevAdvance(size_t s) {
    uint64_t pos = uint64_t{maglevPos_[s]} + maglevSkip_[s];
    if (pos >= maglevSize_) pos -= maglevSize_;
    maglevPos_[s] = static_cast<uint32_t>(pos);
    return maglevPos_[s];
  }

  int32_t pickMaglev(const SelectionKey& key) const {
    // Without this check a pool whose servers are all full would probe the
    // whole table (65537 entries by default) on every SYN.
    bool anyEligible = false;
    for (const Server& srv : servers_) anyEligible = anyEligible || srv.eligible();
    if (!anyEligible) return kNoServer;
    uint32_t slot =
        static_cast<uint32_t>(hashAddressPort(key.client, key.clientPort) % maglevSize_);
    for (uint32_t probes = 0; probes < maglevSize_; ++probes) {
      const int32_t s = maglevTable_[slot];
      if (s != kNoServer && servers_[static_cast<size_t>(s)].eligible()) return s;
      if (++slot == maglevSize_) slot = 0;
    }
    return kNoServer;  // eligible servers exist but won no slot (tiny table)
  }

  const Algorithm algorithm_;
  std::vector<Server> servers_;

  std::vector<Bucket> buckets_;
  std::vector<LcLinks> links_;
  uint32_t lowest_ = kNil;  // the bucket with the fewest active sessions
  uint32_t freeBucket_ = kNil;

  size_t rrNext_ = 0;
  std::vector<int64_t> wrrCurrent_;

  std::vector<uint64_t> nameHash_;

  uint32_t maglevSize_ = 0;
  std::vector<int32_t> maglevTable_;
  std::vector<uint32_t> maglevOffset_;
  std::vector<uint32_t> maglevSkip_;
  std::vector<uint32_t> maglevPos_;     // scratch for maglevBuild()
  std::vector<uint64_t> maglevCredit_;  // scratch for maglevBuild()
};

ServerPool::ServerPool(Algorithm algorithm, std::vector<PoolServer> servers,
                       uint32_t maglevTableSize)
    : algorithm_(algorithm),
      servers_(std::move(servers)),
      impl_(new Impl(algorithm, servers_, maglevTableSize)) {}

ServerPool::~ServerPool() {
  delete impl_;
}

int32_t ServerPool::acquire(const SelectionKey& key) {
  std::lock_guard lock(mutex_);
  const int32_t s = impl_->pick(key);
  if (s != kNoServer) impl_->addSession(static_cast<uint32_t>(s));
  return s;
}

bool ServerPool::acquireSpecific(uint32_t index) {
  std::lock_guard lock(mutex_);
  if (!impl_->valid(index) || !impl_->servers_[index].eligible()) return false;
  impl_->addSession(index);
  return true;
}

void ServerPool::release(uint32_t index) {
  std::lock_guard lock(mutex_);
  if (impl_->valid(index)) impl_->removeSession(index);
}

void ServerPool::adoptSessions(uint32_t index, uint32_t count) {
  std::lock_guard lock(mutex_);
  if (!impl_->valid(index) || count == 0) return;
  // Take the server out of least-connections' buckets, count, put it back
  // where its new count belongs (if it is still eligible at that count).
  if (impl_->algorithm_ == Algorithm::kLeastConnections && impl_->links_[index].bucket != kNil)
    impl_->lcUnlink(index);
  impl_->servers_[index].active += count;
  if (impl_->algorithm_ == Algorithm::kLeastConnections) impl_->lcInsert(index);
}

void ServerPool::setUp(uint32_t index, bool up) {
  std::lock_guard lock(mutex_);
  if (!impl_->valid(index)) return;
  Impl::Server& srv = impl_->servers_[index];
  const bool wasInService = srv.inService();
  srv.up = up;
  impl_->serviceChanged(index, wasInService);
}

void ServerPool::setDraining(uint32_t index, bool draining) {
  std::lock_guard lock(mutex_);
  if (!impl_->valid(index)) return;
  Impl::Server& srv = impl_->servers_[index];
  const bool wasInService = srv.inService();
  srv.draining = draining;
  impl_->serviceChanged(index, wasInService);
}

uint32_t ServerPool::active(uint32_t index) const {
  std::lock_guard lock(mutex_);
  return impl_->valid(index) ? impl_->servers_[index].active : 0;
}

bool ServerPool::isUp(uint32_t index) const {
  std::lock_guard lock(mutex_);
  return impl_->valid(index) && impl_->servers_[index].up;
}

bool ServerPool::isDraining(uint32_t index) const {
  std::lock_guard lock(mutex_);
  return impl_->valid(index) && impl_->servers_[index].draining;
}

bool ServerPool::isEligible(uint32_t index) const {
  std::lock_guard lock(mutex_);
  return impl_->valid(index) && impl_->servers_[index].eligible();
}

}  // namespace fulcrum
