// Tests of the configuration language: parsing, defaults, overrides, deletes,
// every class of error (line, word, message), canonical text round trips, and
// hostile input that must fail cleanly.
#include "shared/config/config_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

namespace fulcrum {
namespace {

IpAddress ip(std::string_view text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

const ApplicationConfig* findApp(const Config& c, std::string_view name) {
  for (const auto& a : c.applications) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

// Parses text that must be valid; fails the test with the error otherwise.
Config parseOk(std::string_view text, const Config& base = {}) {
  ConfigResult r = parseConfig(text, base);
  EXPECT_TRUE(r.ok()) << r.error->toString() << "\n--- text ---\n" << text;
  return r.config;
}

// A valid service set and application that other tests add to.
const std::string kBase =
    "set service-set web inside-interface fs-web-in outside-interface fs-web-out\n"  // line 1
    "set application shop service-set web facade 198.18.0.10 port 80\n";             // line 2

// The example of the brief and DESIGN.md, without its two delete lines.
const std::string kExample = R"(set system control-channel 127.0.0.1:7080        # ADDR:PORT
set system affinity-store local                   # or redis://HOST:PORT[/DB]
set system syslog-file /var/log/fulcrum/fulcrum.log   # absolute path
set service-set web inside-interface fs-web-in outside-interface fs-web-out
set application shop service-set web facade 198.18.0.10 port 80
set application shop algorithm least-connections  # round-robin | weighted-round-robin | source-hash | maglev
set application shop persistence source-address timeout 1800     # `persistence none` turns it off
set application shop session-timeout 900
set application shop http-filter on               # on | off
set application shop monitor type http path /health expect 200 interval 2 timeout 1 rise 2 fall 3
set application shop monitor expect-body "ok"     # also: expect 200,204 (comma list of 100..599)
set application shop server s1 address 198.18.1.11 port 8080 weight 1 max-connections 0
)";

// --- Parsing valid text ------------------------------------------------------

TEST(ConfigParser, FullExampleSetsEveryField) {
  const Config c = parseOk(kExample);
  EXPECT_EQ(c.system.controlChannel, "127.0.0.1:7080");
  EXPECT_EQ(c.system.affinityStore, "local");
  EXPECT_EQ(c.system.syslogFile, "/var/log/fulcrum/fulcrum.log");

  ASSERT_EQ(c.serviceSets.size(), 1u);
  EXPECT_EQ(c.serviceSets[0].name, "web");
  EXPECT_EQ(c.serviceSets[0].insideInterface, "fs-web-in");
  EXPECT_EQ(c.serviceSets[0].outsideInterface, "fs-web-out");
  EXPECT_EQ(c.serviceSets[0].line.number, 4u);

  ASSERT_EQ(c.applications.size(), 1u);
  const ApplicationConfig& app = c.applications[0];
  EXPECT_EQ(app.name, "shop");
  EXPECT_EQ(app.serviceSet, "web");
  EXPECT_TRUE(app.facadeSet);
  EXPECT_EQ(app.facade, IpAddress::v4(0xC612000A));
  EXPECT_EQ(app.port, 80);
  EXPECT_EQ(app.algorithm, Algorithm::kLeastConnections);
  EXPECT_TRUE(app.persistence);
  EXPECT_EQ(app.persistenceTimeoutSeconds, 1800u);
  EXPECT_EQ(app.sessionTimeoutSeconds, 900u);
  EXPECT_TRUE(app.httpFilter);
  EXPECT_EQ(app.monitor.type, MonitorType::kHttp);
  EXPECT_EQ(app.monitor.path, "/health");
  EXPECT_EQ(app.monitor.expect, std::vector<uint16_t>{200});
  EXPECT_EQ(app.monitor.expectBody, "ok");
  EXPECT_EQ(app.monitor.intervalSeconds, 2u);
  EXPECT_EQ(app.monitor.timeoutSeconds, 1u);
  EXPECT_EQ(app.monitor.rise, 2u);
  EXPECT_EQ(app.monitor.fall, 3u);
  EXPECT_EQ(app.line.number, 11u);  // the last line about the application itself
  EXPECT_EQ(app.serviceSetLine.number, 5u);
  EXPECT_EQ(app.facadeLine.number, 5u);
  EXPECT_EQ(app.portLine.number, 5u);
  EXPECT_EQ(app.monitorLine.number, 11u);

  ASSERT_EQ(app.servers.size(), 1u);
  const ServerConfig& s1 = app.servers[0];
  EXPECT_EQ(s1.name, "s1");
  EXPECT_EQ(s1.address, ip("198.18.1.11"));
  EXPECT_EQ(s1.port, 8080);
  EXPECT_EQ(s1.weight, 1u);
  EXPECT_EQ(s1.maxConnections, 0u);
  EXPECT_EQ(s1.line.number, 12u);
  EXPECT_EQ(s1.addressLine.number, 12u);
  EXPECT_EQ(app.serverPort(s1), 8080);
}

TEST(ConfigParser, EmptyTextGivesDefaults) {
  const Config c = parseOk("");
  EXPECT_EQ(c, Config{});
  EXPECT_EQ(c.system.controlChannel, "127.0.0.1:7080");
  EXPECT_EQ(c.system.affinityStore, "local");
  EXPECT_EQ(c.system.affinityStorePasswordFile, "");
  EXPECT_EQ(c.system.affinityStoreTimeoutMs, 5u);
  EXPECT_EQ(c.system.syslogFile, "/var/log/fulcrum/fulcrum.log");
}

TEST(ConfigParser, Defaults) {
  const Config c = parseOk(kBase + "set application shop server s1 address 198.18.1.11\n");
  const ApplicationConfig& app = c.applications.at(0);
  EXPECT_EQ(app.port, 80);
  EXPECT_EQ(app.algorithm, Algorithm::kLeastConnections);
  EXPECT_FALSE(app.persistence);
  EXPECT_EQ(app.persistenceTimeoutSeconds, 1800u);
  EXPECT_EQ(app.sessionTimeoutSeconds, 900u);
  EXPECT_FALSE(app.httpFilter);
  EXPECT_FALSE(app.sessionSync);
  EXPECT_EQ(app.monitor, MonitorConfig{});
  EXPECT_EQ(app.monitor.type, MonitorType::kNone);
  const ServerConfig& s = app.servers.at(0);
  EXPECT_EQ(s.port, 0);
  EXPECT_EQ(app.serverPort(s), 80);
  EXPECT_EQ(s.weight, 1u);
  EXPECT_EQ(s.maxConnections, 0u);
}

TEST(ConfigParser, LaterLineOverrides) {
  const Config c = parseOk(kBase +
                           "set application shop server s1 address 198.18.1.11 port 8080 weight 2\n"
                           "set application shop algorithm maglev\n"
                           "set application shop algorithm source-hash\n"
                           "set application shop port 443\n"
                           "set application shop server s1 weight 3\n"
                           "set service-set web outside-interface fs-web-out2\n");
  const ApplicationConfig& app = c.applications.at(0);
  EXPECT_EQ(app.algorithm, Algorithm::kSourceHash);
  EXPECT_EQ(app.port, 443);
  EXPECT_EQ(app.portLine.number, 6u);
  ASSERT_EQ(app.servers.size(), 1u);
  // Only the weight changed; address and port stay.
  EXPECT_EQ(app.servers[0].weight, 3u);
  EXPECT_EQ(app.servers[0].port, 8080);
  EXPECT_EQ(app.servers[0].address, ip("198.18.1.11"));
  EXPECT_EQ(app.servers[0].line.number, 7u);
  EXPECT_EQ(app.servers[0].addressLine.number, 3u);
  EXPECT_EQ(c.serviceSets.at(0).insideInterface, "fs-web-in");
  EXPECT_EQ(c.serviceSets.at(0).outsideInterface, "fs-web-out2");
}

TEST(ConfigParser, SeveralPairsOnOneLine) {
  const Config c = parseOk(
      "set system control-channel 198.18.5.1:9000 affinity-store redis://198.18.5.2:6379/3 "
      "syslog-file /tmp/f.log\n"
      "set service-set web inside-interface a outside-interface b\n"
      "set application shop service-set web facade 198.18.0.10 port 443 algorithm "
      "weighted-round-robin persistence source-address timeout 60 session-timeout 30 "
      "http-filter on monitor type tcp interval 5 timeout 5 rise 1 fall 1\n"
      "set application shop algorithm round-robin server s1 address 198.18.1.11 port 8443 "
      "weight 10000 max-connections 10000000\n");
  EXPECT_EQ(c.system.controlChannel, "198.18.5.1:9000");
  EXPECT_EQ(c.system.affinityStore, "redis://198.18.5.2:6379/3");
  EXPECT_EQ(c.system.syslogFile, "/tmp/f.log");
  const ApplicationConfig& app = c.applications.at(0);
  EXPECT_EQ(app.port, 443);
  EXPECT_EQ(app.algorithm, Algorithm::kRoundRobin);
  EXPECT_TRUE(app.persistence);
  EXPECT_EQ(app.persistenceTimeoutSeconds, 60u);
  EXPECT_EQ(app.sessionTimeoutSeconds, 30u);
  EXPECT_TRUE(app.httpFilter);
  EXPECT_EQ(app.monitor.type, MonitorType::kTcp);
  EXPECT_EQ(app.monitor.intervalSeconds, 5u);
  EXPECT_EQ(app.monitor.timeoutSeconds, 5u);
  EXPECT_EQ(app.monitor.rise, 1u);
  EXPECT_EQ(app.monitor.fall, 1u);
  const ServerConfig& s = app.servers.at(0);
  EXPECT_EQ(s.port, 8443);
  EXPECT_EQ(s.weight, 10000u);
  EXPECT_EQ(s.maxConnections, 10000000u);
}

TEST(ConfigParser, AllAlgorithmsAndMonitorTypes) {
  const std::pair<const char*, Algorithm> algorithms[] = {
      {"least-connections", Algorithm::kLeastConnections},
      {"round-robin", Algorithm::kRoundRobin},
      {"weighted-round-robin", Algorithm::kWeightedRoundRobin},
      {"source-hash", Algorithm::kSourceHash},
      {"maglev", Algorithm::kMaglev}};
  for (const auto& [word, algorithm] : algorithms) {
    const Config c = parseOk(kBase + "set application shop algorithm " + word + "\n");
    EXPECT_EQ(c.applications.at(0).algorithm, algorithm) << word;
    EXPECT_STREQ(algorithmName(algorithm), word);
  }
  const std::pair<const char*, MonitorType> types[] = {
      {"icmp", MonitorType::kIcmp}, {"tcp", MonitorType::kTcp}, {"http", MonitorType::kHttp}};
  for (const auto& [word, type] : types) {
    const Config c = parseOk(kBase + "set application shop monitor type " + word + "\n");
    EXPECT_EQ(c.applications.at(0).monitor.type, type) << word;
    EXPECT_STREQ(monitorTypeName(type), word);
  }
  EXPECT_STREQ(monitorTypeName(MonitorType::kNone), "none");
}

TEST(ConfigParser, PersistenceNoneTurnsItOff) {
  const Config c = parseOk(kBase +
                           "set application shop persistence source-address timeout 60\n"
                           "set application shop persistence none\n");
  EXPECT_FALSE(c.applications.at(0).persistence);
  EXPECT_EQ(c.applications.at(0).persistenceTimeoutSeconds, 60u);  // kept, as with any override
}

TEST(ConfigParser, ExpectListAndQuotedBody) {
  const Config c = parseOk(
      kBase +
      "set application shop monitor type http expect 200,204,301 expect-body \"all # ok \\\"x\\\" "
      "\\\\ done\"  # trailing comment\n");
  const MonitorConfig& m = c.applications.at(0).monitor;
  EXPECT_EQ(m.expect, (std::vector<uint16_t>{200, 204, 301}));
  EXPECT_EQ(m.expectBody, "all # ok \"x\" \\ done");
}

TEST(ConfigParser, CommentsAndBlankLinesCountAsLines) {
  const std::string text =
      "# a comment\n"
      "\n"
      "   \t  \n"
      "set service-set web inside-interface a outside-interface b # trailing\n"  // line 4
      "#set application ignored port 1\n"
      "set application shop service-set web facade 198.18.0.10\r\n"  // CRLF is fine; line 6
      "set application shop algorithm fastest\n";                    // line 7
  ConfigResult r = parseConfig(text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->line, 7u);
  EXPECT_EQ(r.error->word, "algorithm");

  const Config c = parseOk(text.substr(0, text.rfind("set application shop algorithm")));
  EXPECT_EQ(c.serviceSets.at(0).line.number, 4u);
  EXPECT_EQ(c.applications.at(0).facadeLine.number, 6u);
  EXPECT_EQ(findApp(c, "ignored"), nullptr);
}

TEST(ConfigParser, HashInsideAWordIsNotAComment) {
  const Config c = parseOk(kBase + "set application shop monitor type http path /a#b\n");
  EXPECT_EQ(c.applications.at(0).monitor.path, "/a#b");
}

TEST(ConfigParser, SystemAlternatives) {
  const Config c = parseOk(
      "set system control-channel [2001:db8::1]:7080 affinity-store redis://198.18.5.9:6379\n");
  EXPECT_EQ(c.system.controlChannel, "[2001:db8::1]:7080");
  EXPECT_EQ(c.system.affinityStore, "redis://198.18.5.9:6379");
  parseOk("set system affinity-store redis://[2001:db8::2]:6379/0\n");
  const Config d = parseOk("set system syslog-file /x.log\ndelete system syslog-file\n");
  EXPECT_EQ(d.system.syslogFile, "/var/log/fulcrum/fulcrum.log");
}

TEST(ConfigParser, AffinityStoreSettings) {
  const Config c = parseOk(
      "set system affinity-store redis://198.18.5.2:6379/0 affinity-store-password-file "
      "/etc/fulcrum/redis.password\n"
      "set system affinity-store-timeout 20\n" +
      kBase + "set application shop session-sync on persistence source-address\n");
  EXPECT_EQ(c.system.affinityStore, "redis://198.18.5.2:6379/0");
  EXPECT_EQ(c.system.affinityStorePasswordFile, "/etc/fulcrum/redis.password");
  EXPECT_EQ(c.system.affinityStoreTimeoutMs, 20u);
  EXPECT_TRUE(c.applications.at(0).sessionSync);
  EXPECT_TRUE(c.applications.at(0).persistence);

  // The range's ends; `off` turns session sync off again.
  EXPECT_EQ(parseOk("set system affinity-store-timeout 1\n").system.affinityStoreTimeoutMs, 1u);
  EXPECT_EQ(parseOk("set system affinity-store-timeout 1000\n").system.affinityStoreTimeoutMs,
            1000u);
  EXPECT_FALSE(parseOk(kBase + "set application shop session-sync on\n"
                               "set application shop session-sync off\n")
                   .applications.at(0)
                   .sessionSync);
  // The password file is a path, never opened by the parser: it need not exist.
  EXPECT_EQ(parseOk("set system affinity-store-password-file /nonexistent/dir/pw\n")
                .system.affinityStorePasswordFile,
            "/nonexistent/dir/pw");
}

// With the embedded store, session sync and the store's settings have no
// effect beyond one engine; accepted (and kept), so that they can be set
// before the store is switched to Redis.
TEST(ConfigParser, AffinityStoreSettingsAreAcceptedWithALocalStore) {
  const Config c = parseOk(
      "set system affinity-store local affinity-store-password-file /etc/fulcrum/pw "
      "affinity-store-timeout 50\n" +
      kBase + "set application shop session-sync on\n");
  EXPECT_EQ(c.system.affinityStore, "local");
  EXPECT_EQ(c.system.affinityStorePasswordFile, "/etc/fulcrum/pw");
  EXPECT_EQ(c.system.affinityStoreTimeoutMs, 50u);
  EXPECT_TRUE(c.applications.at(0).sessionSync);
  EXPECT_EQ(validateConfig(c), std::nullopt);
}

// --- Deletes -----------------------------------------------------------------

TEST(ConfigParser, DeleteAffinityStoreSettingsRestoresDefaults) {
  const Config c = parseOk(
      "set system affinity-store redis://198.18.5.9:6379 affinity-store-password-file /etc/pw "
      "affinity-store-timeout 100\n" +
      kBase + "set application shop session-sync on\n" +
      "delete system affinity-store-password-file\n"
      "delete system affinity-store-timeout\n"
      "delete application shop session-sync\n");
  EXPECT_EQ(c.system.affinityStore, "redis://198.18.5.9:6379");  // untouched
  EXPECT_EQ(c.system.affinityStorePasswordFile, "");
  EXPECT_EQ(c.system.affinityStoreTimeoutMs, 5u);
  EXPECT_FALSE(c.applications.at(0).sessionSync);
  // Deleting what is at its default is fine, as for every other attribute.
  parseOk("delete system affinity-store-timeout\ndelete system affinity-store-password-file\n");
  const Config d = parseOk(
      "set system affinity-store redis://198.18.5.9:6379 affinity-store-timeout 9\n"
      "delete system affinity-store\n");
  EXPECT_EQ(d.system.affinityStore, "local");
  EXPECT_EQ(d.system.affinityStoreTimeoutMs, 9u);  // only what was named goes
}

TEST(ConfigParser, DeleteServer) {
  const Config c = parseOk(kBase +
                           "set application shop server s1 address 198.18.1.11\n"
                           "set application shop server s2 address 198.18.1.12\n"
                           "set application shop server s3 address 198.18.1.13\n"
                           "delete application shop server s2\n");
  const ApplicationConfig& app = c.applications.at(0);
  ASSERT_EQ(app.servers.size(), 2u);
  EXPECT_EQ(app.servers[0].name, "s1");
  EXPECT_EQ(app.servers[1].name, "s3");
}

TEST(ConfigParser, DeleteServerAttributeRestoresDefault) {
  const Config c = parseOk(kBase +
                           "set application shop server s1 address 198.18.1.11 port 81 weight 5\n"
                           "delete application shop server s1 weight\n"
                           "delete application shop server s1 port\n");
  EXPECT_EQ(c.applications.at(0).servers.at(0).weight, 1u);
  EXPECT_EQ(c.applications.at(0).servers.at(0).port, 0);
}

TEST(ConfigParser, DeleteApplicationAndServiceSet) {
  const Config c = parseOk(kBase +
                           "set application shop server s1 address 198.18.1.11\n"
                           "set service-set api inside-interface c outside-interface d\n"
                           "set application api service-set api facade 198.18.0.20\n"
                           "delete application shop\n"
                           "delete service-set web\n");
  ASSERT_EQ(c.applications.size(), 1u);
  EXPECT_EQ(c.applications[0].name, "api");
  ASSERT_EQ(c.serviceSets.size(), 1u);
  EXPECT_EQ(c.serviceSets[0].name, "api");
}

TEST(ConfigParser, ReaddedApplicationGoesLastWithDefaults) {
  const Config c = parseOk(kBase +
                           "set application api service-set web facade 198.18.0.20 port 80\n"
                           "set application shop algorithm maglev\n"
                           "delete application shop\n"
                           "set application shop service-set web facade 198.18.0.10\n");
  ASSERT_EQ(c.applications.size(), 2u);
  EXPECT_EQ(c.applications[0].name, "api");
  EXPECT_EQ(c.applications[1].name, "shop");
  EXPECT_EQ(c.applications[1].algorithm, Algorithm::kLeastConnections);
}

TEST(ConfigParser, DeleteMonitorAndPersistence) {
  const Config c = parseOk(kExample +
                           "delete application shop monitor\n"
                           "delete application shop persistence\n");
  const ApplicationConfig& app = c.applications.at(0);
  EXPECT_EQ(app.monitor, MonitorConfig{});
  EXPECT_FALSE(app.persistence);
  EXPECT_EQ(app.persistenceTimeoutSeconds, 1800u);
}

TEST(ConfigParser, DeleteMonitorAttribute) {
  const Config c = parseOk(kExample + "delete application shop monitor expect-body\n");
  EXPECT_EQ(c.applications.at(0).monitor.expectBody, "");
  EXPECT_EQ(c.applications.at(0).monitor.path, "/health");
}

TEST(ConfigParser, DeleteApplicationAttributes) {
  const Config c = parseOk(kExample +
                           "delete application shop http-filter\n"
                           "delete application shop session-timeout\n"
                           "set application shop algorithm maglev port 8080\n"
                           "delete application shop algorithm\n"
                           "delete application shop port\n");
  const ApplicationConfig& app = c.applications.at(0);
  EXPECT_FALSE(app.httpFilter);
  EXPECT_EQ(app.algorithm, Algorithm::kLeastConnections);
  EXPECT_EQ(app.port, 80);
}

TEST(ConfigParser, DeleteExampleLines) {
  // The two delete lines of the example itself.
  const Config c = parseOk(kExample + "delete application shop server s1\n");
  EXPECT_TRUE(c.applications.at(0).servers.empty());
  const Config d = parseOk(kExample +
                           "delete application shop server s1\n"
                           "delete application shop\n");
  EXPECT_TRUE(d.applications.empty());
}

// --- Errors ------------------------------------------------------------------

struct ErrorCase {
  const char* description;
  std::string text;
  uint32_t line;
  std::string word;
  std::vector<std::string> messageHas;  // substrings the message must contain
};

class ConfigErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrorTest, NamesLineWordAndCause) {
  const ErrorCase& c = GetParam();
  const ConfigResult r = parseConfig(c.text);
  ASSERT_FALSE(r.ok()) << c.description;
  EXPECT_EQ(r.error->line, c.line) << c.description << ": " << r.error->toString();
  EXPECT_EQ(r.error->word, c.word) << c.description << ": " << r.error->toString();
  for (const auto& part : c.messageHas) {
    EXPECT_NE(r.error->message.find(part), std::string::npos)
        << c.description << ": '" << part << "' not in: " << r.error->toString();
  }
  const std::string s = r.error->toString();
  EXPECT_EQ(s.find('\n'), std::string::npos) << s;
  if (c.line != 0) {
    EXPECT_EQ(s.rfind("line " + std::to_string(c.line) + ": ", 0), 0u) << s;
  }
}

std::string withServer(const std::string& serverLine) {
  return kBase + serverLine + "\n";
}

const ErrorCase kErrorCases[] = {
    // Line-by-line pass.
    {"unknown object keyword",
     "set aplication shop port 80\n",
     1,
     "aplication",
     {"unknown keyword", "system, service-set, application"}},
    {"unknown command", "\nsett system syslog-file /a\n", 2, "sett", {"unknown command"}},
    {"unknown application keyword",
     kBase + "set application shop colour blue\n",
     3,
     "colour",
     {"unknown application keyword"}},
    {"unknown server keyword",
     kBase + "set application shop server s1 address 198.18.1.11 algorithm maglev\n",
     3,
     "algorithm",
     {"unknown server keyword"}},
    {"unknown monitor keyword",
     kBase + "set application shop monitor type http speed 3\n",
     3,
     "speed",
     {"unknown monitor keyword"}},
    {"unknown system keyword", "set system hostname x\n", 1, "hostname", {"unknown system"}},
    {"missing value at end of line",
     kBase + "set application shop port\n",
     3,
     "port",
     {"missing value", "1..65535"}},
    {"missing application name", "set application\n", 1, "application", {"missing value"}},
    {"missing object after set", "set\n", 1, "set", {"missing object"}},
    {"nothing to set", kBase + "set application shop\n", 3, "shop", {"missing attribute"}},
    {"bare server", kBase + "set application shop server s1\n", 3, "s1", {"missing attribute"}},
    {"bad address",
     kBase + "set application shop facade 198.18.0.300\n",
     3,
     "facade",
     {"bad address", "198.18.0.300"}},
    {"host name instead of address",
     kBase + "set application shop facade www.example.com\n",
     3,
     "facade",
     {"bad address"}},
    {"loopback facade",
     kBase + "set application shop facade 127.0.0.1\n",
     3,
     "facade",
     {"loopback"}},
    {"multicast server",
     withServer("set application shop server s1 address 224.0.0.5"),
     3,
     "address",
     {"multicast"}},
    {"bad port",
     kBase + "set application shop port 70000\n",
     3,
     "port",
     {"70000", "out of range", "1..65535"}},
    {"port zero", kBase + "set application shop port 0\n", 3, "port", {"out of range"}},
    {"port not a number",
     kBase + "set application shop port http\n",
     3,
     "port",
     {"'http' is not a number"}},
    {"negative port", kBase + "set application shop port -1\n", 3, "port", {"not a number"}},
    {"huge number",
     kBase + "set application shop port 99999999999999999999999999\n",
     3,
     "port",
     {"out of range"}},
    {"bad server port",
     withServer("set application shop server s1 address 198.18.1.11 port 65536"),
     3,
     "port",
     {"out of range"}},
    {"bad name", "set application sh@p port 80\n", 1, "application", {"bad name", "sh@p"}},
    {"name too long",
     "set application " + std::string(64, 'a') + " port 80\n",
     1,
     "application",
     {"bad name"}},
    {"bad interface name",
     "set service-set web inside-interface eth/0 outside-interface b\n",
     1,
     "inside-interface",
     {"bad name"}},
    {"bad server name",
     kBase + "set application shop server 's1' address 198.18.1.11\n",
     3,
     "server",
     {"bad name"}},
    {"unknown algorithm",
     kBase + "set application shop algorithm fastest\n",
     3,
     "algorithm",
     {"unknown algorithm 'fastest'", "maglev"}},
    {"bad persistence",
     kBase + "set application shop persistence cookie\n",
     3,
     "persistence",
     {"unknown persistence 'cookie'", "source-address, none"}},
    {"persistence timeout zero",
     kBase + "set application shop persistence source-address timeout 0\n",
     3,
     "timeout",
     {"out of range", "1..604800"}},
    {"session-timeout too long",
     kBase + "set application shop session-timeout 604801\n",
     3,
     "session-timeout",
     {"out of range"}},
    {"bad http-filter",
     kBase + "set application shop http-filter yes\n",
     3,
     "http-filter",
     {"on, off"}},
    {"weight zero",
     withServer("set application shop server s1 address 198.18.1.11 weight 0"),
     3,
     "weight",
     {"1..10000"}},
    {"weight too large",
     withServer("set application shop server s1 address 198.18.1.11 weight 10001"),
     3,
     "weight",
     {"1..10000"}},
    {"max-connections too large",
     withServer("set application shop server s1 address 198.18.1.11 max-connections 10000001"),
     3,
     "max-connections",
     {"0..10000000"}},
    {"monitor interval zero",
     kBase + "set application shop monitor type tcp interval 0\n",
     3,
     "interval",
     {"1..3600"}},
    {"monitor rise too large",
     kBase + "set application shop monitor type tcp rise 101\n",
     3,
     "rise",
     {"1..100"}},
    {"monitor fall zero",
     kBase + "set application shop monitor type tcp fall 0\n",
     3,
     "fall",
     {"1..100"}},
    {"monitor unknown type",
     kBase + "set application shop monitor type udp\n",
     3,
     "type",
     {"unknown monitor type 'udp'"}},
    {"monitor expect out of range",
     kBase + "set application shop monitor type http expect 600\n",
     3,
     "expect",
     {"out of range"}},
    {"monitor expect empty item",
     kBase + "set application shop monitor type http expect 200,,204\n",
     3,
     "expect",
     {"bad status list"}},
    {"monitor expect duplicate",
     kBase + "set application shop monitor type http expect 200,200\n",
     3,
     "expect",
     {"listed twice"}},
    {"monitor path relative",
     kBase + "set application shop monitor type http path health\n",
     3,
     "path",
     {"must start with /"}},
    {"monitor path with a blank",
     kBase + "set application shop monitor type http path \"/a b\"\n",
     3,
     "path",
     {"visible ASCII"}},
    {"control channel without port",
     "set system control-channel 127.0.0.1\n",
     1,
     "control-channel",
     {"ADDR:PORT"}},
    {"control channel with name",
     "set system control-channel localhost:7080\n",
     1,
     "control-channel",
     {"not an IP address"}},
    {"affinity store without port",
     "set system affinity-store redis://redis.lab\n",
     1,
     "affinity-store",
     {"redis://HOST:PORT"}},
    {"affinity store named by a host name",
     "set system affinity-store redis://redis.lab:6379\n",
     1,
     "affinity-store",
     {"names are not resolved"}},
    {"affinity store unknown scheme",
     "set system affinity-store memcached://a:1\n",
     1,
     "affinity-store",
     {"bad affinity store"}},
    {"affinity store bad db",
     "set system affinity-store redis://198.18.5.6:6379/x\n",
     1,
     "affinity-store",
     {"database"}},
    {"syslog file relative",
     "set system syslog-file fulcrum.log\n",
     1,
     "syslog-file",
     {"absolute path"}},
    {"password file relative",
     "set system affinity-store redis://198.18.5.9:6379\n"
     "set system affinity-store-password-file redis.pw\n",
     2,
     "affinity-store-password-file",
     {"'redis.pw'", "not an absolute path"}},
    {"password file with a blank",
     "set system affinity-store-password-file \"/etc/fulcrum/my pw\"\n",
     1,
     "affinity-store-password-file",
     {"blank"}},
    {"password file with a tab",
     "set system affinity-store-password-file \"/etc/a\tb\"\n",
     1,
     "affinity-store-password-file",
     {"blank"}},
    {"password file is a directory",
     "set system affinity-store-password-file /etc/fulcrum/\n",
     1,
     "affinity-store-password-file",
     {"directory"}},
    {"password file empty",
     "set system affinity-store-password-file \"\"\n",
     1,
     "affinity-store-password-file",
     {"not an absolute path"}},
    {"password file missing",
     "set system affinity-store-password-file\n",
     1,
     "affinity-store-password-file",
     {"missing value", "absolute path"}},
    {"store timeout zero",
     "set system affinity-store-timeout 0\n",
     1,
     "affinity-store-timeout",
     {"out of range", "1..1000"}},
    {"store timeout too long",
     "\nset system affinity-store-timeout 1001\n",
     2,
     "affinity-store-timeout",
     {"'1001'", "out of range", "1..1000"}},
    {"store timeout with a unit",
     "set system affinity-store-timeout 5ms\n",
     1,
     "affinity-store-timeout",
     {"'5ms' is not a number"}},
    {"store timeout missing",
     "set system affinity-store redis://198.18.5.9:6379 affinity-store-timeout\n",
     1,
     "affinity-store-timeout",
     {"missing value", "1..1000"}},
    {"unknown system keyword lists the store's",
     "set system affinity-store-pasword-file /x\n",
     1,
     "affinity-store-pasword-file",
     {"unknown system keyword", "affinity-store-password-file", "affinity-store-timeout"}},
    {"unknown session-sync setting",
     kBase + "set application shop session-sync yes\n",
     3,
     "session-sync",
     {"unknown session-sync setting 'yes'", "on, off"}},
    {"session-sync missing",
     kBase + "set application shop session-sync\n",
     3,
     "session-sync",
     {"missing value", "on, off"}},
    {"unknown application keyword lists session-sync",
     kBase + "set application shop session-synch on\n",
     3,
     "session-synch",
     {"unknown application keyword", "session-sync"}},
    {"delete unknown system keyword",
     "delete system affinity-store-password\n",
     1,
     "affinity-store-password",
     {"unknown system keyword", "affinity-store-password-file"}},
    {"delete session-sync with a value",
     kBase + "delete application shop session-sync on\n",
     3,
     "on",
     {"unexpected 'on'"}},
    {"delete unknown application keyword lists session-sync",
     kBase + "delete application shop sync\n",
     3,
     "sync",
     {"unknown application keyword", "session-sync"}},
    {"unterminated quote",
     kBase + "set application shop monitor expect-body \"ok\n",
     3,
     "\"ok",
     {"unterminated quote"}},
    {"quote inside a word",
     kBase + "set application shop monitor expect-body ok\"\n",
     3,
     "ok\"",
     {"quote inside a word"}},
    {"text after closing quote",
     kBase + "set application shop monitor expect-body \"ok\"x\n",
     3,
     "\"ok\"x",
     {"closing quote"}},
    {"control character",
     kBase + "set application shop port 8\x01"
             "0\n",
     3,
     "8\x01",
     {"control character"}},
    {"delete unknown application",
     kBase + "delete application nope\n",
     3,
     "nope",
     {"no application 'nope'"}},
    {"delete unknown server",
     kBase + "delete application shop server s9\n",
     3,
     "s9",
     {"no server 's9'", "'shop'"}},
    {"delete unknown service set",
     "delete service-set nope\n",
     1,
     "nope",
     {"no service set 'nope'"}},
    {"delete absent monitor",
     kBase + "delete application shop monitor\n",
     3,
     "monitor",
     {"no monitor"}},
    {"delete absent persistence",
     kBase + "delete application shop persistence\n",
     3,
     "persistence",
     {"no persistence"}},
    {"delete with trailing words",
     kBase + "delete application shop algorithm now\n",
     3,
     "now",
     {"unexpected 'now'"}},
    {"delete server of unknown application",
     "delete application shop server s1\n",
     1,
     "shop",
     {"no application"}},
    {"line too long",
     kBase + "set application shop monitor expect-body " + std::string(kMaxLineLength, 'x') + "\n",
     3,
     "",
     {"longer than"}},

    // Validation of the whole configuration.
    {"server without any application",
     "set application shop server s1 address 198.18.1.11\n",
     1,
     "shop",
     {"no service-set"}},
    {"server whose application has no facade",
     "set service-set web inside-interface a outside-interface b\n"
     "set application shop service-set web\n"
     "set application shop server s1 address 198.18.1.11\n",
     3,
     "shop",
     {"no facade"}},
    {"facade deleted later is blamed on the delete line",
     withServer("set application shop server s1 address 198.18.1.11") +
         "\n"
         "delete application shop facade\n",
     5,
     "shop",
     {"server 's1' has no usable application", "no facade"}},
    {"application with nothing but an algorithm",
     "set application shop algorithm maglev\n",
     1,
     "shop",
     {"no service-set"}},
    {"undefined service set",
     "set service-set web inside-interface a outside-interface b\n"
     "set application shop facade 198.18.0.10\n"
     "set application shop service-set webb\n",
     3,
     "service-set",
     {"'webb'", "not defined"}},
    {"service set deleted while in use",
     kBase + "delete service-set web\n",
     2,
     "service-set",
     {"'web'", "not defined"}},
    {"duplicate facade in one service set",
     kBase + "set application shop2 service-set web facade 198.18.0.10 port 80\n",
     3,
     "facade",
     {"'shop2'", "same facade 198.18.0.10:80", "'shop'"}},
    {"duplicate facade made by a later port change",
     kBase + "set application shop2 service-set web facade 198.18.0.10 port 81\n"
             "set application shop2 port 80\n",
     4,
     "port",
     {"'shop2'", "'shop'"}},
    {"duplicate facade made by changing the first application",
     kBase + "set application shop2 service-set web facade 198.18.0.20 port 80\n"
             "set application shop facade 198.18.0.20\n",
     4,
     "facade",
     {"application 'shop' has the same facade", "'shop2'"}},
    {"facade is another application's server",
     kBase + "set application api service-set web facade 198.18.0.20\n"
             "set application api server a1 address 198.18.0.10\n",
     4,
     "address",
     {"198.18.0.10", "facade of application 'shop'", "server 'a1'"}},
    {"facade set onto an existing server address",
     kBase + "set application api service-set web facade 198.18.0.20\n"
             "set application api server a1 address 198.18.1.30\n"
             "set application shop facade 198.18.1.30\n",
     5,
     "facade",
     {"198.18.1.30", "server 'a1'"}},
    {"facade is its own server",
     kBase + "set application shop server s1 address 198.18.0.10\n",
     3,
     "address",
     {"both the facade"}},
    {"server without address",
     withServer("set application shop server s1 weight 3"),
     3,
     "s1",
     {"server 's1'", "no address"}},
    {"server address deleted",
     withServer("set application shop server s1 address 198.18.1.11") +
         "delete application shop server s1 address\n",
     4,
     "s1",
     {"no address"}},
    {"IPv6 facade",
     "set service-set web inside-interface a outside-interface b\n"
     "set application shop service-set web facade 2001:db8::10\n",
     2,
     "facade",
     {"IPv6 applications are not supported yet"}},
    {"IPv6 server (and facade set later)",
     "set service-set web inside-interface a outside-interface b\n"
     "set application shop server s1 address 2001:db8::11\n"
     "set application shop service-set web facade 2001:db8::10\n",
     2,
     "address",
     {"IPv6 applications are not supported yet", "'s1'"}},
    {"families differ",
     withServer("set application shop server s1 address 2001:db8::11"),
     3,
     "address",
     {"IPv6", "IPv4", "facade"}},
    {"monitor timeout above interval",
     kBase + "set application shop monitor type http interval 2 timeout 3\n",
     3,
     "timeout",
     {"longer than its interval"}},
    {"monitor interval lowered later",
     kBase + "set application shop monitor type http interval 5 timeout 4\n"
             "set application shop monitor interval 3\n",
     4,
     "timeout",
     {"longer than its interval"}},
    {"monitor without type",
     kBase + "set application shop monitor path /x\n",
     3,
     "monitor",
     {"no type"}},
    {"service set without outside interface",
     "set service-set web inside-interface a\n"
     "set application shop service-set web facade 198.18.0.10\n",
     1,
     "web",
     {"no outside-interface"}},
    {"service set with one interface twice",
     "set service-set web inside-interface a outside-interface a\n",
     1,
     "outside-interface",
     {"both inside and outside"}},
    {"interface shared by two service sets",
     "set service-set web inside-interface a outside-interface b\n"
     "set service-set api inside-interface c outside-interface b\n",
     2,
     "outside-interface",
     {"'b'", "already used by service set 'web'"}},
    {"two servers on one endpoint",
     kBase + "set application shop server s1 address 198.18.1.11 port 8080\n"
             "set application shop server s2 address 198.18.1.11 port 8080\n",
     4,
     "address",
     {"same address and port", "'s1'"}},
    {"earliest validation error wins",
     "set application zed server z1 weight 2\n"  // line 1: no service-set, and no address
     "set application shop server s1 address 198.18.1.11\n",
     1,
     "zed",
     {"no service-set"}},
};

INSTANTIATE_TEST_SUITE_P(Table, ConfigErrorTest, testing::ValuesIn(kErrorCases),
                         [](const testing::TestParamInfo<ErrorCase>& param) {
                           std::string name;
                           for (const char* p = param.param.description; *p != '\0'; ++p) {
                             name += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
                           }
                           return name;
                         });

TEST(ConfigError, ToStringMatchesTheDocumentedForm) {
  const ConfigResult r = parseConfig(kBase + "set application shop algorithm fastest\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->toString(),
            "line 3: 'algorithm': unknown algorithm 'fastest' (expected least-connections, "
            "round-robin, weighted-round-robin, source-hash, maglev)");
}

TEST(ConfigError, ToStringWithoutLineOrWord) {
  EXPECT_EQ((ConfigError{0, "", "something"}).toString(), "something");
  EXPECT_EQ((ConfigError{0, "w", "something"}).toString(), "'w': something");
  EXPECT_EQ((ConfigError{2, "", "something"}).toString(), "line 2: something");
  // Control characters never break the one-line form.
  const std::string s = ConfigError{1, "a\nb", "c\rd"}.toString();
  EXPECT_EQ(s, "line 1: 'a\\x0ab': c\\x0dd");
}

TEST(ConfigParser, StopsAtTheFirstBadLine) {
  const ConfigResult r = parseConfig(kBase +
                                     "set application shop port 99999\n"
                                     "set application shop algorithm fastest\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->line, 3u);
}

TEST(ConfigParser, AppliesOnTopOfBase) {
  const Config base = parseOk(kExample);
  const Config c = parseOk(
      "set application shop server s2 address 198.18.1.12\n"
      "delete application shop server s1\n",
      base);
  const ApplicationConfig& app = c.applications.at(0);
  ASSERT_EQ(app.servers.size(), 1u);
  EXPECT_EQ(app.servers[0].name, "s2");
  EXPECT_TRUE(app.httpFilter);  // from the base
  // Lines from the base text are forgotten: they are not lines of this text.
  EXPECT_EQ(app.facadeLine.number, 0u);
  EXPECT_EQ(app.servers[0].line.number, 1u);

  // An error caused by this text on an object of the base points at no line
  // of the base text.
  const ConfigResult r = parseConfig("delete service-set web\n", base);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->line, 0u);
  EXPECT_EQ(r.error->word, "service-set");
}

// --- applyConfig: statements without cross-object validation ----------------

// parseConfig is applyConfig followed by validateConfig: an error of the
// table is either found by applyConfig itself (exactly as parseConfig reports
// it) or, when applyConfig accepts the text, by validateConfig.
TEST_P(ConfigErrorTest, ApplyThenValidateGivesTheSameError) {
  const ErrorCase& c = GetParam();
  const ConfigResult parsed = parseConfig(c.text);
  ASSERT_FALSE(parsed.ok()) << c.description;
  const ConfigResult applied = applyConfig(c.text);
  if (!applied.ok()) {
    EXPECT_EQ(applied.error, parsed.error) << c.description << ": " << applied.error->toString();
    return;
  }
  EXPECT_EQ(validateConfig(applied.config), parsed.error) << c.description;
}

// States an operator passes through while editing, one statement at a time.
TEST(ApplyConfig, AcceptsIncompleteConfigurations) {
  const std::vector<std::string> incomplete = {
      "set application shop server s1 address 198.18.1.11\n",  // before the façade
      "set application shop algorithm maglev\n",               // no service set, no façade
      "set application shop facade 198.18.0.10\n",             // no service set
      "set application shop service-set web\n",                // undefined service set
      "set application shop server s1 weight 3\n",             // server without address
      "set service-set web\n",                                 // no interfaces
      "set service-set web inside-interface a\n",              // one interface
      "set service-set web inside-interface a outside-interface a\n",
      kBase + "set application shop monitor path /x\n",  // monitor without type
      kBase + "set application shop monitor type http interval 2 timeout 3\n",
      kBase + "set application shop2 service-set web facade 198.18.0.10 port 80\n",
      kBase + "set application shop server s1 address 198.18.0.10\n",   // façade as server
      kBase + "set application shop server s1 address 2001:db8::11\n",  // families differ
      kBase + "delete service-set web\n",                               // still referenced
      kBase + "delete application shop facade\n",
  };
  for (const std::string& text : incomplete) {
    const ConfigResult r = applyConfig(text);
    EXPECT_TRUE(r.ok()) << text << r.error->toString();
    EXPECT_FALSE(parseConfig(text).ok()) << text;
  }
}

TEST(ApplyConfig, BuildsTheSameConfigAsParseConfigWhenValid) {
  const ConfigResult applied = applyConfig(kExample);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied.config, parseOk(kExample));
}

TEST(ApplyConfig, StillChecksEachStatement) {
  struct Case {
    std::string text;
    uint32_t line;
    std::string word;
  };
  const Case cases[] = {
      {"set application shop colour blue\n", 1, "colour"},
      {"set application shop facade 198.18.0.300\n", 1, "facade"},
      {"set application shop facade 127.0.0.1\n", 1, "facade"},
      {"set application shop port 70000\n", 1, "port"},
      {"set application sh@p port 80\n", 1, "application"},
      {"set application shop\n", 1, "shop"},
      {"set application shop server s1\n", 1, "s1"},
      {"set service-set web inside-interface\n", 1, "inside-interface"},
      {"set service-set web colour blue\n", 1, "colour"},
      {"delete application nope\n", 1, "nope"},
      {"set application shop port 81\ndelete application shop server s1\n", 2, "s1"},
      {"set application shop port 81\ndelete application shop facade\n", 2, "facade"},
      {"set application shop port 81\ndelete application shop monitor\n", 2, "monitor"},
      {"delete service-set web\n", 1, "web"},
      {"set system syslog-file relative\n", 1, "syslog-file"},
      {"set system affinity-store-password-file relative\n", 1, "affinity-store-password-file"},
      {"set system affinity-store-timeout 0\n", 1, "affinity-store-timeout"},
      {"set application shop session-sync maybe\n", 1, "session-sync"},
  };
  for (const Case& c : cases) {
    const ConfigResult r = applyConfig(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.error->line, c.line) << c.text << r.error->toString();
    EXPECT_EQ(r.error->word, c.word) << c.text << r.error->toString();
  }
}

TEST(ApplyConfig, BareServiceSetDeclaresOneThatValidationStillRejects) {
  const ConfigResult r = applyConfig("set service-set web\n");
  ASSERT_TRUE(r.ok()) << r.error->toString();
  ASSERT_EQ(r.config.serviceSets.size(), 1u);
  EXPECT_EQ(r.config.serviceSets[0].name, "web");
  EXPECT_TRUE(r.config.serviceSets[0].insideInterface.empty());
  // Declaring it again keeps what it has.
  const ConfigResult again = applyConfig(
      "set service-set web inside-interface a outside-interface b\nset service-set web\n");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.config.serviceSets.at(0).insideInterface, "a");

