#include "data-plane/session_table.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace fulcrum {
namespace {

SessionInit makeSession(uint32_t client, uint16_t clientPort, uint32_t server = 0xC6120100,
                        uint32_t expiresAt = 100) {
  SessionInit s;
  s.client = client;
  s.clientPort = clientPort;
  s.facade = 0xC612000A;
  s.facadePort = 80;
  s.server = server;
  s.serverPort = 8080;
  s.serviceSet = 1;
  s.app = 3;
  s.serverIndex = 2;
  s.createdAt = 1;
  s.expiresAt = expiresAt;
  return s;
}

auto noRemoval = [](const SessionInfo&) { FAIL() << "nothing should be removed"; };

bool found(SessionTable& t, const FlowKey4& k, uint32_t now, Session4** out = nullptr) {
  return t.find(k, t.hash(k), now, [&](Session4& s, Direction) {
    if (out) *out = &s;
  });
}

TEST(SessionTable, BothEntriesReachOneRecord) {
  SessionTable t(16);
  SessionInit init = makeSession(0xC6120001, 40000);
  auto r = t.create(init, 10, noRemoval);
  ASSERT_EQ(r.status, SessionTable::CreateStatus::kCreated);
  EXPECT_EQ(t.size(), 1u);
  Session4* viaEgress = nullptr;
  Session4* viaIngress = nullptr;
  ASSERT_TRUE(found(t, init.egressKey(), 10, &viaEgress));
  ASSERT_TRUE(found(t, init.ingressKey(), 10, &viaIngress));
  EXPECT_EQ(viaEgress, viaIngress);
  EXPECT_EQ(viaEgress->app, 3);
  EXPECT_EQ(viaEgress->serverIndex, 2);
  // Direction is part of the key: the egress key seen as ingress is a miss.
  FlowKey4 wrong = init.egressKey();
  wrong.direction = Direction::kIngress;
  EXPECT_FALSE(found(t, wrong, 10));
  FlowKey4 otherSet = init.egressKey();
  otherSet.serviceSet = 2;
  EXPECT_FALSE(found(t, otherSet, 10));
}

TEST(SessionTable, FlowEntriesHaveNoIngressKey) {
  SessionTable t(16);
  SessionInit init = makeSession(0xC6120001, 40000);
  init.kind = SessionKind::kFlow;
  ASSERT_EQ(t.create(init, 10, noRemoval).status, SessionTable::CreateStatus::kCreated);
  EXPECT_TRUE(found(t, init.egressKey(), 10));
  EXPECT_FALSE(found(t, init.ingressKey(), 10));
}

TEST(SessionTable, DuplicateAndConflictingKeys) {
  SessionTable t(16);
  SessionInit a = makeSession(0xC6120001, 40000);
  ASSERT_EQ(t.create(a, 10, noRemoval).status, SessionTable::CreateStatus::kCreated);
  EXPECT_EQ(t.create(a, 10, noRemoval).status, SessionTable::CreateStatus::kExists);
  // Same client endpoint to another façade that maps to the same server
  // endpoint: the server could not tell the two apart.
  SessionInit b = makeSession(0xC6120001, 40000);
  b.facade = 0xC612000B;
  EXPECT_EQ(t.create(b, 10, noRemoval).status, SessionTable::CreateStatus::kIngressConflict);
  EXPECT_EQ(t.size(), 1u);
}

TEST(SessionTable, FullTableFailsAndRecovers) {
  SessionTable t(4);
  for (uint16_t i = 0; i < 4; ++i)
    ASSERT_EQ(t.create(makeSession(0xC6120001, 1000 + i), 10, noRemoval).status,
              SessionTable::CreateStatus::kCreated);
  EXPECT_EQ(t.create(makeSession(0xC6120001, 2000), 10, noRemoval).status,
            SessionTable::CreateStatus::kFull);
  int removed = 0;
  EXPECT_EQ(t.expire(100, 0, static_cast<uint32_t>(t.bucketCount()),
                     [&](const SessionInfo&) { ++removed; }),
            4u);
  EXPECT_EQ(removed, 4);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.create(makeSession(0xC6120001, 2000), 100, noRemoval).status,
            SessionTable::CreateStatus::kCreated);
}

TEST(SessionTable, ExpiryRemovesBothEntriesAtOnce) {
  SessionTable t(16);
  SessionInit a = makeSession(0xC6120001, 40000, 0xC6120100, 50);
  SessionInit b = makeSession(0xC6120002, 40000, 0xC6120100, 500);
  t.create(a, 10, noRemoval);
  t.create(b, 10, noRemoval);
  // An expired session is invisible to lookups even before ageing runs.
  EXPECT_FALSE(found(t, a.egressKey(), 50));
  EXPECT_TRUE(found(t, a.egressKey(), 49));
  std::vector<SessionInfo> gone;
  EXPECT_EQ(t.expire(60, 0, static_cast<uint32_t>(t.bucketCount()),
                     [&](const SessionInfo& i) { gone.push_back(i); }),
            1u);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].client, a.client);
  EXPECT_EQ(gone[0].serverIndex, 2);
  EXPECT_FALSE(found(t, a.egressKey(), 0));
  EXPECT_FALSE(found(t, a.ingressKey(), 0));
  EXPECT_TRUE(found(t, b.egressKey(), 60));
  EXPECT_TRUE(found(t, b.ingressKey(), 60));
  EXPECT_EQ(t.size(), 1u);
}

