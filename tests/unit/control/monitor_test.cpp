// The monitor against real peers on 127.0.0.1: TCP servers on the test's own
// event loop, python3's http.server, and ICMP echo to 127.0.0.1. Intervals
// are 1 s (the smallest the configuration allows); every wait is bounded.
#include "control-plane/monitor/monitor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "tests/unit/control/monitor_test_peers.h"

namespace fulcrum {
namespace {

using namespace fulcrum::testing;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

// Every onChange, with when it came.
struct Reports {
  struct Report {
    ServerHealth health;
    Clock::time_point at;
  };
  std::vector<Report> all;

  Monitor::OnChange callback() {
    return [this](const ServerHealth& h) { all.push_back({h, Clock::now()}); };
  }
  size_t count(const std::string& server) const {
    return static_cast<size_t>(std::count_if(
        all.begin(), all.end(), [&](const Report& r) { return r.health.server == server; }));
  }
  const Report* lastOf(const std::string& server) const {
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      if (it->health.server == server) return &*it;
    }
    return nullptr;
  }
};

std::map<std::string, ServerHealth> byServer(const Monitor& m) {
  std::map<std::string, ServerHealth> out;
  for (auto& h : m.health()) out[h.server] = h;
  return out;
}

bool allKnown(const Monitor& m) {
  const auto h = m.health();
  return std::all_of(h.begin(), h.end(), [](const ServerHealth& s) { return s.known; });
}

int64_t msSince(Clock::time_point t) {
  return duration_cast<milliseconds>(Clock::now() - t).count();
}

TEST(Monitor, TcpGoesDownAfterFallFailuresAndUpAfterRiseSuccesses) {
  Loop loop;
  LoopbackServer server(loop.base(), LoopbackServer::Behaviour::kClose);
  Reports reports;
  Monitor monitor(loop.base(), reports.callback());
  MonitorTarget t = makeTarget("s1", MonitorType::kTcp, server.port());
  t.config.rise = 2;
  t.config.fall = 2;
  monitor.setTargets({t});

  ASSERT_TRUE(loop.runUntil([&] { return reports.all.size() == 1; }, 2500ms));
  EXPECT_TRUE(reports.all[0].health.known);
  EXPECT_TRUE(reports.all[0].health.up);
  EXPECT_EQ(reports.all[0].health.checks, 1u);
  EXPECT_NE(reports.all[0].health.last.detail.find("connected in"), std::string::npos);

  // Down on exactly the fall-th failure: not before, and the report itself
  // shows `fall` consecutive failures.
  const uint64_t checksBefore = monitor.health()[0].checks;
  server.stop();
  const auto stopped = Clock::now();
  ASSERT_TRUE(loop.runUntil([&] { return reports.all.size() == 2; }, 2s * 2 + 1s));
  const auto down = reports.all[1];  // a copy: `all` grows
  EXPECT_FALSE(down.health.up);
  EXPECT_EQ(down.health.consecutiveFail, 2u);
  EXPECT_EQ(down.health.last.detail, "connect: Connection refused");
  // A check already connected when the listener closed may still count as a
  // success, so the failures began at the first or second check after it.
  EXPECT_GE(down.health.checks - checksBefore, 2u);
  EXPECT_LE(down.health.checks - checksBefore, 3u);
  const auto downAfter = duration_cast<milliseconds>(down.at - stopped).count();
  EXPECT_GE(downAfter, 1000 - 100);             // (fall - 1) intervals at least
  EXPECT_LE(downAfter, 2 * 1000 + 1000 + 500);  // fall intervals (+1 for a late success)

  const uint64_t failedChecks = down.health.checks;
  server.restart();
  const auto restarted = Clock::now();
  ASSERT_TRUE(loop.runUntil([&] { return reports.all.size() == 3; }, 2s * 2 + 1s));
  const auto up = reports.all[2];
  EXPECT_TRUE(up.health.up);
  EXPECT_EQ(up.health.consecutiveOk, 2u);
  EXPECT_EQ(up.health.checks - failedChecks, 2u);  // no check in flight across the restart
  const auto upAfter = duration_cast<milliseconds>(up.at - restarted).count();
  EXPECT_GE(upAfter, 1000 - 100);
  EXPECT_LE(upAfter, 2 * 1000 + 500);
  EXPECT_GE(up.health.sinceUnixMs, down.health.sinceUnixMs + 1000);
}

TEST(Monitor, FirstResultDecidesAndIsReportedOnce) {
  Loop loop;
  ClosedPort closed;
  LoopbackServer server(loop.base(), LoopbackServer::Behaviour::kClose);
  Reports reports;
  Monitor monitor(loop.base(), reports.callback());
  MonitorTarget refused = makeTarget("refused", MonitorType::kTcp, closed.port());
  refused.config.fall = 3;  // not waited for: the first result decides
  MonitorTarget open = makeTarget("open", MonitorType::kTcp, server.port());
  open.config.rise = 3;
  monitor.setTargets({refused, open});
  EXPECT_EQ(monitor.health().size(), 2u);
  EXPECT_FALSE(monitor.health()[0].known);
  EXPECT_TRUE(monitor.health()[0].up);  // unknown counts as up

  ASSERT_TRUE(loop.runUntil([&] { return allKnown(monitor); }, 2500ms));
  auto h = byServer(monitor);
  EXPECT_FALSE(h["refused"].up);
  EXPECT_EQ(h["refused"].last.detail, "connect: Connection refused");
  EXPECT_TRUE(h["open"].up);
  // Two more checks each: no further reports while nothing changes.
  loop.runFor(2100ms);
  EXPECT_EQ(reports.count("refused"), 1u);
  EXPECT_EQ(reports.count("open"), 1u);
  h = byServer(monitor);
  EXPECT_GE(h["refused"].checks, 3u);
  EXPECT_EQ(h["refused"].consecutiveFail, h["refused"].checks);
}

class MonitorPython : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    python_ = new PythonHttpServer(
        {{"health.txt", "service status: ok\n"}, {"index.html", "<html>index</html>\n"}});
  }
  static void TearDownTestSuite() {
    delete python_;
    python_ = nullptr;
  }
  void SetUp() override {
    if (!python_->available()) GTEST_SKIP() << python_->whyUnavailable();
  }
  static PythonHttpServer* python_;
};
PythonHttpServer* MonitorPython::python_ = nullptr;