  const ConfigResult parsed = parseConfig("set service-set web\n");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error->line, 1u);
  EXPECT_EQ(parsed.error->word, "web");
  EXPECT_NE(parsed.error->message.find("no inside-interface"), std::string::npos);
}

TEST(ApplyConfig, AppliesOnTopOfBaseAndForgetsItsLines) {
  const Config base = applyConfig("set application shop server s1 address 198.18.1.11\n").config;
  const ConfigResult r = applyConfig("\nset application shop server s2 weight 2\n", base);
  ASSERT_TRUE(r.ok()) << r.error->toString();
  const ApplicationConfig& app = r.config.applications.at(0);
  ASSERT_EQ(app.servers.size(), 2u);
  EXPECT_EQ(app.line.number, 0u);
  EXPECT_EQ(app.servers[0].line.number, 0u);
  EXPECT_EQ(app.servers[1].line.number, 2u);
  // An error refers to the applied text, not to the base.
  const ConfigResult bad = applyConfig("delete application shop server s3\n", base);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error->line, 1u);
  EXPECT_EQ(bad.error->word, "s3");
}

// --- validateConfig on configurations built in code --------------------------

Config builtConfig() {
  Config c;
  c.serviceSets.push_back(
      ServiceSetConfig{.name = "web", .insideInterface = "in", .outsideInterface = "out"});
  ApplicationConfig app;
  app.name = "shop";
  app.serviceSet = "web";
  app.facade = ip("198.18.0.10");
  app.facadeSet = true;
  ServerConfig s;
  s.name = "s1";
  s.address = ip("198.18.1.11");
  app.servers.push_back(s);
  c.applications.push_back(app);
  return c;
}

