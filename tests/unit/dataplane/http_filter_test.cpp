// The HTTP request filter (data-plane/http/http_filter.h) and its state
// (http_flow.h): SeqAdjust and HttpFlowPool on their own, then whole TCP
// connections driven through PacketProcessor, packet by packet. Every packet
// the processor forwards is checked against checksums computed from scratch,
// and most against a packet built from scratch, byte for byte.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "data-plane/http/http_filter.h"
#include "data-plane/http/http_flow.h"
#include "data-plane/processor.h"
#include "shared/config/config_parser.h"
#include "tests/common/packet_builder.h"

namespace fulcrum {
namespace {

using testing::buildTcp;
using testing::ip4;
using testing::TcpPacketSpec;
using namespace tcpflag;

// ---------------------------------------------------------------------------
// SeqAdjust

TEST(SeqAdjust, ShiftAtCountsRewritesEndingAtOrBefore) {
  SeqAdjust a;
  EXPECT_EQ(a.shiftAt(12345), 0);
  EXPECT_FALSE(a.lengthChanged());
  ASSERT_TRUE(a.add({100, 11, 16}, 0, false));  // +5, client bytes [100, 111)
  ASSERT_TRUE(a.add({200, 15, 10}, 0, false));  // -5, client bytes [200, 215)
  EXPECT_TRUE(a.lengthChanged());
  EXPECT_EQ(a.shiftAt(50), 0);
  EXPECT_EQ(a.shiftAt(100), 0);
  EXPECT_EQ(a.shiftAt(110), 0);
  EXPECT_EQ(a.shiftAt(111), 5);
  EXPECT_EQ(a.shiftAt(200), 5);
  EXPECT_EQ(a.shiftAt(214), 5);
  EXPECT_EQ(a.shiftAt(215), 0);
  EXPECT_EQ(a.shiftAt(100000), 0);
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(a.rewrite(1).clientEnd(), 215u);
  EXPECT_EQ(a.rewrite(1).change(), -5);
}

TEST(SeqAdjust, SameLengthRewritesChangeNoLength) {
  SeqAdjust a;
  ASSERT_TRUE(a.add({100, 11, 11}, 0, false));
  EXPECT_FALSE(a.lengthChanged());
  EXPECT_EQ(a.shiftAt(500), 0);
  ASSERT_TRUE(a.add({300, 11, 12}, 0, false));
  EXPECT_TRUE(a.lengthChanged());
}

TEST(SeqAdjust, ToClientMapsServerNumbersBack) {
  SeqAdjust a;
  ASSERT_TRUE(a.add({100, 11, 16}, 0, false));  // server [100, 116)
  ASSERT_TRUE(a.add({200, 15, 10}, 0, false));  // server [205, 215)
  struct {
    uint32_t server;
    uint32_t down, up;  // roundUp false, true
  } const table[] = {
      {50, 50, 50},                      // before everything
      {100, 100, 100},                   // the first value's start
      {101, 100, 111},                   // inside the first value
      {115, 100, 111},                   // its last byte
      {116, 111, 111},                   // just after it
      {150, 145, 145},                   // between the values
      {205, 200, 200},                   // the second value's start
      {206, 200, 215},                   // inside the second value
      {214, 200, 215}, {215, 215, 215},  // just after it
      {300, 300, 300},                   // after both: +5 -5
  };
  for (const auto& row : table) {
    EXPECT_EQ(a.toClient(row.server, false), row.down) << row.server;
    EXPECT_EQ(a.toClient(row.server, true), row.up) << row.server;
  }
}

TEST(SeqAdjust, FullHistoryFoldsOnlyWhatTheServerAcknowledged) {
  SeqAdjust a;
  for (uint32_t i = 0; i < SeqAdjust::kMaxRewrites; ++i)
    ASSERT_TRUE(a.add({1000 + 100 * i, 11, 16}, 0, false));
  const HostRewrite ninth{2000, 11, 16};
  // Server space: rewrite i spans [1000 + 105 i, 1000 + 105 i + 16).
  EXPECT_FALSE(a.add(ninth, 0, false));           // nothing acknowledged yet
  EXPECT_FALSE(a.add(ninth, 1015, true));         // one byte short of the first value's end
  EXPECT_FALSE(a.add(ninth, 1000 + 2, true));     // inside the first value
  EXPECT_EQ(a.count(), SeqAdjust::kMaxRewrites);  // unchanged by the refusals
  EXPECT_EQ(a.base(), 0);
  EXPECT_EQ(a.shiftAt(2000), 40);

  EXPECT_TRUE(a.add(ninth, 1016, true));  // the first value acknowledged: folded
  EXPECT_EQ(a.count(), SeqAdjust::kMaxRewrites);
  EXPECT_EQ(a.base(), 5);
  EXPECT_EQ(a.rewrite(0).clientSeq, 1100u);
  EXPECT_EQ(a.rewrite(a.count() - 1).clientSeq, 2000u);
  // Shifts after the folded rewrite are what they were.
  EXPECT_EQ(a.shiftAt(1011), 5);
  EXPECT_EQ(a.shiftAt(1111), 10);
  EXPECT_EQ(a.shiftAt(2011), 45);
  EXPECT_EQ(a.toClient(2040 + 16, false), 2011u);
  EXPECT_EQ(a.toClient(1105 + 3, true), 1111u);  // inside the second value, still known

  // Three more acknowledged at once: rewrites 1100, 1200, 1300 end at 1121,
  // 1226, 1331 in server space.
  EXPECT_TRUE(a.add({2100, 11, 16}, 1331, true));
  EXPECT_EQ(a.count(), SeqAdjust::kMaxRewrites - 3 + 1);
  EXPECT_EQ(a.base(), 20);
  EXPECT_EQ(a.rewrite(0).clientSeq, 1400u);
  EXPECT_EQ(a.shiftAt(2111), 50);
  // Not full: an unacknowledged add is fine.
  EXPECT_TRUE(a.add({2200, 11, 16}, 0, false));
  EXPECT_TRUE(a.add({2300, 11, 16}, 0, false));
  EXPECT_EQ(a.count(), SeqAdjust::kMaxRewrites);
  EXPECT_FALSE(a.add({2400, 11, 16}, 1331, true));  // nothing new acknowledged
}

TEST(SeqAdjust, SequenceNumbersWrapAround) {
  SeqAdjust a;
  // Client bytes [0xfffffffa, 5) after the wrap, +5.
  ASSERT_TRUE(a.add({0xfffffffau, 11, 16}, 0, false));
  EXPECT_EQ(a.rewrite(0).clientEnd(), 5u);
  EXPECT_EQ(a.shiftAt(0xfffffff0u), 0);
  EXPECT_EQ(a.shiftAt(0xfffffffau), 0);
  EXPECT_EQ(a.shiftAt(4), 0);
  EXPECT_EQ(a.shiftAt(5), 5);
  EXPECT_EQ(a.shiftAt(1000), 5);
  // Server bytes of the value: [0xfffffffa, 10).
  EXPECT_EQ(a.toClient(0xfffffff0u, false), 0xfffffff0u);
  EXPECT_EQ(a.toClient(0xffffffffu, false), 0xfffffffau);
  EXPECT_EQ(a.toClient(0xffffffffu, true), 5u);
  EXPECT_EQ(a.toClient(3, true), 5u);
  EXPECT_EQ(a.toClient(10, false), 5u);
  EXPECT_EQ(a.toClient(100, false), 95u);
  // A second rewrite after the wrap, and folding across it.
  ASSERT_TRUE(a.add({20, 11, 16}, 0, false));
  EXPECT_EQ(a.shiftAt(31), 10);
  for (uint32_t i = 2; i < SeqAdjust::kMaxRewrites; ++i)
    ASSERT_TRUE(a.add({100 * i, 11, 16}, 0, false));
  EXPECT_FALSE(a.add({5000, 11, 16}, 9, true));  // inside the first value
  EXPECT_TRUE(a.add({5000, 11, 16}, 10, true));  // its end, after the wrap
  EXPECT_EQ(a.base(), 5);
  EXPECT_EQ(a.shiftAt(31), 10);
}

// ---------------------------------------------------------------------------
// HttpFlowPool

TEST(HttpFlowPool, SlotsStartAtOneAndRunOut) {
  HttpFlowPool pool(3);
  EXPECT_EQ(pool.capacity(), 3u);
  EXPECT_EQ(pool.inUse(), 0u);
  EXPECT_EQ(pool.allocate(), 1u);
  EXPECT_EQ(pool.allocate(), 2u);
  EXPECT_EQ(pool.allocate(), 3u);
  EXPECT_EQ(pool.allocate(), 0u);
  EXPECT_EQ(pool.allocate(), 0u);
  EXPECT_EQ(pool.inUse(), 3u);
  EXPECT_NE(&pool.at(1), &pool.at(2));
  EXPECT_NE(&pool.at(2), &pool.at(3));
}

TEST(HttpFlowPool, ReleasedSlotsAreReused) {
  HttpFlowPool pool(3);
  for (int i = 0; i < 3; ++i) pool.allocate();
  HttpFlow& two = pool.at(2);
  two.reset(5000);
  EXPECT_EQ(two.nextSeq, 5001u);
  two.parser.feed(reinterpret_cast<const uint8_t*>("GET / HTTP/1.1\r\n\r\n"), 18,
                  [](const HttpRequestHead&) {});
  EXPECT_EQ(two.parser.requests(), 1u);
  two.adjust.add({5001, 11, 16}, 0, false);
  two.stopped = true;
  pool.release(2);
  EXPECT_EQ(pool.inUse(), 2u);
  EXPECT_EQ(pool.allocate(), 2u);
  EXPECT_EQ(pool.allocate(), 0u);
  pool.at(2).reset(7);
  EXPECT_EQ(pool.at(2).nextSeq, 8u);
  EXPECT_EQ(pool.at(2).parser.requests(), 0u);
  EXPECT_EQ(pool.at(2).adjust.count(), 0u);
  EXPECT_FALSE(pool.at(2).stopped);

  pool.release(1);
  pool.release(3);
  EXPECT_EQ(pool.inUse(), 1u);
  const uint32_t a = pool.allocate(), b = pool.allocate();
  EXPECT_EQ(a + b, 4u);  // 1 and 3, in some order
  EXPECT_NE(a, b);
  EXPECT_EQ(pool.allocate(), 0u);
  // Slots that are not slots are ignored.
  pool.release(0);
  pool.release(4);
  EXPECT_EQ(pool.inUse(), 3u);
  EXPECT_EQ(pool.allocate(), 0u);
}

TEST(HttpFlowPool, EmptyPoolHasNoSlot) {
  HttpFlowPool pool(0);
  EXPECT_EQ(pool.allocate(), 0u);
  EXPECT_EQ(pool.inUse(), 0u);
}

// ---------------------------------------------------------------------------
// The Host value helpers

TEST(HttpHost, NamesFacade) {
  const uint32_t facade = ip4(198, 18, 0, 10);
  EXPECT_TRUE(hostNamesFacade("198.18.0.10", facade, 80));
  EXPECT_TRUE(hostNamesFacade("198.18.0.10:80", facade, 80));
  EXPECT_TRUE(hostNamesFacade("198.18.0.10:8000", facade, 8000));
  EXPECT_TRUE(hostNamesFacade("198.18.0.10", facade, 8000));
  EXPECT_FALSE(hostNamesFacade("198.18.0.10:81", facade, 80));
  EXPECT_FALSE(hostNamesFacade("198.18.0.10:080", facade, 80));
  EXPECT_FALSE(hostNamesFacade("198.18.0.10:", facade, 80));
  EXPECT_FALSE(hostNamesFacade("198.18.0.100", facade, 80));
  EXPECT_FALSE(hostNamesFacade("198.18.0.1", facade, 80));
  EXPECT_FALSE(hostNamesFacade("other.example", facade, 80));
  EXPECT_FALSE(hostNamesFacade("", facade, 80));
  char out[24];
  EXPECT_EQ(std::string(out, serverHostValue(ip4(198, 18, 1, 11), 8080, out)), "198.18.1.11:8080");
  EXPECT_EQ(std::string(out, serverHostValue(ip4(10, 0, 0, 1), 80, out)), "10.0.0.1");
  EXPECT_EQ(std::string(out, serverHostValue(ip4(255, 255, 255, 255), 65535, out)),
            "255.255.255.255:65535");
  EXPECT_EQ(std::string(out, serverHostValue(0, 1, out)), "0.0.0.0:1");
}

// ---------------------------------------------------------------------------
// Whole connections through PacketProcessor

constexpr uint32_t kClient = ip4(198, 18, 0, 1);
constexpr uint32_t kShop = ip4(198, 18, 0, 10);  // -> s1 198.18.1.11:8080, value +5
constexpr uint32_t kS1 = ip4(198, 18, 1, 11);
constexpr uint32_t kSame = ip4(198, 18, 0, 20);  // -> s2 198.18.1.21 port 80, same length
constexpr uint32_t kS2 = ip4(198, 18, 1, 21);
constexpr uint32_t kShrink = ip4(198, 18, 100, 100);  // -> s3 198.18.1.5 port 80, -4
constexpr uint32_t kS3 = ip4(198, 18, 1, 5);
constexpr uint32_t kAlt = ip4(198, 18, 0, 30);  // port 8000 -> s4 198.18.1.31:8080
constexpr uint32_t kS4 = ip4(198, 18, 1, 31);
constexpr uint32_t kPlain = ip4(198, 18, 0, 40);  // http-filter off
constexpr const char* kShopHost = "198.18.0.10";
constexpr const char* kS1Host = "198.18.1.11:8080";

constexpr const char* kConfig = R"(
set service-set web inside-interface in0 outside-interface out0
set application shop service-set web facade 198.18.0.10 port 80 algorithm round-robin
set application shop http-filter on
set application shop server s1 address 198.18.1.11 port 8080
set application same service-set web facade 198.18.0.20 port 80 algorithm round-robin
set application same http-filter on
set application same server s2 address 198.18.1.21 port 80
set application shrink service-set web facade 198.18.100.100 port 80 algorithm round-robin
set application shrink http-filter on
set application shrink server s3 address 198.18.1.5 port 80
set application alt service-set web facade 198.18.0.30 port 8000 algorithm round-robin
set application alt http-filter on
set application alt server s4 address 198.18.1.31 port 8080
set application plain service-set web facade 198.18.0.40 port 80 algorithm round-robin
set application plain server p1 address 198.18.1.41 port 8080
)";

constexpr size_t kRoom = 512;  // spare buffer bytes after each packet

std::string request(const std::string& path, const std::string& host,
                    const std::string& method = "GET") {
  return method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: unit\r\n\r\n";
}

// The folded, uncomplemented pseudo-header sum a partial checksum holds.
uint16_t pseudoHeaderSum(uint32_t src, uint32_t dst, size_t segmentLength) {
  return checksum::fold(uint64_t{src >> 16} + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + 6 +
                        segmentLength);
}

// Replaces a from-scratch TCP checksum with the partial sum offload leaves.
void makePartial(std::vector<uint8_t>& p) {
  PacketView v;
  ASSERT_EQ(parsePacket(p.data(), p.size(), LinkType::kEthernet, v), ParseStatus::kTcpIpv4);
  checksum::store16(v.tcpChecksumField(),
                    pseudoHeaderSum(v.srcV4(), v.dstV4(), v.tcpSegmentLength()));
}

// A SACK option after `nops` NOPs (1: edges at odd offsets, 2: even).
std::vector<uint8_t> sackOption(const std::vector<std::pair<uint32_t, uint32_t>>& blocks,
                                int nops = 1) {
  std::vector<uint8_t> o(static_cast<size_t>(nops), 1);
  o.push_back(5);
  o.push_back(static_cast<uint8_t>(2 + 8 * blocks.size()));
  for (auto [left, right] : blocks)
    for (uint32_t edge : {left, right}) {
      uint8_t b[4];
      checksum::store32(b, edge);
      o.insert(o.end(), b, b + 4);
    }
  return o;
}

struct Emitted {
  Verdict verdict = Verdict::kDrop;
  std::vector<uint8_t> bytes;  // the frame as it leaves, at its new length
  PacketView view;             // over `bytes` (moving an Emitted keeps it valid)

