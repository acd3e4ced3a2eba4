// Monitor tests that need root: a server in a network namespace that the test
// creates (veth pair, 198.18.250.0/30) whose link goes down and up again, and
// the ICMP socket fallback inside a private network namespace of one thread.
// Without root they skip. Namespaces and links are removed in TearDown, also
// when a test fails; leftovers of a crashed run are removed by the next one.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "control-plane/monitor/monitor.h"
#include "tests/unit/control/monitor_test_peers.h"

namespace fulcrum {
namespace {

using namespace fulcrum::testing;

// 198.18.250.2/30 inside the namespace; the host end of the veth has .1.
constexpr uint32_t kInside = 0xC612FA02;
constexpr const char* kNamespacePrefix = "fmon-";

// Runs a shell command bounded by timeout(1); returns its stdout, and its
// exit status through `status`.
std::string shell(const std::string& command, int* status = nullptr) {
  FILE* p = popen(("timeout 10 " + command + " 2>&1").c_str(), "r");
  if (!p) {
    if (status) *status = -1;
    return "";
  }
  std::string out;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  if (status) *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

class MonitorNetns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to create a network namespace";
    int status = 0;
    shell("ip -V", &status);
    if (status != 0) GTEST_SKIP() << "ip(8) is not available";
    removeStaleNamespaces();
    const std::string pid = std::to_string(getpid());
    namespace_ = kNamespacePrefix + pid;
    hostLink_ = "fmh" + pid;
    insideLink_ = "fmn" + pid;
    removeOurs();  // a leftover of an earlier run that had our pid
    if (!shell("ip -4 -o addr show to 198.18.250.0/30").empty()) {
      GTEST_SKIP() << "198.18.250.0/30 is already in use on this host";
    }
    created_ = true;  // from here on TearDown removes whatever exists
    for (const std::string& c : {
             "ip netns add " + namespace_,
             "ip link add " + hostLink_ + " type veth peer name " + insideLink_,
             "ip link set " + insideLink_ + " netns " + namespace_,
             "ip addr add 198.18.250.1/30 dev " + hostLink_,
             "ip link set " + hostLink_ + " up",
             "ip -n " + namespace_ + " addr add 198.18.250.2/30 dev " + insideLink_,
             "ip -n " + namespace_ + " link set " + insideLink_ + " up",
             "ip -n " + namespace_ + " link set lo up",
         }) {
      const std::string out = shell(c, &status);
      ASSERT_EQ(status, 0) << c << ": " << out;
    }
  }

  void TearDown() override {
    if (!created_) return;
    removeOurs();
    EXPECT_FALSE(std::filesystem::exists("/run/netns/" + namespace_));
  }

  void setInsideLink(bool up) {
    int status = 0;
    const std::string c =
        "ip -n " + namespace_ + " link set " + insideLink_ + (up ? " up" : " down");
    const std::string out = shell(c, &status);
    ASSERT_EQ(status, 0) << c << ": " << out;
  }

 private:
  void removeOurs() {
    // Deleting the namespace deletes the inside end, and with it the pair.
    shell("ip netns del " + namespace_);
    shell("ip link del " + hostLink_);
  }

  // Namespaces "fmon-<pid>" whose process is gone were left by a run that
  // crashed before its TearDown.
  static void removeStaleNamespaces() {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(kNamespacePrefix, 0) != 0) continue;
      const std::string pid = name.substr(std::string(kNamespacePrefix).size());
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (kill(static_cast<pid_t>(std::stol(pid)), 0) == 0 || errno != ESRCH) continue;
      shell("ip netns del " + name);
      shell("ip link del fmh" + pid);
    }
  }

  std::string namespace_;
  std::string hostLink_;
  std::string insideLink_;
  bool created_ = false;
};

