// Data-plane benchmarks (BENCHMARKS.md has the figures and the command).
//   BM_FastPath/N: established sessions, N of them in the table; bursts of 32
//                  client packets to random sessions, rewritten and checksummed.
//   BM_FastPathLoops/sessions:N/shared:S/threads:T: the same from 1 or 2 loops
//                  (threads) at once, each on its own share of the sessions,
//                  on one shared table (S=1: the scaling figure) or on a
//                  table each (S=0: the ceiling with nothing shared).
//   BM_SlowPath/capacity:C: new connections: SYN -> application match ->
//                  least-connections pick -> session create -> DNAT, until the
//                  table of C sessions is full (then a fresh table).
//   BM_HttpRequest/filter:F: keep-alive requests and the server's ACKs, with the
//                  HTTP filter (parse, Host rewrite, log entry) or without.
//   BM_RandomLoads/MiB:M/chains:C: the machine's memory latency and overlap
//                  (random loads over M MiB of huge pages), the ceiling the
//                  fast path over a large table is read against.
// One thread: the figures are per core.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>

#include "data-plane/mapped_array.h"
#include "data-plane/processor.h"
#include "shared/config/config_parser.h"
#include "tests/common/packet_builder.h"

namespace {

using namespace fulcrum;
using namespace fulcrum::testing;

constexpr const char* kConfig = R"(
set service-set web inside-interface in0 outside-interface out0
set application shop service-set web facade 198.18.0.10 port 80
set application shop server s1 address 198.18.1.11 port 8080
set application shop server s2 address 198.18.1.12 port 8080
set application shop server s3 address 198.18.1.13 port 8080
set application shop server s4 address 198.18.1.14 port 8080
)";

struct Engine {
  explicit Engine(uint32_t capacity, const std::string& extra = "") : shared(capacity, store) {
    std::string error;
    shared.publish(EngineConfig::build(parseConfig(kConfig + extra).config, &error), false, &error);
    loop = std::make_unique<PacketProcessor>(shared, LinkType::kRawIp);
  }
  LocalAffinityStore store{1024};
  EngineShared shared;
  std::unique_ptr<PacketProcessor> loop;
};

// Client i: address 198.18.128.0/17 + port, so a million clients are distinct.
TcpPacketSpec clientPacket(uint32_t i, uint8_t flags) {
  TcpPacketSpec s;
  s.ethernet = false;
  s.src = ip4(198, 19, 0, 0) + (i >> 14);
  s.srcPort = static_cast<uint16_t>(1024 + (i & 0x3fff));
  s.flags = flags;
  return s;
}

constexpr size_t kPackets = 1 << 16;
constexpr size_t kLength = 40;

// kPackets client ACKs of 40 bytes to random sessions among `sessions`, so
// lookups miss the caches as real traffic over a large table would. With
// `ways` > 1, only to the sessions i with i % ways == way: the share of one
// loop when the NIC (or the TUN queue) spreads flows over `ways` loops.
std::vector<uint8_t> randomAcks(uint32_t sessions, uint32_t seed, uint32_t way = 0,
                                uint32_t ways = 1) {
  std::vector<uint8_t> all(kPackets * kLength);
  std::mt19937 rng(seed);
  for (size_t i = 0; i < kPackets; ++i) {
    const uint32_t session = (rng() % (sessions / ways)) * ways + way;
    auto p = buildTcp(clientPacket(session, tcpflag::kAck));
    std::memcpy(&all[i * kLength], p.data(), kLength);
  }
  return all;
}

// An engine whose table holds exactly `sessions` established-by-SYN sessions
// (full: the memory figure is the one for this capacity).
std::unique_ptr<Engine> filledEngine(uint32_t sessions) {
  auto e = std::make_unique<Engine>(sessions);
  for (uint32_t i = 0; i < sessions; ++i) {
    auto p = buildTcp(clientPacket(i, tcpflag::kSyn));
    e->loop->process(p.data(), p.size(), 0, Direction::kEgress, 1);
  }
  return e;
}