TEST_F(MonitorPython, StatusBodyAndPathAgainstARealServer) {
  struct Case {
    const char* server;
    const char* path;
    std::vector<uint16_t> expect;
    const char* body;
    bool up;
    std::string detail;  // a prefix of the detail
  };
  const std::vector<Case> cases = {
      {"ok", "/health.txt", {200}, "", true, "HTTP 200 in "},
      {"root", "/", {200}, "", true, "HTTP 200 in "},
      {"expect-204", "/health.txt", {204}, "", false, "HTTP 200 not in 204"},
      {"body-present", "/health.txt", {200}, "status: ok", true, "HTTP 200 in "},
      {"body-absent",
       "/health.txt",
       {200},
       "status: degraded",
       false,
       "HTTP 200 but body lacks 'status: degraded'"},
      {"body-of-another-path",
       "/index.html",
       {200},
       "status: ok",
       false,
       "HTTP 200 but body lacks 'status: ok'"},
      {"missing-path", "/missing.txt", {200}, "", false, "HTTP 404 not in 200"},
      {"missing-path-expected", "/missing.txt", {404}, "", true, "HTTP 404 in "},
      {"one-of-two", "/health.txt", {301, 200}, "", true, "HTTP 200 in "},
  };
  Loop loop;
  Reports reports;
  Monitor monitor(loop.base(), reports.callback());
  std::vector<MonitorTarget> targets;
  for (const auto& c : cases) {
    MonitorTarget t = makeTarget(c.server, MonitorType::kHttp, python_->port());
    t.config.path = c.path;
    t.config.expect = c.expect;
    t.config.expectBody = c.body;
    targets.push_back(t);
  }
  monitor.setTargets(targets);
  ASSERT_TRUE(loop.runUntil([&] { return allKnown(monitor); }, 3s));
  auto h = byServer(monitor);
  for (const auto& c : cases) {
    EXPECT_EQ(h[c.server].up, c.up) << c.server << ": " << h[c.server].last.detail;
    EXPECT_EQ(h[c.server].last.detail.rfind(c.detail, 0), 0u)
        << c.server << ": " << h[c.server].last.detail;
    EXPECT_EQ(reports.count(c.server), 1u) << c.server;
  }
}