  Emitted() = default;
  Emitted(Emitted&&) = default;
  Emitted& operator=(Emitted&&) = default;
  std::string payload() const {
    return {reinterpret_cast<const char*>(view.payload), view.payloadLength};
  }
};

// One client connection, as both ends see it.
struct Conn {
  uint32_t facade = kShop;
  uint16_t facadePort = 80;
  uint16_t clientPort = 40000;
  uint32_t clientIsn = 1000;
  uint32_t serverIsn = 700000;
  bool partial = false;  // packets carry offload's partial checksum
  uint32_t server = 0;   // learnt from the SYN
  uint16_t serverPort = 0;
  uint32_t data() const { return clientIsn + 1; }  // the first payload byte's number
};

class HttpFilterTest : public ::testing::Test {
 protected:
  explicit HttpFilterTest(uint32_t httpFlows = 0, uint32_t ringCapacity = 4096)
      : shared_(1024, store_, httpFlows), ring_(ringCapacity) {
    ConfigResult parsed = parseConfig(kConfig);
    EXPECT_TRUE(parsed.ok()) << (parsed.error ? parsed.error->toString() : "");
    std::string error;
    auto built = EngineConfig::build(parsed.config, &error);
    EXPECT_TRUE(built) << error;
    config_ = built.get();
    EXPECT_TRUE(shared_.publish(std::move(built), false, &error)) << error;
    loop_ = std::make_unique<PacketProcessor>(shared_, LinkType::kEthernet);
    loop_->setLogRing(&ring_);
  }

