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
// Sessions of applications with http-filter on also pass the HTTP request
// filter (http/http_filter.h): egress packets are parsed, logged and may have
// their Host rewritten and their sequence number shifted; ingress packets get
// their acknowledgements shifted back. A rewrite can change a packet's
// length: PacketRef::length is updated, within PacketRef::capacity.
//
// Table-full policy: a new application connection is dropped (drop_table_full;
// the client retries its SYN). Non-application flows may hold at most a
// quarter of the table (flowLimit), so a scan of other addresses cannot starve
// applications; past that, their packets are forwarded without an entry.
//
// With no configuration published, every packet is forwarded unchanged.
//
// One processor per loop, used by one thread. It shares the SessionTable, the
// AffinityStore and the configuration (EngineShared) with the other loops and
// reads the current configuration once per burst. Rewrites are made in
// place; checksums are updated incrementally (checksum.h).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>

#include "data-plane/affinity_store.h"
#include "data-plane/counters.h"
#include "data-plane/engine_config.h"
#include "data-plane/engine_shared.h"
#include "data-plane/http/http_filter.h"
#include "data-plane/io/packet_io.h"
#include "data-plane/log_queue.h"
#include "data-plane/session_table.h"
#include "shared/net/packet_view.h"

namespace fulcrum {

// kParked: the packet was copied aside to wait for the affinity store; it goes
// out later through resume(), or is dropped there (counted).
enum class Verdict : uint8_t { kForward, kDrop, kParked };

struct PacketRef {
  uint8_t* data = nullptr;
  uint32_t length = 0;  // updated when the HTTP filter resized the packet
  uint16_t serviceSet = 0;
  Direction direction = Direction::kEgress;
  bool l4ChecksumPartial = false;       // see PacketView::l4ChecksumPartial
  Verdict verdict = Verdict::kForward;  // set by processBurst
  uint32_t capacity = 0;                // bytes the buffer holds from data on; 0 = length
  const uint8_t* vnet = nullptr;        // its virtio_net_hdr, kept with a parked packet
};

class PacketProcessor {
 public:
  static constexpr size_t kMaxBurst = 32;

  PacketProcessor(EngineShared& shared, LinkType link);
  ~PacketProcessor();
  PacketProcessor(const PacketProcessor&) = delete;
  PacketProcessor& operator=(const PacketProcessor&) = delete;

  // One packet whose length must not change (no room to grow: a Host rewrite
  // that would need it is left undone and counted).
  Verdict process(uint8_t* frame, size_t length, uint16_t serviceSet, Direction direction,
                  uint32_t now);
  // One packet, with room to grow up to packet.capacity; sets verdict and length.
  Verdict process(PacketRef& packet, uint32_t now);
  // Parses and hashes the whole burst first and prefetches the buckets, then
  // processes each packet (bursts larger than kMaxBurst are split).
  void processBurst(PacketRef* packets, size_t count, uint32_t now);

  // This loop ages the buckets [begin, end) of the table, `budget` buckets
  // per call of expireStep(), wrapping around.
  void setExpirySlice(uint32_t begin, uint32_t end);
  uint32_t expireStep(uint32_t now, uint32_t budget);
  // Ages the whole slice at once (tests, the harness, shutdown).
  uint32_t expireAll(uint32_t now);

  // Where this loop's request logs go (Engine: one ring per loop).
  void setLogRing(LogRing* ring) { http_.setLogRing(ring); }
  // Which of a remote store's per-loop queues this loop uses.
  void setLoopIndex(size_t index) { loopIndex_ = index; }

  // New connections that wait for the remote affinity store (a cache miss)
  // are parked: copied aside, at most kMaxParked per loop, while other
  // packets flow. resume() finishes those whose reply came or whose wait
  // (EngineShared::remoteTimeoutUs) ran out, the latter with a local
  // decision. Each one that goes out is written to one of `out` (data,
  // length, vnet header), with its service set in `serviceSets`; the caller
  // sends it toward the cluster. Call it every loop turn; it returns at once
  // when nothing is parked.
  // `directions` (may be null) says which way each goes: egress toward the
  // cluster, ingress (a server packet that recovered a session) toward the
  // clients.
  size_t resume(uint32_t now, PacketBuffer* const* out, uint16_t* serviceSets, size_t max,
                Direction* directions = nullptr);
  size_t parked() const { return parkedCount_; }
  static constexpr size_t kMaxParked = 256;
  // Of which mid-connection lookups (session sync) may hold at most this many,
  // so stray packets cannot crowd out new connections.
  static constexpr size_t kMaxParkedLookups = kMaxParked / 4;
  // A full-size segment fits (a recovered upload); GSO super-packets and
  // larger SYNs are decided at once.
  static constexpr size_t kParkedBytes = 2048;

