// Tests of the management CLI `fulcrum`: the command line to MgmtRequest
// (every command and every usage error), re-quoting of statement words,
// rendering of every reply, JSON, help, one run end to end with fake
// transports, the socket transport against a fake control plane, and the
// built binary itself.
#include <fcntl.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mgmt/cli.h"
#include "mgmt/cli_args.h"
#include "mgmt/cli_render.h"
#include "mgmt/cli_text.h"
#include "mgmt/socket_transport.h"
#include "shared/channel/channel.h"
#include "shared/config/config_parser.h"
#include "shared/version.h"

extern char** environ;

namespace fulcrum::cli {
namespace {

using namespace std::chrono_literals;
using google::protobuf::util::MessageDifferencer;

// 2026-11-22 00:10:47 UTC: every SINCE/CONNECTED/LAST-STATUS counts from it.
constexpr int64_t kNowMs = 1795306247000;
const Clock::time_point kNow{std::chrono::milliseconds(kNowMs)};

const std::string kUnreachableHint =
    "; start it with 'systemctl start fulcrum-control' or 'fulcrum-control --state-dir DIR'";

std::string argsText(const std::vector<std::string>& args) {
  std::string out = "fulcrum";
  for (const auto& a : args) out += " [" + a + "]";
  return out;
}

pb::MgmtRequest requestFromText(const std::string& text) {
  pb::MgmtRequest request;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &request)) << text;
  return request;
}

// Answers every exchange with `result` and records what it was asked.
struct FakeTransport : Transport {
  Exchange exchange(const std::string& socketPath, const pb::MgmtRequest& request,
                    std::chrono::milliseconds timeout) override {
    ++calls;
    path = socketPath;
    sent = request;
    sentTimeout = timeout;
    return result;
  }
  void replyWith(const pb::MgmtReply& reply) {
    result = Exchange{};
    result.payload = reply.SerializeAsString();
  }
  Exchange result;
  int calls = 0;
  std::string path;
  pb::MgmtRequest sent;
  std::chrono::milliseconds sentTimeout{0};
};

struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};

Environment testEnvironment() {
  Environment env;
  env.user = "alice";
  env.now = kNow;
  return env;
}

RunResult runCli(const std::vector<std::string>& args, FakeTransport& transport,
                 const Environment& env = testEnvironment()) {
  std::ostringstream out, err;
  RunResult r;
  r.status = run(args, env, transport, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

pb::MgmtReply okReply() {
  pb::MgmtReply reply;
  reply.set_ok(true);
  return reply;
}

// A directory of its own for files and sockets, removed afterwards.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/fulcrum-cli-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    if (made) path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  f << content;
}

// --------------------------------------------------------------- parsing

struct RequestCase {
  std::vector<std::string> args;
  std::string request;  // text format of the command part of the MgmtRequest
};

TEST(CliArgs, EveryCommandBuildsItsRequest) {
  const std::vector<RequestCase> cases =
      {
          {{"set", "application", "shop", "port", "80"},
           R"pb(edit { statements: "set application shop port 80" })pb"},
          {{"set", "application", "shop", "monitor", "type", "http", "expect-body", "it works"},
           R"pb(edit {
                  statements: "set application shop monitor type http expect-body \"it works\""
                })pb"},
          // Words that start with '-' belong to a statement (names may).
          {{"set", "application", "-shop-", "port", "80"},
           R"pb(edit { statements: "set application -shop- port 80" })pb"},
          // After `--`, even the global options are words of the statement.
          {{"set", "--", "application", "--json"},
           R"pb(edit { statements: "set application --json" })pb"},
          {{"delete", "application", "shop", "server", "s1"},
           R"pb(edit { statements: "delete application shop server s1" })pb"},
          {{"delete", "application", "shop", "monitor", "expect-body"},
           R"pb(edit { statements: "delete application shop monitor expect-body" })pb"},
          {{"show", "configuration"}, R"pb(show_config {})pb"},
          {{"show", "configuration", "--candidate"}, R"pb(show_config { candidate: true })pb"},
          {{"compare"}, R"pb(compare {})pb"},
          {{"commit"}, R"pb(commit {})pb"},
          {{"commit", "-m", "add s3"}, R"pb(commit { comment: "add s3" })pb"},
          {{"commit", "-madd s3"}, R"pb(commit { comment: "add s3" })pb"},
          {{"commit", "--comment", "add s3"}, R"pb(commit { comment: "add s3" })pb"},
          {{"commit", "--comment=add s3"}, R"pb(commit { comment: "add s3" })pb"},
          {{"commit", "-m", "two\nlines"}, R"pb(commit { comment: "two\nlines" })pb"},
          {{"commit", "-m", "--not-an-option"}, R"pb(commit { comment: "--not-an-option" })pb"},
          {{"rollback", "12"}, R"pb(rollback { number: 12 })pb"},
          {{"rollback", "9223372036854775807"}, R"pb(rollback { number: 9223372036854775807 })pb"},
          {{"show", "commits"}, R"pb(show_commits {})pb"},
          {{"load", "/etc/fulcrum/fulcrum.conf"}, R"pb(load {})pb"},
          {{"show", "servers"}, R"pb(show_servers {})pb"},
          {{"show", "sessions"}, R"pb(show_sessions {})pb"},
          {{"show", "sessions", "shop"}, R"pb(show_sessions { application: "shop" })pb"},
          {{"show", "statistics"}, R"pb(show_statistics {})pb"},
          {{"show", "engines"}, R"pb(show_engines {})pb"},
          {{"show", "affinity-store"}, R"pb(show_affinity_store {})pb"},
          {{"clear", "sessions"}, R"pb(clear_sessions {})pb"},
          {{"clear", "sessions", "shop"}, R"pb(clear_sessions { application: "shop" })pb"},
          {{"request", "server", "drain", "shop", "s1"},
           R"pb(drain { application: "shop" server: "s1" drain: true })pb"},
          {{"request", "server", "undrain", "shop", "s1"},
           R"pb(drain { application: "shop" server: "s1" drain: false })pb"},
          {{"--json", "show", "servers"}, R"pb(show_servers {})pb"},
          {{"show", "servers", "--json"}, R"pb(show_servers {})pb"},
          {{"--", "show", "servers"}, R"pb(show_servers {})pb"},
      };
  for (const RequestCase& c : cases) {
    SCOPED_TRACE(argsText(c.args));
    const Invocation inv = parseArgs(c.args);
    ASSERT_EQ(inv.kind, Invocation::Kind::kRequest) << inv.text;
    const pb::MgmtRequest expected = requestFromText(c.request);
    EXPECT_TRUE(MessageDifferencer::Equals(inv.request, expected))
        << "got " << inv.request.ShortDebugString() << "\nwant " << expected.ShortDebugString();
  }
}

TEST(CliArgs, LoadNamesTheFileToRead) {
  const Invocation inv = parseArgs({"load", "/etc/fulcrum/fulcrum.conf"});
  ASSERT_EQ(inv.kind, Invocation::Kind::kRequest);
  EXPECT_EQ(inv.loadPath, "/etc/fulcrum/fulcrum.conf");
  EXPECT_TRUE(inv.request.has_load());
}

struct OptionsCase {
  std::vector<std::string> args;
  std::optional<std::string> socket;
  bool json;
  int64_t timeoutMs;
};

TEST(CliArgs, GlobalOptionsBeforeOrAfterTheCommand) {
  const std::vector<OptionsCase> cases = {
      {{"show", "servers"}, std::nullopt, false, 10000},
      {{"--socket", "/tmp/s.sock", "show", "servers"}, "/tmp/s.sock", false, 10000},
      {{"--socket=/tmp/s.sock", "show", "servers"}, "/tmp/s.sock", false, 10000},
      {{"--socket", "relative.sock", "compare"}, "relative.sock", false, 10000},
      {{"show", "servers", "--socket", "/tmp/s.sock", "--json"}, "/tmp/s.sock", true, 10000},
      {{"--json", "--timeout", "2.5", "show", "servers"}, std::nullopt, true, 2500},
      {{"--timeout=0.001", "compare"}, std::nullopt, false, 1},
      {{"--timeout", "86400", "compare"}, std::nullopt, false, 86400000},
      {{"--timeout", ".25", "compare"}, std::nullopt, false, 250},
      {{"set", "application", "shop", "port", "80", "--json"}, std::nullopt, true, 10000},
  };
  for (const OptionsCase& c : cases) {
    SCOPED_TRACE(argsText(c.args));
    const Invocation inv = parseArgs(c.args);
    ASSERT_EQ(inv.kind, Invocation::Kind::kRequest) << inv.text;
    EXPECT_EQ(inv.options.socketPath, c.socket);
    EXPECT_EQ(inv.options.json, c.json);
    EXPECT_EQ(inv.options.timeout.count(), c.timeoutMs);
  }
}

