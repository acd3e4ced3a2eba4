// Every branch of the packet path (DESIGN.md, "Packet path"), as packets in
// and packets out.
#include "data-plane/processor.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "shared/config/config_parser.h"
#include "tests/common/packet_builder.h"

namespace fulcrum {
namespace {

using testing::buildTcp;
using testing::ip4;
using testing::TcpPacketSpec;
using namespace tcpflag;

constexpr uint32_t kClient = ip4(198, 18, 0, 1);
constexpr uint32_t kFacade = ip4(198, 18, 0, 10);
constexpr uint32_t kS1 = ip4(198, 18, 1, 11);
constexpr uint32_t kS2 = ip4(198, 18, 1, 12);
constexpr uint32_t kOther = ip4(198, 18, 5, 5);

constexpr const char* kConfig = R"(
set service-set web inside-interface in0 outside-interface out0
set service-set lab inside-interface in1 outside-interface out1
set application shop service-set web facade 198.18.0.10 port 80 algorithm round-robin
set application shop session-timeout 900
set application shop server s1 address 198.18.1.11 port 8080
set application shop server s2 address 198.18.1.12 port 8080
set application sticky service-set web facade 198.18.0.20 port 443 algorithm round-robin
set application sticky persistence source-address timeout 1800
set application sticky server a address 198.18.1.21
set application sticky server b address 198.18.1.22
)";

class ProcessorTest : public ::testing::Test {
 protected:
  explicit ProcessorTest(uint32_t capacity = 1024) : shared_(capacity, store_) {
    ConfigResult parsed = parseConfig(kConfig);
    EXPECT_TRUE(parsed.ok()) << (parsed.error ? parsed.error->toString() : "");
    std::string error;
    auto built = EngineConfig::build(parsed.config, &error);
    EXPECT_TRUE(built) << error;
    config_ = built.get();
    EXPECT_TRUE(shared_.publish(std::move(built), false, &error)) << error;
    loop_ = std::make_unique<PacketProcessor>(shared_, LinkType::kEthernet);
  }

  struct Out {
    Verdict verdict;
    std::vector<uint8_t> bytes;
    PacketView view;
  };
  Out send(std::vector<uint8_t> p, Direction d, uint32_t now, uint16_t ss = 0) {
    Out out;
    out.verdict = loop_->process(p.data(), p.size(), ss, d, now);
    out.bytes = std::move(p);
    parsePacket(out.bytes.data(), out.bytes.size(), LinkType::kEthernet, out.view);
    return out;
  }
  // Client -> façade.
  Out client(uint8_t flags, uint32_t now, uint16_t port = 40000, uint32_t src = kClient,
             uint32_t dst = kFacade, uint16_t dport = 80, std::string_view payload = {}) {
    TcpPacketSpec s;
    s.src = src;
    s.dst = dst;
    s.srcPort = port;
    s.dstPort = dport;
    s.flags = flags;
    s.payload = payload;
    return send(buildTcp(s), Direction::kEgress, now);
  }
  // Server -> client, as the server sends it.
  std::vector<uint8_t> reply(uint32_t server, uint16_t serverPort, uint8_t flags,
                             uint16_t clientPort = 40000, std::string_view payload = {}) {
    TcpPacketSpec s;
    s.src = server;
    s.dst = kClient;
    s.srcPort = serverPort;
    s.dstPort = clientPort;
    s.flags = flags;
    s.payload = payload;
    return buildTcp(s);
  }
  uint64_t count(Counter c) const { return loop_->counters().get(c); }
  const AppRuntime& app(const char* name) const { return *config_->findApp(name); }