  // Runs one packet with `extra` spare bytes after it; checks the checksums
  // of a forwarded packet from scratch.
  Emitted run(std::vector<uint8_t> p, Direction d, size_t extra, bool partial) {
    Emitted e;
    const size_t length = p.size();
    p.resize(length + extra, 0xcc);
    PacketRef ref{p.data(), static_cast<uint32_t>(length), 0, d};
    ref.capacity = static_cast<uint32_t>(p.size());
    ref.l4ChecksumPartial = partial;
    e.verdict = loop_->process(ref, now_);
    EXPECT_EQ(ref.verdict, e.verdict);
    EXPECT_LE(ref.length, ref.capacity);
    p.resize(ref.length);
    e.bytes = std::move(p);
    EXPECT_EQ(parsePacket(e.bytes.data(), e.bytes.size(), LinkType::kEthernet, e.view),
              ParseStatus::kTcpIpv4);
    if (e.verdict == Verdict::kForward && e.view.tcp) {
      EXPECT_TRUE(e.view.ipv4ChecksumValid());
      EXPECT_EQ(e.view.frameLength, e.bytes.size());
      if (partial)
        EXPECT_EQ(checksum::load16(e.view.tcpChecksumField()),
                  pseudoHeaderSum(e.view.srcV4(), e.view.dstV4(), e.view.tcpSegmentLength()));
      else
        EXPECT_TRUE(e.view.tcpChecksumValid());
    }
    return e;
  }

  TcpPacketSpec clientSpec(const Conn& c, uint32_t seq, std::string_view payload,
                           uint8_t flags) const {
    TcpPacketSpec s;
    s.src = kClient;
    s.dst = c.facade;
    s.srcPort = c.clientPort;
    s.dstPort = c.facadePort;
    s.seq = seq;
    s.ack = (flags & kAck) ? c.serverIsn + 1 : 0;
    s.flags = flags;
    s.payload = payload;
    return s;
  }
  TcpPacketSpec serverSpec(const Conn& c, uint32_t ack, const std::vector<uint8_t>& options,
                           uint8_t flags) const {
    TcpPacketSpec s;
    s.src = c.server;
    s.dst = kClient;
    s.srcPort = c.serverPort;
    s.dstPort = c.clientPort;
    s.seq = (flags & kSyn) ? c.serverIsn : c.serverIsn + 1;
    s.ack = ack;
    s.flags = flags;
    s.tcpOptions = options;
    return s;
  }
  std::vector<uint8_t> build(const TcpPacketSpec& s, bool partial) const {
    auto p = buildTcp(s);
    if (partial) makePartial(p);
    return p;
  }

  // A client segment, as the client sends it.
  Emitted fromClient(const Conn& c, uint32_t seq, std::string_view payload,
                     uint8_t flags = kAck | kPsh, size_t extra = kRoom) {
    return run(build(clientSpec(c, seq, payload, flags), c.partial), Direction::kEgress, extra,
               c.partial);
  }
  // What the server must get for it: NAT'd, at `seq`, carrying `payload`.
  std::vector<uint8_t> toServer(const Conn& c, uint32_t seq, std::string_view payload,
                                uint8_t flags = kAck | kPsh) const {
    TcpPacketSpec s = clientSpec(c, seq, payload, flags);
    s.dst = c.server;
    s.dstPort = c.serverPort;
    return build(s, c.partial);
  }
  // A server packet acknowledging `ack` (server space), with `options`.
  Emitted fromServer(const Conn& c, uint32_t ack, const std::vector<uint8_t>& options = {},
                     uint8_t flags = kAck) {
    return run(build(serverSpec(c, ack, options, flags), c.partial), Direction::kIngress, kRoom,
               c.partial);
  }
  // What the client must get for it.
  std::vector<uint8_t> toClient(const Conn& c, uint32_t ack,
                                const std::vector<uint8_t>& options = {},
                                uint8_t flags = kAck) const {
    TcpPacketSpec s = serverSpec(c, ack, options, flags);
    s.src = c.facade;
    s.srcPort = c.facadePort;
    return build(s, c.partial);
  }

  // The three-way handshake; learns the server the session picked.
  Conn open(uint32_t facade, uint16_t facadePort = 80, uint16_t clientPort = 40000,
            uint32_t isn = 1000, bool partial = false) {
    Conn c;
    c.facade = facade;
    c.facadePort = facadePort;
    c.clientPort = clientPort;
    c.clientIsn = isn;
    c.partial = partial;
    Emitted syn = fromClient(c, isn, {}, kSyn);
    EXPECT_EQ(syn.verdict, Verdict::kForward);
    c.server = syn.view.dstV4();
    c.serverPort = syn.view.dstPort();
    EXPECT_NE(c.server, facade);
    Emitted synAck = fromServer(c, isn + 1, {}, kSyn | kAck);
    EXPECT_EQ(synAck.verdict, Verdict::kForward);
    EXPECT_EQ(synAck.bytes, toClient(c, isn + 1, {}, kSyn | kAck));
    Emitted ack = fromClient(c, isn + 1, {}, kAck);
    EXPECT_EQ(ack.verdict, Verdict::kForward);
    EXPECT_EQ(ack.bytes, toServer(c, isn + 1, {}, kAck));
    return c;
  }

  std::vector<RequestLogEntry> drainLog() {
    std::vector<RequestLogEntry> out;
    ring_.drain(1u << 20, [&](const RequestLogEntry& e) { out.push_back(e); });
    return out;
  }
  uint64_t count(Counter c) const { return loop_->counters().get(c); }

  uint32_t now_ = 10;
  LocalAffinityStore store_;
  EngineShared shared_;
  LogRing ring_;
  const EngineConfig* config_ = nullptr;  // owned by shared_
  std::unique_ptr<PacketProcessor> loop_;
};

TEST_F(HttpFilterTest, HostBecomesServerWithPortAndTheStreamIsShifted) {
  Conn c = open(kShop);
  ASSERT_EQ(c.server, kS1);
  ASSERT_EQ(c.serverPort, 8080);
  const std::string first = request("/index.html", kShopHost);
  const std::string second = request("/two", "other.example");
  const uint32_t valueAt = c.data() + static_cast<uint32_t>(first.find(kShopHost));

  Emitted a = fromClient(c, c.data(), first);
  ASSERT_EQ(a.verdict, Verdict::kForward);
  EXPECT_EQ(a.payload(), request("/index.html", kS1Host));
  EXPECT_EQ(a.bytes, toServer(c, c.data(), request("/index.html", kS1Host)));
  EXPECT_EQ(a.view.ipTotalLength, 40 + first.size() + 5);

  // The next segment is shifted by the 5 bytes the value grew.
  const uint32_t secondSeq = c.data() + static_cast<uint32_t>(first.size());
  Emitted b = fromClient(c, secondSeq, second);
  EXPECT_EQ(b.bytes, toServer(c, secondSeq + 5, second));

  // The server's acknowledgements come back in client space.
  const uint32_t serverEnd = secondSeq + 5 + static_cast<uint32_t>(second.size());
  EXPECT_EQ(fromServer(c, serverEnd).bytes,
            toClient(c, secondSeq + static_cast<uint32_t>(second.size())));
  EXPECT_EQ(fromServer(c, valueAt).bytes, toClient(c, valueAt));            // value start
  EXPECT_EQ(fromServer(c, valueAt + 3).bytes, toClient(c, valueAt));        // inside: its start
  EXPECT_EQ(fromServer(c, valueAt + 16).bytes, toClient(c, valueAt + 11));  // its end
  EXPECT_EQ(fromServer(c, valueAt - 7).bytes, toClient(c, valueAt - 7));    // before it

  // SACK edges, at odd and at even offsets of the header: a left edge inside
  // the value rounds up to its end, a right edge down to its start.
  for (int nops : {1, 2}) {
    SCOPED_TRACE(nops);
    const auto in =
        sackOption({{valueAt + 2, valueAt + 16 + 10}, {valueAt - 20, valueAt + 7}}, nops);
    const auto out = sackOption({{valueAt + 11, valueAt + 11 + 10}, {valueAt - 20, valueAt}}, nops);
    EXPECT_EQ(fromServer(c, valueAt - 20, in).bytes, toClient(c, valueAt - 20, out));
    // Edges past the value only move back by its growth.
    const auto later = sackOption({{serverEnd - 10, serverEnd}}, nops);
    const auto laterOut = sackOption({{serverEnd - 15, serverEnd - 5}}, nops);
    EXPECT_EQ(fromServer(c, valueAt, later).bytes, toClient(c, valueAt, laterOut));
  }
  // After a timestamps option, as Linux lays them out.
  std::vector<uint8_t> ts = {1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78};
  auto tsIn = ts, tsOut = ts;
  for (uint8_t x : sackOption({{valueAt + 1, serverEnd}}, 2)) tsIn.push_back(x);
  for (uint8_t x : sackOption({{valueAt + 11, serverEnd - 5}}, 2)) tsOut.push_back(x);
  EXPECT_EQ(fromServer(c, valueAt, tsIn).bytes, toClient(c, valueAt, tsOut));

  EXPECT_EQ(count(Counter::kHttpRequests), 2u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 1u);
  EXPECT_EQ(count(Counter::kDropHttpOutOfOrder), 0u);
  auto log = drainLog();
  ASSERT_EQ(log.size(), 2u);
  const RequestLogEntry& e = log[0];
  EXPECT_STREQ(e.method, "GET");
  EXPECT_STREQ(e.path, "/index.html");
  EXPECT_STREQ(e.host, kShopHost);  // as the client sent it
  EXPECT_STREQ(e.version, "HTTP/1.1");
  EXPECT_STREQ(e.application, "shop");
  EXPECT_STREQ(e.serverName, "s1");
  EXPECT_EQ(e.client, kClient);
  EXPECT_EQ(e.clientPort, 40000);
  EXPECT_EQ(e.facade, kShop);
  EXPECT_EQ(e.facadePort, 80);
  EXPECT_EQ(e.server, kS1);
  EXPECT_EQ(e.serverPort, 8080);
  EXPECT_GT(e.timeUnixUs, 0);
  EXPECT_STREQ(log[1].path, "/two");
  EXPECT_STREQ(log[1].host, "other.example");
}

TEST_F(HttpFilterTest, SameLengthAddressOnPort80IsRewrittenWithoutShift) {
  Conn c = open(kSame);
  ASSERT_EQ(c.server, kS2);
  const std::string first = request("/", "198.18.0.20");
  EXPECT_EQ(fromClient(c, c.data(), first).bytes,
            toServer(c, c.data(), request("/", "198.18.1.21")));
  const uint32_t next = c.data() + static_cast<uint32_t>(first.size());
  const std::string second = request("/b", "198.18.0.20:80");
  EXPECT_EQ(fromClient(c, next, second).bytes, toServer(c, next, request("/b", "198.18.1.21")));
  const uint32_t after = next + static_cast<uint32_t>(second.size());
  // 14 -> 11 bytes: the second one did shrink the stream.
  const std::string third = request("/c", "x");
  EXPECT_EQ(fromClient(c, after, third).bytes, toServer(c, after - 3, third));
  EXPECT_EQ(fromServer(c, after - 3).bytes, toClient(c, after));
  EXPECT_EQ(fromServer(c, next).bytes, toClient(c, next));  // before the change: as is
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 2u);
}