struct ErrorCase {
  std::vector<std::string> args;
  std::string line;  // all of stderr
};

TEST(CliArgs, EveryUsageErrorIsOneLineNamingTheWordAndExits2) {
  const std::string longWord(100, 'x');
  const std::vector<ErrorCase> cases = {
      {{}, "fulcrum: missing command (see fulcrum --help)"},
      {{"--json"}, "fulcrum: missing command (see fulcrum --help)"},
      {{"shwo"}, "fulcrum: unknown command 'shwo' (see fulcrum --help)"},
      {{longWord},
       "fulcrum: unknown command '" + longWord.substr(0, 80) + "...' (see fulcrum --help)"},
      {{"show", "shwo"}, "fulcrum: unknown command 'show shwo' (see fulcrum help show)"},
      {{"show"},
       "fulcrum: incomplete command 'show' (expected configuration, commits, servers, sessions, "
       "statistics, engines or affinity-store)"},
      {{"show", "--json"},
       "fulcrum: incomplete command 'show' (expected configuration, commits, servers, sessions, "
       "statistics, engines or affinity-store)"},
      {{"show", "affinity"}, "fulcrum: unknown command 'show affinity' (see fulcrum help show)"},
      {{"show", "affinity-store", "e1"},
       "fulcrum: unexpected argument 'e1' for 'show affinity-store' (see fulcrum help show "
       "affinity-store)"},
      {{"clear"}, "fulcrum: incomplete command 'clear' (expected sessions)"},
      {{"request"}, "fulcrum: incomplete command 'request' (expected server)"},
      {{"request", "server"},
       "fulcrum: incomplete command 'request server' (expected drain or undrain)"},
      {{"request", "server", "stop", "shop", "s1"},
       "fulcrum: unknown command 'request server stop' (see fulcrum help request server)"},
      {{"--jsn", "show", "servers"}, "fulcrum: unknown option '--jsn' (see fulcrum --help)"},
      {{"-j", "show", "servers"}, "fulcrum: unknown option '-j' (see fulcrum --help)"},
      {{"--json=yes", "compare"}, "fulcrum: '--json' takes no value"},
      {{"show", "servers", "--all"},
       "fulcrum: unknown option '--all' for 'show servers' (see fulcrum help show servers)"},
      {{"show", "commits", "--candidate"},
       "fulcrum: unknown option '--candidate' for 'show commits' (see fulcrum help show commits)"},
      {{"show", "servers", "extra"},
       "fulcrum: unexpected argument 'extra' for 'show servers' (see fulcrum help show servers)"},
      {{"show", "statistics", "shop"},
       "fulcrum: unexpected argument 'shop' for 'show statistics' (see fulcrum help show "
       "statistics)"},
      {{"show", "engines", "x"},
       "fulcrum: unexpected argument 'x' for 'show engines' (see fulcrum help show engines)"},
      {{"show", "commits", "5"},
       "fulcrum: unexpected argument '5' for 'show commits' (see fulcrum help show commits)"},
      {{"show", "configuration", "running"},
       "fulcrum: unexpected argument 'running' for 'show configuration' (see fulcrum help show "
       "configuration)"},
      {{"show", "configuration", "--candidate=yes"}, "fulcrum: '--candidate' takes no value"},
      {{"compare", "now"},
       "fulcrum: unexpected argument 'now' for 'compare' (see fulcrum help compare)"},
      {{"set"}, "fulcrum: 'set' needs STATEMENT... (see fulcrum help set)"},
      {{"set", "--"}, "fulcrum: 'set' needs STATEMENT... (see fulcrum help set)"},
      {{"set", "--json"}, "fulcrum: 'set' needs STATEMENT... (see fulcrum help set)"},
      {{"delete"}, "fulcrum: 'delete' needs STATEMENT... (see fulcrum help delete)"},
      // A line break would end the statement: refused, not sent.
      {{"set", "application", "a\nb"}, "fulcrum: word 'a\\x0ab' holds a control character"},
      {{"delete", "application", "a\rb"}, "fulcrum: word 'a\\x0db' holds a control character"},
      {{"set", "application", "caf\xe9"}, "fulcrum: word 'caf\\xe9' is not valid UTF-8"},
      {{"commit", "add s3"},
       "fulcrum: unexpected argument 'add s3' for 'commit' (see fulcrum help commit)"},
      {{"commit", "-m"}, "fulcrum: '-m' needs COMMENT"},
      {{"commit", "--comment"}, "fulcrum: '--comment' needs COMMENT"},
      {{"commit", "-m", "a", "--comment", "b"},
       "fulcrum: '--comment' given twice (one COMMENT per commit)"},
      {{"commit", "-m", "a", "-mb"}, "fulcrum: '-mb' given twice (one COMMENT per commit)"},
      {{"commit", "-m", "\xff"}, "fulcrum: COMMENT '\\xff' is not UTF-8"},
      {{"rollback"}, "fulcrum: 'rollback' needs N (see fulcrum help rollback)"},
      {{"rollback", "abc"},
       "fulcrum: 'abc' is not a commit number (a positive integer; see fulcrum show commits)"},
      {{"rollback", "0"},
       "fulcrum: '0' is not a commit number (a positive integer; see fulcrum show commits)"},
      {{"rollback", "-1"},
       "fulcrum: '-1' is not a commit number (a positive integer; see fulcrum show commits)"},
      {{"rollback", "+1"},
       "fulcrum: '+1' is not a commit number (a positive integer; see fulcrum show commits)"},
      {{"rollback", "1.5"},
       "fulcrum: '1.5' is not a commit number (a positive integer; see fulcrum show commits)"},
      {{"rollback", ""},
       "fulcrum: '' is not a commit number (a positive integer; see fulcrum show commits)"},
      {{"rollback", "9223372036854775808"},
       "fulcrum: '9223372036854775808' is not a commit number (a positive integer; see fulcrum "
       "show commits)"},
      {{"rollback", "1", "2"},
       "fulcrum: unexpected argument '2' for 'rollback' (see fulcrum help rollback)"},
      {{"rollback", "--last"},
       "fulcrum: unknown option '--last' for 'rollback' (see fulcrum help rollback)"},
      {{"load"}, "fulcrum: 'load' needs FILE (see fulcrum help load)"},
      {{"load", "a.conf", "b.conf"},
       "fulcrum: unexpected argument 'b.conf' for 'load' (see fulcrum help load)"},
      {{"load", ""}, "fulcrum: empty FILE for 'load'"},
      {{"show", "sessions", "shop", "api"},
       "fulcrum: unexpected argument 'api' for 'show sessions' (see fulcrum help show sessions)"},
      // Left out means every application; an empty word (an unset shell
      // variable) must not silently mean the same.
      {{"show", "sessions", ""},
       "fulcrum: empty APPLICATION for 'show sessions' (leave it out to mean every application)"},
      {{"clear", "sessions", ""},
       "fulcrum: empty APPLICATION for 'clear sessions' (leave it out to mean every application)"},
      {{"clear", "sessions", "sh\top"}, "fulcrum: word 'sh\\x09op' holds a control character"},
      {{"clear", "sessions", "shop", "api"},
       "fulcrum: unexpected argument 'api' for 'clear sessions' (see fulcrum help clear "
       "sessions)"},
      {{"request", "server", "drain"},
       "fulcrum: 'request server drain' needs APPLICATION SERVER (see fulcrum help request "
       "server drain)"},
      {{"request", "server", "drain", "shop"},
       "fulcrum: 'request server drain' needs APPLICATION SERVER (see fulcrum help request "
       "server drain)"},
      {{"request", "server", "undrain", "shop"},
       "fulcrum: 'request server undrain' needs APPLICATION SERVER (see fulcrum help request "
       "server undrain)"},
      {{"request", "server", "drain", "shop", "s1", "s2"},
       "fulcrum: unexpected argument 's2' for 'request server drain' (see fulcrum help request "
       "server drain)"},
      {{"request", "server", "undrain", "", "s1"},
       "fulcrum: empty APPLICATION for 'request server undrain'"},
      {{"request", "server", "drain", "shop", ""},
       "fulcrum: empty SERVER for 'request server drain'"},
      {{"request", "server", "drain", "shop", "s\n1"},
       "fulcrum: word 's\\x0a1' holds a control character"},
      {{"--socket"}, "fulcrum: '--socket' needs PATH"},
      {{"show", "servers", "--socket"}, "fulcrum: '--socket' needs PATH"},
      {{"--socket", "", "show", "servers"}, "fulcrum: '--socket' needs a PATH, not an empty word"},
      {{"--socket", "/a", "--socket=/b", "compare"}, "fulcrum: '--socket' given twice"},
      {{"--timeout", "0", "compare"},
       "fulcrum: '--timeout' needs a number of seconds above 0 and at most 86400, not '0'"},
      {{"--timeout", "0.0001", "compare"},
       "fulcrum: '--timeout' needs a number of seconds above 0 and at most 86400, not '0.0001'"},
      {{"--timeout", "-1", "compare"},
       "fulcrum: '--timeout' needs a number of seconds above 0 and at most 86400, not '-1'"},
      {{"--timeout", "abc", "compare"},
       "fulcrum: '--timeout' needs a number of seconds above 0 and at most 86400, not 'abc'"},
      {{"--timeout", "1e3", "compare"},
       "fulcrum: '--timeout' needs a number of seconds above 0 and at most 86400, not '1e3'"},
      {{"--timeout", ".", "compare"},
       "fulcrum: '--timeout' needs a number of seconds above 0 and at most 86400, not '.'"},
      {{"--timeout", "86401", "compare"},
       "fulcrum: '--timeout' needs a number of seconds above 0 and at most 86400, not '86401'"},
      {{"--timeout", "1", "compare", "--timeout", "2"}, "fulcrum: '--timeout' given twice"},
      {{"--timeout"}, "fulcrum: '--timeout' needs SECONDS"},
      {{"help", "shwo"}, "fulcrum: unknown command 'shwo' (see fulcrum --help)"},
      {{"help", "show", "shwo"}, "fulcrum: unknown command 'show shwo' (see fulcrum help show)"},
      {{"--help", "shwo"}, "fulcrum: unknown command 'shwo' (see fulcrum --help)"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(argsText(c.args));
    FakeTransport transport;
    const RunResult r = runCli(c.args, transport);
    EXPECT_EQ(r.status, kExitUsage);
    EXPECT_EQ(r.err, c.line + "\n");
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(transport.calls, 0);
  }
}

// ------------------------------------------------------------- quoting

TEST(CliQuoting, WordsThatNeedItAreQuotedInTheConfigurationLanguage) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"shop", "shop"},
      {"198.18.1.11", "198.18.1.11"},
      {"/health", "/health"},
      {"-x", "-x"},
      {"a#b", "\"a#b\""},
      {"#comment", "\"#comment\""},
      {"it works", "\"it works\""},
      {"tab\there", "\"tab\there\""},
      {"say \"hi\"", "\"say \\\"hi\\\"\""},
      {"back\\slash", "\"back\\\\slash\""},
      {"\"", "\"\\\"\""},
      {"", "\"\""},
      {"café", "café"},
  };
  for (const auto& [word, quoted] : cases) {
    EXPECT_EQ(quoteWord(word), quoted) << word;
  }
  EXPECT_EQ(buildStatement("set", {"application", "shop", "monitor", "expect-body", "a \"b\" #c"}),
            "set application shop monitor expect-body \"a \\\"b\\\" #c\"");
  EXPECT_EQ(buildStatement("delete", {"application", "shop"}), "delete application shop");
}

