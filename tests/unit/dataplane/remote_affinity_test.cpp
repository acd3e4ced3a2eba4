// The packet path with a store across the network (RemoteAffinity): new
// connections that miss the store's cache are parked and finished by
// resume() when the reply comes or the wait runs out; session sync writes each
// decision and continues another engine's connections. A scripted store
// stands in for Redis, so every reply and its timing are chosen by the test.
#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "data-plane/processor.h"
#include "shared/config/config_parser.h"
#include "tests/common/packet_builder.h"

namespace fulcrum {
namespace {

using testing::buildTcp;
using testing::ip4;
using testing::TcpPacketSpec;
using namespace tcpflag;

constexpr uint32_t kClient = ip4(198, 18, 0, 1);
constexpr uint32_t kSticky = ip4(198, 18, 0, 20);
constexpr uint32_t kA = ip4(198, 18, 1, 21);
constexpr uint32_t kB = ip4(198, 18, 1, 22);

constexpr const char* kConfig = R"(
set service-set web inside-interface in0 outside-interface out0
set application sticky service-set web facade 198.18.0.20 port 80 algorithm round-robin
set application sticky persistence source-address timeout 1800
set application sticky server a address 198.18.1.21
set application sticky server b address 198.18.1.22
)";

// A store whose answers the test gives by hand.
class ScriptedStore : public RemoteAffinity {
 public:
  bool cached(const AffinityKey& key, uint32_t* value) override {
    auto it = cache.find(keyText(key));
    if (it == cache.end()) return false;
    *value = it->second;
    return true;
  }
  bool submit(size_t loop, const AffinityRequest& request) override {
    if (!isUp || requests.size() >= capacity) return false;
    loops.push_back(loop);
    requests.push_back(request);
    return true;
  }
  size_t poll(size_t, AffinityReply* replies, size_t max) override {
    size_t n = 0;
    while (n < max && !ready.empty()) {
      replies[n++] = ready.front();
      ready.pop_front();
    }
    return n;
  }
  bool up() const override { return isUp; }

  static std::string keyText(const AffinityKey& k) {
    return std::to_string(k.scope) + "/" + k.client.toString() + "/" + std::to_string(k.clientPort);
  }
  // Answers the oldest request still waiting.
  AffinityRequest answer(bool found, uint32_t value) {
    AffinityRequest r = requests.front();
    requests.pop_front();
    loops.pop_front();
    ready.push_back({r.token, true, found, value});
    return r;
  }

  bool isUp = true;
  size_t capacity = 1000;
  std::map<std::string, uint32_t> cache;
  std::deque<AffinityRequest> requests;
  std::deque<size_t> loops;
  std::deque<AffinityReply> ready;
};

class RemoteAffinityTest : public ::testing::Test {
 protected:
  explicit RemoteAffinityTest(bool sessionSync = false) : shared_(1024, local_) {
    ConfigResult parsed = parseConfig(
        std::string(kConfig) + (sessionSync ? "set application sticky session-sync on\n" : ""));
    EXPECT_TRUE(parsed.ok());
    std::string error;
    auto built = EngineConfig::build(parsed.config, &error);
    EXPECT_TRUE(built) << error;
    EXPECT_EQ(built->app(0).sessionSync, sessionSync);
    app_ = &built->app(0);
    EXPECT_TRUE(shared_.publish(std::move(built), false, &error)) << error;
    shared_.setRemote(&store_);
    loop_ = std::make_unique<PacketProcessor>(shared_, LinkType::kRawIp);
    loop_->setLoopIndex(1);
    for (auto& b : out_) {
      b = std::make_unique<PacketBuffer>();
      outPtr_[&b - &out_[0]] = b.get();
    }
  }