TEST(SessionTable, CreateReplacesAnExpiredHolder) {
  SessionTable t(16);
  SessionInit a = makeSession(0xC6120001, 40000, 0xC6120100, 50);
  t.create(a, 10, noRemoval);
  SessionInit again = makeSession(0xC6120001, 40000, 0xC6120200, 500);
  std::vector<SessionInfo> gone;
  auto r = t.create(again, 60, [&](const SessionInfo& i) { gone.push_back(i); });
  ASSERT_EQ(r.status, SessionTable::CreateStatus::kCreated);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].server, 0xC6120100u);
  Session4* s = nullptr;
  ASSERT_TRUE(found(t, again.egressKey(), 60, &s));
  EXPECT_EQ(s->server, 0xC6120200u);
  EXPECT_FALSE(found(t, a.ingressKey(), 60));
  EXPECT_EQ(t.size(), 1u);
}

TEST(SessionTable, RemoveIfChecksThePredicate) {
  SessionTable t(16);
  SessionInit a = makeSession(0xC6120001, 40000);
  t.create(a, 10, noRemoval);
  EXPECT_FALSE(t.removeIf(
      a.egressKey(), [](Session4&) { return false; }, noRemoval));
  int removed = 0;
  EXPECT_TRUE(t.removeIf(
      a.egressKey(), [](Session4&) { return true; }, [&](const SessionInfo&) { ++removed; }));
  EXPECT_EQ(removed, 1);
  EXPECT_FALSE(found(t, a.ingressKey(), 10));
  EXPECT_FALSE(t.removeIf(
      a.egressKey(), [](Session4&) { return true; }, noRemoval));
}

TEST(SessionTable, FitsTheMemoryBudget) {
  // 64 bytes a session at most (issue 7), at every size: the bucket array
  // follows the capacity exactly, not the next power of two.
  for (uint32_t capacity : {1u, 1000u, 65'537u, 1'000'000u, 3'000'000u}) {
    SessionTable t(capacity);
    EXPECT_LE(t.bytesPerSession(), 64.0) << capacity;
    EXPECT_EQ(t.capacity(), capacity);
    EXPECT_EQ(t.bucketCount(), 2u * capacity);
  }
}

TEST(SessionTable, LongChainsOnAFullTable) {
  // A 64-session table filled to the last record, then every session found
  // from both keys, half removed from the middle of their chains, the rest
  // still found, and the freed records used again. Small tables put several
  // entries in one bucket, so chains are walked, unlinked in the middle and
  // relinked, under the bucket words' lock bits.
  SessionTable t(64);
  std::vector<SessionInit> sessions;
  for (uint16_t i = 0; i < 64; ++i) {
    sessions.push_back(makeSession(0xC6120001 + i, static_cast<uint16_t>(1000 + i)));
    ASSERT_EQ(t.create(sessions.back(), 1, noRemoval).status, SessionTable::CreateStatus::kCreated);
  }
  EXPECT_EQ(t.create(makeSession(0xC6120200, 5), 1, noRemoval).status,
            SessionTable::CreateStatus::kFull);
  for (const SessionInit& s : sessions) {
    EXPECT_TRUE(found(t, s.egressKey(), 1));
    EXPECT_TRUE(found(t, s.ingressKey(), 1));
  }
  uint32_t removed = 0;
  for (size_t i = 0; i < sessions.size(); i += 2) {
    EXPECT_TRUE(t.removeIf(
        sessions[i].egressKey(), [](Session4&) { return true; },
        [&](const SessionInfo&) { ++removed; }));
  }
  EXPECT_EQ(removed, 32u);
  EXPECT_EQ(t.size(), 32u);
  for (size_t i = 0; i < sessions.size(); ++i) {
    EXPECT_EQ(found(t, sessions[i].egressKey(), 1), i % 2 == 1) << i;
    EXPECT_EQ(found(t, sessions[i].ingressKey(), 1), i % 2 == 1) << i;
  }
  for (uint16_t i = 0; i < 32; ++i) {
    EXPECT_EQ(t.create(makeSession(0xC6120300 + i, 7), 1, noRemoval).status,
              SessionTable::CreateStatus::kCreated);
  }
  uint32_t live = 0;
  t.forEach([&](const SessionInfo&) { ++live; });
  EXPECT_EQ(live, 64u);
  EXPECT_EQ(t.size(), 64u);
}

TEST(SessionTable, EgressAndIngressInOneBucket) {
  // A one-session table has two buckets: for many seeds, a session's two
  // entries share one, so PairLock must take that bucket once (a second
  // fetch_or on it would spin forever), and link, unlink and the walks must
  // keep both entries of one record in one chain apart.
  int shared = 0;
  for (uint64_t seed = 1; seed <= 16; ++seed) {
    SessionTable t(1, seed);
    const SessionInit s = makeSession(0xC6120001, 1000);
    ASSERT_EQ(t.create(s, 1, noRemoval).status, SessionTable::CreateStatus::kCreated);
    if (t.bucketOf(t.hash(s.egressKey())) == t.bucketOf(t.hash(s.ingressKey()))) ++shared;
    EXPECT_TRUE(found(t, s.egressKey(), 1));
    EXPECT_TRUE(found(t, s.ingressKey(), 1));
    uint32_t listed = 0;
    t.forEach([&](const SessionInfo&) { ++listed; });
    EXPECT_EQ(listed, 1u);
    uint32_t removed = 0;
    EXPECT_TRUE(t.removeIf(
        s.egressKey(), [](Session4&) { return true; }, [&](const SessionInfo&) { ++removed; }));
    EXPECT_EQ(removed, 1u);
    EXPECT_FALSE(found(t, s.egressKey(), 1));
    EXPECT_FALSE(found(t, s.ingressKey(), 1));
    EXPECT_EQ(t.create(s, 1, noRemoval).status, SessionTable::CreateStatus::kCreated);
  }
  EXPECT_GT(shared, 0) << "no seed put both entries in one bucket: the case went untested";
}

TEST(MappedArray, AlignsHugeArraysAndKeepsSmallOnesSmall) {
  // At least one huge page: 2 MiB aligned, so the kernel can back it with
  // huge pages; elements default-constructed.
  MappedArray<std::atomic<uint32_t>> big(MappedArray<int>::kHugePage);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big.data()) % MappedArray<int>::kHugePage, 0u);
  EXPECT_EQ(big.size(), MappedArray<int>::kHugePage);
  EXPECT_EQ(big[0].load(), 0u);
  EXPECT_EQ(big[big.size() - 1].load(), 0u);
  big[big.size() - 1].store(7);
  // Moving hands the mapping over; the moved-from array holds nothing.
  MappedArray<std::atomic<uint32_t>> moved(std::move(big));
  EXPECT_EQ(moved[moved.size() - 1].load(), 7u);
  EXPECT_EQ(big.data(), nullptr);
  EXPECT_EQ(big.size(), 0u);
  big = std::move(moved);
  EXPECT_EQ(big[big.size() - 1].load(), 7u);
  EXPECT_EQ(moved.data(), nullptr);
  // Small arrays are page aligned only, and usable; empty ones map nothing.
  MappedArray<Session4> small(3);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data()) % 4096, 0u);
  small[2].client = 5;
  EXPECT_EQ(small[2].client, 5u);
  MappedArray<Session4> none(0);
  EXPECT_EQ(none.data(), nullptr);
  // The granted huge pages are readable from /proc (0 is a valid answer:
  // THP may be off); never more than what was mapped.
  EXPECT_LE(anonHugePagesIn({big.data()}), static_cast<long>(2 * MappedArray<int>::kHugePage * 4));
}