// The control plane reads the statement with the configuration parser; the
// word must come back exactly as the operator typed it.
TEST(CliQuoting, TheConfigurationParserReadsBackTheWord) {
  const std::vector<std::string> words = {
      "plain",       "it works", "a#b",    "#c",           "say \"hi\"",
      "back\\slash", "\\\"",     "tab\tx", "mixed \\\" #",
  };
  for (const std::string& word : words) {
    SCOPED_TRACE(word);
    const Invocation inv =
        parseArgs({"set", "application", "shop", "monitor", "type", "http", "expect-body", word});
    ASSERT_EQ(inv.kind, Invocation::Kind::kRequest) << inv.text;
    const ConfigResult result = applyConfig(inv.request.edit().statements());
    ASSERT_TRUE(result.ok()) << result.error->toString();
    ASSERT_EQ(result.config.applications.size(), 1u);
    EXPECT_EQ(result.config.applications[0].monitor.expectBody, word);
  }
  const std::string path = "/var/log/fulcrum/a b#\"c\"\\d.log";
  const Invocation inv = parseArgs({"set", "system", "syslog-file", path});
  const ConfigResult result = applyConfig(inv.request.edit().statements());
  ASSERT_TRUE(result.ok()) << result.error->toString();
  EXPECT_EQ(result.config.system.syslogFile, path);
}

// --------------------------------------------------------------- rendering

TEST(CliRender, Servers) {
  pb::MgmtReply reply = okReply();
  auto add = [&](const char* app, const char* server, const char* address, const char* state,
                 bool draining, int64_t since, const char* check, uint64_t sessions) {
    pb::ServerRow* s = reply.add_servers();
    s->set_application(app);
    s->set_server(server);
    s->set_address(address);
    s->set_state(state);
    s->set_draining(draining);
    s->set_since_unix_ms(since);
    s->set_last_check(check);
    s->set_active_sessions(sessions);
  };
  add("shop", "s1", "198.18.1.11:8080", "up", false, kNowMs - 192'000, "http 200, 3 ms", 12);
  add("shop", "s2", "198.18.1.12:8080", "down", true, kNowMs - 11'130'000, "connect: refused", 0);
  add("api", "a1", "198.18.2.10:9000", "unmonitored", false, 0, "", 1234);
  // clang-format off
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kShowServers, kNow),
            "APPLICATION  SERVER  ADDRESS           STATE          SINCE      LAST-CHECK        SESSIONS\n"
            "shop         s1      198.18.1.11:8080  up             3m12s ago  http 200, 3 ms          12\n"
            "shop         s2      198.18.1.12:8080  down,draining  3h5m ago   connect: refused         0\n"
            "api          a1      198.18.2.10:9000  unmonitored    -          -                     1234\n");
  // clang-format on
}

TEST(CliRender, ServersWithNoRowsIsTheHeader) {
  EXPECT_EQ(renderText(okReply(), pb::MgmtRequest::kShowServers, kNow),
            "APPLICATION  SERVER  ADDRESS  STATE  SINCE  LAST-CHECK  SESSIONS\n");
}

TEST(CliRender, Sessions) {
  pb::MgmtReply reply = okReply();
  auto add = [&](const char* engine, const char* client, const char* server,
                 const char* serverAddress, const char* state, uint32_t age, uint32_t expires) {
    pb::SessionRow* row = reply.add_sessions();
    row->set_engine_id(engine);
    pb::Session* s = row->mutable_session();
    s->set_client(client);
    s->set_facade("198.18.0.10:80");
    s->set_application("shop");
    s->set_server(server);
    s->set_server_address(serverAddress);
    s->set_state(state);
    s->set_age_seconds(age);
    s->set_expires_in_seconds(expires);
  };
  add("e1", "198.18.0.100:40000", "s1", "198.18.1.11:8080", "established", 75, 825);
  // No server name: the address stands in for it.
  add("e2", "198.18.0.101:40001", "", "198.18.1.12:8080", "syn-sent", 0, 30);
  reply.set_sessions_truncated(true);
  // clang-format off
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kShowSessions, kNow),
            "CLIENT              FACADE          APPLICATION  SERVER            STATE          AGE  EXPIRES  ENGINE\n"
            "198.18.0.100:40000  198.18.0.10:80  shop         s1                established  1m15s   13m45s  e1\n"
            "198.18.0.101:40001  198.18.0.10:80  shop         198.18.1.12:8080  syn-sent        0s      30s  e2\n"
            "(truncated)\n");
  // clang-format on
  reply.set_sessions_truncated(false);
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kShowSessions, kNow).find("(truncated)"),
            std::string::npos);
}

