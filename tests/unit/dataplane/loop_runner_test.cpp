// The packet loops with a socketpair standing in for each TUN queue: packets
// written to the inside "device" come out of the outside one NATed, replies
// come back un-NATed, by real loop threads.
#include "data-plane/io/loop_runner.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "shared/config/config_parser.h"
#include "tests/common/packet_builder.h"

namespace fulcrum {
namespace {

using testing::buildTcp;
using testing::ip4;
using testing::TcpPacketSpec;

// One end of a SOCK_SEQPACKET pair: one packet per read and write, like TUN.
class SocketQueue final : public PacketQueue {
 public:
  // `fellBack`: the queue reports one fallback, as a TUN queue refused
  // io_uring does.
  explicit SocketQueue(int fd, bool fellBack = false) : fd_(fd) {
    if (fellBack) countFallback();
  }
  ~SocketQueue() override { ::close(fd_); }
  int pollFd() const override { return fd_; }
  size_t receiveBurst(PacketBuffer** b, size_t max) override {
    size_t n = 0;
    for (; n < max; ++n) {
      ssize_t got = ::recv(fd_, b[n]->data, kMaxPacketSize, MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno != EAGAIN)) markDead();  // the "device" went away
      if (got <= 0) break;
      b[n]->length = static_cast<uint32_t>(got);
    }
    return n;
  }
  size_t transmitBurst(PacketBuffer* const* b, size_t count) override {
    size_t sent = 0;
    for (size_t i = 0; i < count; ++i)
      if (::send(fd_, b[i]->data, b[i]->length, MSG_DONTWAIT) > 0) ++sent;
    return sent;
  }

 private:
  int fd_;
};

class LoopRunnerTest : public ::testing::Test {
 protected:
  virtual uint32_t busyPollUs() const { return 0; }
  virtual bool fallsBack(const std::string&) const { return false; }