TEST(Monitor, HttpAgainstScriptedServers) {
  Loop loop;
  using B = LoopbackServer::Behaviour;
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nstatus ok";
  LoopbackServer good(loop.base(), B::kReply, ok);
  // Answers but keeps the connection open: judged on Content-Length, long
  // before the timeout.
  LoopbackServer keepsOpen(loop.base(), B::kReplyAndHold, ok);
  LoopbackServer garbage(loop.base(), B::kGreet,
                         std::string("\x16\x03\x01\x00\xa5garbage\r\n", 14));
  LoopbackServer sshLike(loop.base(), B::kGreet, "SSH-2.0-OpenSSH_9.2\r\n");
  LoopbackServer silentClose(loop.base(), B::kReply, "");
  LoopbackServer cutHeaders(loop.base(), B::kReply, "HTTP/1.1 200 OK\r\nContent-Type: text/pl");
  // 100 KiB of body with the text only after the first 64 KiB, no
  // Content-Length, connection held open: the monitor stops at the cap.
  const std::string huge = "HTTP/1.1 200 OK\r\n\r\n" + std::string(100 * 1024, 'x') + "needle";
  LoopbackServer hugeHeld(loop.base(), B::kReplyAndHold, huge);

  Reports reports;
  Monitor monitor(loop.base(), reports.callback());
  auto http = [](const char* name, uint16_t port, const char* body = "") {
    MonitorTarget t = makeTarget(name, MonitorType::kHttp, port);
    t.config.path = "/status?probe=1";
    t.config.expectBody = body;
    return t;
  };
  monitor.setTargets(
      {http("good", good.port(), "ok"), http("keeps-open", keepsOpen.port(), "ok"),
       http("garbage", garbage.port()), http("ssh", sshLike.port()),
       http("silent-close", silentClose.port()), http("cut-headers", cutHeaders.port(), "ok"),
       http("huge-status-only", hugeHeld.port()), http("huge-needle", hugeHeld.port(), "needle")});
  ASSERT_TRUE(loop.runUntil([&] { return allKnown(monitor); }, 3s));
  auto h = byServer(monitor);
  EXPECT_TRUE(h["good"].up) << h["good"].last.detail;
  EXPECT_TRUE(h["keeps-open"].up) << h["keeps-open"].last.detail;
  EXPECT_EQ(h["garbage"].last.detail, "malformed status line '\\x16\\x03\\x01\\x00\\xa5garbage'");
  EXPECT_FALSE(h["garbage"].up);
  EXPECT_EQ(h["ssh"].last.detail, "malformed status line 'SSH-2.0-OpenSSH_9.2'");
  EXPECT_EQ(h["silent-close"].last.detail, "connection closed without a response");
  EXPECT_EQ(h["cut-headers"].last.detail, "HTTP 200 but the response ends inside the headers");
  EXPECT_TRUE(h["huge-status-only"].up) << h["huge-status-only"].last.detail;
  EXPECT_EQ(h["huge-needle"].last.detail, "HTTP 200 but body lacks 'needle' (in the first 64 KiB)");

  // The request on the wire, byte for byte.
  ASSERT_FALSE(good.requests().empty());
  EXPECT_EQ(good.requests()[0],
            "GET /status?probe=1 HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(good.port()) +
                "\r\nUser-Agent: fulcrum-monitor\r\nConnection: close\r\n\r\n");
  // Every check closed its connection, also where the server held it open.
  ASSERT_TRUE(loop.runUntil([&] { return keepsOpen.openConnections() == 0; }, 500ms));
  ASSERT_TRUE(loop.runUntil([&] { return hugeHeld.openConnections() == 0; }, 500ms));
}

TEST(Monitor, SilentServerTimesOutAndTheNextCheckIsDeferredNotSkipped) {
  Loop loop;
  LoopbackServer silent(loop.base(), LoopbackServer::Behaviour::kHold);
  Reports reports;
  Monitor monitor(loop.base(), reports.callback());
  // timeout = interval: each check's timeout ends a hair after the next tick,
  // which must wait for it rather than be dropped.
  MonitorTarget t = makeTarget("silent", MonitorType::kHttp, silent.port());
  monitor.setTargets({t});
  ASSERT_TRUE(loop.runUntil([&] { return reports.all.size() == 1; }, 2500ms));
  const auto first = Clock::now();
  EXPECT_FALSE(reports.all[0].health.up);
  EXPECT_EQ(reports.all[0].health.last.detail, "timeout after 1000 ms (no response)");
  ASSERT_TRUE(loop.runUntil([&] { return monitor.health()[0].checks >= 3; }, 2500ms));
  EXPECT_LE(msSince(first), 2000 + 500);
  EXPECT_LE(silent.accepted(), 4u);  // never two checks of one target at once
  EXPECT_LE(monitor.checksInFlight(), 1u);
}