TEST(ValidateConfig, AcceptsAValidBuiltConfig) {
  EXPECT_EQ(validateConfig(builtConfig()), std::nullopt);
}

TEST(ValidateConfig, ChecksRangesOfBuiltConfigs) {
  Config c = builtConfig();
  c.applications[0].servers[0].weight = 0;
  auto e = validateConfig(c);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->line, 0u);
  EXPECT_EQ(e->word, "weight");

  c = builtConfig();
  c.applications[0].port = 0;
  e = validateConfig(c);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->word, "port");

  c = builtConfig();
  c.system.syslogFile = "relative.log";
  e = validateConfig(c);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->word, "syslog-file");

  for (const char* path : {"relative.pw", "/a b", "/dir/", "/a\"b"}) {
    c = builtConfig();
    c.system.affinityStorePasswordFile = path;
    e = validateConfig(c);
    ASSERT_TRUE(e.has_value()) << path;
    EXPECT_EQ(e->line, 0u);
    EXPECT_EQ(e->word, "affinity-store-password-file") << path;
  }

  for (uint32_t ms : {0u, 1001u}) {
    c = builtConfig();
    c.system.affinityStoreTimeoutMs = ms;
    e = validateConfig(c);
    ASSERT_TRUE(e.has_value()) << ms;
    EXPECT_EQ(e->word, "affinity-store-timeout");
    EXPECT_NE(e->message.find("1..1000"), std::string::npos) << e->toString();
  }

  c = builtConfig();
  c.applications[0].monitor.type = MonitorType::kHttp;
  c.applications[0].monitor.expect.clear();
  e = validateConfig(c);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->word, "expect");

  c = builtConfig();
  c.applications.push_back(c.applications[0]);
  e = validateConfig(c);
  ASSERT_TRUE(e.has_value());
  EXPECT_NE(e->message.find("defined twice"), std::string::npos) << e->toString();
}