TEST_F(HttpFilterTest, SameLengthOnlyLeavesSequenceNumbersAlone) {
  Conn c = open(kSame, 80, 40001);
  const std::string first = request("/", "198.18.0.20");
  fromClient(c, c.data(), first);
  const uint32_t next = c.data() + static_cast<uint32_t>(first.size());
  EXPECT_EQ(fromClient(c, next, "x").bytes, toServer(c, next, "x"));
  EXPECT_EQ(fromServer(c, next + 1).bytes, toClient(c, next + 1));
  EXPECT_EQ(fromServer(c, c.data() + 30).bytes, toClient(c, c.data() + 30));  // inside: as is
}

TEST_F(HttpFilterTest, WhichHostValuesAreRewritten) {
  struct Row {
    const char* description;
    uint32_t facade;
    uint16_t facadePort;
    std::string host;  // as the client sends it (the header's whole value part)
    std::string sent;  // what the server must get
  };
  const std::vector<Row> table = {
      {"bare façade address", kShop, 80, "198.18.0.10", kS1Host},
      {"façade with its port 80", kShop, 80, "198.18.0.10:80", kS1Host},
      {"another name", kShop, 80, "other.example", "other.example"},
      {"façade with another port", kShop, 80, "198.18.0.10:81", "198.18.0.10:81"},
      {"a longer address", kShop, 80, "198.18.0.100", "198.18.0.100"},
      {"a shorter address", kShop, 80, "198.18.0.1", "198.18.0.1"},
      {"surrounding whitespace kept", kShop, 80, "  198.18.0.10 \t", "  198.18.1.11:8080 \t"},
      {"façade port 8000", kAlt, 8000, "198.18.0.30:8000", "198.18.1.31:8080"},
      {"façade port 8000, bare", kAlt, 8000, "198.18.0.30", "198.18.1.31:8080"},
      {"façade port 8000, given 80", kAlt, 8000, "198.18.0.30:80", "198.18.0.30:80"},
      {"shrinks to a short server", kShrink, 80, "198.18.100.100", "198.18.1.5"},
  };
  uint16_t port = 41000;
  uint64_t rewritten = 0;
  for (const Row& row : table) {
    SCOPED_TRACE(row.description);
    Conn c = open(row.facade, row.facadePort, port++);
    if (row.facade == kAlt) {
      EXPECT_EQ(c.server, kS4);
    }
    const std::string in = request("/p", row.host);
    const std::string out = request("/p", row.sent);
    EXPECT_EQ(fromClient(c, c.data(), in).bytes, toServer(c, c.data(), out));
    // The next byte moves by the length change.
    const uint32_t next = c.data() + static_cast<uint32_t>(in.size());
    const auto change = static_cast<uint32_t>(out.size() - in.size());
    EXPECT_EQ(fromClient(c, next, "GET").bytes, toServer(c, next + change, "GET"));
    if (in != out) ++rewritten;
    EXPECT_EQ(count(Counter::kHttpHostsRewritten), rewritten);
  }
  EXPECT_EQ(count(Counter::kHttpRequests), table.size());
}

TEST_F(HttpFilterTest, ShrinkingNeedsNoRoom) {
  Conn c = open(kShrink);
  ASSERT_EQ(c.server, kS3);
  const std::string in = request("/", "198.18.100.100");
  Emitted o = fromClient(c, c.data(), in, kAck | kPsh, /*extra=*/0);
  EXPECT_EQ(o.bytes, toServer(c, c.data(), request("/", "198.18.1.5")));
  const uint32_t next = c.data() + static_cast<uint32_t>(in.size());
  EXPECT_EQ(fromClient(c, next, "", kAck, 0).bytes, toServer(c, next - 4, "", kAck));
  EXPECT_EQ(fromServer(c, next - 4).bytes, toClient(c, next));
}

TEST_F(HttpFilterTest, HttpFilterOffLeavesRequestsAlone) {
  Conn c = open(kPlain);
  const std::string in = request("/", "198.18.0.40");
  EXPECT_EQ(fromClient(c, c.data(), in).bytes, toServer(c, c.data(), in));
  EXPECT_EQ(count(Counter::kHttpRequests), 0u);
  EXPECT_TRUE(drainLog().empty());
  EXPECT_EQ(shared_.httpFlows.inUse(), 0u);
}

TEST_F(HttpFilterTest, FiftyKeepAliveRequests) {
  Conn c = open(kShop);
  uint32_t seq = c.data();
  for (int i = 0; i < 50; ++i) {
    SCOPED_TRACE(i);
    const std::string in = request("/item/" + std::to_string(i), kShopHost);
    const std::string out = request("/item/" + std::to_string(i), kS1Host);
    const uint32_t shift = 5u * static_cast<uint32_t>(i);
    ASSERT_EQ(fromClient(c, seq, in).bytes, toServer(c, seq + shift, out));
    seq += static_cast<uint32_t>(in.size());
    // The server acknowledges the request: the client sees its own numbering.
    ASSERT_EQ(fromServer(c, seq + shift + 5).bytes, toClient(c, seq));
  }
  // A FIN after them all: shifted by 250.
  EXPECT_EQ(fromClient(c, seq, {}, kFin | kAck).bytes, toServer(c, seq + 250, {}, kFin | kAck));
  EXPECT_EQ(count(Counter::kHttpRequests), 50u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 50u);
  EXPECT_EQ(count(Counter::kHttpHostNotRewritten), 0u);
  auto log = drainLog();
  ASSERT_EQ(log.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(std::string(log[i].path), "/item/" + std::to_string(i));
}

TEST_F(HttpFilterTest, NinthUnacknowledgedRewriteWaitsForAnAck) {
  Conn c = open(kShop);
  uint32_t seq = c.data();
  for (int i = 0; i < 8; ++i) {
    const std::string in = request("/" + std::to_string(i), kShopHost);
    ASSERT_EQ(fromClient(c, seq, in).bytes,
              toServer(c, seq + 5u * i, request("/" + std::to_string(i), kS1Host)));
    seq += static_cast<uint32_t>(in.size());
  }
  // Eight rewrites, none acknowledged: the ninth value passes as sent.
  const std::string ninth = request("/8", kShopHost);
  EXPECT_EQ(fromClient(c, seq, ninth).bytes, toServer(c, seq + 40, ninth));
  EXPECT_EQ(count(Counter::kHttpHostNotRewritten), 1u);
  seq += static_cast<uint32_t>(ninth.size());
  // The server acknowledges everything; the tenth is rewritten again.
  EXPECT_EQ(fromServer(c, seq + 40).bytes, toClient(c, seq));
  const std::string tenth = request("/9", kShopHost);
  EXPECT_EQ(fromClient(c, seq, tenth).bytes, toServer(c, seq + 40, request("/9", kS1Host)));
  seq += static_cast<uint32_t>(tenth.size());
  EXPECT_EQ(fromServer(c, seq + 45).bytes, toClient(c, seq));
  EXPECT_EQ(fromClient(c, seq, "x").bytes, toServer(c, seq + 45, "x"));
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 9u);
  EXPECT_EQ(drainLog().size(), 10u);
}

