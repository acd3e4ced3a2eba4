// RedisAffinityStore against a real redis-server (one per test, on a free
// port of 127.0.0.1, killed in TearDown). Skipped only when redis-server is
// not installed. Every wait is bounded.
#include "data-plane/affinity/redis_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "data-plane/affinity/testing/redis_test_server.h"

namespace fulcrum {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using testing::RedisTestServer;

AffinityKey key(uint32_t client, uint64_t scope = 0xab, uint16_t port = 0) {
  return {scope, IpAddress::v4(0xC6120000u + client), port};
}

AffinityRequest request(uint64_t token, const AffinityKey& k, uint32_t proposed, uint32_t ttl = 100,
                        bool lookupOnly = false) {
  AffinityRequest r;
  r.token = token;
  r.key = k;
  r.proposed = proposed;
  r.ttlSeconds = ttl;
  r.lookupOnly = lookupOnly;
  return r;
}

// Polls `condition` until it holds or `limit` passes.
bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return condition();
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisTestServer::installed()) GTEST_SKIP() << "redis-server is not installed";
    startServer({});
  }
  void TearDown() override {
    store_.reset();
    server_.reset();
  }

  void startServer(std::vector<std::string> extra) {
    server_ = std::make_unique<RedisTestServer>(std::move(extra));
    ASSERT_TRUE(server_->start()) << "redis-server did not answer PING";
  }

  RedisAffinityOptions options(size_t loops = 1) const {
    RedisAffinityOptions o;
    o.host = "127.0.0.1";
    o.port = server_->port();
    o.loops = loops;
    return o;
  }
  // A store that is up (bounded wait).
  std::unique_ptr<RedisAffinityStore> upStore(const RedisAffinityOptions& o) {
    auto s = std::make_unique<RedisAffinityStore>(o);
    EXPECT_TRUE(waitFor([&] { return s->up(); })) << s->status().lastError;
    return s;
  }

  // Submits one request on loop 0 and waits (bounded) for its reply.
  static AffinityReply ask(RedisAffinityStore& s, const AffinityRequest& r, size_t loop = 0) {
    AffinityReply reply;
    EXPECT_TRUE(s.submit(loop, r));
    EXPECT_TRUE(waitFor([&] { return s.poll(loop, &reply, 1) == 1; }));
    EXPECT_EQ(reply.token, r.token);
    return reply;
  }

  std::string redisKey(const AffinityKey& k) const {
    return RedisAffinityStore::keyName("fulcrum:aff:", k);
  }
  long long ttlOf(const AffinityKey& k, int db = 0) const {
    return server_->command({"TTL", redisKey(k)}, nullptr, "", db);
  }

  std::unique_ptr<RedisTestServer> server_;
  std::unique_ptr<RedisAffinityStore> store_;
};

TEST(RedisAffinityStoreKeys, NamesAreStableAndDistinct) {
  EXPECT_EQ(RedisAffinityStore::keyName("fulcrum:aff:", key(1)),
            "fulcrum:aff:00000000000000ab:198.18.0.1");
  EXPECT_EQ(RedisAffinityStore::keyName("fulcrum:aff:", key(1, 0x0123456789abcdefULL, 40000)),
            "fulcrum:aff:0123456789abcdef:198.18.0.1:40000");
  AffinityKey v6{1, *IpAddress::parse("2001:db8::1"), 80};
  EXPECT_EQ(RedisAffinityStore::keyName("p:", v6), "p:0000000000000001:[2001:db8::1]:80");
}

TEST(RedisAffinityStoreOptions, BadAddressIsReportedAndNeverConnects) {
  RedisAffinityOptions o;
  o.host = "redis.example.com";
  std::string error;
  EXPECT_FALSE(RedisAffinityStore::validate(o, &error));
  EXPECT_NE(error.find("bad address 'redis.example.com'"), std::string::npos) << error;
  RedisAffinityStore s(o);
  EXPECT_FALSE(s.up());
  EXPECT_FALSE(s.submit(0, request(1, key(1), 1)));
  EXPECT_EQ(s.status().state, RedisState::kDown);
  EXPECT_EQ(s.status().lastError, error);
  o.host = "127.0.0.1";
  o.port = 0;
  EXPECT_FALSE(RedisAffinityStore::validate(o, &error));
}

