// Per-loop counters, defined once: the enum, the names and the help text all
// come from FULCRUM_LOOP_COUNTERS. Each packet loop owns one LoopCounters and
// is its only writer; readers (status, tests) sum loops with relaxed loads.
// Counters whose name starts with "drop_" are drop reasons; their sum is the
// number of packets dropped.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "shared/net/packet_view.h"

namespace fulcrum {

// X(enumerator, name, help)
#define FULCRUM_LOOP_COUNTERS(X)                                                                   \
  X(kRxPackets, "rx_packets", "packets received by the loop")                                      \
  X(kTxPackets, "tx_packets", "packets forwarded (rewritten or not)")                              \
  X(kTxErrors, "tx_errors", "forwarded packets the output device did not take")                    \
  X(kTunIoFallbacks, "tun_io_fallbacks",                                                           \
    "TUN queues that asked for io_uring and use read()/write() instead (should read 0)")           \
  X(kNonIpPassed, "non_ip_passed", "frames that are not IP, forwarded unchanged")                  \
  X(kNonTcpPassed, "non_tcp_passed", "IPv4 packets of other protocols, forwarded unchanged")       \
  X(kIpv6Passed, "ipv6_passed", "IPv6 packets forwarded unchanged (no IPv6 NAT yet)")              \
  X(kEgressNat, "egress_nat", "egress packets of a session rewritten to its server")               \
  X(kIngressUnnat, "ingress_unnat", "ingress packets rewritten back to the facade")                \
  X(kFlowPassed, "flow_passed", "packets of non-application flows, forwarded unchanged")           \
  X(kIngressMissPassed, "ingress_miss_passed",                                                     \
    "ingress packets of no session, forwarded unchanged")                                          \
  X(kSessionsCreated, "sessions_created", "application sessions created")                          \
  X(kFlowsCreated, "flows_created", "non-application flow entries created")                        \
  X(kSessionsReopened, "sessions_reopened", "client SYN on a closed session: new session")         \
  X(kSessionsExpired, "sessions_expired", "sessions removed by ageing")                            \
  X(kPersistenceHits, "persistence_hits", "new sessions sent to a persisted server")               \
  X(kPersistenceOverrides, "persistence_overrides",                                                \
    "persisted server not eligible (down, draining, full): another one picked")                    \
  X(kAffinityFallbacks, "affinity_fallbacks",                                                      \
    "affinity store could not answer; decided locally (should read 0)")                            \
  X(kStoreWaits, "affinity_waits", "new connections that waited for the remote affinity store")    \
  X(kStoreTimeouts, "affinity_timeouts",                                                           \
    "new connections decided locally: the remote store did not answer in affinity-store-timeout")  \
  X(kStoreDownDecisions, "affinity_down_decisions",                                                \
    "new connections decided locally: the remote store was down or failed the request")            \
  X(kStoreQueueFull, "affinity_queue_full",                                                        \
    "new connections decided locally: no room to wait (loop's queue or store's queue full)")       \
  X(kSessionSyncWrites, "session_sync_writes", "sessions written to the store (session-sync)")     \
  X(kSessionSyncRecoveries, "session_sync_recoveries",                                             \
    "connections another engine made, continued here to the same server (session-sync)")           \
  X(kFlowTableFullPassed, "flow_table_full_passed",                                                \
    "non-application packets forwarded without an entry: table full")                              \
  X(kCreateRaces, "create_races", "another loop created the same session first (should be rare)")  \
  X(kDropNoServer, "drop_no_server", "new connection, no eligible server: SYN dropped")            \
  X(kDropTableFull, "drop_table_full", "new connection while the session table was full")          \
  X(kDropNotSyn, "drop_not_syn", "packet to a facade with no session and no SYN")                  \
  X(kDropIngressNoSession, "drop_ingress_no_session",                                              \
    "server packet of a session-sync application with no session here (not yet recovered)")        \
  X(kDropIngressConflict, "drop_ingress_conflict",                                                 \
    "new connection whose server-side key another session holds")                                  \
  X(kHttpRequests, "http_requests", "HTTP requests read by the HTTP filter (each one logged)")     \
  X(kHttpHostsRewritten, "http_hosts_rewritten",                                                   \
    "Host values naming the facade rewritten to the server's address")                             \
  X(kHttpRetransmitsRewritten, "http_retransmits_rewritten",                                       \
    "retransmitted client segments whose Host value was rewritten again")                          \
  X(kHttpRetransmitsTrimmed, "http_retransmits_trimmed",                                           \
    "client retransmissions cut short or started later: they cut a rewritten Host or outgrew the " \
    "packet")                                                                                      \
  X(kHttpHostSplit, "http_host_split",                                                             \
    "Host values naming the facade split across segments: passed as sent")                         \
  X(kHttpHostNotRewritten, "http_host_not_rewritten",                                              \
    "Host values naming the facade passed as sent: no room in the packet, or 8 rewrites unacked")  \
  X(kHttpNotHttp, "http_not_http",                                                                 \
    "filtered connections that did not start with an HTTP/1.x request: passed unparsed")           \
  X(kHttpMalformed, "http_malformed",                                                              \
    "filtered connections with a malformed request: the rest passed unparsed")                     \
  X(kHttpTooLong, "http_too_long",                                                                 \
    "filtered connections with a header block over 16 KiB: the rest passed unparsed")              \
  X(kHttpTunneled, "http_tunneled",                                                                \
    "CONNECT or Upgrade: the rest of the connection passed unparsed")                              \
  X(kHttpMssLowered, "http_mss_lowered",                                                           \
    "server SYN+ACKs whose MSS was lowered to leave room for a longer Host")                       \
  X(kHttpUntracked, "http_untracked",                                                              \
    "connections of http-filter applications not filtered: every filter state in use")             \
  X(kHttpBodyGapsSkipped, "http_body_gaps_skipped",                                                \
    "client segments past a gap inside a request body: the gap skipped unread")                    \
  X(kDropHttpOutOfOrder, "drop_http_out_of_order",                                                 \
    "client segments past a gap in a request head (the client resends them)")                      \
  X(kDropHttpRetransmitSplit, "drop_http_retransmit_split",                                        \
    "client retransmissions lying wholly inside a rewritten Host value (the client resends them)") \
  FULCRUM_PACKET_MALFORMED(FULCRUM_LOOP_COUNTER_FROM_PARSE)

#define FULCRUM_LOOP_COUNTER_FROM_PARSE(e, name, help) X_PARSE(e, name, help)

enum class Counter : uint16_t {
#define FULCRUM_X(e, name, help) e,
#define X_PARSE(e, name, help) e,
  FULCRUM_LOOP_COUNTERS(FULCRUM_X)
#undef X_PARSE
#undef FULCRUM_X
      kCount
};

inline constexpr size_t kCounterCount = static_cast<size_t>(Counter::kCount);

struct CounterInfo {
  std::string_view name;
  std::string_view help;
};

inline constexpr std::array<CounterInfo, kCounterCount> kCounterInfo = {{
#define FULCRUM_X(e, name, help) {name, help},
#define X_PARSE(e, name, help) {name, help},
    FULCRUM_LOOP_COUNTERS(FULCRUM_X)
#undef X_PARSE
#undef FULCRUM_X
}};

// The loop counter for a malformed-packet parse status.
inline Counter counterFor(ParseStatus malformed) {
  switch (malformed) {
#define X_PARSE(e, name, help) \
  case ParseStatus::e:         \
    return Counter::e;
#define FULCRUM_X(e, name, help)
    FULCRUM_LOOP_COUNTERS(FULCRUM_X)
#undef FULCRUM_X
#undef X_PARSE
    default:
      return Counter::kCount;
  }
}

inline bool isDropCounter(Counter c) {
  return kCounterInfo[static_cast<size_t>(c)].name.starts_with("drop_");
}

class alignas(64) LoopCounters {
 public:
  // Single writer: a load and a store, no locked read-modify-write.
  void add(Counter c, uint64_t n = 1) {
    auto& v = values_[static_cast<size_t>(c)];
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get(Counter c) const {
    return values_[static_cast<size_t>(c)].load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<uint64_t>, kCounterCount> values_{};
};

}  // namespace fulcrum