TEST_F(MonitorNetns, ServerInANamespaceGoesDownWithItsLinkAndComesBack) {
  Loop loop;
  std::vector<ServerHealth> reports;
  Monitor monitor(loop.base(), [&](const ServerHealth& h) { reports.push_back(h); });
  MonitorTarget icmp = makeTarget("icmp", MonitorType::kIcmp, 0, kInside);
  icmp.config.fall = 2;
  // Nothing listens on port 9 inside: the namespace's kernel refuses, which
  // proves the tcp check reaches it.
  MonitorTarget tcp = makeTarget("tcp", MonitorType::kTcp, 9, kInside);
  // Echo replies keep flowing from 127.0.0.1 on the shared socket throughout;
  // they must never answer the check of the address in the namespace.
  MonitorTarget lo = makeTarget("lo", MonitorType::kIcmp, 0);
  monitor.setTargets({icmp, tcp, lo});
  ASSERT_TRUE(loop.runUntil(
      [&] {
        const auto h = monitor.health();
        return h[0].known && h[1].known;
      },
      3s));
  auto h = monitor.health();
  ASSERT_TRUE(h[0].up) << h[0].last.detail;
  EXPECT_FALSE(h[1].up);
  EXPECT_EQ(h[1].last.detail, "connect: Connection refused");

  setInsideLink(false);
  const auto downAt = Clock::now();
  ASSERT_TRUE(loop.runUntil([&] { return !monitor.health()[0].up; }, 2s + 1s + 1s));
  h = monitor.health();
  EXPECT_EQ(h[0].consecutiveFail, 2u);
  EXPECT_LE(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - downAt).count(),
            3 * 1000 + 500);
  // No reply at all (timeout), or the kernel already knows the neighbour is gone.
  EXPECT_TRUE(h[0].last.detail == "timeout after 1000 ms (no echo reply)" ||
              h[0].last.detail.rfind("send: ", 0) == 0)
      << h[0].last.detail;
  // The tcp check now times out (or finds no route) instead of being refused.
  ASSERT_TRUE(loop.runUntil(
      [&] { return monitor.health()[1].last.detail != "connect: Connection refused"; }, 3s));
  EXPECT_FALSE(monitor.health()[1].up);

  setInsideLink(true);
  // Up again once the neighbour is resolved anew (rise 1).
  ASSERT_TRUE(loop.runUntil([&] { return monitor.health()[0].up; }, 8s))
      << monitor.health()[0].last.detail;
  // icmp was reported three times: up, down, up; lo once: up.
  std::map<std::string, std::string> states;
  for (const auto& r : reports) states[r.server] += r.up ? 'U' : 'D';
  EXPECT_EQ(states["icmp"], "UDU");
  EXPECT_EQ(states["lo"], "U");
  EXPECT_GE(monitor.health()[2].checks, 5u);
}

// Runs `body` on a thread of its own in a private network namespace (lo up),
// where changing net.ipv4.ping_group_range or dropping capabilities touches
// nothing outside. The namespace disappears with the thread.
template <typename Body>
std::string inPrivateNetns(Body body) {
  std::string error;
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      error = std::string("unshare: ") + std::strerror(errno);
      return;
    }
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0 ||
        (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)) {
      error = std::string("lo up: ") + std::strerror(errno);
    }
    close(fd);
    if (error.empty()) body();
  });
  t.join();
  return error;
}

// Drops CAP_NET_RAW from this thread's effective set: raw sockets fail with EPERM.
bool dropNetRawOnThisThread() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  data[CAP_TO_INDEX(CAP_NET_RAW)].effective &= ~CAP_TO_MASK(CAP_NET_RAW);
  return syscall(SYS_capset, &header, data) == 0;
}

ServerHealth pingLoopbackOnce() {
  Loop loop;
  Monitor monitor(loop.base(), [](const ServerHealth&) {});
  monitor.setTargets({makeTarget("lo", MonitorType::kIcmp, 0)});
  loop.runUntil([&] { return monitor.health()[0].known; }, 2500ms);
  return monitor.health()[0];
}

std::string readFile(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

TEST(MonitorIcmpSocket, FallsBackToThePingSocketAndNamesBothErrors) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create a network namespace";
  const char* kRange = "/proc/sys/net/ipv4/ping_group_range";
  const std::string hostRange = readFile(kRange);
  ServerHealth denied, allowed;
  bool dropped = false;
  const std::string error = inPrivateNetns([&] {
    dropped = dropNetRawOnThisThread();
    if (!dropped) return;
    // A fresh namespace allows no group ping sockets ("1 0"): both fail.
    denied = pingLoopbackOnce();
    std::ofstream(kRange) << "0 0\n";  // this thread's namespace only
    allowed = pingLoopbackOnce();
  });
  ASSERT_EQ(error, "");
  ASSERT_TRUE(dropped) << "capset failed";
  EXPECT_EQ(readFile(kRange), hostRange);  // the host's setting is untouched
  EXPECT_FALSE(denied.up);
  EXPECT_EQ(denied.last.detail,
            "icmp socket: raw: Operation not permitted; ping socket: Permission denied");
  EXPECT_TRUE(allowed.up) << allowed.last.detail;
  EXPECT_EQ(allowed.last.detail.rfind("echo reply in ", 0), 0u) << allowed.last.detail;
}

TEST(MonitorIcmpSocket, PingSocketOnlyPolicy) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create a network namespace";
  ServerHealth denied, allowed;
  const std::string error = inPrivateNetns([&] {
    for (ServerHealth* out : {&denied, &allowed}) {
      if (out == &allowed) std::ofstream("/proc/sys/net/ipv4/ping_group_range") << "0 0\n";
      Loop loop;
      Monitor monitor(
          loop.base(), [](const ServerHealth&) {}, MonitorOptions{IcmpSocketPolicy::kPingOnly});
      monitor.setTargets({makeTarget("lo", MonitorType::kIcmp, 0)});
      loop.runUntil([&] { return monitor.health()[0].known; }, 2500ms);
      *out = monitor.health()[0];
    }
  });
  ASSERT_EQ(error, "");
  // Root could open a raw socket, but the policy says ping socket only.
  EXPECT_EQ(denied.last.detail, "icmp socket: ping socket: Permission denied");
  EXPECT_TRUE(allowed.up) << allowed.last.detail;
}

}  // namespace
}  // namespace fulcrum