TEST(Monitor, IcmpEchoToLoopback) {
  Loop loop;
  Reports reports;
  Monitor monitor(loop.base(), reports.callback());
  MonitorTarget v4 = makeTarget("lo", MonitorType::kIcmp, 0);
  MonitorTarget v6 = makeTarget("v6", MonitorType::kIcmp, 0);
  v6.address = *IpAddress::parse("2001:db8::1");  // never sent: refused before any I/O
  // Many targets on one address share the socket; replies are told apart by sequence.
  std::vector<MonitorTarget> targets = {v4, v6};
  for (int i = 0; i < 20; ++i) {
    MonitorTarget t = v4;
    t.server = "lo-" + std::to_string(i);
    targets.push_back(t);
  }
  monitor.setTargets(targets);
  ASSERT_TRUE(loop.runUntil([&] { return allKnown(monitor); }, 2500ms));
  auto h = byServer(monitor);
  if (h["lo"].last.detail.rfind("icmp socket:", 0) == 0) {
    GTEST_SKIP() << "no ICMP socket for this user: " << h["lo"].last.detail;
  }
  for (const auto& [name, health] : h) {
    if (name == "v6") continue;
    EXPECT_TRUE(health.up) << name << ": " << health.last.detail;
    EXPECT_EQ(health.last.detail.rfind("echo reply in ", 0), 0u) << health.last.detail;
  }
  EXPECT_FALSE(h["v6"].up);
  EXPECT_EQ(h["v6"].last.detail, "IPv6 monitoring not supported yet");
  // Keep going for another round: every target answered again, nothing flapped.
  loop.runFor(1100ms);
  for (const auto& [name, health] : byServer(monitor)) {
    EXPECT_GE(health.checks, 2u) << name;
    EXPECT_EQ(reports.count(name), 1u) << name;
  }
}

TEST(Monitor, SetTargetsKeepsUnchangedStartsNewStopsRemoved) {
  Loop loop;
  LoopbackServer server(loop.base(), LoopbackServer::Behaviour::kClose);
  LoopbackServer silent(loop.base(), LoopbackServer::Behaviour::kHold);
  ClosedPort closed;
  Reports reports;
  Monitor monitor(loop.base(), reports.callback());
  const MonitorTarget kept = makeTarget("kept", MonitorType::kTcp, server.port());
  const MonitorTarget removed = makeTarget("removed", MonitorType::kTcp, closed.port());
  MonitorTarget hanging = makeTarget("hanging", MonitorType::kHttp, silent.port());
  monitor.setTargets({kept, removed, hanging});
  ASSERT_TRUE(
      loop.runUntil([&] { return allKnown(monitor) && silent.openConnections() == 1; }, 3500ms));
  // Right now "hanging" has a check in flight (the silent server holds it).
  const ServerHealth keptBefore = byServer(monitor)["kept"];
  const size_t reportsBefore = reports.all.size();

  const MonitorTarget added = makeTarget("added", MonitorType::kTcp, server.port());
  MonitorTarget none = makeTarget("unmonitored", MonitorType::kNone, server.port());
  monitor.setTargets({added, kept, none, kept /* a duplicate: ignored */});
  auto h = monitor.health();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].server, "added");
  EXPECT_FALSE(h[0].known);
  EXPECT_EQ(h[1], keptBefore);  // state and counters as they were
  // The removed check in flight is cancelled at once: its socket is closed.
  EXPECT_TRUE(loop.runUntil([&] { return silent.openConnections() == 0; }, 300ms));

  ASSERT_TRUE(loop.runUntil([&] { return allKnown(monitor); }, 2500ms));
  loop.runFor(1100ms);
  h = monitor.health();
  EXPECT_TRUE(h[0].up);
  EXPECT_GT(h[1].checks, keptBefore.checks + 1);  // its schedule went on
  EXPECT_EQ(h[1].sinceUnixMs, keptBefore.sinceUnixMs);
  // After the change: one report (the new target's first result), nothing
  // from the removed ones, nothing from the unchanged one.
  ASSERT_EQ(reports.all.size(), reportsBefore + 1);
  EXPECT_EQ(reports.all.back().health.server, "added");

  // A changed target (another port) starts over as unknown.
  MonitorTarget moved = kept;
  moved.port = closed.port();
  monitor.setTargets({added, moved});
  h = monitor.health();
  EXPECT_FALSE(h[1].known);
  EXPECT_EQ(h[1].checks, 0u);
  ASSERT_TRUE(loop.runUntil([&] { return allKnown(monitor); }, 2500ms));
  EXPECT_FALSE(monitor.health()[1].up);
  EXPECT_EQ(reports.lastOf("kept")->health.last.detail, "connect: Connection refused");

  // setTargets() from inside onChange: the reporting target removes itself.
  Reports more;
  Monitor selfEditing(loop.base(), [&](const ServerHealth& s) {
    more.all.push_back({s, Clock::now()});
    selfEditing.setTargets({});
  });
  selfEditing.setTargets({kept, removed});
  ASSERT_TRUE(loop.runUntil([&] { return !more.all.empty(); }, 2500ms));
  loop.runFor(1100ms);
  EXPECT_EQ(more.all.size(), 1u);
  EXPECT_TRUE(selfEditing.health().empty());
}