  LocalAffinityStore store_;
  EngineShared shared_;
  const EngineConfig* config_ = nullptr;  // owned by shared_
  std::unique_ptr<PacketProcessor> loop_;
};

TEST_F(ProcessorTest, NonTcpPassesUnchanged) {
  TcpPacketSpec s;
  auto arp = buildTcp(s);
  arp[12] = 0x08;
  arp[13] = 0x06;
  auto udp = buildTcp(s);
  udp[14 + 9] = 17;
  auto v6 = std::vector<uint8_t>(14 + 60, 0);
  v6[12] = 0x86;
  v6[13] = 0xdd;
  v6[14] = 0x60;
  v6[14 + 5] = 20;
  v6[14 + 6] = 6;
  for (auto* p : {&arp, &udp, &v6}) {
    Out o = send(*p, Direction::kEgress, 1);
    EXPECT_EQ(o.verdict, Verdict::kForward);
    EXPECT_EQ(o.bytes, *p);
  }
  EXPECT_EQ(count(Counter::kNonIpPassed), 1u);
  EXPECT_EQ(count(Counter::kNonTcpPassed), 1u);
  EXPECT_EQ(count(Counter::kIpv6Passed), 1u);
  EXPECT_EQ(count(Counter::kTxPackets), 3u);
  EXPECT_EQ(shared_.table.size(), 0u);
}

TEST_F(ProcessorTest, MalformedIsDroppedAndNamed) {
  TcpPacketSpec s;
  auto p = buildTcp(s);
  p[14] = 0x44;  // IHL 4
  EXPECT_EQ(send(p, Direction::kEgress, 1).verdict, Verdict::kDrop);
  EXPECT_EQ(count(Counter::kIpv4BadIhl), 1u);
  p = buildTcp(s);
  p.resize(20);  // cut inside the IPv4 header
  EXPECT_EQ(send(p, Direction::kIngress, 1).verdict, Verdict::kDrop);
  EXPECT_EQ(count(Counter::kIpv4Truncated), 1u);
  EXPECT_EQ(count(Counter::kTxPackets), 0u);
}

TEST_F(ProcessorTest, NewConnectionIsNatedBothWays) {
  Out syn = client(kSyn, 10);
  ASSERT_EQ(syn.verdict, Verdict::kForward);
  EXPECT_EQ(syn.view.dstV4(), kS1);     // round-robin starts at s1
  EXPECT_EQ(syn.view.dstPort(), 8080);  // the server's own port
  EXPECT_EQ(syn.view.srcV4(), kClient);
  EXPECT_EQ(syn.view.srcPort(), 40000);
  EXPECT_TRUE(syn.view.ipv4ChecksumValid());
  EXPECT_TRUE(syn.view.tcpChecksumValid());
  EXPECT_EQ(count(Counter::kSessionsCreated), 1u);
  EXPECT_EQ(app("shop").pool->active(0), 1u);

  // The server answers from its own address; the client must see the façade,
  // byte for byte what the façade itself would have sent.
  Out synAck = send(reply(kS1, 8080, kSyn | kAck), Direction::kIngress, 10);
  ASSERT_EQ(synAck.verdict, Verdict::kForward);
  TcpPacketSpec expected;
  expected.src = kFacade;
  expected.dst = kClient;
  expected.srcPort = 80;
  expected.dstPort = 40000;
  expected.flags = kSyn | kAck;
  EXPECT_EQ(synAck.bytes, buildTcp(expected));
  EXPECT_EQ(count(Counter::kIngressUnnat), 1u);

  // Fast path: later packets go to the same server.
  for (int i = 0; i < 3; ++i) {
    Out data = client(kAck | kPsh, 11, 40000, kClient, kFacade, 80, "GET / HTTP/1.1\r\n\r\n");
    EXPECT_EQ(data.view.dstV4(), kS1);
    EXPECT_TRUE(data.view.tcpChecksumValid());
  }
  EXPECT_EQ(count(Counter::kEgressNat), 4u);
  EXPECT_EQ(count(Counter::kSessionsCreated), 1u);
}

TEST_F(ProcessorTest, IngressMissPassesUnchanged) {
  auto p = reply(kS2, 8080, kAck);
  Out o = send(p, Direction::kIngress, 1);
  EXPECT_EQ(o.verdict, Verdict::kForward);
  EXPECT_EQ(o.bytes, p);
  EXPECT_EQ(count(Counter::kIngressMissPassed), 1u);
}

TEST_F(ProcessorTest, NonApplicationFlowHasAFixedFiveMinuteAge) {
  Out first = client(kSyn, 100, 40000, kClient, kOther);
  EXPECT_EQ(first.verdict, Verdict::kForward);
  EXPECT_EQ(first.view.dstV4(), kOther);  // unchanged
  EXPECT_EQ(count(Counter::kFlowsCreated), 1u);
  client(kAck, 200, 40000, kClient, kOther);
  client(kAck, 399, 40000, kClient, kOther);  // a hit: no new entry, no refresh
  EXPECT_EQ(count(Counter::kFlowsCreated), 1u);
  EXPECT_EQ(count(Counter::kFlowPassed), 3u);
  client(kAck, 400, 40000, kClient, kOther);  // 300 s after creation: gone
  EXPECT_EQ(count(Counter::kFlowsCreated), 2u);
  // The wrong port of a façade is not the application either.
  Out wrongPort = client(kSyn, 400, 40001, kClient, kFacade, 81);
  EXPECT_EQ(wrongPort.view.dstV4(), kFacade);
  EXPECT_EQ(count(Counter::kFlowsCreated), 3u);
}

TEST_F(ProcessorTest, ApplicationMatchUsesTheServiceSet) {
  TcpPacketSpec s;
  s.flags = kSyn;
  auto p = buildTcp(s);
  Out o = send(p, Direction::kEgress, 1, /*ss=*/1);  // "lab" has no application
  EXPECT_EQ(o.bytes, p);
  EXPECT_EQ(count(Counter::kFlowsCreated), 1u);
  EXPECT_EQ(count(Counter::kSessionsCreated), 0u);
}

TEST_F(ProcessorTest, NonSynWithoutSessionIsDropped) {
  EXPECT_EQ(client(kAck, 1).verdict, Verdict::kDrop);
  EXPECT_EQ(client(kSyn | kAck, 1).verdict, Verdict::kDrop);
  EXPECT_EQ(count(Counter::kDropNotSyn), 2u);
  EXPECT_EQ(shared_.table.size(), 0u);
}

TEST_F(ProcessorTest, NoEligibleServerDropsTheSyn) {
  app("shop").pool->setUp(0, false);
  app("shop").pool->setDraining(1, true);
  EXPECT_EQ(client(kSyn, 1).verdict, Verdict::kDrop);
  EXPECT_EQ(count(Counter::kDropNoServer), 1u);
  EXPECT_EQ(shared_.table.size(), 0u);
  app("shop").pool->setDraining(1, false);
  Out o = client(kSyn, 2);
  EXPECT_EQ(o.verdict, Verdict::kForward);
  EXPECT_EQ(o.view.dstV4(), kS2);
}

TEST_F(ProcessorTest, BothFinsEndTheSessionAfterTimeWait) {
  client(kSyn, 10);
  send(reply(kS1, 8080, kSyn | kAck), Direction::kIngress, 10);
  client(kAck, 10);
  client(kFin | kAck, 20);
  send(reply(kS1, 8080, kFin | kAck), Direction::kIngress, 21);
  client(kAck, 21);
  EXPECT_EQ(app("shop").pool->active(0), 1u);
  const uint32_t timeWait = config_->timeouts().timeWait;
  EXPECT_EQ(loop_->expireAll(21 + timeWait - 1), 0u);
  EXPECT_EQ(loop_->expireAll(21 + timeWait), 1u);
  EXPECT_EQ(shared_.table.size(), 0u);
  EXPECT_EQ(app("shop").pool->active(0), 0u);
  EXPECT_EQ(count(Counter::kSessionsExpired), 1u);
}

TEST_F(ProcessorTest, ResetEndsTheSessionAfterItsShortTimeout) {
  client(kSyn, 10);
  send(reply(kS1, 8080, kRst | kAck), Direction::kIngress, 11);
  // Retransmitted RSTs do not keep it alive.
  send(reply(kS1, 8080, kRst | kAck), Direction::kIngress, 15);
  EXPECT_EQ(loop_->expireAll(11 + config_->timeouts().closed), 1u);
  EXPECT_EQ(app("shop").pool->active(0), 0u);
}

TEST_F(ProcessorTest, EstablishedSessionsLiveForTheSessionTimeout) {
  client(kSyn, 0);
  send(reply(kS1, 8080, kSyn | kAck), Direction::kIngress, 0);
  client(kAck, 1);
  EXPECT_EQ(loop_->expireAll(1 + 899), 0u);
  EXPECT_EQ(client(kAck, 900).view.dstV4(), kS1);  // refreshed to 1800
  EXPECT_EQ(loop_->expireAll(1799), 0u);
  EXPECT_EQ(loop_->expireAll(1800), 1u);
}

TEST_F(ProcessorTest, SynOnAClosedSessionStartsANewOne) {
  client(kSyn, 10);
  client(kRst, 11);
  Out again = client(kSyn, 12);  // same client port, a new connection
  EXPECT_EQ(again.verdict, Verdict::kForward);
  EXPECT_EQ(again.view.dstV4(), kS2);  // a fresh round-robin pick
  EXPECT_EQ(count(Counter::kSessionsReopened), 1u);
  EXPECT_EQ(app("shop").pool->active(0), 0u);
  EXPECT_EQ(app("shop").pool->active(1), 1u);
  // A retransmitted SYN on a live session is not a new connection.
  client(kSyn, 13);
  EXPECT_EQ(count(Counter::kSessionsCreated), 2u);
}

TEST_F(ProcessorTest, PersistenceKeepsAClientOnOneServer) {
  constexpr uint32_t kSticky = ip4(198, 18, 0, 20);
  uint32_t first = client(kSyn, 1, 1000, kClient, kSticky, 443).view.dstV4();
  for (uint16_t port = 1001; port < 1010; ++port)
    EXPECT_EQ(client(kSyn, 1, port, kClient, kSticky, 443).view.dstV4(), first);
  EXPECT_EQ(count(Counter::kPersistenceHits), 9u);
  // Each client has its own mapping: over many clients both servers are used,
  // and each keeps its own.
  std::map<uint8_t, uint32_t> mapped;
  std::set<uint32_t> used;
  for (uint8_t c = 2; c < 12; ++c) {
    mapped[c] = client(kSyn, 1, 1000, ip4(198, 18, 0, c), kSticky, 443).view.dstV4();
    used.insert(mapped[c]);
  }
  EXPECT_EQ(used.size(), 2u);
  for (auto [c, server] : mapped)
    EXPECT_EQ(client(kSyn, 1, 1001, ip4(198, 18, 0, c), kSticky, 443).view.dstV4(), server);
  // The persisted server goes down: new connections go elsewhere, counted.
  const AppRuntime& sticky = app("sticky");
  uint32_t idx = sticky.serverAddress[0] == first ? 0 : 1;
  sticky.pool->setUp(idx, false);
  EXPECT_NE(client(kSyn, 2, 2000, kClient, kSticky, 443).view.dstV4(), first);
  EXPECT_EQ(count(Counter::kPersistenceOverrides), 1u);
  // Back up: the mapping held.
  sticky.pool->setUp(idx, true);
  EXPECT_EQ(client(kSyn, 3, 2001, kClient, kSticky, 443).view.dstV4(), first);
}

TEST_F(ProcessorTest, BurstGivesTheSameResultsAsSinglePackets) {
  std::vector<std::vector<uint8_t>> packets;
  for (uint16_t i = 0; i < 40; ++i) {  // more than one burst
    TcpPacketSpec s;
    s.srcPort = static_cast<uint16_t>(5000 + i);
    s.flags = kSyn;
    packets.push_back(buildTcp(s));
  }
  packets.push_back(std::vector<uint8_t>(10, 0));  // runt
  std::vector<PacketRef> refs;
  for (auto& p : packets)
    refs.push_back({p.data(), static_cast<uint32_t>(p.size()), 0, Direction::kEgress});
  loop_->processBurst(refs.data(), refs.size(), 1);
  for (size_t i = 0; i < 40; ++i) {
    PacketView v;
    ASSERT_EQ(parsePacket(packets[i].data(), packets[i].size(), LinkType::kEthernet, v),
              ParseStatus::kTcpIpv4);
    EXPECT_EQ(refs[i].verdict, Verdict::kForward);
    EXPECT_EQ(v.dstV4(), i % 2 == 0 ? kS1 : kS2);
    EXPECT_TRUE(v.tcpChecksumValid());
  }
  EXPECT_EQ(refs[40].verdict, Verdict::kDrop);
  EXPECT_EQ(count(Counter::kSessionsCreated), 40u);
  EXPECT_EQ(count(Counter::kEthernetTruncated), 1u);
}

class SmallTableTest : public ProcessorTest {
 protected:
  SmallTableTest() : ProcessorTest(8) {}
};

TEST_F(SmallTableTest, FullTableDropsNewConnectionsAndLimitsFlows) {
  // Flows may take a quarter of the table (2 of 8).
  for (uint16_t p = 0; p < 4; ++p) client(kSyn, 1, static_cast<uint16_t>(100 + p), kClient, kOther);
  EXPECT_EQ(count(Counter::kFlowsCreated), 2u);
  EXPECT_EQ(count(Counter::kFlowTableFullPassed), 2u);
  for (uint16_t p = 0; p < 6; ++p)
    EXPECT_EQ(client(kSyn, 1, static_cast<uint16_t>(1000 + p)).verdict, Verdict::kForward);
  Out o = client(kSyn, 1, 2000);
  EXPECT_EQ(o.verdict, Verdict::kDrop);
  EXPECT_EQ(count(Counter::kDropTableFull), 1u);
  EXPECT_EQ(app("shop").pool->active(0) + app("shop").pool->active(1), 6u);
  // Ageing frees room; the client's retried SYN then gets through.
  loop_->expireAll(1 + config_->timeouts().synSent);
  EXPECT_EQ(client(kSyn, 40, 2000).verdict, Verdict::kForward);
}

TEST_F(ProcessorTest, EgressAndIngressOnTwoLoopsAtOnce) {
  // One loop sees client packets, the other the server's, as with TUN queues.
  PacketProcessor other(shared_, LinkType::kEthernet);
  constexpr int kConnections = 500;
  std::vector<uint32_t> serverOf(kConnections);
  for (int i = 0; i < kConnections; ++i)
    serverOf[i] = client(kSyn, 1, static_cast<uint16_t>(10000 + i)).view.dstV4();
  std::thread egressLoop([&] {
    for (int round = 0; round < 20; ++round)
      for (int i = 0; i < kConnections; ++i) {
        Out o = client(kAck, 2, static_cast<uint16_t>(10000 + i));
        ASSERT_EQ(o.view.dstV4(), serverOf[i]);
      }
  });
  for (int round = 0; round < 20; ++round)
    for (int i = 0; i < kConnections; ++i) {
      auto p = reply(serverOf[i], 8080, kAck, static_cast<uint16_t>(10000 + i));
      ASSERT_EQ(other.process(p.data(), p.size(), 0, Direction::kIngress, 2), Verdict::kForward);
      PacketView v;
      parsePacket(p.data(), p.size(), LinkType::kEthernet, v);
      ASSERT_EQ(v.srcV4(), kFacade);
    }
  egressLoop.join();
  EXPECT_EQ(other.counters().get(Counter::kIngressUnnat), 20u * kConnections);
  EXPECT_EQ(shared_.table.size(), static_cast<uint32_t>(kConnections));
}

}  // namespace
}  // namespace fulcrum

