// The monitor's decisions without sockets: the HTTP request it sends, the
// verdict on response bytes, the rise/fall state machine and the first-check
// spread.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "control-plane/monitor/health_state.h"
#include "control-plane/monitor/http_response.h"

namespace fulcrum {
namespace {

TEST(MonitorHttpRequest, ExactBytes) {
  EXPECT_EQ(buildHttpRequest(IpAddress::v4(0xC612010B), 8080, "/health?full=1"),
            "GET /health?full=1 HTTP/1.0\r\nHost: 198.18.1.11:8080\r\n"
            "User-Agent: fulcrum-monitor\r\nConnection: close\r\n\r\n");
  // Port 80 is left out of Host; an empty path asks for "/".
  EXPECT_EQ(buildHttpRequest(IpAddress::v4(0x7f000001), 80, ""),
            "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n"
            "User-Agent: fulcrum-monitor\r\nConnection: close\r\n\r\n");
  const IpAddress v6 = *IpAddress::parse("2001:db8::1");
  EXPECT_NE(buildHttpRequest(v6, 8080, "/").find("\r\nHost: [2001:db8::1]:8080\r\n"),
            std::string::npos);
  EXPECT_NE(buildHttpRequest(v6, 80, "/").find("\r\nHost: [2001:db8::1]\r\n"), std::string::npos);
}

struct HttpCase {
  const char* description;
  std::string response;
  ResponseEnd end;
  std::vector<uint16_t> expect;
  std::string expectBody;
  // "" = no verdict yet (nullopt); else "ok: <detail>" or "fail: <detail>".
  std::string want;
};

std::string verdict(const std::optional<CheckResult>& r) {
  if (!r) return "";
  return (r->ok ? "ok: " : "fail: ") + r->detail;
}

TEST(MonitorHttpResponse, Table) {
  using E = ResponseEnd;
  const std::string big(kMaxHttpResponseBytes, 'x');
  const std::vector<HttpCase> cases = {
      {"200 expected", "HTTP/1.0 200 OK\r\n\r\n", E::kClosed, {200}, "", "ok: HTTP 200"},
      {"verdict on the status line alone",
       "HTTP/1.1 200 OK\r\n",
       E::kOpen,
       {200},
       "",
       "ok: HTTP 200"},
      {"status without reason phrase",
       "HTTP/1.1 204\r\n\r\n",
       E::kClosed,
       {204},
       "",
       "ok: HTTP 204"},
      {"one of several codes",
       "HTTP/1.1 301 Moved\r\n\r\n",
       E::kClosed,
       {200, 301},
       "",
       "ok: HTTP 301"},
      {"code not expected, decided at once",
       "HTTP/1.1 503 Unavailable\r\n",
       E::kOpen,
       {200},
       "",
       "fail: HTTP 503 not in 200"},
      {"code list in the detail",
       "HTTP/1.1 404 Not Found\r\n\r\n",
       E::kClosed,
       {200, 204},
       "",
       "fail: HTTP 404 not in 200,204"},
      {"bare LF line ends", "HTTP/1.0 200 OK\n\nok", E::kClosed, {200}, "ok", "ok: HTTP 200"},
      {"status line without line end at close",
       "HTTP/1.0 200 OK",
       E::kClosed,
       {200},
       "",
       "ok: HTTP 200"},
      {"partial status line: wait", "HTTP/1.", E::kOpen, {200}, "", ""},
      {"nothing yet: wait", "", E::kOpen, {200}, "", ""},
      {"closed without a byte",
       "",
       E::kClosed,
       {200},
       "",
       "fail: connection closed without a response"},
      {"not HTTP, decided on the first bytes",
       "SSH-2.0-OpenSSH",
       E::kOpen,
       {200},
       "",
       "fail: malformed status line 'SSH-2.0-OpenSSH'"},
      {"binary garbage is quoted safely",
       std::string("\x00\xff\r\nzz", 6),
       E::kOpen,
       {200},
       "",
       "fail: malformed status line '\\x00\\xff'"},
      {"lowercase protocol",
       "http/1.1 200 OK\r\n",
       E::kOpen,
       {200},
       "",
       "fail: malformed status line 'http/1.1 200 OK'"},
      {"two-digit status",
       "HTTP/1.1 20 OK\r\n",
       E::kOpen,
       {200},
       "",
       "fail: malformed status line 'HTTP/1.1 20 OK'"},
      {"status glued to reason",
       "HTTP/1.1 200OK\r\n",
       E::kOpen,
       {200},
       "",
       "fail: malformed status line 'HTTP/1.1 200OK'"},
      {"endless status line",
       "HTTP/1.1 200 " + std::string(2000, 'a'),
       E::kOpen,
       {200},
       "",
       "fail: malformed status line 'HTTP/1.1 200 aaaaaaaaaaaaaaaaaaaaaaaaaaa...' (no line end "
       "within 1024 bytes)"},
      {"body has the text",
       "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n{\"status\":\"ok\"}",
       E::kClosed,
       {200},
       "\"ok\"",
       "ok: HTTP 200"},
      {"body text found before the end",
       "HTTP/1.1 200 OK\r\n\r\nall ok, more",
       E::kOpen,
       {200},
       "ok",
       "ok: HTTP 200"},
      {"body text not yet there: wait", "HTTP/1.1 200 OK\r\n\r\nall o", E::kOpen, {200}, "ok", ""},
      {"body lacks the text",
       "HTTP/1.1 200 OK\r\n\r\nall fine",
       E::kClosed,
       {200},
       "ok",
       "fail: HTTP 200 but body lacks 'ok'"},
      {"text only in a header does not count",
       "HTTP/1.1 200 OK\r\nX-State: ok\r\n\r\nno",
       E::kClosed,
       {200},
       "ok",
       "fail: HTTP 200 but body lacks 'ok'"},
      {"content-length completes the body on an open connection",
       "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnope",
       E::kOpen,
       {200},
       "ok",
       "fail: HTTP 200 but body lacks 'ok'"},
      {"bytes beyond content-length are not body",
       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nnook",
       E::kClosed,
       {200},
       "ok",
       "fail: HTTP 200 but body lacks 'ok'"},
      {"chunked ignores content-length",
       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnook",
       E::kOpen,
       {200},
       "ok",
       "ok: HTTP 200"},
      {"headers cut by close",
       "HTTP/1.1 200 OK\r\nServer: x\r\n",
       E::kClosed,
       {200},
       "ok",
       "fail: HTTP 200 but the response ends inside the headers"},
      {"headers beyond the cap",
       "HTTP/1.1 200 OK\r\nX: " + big,
       E::kCapped,
       {200},
       "ok",
       "fail: HTTP 200 but the headers exceed 64 KiB"},
      {"body beyond the cap",
       "HTTP/1.1 200 OK\r\n\r\n" + big,
       E::kCapped,
       {200},
       "ok",
       "fail: HTTP 200 but body lacks 'ok' (in the first 64 KiB)"},
      {"the cap is not an error without expect-body",
       "HTTP/1.1 200 OK\r\n\r\n" + big,
       E::kCapped,
       {200},
       "",
       "ok: HTTP 200"},
      {"expected text is quoted safely",
       "HTTP/1.1 200 OK\r\n\r\nx",
       E::kClosed,
       {200},
       "it's",
       "fail: HTTP 200 but body lacks 'it\\x27s'"},
  };
  for (const auto& c : cases) {
    MonitorConfig config;
    config.type = MonitorType::kHttp;
    config.expect = c.expect;
    config.expectBody = c.expectBody;
    EXPECT_EQ(verdict(evaluateHttpResponse(c.response, c.end, config)), c.want) << c.description;
  }
}

TEST(MonitorHttpResponse, EveryPrefixOfAGoodResponseWaitsThenPasses) {
  MonitorConfig config;
  config.type = MonitorType::kHttp;
  config.expectBody = "healthy";
  const std::string full = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nI am healthy\n";
  const size_t decisive = full.find("healthy") + 7;
  for (size_t n = 0; n < full.size(); ++n) {
    const auto r =
        evaluateHttpResponse(std::string_view(full).substr(0, n), ResponseEnd::kOpen, config);
    if (n < decisive) {
      EXPECT_FALSE(r.has_value()) << n;
    } else {
      ASSERT_TRUE(r.has_value()) << n;
      EXPECT_TRUE(r->ok) << n;
    }
  }
}

CheckResult ok() {
  return {true, "ok"};
}
CheckResult bad() {
  return {false, "bad"};
}

// Feeds `results` ("+" ok, "-" failure) and returns, per result, "U"/"D" when
// it was reported (the new state) and "." when not.
std::string run(const std::string& results, uint32_t rise, uint32_t fall) {
  ServerHealth h;
  std::string out;
  int64_t now = 1000;
  for (char c : results) {
    const bool reported = recordResult(h, c == '+' ? ok() : bad(), rise, fall, ++now);
    out += reported ? (h.up ? 'U' : 'D') : '.';
  }
  return out;
}

TEST(MonitorHealthState, RiseAndFall) {
  EXPECT_EQ(run("+", 2, 3), "U");  // the first result decides directly
  EXPECT_EQ(run("-", 2, 3), "D");
  EXPECT_EQ(run("+--+---", 2, 3), "U.....D");  // fall needs consecutive failures
  EXPECT_EQ(run("---+-++", 2, 3), "D.....U");  // rise needs consecutive successes
  EXPECT_EQ(run("+-+-+-", 1, 1), "UDUDUD");
  EXPECT_EQ(run("+---------", 1, 3), "U..D......");  // reported once, not per failure
  EXPECT_EQ(run("+--", 0, 0), "UD.");                // 0 counts as 1
}

TEST(MonitorHealthState, CountersLastAndSince) {
  ServerHealth h;
  h.sinceUnixMs = 5;
  EXPECT_TRUE(recordResult(h, bad(), 2, 2, 100));
  EXPECT_TRUE(h.known);
  EXPECT_FALSE(h.up);
  EXPECT_EQ(h.sinceUnixMs, 100);
  EXPECT_FALSE(recordResult(h, ok(), 2, 2, 200));
  EXPECT_EQ(h.consecutiveOk, 1u);
  EXPECT_EQ(h.consecutiveFail, 0u);
  EXPECT_EQ(h.sinceUnixMs, 100);  // no change of state, no new `since`
  EXPECT_TRUE(recordResult(h, ok(), 2, 2, 300));
  EXPECT_TRUE(h.up);
  EXPECT_EQ(h.sinceUnixMs, 300);
  EXPECT_EQ(h.checks, 3u);
  EXPECT_EQ(h.consecutiveOk, 2u);
  EXPECT_EQ(h.last, ok());
}

TEST(MonitorSchedule, FirstCheckOffsetsAreFixedAndSpread) {
  EXPECT_EQ(firstCheckOffsetMs("shop", "s1", 2000), firstCheckOffsetMs("shop", "s1", 2000));
  EXPECT_NE(firstCheckOffsetMs("a", "bc", 1000000), firstCheckOffsetMs("ab", "c", 1000000));
  EXPECT_EQ(firstCheckOffsetMs("shop", "s1", 0), 0u);
  // 300 servers over a 1 s interval: every offset inside it, in ten 100 ms
  // slices none holds more than twice its share.
  std::vector<int> slices(10);
  std::set<uint32_t> distinct;
  for (int i = 0; i < 300; ++i) {
    const uint32_t o = firstCheckOffsetMs("app", "s" + std::to_string(i), 1000);
    ASSERT_LT(o, 1000u);
    ++slices[o / 100];
    distinct.insert(o);
  }
  EXPECT_LE(*std::max_element(slices.begin(), slices.end()), 60);
  EXPECT_GT(distinct.size(), 200u);
}

}  // namespace
}  // namespace fulcrum
