// Request logging, data plane to file: how many request-log lines per second
// reach the control plane's syslog file.
//
// The real pieces, as fulcrum-data runs them: a packet loop (this thread)
// feeds HTTP requests on keep-alive connections of an http-filter
// application through PacketProcessor, which parses them, rewrites Host,
// and queues one log entry each on its ring; the control-channel thread
// (Engine + ControlClient on libevent) ships the rings in batches to a real
// fulcrum-control process, which writes RFC 5424 lines to its syslog file.
// The server's ACK of each request goes back through the loop too.
//
// Two figures:
//   offered   requests/s the loop pushes through the filter when the rings
//             are drained (paced so nothing is dropped: the figure is the
//             sustained rate, not a burst into an empty ring);
//   to file   lines/s from the first request to the last line in the file.
// Loopback only: the control channel is 127.0.0.1; packets never leave the
// process.
//
//   request_log_bench [--requests N] [--connections N]
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "data-plane/control_client.h"
#include "data-plane/engine.h"
#include "data-plane/io/packet_io.h"
#include "tests/common/packet_builder.h"
#include "tests/common/process.h"

namespace {

using namespace fulcrum;
using namespace fulcrum::testing;
using Clock = std::chrono::steady_clock;

constexpr const char* kConfig =
    R"(set service-set web inside-interface fs-web-in outside-interface fs-web-out
set application shop service-set web facade 198.18.0.10 port 80 algorithm round-robin
set application shop http-filter on
set application shop server s1 address 198.18.1.11 port 8080
set application shop server s2 address 198.18.1.12 port 8080
)";

pid_t spawn(const std::vector<std::string>& argv, const std::string& logPath) {
  return testing::spawnLogged(argv, logPath);
}

int runToEnd(const std::vector<std::string>& argv, const std::string& logPath) {
  pid_t pid = spawn(argv, logPath);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Request lines in the syslog file (one per request, msgId "request").
size_t countRequestLines(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line))
    if (line.find(" request [fulcrum@") != std::string::npos) ++n;
  return n;
}

bool waitFor(const std::function<bool()>& done, std::chrono::seconds bound) {
  const auto deadline = Clock::now() + bound;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

uint32_t loopNow() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint32_t>(ts.tv_sec);
}

// One keep-alive connection: its client sequence number and the server's
// view of it, so requests and ACKs follow each other as on the wire.
struct Connection {
  uint16_t clientPort = 0;
  uint32_t clientSeq = 0;  // client space: next byte to send
  uint32_t server = 0;
  uint16_t serverPort = 0;
  uint32_t serverSeq = 5000;
  uint32_t serverAcked = 0;  // server space: what the server acknowledges next
};

}  // namespace