namespace fulcrum {
namespace {

std::unique_ptr<EngineConfig> buildConfig(const std::string& text) {
  ConfigResult parsed = parseConfig(text);
  EXPECT_TRUE(parsed.ok()) << (parsed.error ? parsed.error->toString() : "");
  std::string error;
  auto built = EngineConfig::build(parsed.config, &error);
  EXPECT_TRUE(built) << error;
  return built;
}

// The same application with s1 removed, s3 added and s2 kept.
constexpr const char* kSwapped = R"(
set service-set web inside-interface in0 outside-interface out0
set application shop service-set web facade 198.18.0.10 port 80 algorithm round-robin
set application shop server s3 address 198.18.1.13 port 8080
set application shop server s2 address 198.18.1.12 port 8080
)";

class SwapTest : public ProcessorTest {
 protected:
  void publish(const std::string& text) {
    std::string error;
    ASSERT_TRUE(shared_.publish(buildConfig(text), true, &error)) << error;
  }
  const AppRuntime& current(const char* name) const { return *shared_.current()->findApp(name); }
};

TEST_F(SwapTest, SessionsOutliveTheirConfigurationAndCountsCarryOver) {
  // Two sessions, one on each server, made under the first configuration.
  EXPECT_EQ(client(kSyn, 1, 1000).view.dstV4(), kS1);
  EXPECT_EQ(client(kSyn, 1, 1001).view.dstV4(), kS2);
  publish(kSwapped);
  const AppRuntime& shop = current("shop");
  EXPECT_EQ(shop.counters.sessionsCreated.load(), 2u);  // counters carry over too
  EXPECT_EQ(shop.pool->active(static_cast<uint32_t>(shop.serverIndex("s2"))), 1u);
  EXPECT_EQ(shop.pool->active(static_cast<uint32_t>(shop.serverIndex("s3"))), 0u);
  // Existing sessions keep their servers, even s1 that left the configuration.
  EXPECT_EQ(client(kAck, 2, 1000).view.dstV4(), kS1);
  EXPECT_EQ(client(kAck, 2, 1001).view.dstV4(), kS2);
  Out back = send(reply(kS1, 8080, kSyn | kAck, 1000), Direction::kIngress, 2);
  EXPECT_EQ(back.view.srcV4(), kFacade);
  // New sessions use the new configuration.
  uint32_t fresh = client(kSyn, 3, 1002).view.dstV4();
  EXPECT_TRUE(fresh == ip4(198, 18, 1, 13) || fresh == kS2);
  // The old configuration is kept while its sessions live...
  EXPECT_EQ(shared_.reclaim(), 2u);
  // ...and every count returns to zero when they end, in the new pools.
  client(kRst, 4, 1000);
  client(kRst, 4, 1001);
  client(kRst, 4, 1002);
  loop_->expireAll(4 + config_->timeouts().closed);
  EXPECT_EQ(shared_.table.size(), 0u);
  for (uint32_t i = 0; i < shop.pool->size(); ++i) EXPECT_EQ(shop.pool->active(i), 0u) << i;
  loop_->idle();  // a quiescent point: the loop holds no old pointer
  EXPECT_EQ(shared_.reclaim(), 1u);
}

TEST_F(SwapTest, ServerStatesCarryOverWhenAsked) {
  const AppRuntime& before = *config_->findApp("shop");
  before.pool->setDraining(1, true);
  publish(kSwapped);
  const AppRuntime& shop = current("shop");
  EXPECT_TRUE(shop.pool->isDraining(static_cast<uint32_t>(shop.serverIndex("s2"))));
  EXPECT_EQ(client(kSyn, 1, 1000).view.dstV4(), ip4(198, 18, 1, 13));
}

TEST_F(SwapTest, ApplicationRemovedThenTrafficPasses) {
  client(kSyn, 1, 1000);
  publish("set service-set web inside-interface in0 outside-interface out0\n");
  EXPECT_EQ(client(kAck, 2, 1000).view.dstV4(), kS1);  // the old session still works
  Out o = client(kSyn, 2, 1001);
  EXPECT_EQ(o.view.dstV4(), kFacade);  // no application: passed unchanged
  EXPECT_EQ(count(Counter::kFlowsCreated), 1u);
}

TEST(NoConfiguration, EverythingPassesUnchanged) {
  LocalAffinityStore store(64);
  EngineShared shared(64, store);
  PacketProcessor loop(shared, LinkType::kEthernet);
  TcpPacketSpec s;
  s.flags = kSyn;
  auto p = buildTcp(s);
  auto copy = p;
  EXPECT_EQ(loop.process(p.data(), p.size(), 0, Direction::kEgress, 1), Verdict::kForward);
  EXPECT_EQ(p, copy);
  TcpPacketSpec fromServer;
  fromServer.src = kS1;
  fromServer.dst = kClient;
  fromServer.srcPort = 8080;
  fromServer.dstPort = 40000;
  auto r = buildTcp(fromServer);
  copy = r;
  EXPECT_EQ(loop.process(r.data(), r.size(), 0, Direction::kIngress, 1), Verdict::kForward);
  EXPECT_EQ(r, copy);
}

TEST(ConfigurationSwaps, UnderTrafficCountsStayExact) {
  // Two loops make and end sessions while the control thread swaps
  // configurations; at the end every server count is zero.
  LocalAffinityStore store(1024);
  EngineShared shared(1 << 14, store);
  std::string error;
  ASSERT_TRUE(shared.publish(buildConfig(kConfig), true, &error));
  std::atomic<bool> stop{false};
  auto work = [&](uint32_t base) {
    PacketProcessor loop(shared, LinkType::kEthernet);
    for (uint32_t round = 0; !stop.load() && round < 200; ++round) {
      for (uint16_t i = 0; i < 50; ++i) {
        TcpPacketSpec s;
        s.src = base;
        s.srcPort = static_cast<uint16_t>(1000 + i);
        s.flags = kSyn;
        auto p = buildTcp(s);
        loop.process(p.data(), p.size(), 0, Direction::kEgress, round);
        s.flags = kRst;
        p = buildTcp(s);
        loop.process(p.data(), p.size(), 0, Direction::kEgress, round);
      }
      loop.expireStep(round + 20, 1u << 12);
    }
    loop.expireAll(100000);
  };
  std::thread a(work, ip4(198, 18, 0, 1)), b(work, ip4(198, 18, 0, 2));
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(shared.publish(buildConfig(i % 2 ? kConfig : kSwapped), true, &error));
    shared.reclaim();
  }
  stop = true;
  a.join();
  b.join();
  EXPECT_EQ(shared.table.size(), 0u);
  for (const auto& app : shared.current()->apps())
    for (uint32_t i = 0; i < app->pool->size(); ++i) EXPECT_EQ(app->pool->active(i), 0u);
  EXPECT_EQ(shared.reclaim(), 1u);  // only the current configuration is left
}

}  // namespace
}  // namespace fulcrum