  const LoopCounters& counters() const { return counters_; }
  // Forwarded packets that the device would not take (counted by the I/O loop).
  void countTxErrors(uint64_t n) { counters_.add(Counter::kTxErrors, n); }
  void countTunIoFallbacks(uint64_t n) { counters_.add(Counter::kTunIoFallbacks, n); }
  // Marks a quiescent point without a packet: an idle loop calls it each
  // time its poll returns, so configuration swaps can complete.
  void idle() { cfg_ = shared_.beginBurst(seenSeq_); }

 private:
  Verdict handle(PacketView& v, ParseStatus status, uint64_t hash, const FlowKey4& key,
                 uint32_t now);
  Verdict egress(PacketView& v, const FlowKey4& key, uint64_t hash, uint32_t now);
  Verdict ingress(PacketView& v, const FlowKey4& key, uint64_t hash, uint32_t now);
  // `resumed`: the store's reply for a parked packet (answered or not).
  Verdict newConnection(PacketView& v, const FlowKey4& key, uint64_t hash, uint32_t now,
                        const AffinityReply* resumed = nullptr);
  // A packet of a connection this engine has no session for, of an
  // application with session-sync: another engine may have made it. From the
  // client (egress) or from the server (ingress, `key` its ingress key).
  Verdict recoverSession(PacketView& v, const FlowKey4& key, uint64_t hash, uint32_t now,
                         const AffinityReply* resumed);
  // Creates the session `init` of `app` (its server's count already taken)
  // under the slow-path lock `slow`, which it releases; on failure the count,
  // the epoch and any HTTP slot are given back. Sessions it evicted are ended
  // after the lock is dropped.
  SessionTable::CreateResult createSession(const SessionInit& init, const AppRuntime& app,
                                           std::shared_lock<std::shared_mutex>& slow, uint32_t now);
  // Parks the packet being handled with `request` (its token is set here).
  // False when there is no room, it is too large, or the store's queue is full.
  bool park(const PacketView& v, AffinityRequest request, bool sessionSync);
  // One parked packet, with the store's reply (answered false: timed out).
  Verdict finishParked(size_t index, const AffinityReply& reply, uint32_t now);
  Verdict newFlow(const FlowKey4& key, uint32_t now);
  // An HTTP filter state for the session a client SYN opens, or 0 (none free).
  uint32_t newHttpFlow(const PacketView& syn);
  // The filter's egress step for session `s` (under its egress bucket lock).
  bool filterEgress(Session4& s, uint32_t slot, PacketView& v);
  // A session left the table: give its server back, and its flow slot.
  void onRemoved(const SessionInfo& info);
  Verdict drop(Counter reason) {
    counters_.add(reason);
    return Verdict::kDrop;
  }

  uint32_t establishedTimeout(const Session4& s) const;

  EngineShared& shared_;
  const EngineConfig* cfg_ = nullptr;  // for the burst in progress
  TcpTimeouts timeouts_;               // the defaults, when no configuration is published
  alignas(64) std::atomic<uint64_t> seenSeq_{0};  // quiescence slot (EngineShared)
  LinkType link_;
  uint32_t sliceBegin_ = 0, sliceEnd_ = 0, cursor_ = 0;
  LoopCounters counters_;
  HttpFilter http_{counters_};

  struct Parked {
    uint64_t deadlineUs = 0;
    uint32_t generation = 0;  // with the index, the request's token
    uint32_t length = 0;
    uint32_t proposal = 0;  // what was proposed to the store (kept on a timeout)
    uint16_t serviceSet = 0;
    Direction direction = Direction::kEgress;
    bool used = false;
    bool partial = false;
    bool sessionSync = false;  // a lookup for a connection another engine made
    uint8_t vnet[kVnetHeaderSize] = {};
    uint8_t bytes[kParkedBytes];
  };
  size_t loopIndex_ = 0;
  const PacketRef* current_ = nullptr;  // the packet being handled (for park())
  std::unique_ptr<Parked[]> parked_;
  uint16_t parkedFree_[kMaxParked];
  size_t parkedFreeCount_ = 0;
  size_t parkedCount_ = 0;
  size_t parkedLookups_ = 0;
};

}  // namespace fulcrum