TEST(CliRender, Engines) {
  pb::MgmtReply reply = okReply();
  pb::EngineRow* e = reply.add_engines();
  e->set_engine_id("e1");
  e->set_software_version("0.1.0");
  e->set_peer("198.18.0.1:50123");
  e->set_connected_since_unix_ms(kNowMs - 3'723'000);
  e->set_loops(4);
  e->set_config_generation(7);
  e->set_sessions(120);
  e->set_session_capacity(1048576);
  e->set_last_status_unix_ms(kNowMs - 1'000);
  e = reply.add_engines();
  e->set_engine_id("engine-2");
  e->set_software_version("0.1.0");
  e->set_connected_since_unix_ms(kNowMs - 59'000);
  e->set_loops(16);
  e->set_config_generation(6);
  // clang-format off
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kShowEngines, kNow),
            "ENGINE    VERSION  PEER              CONNECTED  LOOPS  GENERATION     SESSIONS  STORE  LAST-STATUS\n"
            "e1        0.1.0    198.18.0.1:50123  1h2m ago       4           7  120/1048576  -      1s ago\n"
            "engine-2  0.1.0    -                 59s ago       16           6            0  -      -\n");
  // clang-format on
}

// The STORE column: the kind and state of each engine's affinity store.
TEST(CliRender, EnginesStoreColumn) {
  pb::MgmtReply reply = okReply();
  auto add = [&](const char* id, const char* kind, const char* state) {
    pb::EngineRow* e = reply.add_engines();
    e->set_engine_id(id);
    e->set_software_version("0.1.0");
    e->set_loops(2);
    e->set_config_generation(3);
    pb::AffinityStoreStatus* s = e->mutable_affinity_store();
    s->set_kind(kind);
    s->set_address(std::string(kind) == "local" ? "local" : "redis://198.18.5.2:6379/0");
    s->set_state(state);
    s->set_last_error("connect: Connection refused");  // not in this table
  };
  add("lb1", "redis", "up");
  add("lb2", "redis", "down");
  add("lb3", "redis", "connecting");
  add("lb4", "local", "local");
  reply.add_engines()->set_engine_id("old");  // an engine that reports no store
  // clang-format off
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kShowEngines, kNow),
            "ENGINE  VERSION  PEER  CONNECTED  LOOPS  GENERATION  SESSIONS  STORE             LAST-STATUS\n"
            "lb1     0.1.0    -     -              2           3         0  redis up          -\n"
            "lb2     0.1.0    -     -              2           3         0  redis down        -\n"
            "lb3     0.1.0    -     -              2           3         0  redis connecting  -\n"
            "lb4     0.1.0    -     -              2           3         0  local             -\n"
            "old     -        -     -              0           0         0  -                 -\n");
  // clang-format on
}

pb::AffinityStoreStatus storeStatus(const char* state, uint64_t base) {
  pb::AffinityStoreStatus s;
  s.set_kind("redis");
  s.set_address("redis://198.18.5.2:6379/0");
  s.set_state(state);
  s.set_requests(base * 100);
  s.set_answered(base * 90);
  s.set_failed(base * 2);
  s.set_timeouts(base * 3);
  s.set_down_decisions(base * 5);
  s.set_cache_hits(base * 400);
  s.set_cache_misses(base * 100);
  s.set_reconnects(base);
  s.set_latency_avg_us(250);
  s.set_latency_max_us(base * 4000);
  s.set_session_sync_writes(base * 60);
  s.set_session_sync_recoveries(base * 7);
  return s;
}

TEST(CliRender, AffinityStore) {
  pb::MgmtReply reply = okReply();
  pb::EngineRow* e = reply.add_engines();
  e->set_engine_id("lb1");
  *e->mutable_affinity_store() = storeStatus("up", 1);
  e = reply.add_engines();
  e->set_engine_id("engine-two");
  *e->mutable_affinity_store() = storeStatus("down", 1000);
  e->mutable_affinity_store()->set_last_error("read: Connection reset by peer\r\n");
  e = reply.add_engines();
  e->set_engine_id("lb3");
  pb::AffinityStoreStatus* local = e->mutable_affinity_store();
  local->set_kind("local");
  local->set_address("local");
  local->set_state("local");
  reply.add_engines()->set_engine_id("old");  // reports no store
  // clang-format off
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kShowAffinityStore, kNow),
            "ENGINE      STORE                      STATE  LAST-ERROR\n"
            "lb1         redis://198.18.5.2:6379/0  up     -\n"
            "engine-two  redis://198.18.5.2:6379/0  down   read: Connection reset by peer\\x0d\\x0a\n"
            "lb3         local                      local  -\n"
            "old         -                          -      -\n"
            "\n"
            "COUNTER                   lb1  engine-two  lb3  old\n"
            "requests                  100      100000    0    -\n"
            "answered                   90       90000    0    -\n"
            "failed                      2        2000    0    -\n"
            "timeouts                    3        3000    0    -\n"
            "down_decisions              5        5000    0    -\n"
            "cache_hits                400      400000    0    -\n"
            "cache_misses              100      100000    0    -\n"
            "reconnects                  1        1000    0    -\n"
            "latency_avg_us            250         250    0    -\n"
            "latency_max_us           4000     4000000    0    -\n"
            "session_sync_writes        60       60000    0    -\n"
            "session_sync_recoveries     7        7000    0    -\n");
  // clang-format on
}

TEST(CliRender, AffinityStoreWithoutEnginesIsTheHeader) {
  EXPECT_EQ(renderText(okReply(), pb::MgmtRequest::kShowAffinityStore, kNow),
            "ENGINE  STORE  STATE  LAST-ERROR\n");
}

// Engine ids title the counter columns: they stay on one line too.
TEST(CliRender, AffinityStoreEngineIdsAreEscaped) {
  pb::MgmtReply reply = okReply();
  pb::EngineRow* e = reply.add_engines();
  e->set_engine_id("a\nb");
  *e->mutable_affinity_store() = storeStatus("up", 1);
  e = reply.add_engines();  // an empty id, as a "-"
  *e->mutable_affinity_store() = storeStatus("up", 1);
  const std::string text = renderText(reply, pb::MgmtRequest::kShowAffinityStore, kNow);
  EXPECT_NE(text.find("\nCOUNTER                  a\\x0ab     -\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nrequests                    100   100\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\na\\x0ab  redis://"), std::string::npos) << text;
}

// --json carries the whole AffinityStoreStatus of every engine.
TEST(CliRender, EnginesJsonCarriesTheAffinityStore) {
  pb::MgmtReply reply = okReply();
  pb::EngineRow* e = reply.add_engines();
  e->set_engine_id("lb1");
  *e->mutable_affinity_store() = storeStatus("down", 2);
  e->mutable_affinity_store()->set_last_error("connect: Connection refused");
  std::string error;
  const auto json = renderJson(reply, &error);
  ASSERT_TRUE(json) << error;
  for (const char* field :
       {"\"affinity_store\":{", "\"kind\":\"redis\"", "\"address\":\"redis://198.18.5.2:6379/0\"",
        "\"state\":\"down\"", "\"last_error\":\"connect: Connection refused\"",
        "\"requests\":\"200\"", "\"answered\":\"180\"", "\"failed\":\"4\"", "\"timeouts\":\"6\"",
        "\"down_decisions\":\"10\"", "\"cache_hits\":\"800\"", "\"cache_misses\":\"200\"",
        "\"reconnects\":\"2\"", "\"latency_avg_us\":\"250\"", "\"latency_max_us\":\"8000\"",
        "\"session_sync_writes\":\"120\"", "\"session_sync_recoveries\":\"14\""}) {
    EXPECT_NE(json->find(field), std::string::npos) << field << " in " << *json;
  }
  pb::MgmtReply back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &back).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(back, reply));
}

