// Affinity decisions per new connection (BENCHMARKS.md has the figures).
//   BM_LocalReadMissCreate/existing:E: LocalAffinityStore::readMissCreate, for a
//                  new client (E=0: a create, old entries expiring) or a known one (E=1).
//   BM_RedisCacheHit: RedisAffinityStore::cached() hit (16k keys cached), from
//                  1 or 2 threads at once.
//   BM_RedisMiss/inflight:N: a cache miss: cached() miss, submit(), then poll()
//                  until the reply: the round trip through the store's thread
//                  and a redis-server on loopback, with N requests in flight
//                  (each finished one replaced by a new one). Time per
//                  iteration is per request; rtt_us is each request's own
//                  submit-to-reply time (mean, p50, p99).
//   BM_NewConnection/store:S: one new connection's SYN through a packet loop
//                  (PacketProcessor) of an application with persistence, from
//                  arrival to leaving toward its server: S=0 the embedded
//                  store; S=1 Redis, the client known to the engine's cache;
//                  S=2 Redis, a new client: the SYN is parked, the loop polls
//                  resume() until the reply lets it go.
// The Redis benchmarks start their own redis-server (skipped without one).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "data-plane/affinity/redis_store.h"
#include "data-plane/affinity/testing/redis_test_server.h"
#include "data-plane/affinity_store.h"
#include "data-plane/processor.h"
#include "shared/config/config_parser.h"
#include "tests/common/packet_builder.h"

namespace {

using namespace fulcrum;
using Clock = std::chrono::steady_clock;

AffinityKey clientKey(uint64_t scope, uint32_t i) {
  return {scope, IpAddress::v4(0x0a000000u + i), 0};
}

void BM_LocalReadMissCreate(benchmark::State& state) {
  const bool existing = state.range(0) != 0;
  LocalAffinityStore store;  // 1M entries
  constexpr uint32_t kKnown = 65536;
  if (existing)
    for (uint32_t i = 0; i < kKnown; ++i) store.readMissCreate(clientKey(1, i), i, 300, 0);
  uint32_t i = 0;
  uint64_t fallbacks = 0;
  for (auto _ : state) {
    // New clients: TTL 1 s and a clock that advances 1 s every 256k
    // connections, so at most 512k entries live and creates reuse slots.
    const AffinityResult r = existing ? store.readMissCreate(clientKey(1, i % kKnown), 7, 300, 1)
                                      : store.readMissCreate(clientKey(1, i), 7, 1, i >> 18);
    fallbacks += r.fallback;
    benchmark::DoNotOptimize(r);
    ++i;
  }
  state.counters["fallbacks"] = static_cast<double>(fallbacks);
}
BENCHMARK(BM_LocalReadMissCreate)->ArgName("existing")->Arg(0)->Arg(1);

// One redis-server for the whole run.
testing::RedisTestServer* server() {
  static std::unique_ptr<testing::RedisTestServer> s = [] {
    std::unique_ptr<testing::RedisTestServer> p;
    if (testing::RedisTestServer::installed()) {
      p = std::make_unique<testing::RedisTestServer>();
      if (!p->start()) p.reset();
    }
    return p;
  }();
  return s.get();
}

std::unique_ptr<RedisAffinityStore> upStore(benchmark::State& state, uint32_t cacheTtlMs) {
  testing::RedisTestServer* s = server();
  if (!s) {
    state.SkipWithError("redis-server not installed or did not start");
    return nullptr;
  }
  RedisAffinityOptions o;
  o.port = s->port();
  o.cacheTtlMs = cacheTtlMs;
  auto store = std::make_unique<RedisAffinityStore>(o);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!store->up() && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!store->up()) {
    state.SkipWithError(("store not up: " + store->status().lastError).c_str());
    return nullptr;
  }
  return store;
}

// Fresh keys on every run: a scope nobody used.
uint64_t freshScope() {
  static std::mt19937_64 rng(std::random_device{}());
  return rng();
}

std::unique_ptr<RedisAffinityStore> cacheStore;
constexpr uint32_t kCachedKeys = 16384;

void BM_RedisCacheHit(benchmark::State& state) {
  static uint64_t scope = 0;
  if (state.thread_index() == 0) {
    cacheStore = upStore(state, 3'600'000);  // entries outlive the run
    scope = freshScope();
    if (cacheStore) {
      uint32_t next = 0, done = 0;
      AffinityReply replies[64];
      while (done < kCachedKeys) {
        while (next < kCachedKeys &&
               cacheStore->submit(0, {next, clientKey(scope, next), next, 300}))
          ++next;
        done += static_cast<uint32_t>(cacheStore->poll(0, replies, 64));
      }
    }
  }
  std::mt19937 rng(static_cast<uint32_t>(state.thread_index()) + 1);
  uint64_t misses = 0;
  for (auto _ : state) {
    uint32_t value = 0;
    if (!cacheStore || !cacheStore->cached(clientKey(scope, rng() % kCachedKeys), &value)) ++misses;
    benchmark::DoNotOptimize(value);
  }
  state.counters["misses"] = static_cast<double>(misses);
  if (state.thread_index() == 0 && cacheStore) {
    // Misses come from keys evicted while filling (a full probe window).
    state.counters["evictions"] = static_cast<double>(cacheStore->status().cacheEvictions);
    cacheStore.reset();
  }
}
BENCHMARK(BM_RedisCacheHit)->Threads(1)->Threads(2)->UseRealTime();

