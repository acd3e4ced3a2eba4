#include "data-plane/tcp_state.h"

#include "shared/net/packet_view.h"

namespace fulcrum {

uint32_t tcpNextState(uint32_t w, uint8_t flags, Direction from) {
  using namespace state_word;
  TcpState s = state(w);
  if (s == TcpState::kClosed) return w;
  if (flags & tcpflag::kRst) return withState(w, TcpState::kClosed);
  const bool syn = flags & tcpflag::kSyn;
  const bool ack = flags & tcpflag::kAck;
  const bool client = from == Direction::kEgress;
  if (flags & tcpflag::kFin) {
    w |= client ? kFinFromClient : kFinFromServer;
    bool both = (w & kFinFromClient) && (w & kFinFromServer);
    return withState(w, both ? TcpState::kTimeWait : TcpState::kFinWait);
  }
  switch (s) {
    case TcpState::kSynSent:
      if (!client && syn && ack) return withState(w, TcpState::kSynReceived);
      // A client ACK here means we missed the SYN+ACK (it took another path);
      // the client thinks the connection is up, so do we.
      if (client && !syn && ack) return withState(w, TcpState::kEstablished);
      return w;
    case TcpState::kSynReceived:
      if (client && !syn && ack) return withState(w, TcpState::kEstablished);
      return w;
    default:
      return w;
  }
}

uint32_t tcpStateTimeout(TcpState state, const TcpTimeouts& t, uint32_t establishedTimeout) {
  switch (state) {
    case TcpState::kSynSent:
      return t.synSent;
    case TcpState::kSynReceived:
      return t.synReceived;
    case TcpState::kEstablished:
      return establishedTimeout;
    case TcpState::kFinWait:
      return t.finWait;
    case TcpState::kTimeWait:
      return t.timeWait;
    case TcpState::kClosed:
      return t.closed;
  }
  return t.closed;
}

}  // namespace fulcrum