TEST(CliRender, Commits) {
  pb::MgmtReply reply = okReply();
  auto add = [&](int64_t number, int64_t time, const char* user, const char* comment) {
    pb::CommitInfo* c = reply.add_commits();
    c->set_number(number);
    c->set_time_unix_ms(time);
    c->set_user(user);
    c->set_comment(comment);
  };
  add(100, kNowMs, "bob", "line1\nline2");  // escaped, so that the row stays one line
  add(12, kNowMs + 999, "alice", "add server s3 to shop  ");  // no trailing blanks
  add(9, 1795305482123, "root", "");
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kShowCommits, kNow),
            "COMMIT  TIME                 USER   COMMENT\n"
            "   100  2026-11-22 00:10:47  bob    line1\\x0aline2\n"
            "    12  2026-11-22 00:10:47  alice  add server s3 to shop\n"
            "     9  2026-11-21 23:58:02  root   -\n");
}

TEST(CliRender, Statistics) {
  pb::MgmtReply reply = okReply();
  pb::Statistics* stats = reply.mutable_statistics();
  auto add = [](google::protobuf::RepeatedPtrField<pb::Counter>* counters, const char* name,
                uint64_t value) {
    pb::Counter* c = counters->Add();
    c->set_name(name);
    c->set_value(value);
  };
  add(stats->mutable_totals(), "packets_in", 123456);
  add(stats->mutable_totals(), "sessions_created", 42);
  pb::ApplicationCounters* shop = stats->add_applications();
  shop->set_application("shop");
  add(shop->mutable_counters(), "sessions_created", 40);
  add(shop->mutable_counters(), "http_requests", 7);
  stats->add_applications()->set_application("api");
  add(stats->mutable_control(), "engines", 2);
  add(stats->mutable_control(), "syslog_dropped", 0);
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kShowStatistics, kNow),
            "totals\n"
            "NAME               VALUE\n"
            "packets_in        123456\n"
            "sessions_created      42\n"
            "\n"
            "application shop\n"
            "NAME               VALUE\n"
            "sessions_created      40\n"
            "http_requests          7\n"
            "\n"
            "application api\n"
            "NAME               VALUE\n"
            "\n"
            "control plane\n"
            "NAME               VALUE\n"
            "engines                2\n"
            "syslog_dropped         0\n");
}

TEST(CliRender, TextReplies) {
  pb::MgmtReply reply = okReply();
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kCompare, kNow), "no changes\n");
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kShowConfig, kNow), "");
  for (auto command : {pb::MgmtRequest::kEdit, pb::MgmtRequest::kLoad, pb::MgmtRequest::kRollback,
                       pb::MgmtRequest::kClearSessions, pb::MgmtRequest::kDrain}) {
    EXPECT_EQ(renderText(reply, command, kNow), "") << command;
  }
  reply.set_commit_number(7);
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kCommit, kNow), "commit 7\n");

  reply.set_text("- set application shop port 80\n+ set application shop port 8080\n");
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kCompare, kNow), reply.text());
  reply.set_text("set application shop port 80");  // a last line without '\n' gets one
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kShowConfig, kNow),
            "set application shop port 80\n");
  reply.set_text("cleared 12 sessions");
  for (auto command : {pb::MgmtRequest::kEdit, pb::MgmtRequest::kLoad, pb::MgmtRequest::kRollback,
                       pb::MgmtRequest::kClearSessions, pb::MgmtRequest::kDrain}) {
    EXPECT_EQ(renderText(reply, command, kNow), "cleared 12 sessions\n") << command;
  }
}

TEST(CliRender, CellsStayOnOneLine) {
  pb::MgmtReply reply = okReply();
  pb::ServerRow* s = reply.add_servers();
  s->set_application("shop");
  s->set_server("s\t1");
  s->set_address("198.18.1.11:8080");
  s->set_state("up");
  s->set_last_check("bad\r\nthing");
  EXPECT_EQ(renderText(reply, pb::MgmtRequest::kShowServers, kNow),
            "APPLICATION  SERVER  ADDRESS           STATE  SINCE  LAST-CHECK        SESSIONS\n"
            "shop         s\\x091  198.18.1.11:8080  up     -      bad\\x0d\\x0athing         0\n");
}

TEST(CliRender, Durations) {
  const std::vector<std::pair<uint64_t, std::string>> cases = {
      {0, "0s"},       {59, "59s"},           {60, "1m"},
      {192, "3m12s"},  {3599, "59m59s"},      {3600, "1h"},
      {3661, "1h1m"},  {86399, "23h59m"},     {86400, "1d"},
      {90061, "1d1h"}, {400 * 86400, "400d"},
  };
  for (const auto& [seconds, text] : cases) EXPECT_EQ(formatDuration(seconds), text) << seconds;
  EXPECT_EQ(formatAgo(0, kNow), "-");
  EXPECT_EQ(formatAgo(kNowMs - 1'500, kNow), "1s ago");
  EXPECT_EQ(formatAgo(kNowMs + 60'000, kNow), "0s ago");
  EXPECT_EQ(formatUtc(0), "-");
  EXPECT_EQ(formatUtc(kNowMs), "2026-11-22 00:10:47");
  EXPECT_EQ(formatUtc(kNowMs + 999), "2026-11-22 00:10:47");
  EXPECT_EQ(formatUtc(-1), "1969-12-31 23:59:59");
}

TEST(CliRender, ReplyErrors) {
  auto error = [](uint32_t line, const char* word, const char* message) {
    pb::MgmtError e;
    e.set_line(line);
    e.set_word(word);
    e.set_message(message);
    return formatReplyError(e);
  };
  EXPECT_EQ(error(3, "algorithm", "unknown algorithm 'fastest'"),
            "line 3: 'algorithm': unknown algorithm 'fastest'");
  EXPECT_EQ(error(0, "shop", "no such application"), "'shop': no such application");
  EXPECT_EQ(error(4, "", "unterminated quote"), "line 4: unterminated quote");
  EXPECT_EQ(error(0, "", "no commit 9"), "no commit 9");
  EXPECT_EQ(error(0, "a\nb", "bad\nname"), "'a\\x0ab': bad\\x0aname");
  EXPECT_EQ(error(0, "", ""), "the control plane refused the request without saying why");
}

TEST(CliRender, JsonIsOneObjectWithEveryField) {
  pb::MgmtReply reply = okReply();
  reply.set_commit_number(7);
  pb::ServerRow* s = reply.add_servers();
  s->set_application("shop");
  s->set_server("s1");
  std::string error;
  const auto json = renderJson(reply, &error);
  ASSERT_TRUE(json) << error;
  ASSERT_FALSE(json->empty());
  EXPECT_EQ(json->back(), '\n');
  EXPECT_EQ(json->find('\n'), json->size() - 1) << "one line";
  EXPECT_EQ(json->front(), '{');
  pb::MgmtReply back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &back).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(back, reply));
  // The .proto's names, and fields at their default values too.
  for (const char* field :
       {"\"ok\":true", "\"commit_number\":\"7\"", "\"sessions_truncated\":false", "\"text\":\"\"",
        "\"cleared\":\"0\"", "\"application\":\"shop\"", "\"active_sessions\":\"0\"",
        "\"draining\":false", "\"commits\":[]"}) {
    EXPECT_NE(json->find(field), std::string::npos) << field << " in " << *json;
  }
}

// ---------------------------------------------------------------- help

struct CommandCase {
  std::vector<std::string> words;
  std::string usage;
};

const std::vector<CommandCase>& everyCommand() {
  static const std::vector<CommandCase> kCommands = {
      {{"set"}, "set STATEMENT..."},
      {{"delete"}, "delete STATEMENT..."},
      {{"show", "configuration"}, "show configuration [--candidate]"},
      {{"compare"}, "compare"},
      {{"commit"}, "commit [-m COMMENT | --comment COMMENT]"},
      {{"rollback"}, "rollback N"},
      {{"show", "commits"}, "show commits"},
      {{"load"}, "load FILE"},
      {{"show", "servers"}, "show servers"},
      {{"show", "sessions"}, "show sessions [APPLICATION]"},
      {{"show", "statistics"}, "show statistics"},
      {{"show", "engines"}, "show engines"},
      {{"show", "affinity-store"}, "show affinity-store"},
      {{"clear", "sessions"}, "clear sessions [APPLICATION]"},
      {{"request", "server", "drain"}, "request server drain APPLICATION SERVER"},
      {{"request", "server", "undrain"}, "request server undrain APPLICATION SERVER"},
  };
  return kCommands;
}

TEST(CliHelp, TheCommandListIsComplete) {
  std::vector<std::string> usages;
  for (const CommandCase& c : everyCommand()) usages.push_back(c.usage);
  EXPECT_EQ(commandUsages(), usages);
}

TEST(CliHelp, OverviewListsEveryCommandAndNeedsNoDaemon) {
  FakeTransport transport;
  const RunResult r = runCli({"--help"}, transport);
  EXPECT_EQ(r.status, kExitOk);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(transport.calls, 0);
  EXPECT_TRUE(r.out.starts_with(
      "usage: fulcrum [--socket PATH] [--json] [--timeout SECONDS] COMMAND ...\n"));
  for (const CommandCase& c : everyCommand()) {
    EXPECT_NE(r.out.find("\n  " + c.usage + "  "), std::string::npos) << c.usage;
  }
  for (const char* option : {"--socket PATH", "--json", "--timeout SECONDS", "FULCRUM_SOCKET",
                             "/run/fulcrum/mgmt.sock", "Exit status"}) {
    EXPECT_NE(r.out.find(option), std::string::npos) << option;
  }
  // No line wider than 100 columns.
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 100u) << line;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"help"}, {"-h"}, {"--json", "--help"}, {"--socket", "/x", "help"}}) {
    FakeTransport other;
    const RunResult same = runCli(args, other);
    EXPECT_EQ(same.status, kExitOk) << argsText(args);
    EXPECT_EQ(same.out, r.out) << argsText(args);
    EXPECT_EQ(other.calls, 0);
  }
}