TEST(ValidateConfig, FamiliesDifferInBuiltConfig) {
  Config c = builtConfig();
  c.applications[0].facade = ip("2001:db8::10");
  auto e = validateConfig(c);
  ASSERT_TRUE(e.has_value());
  // Both the mismatch and the IPv6 façade are wrong; either is a fair report
  // but it must be one of them.
  EXPECT_TRUE(e->message.find("IPv6") != std::string::npos) << e->toString();
}

// --- Round trips -------------------------------------------------------------

void expectRoundTrip(const Config& c) {
  ASSERT_EQ(validateConfig(c), std::nullopt) << validateConfig(c)->toString();
  const std::string text = configToText(c);
  const ConfigResult r = parseConfig(text);
  ASSERT_TRUE(r.ok()) << r.error->toString() << "\n" << text;
  EXPECT_EQ(r.config, c) << text;
  // Canonical: printing the parsed result again gives the same text.
  EXPECT_EQ(configToText(r.config), text);
}

TEST(ConfigRoundTrip, Empty) {
  expectRoundTrip(Config{});
  EXPECT_EQ(configToText(Config{}), "");
}

TEST(ConfigRoundTrip, FullExample) {
  expectRoundTrip(parseOk(kExample));
}

TEST(ConfigRoundTrip, ExampleTextIsCanonicalAndOrdered) {
  EXPECT_EQ(configToText(parseOk(kExample)),
            "set service-set web inside-interface fs-web-in outside-interface fs-web-out\n"
            "set application shop service-set web facade 198.18.0.10 port 80\n"
            "set application shop persistence source-address timeout 1800\n"
            "set application shop http-filter on\n"
            "set application shop monitor type http path /health expect 200 expect-body ok "
            "interval 2 timeout 1 rise 2 fall 3\n"
            "set application shop server s1 address 198.18.1.11 port 8080\n");
}

