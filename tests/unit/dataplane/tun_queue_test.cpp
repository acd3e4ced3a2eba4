// TunQueue against a real TUN device, in each I/O mode (system calls,
// io_uring) with offloads on and off: bursts from the kernel into the queue
// and from the queue into the kernel, in order, and a kernel that refuses
// io_uring. Needs root: the test process moves into a network namespace of
// its own (unshare; it goes away with the process, nothing to clean up) and
// creates device ftq0 there, 198.18.90.1/24. Without root it skips.
#include "data-plane/io/tun.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "shared/net/checksum.h"

namespace fulcrum {
namespace {

constexpr const char* kDevice = "ftq0";
constexpr const char* kHostAddress = "198.18.90.1";  // the namespace's end of ftq0
constexpr const char* kPeerAddress = "198.18.90.2";  // "behind" the device
constexpr uint16_t kToPeerPort = 9999;               // kernel -> queue
constexpr uint16_t kToHostPort = 9998;               // queue -> kernel
constexpr size_t kPackets = 20;

// Whether this kernel lets this process set up an io_uring at all.
bool ioUringAllowed() {
  io_uring_params p{};
  const long fd = syscall(__NR_io_uring_setup, 4, &p);
  if (fd < 0) return false;
  ::close(static_cast<int>(fd));
  return true;
}

bool setAddress(const char* name, const char* address, std::string* error) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  auto* in = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
  in->sin_family = AF_INET;
  inet_pton(AF_INET, address, &in->sin_addr);
  bool ok = ioctl(s, SIOCSIFADDR, &ifr) == 0;
  inet_pton(AF_INET, "255.255.255.0", &in->sin_addr);
  ok = ok && ioctl(s, SIOCSIFNETMASK, &ifr) == 0;
  if (!ok) *error = std::string("address for ") + name + ": " + std::strerror(errno);
  ::close(s);
  return ok;
}

// An IPv4/UDP packet from the peer to the host, payload "to-host N".
std::vector<uint8_t> udpToHost(size_t n) {
  const std::string payload = "to-host " + std::to_string(n);
  std::vector<uint8_t> p(28 + payload.size(), 0);
  p[0] = 0x45;
  checksum::store16(&p[2], static_cast<uint16_t>(p.size()));
  checksum::store16(&p[4], static_cast<uint16_t>(n + 1));
  p[8] = 64;
  p[9] = IPPROTO_UDP;
  inet_pton(AF_INET, kPeerAddress, &p[12]);
  inet_pton(AF_INET, kHostAddress, &p[16]);
  checksum::store16(&p[10], checksum::ipv4HeaderChecksum(p.data(), 20));
  checksum::store16(&p[20], 5000);
  checksum::store16(&p[22], kToHostPort);
  checksum::store16(&p[24], static_cast<uint16_t>(8 + payload.size()));  // checksum 0: none
  std::memcpy(&p[28], payload.data(), payload.size());
  return p;
}

// The UDP payload of an IPv4 packet to the peer's port, empty for anything
// else (the kernel's own chatter on the device, IPv6 among it).
std::string payloadToPeer(const PacketBuffer& b) {
  const uint8_t* ip = b.data;
  if (b.length < 28 || (ip[0] >> 4) != 4 || ip[9] != IPPROTO_UDP) return "";
  const size_t ihl = (ip[0] & 0x0f) * 4u;
  if (b.length < ihl + 8 || ((ip[ihl + 2] << 8) | ip[ihl + 3]) != kToPeerPort) return "";
  return std::string(reinterpret_cast<const char*>(ip + ihl + 8), b.length - ihl - 8);
}

// In a child of the test: refuses io_uring_setup (EPERM) with a seccomp
// filter, opens a queue of kDevice for io_uring and transmits a packet
// through it. The exit code: 0 when that worked with system calls, else
// where it failed.
int transmitWithIoUringRefused(bool offload) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
    return 3;
  std::string error;
  auto q = TunQueue::open(kDevice, offload, TunIo::kUring, &error);
  if (!q) return 4;
  if (q->io() != TunIo::kSyscalls) return 5;
  // Counted once, for the loop's tun_io_fallbacks.
  if (q->takeFallbacks() != 1 || q->takeFallbacks() != 0) return 7;
  std::vector<uint8_t> p = udpToHost(0);
  auto b = std::make_unique<PacketBuffer>();
  std::memcpy(b->data, p.data(), p.size());
  b->length = static_cast<uint32_t>(p.size());
  PacketBuffer* one = b.get();
  return q->transmitBurst(&one, 1) == 1 ? 0 : 6;
}

struct Mode {
  TunIo io;
  bool offload;
};