TEST(Monitor, ThreeHundredTargetsOnOneLoop) {
  Loop loop;
  using B = LoopbackServer::Behaviour;
  std::vector<std::unique_ptr<LoopbackServer>> listeners;
  for (int i = 0; i < 3; ++i)
    listeners.push_back(std::make_unique<LoopbackServer>(loop.base(), B::kClose));
  std::vector<std::unique_ptr<ClosedPort>> closed;
  for (int i = 0; i < 3; ++i) closed.push_back(std::make_unique<ClosedPort>());

  std::vector<MonitorTarget> targets;
  std::map<std::string, bool> want;
  for (int i = 0; i < 300; ++i) {
    const bool up = i % 10 != 0;  // 270 up, 30 down
    const uint16_t port = up ? listeners[i % 3]->port() : closed[i % 3]->port();
    MonitorTarget t = makeTarget("s" + std::to_string(i), MonitorType::kTcp, port);
    t.application = "app" + std::to_string(i % 7);
    targets.push_back(t);
    want[t.server] = up;
  }
  Reports reports;
  Monitor monitor(loop.base(), reports.callback());
  const auto started = Clock::now();
  monitor.setTargets(targets);
  ASSERT_TRUE(loop.runUntil([&] { return allKnown(monitor); }, 3s));
  const auto allKnownAfter = msSince(started);
  for (const auto& s : monitor.health()) {
    EXPECT_EQ(s.up, want[s.server]) << s.server << ": " << s.last.detail;
  }
  EXPECT_EQ(reports.all.size(), 300u);
  // The first checks were spread over the first interval, not fired at once.
  const auto span = reports.all.back().at - reports.all.front().at;
  EXPECT_GT(duration_cast<milliseconds>(span).count(), 700);
  EXPECT_LT(allKnownAfter, 2000);
  // Two more rounds: still right, no report.
  loop.runFor(2s);
  EXPECT_EQ(reports.all.size(), 300u);
  for (const auto& s : monitor.health()) {
    EXPECT_EQ(s.up, want[s.server]) << s.server;
    EXPECT_GE(s.checks, 2u) << s.server;
  }
}

TEST(Monitor, DestructorWithChecksInFlightClosesEverything) {
  Loop loop;
  LoopbackServer silent(loop.base(), LoopbackServer::Behaviour::kHold);
  LoopbackServer open(loop.base(), LoopbackServer::Behaviour::kClose);
  const size_t fdsBefore = openFdCount();
  bool reportedAfterDestruction = false;
  bool destroyed = false;
  {
    Monitor monitor(loop.base(), [&](const ServerHealth&) {
      if (destroyed) reportedAfterDestruction = true;
    });
    std::vector<MonitorTarget> targets;
    for (int i = 0; i < 50; ++i) {
      targets.push_back(makeTarget("hang" + std::to_string(i), MonitorType::kHttp, silent.port()));
      targets.push_back(makeTarget("tcp" + std::to_string(i), MonitorType::kTcp, open.port()));
      targets.push_back(makeTarget("icmp" + std::to_string(i), MonitorType::kIcmp, 0));
    }
    monitor.setTargets(targets);
    // Wait until a good part of the hanging checks is in flight.
    ASSERT_TRUE(loop.runUntil([&] { return silent.openConnections() >= 20; }, 2500ms));
    EXPECT_GE(monitor.checksInFlight(), 20u);
  }
  destroyed = true;
  // The server sees every monitor connection closed; nothing more arrives.
  EXPECT_TRUE(loop.runUntil([&] { return silent.openConnections() == 0; }, 500ms));
  const size_t accepted = silent.accepted();
  loop.runFor(1100ms);
  EXPECT_EQ(silent.accepted(), accepted);
  EXPECT_FALSE(reportedAfterDestruction);
  EXPECT_EQ(openFdCount(), fdsBefore);  // the ICMP socket included
}

}  // namespace
}  // namespace fulcrum