#ifdef FULCRUM_HAS_ASAN
TEST(MappedArray, ReadingPastTheEndIsCaughtByAsan) {
  // The page's slack after the last element is poisoned, so an index one
  // past the end is reported as it was with new[].
  MappedArray<uint32_t> a(3);
  volatile uint32_t* p = a.data();
  EXPECT_DEATH((void)p[3], "use-after-poison");
}
#endif

TEST(SessionTable, ManyLoopsAtOnce) {
  // Four threads create, look up and age sessions over shared keys; at the
  // end every record is accounted for and the table is consistent.
  SessionTable t(4096);
  std::atomic<uint32_t> created{0}, removed{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (uint32_t round = 0; round < 20000; ++round) {
        uint32_t now = round / 100;
        uint16_t port = static_cast<uint16_t>((round * 7 + th) % 3000);
        SessionInit s = makeSession(0xC6120001, port, 0xC6120100, now + 2);
        auto r = t.create(s, now, [&](const SessionInfo&) { removed.fetch_add(1); });
        if (r.status == SessionTable::CreateStatus::kCreated) created.fetch_add(1);
        FlowKey4 k = s.ingressKey();
        // The burst pipeline's unlocked hints, racing with the others'
        // creates and removals: never a crash or an out-of-range read.
        t.prefetchRecord(t.hash(k));
        t.prefetchSecond(t.hash(k), k);
        t.find(k, t.hash(k), now, [&](Session4& x, Direction) { x.expiresAt.store(now + 2); });
        if (round % 64 == static_cast<uint32_t>(th))
          t.expire(now, 0, static_cast<uint32_t>(t.bucketCount()),
                   [&](const SessionInfo&) { removed.fetch_add(1); });
      }
    });
  }
  for (auto& th : threads) th.join();
  uint32_t live = 0;
  t.forEach([&](const SessionInfo&) { ++live; });
  EXPECT_EQ(live, t.size());
  EXPECT_EQ(created.load(), removed.load() + live);
  t.expire(1'000'000, 0, static_cast<uint32_t>(t.bucketCount()),
           [&](const SessionInfo&) { removed.fetch_add(1); });
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(created.load(), removed.load());
}

}  // namespace
}  // namespace fulcrum
