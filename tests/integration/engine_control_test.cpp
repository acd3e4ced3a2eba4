// An engine (Engine + ControlClient, in this process so the test can feed its
// packet loop directly) against the real fulcrum-control process and the real
// fulcrum CLI: sessions survive the control plane's death, forwarding goes on
// with the last configuration, the engine reconnects by itself, and request
// logs and events travel in batches to the control plane's syslog file.
// Loopback only; no packet leaves this process.
#include <event2/event.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "data-plane/control_client.h"
#include "data-plane/engine.h"
#include "shared/log.h"
#include "tests/common/packet_builder.h"
#include "tests/common/process.h"

namespace fulcrum {
namespace {

using testing::readFile;

using namespace std::chrono_literals;
using testing::buildTcp;
using testing::ip4;
using testing::TcpPacketSpec;

constexpr const char* kConfig =
    R"(set service-set web inside-interface fs-web-in outside-interface fs-web-out
set application shop service-set web facade 198.18.0.10 port 80 algorithm round-robin
set application shop server s1 address 198.18.1.11 port 8080
set application shop server s2 address 198.18.1.12 port 8080
)";

pid_t spawn(const std::vector<std::string>& argv, const std::string& logPath) {
  return testing::spawnLogged(argv, logPath);
}

class EngineControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/fulcrum-engine-it-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir));
    dir_ = dir;
    port_ = 20000 + static_cast<int>(getpid() % 20000);
    startControl();
    std::ofstream(dir_ + "/shop.conf") << kConfig;
    ASSERT_EQ(cli({"load", dir_ + "/shop.conf"}).first, 0);
    ASSERT_EQ(cli({"commit", "-m", "shop"}).first, 0);
    base_ = event_base_new();
    Engine::Options o;
    o.capacity = 4096;
    o.loops = 1;
    o.link = LinkType::kRawIp;
    engine_ = std::make_unique<Engine>(o);
    ControlClient::Options c;
    c.control = *channel::Endpoint::parse("127.0.0.1:" + std::to_string(port_));
    c.engineId = "inproc";
    c.softwareVersion = "test";
    c.backoffMax = 500ms;
    client_ = std::make_unique<ControlClient>(base_, *engine_, c);
    client_->start();
  }
  void TearDown() override {
    client_.reset();
    engine_.reset();
    if (base_) event_base_free(base_);
    if (control_ > 0) {
      kill(control_, SIGKILL);
      waitpid(control_, nullptr, 0);
    }
    std::error_code ignored;
    if (!HasFailure())
      std::filesystem::remove_all(dir_, ignored);
    else
      std::fprintf(stderr, "kept %s\n", dir_.c_str());
  }
  void startControl() {
    control_ = spawn({FULCRUM_CONTROL_PATH, "--state-dir", dir_ + "/state", "--listen",
                      "127.0.0.1:" + std::to_string(port_), "--heartbeat-ms", "200"},
                     dir_ + "/control.log");
    ASSERT_GT(control_, 0);
    ASSERT_TRUE(pump([&] { return access((dir_ + "/state/mgmt.sock").c_str(), F_OK) == 0; }, 10s));
  }
  void killControl() {
    kill(control_, SIGKILL);
    waitpid(control_, nullptr, 0);
    control_ = -1;
    unlink((dir_ + "/state/mgmt.sock").c_str());
  }
  // Runs the engine's event loop until `done` holds, bounded.
  bool pump(const std::function<bool()>& done, std::chrono::milliseconds bound) {
    auto deadline = std::chrono::steady_clock::now() + bound;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (base_) {
        timeval tv{0, 20000};
        event_base_loopexit(base_, &tv);
        event_base_dispatch(base_);
      } else {
        std::this_thread::sleep_for(20ms);
      }
    }
    return true;
  }
  // Runs the CLI while the engine keeps answering (its loop runs here).
  std::pair<int, std::string> cli(std::vector<std::string> args) {
    std::string out = dir_ + "/cli.out";
    std::vector<std::string> argv = {FULCRUM_CLI_PATH, "--socket", dir_ + "/state/mgmt.sock"};
    argv.insert(argv.end(), args.begin(), args.end());
    unlink(out.c_str());
    pid_t pid = spawn(argv, out);
    int status = 0;
    pump([&] { return waitpid(pid, &status, WNOHANG) == pid; }, 20s);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, readFile(out)};
  }
  // A client packet through the engine's loop; returns the destination it left with.
  uint32_t send(uint16_t port, uint8_t flags) {
    TcpPacketSpec s;
    s.ethernet = false;
    s.srcPort = port;
    s.flags = flags;
    auto p = buildTcp(s);
    // The loops' clock, as fulcrum-data's loops read it: session dumps compare
    // expiry times against it.
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const auto now = static_cast<uint32_t>(ts.tv_sec);
    if (engine_->loop(0).process(p.data(), p.size(), 0, Direction::kEgress, now) !=
        Verdict::kForward)
      return 0;
    PacketView v;
    parsePacket(p.data(), p.size(), LinkType::kRawIp, v);
    return v.dstV4();
  }

  std::string dir_;
  int port_ = 0;
  pid_t control_ = -1;
  event_base* base_ = nullptr;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ControlClient> client_;
};