TEST(CliHelp, EveryCommandHasHelpWithUsageAndExample) {
  for (const CommandCase& c : everyCommand()) {
    SCOPED_TRACE(c.usage);
    std::vector<std::string> helpWords = {"help"};
    helpWords.insert(helpWords.end(), c.words.begin(), c.words.end());
    FakeTransport transport;
    const RunResult r = runCli(helpWords, transport);
    EXPECT_EQ(r.status, kExitOk);
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(transport.calls, 0);
    EXPECT_TRUE(r.out.starts_with("usage: fulcrum " + c.usage + "\n\n")) << r.out;
    std::string name;
    for (const auto& w : c.words) name += (name.empty() ? "" : " ") + w;
    EXPECT_NE(r.out.find("\nexample:\n  fulcrum " + name), std::string::npos) << r.out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 100u) << line;

    // The same help from `COMMAND --help`, `COMMAND -h`, `--help COMMAND`,
    // and with operands (even bad ones) before --help.
    std::vector<std::vector<std::string>> variants;
    variants.push_back(c.words);
    variants.back().push_back("--help");
    variants.push_back(c.words);
    variants.back().push_back("-h");
    variants.push_back({"--help"});
    variants.back().insert(variants.back().end(), c.words.begin(), c.words.end());
    variants.push_back(c.words);
    variants.back().insert(variants.back().end(), {"bad", "--bad", "--help"});
    for (const auto& args : variants) {
      FakeTransport other;
      const RunResult same = runCli(args, other);
      EXPECT_EQ(same.status, kExitOk) << argsText(args);
      EXPECT_EQ(same.out, r.out) << argsText(args);
      EXPECT_EQ(same.err, "") << argsText(args);
      EXPECT_EQ(other.calls, 0);
    }
  }
}

TEST(CliHelp, VersionBeforeTheCommandOnly) {
  FakeTransport transport;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--version"}, {"--json", "--version"}, {"--version", "show", "servers"}}) {
    const RunResult r = runCli(args, transport);
    EXPECT_EQ(r.status, kExitOk) << argsText(args);
    EXPECT_EQ(r.out, std::string("fulcrum ") + fulcrum::kVersion + "\n") << argsText(args);
    EXPECT_EQ(r.err, "") << argsText(args);
  }
  // After the command it is an unknown option, or a word of a statement.
  const RunResult late = runCli({"show", "servers", "--version"}, transport);
  EXPECT_EQ(late.status, kExitUsage);
  EXPECT_EQ(late.err,
            "fulcrum: unknown option '--version' for 'show servers' (see fulcrum help show "
            "servers)\n");
  EXPECT_EQ(transport.calls, 0);
  Invocation set = parseArgs({"set", "system", "--version", "1"});
  ASSERT_EQ(set.kind, Invocation::Kind::kRequest);
  EXPECT_EQ(set.request.edit().statements(), "set system --version 1");
}

TEST(CliHelp, AnIncompleteCommandListsWhatFollows) {
  FakeTransport transport;
  const RunResult r = runCli({"help", "show"}, transport);
  EXPECT_EQ(r.status, kExitOk);
  for (const CommandCase& c : everyCommand()) {
    const bool isShow = c.words.front() == "show";
    EXPECT_EQ(r.out.find("  " + c.usage + "  ") != std::string::npos, isShow) << c.usage;
  }
  EXPECT_EQ(runCli({"show", "--help"}, transport).out, r.out);
  const RunResult request = runCli({"request", "server", "-h"}, transport);
  EXPECT_EQ(request.status, kExitOk);
  EXPECT_NE(request.out.find("request server drain APPLICATION SERVER"), std::string::npos);
  EXPECT_NE(request.out.find("request server undrain APPLICATION SERVER"), std::string::npos);
  EXPECT_EQ(transport.calls, 0);
}

// ------------------------------------------------------------------ run

TEST(CliRun, SendsVersionUserAndCommandToTheSocket) {
  FakeTransport transport;
  pb::MgmtReply reply = okReply();
  reply.set_commit_number(5);
  transport.replyWith(reply);
  const RunResult r = runCli({"commit", "-m", "add s3"}, transport);
  EXPECT_EQ(r.status, kExitOk);
  EXPECT_EQ(r.out, "commit 5\n");
  EXPECT_EQ(r.err, "");
  ASSERT_EQ(transport.calls, 1);
  EXPECT_EQ(transport.path, "/run/fulcrum/mgmt.sock");
  EXPECT_EQ(transport.sentTimeout, 10s);
  EXPECT_EQ(transport.sent.protocol_version(), channel::kProtocolVersion);
  EXPECT_EQ(transport.sent.user(), "alice");
  EXPECT_EQ(transport.sent.commit().comment(), "add s3");
}

TEST(CliRun, SocketFromOptionElseEnvironmentElseDefault) {
  GlobalOptions options;
  EXPECT_EQ(socketPath(options, std::nullopt), "/run/fulcrum/mgmt.sock");
  EXPECT_EQ(socketPath(options, std::string()), "/run/fulcrum/mgmt.sock");
  EXPECT_EQ(socketPath(options, std::string("/env.sock")), "/env.sock");
  options.socketPath = "/option.sock";
  EXPECT_EQ(socketPath(options, std::string("/env.sock")), "/option.sock");

  FakeTransport transport;
  transport.replyWith(okReply());
  Environment env = testEnvironment();
  env.socketVariable = "/env.sock";
  runCli({"--timeout", "0.5", "compare"}, transport, env);
  EXPECT_EQ(transport.path, "/env.sock");
  EXPECT_EQ(transport.sentTimeout, 500ms);
  runCli({"compare", "--socket", "/option.sock"}, transport, env);
  EXPECT_EQ(transport.path, "/option.sock");
}

TEST(CliRun, UserIsSudoUserElseLoginNameElseUid) {
  EXPECT_EQ(chooseUser("bob", "root", 0), "bob");
  EXPECT_EQ(chooseUser(std::nullopt, "alice", 1000), "alice");
  EXPECT_EQ(chooseUser("", "alice", 1000), "alice");
  EXPECT_EQ(chooseUser(std::nullopt, std::nullopt, 1000), "1000");
  EXPECT_EQ(chooseUser("b\xffob", std::nullopt, 1000), "1000");
  EXPECT_FALSE(invokingUser().empty());
}