TEST_F(HttpFilterTest, PipelinedRequestsInOneSegment) {
  Conn c = open(kShop);
  const std::string in =
      request("/1", kShopHost) + request("/2", kShopHost) + request("/3", kShopHost);
  const std::string out = request("/1", kS1Host) + request("/2", kS1Host) + request("/3", kS1Host);
  Emitted o = fromClient(c, c.data(), in);
  EXPECT_EQ(o.bytes, toServer(c, c.data(), out));
  EXPECT_EQ(o.view.payloadLength, in.size() + 15);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 3u);
  const uint32_t next = c.data() + static_cast<uint32_t>(in.size());
  EXPECT_EQ(fromClient(c, next, "GET").bytes, toServer(c, next + 15, "GET"));
  // The same segment again: the same three rewrites.
  EXPECT_EQ(fromClient(c, c.data(), in).bytes, o.bytes);
  EXPECT_EQ(count(Counter::kHttpRetransmitsRewritten), 1u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 3u);
  // An acknowledgement inside the second value maps to its start.
  const uint32_t second =
      c.data() + static_cast<uint32_t>(request("/1", kShopHost).size() + in.find(kShopHost));
  EXPECT_EQ(fromServer(c, second + 5 + 1).bytes, toClient(c, second));
  auto log = drainLog();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_STREQ(log[2].path, "/3");
}

TEST_F(HttpFilterTest, BodiesAreSkippedNotRewritten) {
  Conn c = open(kShop);
  // A Content-Length body holding a Host line, and the next request in the same segment.
  const std::string body = "Host: 198.18.0.10\r\n\r\nHost: 198.18.0.10";
  const std::string post =
      "POST /form HTTP/1.1\r\nHost: 198.18.0.10\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n";
  const std::string postOut = "POST /form HTTP/1.1\r\nHost: 198.18.1.11:8080\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n";
  const std::string in = post + body + request("/after", kShopHost);
  const std::string out = postOut + body + request("/after", kS1Host);
  uint32_t seq = c.data();
  EXPECT_EQ(fromClient(c, seq, in).bytes, toServer(c, seq, out));
  seq += static_cast<uint32_t>(in.size());
  uint32_t shift = 10;

  // A chunked body, over three segments: head, a chunk holding a Host line,
  // the last chunk with the next request.
  const std::string head =
      "POST /up HTTP/1.1\r\nHost: 198.18.0.10\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string headOut =
      "POST /up HTTP/1.1\r\nHost: 198.18.1.11:8080\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string data = "GET / HTTP/1.1\r\nHost: 198.18.0.10\r\n\r\n";
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", data.size());
  const std::string chunk = std::string(size) + "\r\n" + data + "\r\n";
  const std::string last = "0\r\n\r\n" + request("/next", kShopHost);
  EXPECT_EQ(fromClient(c, seq, head).bytes, toServer(c, seq + shift, headOut));
  seq += static_cast<uint32_t>(head.size());
  shift += 5;
  EXPECT_EQ(fromClient(c, seq, chunk).bytes, toServer(c, seq + shift, chunk));
  seq += static_cast<uint32_t>(chunk.size());
  EXPECT_EQ(fromClient(c, seq, last).bytes,
            toServer(c, seq + shift, "0\r\n\r\n" + request("/next", kS1Host)));
  EXPECT_EQ(count(Counter::kHttpRequests), 4u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 4u);
  auto log = drainLog();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_STREQ(log[0].method, "POST");
  EXPECT_STREQ(log[1].path, "/after");
  EXPECT_STREQ(log[2].path, "/up");
  EXPECT_STREQ(log[3].path, "/next");
}

TEST_F(HttpFilterTest, RetransmissionsAreRewrittenTheSameWay) {
  Conn c = open(kShop);
  const std::string first = request("/r", kShopHost);
  const std::string second = request("/s", kShopHost);
  const size_t at = first.find(kShopHost);
  const uint32_t value = c.data() + static_cast<uint32_t>(at);
  const uint32_t next = c.data() + static_cast<uint32_t>(first.size());
  Emitted original = fromClient(c, c.data(), first);
  ASSERT_EQ(original.bytes, toServer(c, c.data(), request("/r", kS1Host)));

  Emitted again = fromClient(c, c.data(), first);
  EXPECT_EQ(again.verdict, Verdict::kForward);
  EXPECT_EQ(again.bytes, original.bytes);
  EXPECT_EQ(count(Counter::kHttpRetransmitsRewritten), 1u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 1u);
  EXPECT_EQ(count(Counter::kHttpRequests), 1u);  // not parsed twice

  // Parts that do not touch the value: passed, shifted by what precedes them.
  const std::string before = first.substr(0, at);
  EXPECT_EQ(fromClient(c, c.data(), before).bytes, toServer(c, c.data(), before));
  const std::string after = first.substr(at + 11);
  EXPECT_EQ(fromClient(c, value + 11, after).bytes, toServer(c, value + 16, after));
  EXPECT_EQ(count(Counter::kHttpRetransmitsRewritten), 1u);

  // Cutting the value: what lies after it (or before it) goes on its own;
  // the server's ACK stops at the value, so the client resends it whole.
  EXPECT_EQ(fromClient(c, value + 3, first.substr(at + 3)).bytes, toServer(c, value + 16, after));
  EXPECT_EQ(fromClient(c, c.data(), first.substr(0, at + 5)).bytes, toServer(c, c.data(), before));
  EXPECT_EQ(count(Counter::kHttpRetransmitsTrimmed), 2u);

  // Resent into a buffer with no room for the value's growth: it cannot be
  // made as before, so only the part before the value goes; with room again,
  // it passes as before.
  EXPECT_EQ(fromClient(c, c.data(), first, kAck | kPsh, /*extra=*/0).bytes,
            toServer(c, c.data(), before));
  EXPECT_EQ(count(Counter::kHttpRetransmitsTrimmed), 3u);
  EXPECT_EQ(count(Counter::kDropHttpRetransmitSplit), 0u);
  EXPECT_EQ(fromClient(c, c.data(), first).bytes, original.bytes);

  // The old bytes and new ones in one segment: the old value redone, the new parsed.
  Emitted both = fromClient(c, c.data(), first + second);
  EXPECT_EQ(both.bytes, toServer(c, c.data(), request("/r", kS1Host) + request("/s", kS1Host)));
  EXPECT_EQ(count(Counter::kHttpRetransmitsRewritten), 3u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 2u);
  EXPECT_EQ(count(Counter::kHttpRequests), 2u);
  // And the second alone, later: shifted by the first, rewritten itself.
  EXPECT_EQ(fromClient(c, next, second).bytes, toServer(c, next + 5, request("/s", kS1Host)));
  EXPECT_EQ(drainLog().size(), 2u);
}

// BUG (data-plane/http/http_filter.cpp, HttpFilter::egress): a retransmitted
// segment that lies strictly inside a rewritten Host value (starts after the
// value's first byte and ends before its last) is neither dropped nor
// rewritten: it matches neither `startsIn` nor `endsIn`, so it passes with
// the shift of the bytes before the value. Here the client resends ".0.1"
// (bytes 6-9 of "198.18.0.10") at their client sequence number; the server,
// whose bytes there are ".1.1" (of "198.18.1.11:8080"), gets bytes that
// contradict what it already has. Skipped, not failed, until it is fixed.
TEST_F(HttpFilterTest, RetransmissionInsideARewrittenValueIsDropped) {
  Conn c = open(kShop);
  const std::string first = request("/r", kShopHost);
  const size_t at = first.find(kShopHost);
  const uint32_t value = c.data() + static_cast<uint32_t>(at);
  fromClient(c, c.data(), first);
  const std::string piece = first.substr(at + 6, 4);
  ASSERT_EQ(piece, ".0.1");
  Emitted inside = fromClient(c, value + 6, piece);
  EXPECT_EQ(inside.verdict, Verdict::kDrop);
  EXPECT_EQ(count(Counter::kDropHttpRetransmitSplit), 1u);
}

