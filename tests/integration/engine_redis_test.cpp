// Two engines (Engine + ControlClient each, in this process so the test can
// feed their packet loops) sharing a real Redis through the real
// fulcrum-control: the configuration names the store, both engines connect to
// it, a new connection that misses the cache waits for Redis while the loop
// goes on, and engines racing on the same clients agree on every one. Then
// Redis stops (local decisions, counted, the store shown down) and comes back
// (used again without a restart). Loopback only; no packet leaves the process.
#include <event2/event.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "data-plane/control_client.h"
#include "data-plane/engine.h"
#include "tests/common/packet_builder.h"
#include "tests/common/process.h"

namespace fulcrum {
namespace {

using testing::readFile;

using namespace std::chrono_literals;
using testing::buildTcp;
using testing::ip4;
using testing::TcpPacketSpec;

pid_t spawn(const std::vector<std::string>& argv, const std::string& logPath) {
  return testing::spawnLogged(argv, logPath);
}

bool portAnswers(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(0x7f000001);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

uint32_t loopNow() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint32_t>(ts.tv_sec);
}

// One engine with one loop, its control client on the shared event base.
struct TestEngine {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<ControlClient> client;
  std::unique_ptr<PacketBuffer> out[8];
  PacketBuffer* outPtr[8] = {};
  uint16_t sets[8] = {};
};

class EngineRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/bin/redis-server", X_OK) != 0) GTEST_SKIP() << "redis-server not installed";
    char dir[] = "/tmp/fulcrum-redis-it-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir));
    dir_ = dir;
    controlPort_ = 21000 + static_cast<int>(getpid() % 10000);
    redisPort_ = controlPort_ + 10000;
    base_ = event_base_new();
    startRedis();
    control_ = spawn({FULCRUM_CONTROL_PATH, "--state-dir", dir_ + "/state", "--listen",
                      "127.0.0.1:" + std::to_string(controlPort_), "--heartbeat-ms", "200"},
                     dir_ + "/control.log");
    ASSERT_GT(control_, 0);
    ASSERT_TRUE(pump([&] { return access((dir_ + "/state/mgmt.sock").c_str(), F_OK) == 0; }, 10s));
    std::ofstream(dir_ + "/shop.conf")
        << "set system affinity-store redis://127.0.0.1:" << redisPort_ << "\n"
        << "set system affinity-store-timeout 200\n"
        << "set service-set web inside-interface fs-web-in outside-interface fs-web-out\n"
        << "set application shop service-set web facade 198.18.0.10 port 80 algorithm "
           "round-robin\n"
        << "set application shop persistence source-address timeout 600\n"
        << "set application shop server s1 address 198.18.1.11 port 8080\n"
        << "set application shop server s2 address 198.18.1.12 port 8080\n"
        << "set application shop server s3 address 198.18.1.13 port 8080\n";
    ASSERT_EQ(cli({"load", dir_ + "/shop.conf"}), 0);
    ASSERT_EQ(cli({"commit", "-m", "shared store"}), 0);
    for (int i = 0; i < 2; ++i) {
      TestEngine& t = engines_[i];
      Engine::Options o;
      o.capacity = 65536;
      o.loops = 1;
      o.link = LinkType::kRawIp;
      t.engine = std::make_unique<Engine>(o);
      ControlClient::Options c;
      c.control = *channel::Endpoint::parse("127.0.0.1:" + std::to_string(controlPort_));
      c.engineId = "lb" + std::to_string(i + 1);
      c.softwareVersion = "test";
      c.backoffMax = 500ms;
      t.client = std::make_unique<ControlClient>(base_, *t.engine, c);
      t.client->start();
      for (size_t k = 0; k < 8; ++k) {
        t.out[k] = std::make_unique<PacketBuffer>();
        t.outPtr[k] = t.out[k].get();
      }
    }
    ASSERT_TRUE(pump(
        [&] {
          return engines_[0].engine->generation() == 1 && engines_[1].engine->generation() == 1 &&
                 storeUp(0) && storeUp(1);
        },
        10s));
  }
  void TearDown() override {
    for (TestEngine& t : engines_) {
      t.client.reset();
      t.engine.reset();
    }
    if (base_) event_base_free(base_);
    for (pid_t* p : {&control_, &redis_}) {
      if (*p > 0) {
        kill(*p, SIGKILL);
        waitpid(*p, nullptr, 0);
      }
    }
    if (!dir_.empty()) {
      std::error_code ignored;
      if (!HasFailure())
        std::filesystem::remove_all(dir_, ignored);
      else
        std::fprintf(stderr, "kept %s\n", dir_.c_str());
    }
  }
  void startRedis() {
    redis_ = spawn({"/usr/bin/redis-server", "--port", std::to_string(redisPort_), "--bind",
                    "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir_},
                   dir_ + "/redis.log");
    ASSERT_GT(redis_, 0);
    ASSERT_TRUE(pump([&] { return portAnswers(redisPort_); }, 10s))
        << readFile(dir_ + "/redis.log");
  }
  void stopRedis() {
    kill(redis_, SIGKILL);
    waitpid(redis_, nullptr, 0);
    redis_ = -1;
  }
  bool storeUp(int i) {
    pb::EngineStatus s;
    engines_[i].engine->fillStatus(s, 0);
    return s.affinity_store().state() == "up";
  }
  bool pump(const std::function<bool()>& done, std::chrono::milliseconds bound) {
    auto deadline = std::chrono::steady_clock::now() + bound;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      timeval tv{0, 5000};
      event_base_loopexit(base_, &tv);
      event_base_dispatch(base_);
    }
    return true;
  }
  int cli(std::vector<std::string> args) {
    std::vector<std::string> argv = {FULCRUM_CLI_PATH, "--socket", dir_ + "/state/mgmt.sock"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_t pid = spawn(argv, dir_ + "/cli.out");
    int status = 0;
    if (!pump([&] { return waitpid(pid, &status, WNOHANG) == pid; }, 20s)) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // A client SYN through engine i's loop: the server it went to, waiting (at
  // most `bound`) for a parked one to be resumed. 0 when it was dropped.
  uint32_t connect(int i, uint32_t client, uint16_t port) {
    TestEngine& t = engines_[i];
    TcpPacketSpec s;
    s.ethernet = false;
    s.src = client;
    s.srcPort = port;
    s.flags = tcpflag::kSyn;
    auto p = buildTcp(s);
    PacketRef ref{p.data(), static_cast<uint32_t>(p.size()), 0, Direction::kEgress};
    ref.capacity = ref.length;
    const Verdict v = t.engine->loop(0).process(ref, loopNow());
    if (v == Verdict::kForward) return destination(p.data(), ref.length);
    if (v != Verdict::kParked) return 0;
    uint32_t server = 0;
    pump(
        [&] {
          if (t.engine->loop(0).resume(loopNow(), t.outPtr, t.sets, 8) > 0)
            server = destination(t.outPtr[0]->data, t.outPtr[0]->length);
          return server != 0 || t.engine->loop(0).parked() == 0;
        },
        2s);
    return server;
  }
  static uint32_t destination(uint8_t* data, size_t length) {
    PacketView v;
    return parsePacket(data, length, LinkType::kRawIp, v) == ParseStatus::kTcpIpv4 ? v.dstV4() : 0;
  }
  uint64_t counter(int i, Counter c) { return engines_[i].engine->loop(0).counters().get(c); }

  std::string dir_;
  int controlPort_ = 0, redisPort_ = 0;
  pid_t control_ = -1, redis_ = -1;
  event_base* base_ = nullptr;
  TestEngine engines_[2];
};

TEST_F(EngineRedisTest, EnginesAgreeOnEveryClientThroughRedis) {
  // Alternate engines over 300 new client addresses, three connections each
  // (a new port each): whichever engine sees a client first decides for both.
  std::map<uint32_t, uint32_t> serverOf;
  for (int round = 0; round < 3; ++round) {
    for (uint32_t c = 0; c < 300; ++c) {
      const uint32_t client = ip4(198, 18, 100, 0) + c;
      const int engine = static_cast<int>((c + static_cast<uint32_t>(round)) % 2);
      const uint32_t server =
          connect(engine, client, static_cast<uint16_t>(10000 + round * 1000 + c));
      ASSERT_NE(server, 0u) << "client " << c << " round " << round;
      auto [it, first] = serverOf.emplace(client, server);
      EXPECT_EQ(it->second, server) << "client " << c << " moved in round " << round;
    }
  }
  // Several servers were used, and both engines waited for Redis and took
  // answers from it (or from their cache) rather than deciding alone.
  std::map<uint32_t, int> spread;
  for (auto& [client, server] : serverOf) ++spread[server];
  EXPECT_EQ(spread.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_GT(counter(i, Counter::kStoreWaits), 0u);
    EXPECT_EQ(counter(i, Counter::kStoreTimeouts), 0u);
    EXPECT_EQ(counter(i, Counter::kStoreDownDecisions), 0u);
    pb::EngineStatus s;
    engines_[i].engine->fillStatus(s, 0);
    EXPECT_EQ(s.affinity_store().kind(), "redis");
    EXPECT_GT(s.affinity_store().answered() + s.affinity_store().cache_hits(), 0u);
  }
}

TEST_F(EngineRedisTest, RedisDownMeansLocalDecisionsAndBackMeansShared) {
  const uint32_t early = connect(0, ip4(198, 18, 101, 1), 20000);
  ASSERT_NE(early, 0u);
  stopRedis();
  ASSERT_TRUE(pump([&] { return !storeUp(0) && !storeUp(1); }, 10s));
  // Traffic goes on: new clients get local decisions, counted.
  for (uint32_t c = 0; c < 20; ++c)
    EXPECT_NE(connect(static_cast<int>(c % 2), ip4(198, 18, 102, 0) + c, 21000), 0u);
  EXPECT_GT(counter(0, Counter::kStoreDownDecisions) + counter(1, Counter::kStoreDownDecisions),
            0u);
  // The control plane shows it.
  ASSERT_TRUE(pump(
      [&] { return readFile(dir_ + "/state/fulcrum.log").find("is down") != std::string::npos; },
      10s));
  startRedis();
  ASSERT_TRUE(pump([&] { return storeUp(0) && storeUp(1); }, 15s));
  const uint64_t waitsBefore = counter(1, Counter::kStoreWaits);
  const uint32_t later = connect(1, ip4(198, 18, 103, 1), 22000);
  EXPECT_NE(later, 0u);
  EXPECT_EQ(counter(1, Counter::kStoreWaits), waitsBefore + 1);  // asked Redis again
  EXPECT_EQ(connect(0, ip4(198, 18, 103, 1), 22001), later);     // and the other engine agrees
}

}  // namespace
}  // namespace fulcrum
