// Plain types of the session table (operations live in session_table.h).
#pragma once

#include <atomic>
#include <cstdint>

namespace fulcrum {

// egress: toward the cluster (client -> façade); ingress: from the cluster.
enum class Direction : uint8_t { kEgress = 0, kIngress = 1 };

enum class TcpState : uint8_t {
  kSynSent = 0,      // client SYN seen
  kSynReceived = 1,  // server SYN+ACK seen
  kEstablished = 2,  // handshake done (or data seen)
  kFinWait = 3,      // one side sent FIN (half closed)
  kTimeWait = 4,     // both sides sent FIN; kept briefly for the last ACKs
  kClosed = 5,       // RST seen; kept briefly for packets in flight
};
const char* tcpStateName(TcpState s);

enum class SessionKind : uint8_t {
  kApplication = 0,  // a NATed client connection to an application
  kFlow = 1,         // a connection that matched no application: passed unchanged
};

// What a packet carries, as seen on the wire in its direction. An egress key
// is (client, façade); an ingress key is (server, client).
//
// 16 bytes on an 8-byte boundary, the padding byte named and zeroed: a burst
// writes its keys field by field and then copies and hashes them as whole
// words, and a 15-byte key made the CPU stall on every such load that
// straddled the narrower stores (store forwarding failed; the fast path ran
// about 40 % slower).
struct alignas(8) FlowKey4 {
  uint32_t src = 0;
  uint32_t dst = 0;
  uint16_t srcPort = 0;
  uint16_t dstPort = 0;
  uint16_t serviceSet = 0;
  Direction direction = Direction::kEgress;
  uint8_t reserved = 0;
};
static_assert(sizeof(FlowKey4) == 16, "a flow key must stay two words");

// The packed, atomically updated part of a session: TCP state and flags. Two
// loops may update one session at once (egress on one, ingress on another),
// each holding a different bucket lock, so this word is changed by CAS.
//
// Bits 8-31 hold the session's HTTP filter slot (HttpFlowPool; 0 = none). It is
// set at creation and never changed, and it lives here because the record has
// no other room: a 49th byte would cost 16 more per session.
namespace state_word {
inline constexpr uint32_t kStateMask = 0x0f;
inline constexpr uint32_t kFinFromClient = 0x10;
inline constexpr uint32_t kFinFromServer = 0x20;
inline constexpr uint32_t kInUse = 0x80;
inline constexpr uint32_t kHttpSlotShift = 8;
inline constexpr uint32_t kMaxHttpSlots = (1u << 24) - 1;
inline uint32_t httpSlot(uint32_t w) {
  return w >> kHttpSlotShift;
}
inline TcpState state(uint32_t w) {
  return static_cast<TcpState>(w & kStateMask);
}
inline uint32_t withState(uint32_t w, TcpState s) {
  return (w & ~kStateMask) | static_cast<uint32_t>(s);
}
}  // namespace state_word

// Who a session connects: written once at creation and then only read.
// Session4, SessionInit and SessionInfo all carry it, so one definition of
// the two keys serves the table, the packet path and the dumps.
struct SessionIdentity {
  uint32_t client = 0;
  uint32_t facade = 0;
  uint32_t server = 0;
  uint16_t clientPort = 0;
  uint16_t facadePort = 0;
  uint16_t serverPort = 0;
  uint16_t serviceSet = 0;
  uint16_t app = 0;          // index into the engine configuration's applications
  uint16_t serverIndex = 0;  // index into that application's server pool

  FlowKey4 egressKey() const {
    return {client, facade, clientPort, facadePort, serviceSet, Direction::kEgress};
  }
  FlowKey4 ingressKey() const {
    return {server, client, serverPort, clientPort, serviceSet, Direction::kIngress};
  }
};

// One session: 48 bytes. Both table entries (egress and ingress) are chained
// through next[], so a session plus its share of the bucket array stays
// within 64 bytes (see SessionTable::bytesPerSession()).
//
// Identity fields are written once at creation, under both bucket locks, and
// read under either; next[] is guarded by the lock of the bucket the entry is
// chained in; stateWord and expiresAt are atomics (see above).
struct Session4 : SessionIdentity {
  uint32_t next[2] = {0, 0};  // chain links of the egress [0] and ingress [1] entries
  uint32_t createdAt = 0;
  std::atomic<uint32_t> expiresAt{0};
  std::atomic<uint32_t> stateWord{0};
  SessionKind kind = SessionKind::kApplication;
  uint8_t reserved = 0;
  uint16_t epoch = 0;  // the configuration it was made under (EngineShared)
};
static_assert(sizeof(Session4) == 48, "a session record must stay 48 bytes");

// What create() needs to make a session: plain and copyable (Session4 holds
// atomics and is neither).
struct SessionInit : SessionIdentity {
  SessionKind kind = SessionKind::kApplication;
  uint16_t epoch = 0;
  uint32_t httpSlot = 0;  // HttpFlowPool slot, 0 = not filtered
  TcpState state = TcpState::kSynSent;
  uint32_t createdAt = 0;
  uint32_t expiresAt = 0;
};

// A copy of a session taken under its lock, for decisions made after the lock
// is released (and for dumps).
struct SessionInfo : SessionIdentity {
  uint32_t index = 0;
  SessionKind kind = SessionKind::kApplication;
  uint16_t epoch = 0;
  uint32_t httpSlot = 0;  // to give back to the HttpFlowPool when the session ends
  TcpState state = TcpState::kSynSent;
  uint32_t createdAt = 0;
  uint32_t expiresAt = 0;
};

}  // namespace fulcrum