TEST(ConfigRoundTrip, ManyObjectsAndNonDefaults) {
  expectRoundTrip(parseOk(
      "set system control-channel 198.18.9.1:7081 affinity-store redis://198.18.9.2:6379/1 "
      "syslog-file \"/var/log/with space/f.log\"\n"
      "set system affinity-store-password-file /etc/fulcrum/redis#1.pw affinity-store-timeout "
      "1000\n"
      "set service-set web inside-interface w-in outside-interface w-out\n"
      "set service-set api inside-interface a-in outside-interface a-out\n"
      "set application zeta service-set api facade 198.18.0.30 port 443 algorithm maglev\n"
      "set application zeta persistence none timeout 77 session-timeout 604800\n"
      "set application zeta monitor type icmp interval 3600 timeout 3600 rise 100 fall 100\n"
      "set application zeta server z2 address 198.18.2.2 max-connections 10000000\n"
      "set application zeta server z1 address 198.18.2.1 port 65535 weight 10000\n"
      "set application alpha service-set web facade 198.18.0.30 port 443 algorithm "
      "weighted-round-robin\n"
      "set application alpha monitor type http path /a#b?c=1 expect 204,200,599 expect-body "
      "\"say \\\"hi\\\" \\\\ # there\"\n"
      "set application alpha server a1 address 198.18.2.1\n"  // a server may serve two apps
      "set application beta service-set web facade 198.18.0.31 port 1 algorithm source-hash "
      "http-filter on\n"
      "set application beta monitor type tcp\n"
      "set application beta session-sync on\n"));
}