TEST_F(RedisStoreTest, CreateThenReadRefreshesTtl) {
  store_ = upStore(options());
  AffinityReply r = ask(*store_, request(1, key(1), 5, 100));
  EXPECT_TRUE(r.answered);
  EXPECT_FALSE(r.found);
  EXPECT_EQ(r.value, 5u);
  std::string text;
  EXPECT_EQ(server_->command({"GET", redisKey(key(1))}, &text), 0);
  EXPECT_EQ(text, "5");
  EXPECT_GT(ttlOf(key(1)), 90);

  // Shorten the TTL behind the store's back; the next read refreshes it.
  EXPECT_EQ(server_->command({"EXPIRE", redisKey(key(1)), "10"}), 1);
  EXPECT_LE(ttlOf(key(1)), 10);
  r = ask(*store_, request(2, key(1), 9, 100));
  EXPECT_TRUE(r.answered);
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.value, 5u);
  EXPECT_GT(ttlOf(key(1)), 90);

  // ttlSeconds 0 reads without touching the TTL.
  EXPECT_EQ(server_->command({"EXPIRE", redisKey(key(1)), "10"}), 1);
  r = ask(*store_, request(3, key(1), 9, 0));
  EXPECT_TRUE(r.found);
  EXPECT_LE(ttlOf(key(1)), 10);

  // Other scope, other port: other keys.
  EXPECT_EQ(ask(*store_, request(4, key(1, 0xac), 7)).value, 7u);
  EXPECT_EQ(ask(*store_, request(5, key(1, 0xab, 1234), 8)).value, 8u);

  auto st = store_->status();
  EXPECT_EQ(st.state, RedisState::kUp);
  EXPECT_EQ(st.requests, 5u);
  EXPECT_EQ(st.answered, 5u);
  EXPECT_EQ(st.failed, 0u);
  EXPECT_EQ(st.connects, 1u);
  EXPECT_EQ(st.address, "127.0.0.1:" + std::to_string(server_->port()));
}

TEST_F(RedisStoreTest, LookupOnlyMissesWithoutStoringThenHits) {
  store_ = upStore(options());
  AffinityReply r = ask(*store_, request(1, key(2), 5, 100, true));
  EXPECT_TRUE(r.answered);
  EXPECT_FALSE(r.found);
  EXPECT_EQ(server_->command({"EXISTS", redisKey(key(2))}), 0);
  uint32_t v = 0;
  EXPECT_FALSE(store_->cached(key(2), &v));

  EXPECT_EQ(ask(*store_, request(2, key(2), 6)).value, 6u);
  r = ask(*store_, request(3, key(2), 5, 100, true));
  EXPECT_TRUE(r.answered);
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.value, 6u);
}

// Session sync records a new connection's server whatever the key held (a
// client port used again), with the TTL given; the cache learns it too.
TEST_F(RedisStoreTest, OverwriteReplacesTheValueAndItsTtl) {
  store_ = upStore(options());
  EXPECT_EQ(ask(*store_, request(1, key(6), 5, 100)).value, 5u);
  AffinityRequest w = request(2, key(6), 9, 300);
  w.overwrite = true;
  AffinityReply r = ask(*store_, w);
  EXPECT_TRUE(r.answered);
  EXPECT_EQ(r.value, 9u);
  std::string text;
  server_->command({"GET", redisKey(key(6))}, &text);
  EXPECT_EQ(text, "9");
  const long long ttl = server_->command({"TTL", redisKey(key(6))});
  EXPECT_GT(ttl, 100);
  EXPECT_LE(ttl, 300);
  uint32_t v = 0;
  EXPECT_TRUE(store_->cached(key(6), &v));
  EXPECT_EQ(v, 9u);
  // A plain read-miss-create still finds it, unchanged.
  EXPECT_EQ(ask(*store_, request(3, key(6), 5)).value, 9u);
}

TEST_F(RedisStoreTest, ForeignValueFailsThatRequestOnly) {
  store_ = upStore(options());
  EXPECT_EQ(server_->command({"SET", redisKey(key(3)), "not-a-number"}), 0);
  AffinityReply r = ask(*store_, request(1, key(3), 5));
  EXPECT_FALSE(r.answered);
  EXPECT_NE(store_->status().lastError.find("does not hold a number"), std::string::npos);
  EXPECT_EQ(server_->command({"HSET", redisKey(key(4)), "f", "v"}), 1);
  r = ask(*store_, request(2, key(4), 5));
  EXPECT_FALSE(r.answered);
  EXPECT_NE(store_->status().lastError.find("WRONGTYPE"), std::string::npos)
      << store_->status().lastError;
  EXPECT_TRUE(store_->up());
  EXPECT_TRUE(ask(*store_, request(3, key(5), 5)).answered);
}