namespace fulcrum {
namespace {

// Review findings, kept as regressions.
class ReviewTest : public ProcessorTest {
 protected:
  void publish(const std::string& text) {
    std::string error;
    ASSERT_TRUE(shared_.publish(buildConfig(text), true, &error)) << error;
  }
};

constexpr const char* kLimited = R"(
set service-set web inside-interface in0 outside-interface out0
set application shop service-set web facade 198.18.0.10 port 80 algorithm round-robin
set application shop server s1 address 198.18.1.11 port 8080 max-connections 1
set application shop server s2 address 198.18.1.12 port 8080
)";

TEST_F(ReviewTest, ServerRemovedAndAddedAgainKeepsAnExactCount) {
  publish(kLimited);
  EXPECT_EQ(client(kSyn, 1, 1000).view.dstV4(), kS1);  // counted on s1's first presence
  publish(kSwapped);                                   // s1 leaves
  publish(kLimited);                                   // s1 is back, counting from zero
  const AppRuntime& shop = *shared_.current()->findApp("shop");
  const auto s1 = static_cast<uint32_t>(shop.serverIndex("s1"));
  EXPECT_EQ(shop.pool->active(s1), 0u);
  uint32_t got = 0;
  for (uint16_t p = 1001; p < 1004 && got != kS1; ++p) got = client(kSyn, 2, p).view.dstV4();
  ASSERT_EQ(got, kS1);
  EXPECT_EQ(shop.pool->active(s1), 1u);
  // The session from s1's earlier presence ends: it must not take the new one's count.
  client(kRst, 3, 1000);
  loop_->expireAll(3 + config_->timeouts().closed);
  EXPECT_EQ(shop.pool->active(s1), 1u);
  EXPECT_FALSE(shop.pool->isEligible(s1));  // still at its max-connections of 1
}

TEST_F(ReviewTest, FlowEntryDoesNotHideANewApplication) {
  constexpr uint32_t kNew = ip4(198, 18, 0, 30);
  EXPECT_EQ(client(kSyn, 1, 1000, kClient, kNew).view.dstV4(), kNew);  // no application yet
  publish(std::string(kConfig) +
          "set application late service-set web facade 198.18.0.30 port 80\n"
          "set application late server l1 address 198.18.1.31\n");
  // The client's retransmitted SYN on the same tuple now reaches the application.
  EXPECT_EQ(client(kSyn, 2, 1000, kClient, kNew).view.dstV4(), ip4(198, 18, 1, 31));
  // Packets of an established non-application flow are still just passed.
  EXPECT_EQ(client(kAck, 2, 1001, kClient, kOther).view.dstV4(), kOther);
}

TEST_F(ReviewTest, ResetFromOneLoopIsNotUndoneByTheOther) {
  // Client ACKs on one loop race the server's RSTs on another; every session
  // must end with the closed timeout, not the established one. The table is
  // small, so each round makes fresh sessions on fresh ports.
  PacketProcessor other(shared_, LinkType::kEthernet);
  constexpr uint16_t kSessions = 200;
  for (uint16_t round = 0; round < 40; ++round) {
    const auto base = static_cast<uint16_t>(3000 + round * kSessions);
    const uint32_t now = 10u + round * 20u;
    std::vector<uint32_t> serverOf(kSessions);
    for (uint16_t i = 0; i < kSessions; ++i) {
      serverOf[i] = client(kSyn, now, static_cast<uint16_t>(base + i)).view.dstV4();
      client(kAck, now, static_cast<uint16_t>(base + i));
    }
    std::thread acks([&] {
      for (uint16_t i = 0; i < kSessions; ++i) client(kAck, now, static_cast<uint16_t>(base + i));
    });
    for (uint16_t i = 0; i < kSessions; ++i) {
      auto p = reply(serverOf[i], 8080, kRst | kAck, static_cast<uint16_t>(base + i));
      other.process(p.data(), p.size(), 0, Direction::kIngress, now);
    }
    acks.join();
    loop_->expireAll(now + config_->timeouts().closed);
    ASSERT_EQ(shared_.table.size(), 0u) << "round " << round;
  }
}

}  // namespace
}  // namespace fulcrum