TEST(CliRun, RefusalPrintsTheErrorAndExits1) {
  FakeTransport transport;
  pb::MgmtReply reply;
  reply.set_ok(false);
  reply.mutable_error()->set_line(1);
  reply.mutable_error()->set_word("fastest");
  reply.mutable_error()->set_message("unknown algorithm");
  transport.replyWith(reply);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"set", "application", "shop", "algorithm", "fastest"},
           {"--json", "set", "application", "shop", "algorithm", "fastest"}}) {
    const RunResult r = runCli(args, transport);
    EXPECT_EQ(r.status, kExitRefused);
    EXPECT_EQ(r.err, "fulcrum: line 1: 'fastest': unknown algorithm\n");
    EXPECT_EQ(r.out, "");
  }
}

TEST(CliRun, TransportFailuresAreOneLineAndExit3) {
  struct Case {
    Exchange::Status status;
    std::string reason;
    std::string line;
  };
  const std::vector<Case> cases = {
      {Exchange::Status::kUnreachable, "No such file or directory",
       "fulcrum: cannot reach the control plane at /s.sock: No such file or directory" +
           kUnreachableHint},
      {Exchange::Status::kUnreachable, "Connection refused",
       "fulcrum: cannot reach the control plane at /s.sock: Connection refused" + kUnreachableHint},
      {Exchange::Status::kUnreachable, "timed out",
       "fulcrum: cannot reach the control plane at /s.sock: timed out" + kUnreachableHint},
      {Exchange::Status::kUnreachable, std::strerror(EACCES),
       "fulcrum: cannot reach the control plane at /s.sock: " + std::string(std::strerror(EACCES)) +
           "; the socket is for its owner: run fulcrum as that user (e.g. with sudo)"},
      {Exchange::Status::kSendFailed, "write: Broken pipe",
       "fulcrum: cannot send the request to the control plane at /s.sock: write: Broken pipe"},
      {Exchange::Status::kTimedOut, "timed out",
       "fulcrum: no reply from the control plane at /s.sock within 2.5s"},
      {Exchange::Status::kBroken, "connection closed by the peer",
       "fulcrum: incomplete reply from the control plane at /s.sock: connection closed by the "
       "peer"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.line);
    FakeTransport transport;
    transport.result.status = c.status;
    transport.result.reason = c.reason;
    const RunResult r =
        runCli({"--socket", "/s.sock", "--timeout", "2.5", "--json", "show", "servers"}, transport);
    EXPECT_EQ(r.status, kExitNoControl);
    EXPECT_EQ(r.err, c.line + "\n");
    EXPECT_EQ(r.out, "");
  }
}

TEST(CliRun, AReplyThatDoesNotParseExits3) {
  FakeTransport transport;
  transport.result.payload = "\xff\xff\xff";
  const RunResult r = runCli({"--socket", "/s.sock", "show", "servers"}, transport);
  EXPECT_EQ(r.status, kExitNoControl);
  EXPECT_EQ(r.err,
            "fulcrum: bad reply from the control plane at /s.sock: 3 bytes that do not parse as a "
            "MgmtReply\n");
  EXPECT_EQ(r.out, "");
}

TEST(CliRun, JsonForEveryCommand) {
  for (const CommandCase& c : everyCommand()) {
    SCOPED_TRACE(c.usage);
    std::vector<std::string> args = {"--json"};
    args.insert(args.end(), c.words.begin(), c.words.end());
    if (c.words.front() == "set" || c.words.front() == "delete") {
      args.insert(args.end(), {"application", "shop"});
    } else if (c.words.front() == "rollback") {
      args.push_back("3");
    } else if (c.words.front() == "load") {
      args.push_back("/dev/null");
    } else if (c.words.front() == "request") {
      args.insert(args.end(), {"shop", "s1"});
    }
    FakeTransport transport;
    pb::MgmtReply reply = okReply();
    reply.set_text("done");
    transport.replyWith(reply);
    const RunResult r = runCli(args, transport);
    EXPECT_EQ(r.status, kExitOk) << r.err;
    EXPECT_EQ(r.err, "");
    pb::MgmtReply back;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &back).ok()) << r.out;
    EXPECT_TRUE(MessageDifferencer::Equals(back, reply)) << r.out;
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
  }
}

TEST(CliRun, TextForTablesUsesNow) {
  FakeTransport transport;
  pb::MgmtReply reply = okReply();
  pb::ServerRow* s = reply.add_servers();
  s->set_application("shop");
  s->set_server("s1");
  s->set_state("up");
  s->set_since_unix_ms(kNowMs - 5'000);
  transport.replyWith(reply);
  const RunResult r = runCli({"show", "servers"}, transport);
  EXPECT_EQ(r.status, kExitOk);
  EXPECT_EQ(r.out, renderText(reply, pb::MgmtRequest::kShowServers, kNow));
  EXPECT_NE(r.out.find("5s ago"), std::string::npos);
}

TEST(CliRun, LoadSendsTheFileText) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string text =
      "set service-set web inside-interface a outside-interface b\n"
      "set application shop service-set web facade 198.18.0.10 port 80 # café\n";
  writeFile(dir.file("shop.conf"), text);
  FakeTransport transport;
  transport.replyWith(okReply());
  const RunResult r = runCli({"load", dir.file("shop.conf")}, transport);
  EXPECT_EQ(r.status, kExitOk) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_EQ(transport.calls, 1);
  EXPECT_EQ(transport.sent.load().text(), text);
  EXPECT_EQ(transport.sent.user(), "alice");
}

TEST(CliRun, AnUnreadableLoadFileIsOneLineNamingThePathAndNothingIsSent) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  writeFile(dir.file("latin1.conf"), "set \xe9t\xe9\n");
  ::mkdir(dir.file("subdir").c_str(), 0700);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir.file("missing.conf"),
       "fulcrum: cannot read '" + dir.file("missing.conf") + "': No such file or directory"},
      {dir.file("subdir"), "fulcrum: cannot read '" + dir.file("subdir") + "': Is a directory"},
      {dir.file("latin1.conf"),
       "fulcrum: '" + dir.file("latin1.conf") + "' is not UTF-8 text (bad byte at offset 4)"},
  };
  for (const auto& [path, line] : cases) {
    FakeTransport transport;
    const RunResult r = runCli({"load", path}, transport);
    EXPECT_EQ(r.status, kExitUsage);
    EXPECT_EQ(r.err, line + "\n");
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(transport.calls, 0);
  }
}

// ------------------------------------------------------------- cli_text