TEST(ConfigRoundTrip, AffinityStoreSettingsPrintOnlyWhenNotDefault) {
  const Config c = parseOk(
      "set system affinity-store redis://198.18.5.8:6379/2 affinity-store-password-file /etc/pw "
      "affinity-store-timeout 25\n" +
      kBase + "set application shop session-sync on http-filter on\n");
  expectRoundTrip(c);
  EXPECT_EQ(configToText(c),
            "set system affinity-store redis://198.18.5.8:6379/2\n"
            "set system affinity-store-password-file /etc/pw\n"
            "set system affinity-store-timeout 25\n"
            "set service-set web inside-interface fs-web-in outside-interface fs-web-out\n"
            "set application shop service-set web facade 198.18.0.10 port 80\n"
            "set application shop http-filter on\n"
            "set application shop session-sync on\n");
  // Back at their defaults, they print nothing.
  const Config d = parseOk("set system affinity-store-timeout 5\n" + kBase +
                           "set application shop session-sync off\n");
  EXPECT_EQ(configToText(d), configToText(parseOk(kBase)));
  EXPECT_EQ(d, parseOk(kBase));
}

TEST(ConfigRoundTrip, QuotedEdgeCases) {
  for (const std::string body : {"#hash-first", "\"", "\\", "tab\there", "a b  c", "x\\\"y"}) {
    Config c = builtConfig();
    c.applications[0].monitor.type = MonitorType::kHttp;
    c.applications[0].monitor.expectBody = body;
    expectRoundTrip(c);
  }
}