TEST_F(RedisStoreTest, CacheHitsAfterAReplyAndKeepTheRedisTtlAlive) {
  RedisAffinityOptions o = options();
  o.cacheTtlMs = 400;
  o.refreshIntervalMs = 20;
  store_ = upStore(o);
  uint32_t v = 0;
  EXPECT_FALSE(store_->cached(key(1), &v));
  ask(*store_, request(1, key(1), 42, 100));
  EXPECT_TRUE(store_->cached(key(1), &v));
  EXPECT_EQ(v, 42u);
  EXPECT_FALSE(store_->cached(key(2), &v));

  // A hit sends a batched EXPIRE: the TTL, shortened behind the store's
  // back, comes back to 100 s with no request.
  EXPECT_EQ(server_->command({"EXPIRE", redisKey(key(1)), "10"}), 1);
  EXPECT_TRUE(store_->cached(key(1), &v));
  EXPECT_TRUE(waitFor([&] { return ttlOf(key(1)) > 90; }, 2000ms));
  // Redis applies the EXPIRE before the store's thread reads its reply and
  // counts it: wait for the count too.
  EXPECT_TRUE(waitFor([&] { return store_->status().refreshes >= 1; }, 2000ms));

  // Entries are trusted for cacheTtlMs only.
  EXPECT_TRUE(waitFor([&] { return !store_->cached(key(1), &v); }, 3000ms));
  auto st = store_->status();
  EXPECT_GE(st.cacheHits, 2u);
  EXPECT_GE(st.cacheMisses, 3u);

  // Never longer than the key lives in Redis (1 s here).
  ask(*store_, request(2, key(7), 1, 1));
  EXPECT_TRUE(store_->cached(key(7), &v));
}

TEST_F(RedisStoreTest, TwoEnginesRacingAgreeOnEveryKey) {
  constexpr uint32_t kKeys = 2000;
  auto a = upStore(options(2));
  auto b = upStore(options(2));
  // Four loops (two per engine), each proposing its own value for every key.
  std::vector<std::vector<uint32_t>> seen(4, std::vector<uint32_t>(kKeys, 0));
  std::vector<uint32_t> unanswered(4, 0);
  std::atomic<int> ready{0};
  auto loop = [&](int id) {
    RedisAffinityStore& s = id < 2 ? *a : *b;
    const size_t index = static_cast<size_t>(id % 2);
    ready.fetch_add(1);
    while (ready.load() < 4) std::this_thread::yield();
    uint32_t next = 0, done = 0;
    AffinityReply replies[64];
    const auto deadline = Clock::now() + 30s;
    while (done < kKeys && Clock::now() < deadline) {
      while (next < kKeys && s.submit(index, request(next, key(next, 0x77), 1000 + id, 60))) ++next;
      const size_t n = s.poll(index, replies, 64);
      for (size_t i = 0; i < n; ++i) {
        if (!replies[i].answered) ++unanswered[id];
        seen[id][replies[i].token] = replies[i].value;
      }
      done += static_cast<uint32_t>(n);
      if (n == 0) std::this_thread::yield();
    }
  };
  std::vector<std::thread> threads;
  for (int id = 0; id < 4; ++id) threads.emplace_back(loop, id);
  for (auto& t : threads) t.join();

  std::map<uint32_t, int> winners;
  for (uint32_t k = 0; k < kKeys; ++k) {
    std::string text;
    ASSERT_EQ(server_->command({"GET", redisKey(key(k, 0x77))}, &text), 0);
    const uint32_t stored = static_cast<uint32_t>(std::stoul(text));
    for (int id = 0; id < 4; ++id) ASSERT_EQ(seen[id][k], stored) << "key " << k << " loop " << id;
    ++winners[stored];
  }
  for (int id = 0; id < 4; ++id) EXPECT_EQ(unanswered[id], 0u);
  EXPECT_EQ(a->status().answered + b->status().answered, 4u * kKeys);
  // Every proposal was one of the four loops'.
  for (auto& [value, count] : winners) EXPECT_TRUE(value >= 1000 && value < 1004) << value;
}