class TunQueueTest : public ::testing::TestWithParam<Mode> {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    // The whole test process (one thread) in a new network namespace,
    // without IPv6 so the kernel sends nothing of its own on the device.
    inNamespace_ = ::unshare(CLONE_NEWNET) == 0;
    for (const char* path : {"/proc/sys/net/ipv6/conf/all/disable_ipv6",
                             "/proc/sys/net/ipv6/conf/default/disable_ipv6"}) {
      if (FILE* f = std::fopen(path, "w")) {
        std::fputs("1", f);
        std::fclose(f);
      }
    }
  }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace and a TUN device";
    ASSERT_TRUE(inNamespace_) << "unshare(CLONE_NEWNET): " << std::strerror(errno);
    if (GetParam().io == TunIo::kUring && !ioUringAllowed())
      GTEST_SKIP() << "this kernel refuses io_uring to this process";
    std::string error;
    queue_ = TunQueue::open(kDevice, GetParam().offload, GetParam().io, &error);
    ASSERT_NE(queue_, nullptr) << error;
    // io_uring is allowed here, so a queue that fell back is a broken path.
    ASSERT_EQ(queue_->io(), GetParam().io);
    EXPECT_EQ(queue_->takeFallbacks(), 0u);
    ASSERT_TRUE(setAddress(kDevice, kHostAddress, &error)) << error;
    ASSERT_TRUE(setInterfaceUp(kDevice, 0, &error)) << error;
    for (auto& b : storage_) b = std::make_unique<PacketBuffer>();
    for (size_t i = 0; i < storage_.size(); ++i) buffers_[i] = storage_[i].get();
  }

  // Receives up to `max` packets in one burst after waiting (bounded) for
  // the queue to poll readable; keeps only the test's own packets.
  std::vector<std::string> receive(size_t max, size_t* burst = nullptr) {
    pollfd p{queue_->pollFd(), POLLIN, 0};
    ::poll(&p, 1, 1000);
    const size_t n = queue_->receiveBurst(buffers_, max);
    if (burst) *burst = n;
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
      EXPECT_GT(buffers_[i]->length, 0u);
      std::string payload = payloadToPeer(*buffers_[i]);
      if (!payload.empty()) out.push_back(payload);
    }
    return out;
  }

  static inline bool inNamespace_ = false;
  std::unique_ptr<TunQueue> queue_;
  std::vector<std::unique_ptr<PacketBuffer>> storage_{32};
  PacketBuffer* buffers_[32] = {};
};

TEST_P(TunQueueTest, ReceivesABurstFromTheKernelInOrder) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kToPeerPort);
  inet_pton(AF_INET, kPeerAddress, &to.sin_addr);
  // sendto() puts each datagram on the device's queue before it returns.
  for (size_t i = 0; i < kPackets; ++i) {
    const std::string payload = "to-peer " + std::to_string(i);
    ASSERT_EQ(::sendto(s, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to),
                       sizeof(to)),
              static_cast<ssize_t>(payload.size()));
  }
  ::close(s);
  // One burst takes at most `max`; the next takes the rest; then none wait.
  std::vector<std::string> got;
  size_t burst = 0;
  auto first = receive(8, &burst);
  EXPECT_EQ(burst, 8u);
  got.insert(got.end(), first.begin(), first.end());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (got.size() < kPackets && std::chrono::steady_clock::now() < deadline) {
    auto more = receive(32);
    got.insert(got.end(), more.begin(), more.end());
  }
  ASSERT_EQ(got.size(), kPackets);
  for (size_t i = 0; i < kPackets; ++i) EXPECT_EQ(got[i], "to-peer " + std::to_string(i));
  EXPECT_EQ(queue_->receiveBurst(buffers_, 32), 0u);
  EXPECT_FALSE(queue_->dead());
}

TEST_P(TunQueueTest, TransmitsABurstIntoTheKernelInOrder) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(kToHostPort);
  inet_pton(AF_INET, kHostAddress, &at.sin_addr);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&at), sizeof(at)), 0) << std::strerror(errno);
  for (size_t i = 0; i < kPackets; ++i) {
    const std::vector<uint8_t> p = udpToHost(i);
    std::memcpy(buffers_[i]->data, p.data(), p.size());
    buffers_[i]->length = static_cast<uint32_t>(p.size());
    std::memset(buffers_[i]->vnet, 0, kVnetHeaderSize);  // no GSO, checksum complete
  }
  EXPECT_EQ(queue_->transmitBurst(buffers_, kPackets), kPackets);
  std::vector<std::string> got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (got.size() < kPackets && std::chrono::steady_clock::now() < deadline) {
    char buf[64];
    const ssize_t n = ::recv(s, buf, sizeof(buf), 0);
    if (n > 0) {
      got.emplace_back(buf, static_cast<size_t>(n));
    } else {
      pollfd p{s, POLLIN, 0};
      ::poll(&p, 1, 100);
    }
  }
  ::close(s);
  ASSERT_EQ(got.size(), kPackets);
  for (size_t i = 0; i < kPackets; ++i) EXPECT_EQ(got[i], "to-host " + std::to_string(i));
}

// Where io_uring_setup fails (here: a seccomp filter makes it EPERM), a
// queue opened for io_uring uses system calls and still moves packets.
TEST_P(TunQueueTest, FallsBackToSystemCallsWhereIoUringIsRefused) {
  if (GetParam().io != TunIo::kUring) GTEST_SKIP() << "only for io_uring";
  // The child opens a second queue of the device SetUp made (up, addressed).
  const bool offload = GetParam().offload;
  EXPECT_EXIT(_exit(transmitWithIoUringRefused(offload)), ::testing::ExitedWithCode(0),
              "io_uring refused");
}

std::string modeName(const ::testing::TestParamInfo<Mode>& p) {
  return std::string(p.param.io == TunIo::kUring ? "Uring" : "Syscalls") +
         (p.param.offload ? "Offload" : "NoOffload");
}

INSTANTIATE_TEST_SUITE_P(Modes, TunQueueTest,
                         ::testing::Values(Mode{TunIo::kSyscalls, false},
                                           Mode{TunIo::kSyscalls, true}, Mode{TunIo::kUring, false},
                                           Mode{TunIo::kUring, true}),
                         modeName);

}  // namespace
}  // namespace fulcrum