// What the kernel granted in huge pages (anonHugePagesIn, hugePageBytes), in
// MiB for the huge_page_MiB counters; -1 when it cannot tell.
double hugePageMiB(long bytes) {
  return bytes < 0 ? -1.0 : static_cast<double>(bytes) / (1 << 20);
}

void BM_FastPath(benchmark::State& state) {
  const uint32_t sessions = static_cast<uint32_t>(state.range(0));
  // Packets handed to processBurst at once: 32 (hash all and prefetch, then
  // the record pipeline) or 1 (each packet on its own), to measure what
  // bursts buy.
  const size_t burstSize = state.range(1) > 0 ? static_cast<size_t>(state.range(1)) : 32;
  const std::unique_ptr<Engine> filled = filledEngine(sessions);
  Engine& e = *filled;
  if (e.shared.table.size() != sessions) state.SkipWithError("table not filled");
  const std::vector<uint8_t> pristine = randomAcks(sessions, 7);
  std::vector<uint8_t> work(pristine.size());
  PacketRef burst[32];
  size_t next = 0;
  for (auto _ : state) {
    // Packets are rewritten in place, so each burst starts from fresh copies.
    std::memcpy(&work[next * kLength], &pristine[next * kLength], 32 * kLength);
    for (size_t i = 0; i < 32; ++i)
      burst[i] = {&work[(next + i) * kLength], kLength, 0, Direction::kEgress};
    for (size_t at = 0; at < 32; at += burstSize) e.loop->processBurst(burst + at, burstSize, 2);
    next = (next + 32) % kPackets;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 32);
  state.counters["bytes_per_session"] = e.shared.table.bytesPerSession();
  state.counters["huge_page_MiB"] = hugePageMiB(e.shared.table.hugePageBytes());
  if (e.loop->counters().get(Counter::kEgressNat) < static_cast<uint64_t>(state.iterations()) * 32)
    state.SkipWithError("fast path missed");
}
BENCHMARK(BM_FastPath)
    ->Args({10'000, 32})
    ->Args({100'000, 32})
    ->Args({1'000'000, 32})
    ->Args({10'000'000, 32})
    ->Args({1'000'000, 1})
    ->ArgNames({"sessions", "burst"})
    ->Unit(benchmark::kMicrosecond);

// Scaling over packet loops: 1 or 2 threads, each a loop of its own
// (PacketProcessor), bursts of 32 to random sessions of its own share (as
// when flows are spread over queues). Shared: one table for all the threads
// (the product); not shared: a table each, the ceiling with no line in
// common. items_per_second is the total over the threads; its ratio between
// threads:2 and threads:1 is the scaling figure.
void BM_FastPathLoops(benchmark::State& state) {
  const auto sessions = static_cast<uint32_t>(state.range(0));
  const bool sharedTable = state.range(1) != 0;
  const auto threads = static_cast<uint32_t>(state.threads());
  const auto self = static_cast<uint32_t>(state.thread_index());
  // Shared tables are filled once per size and kept for the process, so the
  // 1- and 2-thread runs measure the same table.
  static std::mutex mu;
  static std::map<uint32_t, std::unique_ptr<Engine>> tables;
  std::unique_ptr<Engine> own;
  Engine* engine = nullptr;
  if (sharedTable) {
    std::lock_guard<std::mutex> lock(mu);
    auto& e = tables[sessions];
    if (!e) e = filledEngine(sessions);
    engine = e.get();
  } else {
    own = filledEngine(sessions / threads);
    engine = own.get();
  }
  PacketProcessor loop(engine->shared, LinkType::kRawIp);
  const std::vector<uint8_t> pristine = sharedTable ? randomAcks(sessions, self + 11, self, threads)
                                                    : randomAcks(sessions / threads, self + 11);
  std::vector<uint8_t> work(pristine.size());
  PacketRef burst[32];
  size_t next = 0;
  for (auto _ : state) {
    std::memcpy(&work[next * kLength], &pristine[next * kLength], 32 * kLength);
    for (size_t i = 0; i < 32; ++i)
      burst[i] = {&work[(next + i) * kLength], kLength, 0, Direction::kEgress};
    loop.processBurst(burst, 32, 2);
    next = (next + 32) % kPackets;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 32);
  if (loop.counters().get(Counter::kEgressNat) < static_cast<uint64_t>(state.iterations()) * 32)
    state.SkipWithError("fast path missed");
}
BENCHMARK(BM_FastPathLoops)
    ->Args({10'000, 1})
    ->Args({10'000, 0})
    ->Args({1'000'000, 1})
    ->Args({1'000'000, 0})
    ->ArgNames({"sessions", "shared"})
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_SlowPath(benchmark::State& state) {
  const auto kCapacity = static_cast<uint32_t>(state.range(0));
  // Every SYN built up front (40 bytes a session, kept for the larger runs),
  // so the loop measures the data plane only.
  static std::vector<uint8_t> syns;
  for (size_t have = syns.size() / kLength; have < kCapacity; ++have) {
    auto p = buildTcp(clientPacket(static_cast<uint32_t>(have), tcpflag::kSyn));
    syns.insert(syns.end(), p.begin(), p.begin() + kLength);
  }
  auto e = std::make_unique<Engine>(kCapacity);
  uint8_t p[kLength];
  uint32_t i = 0;
  for (auto _ : state) {
    if (i == kCapacity) {
      state.PauseTiming();
      e = std::make_unique<Engine>(kCapacity);
      i = 0;
      state.ResumeTiming();
    }
    std::memcpy(p, &syns[size_t{i++} * kLength], kLength);
    benchmark::DoNotOptimize(e->loop->process(p, kLength, 0, Direction::kEgress, 1));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  if (e->loop->counters().get(Counter::kSessionsCreated) == 0) state.SkipWithError("no session");
}
BENCHMARK(BM_SlowPath)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->ArgName("capacity")
    ->Unit(benchmark::kNanosecond);

void BM_HttpRequest(benchmark::State& state) {
  const bool filter = state.range(0) != 0;
  Engine e(1024, filter ? "set application shop http-filter on\n" : "");
  LogRing ring;
  e.loop->setLogRing(&ring);
  std::vector<uint8_t> buffer(65536);
  auto send = [&](const uint8_t* frame, size_t length, Direction d, PacketView& out) {
    std::memcpy(buffer.data(), frame, length);
    PacketRef p{buffer.data(), static_cast<uint32_t>(length), 0, d};
    p.capacity = static_cast<uint32_t>(buffer.size());
    const Verdict verdict = e.loop->process(p, 1);
    parsePacket(buffer.data(), p.length, LinkType::kRawIp, out);
    return verdict;
  };
  PacketView out;
  TcpPacketSpec syn = clientPacket(0, tcpflag::kSyn);
  auto synFrame = buildTcp(syn);
  send(synFrame.data(), synFrame.size(), Direction::kEgress, out);
  const uint32_t server = out.dstV4();
  const uint16_t serverPort = out.dstPort();
  TcpPacketSpec ack;
  ack.ethernet = false;
  ack.src = server;
  ack.srcPort = serverPort;
  ack.dst = syn.src;
  ack.dstPort = syn.srcPort;
  ack.seq = 5000;
  ack.ack = syn.seq + 1;
  ack.flags = tcpflag::kSyn | tcpflag::kAck;
  auto synAck = buildTcp(ack);
  send(synAck.data(), synAck.size(), Direction::kIngress, out);

  // Templates; each turn patches the sequence numbers (incrementally).
  const std::string request =
      "GET /catalog/item/12345?view=full HTTP/1.1\r\nHost: 198.18.0.10\r\n"
      "User-Agent: bench/1.0\r\nAccept: */*\r\n\r\n";
  TcpPacketSpec req = clientPacket(0, tcpflag::kAck | tcpflag::kPsh);
  req.seq = syn.seq + 1;
  req.ack = 5001;
  req.payload = request;
  const auto reqFrame = buildTcp(req);
  ack.seq = 5001;
  ack.flags = tcpflag::kAck;
  auto ackFrame = buildTcp(ack);
  uint32_t clientSeq = req.seq;
  std::vector<uint8_t> packet(reqFrame.size());
  for (auto _ : state) {
    std::memcpy(packet.data(), reqFrame.data(), reqFrame.size());
    PacketView t;
    parsePacket(packet.data(), packet.size(), LinkType::kRawIp, t);
    t.setSeq(clientSeq);
    clientSeq += static_cast<uint32_t>(request.size());
    send(packet.data(), packet.size(), Direction::kEgress, out);
    const uint32_t acked = out.seq() + static_cast<uint32_t>(out.payloadLength);
    parsePacket(ackFrame.data(), ackFrame.size(), LinkType::kRawIp, t);
    t.setAck(acked);
    send(ackFrame.data(), ackFrame.size(), Direction::kIngress, out);
    if (ring.size() > 8192) {
      state.PauseTiming();  // another thread drains the ring in the daemon
      ring.drain(UINT32_MAX, [](const RequestLogEntry&) {});
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  const uint64_t logged = e.loop->counters().get(Counter::kHttpRequests);
  if (filter && (logged != static_cast<uint64_t>(state.iterations()) ||
                 e.loop->counters().get(Counter::kHttpHostsRewritten) != logged))
    state.SkipWithError("requests were not all parsed and rewritten");
  if (out.ack() != clientSeq) state.SkipWithError("the server's ACK was not mapped back");
}
BENCHMARK(BM_HttpRequest)->Arg(0)->Arg(1)->ArgName("filter")->Unit(benchmark::kNanosecond);

}  // namespace

// The machine's memory, measured in the same run as the fast path so its
// figures can be read against it: random 64-byte loads over a MappedArray of
// `MiB` (huge pages, as the session table), either each load depending on
// the one before (latency: what one chain step costs when nothing is
// prefetched) or 16 independent chains at once (what the memory system
// overlaps: the floor for a burst's prefetched lookups).
void BM_RandomLoads(benchmark::State& state) {
  const size_t lines = static_cast<size_t>(state.range(0)) << 20 >> 6;
  const size_t chains = static_cast<size_t>(state.range(1));
  struct alignas(64) Line {
    uint64_t next = 0;
  };
  MappedArray<Line> mem(lines);
  // One random cycle through every line, so no load is predictable.
  std::vector<uint32_t> order(lines);
  for (size_t i = 0; i < lines; ++i) order[i] = static_cast<uint32_t>(i);
  std::shuffle(order.begin() + 1, order.end(), std::mt19937(3));
  for (size_t i = 0; i < lines; ++i) mem[order[i]].next = order[(i + 1) % lines];
  uint64_t at[16];
  for (size_t c = 0; c < chains; ++c) at[c] = order[c * (lines / chains)];
  for (auto _ : state) {
    for (int step = 0; step < 64; ++step)
      for (size_t c = 0; c < chains; ++c) at[c] = mem[at[c]].next;
  }
  for (size_t c = 0; c < chains; ++c) benchmark::DoNotOptimize(at[c]);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 64 *
                          static_cast<int64_t>(chains));
  state.counters["huge_page_MiB"] = hugePageMiB(anonHugePagesIn({mem.data()}));
}
BENCHMARK(BM_RandomLoads)
    ->Args({8, 1})
    ->Args({64, 1})
    ->Args({64, 16})
    ->Args({1024, 1})
    ->ArgNames({"MiB", "chains"})
    ->Unit(benchmark::kNanosecond);

BENCHMARK_MAIN();