// BUG (data-plane/processor.cpp newHttpFlow / http_filter.cpp egress): a
// client SYN carrying data (TCP Fast Open) that the server accepts. The flow
// starts with nextSeq = ISN + 1 and the SYN's data is never fed nor skipped,
// so every later client data segment (seq ISN + 1 + SYN data length) is
// "past a gap" and dropped as drop_http_out_of_order, retransmissions too:
// the connection stalls. Skipped, not failed, until it is fixed.
// TCP Fast Open: the data on the SYN is the stream's first request. It is
// parsed, logged and rewritten like any other, and the stream goes on after it.
TEST_F(HttpFilterTest, FastOpenDataIsTheStreamsFirstRequest) {
  Conn c;
  c.clientPort = 42000;
  const std::string early = request("/tfo", kShopHost);
  const std::string rewritten = request("/tfo", kS1Host);
  Emitted syn = fromClient(c, c.clientIsn, early, kSyn);
  ASSERT_EQ(syn.verdict, Verdict::kForward);
  c.server = syn.view.dstV4();
  c.serverPort = syn.view.dstPort();
  EXPECT_EQ(syn.bytes, toServer(c, c.clientIsn, rewritten, kSyn));
  // The server took the data: its SYN-ACK acknowledges it, in its numbering.
  const uint32_t after = c.data() + static_cast<uint32_t>(early.size());
  const uint32_t serverAfter = c.data() + static_cast<uint32_t>(rewritten.size());
  Emitted synAck = fromServer(c, serverAfter, {}, kSyn | kAck);
  ASSERT_EQ(synAck.verdict, Verdict::kForward);
  EXPECT_EQ(synAck.view.ack(), after);
  EXPECT_EQ(fromClient(c, after, {}, kAck).verdict, Verdict::kForward);
  const std::string next = request("/next", kShopHost);
  Emitted second = fromClient(c, after, next);
  ASSERT_EQ(second.verdict, Verdict::kForward);
  EXPECT_EQ(second.bytes, toServer(c, serverAfter, request("/next", kS1Host)));
  // A resent SYN with its data is rewritten the same way again.
  EXPECT_EQ(fromClient(c, c.clientIsn, early, kSyn).bytes,
            toServer(c, c.clientIsn, rewritten, kSyn));
  EXPECT_EQ(count(Counter::kHttpRequests), 2u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 2u);
  EXPECT_EQ(count(Counter::kDropHttpOutOfOrder), 0u);
}

// A cut retransmission that carried the FIN loses it: the FIN follows the
// last byte, which is not sent now.
TEST_F(HttpFilterTest, ACutRetransmissionLosesItsFin) {
  Conn c = open(kShop);
  const std::string first = request("/fin", kShopHost);
  const size_t at = first.find(kShopHost);
  const std::string before = first.substr(0, at);
  ASSERT_EQ(fromClient(c, c.data(), first).verdict, Verdict::kForward);
  // The client merged its request and FIN into one retransmission into a
  // buffer with no room to grow: only the bytes before the value go, no FIN.
  Emitted cut = fromClient(c, c.data(), first, kAck | kPsh | kFin, /*extra=*/0);
  EXPECT_EQ(cut.bytes, toServer(c, c.data(), before, kAck | kPsh));
  EXPECT_EQ(count(Counter::kHttpRetransmitsTrimmed), 1u);
}

// Pipelined requests sent one per segment and resent merged: the merged
// segment would outgrow a 1500-byte packet, so it goes in part, up to the
// first value that does not fit (Linux merges retransmissions this way).
TEST_F(HttpFilterTest, AMergedRetransmissionThatOutgrowsThePacketGoesInPart) {
  Conn c = open(kShop);
  std::string in, out;
  std::vector<uint32_t> starts;
  const std::string pad(446, 'p');
  for (int i = 0; i < 3; ++i) {
    const std::string r =
        "GET /" + pad + std::to_string(i) + " HTTP/1.1\r\nHost: 198.18.0.10\r\n\r\n";
    starts.push_back(c.data() + static_cast<uint32_t>(in.size()));
    ASSERT_EQ(fromClient(c, starts.back(), r).verdict, Verdict::kForward);
    in += r;
  }
  ASSERT_EQ(count(Counter::kHttpHostsRewritten), 3u);
  ASSERT_LE(in.size() + 40, 1500u);       // the merged segment fits as the client sends it
  ASSERT_GT(in.size() + 40 + 15, 1500u);  // but not with three values 5 bytes longer
  Emitted merged = fromClient(c, c.data(), in);
  ASSERT_EQ(merged.verdict, Verdict::kForward);
  EXPECT_LE(merged.view.ipTotalLength, 1500u);
  // The first two requests, rewritten; the third from its start comes again.
  const std::string firstTwo = in.substr(0, starts[2] - c.data());
  std::string expected = firstTwo;
  for (size_t p = expected.find("198.18.0.10"); p != std::string::npos;
       p = expected.find("198.18.0.10", p + 1))
    expected.replace(p, 11, "198.18.1.11:8080");
  const size_t thirdValue = in.find("198.18.0.10", starts[2] - c.data());
  const std::string cut = in.substr(0, thirdValue);
  std::string expectedCut = cut;
  for (size_t p = expectedCut.find("198.18.0.10"); p != std::string::npos;
       p = expectedCut.find("198.18.0.10", p + 1))
    expectedCut.replace(p, 11, "198.18.1.11:8080");
  EXPECT_EQ(merged.bytes, toServer(c, c.data(), expectedCut));
  EXPECT_EQ(count(Counter::kHttpRetransmitsTrimmed), 1u);
  EXPECT_EQ(count(Counter::kHttpRequests), 3u);
}

// The server offers a small MSS (a path narrower than 1500 bytes): a client
// segment may not grow past it, or the path would drop it.
TEST_F(HttpFilterTest, GrowthStaysWithinTheServersMss) {
  Conn c;
  c.clientPort = 41000;
  Emitted syn = fromClient(c, c.clientIsn, {}, kSyn);
  ASSERT_EQ(syn.verdict, Verdict::kForward);
  c.server = syn.view.dstV4();
  c.serverPort = syn.view.dstPort();
  const std::vector<uint8_t> mss1000 = {2, 4, 0x03, 0xe8};
  Emitted synAck = fromServer(c, c.data(), mss1000, kSyn | kAck);
  // Lowered by 32 for the client: the server's address is the longer one.
  EXPECT_EQ(synAck.bytes, toClient(c, c.data(), {2, 4, 0x03, 0xc8}, kSyn | kAck));
  ASSERT_EQ(fromClient(c, c.data(), {}, kAck).verdict, Verdict::kForward);
  // A full 1000-byte segment whose Host would grow it by 5: left as sent.
  std::string r = "GET /mss HTTP/1.1\r\nHost: 198.18.0.10\r\nX-Pad: ";
  r += std::string(1000 - r.size() - 4, 'x') + "\r\n\r\n";
  ASSERT_EQ(r.size(), 1000u);
  Emitted e = fromClient(c, c.data(), r);
  EXPECT_EQ(e.bytes, toServer(c, c.data(), r));
  EXPECT_EQ(count(Counter::kHttpHostNotRewritten), 1u);
  // A short one still is rewritten.
  const uint32_t next = c.data() + 1000;
  EXPECT_EQ(fromClient(c, next, request("/s", kShopHost)).bytes,
            toServer(c, next, request("/s", kS1Host)));
}

// The client gave up on a connection attempt and reused its ports with a new
// initial sequence number while the session still waited for a SYN+ACK: the
// filter follows the new stream.
TEST_F(HttpFilterTest, ANewSynWithAnotherIsnStartsTheStreamAgain) {
  Conn c;
  c.clientPort = 43000;
  Emitted syn = fromClient(c, c.clientIsn, {}, kSyn);
  ASSERT_EQ(syn.verdict, Verdict::kForward);
  c.server = syn.view.dstV4();
  c.serverPort = syn.view.dstPort();
  c.clientIsn += 100000;
  ASSERT_EQ(fromClient(c, c.clientIsn, {}, kSyn).verdict, Verdict::kForward);
  ASSERT_EQ(fromServer(c, c.data(), {}, kSyn | kAck).verdict, Verdict::kForward);
  EXPECT_EQ(fromClient(c, c.data(), request("/new", kShopHost)).bytes,
            toServer(c, c.data(), request("/new", kS1Host)));
  EXPECT_EQ(count(Counter::kDropHttpOutOfOrder), 0u);
}