  std::vector<uint8_t> packet(uint8_t flags, uint16_t port = 40000, uint32_t src = kClient) {
    TcpPacketSpec s;
    s.ethernet = false;
    s.src = src;
    s.dst = kSticky;
    s.srcPort = port;
    s.flags = flags;
    return buildTcp(s);
  }
  Verdict send(std::vector<uint8_t>& p, const uint8_t* vnet = nullptr, bool partial = false) {
    PacketRef ref{p.data(), static_cast<uint32_t>(p.size()), 0, Direction::kEgress, partial};
    ref.capacity = ref.length;
    ref.vnet = vnet;
    return loop_->process(ref, 100);
  }
  // Packets resume() lets out, as (destination, bytes).
  std::vector<std::vector<uint8_t>> resumed() {
    const size_t n = loop_->resume(100, outPtr_, sets_, 8);
    std::vector<std::vector<uint8_t>> got;
    for (size_t i = 0; i < n; ++i)
      got.emplace_back(outPtr_[i]->data, outPtr_[i]->data + outPtr_[i]->length);
    return got;
  }
  static uint32_t dst(const std::vector<uint8_t>& p) {
    PacketView v;
    std::vector<uint8_t> copy = p;
    EXPECT_EQ(parsePacket(copy.data(), copy.size(), LinkType::kRawIp, v), ParseStatus::kTcpIpv4);
    EXPECT_TRUE(v.ipv4ChecksumValid() && v.tcpChecksumValid());
    return v.dstV4();
  }
  uint64_t count(Counter c) const { return loop_->counters().get(c); }
  uint32_t idOf(uint32_t address) const {
    for (size_t i = 0; i < app_->serverAddress.size(); ++i)
      if (app_->serverAddress[i] == address) return app_->serverStableId[i];
    return 0;
  }