void BM_RedisMiss(benchmark::State& state) {
  const uint32_t inflight = static_cast<uint32_t>(state.range(0));
  auto store = upStore(state, 2000);
  if (!store) return;
  const uint64_t scope = freshScope();
  std::vector<Clock::time_point> sent(inflight);
  std::vector<double> rtt;
  rtt.reserve(1 << 20);
  uint32_t next = 0;
  auto submitOne = [&](uint32_t slot) {
    uint32_t value;
    const AffinityKey k = clientKey(scope, next++);
    benchmark::DoNotOptimize(store->cached(k, &value));
    sent[slot] = Clock::now();
    return store->submit(0, {slot, k, 7, 60});
  };
  for (uint32_t slot = 0; slot < inflight; ++slot)
    if (!submitOne(slot)) state.SkipWithError("submit refused");
  uint64_t failed = 0;
  for (auto _ : state) {
    AffinityReply reply;
    while (store->poll(0, &reply, 1) == 0) {
    }
    const auto now = Clock::now();
    failed += !reply.answered;
    if (rtt.size() < rtt.capacity())
      rtt.push_back(std::chrono::duration<double, std::micro>(now - sent[reply.token]).count());
    if (!submitOne(static_cast<uint32_t>(reply.token))) ++failed;
  }
  // Let the last ones come back before the store goes.
  AffinityReply replies[64];
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  for (uint32_t left = inflight; left > 0 && Clock::now() < deadline;)
    left -= static_cast<uint32_t>(store->poll(0, replies, 64));
  std::sort(rtt.begin(), rtt.end());
  double sum = 0;
  for (double v : rtt) sum += v;
  if (!rtt.empty()) {
    state.counters["rtt_us"] = sum / static_cast<double>(rtt.size());
    state.counters["rtt_p50_us"] = rtt[rtt.size() / 2];
    state.counters["rtt_p99_us"] = rtt[rtt.size() * 99 / 100];
  }
  state.counters["failed"] = static_cast<double>(failed);
}
BENCHMARK(BM_RedisMiss)->ArgName("inflight")->Arg(1)->Arg(32)->UseRealTime();

void BM_NewConnection(benchmark::State& state) {
  const int mode = static_cast<int>(state.range(0));
  std::unique_ptr<RedisAffinityStore> store;
  if (mode > 0 && !(store = upStore(state, 3'600'000))) return;
  LocalAffinityStore local;
  EngineShared shared(1 << 20, local);
  std::string error;
  // A fresh application name: fresh Redis keys on every run.
  const std::string app = "bench" + std::to_string(freshScope() & 0xffffff);
  auto config = EngineConfig::build(
      parseConfig("set service-set web inside-interface in0 outside-interface out0\n"
                  "set application " +
                  app +
                  " service-set web facade 198.18.0.10 port 80\n"
                  "set application " +
                  app +
                  " persistence source-address timeout 600\n"
                  "set application " +
                  app +
                  " server s1 address 198.18.1.11 port 8080\n"
                  "set application " +
                  app + " server s2 address 198.18.1.12 port 8080\n")
          .config,
      &error);
  if (!config || !shared.publish(std::move(config), false, &error)) {
    state.SkipWithError(error.c_str());
    return;
  }
  shared.remoteTimeoutUs = 1'000'000;  // a figure, not a fallback
  if (store) shared.setRemote(store.get());
  PacketProcessor loop(shared, LinkType::kRawIp);
  auto out = std::make_unique<PacketBuffer>();
  PacketBuffer* outs[1] = {out.get()};
  uint16_t sets[1];
  // Clients 198.19.x.y; a known client (mode 1) comes again on a new port.
  constexpr uint32_t kClients = 4096;
  auto syn = [](uint32_t client, uint16_t port) {
    testing::TcpPacketSpec s;
    s.ethernet = false;
    s.src = testing::ip4(198, 19, 0, 0) + client;
    s.srcPort = port;
    s.flags = tcpflag::kSyn;
    return testing::buildTcp(s);
  };
  auto connect = [&](uint32_t client, uint16_t port) {
    auto p = syn(client, port);
    PacketRef ref{p.data(), static_cast<uint32_t>(p.size()), 0, Direction::kEgress};
    ref.capacity = ref.length;
    Verdict v = loop.process(ref, 1);
    while (v == Verdict::kParked) {
      if (loop.resume(1, outs, sets, 1) == 1) v = Verdict::kForward;
    }
    return v;
  };
  if (mode == 1) {
    for (uint32_t c = 0; c < kClients; ++c) connect(c, 1000);  // the cache learns them
  }
  uint32_t i = 0;
  uint16_t port = 2000;
  uint64_t dropped = 0;
  for (auto _ : state) {
    const uint32_t client = mode == 1 ? i % kClients : kClients + i;
    if (mode == 1 && client == 0) ++port;
    dropped += connect(client, port) != Verdict::kForward;
    ++i;
  }
  state.counters["dropped"] = static_cast<double>(dropped);
  state.counters["store_waits"] = static_cast<double>(loop.counters().get(Counter::kStoreWaits));
  state.counters["local_decisions"] =
      static_cast<double>(loop.counters().get(Counter::kStoreTimeouts) +
                          loop.counters().get(Counter::kStoreDownDecisions) +
                          loop.counters().get(Counter::kStoreQueueFull));
}
// A fixed count: every connection stays in the table (1M sessions) and, for
// 0 and 2, is a client never seen before.
BENCHMARK(BM_NewConnection)
    ->ArgName("store")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(200000)
    ->Repetitions(3)
    ->ReportAggregatesOnly(true)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
