#include "data-plane/tcp_state.h"

#include <gtest/gtest.h>

#include "shared/net/packet_view.h"

namespace fulcrum {
namespace {

using namespace tcpflag;
constexpr Direction C = Direction::kEgress;
constexpr Direction S = Direction::kIngress;

struct Step {
  uint8_t flags;
  Direction from;
  TcpState expected;
};

TcpState run(std::initializer_list<Step> steps) {
  uint32_t w = static_cast<uint32_t>(TcpState::kSynSent) | state_word::kInUse;
  for (const Step& s : steps) {
    w = tcpNextState(w, s.flags, s.from);
    EXPECT_EQ(state_word::state(w), s.expected) << "flags " << int(s.flags);
    EXPECT_TRUE(w & state_word::kInUse);
  }
  return state_word::state(w);
}

TEST(TcpState, HandshakeAndGracefulClose) {
  run({{kSyn | kAck, S, TcpState::kSynReceived},
       {kAck, C, TcpState::kEstablished},
       {kAck | kPsh, C, TcpState::kEstablished},
       {kAck, S, TcpState::kEstablished},
       {kFin | kAck, C, TcpState::kFinWait},
       {kAck, S, TcpState::kFinWait},
       {kFin | kAck, C, TcpState::kFinWait},  // retransmitted FIN: still one side
       {kFin | kAck, S, TcpState::kTimeWait},
       {kAck, C, TcpState::kTimeWait}});
}

TEST(TcpState, ServerClosesFirst) {
  run({{kSyn | kAck, S, TcpState::kSynReceived},
       {kAck, C, TcpState::kEstablished},
       {kFin | kAck, S, TcpState::kFinWait},
       {kFin | kAck, C, TcpState::kTimeWait}});
}

TEST(TcpState, ResetFromEitherSideCloses) {
  run({{kSyn | kAck, S, TcpState::kSynReceived}, {kRst, C, TcpState::kClosed}});
  run({{kRst | kAck, S, TcpState::kClosed}, {kSyn | kAck, S, TcpState::kClosed}});
  run({{kSyn | kAck, S, TcpState::kSynReceived},
       {kAck, C, TcpState::kEstablished},
       {kFin | kAck, C, TcpState::kFinWait},
       {kRst, S, TcpState::kClosed}});
}

TEST(TcpState, RetransmittedSynAndMissedSynAck) {
  run({{kSyn, C, TcpState::kSynSent}, {kAck, C, TcpState::kEstablished}});
  // A retransmitted client SYN leaves syn-received as it is.
  run({{kSyn | kAck, S, TcpState::kSynReceived}, {kSyn, C, TcpState::kSynReceived}});
}

TEST(TcpState, TimeoutsPerState) {
  TcpTimeouts t;
  EXPECT_EQ(tcpStateTimeout(TcpState::kEstablished, t, 900), 900u);
  EXPECT_EQ(tcpStateTimeout(TcpState::kSynSent, t, 900), t.synSent);
  EXPECT_EQ(tcpStateTimeout(TcpState::kTimeWait, t, 900), t.timeWait);
  EXPECT_EQ(tcpStateTimeout(TcpState::kClosed, t, 900), t.closed);
  EXPECT_EQ(tcpStateTimeout(TcpState::kFinWait, t, 900), t.finWait);
  EXPECT_TRUE(tcpSynReopens(TcpState::kTimeWait));
  EXPECT_TRUE(tcpSynReopens(TcpState::kClosed));
  EXPECT_FALSE(tcpSynReopens(TcpState::kEstablished));
}

}  // namespace
}  // namespace fulcrum
