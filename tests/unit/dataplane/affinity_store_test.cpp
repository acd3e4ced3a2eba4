#include "data-plane/affinity_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace fulcrum {
namespace {

AffinityKey key(uint32_t client, uint64_t scope = 7) {
  return {scope, IpAddress::v4(client)};
}

TEST(LocalAffinityStore, ReadMissCreate) {
  LocalAffinityStore store(1024);
  auto r = store.readMissCreate(key(1), 5, 100, 0);
  EXPECT_EQ(r.value, 5u);
  EXPECT_TRUE(r.created);
  r = store.readMissCreate(key(1), 9, 100, 50);
  EXPECT_EQ(r.value, 5u);
  EXPECT_FALSE(r.created);
  // Other client, other scope: their own entries.
  EXPECT_EQ(store.readMissCreate(key(2), 9, 100, 50).value, 9u);
  EXPECT_EQ(store.readMissCreate(key(1, 8), 3, 100, 50).value, 3u);
}

TEST(LocalAffinityStore, TtlIsRefreshedOnUseAndExpires) {
  LocalAffinityStore store(1024);
  store.readMissCreate(key(1), 5, 100, 0);
  EXPECT_EQ(store.readMissCreate(key(1), 9, 100, 90).value, 5u);   // refreshed to 190
  EXPECT_EQ(store.readMissCreate(key(1), 9, 100, 180).value, 5u);  // still there
  EXPECT_EQ(store.liveEntries(200), 1u);
  auto r = store.readMissCreate(key(1), 9, 100, 400);  // expired at 280
  EXPECT_EQ(r.value, 9u);
  EXPECT_TRUE(r.created);
}

TEST(LocalAffinityStore, FullStoreFallsBackAndCountsIt) {
  LocalAffinityStore store(1);  // smallest table: 64 shards of 32 slots
  int fallbacks = 0;
  for (uint32_t c = 0; c < 10000; ++c) {
    auto r = store.readMissCreate(key(c), c, 100, 0);
    EXPECT_EQ(r.value, c);
    if (r.fallback) ++fallbacks;
  }
  EXPECT_GT(fallbacks, 0);
  EXPECT_LE(store.liveEntries(0), 64u * 32u);
  // Once entries expire, their slots are reused.
  auto r = store.readMissCreate(key(99999), 1, 100, 1000);
  EXPECT_TRUE(r.created);
}

TEST(LocalAffinityStore, RacersAllGetTheFirstValue) {
  LocalAffinityStore store(4096);
  for (uint32_t client = 0; client < 200; ++client) {
    std::atomic<int> go{0};
    std::vector<uint32_t> seen(4);
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        while (!go.load()) {
        }
        seen[t] = store.readMissCreate(key(client), t + 1, 100, 0).value;
      });
    }
    go.store(1);
    for (auto& th : threads) th.join();
    for (uint32_t t = 1; t < 4; ++t) EXPECT_EQ(seen[t], seen[0]) << client;
  }
}

TEST(StableNameId, IsStable) {
  EXPECT_EQ(stableNameId("shop"), stableNameId("shop"));
  EXPECT_NE(stableNameId("shop"), stableNameId("shoq"));
  EXPECT_EQ(stableNameId(""), 0xcbf29ce484222325ULL);  // FNV-1a offset basis
}

}  // namespace
}  // namespace fulcrum