TEST_F(RedisStoreTest, FullQueueRefusesWhileRedisIsSlow) {
  RedisAffinityOptions o = options();
  o.queueCapacity = 4;
  o.maxBatch = 1;
  store_ = upStore(o);
  // Frozen: the thread waits (up to the command timeout) on the one request
  // it took, the others fill the queue.
  server_->kill(SIGSTOP);
  uint32_t accepted = 0;
  for (uint32_t i = 0; i < 10; ++i) accepted += store_->submit(0, request(i, key(i), 1));
  EXPECT_GE(accepted, 4u);
  EXPECT_LE(accepted, 5u);
  EXPECT_EQ(store_->status().rejected, 10u - accepted);
  AffinityReply replies[16];
  size_t total = 0;
  EXPECT_TRUE(waitFor([&] {
    total += store_->poll(0, replies + total, 16 - total);
    return total == accepted;
  }));
  for (size_t i = 0; i < total; ++i) EXPECT_FALSE(replies[i].answered);
  server_->kill(SIGCONT);
}

TEST_F(RedisStoreTest, UnpolledRepliesHoldBackThatLoopOnly) {
  RedisAffinityOptions o = options(2);
  o.queueCapacity = 4;
  store_ = upStore(o);
  // Four replies loop 0 does not poll fill its reply queue...
  for (uint32_t i = 0; i < 4; ++i) EXPECT_TRUE(store_->submit(0, request(i, key(i), 1)));
  EXPECT_TRUE(waitFor([&] { return store_->status().answered == 4; }));
  // ...so four more requests wait, and the fifth is refused.
  for (uint32_t i = 4; i < 8; ++i) EXPECT_TRUE(store_->submit(0, request(i, key(i), 1)));
  EXPECT_FALSE(store_->submit(0, request(8, key(8), 1)));
  EXPECT_EQ(store_->status().rejected, 1u);
  // Loop 1 is served meanwhile.
  EXPECT_TRUE(ask(*store_, request(100, key(100), 1), 1).answered);
  // Once loop 0 polls, its waiting requests go through.
  AffinityReply replies[4];
  std::vector<bool> got(8, false);
  size_t total = 0;
  EXPECT_TRUE(waitFor([&] {
    const size_t n = store_->poll(0, replies, 4);
    for (size_t i = 0; i < n; ++i) {
      EXPECT_TRUE(replies[i].answered);
      got[replies[i].token] = true;
    }
    total += n;
    return total == 8;
  }));
  for (bool g : got) EXPECT_TRUE(g);
}

TEST_F(RedisStoreTest, ScriptFlushedOnTheServerIsSentAgain) {
  store_ = upStore(options());
  EXPECT_TRUE(ask(*store_, request(1, key(1), 3)).answered);
  EXPECT_EQ(server_->command({"SCRIPT", "FLUSH"}), 0);
  AffinityReply r = ask(*store_, request(2, key(1), 4));
  EXPECT_TRUE(r.answered);
  EXPECT_EQ(r.value, 3u);
  EXPECT_TRUE(ask(*store_, request(3, key(2), 4)).answered);  // by SHA again
  EXPECT_EQ(store_->status().scriptLoads, 2u);
}

TEST_F(RedisStoreTest, KilledRedisFailsFastAndIsUsedAgainOnceBack) {
  RedisAffinityOptions o = options();
  store_ = upStore(o);
  EXPECT_TRUE(ask(*store_, request(1, key(1), 3)).answered);

  // Killed while idle: the closed socket is noticed at once.
  server_->kill(SIGKILL);
  EXPECT_TRUE(waitFor([&] { return !store_->up(); }, 1000ms));
  const auto t0 = Clock::now();
  EXPECT_FALSE(store_->submit(0, request(2, key(2), 3)));
  EXPECT_LT(Clock::now() - t0, 50ms);  // no wait: a bound for a loaded machine
  EXPECT_NE(store_->status().lastError.find(std::to_string(server_->port())), std::string::npos)
      << store_->status().lastError;

  // Back on the same port (empty: nothing was saved): used again, no restart.
  ASSERT_TRUE(server_->start(server_->port()));
  EXPECT_TRUE(waitFor([&] { return store_->up(); }, 5000ms)) << store_->status().lastError;
  AffinityReply r = ask(*store_, request(3, key(1), 9));
  EXPECT_TRUE(r.answered);
  EXPECT_FALSE(r.found);
  EXPECT_EQ(r.value, 9u);
  EXPECT_GE(store_->status().reconnects, 1u);
}