TEST_F(EngineControlTest, SessionsSurviveTheControlPlane) {
  ASSERT_TRUE(pump([&] { return engine_->generation() == 1; }, 10s));
  std::vector<uint32_t> serverOf;
  for (uint16_t i = 0; i < 10; ++i) serverOf.push_back(send(1000 + i, tcpflag::kSyn));
  for (uint32_t s : serverOf) EXPECT_TRUE(s == ip4(198, 18, 1, 11) || s == ip4(198, 18, 1, 12));
  EXPECT_EQ(engine_->shared().table.size(), 10u);

  killControl();
  ASSERT_TRUE(pump([&] { return !client_->connected(); }, 10s));
  // Existing sessions keep their servers; new ones still get the last configuration.
  for (uint16_t i = 0; i < 10; ++i) EXPECT_EQ(send(1000 + i, tcpflag::kAck), serverOf[i]);
  EXPECT_NE(send(2000, tcpflag::kSyn), ip4(198, 18, 0, 10));
  EXPECT_EQ(engine_->shared().table.size(), 11u);
  EXPECT_EQ(engine_->generation(), 1u);

  startControl();
  ASSERT_TRUE(pump([&] { return client_->connected(); }, 10s));
  auto [code, out] = cli({"--json", "show", "sessions", "shop"});
  ASSERT_EQ(code, 0) << out;
  size_t sessions = 0;
  for (size_t at = out.find("\"engine_id\":\"inproc\""); at != std::string::npos;
       at = out.find("\"engine_id\":\"inproc\"", at + 1))
    ++sessions;
  EXPECT_EQ(sessions, 11u) << out;
  // Per-application counters reach show statistics, summed over engines.
  auto [statsCode, stats] = cli({"--json", "show", "statistics"});
  ASSERT_EQ(statsCode, 0) << stats;
  EXPECT_NE(stats.find("\"application\":\"shop\",\"counters\":[{\"name\":\"sessions_created\","
                       "\"value\":\"11\"}"),
            std::string::npos)
      << stats;
  // The outage itself was logged by the engine and shipped once it was back.
  ASSERT_TRUE(pump(
      [&] {
        return readFile(dir_ + "/state/fulcrum.log").find("lost the control plane") !=
               std::string::npos;
      },
      10s));
}

TEST_F(EngineControlTest, RequestLogsReachTheSyslogFileInBatches) {
  ASSERT_TRUE(pump([&] { return client_->connected() && engine_->generation() == 1; }, 10s));
  constexpr int kRequests = 2500;  // more than one batch
  for (int i = 0; i < kRequests; ++i) {
    RequestLogEntry e;
    e.timeUnixUs = log::nowUnixUs();
    e.client = ip4(198, 18, 0, 1);
    e.clientPort = static_cast<uint16_t>(1000 + i % 5000);
    e.facade = ip4(198, 18, 0, 10);
    e.facadePort = 80;
    e.server = ip4(198, 18, 1, 11);
    e.serverPort = 8080;
    RequestLogEntry::set(e.application, "shop");
    RequestLogEntry::set(e.serverName, "s1");
    RequestLogEntry::set(e.method, "GET");
    RequestLogEntry::set(e.version, "HTTP/1.1");
    RequestLogEntry::set(e.host, "198.18.1.11:8080");
    RequestLogEntry::set(e.path, "/item/" + std::to_string(i));
    while (!engine_->logRing(0).push(e))
      pump([] { return false; }, 20ms);  // ring full: let it ship
  }
  auto countLines = [&] {
    std::string log = readFile(dir_ + "/state/fulcrum.log");
    size_t n = 0;
    for (size_t at = log.find(" request [fulcrum@"); at != std::string::npos;
         at = log.find(" request [fulcrum@", at + 1))
      ++n;
    return n;
  };
  ASSERT_TRUE(pump([&] { return countLines() == kRequests; }, 20s)) << countLines();
  std::string log = readFile(dir_ + "/state/fulcrum.log");
  EXPECT_NE(log.find("fulcrum-data inproc request"), std::string::npos);
  EXPECT_NE(log.find("path=\"/item/2499\""), std::string::npos);
  EXPECT_NE(log.find("configuration generation 1 applied"), std::string::npos);
  EXPECT_EQ(engine_->logsDropped(), 0u);
}

}  // namespace
}  // namespace fulcrum
