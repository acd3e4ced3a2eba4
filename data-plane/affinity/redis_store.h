// RedisAffinityStore: the RemoteAffinity (data-plane/affinity_store.h) of
// engines that share persistence decisions through one Redis server.
//
// readMissCreate in Redis is one Lua script, run atomically by the server
// (EVALSHA; the script is loaded on each connection and sent whole again
// after a NOSCRIPT reply):
//   key present     -> its value, TTL refreshed to the request's ttlSeconds
//                      (left alone when ttlSeconds is 0); found=true;
//   absent, lookup  -> found=false, nothing stored;
//   absent          -> SET proposed EX max(ttlSeconds, 1); found=false, value=proposed;
//   overwrite       -> SET proposed EX max(ttlSeconds, 1) whatever was there.
// Engines racing on a key all get the first value written.
// Keys: <keyPrefix><scope as 16 hex digits>:<client>[:<clientPort>], the
// client as dotted quad or bracketed IPv6, the port only when not 0; e.g.
// "fulcrum:aff:00000000000000ff:198.18.0.1", "...:[2001:db8::1]:40000".
//
// Threads. One thread of the store's own talks to Redis; packet loops never
// do I/O:
//   - submit(loop, request) puts the request on that loop's bounded queue and
//     returns false, without blocking, when it is full or the store is not up;
//   - the thread takes requests from every queue (as many as the loop's reply
//     queue has room for), pipelines them (up to maxBatch per round trip),
//     and puts each reply on the loop's reply queue;
//   - poll(loop, ...) takes that loop's replies, in any order, by token.
// submit() and poll() with one loop index are called by one thread only;
// cached(), up() and status() by any thread.
// Every request gets exactly one reply, also those nobody waits for (token 0,
// e.g. session-sync writes), and the thread takes a loop's requests only as
// far as that loop's reply queue has room: a loop must poll() every burst,
// whether or not it awaits a reply, or its submit()s start failing once both
// queues are full.
//
// Cache. Every answered reply that carries a value is kept for cacheTtlMs
// (never longer than the key's TTL, not at all for ttlSeconds 0; a lookup
// miss drops the key); cached() reads it from any loop at once
// (64 shards under spin locks, fixed capacity, no allocation). A hit does not
// extend the cached entry, but it marks the key: every refreshIntervalMs the
// thread sends one pipelined EXPIRE per key hit since the last refresh, with
// the TTL of its last request, so a key that only the cache serves still
// lives its full TTL in Redis (at most refreshIntervalMs late).
//
// Failures. Connect and command timeouts bound every wait on the server. On
// any connection error the store goes down (up() false), every request taken
// or queued is answered with answered=false, and the thread reconnects at
// once, then with backoff (backoffInitialMs doubling to backoffMaxMs); when
// Redis answers again it is used again. An error reply to one request (a key
// holding something else than a number, say) fails that request only. A bad
// address, a refused AUTH or SELECT leave the store down with a lastError
// saying which. Idle connections are watched (a closed socket is seen at
// once; a PING after healthIntervalMs of silence).
//
// The destructor stops the thread within about one command timeout, Redis
// reachable or not; replies not yet polled are discarded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "data-plane/affinity/redis_store_types.h"
#include "data-plane/affinity_store.h"

namespace fulcrum {

class RedisAffinityStore final : public RemoteAffinity {
 public:
  // Starts the thread, which connects in the background: up() is false until
  // the first connection is ready. Invalid options (validate()) leave the
  // store down for good, with the reason in status().lastError.
  explicit RedisAffinityStore(const RedisAffinityOptions& options);
  ~RedisAffinityStore() override;
  RedisAffinityStore(const RedisAffinityStore&) = delete;
  RedisAffinityStore& operator=(const RedisAffinityStore&) = delete;

  bool cached(const AffinityKey& key, uint32_t* value) override;
  bool submit(size_t loop, const AffinityRequest& request) override;
  size_t poll(size_t loop, AffinityReply* replies, size_t max) override;
  bool up() const override;

  RedisAffinityStatus status() const;

  // False, with the reason, for options the store cannot work with (host not
  // a numeric address, port 0, loops, capacities or batch size 0 or absurdly
  // large, a key prefix over 64 bytes, zero timeouts).
  static bool validate(const RedisAffinityOptions& options, std::string* error);
  // The Redis key of `key` (see above).
  static std::string keyName(std::string_view prefix, const AffinityKey& key);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fulcrum