TEST_F(RedisStoreTest, FrozenRedisFailsRequestsInFlightWithinTheTimeout) {
  RedisAffinityOptions o = options();
  o.commandTimeoutMs = 200;
  store_ = upStore(o);
  server_->kill(SIGSTOP);
  for (uint32_t i = 0; i < 10; ++i) EXPECT_TRUE(store_->submit(0, request(i, key(i), 1)));
  const auto t0 = Clock::now();
  AffinityReply replies[16];
  size_t total = 0;
  EXPECT_TRUE(waitFor(
      [&] {
        const size_t n = store_->poll(0, replies + total, 16 - total);
        for (size_t i = 0; i < n; ++i) EXPECT_FALSE(replies[total + i].answered);
        total += n;
        return total == 10;
      },
      2000ms));
  EXPECT_LT(Clock::now() - t0, 1000ms);
  EXPECT_FALSE(store_->up());
  EXPECT_FALSE(store_->submit(0, request(20, key(20), 1)));
  EXPECT_NE(store_->status().lastError.find("no reply"), std::string::npos)
      << store_->status().lastError;
  EXPECT_EQ(store_->status().failed, 10u);

  // The destructor does not wait for a frozen server.
  const auto t1 = Clock::now();
  store_.reset();
  EXPECT_LT(Clock::now() - t1, 1000ms);
  server_->kill(SIGCONT);
}

TEST_F(RedisStoreTest, NobodyListeningIsAClearErrorAndTheDestructorIsPrompt) {
  RedisAffinityOptions o = options();
  server_->kill(SIGKILL);
  store_ = std::make_unique<RedisAffinityStore>(o);
  EXPECT_TRUE(waitFor([&] { return store_->status().state == RedisState::kDown; }));
  EXPECT_FALSE(store_->up());
  const std::string error = store_->status().lastError;
  EXPECT_NE(error.find("connect to 127.0.0.1:" + std::to_string(o.port)), std::string::npos)
      << error;
  EXPECT_NE(error.find("refused"), std::string::npos) << error;
  const auto t0 = Clock::now();
  store_.reset();
  EXPECT_LT(Clock::now() - t0, 500ms);
}

TEST_F(RedisStoreTest, RequirePassWithRightAndWrongPasswords) {
  startServer({"--requirepass", "s3cret"});
  RedisAffinityOptions o = options();
  o.password = "s3cret";
  store_ = upStore(o);
  EXPECT_TRUE(ask(*store_, request(1, key(1), 3)).answered);

  o.password = "bad-pw-123";
  RedisAffinityStore wrong(o);
  EXPECT_TRUE(waitFor([&] { return !wrong.status().lastError.empty(); }));
  EXPECT_FALSE(wrong.up());
  std::string error = wrong.status().lastError;
  EXPECT_NE(error.find("AUTH refused"), std::string::npos) << error;
  EXPECT_NE(error.find("WRONGPASS"), std::string::npos) << error;
  EXPECT_EQ(error.find("bad-pw-123"), std::string::npos) << "the password leaked: " << error;

  o.password.clear();
  RedisAffinityStore none(o);
  EXPECT_TRUE(waitFor([&] { return !none.status().lastError.empty(); }));
  EXPECT_FALSE(none.up());
  error = none.status().lastError;
  EXPECT_NE(error.find("NOAUTH"), std::string::npos) << error;
}

TEST_F(RedisStoreTest, SelectsTheDatabaseAndReportsAWrongOne) {
  RedisAffinityOptions o = options();
  o.db = 3;
  store_ = upStore(o);
  EXPECT_TRUE(ask(*store_, request(1, key(1), 3)).answered);
  EXPECT_EQ(server_->command({"EXISTS", redisKey(key(1))}, nullptr, "", 3), 1);
  EXPECT_EQ(server_->command({"EXISTS", redisKey(key(1))}, nullptr, "", 0), 0);

  o.db = 99;  // redis-server has 16 by default
  RedisAffinityStore wrong(o);
  EXPECT_TRUE(waitFor([&] { return !wrong.status().lastError.empty(); }));
  EXPECT_FALSE(wrong.up());
  const std::string error = wrong.status().lastError;
  EXPECT_NE(error.find("SELECT 99 refused"), std::string::npos) << error;
  EXPECT_NE(error.find("out of range"), std::string::npos) << error;
}

TEST_F(RedisStoreTest, LatencyIsReported) {
  store_ = upStore(options());
  for (uint32_t i = 0; i < 20; ++i) ask(*store_, request(i, key(i), 1));
  EXPECT_TRUE(waitFor([&] { return store_->status().latencySamples > 0; }, 3000ms));
  auto st = store_->status();
  EXPECT_GT(st.latencyMaxUs, 0u);
  EXPECT_LE(st.latencyAvgUs, st.latencyMaxUs);
}

}  // namespace
}  // namespace fulcrum
