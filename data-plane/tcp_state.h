// TCP state tracking for sessions: a pure transition function over the packed
// state word (session_types.h), and the per-state timeouts.
//
// Transitions (client = egress side, server = ingress side):
//   any RST                          -> closed
//   syn-sent     + server SYN+ACK    -> syn-received
//   syn-sent/syn-received + client ACK without SYN -> established
//   any open state + FIN from a side -> fin-wait (that side's FIN recorded)
//   FINs seen from both sides        -> time-wait
// Everything else keeps the state. closed and time-wait are final: the
// session is removed when their short timeout runs out, and a new client SYN
// on such a session starts a new session (the processor handles that).
#pragma once

#include <cstdint>

#include "data-plane/session_types.h"

namespace fulcrum {

// Seconds. The established timeout is the application's session-timeout.
struct TcpTimeouts {
  uint32_t synSent = 30;      // an unanswered SYN; short so SYN floods age out fast
  uint32_t synReceived = 30;  // handshake not completed by the client
  uint32_t finWait = 120;     // half closed: the other side may still send for a while
  uint32_t timeWait = 10;     // both FINs seen: last ACKs and retransmitted FINs
  uint32_t closed = 10;       // after RST: segments already in flight
  uint32_t flow = 300;        // a non-application flow entry: fixed age, never refreshed
};

// New state word after a packet with TCP `flags` from `from`. Keeps the
// in-use bit and any bits it does not own.
uint32_t tcpNextState(uint32_t stateWord, uint8_t flags, Direction from);

// Seconds until expiry for a session in `state`.
uint32_t tcpStateTimeout(TcpState state, const TcpTimeouts& t, uint32_t establishedTimeout);

// True when a client SYN (without ACK) on a session in `state` should start a
// new session instead: the old connection is over.
inline bool tcpSynReopens(TcpState state) {
  return state == TcpState::kTimeWait || state == TcpState::kClosed;
}

}  // namespace fulcrum
