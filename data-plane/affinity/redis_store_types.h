// Plain types of RedisAffinityStore (redis_store.h): its options and the
// snapshot of its state and counters.
#pragma once

#include <cstdint>
#include <string>

namespace fulcrum {

struct RedisAffinityOptions {
  // A numeric IPv4 or IPv6 address: no DNS, whose lookups have no timeout and
  // would stall the store's thread.
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  uint32_t db = 0;       // SELECT db (when not 0)
  std::string username;  // AUTH username password (Redis 6 ACL user), when not empty
  std::string password;  // AUTH [username] password, when not empty (the caller reads a file)
  std::string keyPrefix = "fulcrum:aff:";  // every engine sharing decisions must use the same

  size_t loops = 1;               // per-loop queues: submit()/poll() take 0 .. loops-1
  uint32_t queueCapacity = 1024;  // requests waiting per loop, and replies waiting per loop
  uint32_t maxBatch = 512;        // requests pipelined in one round trip

  uint32_t cacheCapacity = 65536;    // entries, 64 bytes each
  uint32_t cacheTtlMs = 2000;        // how long cached() trusts an answer
  uint32_t refreshIntervalMs = 500;  // batched EXPIRE of the keys cached() hit since the last

  uint32_t connectTimeoutMs = 100;
  uint32_t commandTimeoutMs = 200;  // per socket read or write
  uint32_t backoffInitialMs = 100;  // between failed connection attempts, doubling
  uint32_t backoffMaxMs = 2000;
  uint32_t healthIntervalMs = 1000;  // PING after this long without traffic
};

enum class RedisState : uint8_t {
  kConnecting,  // an attempt in progress (first, or after a loss)
  kUp,          // connected, authenticated, database selected, script loaded
  kDown,        // the last attempt or command failed: see lastError; retried with backoff
};

const char* redisStateName(RedisState state);

struct RedisAffinityStatus {
  RedisState state = RedisState::kConnecting;
  std::string address;  // "127.0.0.1:6379", "[2001:db8::1]:6379"
  uint32_t db = 0;
  uint64_t requests = 0;  // accepted by submit()
  uint64_t rejected = 0;  // refused by submit(): queue full or store down
  uint64_t answered = 0;  // replies with answered=true
  uint64_t failed = 0;    // replies with answered=false
  uint64_t cacheHits = 0;
  uint64_t cacheMisses = 0;
  uint64_t cacheEvictions = 0;
  uint64_t refreshes = 0;    // EXPIREs sent for keys hit in the cache
  uint64_t connects = 0;     // successful connections
  uint64_t reconnects = 0;   // of which after a loss or a failed attempt
  uint64_t scriptLoads = 0;  // SCRIPT LOAD on connect, and EVAL after NOSCRIPT
  std::string lastError;     // empty until the first error; kept after recovery
  // Round trip to Redis (request written to reply read) of the last completed
  // one-second interval with traffic.
  uint32_t latencyAvgUs = 0;
  uint32_t latencyMaxUs = 0;
  uint64_t latencySamples = 0;
};

}  // namespace fulcrum