TEST(ConfigRoundTrip, BuiltConfigs) {
  Config c = builtConfig();
  expectRoundTrip(c);
  c.applications[0].algorithm = Algorithm::kRoundRobin;
  c.applications[0].persistence = true;
  c.applications[0].persistenceTimeoutSeconds = 5;
  c.applications[0].servers[0].port = 8080;
  c.applications[0].servers.push_back(ServerConfig{
      .name = "s0", .address = ip("198.18.1.10"), .port = 0, .weight = 7, .maxConnections = 9});
  expectRoundTrip(c);
  c.system.affinityStore = "redis://[2001:db8::2]:6379/0";
  c.system.affinityStorePasswordFile = "/run/secrets/redis";
  c.system.affinityStoreTimeoutMs = 1;
  c.applications[0].sessionSync = true;
  expectRoundTrip(c);
  // An application with no servers and only its façade.
  c.applications.push_back(ApplicationConfig{});
  c.applications.back().name = "bare";
  c.applications.back().serviceSet = "web";
  c.applications.back().facade = ip("198.18.0.99");
  c.applications.back().facadeSet = true;
  expectRoundTrip(c);
}

TEST(ConfigRoundTrip, EqualityIgnoresSourceLines) {
  const Config a = parseOk(kExample);
  const Config b = parseOk("\n\n\n" + kExample);
  EXPECT_NE(a.applications[0].facadeLine.number, b.applications[0].facadeLine.number);
  EXPECT_EQ(a, b);
  Config c = b;
  c.applications[0].servers[0].weight = 2;
  EXPECT_NE(a, c);
}

// Random statements from the language's own vocabulary: whatever parses must
// survive a round trip, and nothing may crash.
TEST(ConfigRoundTrip, RandomStatementsThatParseRoundTrip) {
  const std::vector<std::string> lines = {
      "set service-set web inside-interface i1 outside-interface o1",
      "set service-set api inside-interface i2 outside-interface o2",
      "set service-set web outside-interface o3",
      "set application shop service-set web facade 198.18.0.10 port 80",
      "set application shop port 8080",
      "set application shop algorithm maglev",
      "set application shop persistence source-address timeout 60",
      "set application shop persistence none",
      "set application shop session-timeout 30",
      "set application shop http-filter on",
      "set application shop monitor type http path /h expect 200,204 interval 3 timeout 2",
      "set application shop monitor expect-body \"a b\"",
      "set application shop monitor type icmp",
      "set application shop server s1 address 198.18.1.11 port 81 weight 5",
      "set application shop server s2 address 198.18.1.12 max-connections 7",
      "set application shop server s1 weight 9",
      "set application api service-set api facade 198.18.0.20",
      "set application api service-set web",
      "set application api server a1 address 198.18.1.21",
      "set application api server a2 address 198.18.1.11 port 81",
      "set system affinity-store redis://198.18.5.9:1/2",
      "set system affinity-store-password-file /p",
      "set system affinity-store-timeout 1000",
      "set application shop session-sync on",
      "set application shop session-sync off",
      "set system syslog-file /l",
      "delete application shop server s1",
      "delete application shop server s2 max-connections",
      "delete application shop monitor",
      "delete application shop monitor expect-body",
      "delete application shop persistence",
      "delete application api",
      "delete service-set api",
      "delete system syslog-file",
      "delete system affinity-store-password-file",
      "delete system affinity-store-timeout",
      "delete application shop session-sync",
      "delete application shop algorithm",
      "# just a comment",
      "",
  };
  std::mt19937 rng(12345);
  int parsed = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const int n = 1 + static_cast<int>(rng() % 14);
    for (int i = 0; i < n; ++i) text += lines[rng() % lines.size()] + "\n";
    const ConfigResult r = parseConfig(text);
    if (!r.ok()) {
      EXPECT_LE(r.error->line, static_cast<uint32_t>(n + 1)) << text;
      continue;
    }
    ++parsed;
    const ConfigResult again = parseConfig(configToText(r.config));
    ASSERT_TRUE(again.ok()) << again.error->toString() << "\n" << text;
    ASSERT_EQ(again.config, r.config) << text << "\n---\n" << configToText(r.config);
  }
  EXPECT_GT(parsed, 50);  // the generator must actually exercise the round trip
}

// Incomplete configurations (what applyConfig accepts while an operator
// edits) must survive configToText too: the candidate is stored as text.
void expectApplyRoundTrip(const Config& c, const std::string& context = "") {
  const std::string text = configToText(c);
  const ConfigResult r = applyConfig(text);
  ASSERT_TRUE(r.ok()) << r.error->toString() << "\n" << text << "--- from ---\n" << context;
  ASSERT_EQ(r.config, c) << text << "--- from ---\n" << context;
  EXPECT_EQ(configToText(r.config), text);
  // Every line distinct (compare() of the store relies on it), none empty.
  std::set<std::string> seen;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    ASSERT_NE(end, std::string::npos) << "text must end with a newline: " << text;
    const std::string line = text.substr(start, end - start);
    EXPECT_FALSE(line.empty()) << text;
    EXPECT_TRUE(seen.insert(line).second) << "line twice: " << line << "\n" << text;
    start = end + 1;
  }
  // The text is valid exactly when the config is.
  EXPECT_EQ(parseConfig(text).ok(), !validateConfig(c).has_value()) << text;
}

Config applyOk(std::string_view text) {
  ConfigResult r = applyConfig(text);
  EXPECT_TRUE(r.ok()) << r.error->toString() << "\n--- text ---\n" << text;
  return r.config;
}

TEST(ConfigRoundTrip, IncompleteConfigurations) {
  const std::vector<std::string> texts = {
      "set service-set web\n",
      "set service-set web inside-interface a\n",
      "set service-set web outside-interface b\n",
      "set service-set web inside-interface a outside-interface b\n"
      "delete service-set web inside-interface\n"
      "delete service-set web outside-interface\n",
      "set application shop algorithm maglev\n",
      "set application shop facade 198.18.0.10\n",
      "set application shop service-set nowhere\n",
      "set application shop server s1 address 198.18.1.11\n",
      "set application shop server s1 weight 1\n",  // nothing but defaults
      "set application shop server s1 address 198.18.1.11\n"
      "delete application shop server s1 address\n",
      "set application shop server s1 port 8080\n",
      "set application shop server s1 max-connections 5 weight 2\n",
      "set application shop monitor path /x\n",
      "set application shop monitor expect 204 interval 1 timeout 5\n",
      "set application shop monitor type http\ndelete application shop monitor type\n",
      "set application shop persistence none timeout 60\n",
      kBase + "set application shop server s1 address 2001:db8::11\n",
      kBase + "set application shop2 service-set web facade 198.18.0.10 port 80\n",
      kBase + "delete service-set web\n",
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    expectApplyRoundTrip(applyOk(text), text);
  }
  EXPECT_EQ(configToText(applyOk("set service-set web\n")), "set service-set web\n");
  EXPECT_EQ(configToText(applyOk("set application shop server s1 weight 1\n")),
            "set application shop port 80\n"
            "set application shop server s1 weight 1\n");
}