int main(int argc, char** argv) {
  size_t requests = 200000, connections = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string arg = argv[i];
    if (arg == "--requests") {
      requests = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (arg == "--connections") {
      connections = std::strtoull(argv[i + 1], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: request_log_bench [--requests N] [--connections N]\n");
      return 2;
    }
  }
  if (requests == 0 || connections == 0 || connections > 60000) {
    std::fprintf(stderr, "request_log_bench: --requests and --connections must be 1 or more\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  char dirTemplate[] = "/tmp/fulcrum-log-bench-XXXXXX";
  if (!mkdtemp(dirTemplate)) return 1;
  const std::string dir = dirTemplate;
  const int port = 20000 + static_cast<int>(getpid() % 20000);
  const std::string socket = dir + "/state/mgmt.sock", syslogPath = dir + "/state/fulcrum.log";
  const pid_t control = spawn({FULCRUM_CONTROL_PATH, "--state-dir", dir + "/state", "--listen",
                               "127.0.0.1:" + std::to_string(port)},
                              dir + "/control.log");
  auto cleanup = [&](int code) {
    if (control > 0) {
      kill(control, SIGTERM);
      waitpid(control, nullptr, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    return code;
  };
  if (control < 0 ||
      !waitFor([&] { return access(socket.c_str(), F_OK) == 0; }, std::chrono::seconds(10))) {
    std::fprintf(stderr, "request_log_bench: fulcrum-control did not start (%s/control.log)\n",
                 dir.c_str());
    return cleanup(1);
  }
  std::ofstream(dir + "/shop.conf") << kConfig;
  if (runToEnd({FULCRUM_CLI_PATH, "--socket", socket, "load", dir + "/shop.conf"},
               dir + "/cli.out") != 0 ||
      runToEnd({FULCRUM_CLI_PATH, "--socket", socket, "commit", "-m", "bench"}, dir + "/cli.out") !=
          0) {
    std::fprintf(stderr, "request_log_bench: could not commit the configuration\n");
    return cleanup(1);
  }

  Engine::Options options;
  options.capacity = 65536;
  options.loops = 1;
  options.link = LinkType::kRawIp;
  Engine engine(options);
  event_base* base = event_base_new();
  ControlClient::Options c;
  c.control = *channel::Endpoint::parse("127.0.0.1:" + std::to_string(port));
  c.engineId = "bench";
  c.softwareVersion = "bench";
  auto client = std::make_unique<ControlClient>(base, engine, c);
  client->start();
  std::atomic<bool> stop{false};
  std::thread controlThread([&] {
    while (!stop.load()) {
      timeval tv{0, 20000};
      event_base_loopexit(base, &tv);
      event_base_dispatch(base);
    }
  });
  auto finish = [&](int code) {
    stop = true;
    controlThread.join();
    client.reset();  // its events belong to the base
    event_base_free(base);
    return cleanup(code);
  };
  if (!waitFor([&] { return engine.generation() == 1; }, std::chrono::seconds(10))) {
    std::fprintf(stderr, "request_log_bench: the engine got no configuration\n");
    return finish(1);
  }

  PacketProcessor& loop = engine.loop(0);
  LogRing& ring = engine.logRing(0);
  std::vector<uint8_t> buffer(kMaxPacketSize);
  auto send = [&](const TcpPacketSpec& spec, Direction direction, PacketView* out) {
    auto frame = buildTcp(spec);
    std::memcpy(buffer.data(), frame.data(), frame.size());
    PacketRef p{buffer.data(), static_cast<uint32_t>(frame.size()), 0, direction};
    p.capacity = static_cast<uint32_t>(buffer.size());
    const Verdict verdict = loop.process(p, loopNow());
    if (out) parsePacket(buffer.data(), p.length, LinkType::kRawIp, *out);
    return verdict == Verdict::kForward;
  };

  // Open the connections: SYN, the server's SYN+ACK, the client's ACK.
  std::vector<Connection> conns(connections);
  for (size_t i = 0; i < connections; ++i) {
    Connection& k = conns[i];
    k.clientPort = static_cast<uint16_t>(2000 + i);
    k.clientSeq = 1000;
    TcpPacketSpec syn;
    syn.ethernet = false;
    syn.srcPort = k.clientPort;
    syn.seq = k.clientSeq++;
    syn.flags = tcpflag::kSyn;
    PacketView v;
    if (!send(syn, Direction::kEgress, &v)) return finish(1);
    k.server = v.dstV4();
    k.serverPort = v.dstPort();
    k.serverAcked = k.clientSeq;
    TcpPacketSpec synAck;
    synAck.ethernet = false;
    synAck.src = k.server;
    synAck.srcPort = k.serverPort;
    synAck.dst = syn.src;
    synAck.dstPort = k.clientPort;
    synAck.seq = k.serverSeq++;
    synAck.ack = k.clientSeq;
    synAck.flags = tcpflag::kSyn | tcpflag::kAck;
    send(synAck, Direction::kIngress, nullptr);
  }

  const size_t ringHigh = 12000;  // of 16384: pace the loop before the ring is full
  size_t paced = 0;
  const auto start = Clock::now();
  for (size_t r = 0; r < requests; ++r) {
    while (ring.size() > ringHigh) {
      ++paced;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    Connection& k = conns[r % connections];
    TcpPacketSpec req;
    req.ethernet = false;
    req.srcPort = k.clientPort;
    req.seq = k.clientSeq;
    req.ack = k.serverSeq;
    req.flags = tcpflag::kAck | tcpflag::kPsh;
    const std::string request = "GET /catalog/item/" + std::to_string(r) +
                                "?view=full HTTP/1.1\r\nHost: 198.18.0.10\r\n"
                                "User-Agent: request-log-bench\r\nAccept: */*\r\n\r\n";
    req.payload = request;  // a view: `request` must outlive the packet's build
    k.clientSeq += static_cast<uint32_t>(request.size());
    PacketView v;
    if (!send(req, Direction::kEgress, &v)) {
      std::fprintf(stderr, "request_log_bench: request %zu dropped\n", r);
      return finish(1);
    }
    // The server acknowledges what it got, in its own numbering.
    k.serverAcked = v.seq() + static_cast<uint32_t>(v.payloadLength);
    TcpPacketSpec ack;
    ack.ethernet = false;
    ack.src = k.server;
    ack.srcPort = k.serverPort;
    ack.dst = req.src;
    ack.dstPort = k.clientPort;
    ack.seq = k.serverSeq;
    ack.ack = k.serverAcked;
    ack.flags = tcpflag::kAck;
    PacketView back;
    send(ack, Direction::kIngress, &back);
    if (back.ack() != k.clientSeq) {
      std::fprintf(stderr, "request_log_bench: ACK mapped to %u, expected %u\n", back.ack(),
                   k.clientSeq);
      return finish(1);
    }
  }
  const double offeredSeconds = std::chrono::duration<double>(Clock::now() - start).count();
  const bool arrived =
      waitFor([&] { return countRequestLines(syslogPath) >= requests; }, std::chrono::seconds(120));
  const double fileSeconds = std::chrono::duration<double>(Clock::now() - start).count();
  const size_t lines = countRequestLines(syslogPath);
  const uint64_t rewritten = loop.counters().get(Counter::kHttpHostsRewritten);
  std::ifstream sizeOf(syslogPath, std::ios::ate | std::ios::binary);
  const double bytesPerLine = lines ? static_cast<double>(sizeOf.tellg()) / lines : 0;

  std::printf("requests                 %zu on %zu keep-alive connections\n", requests,
              connections);
  std::printf("through the filter       %.0f requests/s (loop paused %zu times for the ring)\n",
              requests / offeredSeconds, paced);
  std::printf("lines in the syslog file %zu in %.2f s: %.0f lines/s\n", lines, fileSeconds,
              lines / fileSeconds);
  std::printf("bytes per line           %.0f\n", bytesPerLine);
  std::printf("hosts rewritten          %llu\n", static_cast<unsigned long long>(rewritten));
  std::printf("logs dropped             %llu\n",
              static_cast<unsigned long long>(engine.logsDropped()));
  const bool ok =
      arrived && lines == requests && engine.logsDropped() == 0 && rewritten == requests;
  if (!ok) {
    std::fprintf(stderr, "request_log_bench: lines, drops or rewrites are off; loop counters:\n");
    for (size_t i = 0; i < kCounterCount; ++i)
      if (uint64_t n = loop.counters().get(static_cast<Counter>(i)))
        std::fprintf(stderr, "  %s %llu\n", std::string(kCounterInfo[i].name).c_str(),
                     static_cast<unsigned long long>(n));
  }
  return finish(ok ? 0 : 1);
}