TEST_F(HttpFilterTest, AtMostEightUnacknowledgedRewritesInOneSegment) {
  Conn c = open(kShop);
  std::string in, out;
  for (int i = 0; i < 10; ++i) {
    in += request("/" + std::to_string(i), kShopHost);
    out += request("/" + std::to_string(i), i < 8 ? kS1Host : kShopHost);
  }
  EXPECT_EQ(fromClient(c, c.data(), in).bytes, toServer(c, c.data(), out));
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 8u);
  EXPECT_EQ(count(Counter::kHttpHostNotRewritten), 2u);
  const uint32_t next = c.data() + static_cast<uint32_t>(in.size());
  EXPECT_EQ(fromClient(c, next, "x").bytes, toServer(c, next + 40, "x"));
  // Resent: the same eight, and only those.
  EXPECT_EQ(fromClient(c, c.data(), in).bytes, toServer(c, c.data(), out));
  EXPECT_EQ(count(Counter::kHttpRetransmitsRewritten), 1u);
  EXPECT_EQ(drainLog().size(), 10u);
}

TEST_F(HttpFilterTest, ReopenedConnectionStartsAFreshState) {
  Conn a = open(kShop, 80, 43000, 1000);
  const std::string in = request("/a", kShopHost);
  fromClient(a, a.data(), in);
  fromClient(a, a.data() + static_cast<uint32_t>(in.size()), {}, kRst | kAck);
  // The same client port again, another ISN: a new connection on the tuple.
  Conn b = open(kShop, 80, 43000, 500000);
  EXPECT_EQ(loop_->counters().get(Counter::kSessionsReopened), 1u);
  EXPECT_EQ(shared_.httpFlows.inUse(), 1u);  // the old state went back first
  const std::string again = request("/b", kShopHost);
  EXPECT_EQ(fromClient(b, b.data(), again).bytes, toServer(b, b.data(), request("/b", kS1Host)));
  const uint32_t next = b.data() + static_cast<uint32_t>(again.size());
  EXPECT_EQ(fromClient(b, next, "x").bytes, toServer(b, next + 5, "x"));
  EXPECT_EQ(fromServer(b, next + 6).bytes, toClient(b, next + 1));
}

TEST_F(HttpFilterTest, UpgradedConnectionIsNoLongerParsed) {
  Conn c = open(kShop);
  const std::string first = request("/", kShopHost);
  fromClient(c, c.data(), first);
  uint32_t seq = c.data() + static_cast<uint32_t>(first.size());
  const std::string upgrade =
      "GET /ws HTTP/1.1\r\nHost: other.example\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\n\r\n";
  EXPECT_EQ(fromClient(c, seq, upgrade).bytes, toServer(c, seq + 5, upgrade));
  EXPECT_EQ(count(Counter::kHttpTunneled), 1u);
  seq += static_cast<uint32_t>(upgrade.size());
  // Frames that look like a request: left alone, only shifted; a gap is no reason to drop.
  const std::string frames = request("/", kShopHost);
  EXPECT_EQ(fromClient(c, seq, frames).bytes, toServer(c, seq + 5, frames));
  const uint32_t gap = seq + 1000;
  EXPECT_EQ(fromClient(c, gap, frames).bytes, toServer(c, gap + 5, frames));
  EXPECT_EQ(count(Counter::kDropHttpOutOfOrder), 0u);
  EXPECT_EQ(count(Counter::kHttpRequests), 2u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 1u);
}

TEST_F(HttpFilterTest, OutOfOrderSegmentWaitsForTheGap) {
  Conn c = open(kShop);
  const std::string line = "GET /ooo HTTP/1.1\r\n";
  const std::string headers = "Host: 198.18.0.10\r\n\r\n";
  const uint32_t second = c.data() + static_cast<uint32_t>(line.size());
  EXPECT_EQ(fromClient(c, second, headers).verdict, Verdict::kDrop);
  EXPECT_EQ(count(Counter::kDropHttpOutOfOrder), 1u);
  EXPECT_EQ(count(Counter::kHttpRequests), 0u);
  // A pure ACK beyond nothing is not out of order.
  EXPECT_EQ(fromClient(c, c.data(), {}, kAck).verdict, Verdict::kForward);
  EXPECT_EQ(fromClient(c, c.data(), line).bytes, toServer(c, c.data(), line));
  Emitted resent = fromClient(c, second, headers);
  EXPECT_EQ(resent.bytes, toServer(c, second, "Host: 198.18.1.11:8080\r\n\r\n"));
  EXPECT_EQ(count(Counter::kDropHttpOutOfOrder), 1u);
  EXPECT_EQ(count(Counter::kHttpRequests), 1u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 1u);
  auto log = drainLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_STREQ(log[0].path, "/ooo");
}

// A connection whose segments arrive through two loops: a body segment can
// overtake the one before it. The gap is body, so it is skipped unread and the
// late segment passes when it comes; the next request is still found.
TEST_F(HttpFilterTest, GapInsideABodyIsSkippedNotDropped) {
  Conn c = open(kShop);
  const std::string head = "POST /up HTTP/1.1\r\nHost: 198.18.0.10\r\nContent-Length: 3000\r\n\r\n";
  const std::string rewrittenHead =
      "POST /up HTTP/1.1\r\nHost: 198.18.1.11:8080\r\nContent-Length: 3000\r\n\r\n";
  const std::string part1(1000, 'a'), part2(1000, 'b');
  // The last part ends the body, and the next request follows in the same segment.
  const std::string part3 = std::string(1000, 'c') + request("/after", kShopHost);
  const uint32_t body = c.data() + static_cast<uint32_t>(head.size());
  EXPECT_EQ(fromClient(c, c.data(), head + part1).bytes,
            toServer(c, c.data(), rewrittenHead + part1));
  const uint32_t third = body + 2000;
  Emitted early = fromClient(c, third, part3);
  ASSERT_EQ(early.verdict, Verdict::kForward);
  EXPECT_EQ(early.bytes,
            toServer(c, third + 5, std::string(1000, 'c') + request("/after", kS1Host)));
  EXPECT_EQ(count(Counter::kHttpBodyGapsSkipped), 1u);
  // The overtaken segment arrives: body bytes, shifted, untouched.
  EXPECT_EQ(fromClient(c, body + 1000, part2).bytes, toServer(c, body + 1005, part2));
  EXPECT_EQ(count(Counter::kDropHttpOutOfOrder), 0u);
  EXPECT_EQ(count(Counter::kHttpRequests), 2u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 2u);
  // A gap that reaches past the body (into the next head) still waits.
  const uint32_t next = third + static_cast<uint32_t>(part3.size());
  const std::string nextHead = request("/later", kShopHost);
  EXPECT_EQ(fromClient(c, next + 10, nextHead.substr(10)).verdict, Verdict::kDrop);
  EXPECT_EQ(count(Counter::kDropHttpOutOfOrder), 1u);
}

TEST_F(HttpFilterTest, HostSplitOverTwoSegmentsPassesAsSent) {
  Conn c = open(kShop);
  const std::string a = "GET /split HTTP/1.1\r\nHost: 198.18";
  const std::string b = ".0.10\r\n\r\n";
  EXPECT_EQ(fromClient(c, c.data(), a).bytes, toServer(c, c.data(), a));
  const uint32_t second = c.data() + static_cast<uint32_t>(a.size());
  EXPECT_EQ(fromClient(c, second, b).bytes, toServer(c, second, b));
  EXPECT_EQ(count(Counter::kHttpHostSplit), 1u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 0u);
  auto log = drainLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_STREQ(log[0].host, kShopHost);
  EXPECT_STREQ(log[0].path, "/split");
  // The next request, whole, is rewritten; nothing before it shifted.
  const uint32_t third = second + static_cast<uint32_t>(b.size());
  const std::string whole = request("/", kShopHost);
  EXPECT_EQ(fromClient(c, third, whole).bytes, toServer(c, third, request("/", kS1Host)));
  // A value whole in one segment whose header block ends in the next: split too.
  const uint32_t fourth = third + static_cast<uint32_t>(whole.size());
  const std::string valueHere = "GET /late HTTP/1.1\r\nHost: 198.18.0.10\r\n";
  const std::string endHere = "Accept: */*\r\n\r\n";
  EXPECT_EQ(fromClient(c, fourth, valueHere).bytes, toServer(c, fourth + 5, valueHere));
  const uint32_t fifth = fourth + static_cast<uint32_t>(valueHere.size());
  EXPECT_EQ(fromClient(c, fifth, endHere).bytes, toServer(c, fifth + 5, endHere));
  EXPECT_EQ(count(Counter::kHttpHostSplit), 2u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 1u);
}