// The editing loop of the CLI: random statements applied one at a time to a
// candidate, keeping those that apply; after each step the candidate must
// survive configToText/applyConfig exactly.
TEST(ConfigRoundTrip, RandomEditsThroughApplyConfigRoundTrip) {
  const std::vector<std::string> lines = {
      "set system control-channel 198.18.9.1:7081",
      "set system control-channel [2001:db8::1]:7080",
      "set system affinity-store redis://198.18.5.7:6379/3",
      "set system affinity-store local",
      "set system affinity-store-password-file /etc/fulcrum/#pw",
      "set system affinity-store-timeout 7",
      "set system syslog-file \"/var/log/a b/#c\"",
      "delete system control-channel",
      "delete system affinity-store",
      "delete system affinity-store-password-file",
      "delete system affinity-store-timeout",
      "delete system syslog-file",
      "set service-set web inside-interface i1 outside-interface o1",
      "set service-set web",
      "set service-set api inside-interface i2",
      "set service-set api outside-interface i2",
      "set service-set web outside-interface o3",
      "delete service-set web inside-interface",
      "delete service-set web outside-interface",
      "delete service-set api outside-interface",
      "delete service-set web",
      "delete service-set api",
      "set application shop service-set web facade 198.18.0.10 port 80",
      "set application shop service-set api",
      "set application shop facade 2001:db8::10",
      "set application shop port 8080",
      "set application shop algorithm maglev",
      "set application shop algorithm weighted-round-robin",
      "set application shop persistence source-address timeout 60",
      "set application shop persistence none",
      "set application shop persistence none timeout 7",
      "set application shop session-timeout 30",
      "set application shop http-filter on",
      "set application shop http-filter off",
      "set application shop session-sync on",
      "set application shop session-sync off",
      "delete application shop session-sync",
      "set application shop monitor type http path /h expect 200,204 interval 3 timeout 2",
      "set application shop monitor expect-body \"a \\\"b\\\" \\\\ c\"",
      "set application shop monitor expect-body #x",
      "set application shop monitor type icmp",
      "set application shop monitor timeout 9",
      "set application shop monitor path /p\"q",
      "set application shop monitor rise 100 fall 1",
      "set application shop server s1 address 198.18.1.11 port 81 weight 5",
      "set application shop server s1 weight 1",
      "set application shop server s2 max-connections 7",
      "set application shop server s3 weight 1",
      "set application shop server s3 address 198.18.0.10",
      "set application shop server s2 address 2001:db8::12",
      "delete application shop server s1",
      "delete application shop server s1 address",
      "delete application shop server s2 max-connections",
      "delete application shop server s3 weight",
      "delete application shop server s1 port",
      "delete application shop monitor",
      "delete application shop monitor type",
      "delete application shop monitor expect-body",
      "delete application shop monitor path",
      "delete application shop monitor timeout",
      "delete application shop persistence",
      "delete application shop service-set",
      "delete application shop facade",
      "delete application shop port",
      "delete application shop algorithm",
      "delete application shop session-timeout",
      "delete application shop http-filter",
      "delete application shop",
      "set application api server a1 address 198.18.1.21",
      "set application api service-set api facade 198.18.0.20",
      "set application api server a1 port 9",
      "delete application api server a1 address",
      "delete application api",
      "set application zeta session-timeout 604800",
      "delete application zeta",
  };
  std::mt19937 rng(424242);
  int applied = 0;
  int incomplete = 0;
  for (int session = 0; session < 300; ++session) {
    Config candidate;
    std::string history;
    for (int step = 0; step < 40; ++step) {
      const std::string& line = lines[rng() % lines.size()];
      const ConfigResult r = applyConfig(line, candidate);
      if (!r.ok()) {
        // All or nothing is the caller's business; applyConfig only has to
        // name the line and a word of it.
        EXPECT_EQ(r.error->line, 1u) << line;
        continue;
      }
      candidate = r.config;
      history += line + "\n";
      ++applied;
      if (validateConfig(candidate)) ++incomplete;
      expectApplyRoundTrip(candidate, history);
      if (testing::Test::HasFatalFailure()) return;
    }
    // The whole history applied at once builds the same candidate.
    EXPECT_EQ(applyOk(history), candidate) << history;
  }
  EXPECT_GT(applied, 3000);
  EXPECT_GT(incomplete, 1000);  // the point: incomplete states are exercised
}

// --- Hostile input -----------------------------------------------------------

struct GarbageCase {
  const char* description;
  std::string text;
};

std::string randomBytes(uint32_t seed, size_t size) {
  std::mt19937 rng(seed);
  std::string s(size, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::string randomPrintable(uint32_t seed, size_t size) {
  std::mt19937 rng(seed);
  const std::string alphabet = "set application server monitor \"#\\\n\t0123456789.:-/,abc";
  std::string s(size, ' ');
  for (char& c : s) c = alphabet[rng() % alphabet.size()];
  return s;
}

std::string manyLines(size_t count, const std::string& line) {
  std::string s;
  s.reserve(count * (line.size() + 1));
  for (size_t i = 0; i < count; ++i) s += line + "\n";
  return s;
}

std::string tenThousandServers() {
  std::string s = kBase;
  for (int i = 0; i < 9998; ++i) {
    s += "set application shop server s" + std::to_string(i) + " address 198.19." +
         std::to_string(i / 250) + "." + std::to_string(1 + i % 250) + "\n";
  }
  return s;
}

std::vector<GarbageCase> garbageCases() {
  std::vector<GarbageCase> cases = {
      {"NUL bytes", std::string("set\0application", 15)},
      {"only a quote", "\""},
      {"unterminated quote at end of text", "set application shop monitor expect-body \"abc"},
      {"lone backslash in quotes", "set application shop monitor expect-body \"\\"},
      {"escaped quote then end", "set application shop monitor expect-body \"\\\""},
      {"very long line", std::string(10 * 1024 * 1024, 'a')},
      {"very long line of blanks", std::string(kMaxLineLength, ' ')},
      {"very long quoted token", "set application shop monitor expect-body \"" +
                                     std::string(kMaxLineLength - 60, 'q') + "\""},
      {"very long name", "set application " + std::string(60000, 'n') + " port 80"},
      {"very long number", kBase + "set application shop port " + std::string(60000, '9')},
      {"10k garbage lines", manyLines(10000, "set application x y z")},
      {"10k comment lines", manyLines(10000, "# nothing to see")},
      {"10k empty lines", std::string(10000, '\n')},
      {"10k lines of one server",
       kBase + manyLines(9998, "set application shop server s1 weight 2")},
      {"10k servers", tenThousandServers()},
      {"10k applications",
       [] {
         std::string s = "set service-set web inside-interface a outside-interface b\n";
         for (int i = 0; i < 9999; ++i) {
           s += "set application a" + std::to_string(i) + " service-set web facade 198.19." +
                std::to_string(i / 250) + "." + std::to_string(1 + i % 250) + "\n";
         }
         return s;
       }()},
      {"invalid UTF-8 in name", "set application \xff\xfe port 80"},
      {"UTF-8 in quoted body",
       kBase + "set application shop monitor type http expect-body \"h\xc3\xa9llo\""},
      {"CR only line ends", "set system syslog-file /a\rset system syslog-file /b\r"},
      {"deletes of everything", "delete\ndelete system\ndelete application\ndelete service-set"},
      {"only separators", " \t\r\v\f\n\n\t"},
      {"numbers with signs", kBase + "set application shop port +80"},
      {"IPv6 with zone", kBase + "set application shop facade fe80::1%eth0"},
      {"mapped IPv4 address", kBase + "set application shop server s1 address ::ffff:198.18.1.1"},
  };
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    cases.push_back({"random bytes", randomBytes(seed, 1 + seed * 997)});
    cases.push_back({"random printable", randomPrintable(seed, 1 + seed * 733)});
  }
  return cases;
}

TEST(ConfigGarbage, NeverCrashesAndErrorsAreWellFormed) {
  for (const GarbageCase& c : garbageCases()) {
    SCOPED_TRACE(c.description);
    const ConfigResult r = parseConfig(c.text);
    if (r.ok()) {
      // Whatever was accepted must print and read back the same.
      const ConfigResult again = parseConfig(configToText(r.config));
      ASSERT_TRUE(again.ok()) << again.error->toString();
      EXPECT_EQ(again.config, r.config);
      continue;
    }
    const std::string s = r.error->toString();
    EXPECT_FALSE(r.error->message.empty());
    EXPECT_EQ(s.find('\n'), std::string::npos);
    EXPECT_LT(s.size(), 2000u) << "error text should stay readable";
  }
}

TEST(ConfigGarbage, ExpectedOutcomes) {
  // Spot checks of a few hostile inputs whose outcome is known.
  EXPECT_FALSE(parseConfig("\"").ok());
  EXPECT_FALSE(parseConfig(std::string(10 * 1024 * 1024, 'a')).ok());
  EXPECT_TRUE(parseConfig(manyLines(10000, "# nothing to see")).ok());
  EXPECT_TRUE(parseConfig(std::string(10000, '\n')).ok());
  const ConfigResult servers = parseConfig(tenThousandServers());
  ASSERT_TRUE(servers.ok()) << servers.error->toString();
  EXPECT_EQ(servers.config.applications.at(0).servers.size(), 9998u);
  EXPECT_EQ(servers.config.applications.at(0).servers.back().line.number, 10000u);
  const ConfigResult garbage = parseConfig(manyLines(10000, "set application x y z"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error->line, 1u);
  EXPECT_EQ(garbage.error->word, "y");
  // A zone index is not an address; a mapped IPv4 address is IPv4.
  EXPECT_FALSE(parseConfig(kBase + "set application shop facade fe80::1%eth0").ok());
  const ConfigResult mapped =
      parseConfig(kBase + "set application shop server s1 address ::ffff:198.18.1.1");
  ASSERT_TRUE(mapped.ok()) << mapped.error->toString();
  EXPECT_TRUE(mapped.config.applications[0].servers[0].address.isV4());
}

}  // namespace
}  // namespace fulcrum