TEST(CliText, Utf8AndDisplay) {
  EXPECT_EQ(invalidUtf8Offset("plain"), std::nullopt);
  EXPECT_EQ(invalidUtf8Offset("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::nullopt);
  EXPECT_EQ(invalidUtf8Offset("ab\xff"), 2u);
  EXPECT_EQ(invalidUtf8Offset("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(invalidUtf8Offset("\xe0\x80\xaf"), 0u);      // overlong
  EXPECT_EQ(invalidUtf8Offset("x\xed\xa0\x80"), 1u);     // surrogate
  EXPECT_EQ(invalidUtf8Offset("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(invalidUtf8Offset("\xe2\x82"), 0u);          // cut short
  EXPECT_TRUE(hasControl("a\tb"));
  EXPECT_FALSE(hasControl("a\tb", /*tabIsControl=*/false));
  EXPECT_TRUE(hasControl("a\x7f"));
  EXPECT_FALSE(hasControl("caf\xc3\xa9"));
  EXPECT_EQ(escapeForDisplay("a\tb\xff\xc3\xa9\n"), "a\\x09b\\xff\xc3\xa9\\x0a");
  EXPECT_EQ(displayWidth("caf\xc3\xa9"), 4u);
}

// ---------------------------------------------------- socket transport

// A control plane that takes one connection on a Unix socket and answers
// as told. Everything it saw is read after finish().
class FakeControlPlane {
 public:
  enum class Behaviour : uint8_t { kReply, kSilent, kCutShort };

  FakeControlPlane(const std::string& path, Behaviour behaviour, pb::MgmtReply reply = {})
      : behaviour_(behaviour), reply_(std::move(reply)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd_, 4) != 0) {
      ADD_FAILURE() << "listen " << path << ": " << std::strerror(errno);
      return;
    }
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeControlPlane() {
    finish();
    ::close(fd_);
  }
  FakeControlPlane(const FakeControlPlane&) = delete;
  FakeControlPlane& operator=(const FakeControlPlane&) = delete;

  void finish() {
    if (thread_.joinable()) thread_.join();
  }
  const pb::MgmtRequest& received() const { return received_; }
  bool gotRequest() const { return gotRequest_; }

 private:
  void serve() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) return;
    const int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) return;
    std::string payload, error;
    if (channel::readFrameBlocking(conn, payload, channel::kDefaultMaxFrame, 10s, &error) &&
        received_.ParseFromString(payload)) {
      gotRequest_ = true;
    }
    switch (behaviour_) {
      case Behaviour::kReply:
        channel::writeFrameBlocking(conn, reply_, 10s, &error);
        break;
      case Behaviour::kSilent: {
        // Until the client gives up and closes.
        pollfd c{conn, POLLIN, 0};
        char byte;
        while (::poll(&c, 1, 10'000) == 1 && ::recv(conn, &byte, 1, 0) > 0) {
        }
        break;
      }
      case Behaviour::kCutShort: {
        const char partial[] = {0, 0, 0, 100, 8, 1};  // 100 bytes promised, 2 sent
        (void)!::send(conn, partial, sizeof(partial), MSG_NOSIGNAL);
        break;
      }
    }
    ::close(conn);
  }

  Behaviour behaviour_;
  pb::MgmtReply reply_;
  int fd_ = -1;
  std::thread thread_;
  pb::MgmtRequest received_;
  bool gotRequest_ = false;
};

pb::MgmtRequest showServersRequest() {
  pb::MgmtRequest request;
  request.set_protocol_version(channel::kProtocolVersion);
  request.set_user("alice");
  request.mutable_show_servers();
  return request;
}

TEST(CliSocketTransport, OneRequestOneReply) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  pb::MgmtReply reply = okReply();
  reply.set_text("hello");
  FakeControlPlane control(dir.file("mgmt.sock"), FakeControlPlane::Behaviour::kReply, reply);
  SocketTransport transport;
  const Exchange e = transport.exchange(dir.file("mgmt.sock"), showServersRequest(), 5s);
  control.finish();
  ASSERT_EQ(e.status, Exchange::Status::kOk) << e.reason;
  pb::MgmtReply got;
  ASSERT_TRUE(got.ParseFromString(e.payload));
  EXPECT_EQ(got.text(), "hello");
  ASSERT_TRUE(control.gotRequest());
  EXPECT_TRUE(MessageDifferencer::Equals(control.received(), showServersRequest()));
}

TEST(CliSocketTransport, NoSocketRefusedSilentAndCutShort) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  SocketTransport transport;

  Exchange e = transport.exchange(dir.file("none.sock"), showServersRequest(), 5s);
  EXPECT_EQ(e.status, Exchange::Status::kUnreachable);
  EXPECT_EQ(e.reason, std::strerror(ENOENT));

  {  // A socket file nobody listens on: what a crashed control plane leaves.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, dir.file("stale.sock").c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  e = transport.exchange(dir.file("stale.sock"), showServersRequest(), 5s);
  EXPECT_EQ(e.status, Exchange::Status::kUnreachable);
  EXPECT_EQ(e.reason, std::strerror(ECONNREFUSED));

  {
    FakeControlPlane control(dir.file("silent.sock"), FakeControlPlane::Behaviour::kSilent);
    const auto start = std::chrono::steady_clock::now();
    e = transport.exchange(dir.file("silent.sock"), showServersRequest(), 200ms);
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(e.status, Exchange::Status::kTimedOut) << e.reason;
    EXPECT_GE(took, 190ms);
    EXPECT_LT(took, 5s);
  }
  {
    FakeControlPlane control(dir.file("cut.sock"), FakeControlPlane::Behaviour::kCutShort);
    e = transport.exchange(dir.file("cut.sock"), showServersRequest(), 5s);
    EXPECT_EQ(e.status, Exchange::Status::kBroken);
    EXPECT_EQ(e.reason, "connection closed by the peer");
    EXPECT_EQ(e.payload, "");
  }
}

// ---------------------------------------------------------- the binary

struct Spawned {
  int status = -1;
  std::string out;
  std::string err;
};

std::string readAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Runs the built `fulcrum` with `args`, this process's environment without
// FULCRUM_SOCKET and SUDO_USER, plus `env`; stdout and stderr go to files.
Spawned spawnCli(const TempDir& dir, const std::vector<std::string>& args,
                 const std::vector<std::string>& env = {}) {
  std::vector<std::string> argvStrings = {FULCRUM_CLI_PATH};
  argvStrings.insert(argvStrings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argvStrings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> envStrings;
  for (char** e = environ; *e; ++e) {
    const std::string_view v = *e;
    if (v.starts_with("FULCRUM_SOCKET=") || v.starts_with("SUDO_USER=")) continue;
    envStrings.emplace_back(v);
  }
  envStrings.insert(envStrings.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : envStrings) envp.push_back(e.data());
  envp.push_back(nullptr);

  const std::string outPath = dir.file("stdout"), errPath = dir.file("stderr");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  Spawned s;
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << std::strerror(rc);
    return s;
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  s.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  s.out = readAll(outPath);
  s.err = readAll(errPath);
  return s;
}

TEST(CliBinary, NothingListeningIsOneLineAndExit3) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("none.sock");
  Spawned s = spawnCli(dir, {"--socket", path, "show", "servers"});
  EXPECT_EQ(s.status, 3);
  EXPECT_EQ(s.out, "");
  EXPECT_EQ(s.err, "fulcrum: cannot reach the control plane at " + path +
                       ": No such file or directory" + kUnreachableHint + "\n");

  // The same through $FULCRUM_SOCKET.
  s = spawnCli(dir, {"compare"}, {"FULCRUM_SOCKET=" + path});
  EXPECT_EQ(s.status, 3);
  EXPECT_EQ(s.err, "fulcrum: cannot reach the control plane at " + path +
                       ": No such file or directory" + kUnreachableHint + "\n");
}

TEST(CliBinary, HelpAndUsageErrors) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  Spawned s = spawnCli(dir, {"--help"}, {"FULCRUM_SOCKET=" + dir.file("none.sock")});
  EXPECT_EQ(s.status, 0);
  EXPECT_EQ(s.err, "");
  EXPECT_TRUE(s.out.starts_with("usage: fulcrum ")) << s.out;

  s = spawnCli(dir, {"help", "rollback"});
  EXPECT_EQ(s.status, 0);
  EXPECT_TRUE(s.out.starts_with("usage: fulcrum rollback N\n")) << s.out;

  s = spawnCli(dir, {"shwo"});
  EXPECT_EQ(s.status, 2);
  EXPECT_EQ(s.out, "");
  EXPECT_EQ(s.err, "fulcrum: unknown command 'shwo' (see fulcrum --help)\n");
}

TEST(CliBinary, TalksToAControlPlane) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("mgmt.sock");
  pb::MgmtReply reply = okReply();
  pb::CommitInfo* c = reply.add_commits();
  c->set_number(3);
  c->set_time_unix_ms(kNowMs);
  c->set_user("bob");
  c->set_comment("first");
  FakeControlPlane control(path, FakeControlPlane::Behaviour::kReply, reply);
  const Spawned s = spawnCli(dir, {"show", "commits"}, {"FULCRUM_SOCKET=" + path, "SUDO_USER=bob"});
  control.finish();
  EXPECT_EQ(s.status, 0) << s.err;
  EXPECT_EQ(s.err, "");
  EXPECT_EQ(s.out,
            "COMMIT  TIME                 USER  COMMENT\n"
            "     3  2026-11-22 00:10:47  bob   first\n");
  ASSERT_TRUE(control.gotRequest());
  EXPECT_EQ(control.received().protocol_version(), channel::kProtocolVersion);
  EXPECT_EQ(control.received().user(), "bob");
  EXPECT_TRUE(control.received().has_show_commits());
}

TEST(CliBinary, ASilentControlPlaneTimesOut) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("mgmt.sock");
  FakeControlPlane control(path, FakeControlPlane::Behaviour::kSilent);
  const Spawned s = spawnCli(dir, {"--socket", path, "--timeout", "0.3", "compare"});
  control.finish();
  EXPECT_EQ(s.status, 3);
  EXPECT_EQ(s.out, "");
  EXPECT_EQ(s.err, "fulcrum: no reply from the control plane at " + path + " within 0.3s\n");
}

}  // namespace
}  // namespace fulcrum::cli