  void SetUp() override {
    Engine::Options o;
    o.capacity = 4096;
    o.loops = 2;
    engine_ = std::make_unique<Engine>(o);
    runner_ = std::make_unique<LoopRunner>(
        *engine_,
        [this](const std::string& name, std::string*) -> std::unique_ptr<PacketQueue> {
          int sv[2];
          socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
          std::lock_guard lock(mutex_);
          peers_[name].push_back(sv[1]);  // the "kernel" side of each queue
          return std::make_unique<SocketQueue>(sv[0], fallsBack(name));
        },
        [this](const std::string& name, std::string*) {
          std::lock_guard lock(mutex_);
          up_.push_back(name);
          return true;
        },
        PacketProcessor::kMaxBurst, busyPollUs());
    pb::ConfigSnapshot snapshot;
    snapshot.set_generation(1);
    snapshot.set_config_text(
        "set service-set web inside-interface fs-in outside-interface fs-out\n"
        "set application shop service-set web facade 198.18.0.10 port 80\n"
        "set application shop server s1 address 198.18.1.11 port 8080\n");
    std::string error;
    ASSERT_TRUE(engine_->applySnapshot(snapshot, &error)) << error;
    ASSERT_TRUE(runner_->sync(engine_->shared().current()->config(), &error)) << error;
    runner_->start();
  }
  void TearDown() override {
    runner_->stop();
    for (auto& [name, fds] : peers_)
      for (int fd : fds) ::close(fd);
  }
  // Reads one packet from any queue of device `name`, bounded. Peers whose
  // queue was closed (replaced after a device vanished) hang up; skip them.
  std::vector<uint8_t> readFrom(const std::string& name) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline) {
      std::vector<pollfd> fds;
      {
        std::lock_guard lock(mutex_);
        for (int fd : peers_[name]) fds.push_back({fd, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
      for (auto& p : fds) {
        if (!(p.revents & POLLIN)) continue;
        std::vector<uint8_t> buf(kMaxPacketSize);
        ssize_t n = ::recv(p.fd, buf.data(), buf.size(), 0);
        if (n <= 0) continue;
        buf.resize(static_cast<size_t>(n));
        return buf;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return {};
  }

  // 20 connections' SYN through the loops to the server, SYN-ACK back.
  void forwardsBothWays();

  std::unique_ptr<Engine> engine_;
  std::unique_ptr<LoopRunner> runner_;
  std::mutex mutex_;
  std::map<std::string, std::vector<int>> peers_;
  std::vector<std::string> up_;
};

// The same loops, busy polling for 1 ms after each packet before they sleep.
class LoopRunnerBusyPollTest : public LoopRunnerTest {
 protected:
  uint32_t busyPollUs() const override { return 1000; }
};

void LoopRunnerTest::forwardsBothWays() {
  EXPECT_EQ(peers_["fs-in"].size(), 2u);  // one queue per loop
  EXPECT_EQ(peers_["fs-out"].size(), 2u);
  EXPECT_EQ(up_, (std::vector<std::string>{"fs-in", "fs-out"}));
  for (uint16_t i = 0; i < 20; ++i) {
    TcpPacketSpec syn;
    syn.ethernet = false;
    syn.srcPort = static_cast<uint16_t>(5000 + i);
    auto p = buildTcp(syn);
    // The kernel may give a flow to any queue: use each loop's queue in turn.
    ASSERT_GT(::send(peers_["fs-in"][i % 2], p.data(), p.size(), 0), 0);
    auto out = readFrom("fs-out");
    ASSERT_FALSE(out.empty()) << "no packet left the outside device";
    PacketView v;
    ASSERT_EQ(parsePacket(out.data(), out.size(), LinkType::kRawIp, v), ParseStatus::kTcpIpv4);
    EXPECT_EQ(v.dstV4(), ip4(198, 18, 1, 11));
    EXPECT_EQ(v.dstPort(), 8080);
    EXPECT_TRUE(v.tcpChecksumValid());

    TcpPacketSpec synAck;
    synAck.ethernet = false;
    synAck.src = ip4(198, 18, 1, 11);
    synAck.srcPort = 8080;
    synAck.dst = syn.src;
    synAck.dstPort = syn.srcPort;
    synAck.flags = tcpflag::kSyn | tcpflag::kAck;
    p = buildTcp(synAck);
    ASSERT_GT(::send(peers_["fs-out"][(i + 1) % 2], p.data(), p.size(), 0), 0);  // the other loop
    auto back = readFrom("fs-in");
    ASSERT_FALSE(back.empty());
    ASSERT_EQ(parsePacket(back.data(), back.size(), LinkType::kRawIp, v), ParseStatus::kTcpIpv4);
    EXPECT_EQ(v.srcV4(), ip4(198, 18, 0, 10));
    EXPECT_EQ(v.srcPort(), 80);
  }
  EXPECT_EQ(engine_->shared().table.size(), 20u);
}

// The outside device's queues fall back to slower I/O (as TUN queues do
// where io_uring is refused): traffic still flows, and each loop counts its
// queue once in tun_io_fallbacks.
class LoopRunnerFallbackTest : public LoopRunnerTest {
 protected:
  bool fallsBack(const std::string& name) const override { return name == "fs-out"; }
};

TEST_F(LoopRunnerFallbackTest, FallbacksAreCountedOncePerQueue) {
  forwardsBothWays();
  uint64_t fallbacks = 0;
  for (size_t l = 0; l < 2; ++l) {
    const uint64_t n = engine_->loop(l).counters().get(Counter::kTunIoFallbacks);
    EXPECT_EQ(n, 1u) << "loop " << l;
    fallbacks += n;
  }
  EXPECT_EQ(fallbacks, 2u);
}

TEST_F(LoopRunnerTest, ForwardsBothWaysThroughTheLoops) {
  forwardsBothWays();
}

TEST_F(LoopRunnerBusyPollTest, ForwardsBothWaysWhileBusyPolling) {
  forwardsBothWays();
}

TEST_F(LoopRunnerTest, QueuesOfAVanishedDeviceAreReopened) {
  {
    std::lock_guard lock(mutex_);
    for (int fd : peers_["fs-in"]) ::close(fd);  // the device goes away under the loops
    peers_["fs-in"].clear();
  }
  // The loops notice, stop polling those queues (no busy loop), and the next
  // sync opens new ones; traffic flows again.
  std::string error;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  size_t reopened = 0;
  while (reopened < 2 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(runner_->sync(engine_->shared().current()->config(), &error)) << error;
    std::lock_guard lock(mutex_);
    reopened = peers_["fs-in"].size();
    if (reopened < 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(reopened, 2u);
  TcpPacketSpec syn;
  syn.ethernet = false;
  auto p = buildTcp(syn);
  ASSERT_GT(::send(peers_["fs-in"][0], p.data(), p.size(), 0), 0);
  auto out = readFrom("fs-out");
  EXPECT_FALSE(out.empty()) << "rx " << engine_->loop(0).counters().get(Counter::kRxPackets) << "/"
                            << engine_->loop(1).counters().get(Counter::kRxPackets) << " tx "
                            << engine_->loop(0).counters().get(Counter::kTxPackets) << "/"
                            << engine_->loop(1).counters().get(Counter::kTxPackets) << " txerr "
                            << engine_->loop(0).counters().get(Counter::kTxErrors) << "/"
                            << engine_->loop(1).counters().get(Counter::kTxErrors);
}

TEST_F(LoopRunnerTest, SyncKeepsQueuesOfUnchangedServiceSets) {
  std::string error;
  ASSERT_TRUE(runner_->sync(engine_->shared().current()->config(), &error));
  EXPECT_EQ(peers_["fs-in"].size(), 2u);  // nothing reopened
}

}  // namespace
}  // namespace fulcrum
