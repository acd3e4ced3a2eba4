// PacketProcessor: the packet path of DESIGN.md for one packet loop.
//
//   not IPv4/IPv6 TCP              -> forward unchanged (counted)
//   malformed headers              -> drop, counted under its reason
//   IPv6 TCP                       -> forward unchanged (no IPv6 NAT yet)
//   egress hit, application        -> DNAT to the session's server, forward
//   egress hit, non-app flow       -> forward unchanged
//   egress miss, application SYN   -> persistence / pick a server, create the
//                                     session, DNAT, forward
//   egress miss, application, no SYN -> drop (drop_not_syn)
//   egress miss, no application    -> create a flow entry (fixed 5 minutes), forward
//   ingress hit                    -> un-NAT source to the façade, forward
//   ingress miss                   -> forward unchanged
//
// Table-full policy: a new application connection is dropped (drop_table_full;
// the client retries its SYN). Non-application flows may hold at most a
// quarter of the table (flowLimit), so a scan of other addresses cannot starve
// applications; past that, their packets are forwarded without an entry.
//
// One processor per loop, used by one thread. It shares the SessionTable, the
// AffinityStore and the EngineConfig with the other loops. Rewrites are made
// in place; checksums are updated incrementally (checksum.h).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "data-plane/affinity_store.h"
#include "data-plane/counters.h"
#include "data-plane/engine_config.h"
#include "data-plane/session_table.h"
#include "shared/net/packet_view.h"

namespace fulcrum {

enum class Verdict : uint8_t { kForward, kDrop };

struct PacketRef {
  uint8_t* data = nullptr;
  uint32_t length = 0;
  uint16_t serviceSet = 0;
  Direction direction = Direction::kEgress;
  Verdict verdict = Verdict::kForward;  // set by processBurst
};

// State shared by every loop of one engine.
struct EngineShared {
  EngineShared(uint32_t capacity, AffinityStore& store)
      : table(capacity), affinity(store), flowLimit(capacity / 4) {}
  SessionTable table;
  AffinityStore& affinity;
  uint32_t flowLimit;                  // at most this many non-application flow entries
  std::atomic<uint32_t> flowCount{0};  // live non-application flow entries
};

class PacketProcessor {
 public:
  static constexpr size_t kMaxBurst = 32;

  PacketProcessor(EngineShared& shared, const EngineConfig& config, LinkType link);

  Verdict process(uint8_t* frame, size_t length, uint16_t serviceSet, Direction direction,
                  uint32_t now);
  // Parses and hashes the whole burst first and prefetches the buckets, then
  // processes each packet (bursts larger than kMaxBurst are split).
  void processBurst(PacketRef* packets, size_t count, uint32_t now);

  // This loop ages the buckets [begin, end) of the table, `budget` buckets
  // per call of expireStep(), wrapping around.
  void setExpirySlice(uint32_t begin, uint32_t end);
  uint32_t expireStep(uint32_t now, uint32_t budget);
  // Ages the whole slice at once (tests, the harness, shutdown).
  uint32_t expireAll(uint32_t now);

  const LoopCounters& counters() const { return counters_; }

 private:
  Verdict handle(PacketView& v, ParseStatus status, uint64_t hash, const FlowKey4& key,
                 uint32_t now);
  Verdict egress(PacketView& v, const FlowKey4& key, uint64_t hash, uint32_t now);
  Verdict ingress(PacketView& v, const FlowKey4& key, uint64_t hash, uint32_t now);
  Verdict newConnection(PacketView& v, const FlowKey4& key, uint64_t hash, const AppRuntime& app,
                        uint32_t now);
  Verdict newFlow(const FlowKey4& key, uint32_t now);
  // A session left the table: give its server back, and its flow slot.
  void onRemoved(const SessionInfo& info);
  Verdict drop(Counter reason) {
    counters_.add(reason);
    return Verdict::kDrop;
  }

  EngineShared& shared_;
  const EngineConfig& config_;
  LinkType link_;
  uint32_t sliceBegin_ = 0, sliceEnd_ = 0, cursor_ = 0;
  LoopCounters counters_;
};

}  // namespace fulcrum