  LocalAffinityStore local_{1024};
  ScriptedStore store_;
  EngineShared shared_;
  AppRuntime* app_ = nullptr;
  std::unique_ptr<PacketProcessor> loop_;
  std::unique_ptr<PacketBuffer> out_[8];
  PacketBuffer* outPtr_[8] = {};
  uint16_t sets_[8] = {};
};

TEST_F(RemoteAffinityTest, ACacheMissWaitsForTheStoreWhileOtherPacketsFlow) {
  auto syn = packet(kSyn);
  EXPECT_EQ(send(syn), Verdict::kParked);
  EXPECT_EQ(loop_->parked(), 1u);
  EXPECT_EQ(count(Counter::kStoreWaits), 1u);
  ASSERT_EQ(store_.requests.size(), 1u);
  EXPECT_EQ(store_.loops.front(), 1u);  // this loop's queue
  EXPECT_EQ(store_.requests.front().key.client, IpAddress::v4(kClient));
  EXPECT_FALSE(store_.requests.front().lookupOnly);
  EXPECT_TRUE(resumed().empty());  // no reply yet: nothing leaves
  EXPECT_EQ(shared_.table.size(), 0u);

  // Another client's packets are not held up meanwhile (its SYN parks too).
  auto other = packet(kSyn, 40001, ip4(198, 18, 0, 2));
  EXPECT_EQ(send(other), Verdict::kParked);

  // The store answers: another engine had chosen b for this client.
  store_.answer(true, idOf(kB));
  auto out = resumed();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(dst(out[0]), kB);
  EXPECT_EQ(sets_[0], 0u);
  EXPECT_EQ(loop_->parked(), 1u);
  EXPECT_EQ(shared_.table.size(), 1u);
  EXPECT_EQ(count(Counter::kPersistenceHits), 1u);
  // The client's next packet follows the session like any other.
  auto ack = packet(kAck);
  EXPECT_EQ(send(ack), Verdict::kForward);
  EXPECT_EQ(dst(ack), kB);
}

TEST_F(RemoteAffinityTest, OurProposalStoredFirstIsFollowed) {
  auto syn = packet(kSyn);
  ASSERT_EQ(send(syn), Verdict::kParked);
  const AffinityRequest r = store_.answer(false, 0);
  store_.ready.back().value = r.proposed;  // stored: the store returns it
  auto out = resumed();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(idOf(dst(out[0])), r.proposed);
  EXPECT_EQ(count(Counter::kPersistenceHits), 0u);  // a new mapping, not a hit
}

TEST_F(RemoteAffinityTest, NoReplyInTimeMeansALocalDecision) {
  shared_.remoteTimeoutUs = 0;  // every wait is already over
  auto syn = packet(kSyn);
  ASSERT_EQ(send(syn), Verdict::kParked);
  auto out = resumed();
  ASSERT_EQ(out.size(), 1u);
  const uint32_t server = dst(out[0]);
  EXPECT_TRUE(server == kA || server == kB);
  EXPECT_EQ(count(Counter::kStoreTimeouts), 1u);
  EXPECT_EQ(loop_->parked(), 0u);
  // The late reply names the other server: it is ignored (the slot is free).
  store_.answer(true, idOf(server == kA ? kB : kA));
  EXPECT_TRUE(resumed().empty());
  auto ack = packet(kAck);
  EXPECT_EQ(send(ack), Verdict::kForward);
  EXPECT_EQ(dst(ack), server);
  // The local decision was kept in the embedded store: this engine stays consistent.
  EXPECT_EQ(local_.liveEntries(100), 1u);
}

// The request went out and may yet be stored: the local decision after a
// timeout follows what was proposed, so later connections that find it in
// the store go to the same server.
TEST_F(RemoteAffinityTest, ATimedOutWaitFollowsItsProposal) {
  shared_.remoteTimeoutUs = 0;
  for (uint16_t i = 0; i < 8; ++i) {
    auto syn = packet(kSyn, static_cast<uint16_t>(40100 + i), ip4(198, 18, 0, 100) + i);
    ASSERT_EQ(send(syn), Verdict::kParked);
    const uint32_t proposed = store_.requests.back().proposed;
    auto out = resumed();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(idOf(dst(out[0])), proposed) << i;
  }
  EXPECT_EQ(count(Counter::kStoreTimeouts), 8u);
}

TEST_F(RemoteAffinityTest, AFailedRequestIsALocalDecisionCounted) {
  auto syn = packet(kSyn);
  ASSERT_EQ(send(syn), Verdict::kParked);
  const AffinityRequest r = store_.requests.front();
  store_.requests.pop_front();
  store_.ready.push_back({r.token, false, false, 0});  // the store failed it
  auto out = resumed();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(idOf(dst(out[0])), r.proposed);
  EXPECT_EQ(count(Counter::kStoreDownDecisions), 1u);
}

TEST_F(RemoteAffinityTest, AStaleReplyForAReusedSlotIsIgnored) {
  shared_.remoteTimeoutUs = 0;
  auto first = packet(kSyn, 40000);
  ASSERT_EQ(send(first), Verdict::kParked);
  ASSERT_EQ(resumed().size(), 1u);  // timed out
  shared_.remoteTimeoutUs = 60'000'000;
  auto second = packet(kSyn, 40001, ip4(198, 18, 0, 2));
  ASSERT_EQ(send(second), Verdict::kParked);  // the same slot, a new generation
  ASSERT_EQ(store_.requests.size(), 2u);
  EXPECT_NE(store_.requests[0].token, store_.requests[1].token);
  store_.answer(true, idOf(kA));  // the first one's reply, late
  EXPECT_TRUE(resumed().empty());
  EXPECT_EQ(loop_->parked(), 1u);
  store_.answer(true, idOf(kB));
  auto out = resumed();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(dst(out[0]), kB);
}

TEST_F(RemoteAffinityTest, ACachedAnswerNeedsNoWait) {
  store_.cache[ScriptedStore::keyText({app_->affinityScope, IpAddress::v4(kClient)})] = idOf(kB);
  auto syn = packet(kSyn);
  EXPECT_EQ(send(syn), Verdict::kForward);
  EXPECT_EQ(dst(syn), kB);
  EXPECT_TRUE(store_.requests.empty());
  EXPECT_EQ(count(Counter::kStoreWaits), 0u);
}

TEST_F(RemoteAffinityTest, AStoreThatIsDownMeansLocalDecisionsAtOnce) {
  store_.isUp = false;
  auto syn = packet(kSyn);
  EXPECT_EQ(send(syn), Verdict::kForward);
  EXPECT_EQ(count(Counter::kStoreDownDecisions), 1u);
  EXPECT_EQ(loop_->parked(), 0u);
  // Back up: the store is used again.
  store_.isUp = true;
  auto next = packet(kSyn, 40001, ip4(198, 18, 0, 2));
  EXPECT_EQ(send(next), Verdict::kParked);
}

TEST_F(RemoteAffinityTest, AFullQueueMeansALocalDecision) {
  store_.capacity = 0;  // the store's queue for this loop is full
  auto syn = packet(kSyn);
  EXPECT_EQ(send(syn), Verdict::kForward);
  EXPECT_EQ(count(Counter::kStoreQueueFull), 1u);
  store_.capacity = 1000;
  // The loop's own room: kMaxParked waits, then local decisions.
  for (size_t i = 0; i < PacketProcessor::kMaxParked; ++i) {
    auto p = packet(kSyn, static_cast<uint16_t>(1000 + i), ip4(198, 19, 0, 1) + i);
    ASSERT_EQ(send(p), Verdict::kParked) << i;
  }
  auto extra = packet(kSyn, 999, ip4(198, 19, 9, 9));
  EXPECT_EQ(send(extra), Verdict::kForward);
  EXPECT_EQ(count(Counter::kStoreQueueFull), 2u);
  // Every parked one goes out as its reply comes, at most `max` per call.
  for (size_t i = 0; i < PacketProcessor::kMaxParked; ++i) store_.answer(false, idOf(kA));
  size_t out = 0;
  for (int turn = 0; turn < 100 && loop_->parked() > 0; ++turn) out += resumed().size();
  EXPECT_EQ(out, PacketProcessor::kMaxParked);
}

TEST_F(RemoteAffinityTest, TheVirtioHeaderComesBack) {
  uint8_t vnet[kVnetHeaderSize] = {1, 0, 0, 0, 0, 0, 20, 0, 16, 0};
  auto syn = packet(kSyn);
  ASSERT_EQ(send(syn, vnet, false), Verdict::kParked);
  store_.answer(true, idOf(kA));
  ASSERT_EQ(loop_->resume(100, outPtr_, sets_, 8), 1u);
  EXPECT_EQ(std::vector<uint8_t>(outPtr_[0]->vnet, outPtr_[0]->vnet + kVnetHeaderSize),
            std::vector<uint8_t>(vnet, vnet + kVnetHeaderSize));
}

class SessionSyncTest : public RemoteAffinityTest {
 protected:
  SessionSyncTest() : RemoteAffinityTest(true) {}
};

TEST_F(SessionSyncTest, EachSessionIsWrittenUnderItsFiveTuple) {
  store_.cache[ScriptedStore::keyText({app_->affinityScope, IpAddress::v4(kClient)})] = idOf(kA);
  auto syn = packet(kSyn, 41000);
  ASSERT_EQ(send(syn), Verdict::kForward);
  ASSERT_EQ(store_.requests.size(), 1u);
  const AffinityRequest& w = store_.requests.front();
  EXPECT_EQ(w.token, 0u);  // nobody waits for it
  EXPECT_EQ(w.key.scope, app_->sessionSyncScope);
  EXPECT_EQ(w.key.client, IpAddress::v4(kClient));
  EXPECT_EQ(w.key.clientPort, 41000);
  EXPECT_EQ(w.proposed, idOf(kA));
  EXPECT_TRUE(w.overwrite);  // a reused client port must not keep the old server
  EXPECT_EQ(w.ttlSeconds, app_->sessionTimeout);
  EXPECT_EQ(count(Counter::kSessionSyncWrites), 1u);
  // Its reply (token 0) is no parked packet's, and it is read (so it does not
  // fill the loop's reply queue) although nothing is parked.
  store_.answer(false, idOf(kA));
  EXPECT_EQ(loop_->parked(), 0u);
  EXPECT_TRUE(resumed().empty());
  EXPECT_TRUE(store_.ready.empty());
}

TEST_F(SessionSyncTest, AnotherEnginesConnectionContinuesToTheSameServer) {
  // Mid-connection, no session here: the store is asked what was decided.
  auto data = packet(kAck | kPsh, 42000);
  ASSERT_EQ(send(data), Verdict::kParked);
  ASSERT_EQ(store_.requests.size(), 1u);
  EXPECT_TRUE(store_.requests.front().lookupOnly);
  EXPECT_EQ(store_.requests.front().key.clientPort, 42000);
  EXPECT_EQ(store_.requests.front().ttlSeconds, app_->sessionTimeout);  // renewed if found
  store_.answer(true, idOf(kB));
  auto out = resumed();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(dst(out[0]), kB);
  EXPECT_EQ(count(Counter::kSessionSyncRecoveries), 1u);
  // The session is established here now: the next packets need no store.
  auto next = packet(kAck, 42000);
  EXPECT_EQ(send(next), Verdict::kForward);
  EXPECT_EQ(dst(next), kB);
  EXPECT_EQ(store_.requests.size(), 0u);
}

TEST_F(SessionSyncTest, AConnectionNobodyRecordedIsDropped) {
  auto data = packet(kAck, 43000);
  ASSERT_EQ(send(data), Verdict::kParked);
  store_.answer(false, 0);  // not found
  EXPECT_TRUE(resumed().empty());
  EXPECT_EQ(count(Counter::kDropNotSyn), 1u);
  EXPECT_EQ(shared_.table.size(), 0u);
  // An RST is never worth a lookup.
  auto rst = packet(kRst, 43001);
  EXPECT_EQ(send(rst), Verdict::kDrop);
  EXPECT_EQ(count(Counter::kDropNotSyn), 2u);
}

TEST_F(SessionSyncTest, LookupsTakeAtMostAQuarterOfTheWaitSlots) {
  for (size_t i = 0; i < PacketProcessor::kMaxParkedLookups; ++i) {
    auto p = packet(kAck, static_cast<uint16_t>(1000 + i));
    ASSERT_EQ(send(p), Verdict::kParked) << i;
  }
  auto stray = packet(kAck, 999);
  EXPECT_EQ(send(stray), Verdict::kDrop);
  EXPECT_EQ(count(Counter::kStoreQueueFull), 1u);
  // New connections still wait for the store.
  auto syn = packet(kSyn, 998, ip4(198, 18, 0, 77));
  EXPECT_EQ(send(syn), Verdict::kParked);
}

// A server that pushes while its client is silent: the server's packet finds
// the connection in the store and recovers the session from that side.
TEST_F(SessionSyncTest, AServerPacketRecoversTheSessionToo) {
  auto fromServer = [&](uint32_t server, uint16_t clientPort) {
    TcpPacketSpec s;
    s.ethernet = false;
    s.src = server;
    s.srcPort = 80;
    s.dst = kClient;
    s.dstPort = clientPort;
    s.flags = kAck | kPsh;
    s.payload = "pushed";
    return buildTcp(s);
  };
  auto push = fromServer(kB, 44000);
  ASSERT_EQ(loop_->process(push.data(), push.size(), 0, Direction::kIngress, 100),
            Verdict::kParked);
  ASSERT_EQ(store_.requests.size(), 1u);
  EXPECT_TRUE(store_.requests.front().lookupOnly);
  EXPECT_EQ(store_.requests.front().key.client, IpAddress::v4(kClient));
  EXPECT_EQ(store_.requests.front().key.clientPort, 44000);
  store_.answer(true, idOf(kB));
  Direction ways[8];
  ASSERT_EQ(loop_->resume(100, outPtr_, sets_, 8, ways), 1u);
  EXPECT_EQ(ways[0], Direction::kIngress);  // on toward the client
  PacketView v;
  ASSERT_EQ(parsePacket(outPtr_[0]->data, outPtr_[0]->length, LinkType::kRawIp, v),
            ParseStatus::kTcpIpv4);
  EXPECT_EQ(v.srcV4(), kSticky);  // un-NATed to the façade
  EXPECT_EQ(v.srcPort(), 80);
  EXPECT_TRUE(v.ipv4ChecksumValid() && v.tcpChecksumValid());
  EXPECT_EQ(count(Counter::kSessionSyncRecoveries), 1u);
  // The client's side follows the recovered session, no store needed.
  auto ack = packet(kAck, 44000);
  EXPECT_EQ(send(ack), Verdict::kForward);
  EXPECT_EQ(dst(ack), kB);
  EXPECT_TRUE(store_.requests.empty());

  // Another server claiming a connection the store gives to b: dropped.
  auto wrong = fromServer(kA, 44001);
  ASSERT_EQ(loop_->process(wrong.data(), wrong.size(), 0, Direction::kIngress, 100),
            Verdict::kParked);
  store_.answer(true, idOf(kB));
  EXPECT_EQ(loop_->resume(100, outPtr_, sets_, 8, ways), 0u);
  EXPECT_EQ(count(Counter::kDropIngressNoSession), 1u);

  // With the store down there is nothing to ask: dropped at once.
  store_.isUp = false;
  auto lost = fromServer(kB, 44002);
  EXPECT_EQ(loop_->process(lost.data(), lost.size(), 0, Direction::kIngress, 100), Verdict::kDrop);
  EXPECT_EQ(count(Counter::kDropIngressNoSession), 2u);
  // Not a server of a session-sync application: passed, as always.
  auto other = fromServer(ip4(198, 18, 9, 9), 44003);
  EXPECT_EQ(loop_->process(other.data(), other.size(), 0, Direction::kIngress, 100),
            Verdict::kForward);
}

}  // namespace
}  // namespace fulcrum