TEST_F(HttpFilterTest, NotHttpPassesUnparsed) {
  Conn c = open(kShop);
  const std::string hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  EXPECT_EQ(fromClient(c, c.data(), hello).bytes, toServer(c, c.data(), hello));
  EXPECT_EQ(count(Counter::kHttpNotHttp), 1u);
  uint32_t seq = c.data() + static_cast<uint32_t>(hello.size());
  const std::string later = request("/", kShopHost);
  EXPECT_EQ(fromClient(c, seq, later).bytes, toServer(c, seq, later));
  // Past a gap: no longer parsed, so not held back either.
  const uint32_t gap = seq + static_cast<uint32_t>(later.size()) + 100;
  EXPECT_EQ(fromClient(c, gap, later).bytes, toServer(c, gap, later));
  EXPECT_EQ(count(Counter::kDropHttpOutOfOrder), 0u);
  EXPECT_EQ(count(Counter::kHttpNotHttp), 1u);  // counted once per connection
  EXPECT_EQ(count(Counter::kHttpRequests), 0u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 0u);
  EXPECT_TRUE(drainLog().empty());
}

TEST_F(HttpFilterTest, NoRoomToGrowLeavesTheValue) {
  Conn c = open(kShop);
  const std::string in = request("/tight", kShopHost);
  // The old interface: the packet's length must not change.
  auto p = build(clientSpec(c, c.data(), in, kAck | kPsh), false);
  EXPECT_EQ(loop_->process(p.data(), p.size(), 0, Direction::kEgress, now_), Verdict::kForward);
  EXPECT_EQ(p, toServer(c, c.data(), in));
  EXPECT_EQ(count(Counter::kHttpHostNotRewritten), 1u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 0u);
  // A buffer 4 bytes short of the 5 needed.
  const uint32_t next = c.data() + static_cast<uint32_t>(in.size());
  const std::string second = request("/tight2", kShopHost);
  EXPECT_EQ(fromClient(c, next, second, kAck | kPsh, 4).bytes, toServer(c, next, second));
  EXPECT_EQ(count(Counter::kHttpHostNotRewritten), 2u);
  // Exactly 5: rewritten; nothing before it was, so no shift.
  const uint32_t third = next + static_cast<uint32_t>(second.size());
  EXPECT_EQ(fromClient(c, third, in, kAck | kPsh, 5).bytes,
            toServer(c, third, request("/tight", kS1Host)));
  EXPECT_EQ(drainLog().size(), 3u);  // logged all the same
}

TEST_F(HttpFilterTest, SequenceNumbersWrapAround) {
  const std::string in = request("/wrap", kShopHost);
  const auto at = static_cast<uint32_t>(in.find(kShopHost));
  // The value starts 4 bytes before the wrap and ends after it.
  const uint32_t isn = 0xfffffffcu - at - 1;
  Conn c = open(kShop, 80, 40000, isn);
  ASSERT_EQ(c.data() + at, 0xfffffffcu);
  EXPECT_EQ(fromClient(c, c.data(), in).bytes, toServer(c, c.data(), request("/wrap", kS1Host)));
  const uint32_t next = c.data() + static_cast<uint32_t>(in.size());
  ASSERT_LT(next, 1000u);  // wrapped
  EXPECT_EQ(fromClient(c, next, "GET").bytes, toServer(c, next + 5, "GET"));
  EXPECT_EQ(fromServer(c, next + 5).bytes, toClient(c, next));
  EXPECT_EQ(fromServer(c, 2).bytes, toClient(c, 0xfffffffcu));  // inside the value
  const auto in2 = sackOption({{0xfffffffeu, next + 5}});
  const auto out2 = sackOption({{0xfffffffcu + 11, next}});
  EXPECT_EQ(fromServer(c, 0xfffffff0u, in2).bytes, toClient(c, 0xfffffff0u, out2));
}

TEST_F(HttpFilterTest, PartialChecksumsStayConsistent) {
  // Every packet of the connection carries offload's partial sum; run()
  // checks each output's field against the sum for its new addresses and length.
  Conn c = open(kShop, 80, 40000, 5000, /*partial=*/true);
  const std::string in = request("/p", kShopHost) + request("/q", kShopHost);
  const std::string out = request("/p", kS1Host) + request("/q", kS1Host);
  Emitted o = fromClient(c, c.data(), in);
  EXPECT_EQ(o.bytes, toServer(c, c.data(), out));
  const uint32_t next = c.data() + static_cast<uint32_t>(in.size());
  EXPECT_EQ(fromClient(c, next, "x").bytes, toServer(c, next + 10, "x"));
  EXPECT_EQ(fromServer(c, next + 11).bytes, toClient(c, next + 1));
  // Left edge inside the first value: up to its end; right edge inside the
  // second (server bytes [secondValue + 5, secondValue + 21)): down to its start.
  const uint32_t secondValue =
      c.data() + static_cast<uint32_t>(request("/p", kShopHost).size() + 23);
  const auto sack = sackOption({{c.data() + 10, next + 11}, {c.data() + 30, secondValue + 8}});
  const auto sackOut = sackOption({{c.data() + 10, next + 1}, {c.data() + 34, secondValue}});
  EXPECT_EQ(fromServer(c, next + 11, sack).bytes, toClient(c, next + 1, sackOut));
  // A shrinking one too.
  Conn s = open(kShrink, 80, 40001, 9000, true);
  const std::string small = request("/", "198.18.100.100");
  EXPECT_EQ(fromClient(s, s.data(), small).bytes,
            toServer(s, s.data(), request("/", "198.18.1.5")));
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 3u);
}

class HttpFilterOneFlowTest : public HttpFilterTest {
 protected:
  HttpFilterOneFlowTest() : HttpFilterTest(/*httpFlows=*/1) {}
};

TEST_F(HttpFilterOneFlowTest, ExhaustedPoolLeavesConnectionsUnfiltered) {
  ASSERT_EQ(shared_.httpFlows.capacity(), 1u);
  Conn first = open(kShop, 80, 1000);
  EXPECT_EQ(shared_.httpFlows.inUse(), 1u);
  Conn second = open(kShop, 80, 1001);
  EXPECT_EQ(count(Counter::kHttpUntracked), 1u);
  const std::string in = request("/", kShopHost);
  EXPECT_EQ(fromClient(second, second.data(), in).bytes, toServer(second, second.data(), in));
  EXPECT_EQ(fromClient(first, first.data(), in).bytes,
            toServer(first, first.data(), request("/", kS1Host)));
  EXPECT_EQ(count(Counter::kHttpRequests), 1u);  // only the filtered one
  EXPECT_EQ(drainLog().size(), 1u);

  // The first connection ends; its state goes back to the pool.
  fromClient(first, first.data() + static_cast<uint32_t>(in.size()), {}, kRst);
  now_ += config_->timeouts().closed;
  EXPECT_EQ(loop_->expireAll(now_), 1u);
  EXPECT_EQ(shared_.httpFlows.inUse(), 0u);
  Conn third = open(kShop, 80, 1002);
  EXPECT_EQ(shared_.httpFlows.inUse(), 1u);
  EXPECT_EQ(count(Counter::kHttpUntracked), 1u);
  EXPECT_EQ(fromClient(third, third.data(), in).bytes,
            toServer(third, third.data(), request("/", kS1Host)));
  // The second stays unfiltered.
  const uint32_t next = second.data() + static_cast<uint32_t>(in.size());
  EXPECT_EQ(fromClient(second, next, in).bytes, toServer(second, next, in));
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 2u);
}

class HttpFilterSmallRingTest : public HttpFilterTest {
 protected:
  HttpFilterSmallRingTest() : HttpFilterTest(0, /*ringCapacity=*/2) {}
};

TEST_F(HttpFilterSmallRingTest, FullLogRingDropsEntriesNotRequests) {
  Conn c = open(kShop);
  uint32_t seq = c.data();
  for (int i = 0; i < 5; ++i) {
    const std::string in = request("/" + std::to_string(i), kShopHost);
    Emitted o = fromClient(c, seq, in);
    EXPECT_EQ(o.verdict, Verdict::kForward);
    EXPECT_EQ(o.bytes, toServer(c, seq + 5u * i, request("/" + std::to_string(i), kS1Host)));
    seq += static_cast<uint32_t>(in.size());
    fromServer(c, seq + 5u * (i + 1));
  }
  EXPECT_EQ(ring_.dropped(), 3u);
  EXPECT_EQ(count(Counter::kHttpRequests), 5u);
  EXPECT_EQ(count(Counter::kHttpHostsRewritten), 5u);
  auto log = drainLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_STREQ(log[0].path, "/0");
  EXPECT_STREQ(log[1].path, "/1");
  // Room again once drained.
  const std::string in = request("/5", kShopHost);
  fromClient(c, seq, in);
  EXPECT_EQ(drainLog().size(), 1u);
  EXPECT_EQ(ring_.dropped(), 3u);
}

}  // namespace
}  // namespace fulcrum
