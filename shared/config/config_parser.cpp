#include "shared/config/config_parser.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

namespace fulcrum {
namespace {

// ---------------------------------------------------------------------------
// Limits of the language. The ranges are the ones operators are told about
// (DESIGN.md); the length limits only keep absurd input from reaching the
// planes (an HTTP request line, a syslog path) and cost nothing otherwise.

struct Range {
  uint64_t min;
  uint64_t max;
};
constexpr Range kPortRange{1, 65535};
constexpr Range kWeightRange{1, 10000};
constexpr Range kMaxConnectionsRange{0, 10000000};
constexpr Range kTimeoutRange{1, 604800};  // session and persistence, seconds
constexpr Range kMonitorSecondsRange{1, 3600};
constexpr Range kRiseFallRange{1, 100};
constexpr Range kHttpStatusRange{100, 599};
constexpr Range kRedisDbRange{0, 2147483647};  // SELECT takes a signed 32-bit index
// How long a new connection may wait for the affinity store, ms: above a
// second a client's SYN would be retransmitted while it waits.
constexpr Range kStoreTimeoutRange{1, 1000};

constexpr size_t kMaxNameLength = 63;
constexpr size_t kMaxFilePathLength = 4095;  // PATH_MAX - 1
constexpr size_t kMaxHttpPathLength = 1024;
constexpr size_t kMaxExpectBodyLength = 1024;
constexpr size_t kMaxWordInMessage = 64;

constexpr std::array<std::string_view, 5> kAlgorithmWords = {
    "least-connections", "round-robin", "weighted-round-robin", "source-hash", "maglev"};
constexpr std::array<Algorithm, 5> kAlgorithms = {
    Algorithm::kLeastConnections, Algorithm::kRoundRobin, Algorithm::kWeightedRoundRobin,
    Algorithm::kSourceHash, Algorithm::kMaglev};
constexpr std::array<std::string_view, 3> kMonitorTypeWords = {"icmp", "tcp", "http"};
constexpr std::array<MonitorType, 3> kMonitorTypes = {MonitorType::kIcmp, MonitorType::kTcp,
                                                      MonitorType::kHttp};
constexpr std::array<std::string_view, 2> kSwitchWords = {"on", "off"};  // index 0 = on

constexpr std::string_view kSystemKeywords =
    "control-channel, affinity-store, affinity-store-password-file, affinity-store-timeout, "
    "syslog-file";
constexpr std::string_view kApplicationKeywords =
    "service-set, facade, port, algorithm, persistence, session-timeout, http-filter, "
    "session-sync, monitor, server";

// Parsing a number must not overflow however many digits are written; 18
// decimal digits always fit in uint64_t, and every range here is far smaller.
constexpr size_t kMaxDigits = 18;

// ---------------------------------------------------------------------------
// Text helpers.

bool isBlank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}
bool isControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

// Words quoted in messages are escaped and shortened so that a message stays
// one readable line whatever bytes the input held.
std::string escapeControl(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (isControl(c)) {
      static constexpr char kHex[] = "0123456789abcdef";
      const auto u = static_cast<unsigned char>(c);
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

std::string quoted(std::string_view s) {
  if (s.size() > kMaxWordInMessage) {
    return "'" + escapeControl(s.substr(0, kMaxWordInMessage)) + "...'";
  }
  return "'" + escapeControl(s) + "'";
}

template <size_t N>
std::string joinWords(const std::array<std::string_view, N>& words) {
  std::string out;
  for (std::string_view w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

std::string rangeText(Range r) {
  return std::to_string(r.min) + ".." + std::to_string(r.max);
}

// A decimal number; nullopt when `s` is not all digits. Too many digits parse
// as "too large" (max uint64) so that the caller reports a range error.
std::optional<uint64_t> parseDecimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  const size_t firstNonZero = s.find_first_not_of('0');
  if (firstNonZero == std::string_view::npos) return 0;
  s.remove_prefix(firstNonZero);
  if (s.size() > kMaxDigits) return std::numeric_limits<uint64_t>::max();
  uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// ---------------------------------------------------------------------------
// Value rules, shared by the line pass (which knows the exact word) and by
// validateConfig (which also sees Configs built in code). Each returns what is
// wrong, or nullopt.
using Problem = std::optional<std::string>;

bool isNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

Problem checkName(std::string_view s) {
  if (!s.empty() && s.size() <= kMaxNameLength && std::all_of(s.begin(), s.end(), isNameChar)) {
    return std::nullopt;
  }
  return "bad name " + quoted(s) + " (expected 1 to 63 characters of A-Z a-z 0-9 _ . -)";
}

Problem checkRange(std::string_view what, uint64_t v, Range r) {
  if (v >= r.min && v <= r.max) return std::nullopt;
  return std::string(what) + " " + std::to_string(v) + " is out of range (expected " +
         rangeText(r) + ")";
}

// Façades and servers must be addresses a packet can be NATed to or from.
Problem checkUnicast(const IpAddress& a) {
  const std::string text = a.toString();
  if (a.isV4()) {
    const uint32_t v = a.v4HostOrder();
    if ((v >> 24) == 0) return text + " is not a usable address (0.0.0.0/8 is \"this network\")";
    if ((v >> 24) == 127) return text + " is not a usable address (loopback)";
    if ((v >> 28) == 0xe) return text + " is not a usable address (multicast)";
    if ((v >> 28) == 0xf) return text + " is not a usable address (reserved or broadcast)";
    return std::nullopt;
  }
  const auto& b = a.bytes();
  if (a == IpAddress{}) return text + " is not a usable address (unspecified)";
  if (b[0] == 0xff) return text + " is not a usable address (multicast)";
  std::array<uint8_t, 16> loopback{};
  loopback[15] = 1;
  if (b == loopback) return text + " is not a usable address (loopback)";
  return std::nullopt;
}

// "198.18.0.1:7080" or "[2001:db8::1]:7080"; any address, as the control
// plane may listen on a wildcard.
Problem checkControlChannel(std::string_view s) {
  const std::string expected = " (expected ADDR:PORT, e.g. 127.0.0.1:7080)";
  std::string_view host;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find("]:");
    if (close == std::string_view::npos) return "bad control channel " + quoted(s) + expected;
    host = s.substr(1, close - 1);
    if (host.find(':') == std::string_view::npos) {
      return "bad control channel " + quoted(s) + " (brackets are for IPv6 addresses)";
    }
    port = s.substr(close + 2);
  } else {
    const size_t colon = s.find(':');
    if (colon == std::string_view::npos || s.find(':', colon + 1) != std::string_view::npos) {
      return "bad control channel " + quoted(s) + expected;
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (!IpAddress::parse(host)) {
    return "bad control channel " + quoted(s) + ": " + quoted(host) + " is not an IP address";
  }
  const auto p = parseDecimal(port);
  if (!p || *p < kPortRange.min || *p > kPortRange.max) {
    return "bad control channel " + quoted(s) + ": port " + quoted(port) + " is not in " +
           rangeText(kPortRange);
  }
  return std::nullopt;
}

// "local" or "redis://HOST:PORT[/DB]"; HOST is an IPv4 address or a bracketed
// IPv6 address. Not a name: the engines' store thread would have to resolve
// it, and a lookup has no bound on how long it takes.
Problem checkAffinityStore(std::string_view s) {
  const std::string expected = " (expected local or redis://HOST:PORT[/DB])";
  if (s == "local") return std::nullopt;
  constexpr std::string_view kScheme = "redis://";
  if (s.substr(0, kScheme.size()) != kScheme) return "bad affinity store " + quoted(s) + expected;
  std::string_view rest = s.substr(kScheme.size());
  std::string_view db;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    const auto n = parseDecimal(db);
    if (!n || *n > kRedisDbRange.max) {
      return "bad affinity store " + quoted(s) + ": database " + quoted(db) + " is not in " +
             rangeText(kRedisDbRange);
    }
  }
  std::string_view host;
  std::string_view port;
  bool hostOk = false;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find("]:");
    if (close == std::string_view::npos) return "bad affinity store " + quoted(s) + expected;
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
    hostOk = host.find(':') != std::string_view::npos && IpAddress::parse(host).has_value();
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return "bad affinity store " + quoted(s) + expected;
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    const auto parsed = IpAddress::parse(host);
    hostOk = host.find(':') == std::string_view::npos && parsed && parsed->isV4();
  }
  if (!hostOk) {
    return "bad affinity store " + quoted(s) + ": " + quoted(host) +
           " is not an IPv4 address or a bracketed IPv6 address (names are not resolved)";
  }
  const auto p = parseDecimal(port);
  if (!p || *p < kPortRange.min || *p > kPortRange.max) {
    return "bad affinity store " + quoted(s) + ": port " + quoted(port) + " is not in " +
           rangeText(kPortRange);
  }
  return std::nullopt;
}

Problem checkSyslogFile(std::string_view s) {
  if (s.empty() || s.front() != '/') {
    return "syslog file " + quoted(s) + " is not an absolute path";
  }
  if (s.back() == '/') return "syslog file " + quoted(s) + " names a directory, not a file";
  if (s.size() > kMaxFilePathLength) {
    return "syslog file path is longer than " + std::to_string(kMaxFilePathLength) + " bytes";
  }
  if (std::any_of(s.begin(), s.end(), isControl)) {
    return "syslog file " + quoted(s) + " contains a control character";
  }
  return std::nullopt;
}

// The engine opens this file; the path is also printed back by
// configToText(), so it is kept to a plain word: no blanks, no quotes.
Problem checkPasswordFile(std::string_view s) {
  const std::string what = "affinity-store-password-file " + quoted(s);
  if (s.empty() || s.front() != '/') return what + " is not an absolute path";
  if (s.back() == '/') return what + " names a directory, not a file";
  if (s.size() > kMaxFilePathLength) {
    return "affinity-store-password-file path is longer than " +
           std::to_string(kMaxFilePathLength) + " bytes";
  }
  if (std::any_of(s.begin(), s.end(), [](char c) { return isBlank(c) || c == '"'; })) {
    return what + " contains a blank or a quote (the path must be one plain word)";
  }
  if (std::any_of(s.begin(), s.end(), isControl)) return what + " contains a control character";
  return std::nullopt;
}

// The path goes into an HTTP request line: visible ASCII only, no blanks.
Problem checkHttpPath(std::string_view s) {
  if (s.empty() || s.front() != '/') return "monitor path " + quoted(s) + " must start with /";
  if (s.size() > kMaxHttpPathLength) {
    return "monitor path is longer than " + std::to_string(kMaxHttpPathLength) + " bytes";
  }
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return "monitor path " + quoted(s) + " may hold only visible ASCII characters";
    }
  }
  return std::nullopt;
}

Problem checkExpectBody(std::string_view s) {
  if (s.size() > kMaxExpectBodyLength) {
    return "expect-body is longer than " + std::to_string(kMaxExpectBodyLength) + " bytes";
  }
  for (char c : s) {
    if (isControl(c) && c != '\t') return "expect-body contains a control character";
  }
  return std::nullopt;
}

Problem checkExpect(const std::vector<uint16_t>& codes) {
  if (codes.empty()) return "an HTTP monitor must expect at least one status code";
  std::set<uint16_t> seen;
  for (uint16_t c : codes) {
    if (auto p = checkRange("status", c, kHttpStatusRange)) return p;
    if (!seen.insert(c).second) return "status " + std::to_string(c) + " is listed twice";
  }
  return std::nullopt;
}

// "200,204" -> {200, 204}; order kept, as the operator wrote it.
Problem parseExpectList(std::string_view s, std::vector<uint16_t>& out) {
  out.clear();
  const std::string expected = " (expected status codes " + rangeText(kHttpStatusRange) +
                               " separated by commas, e.g. 200,204)";
  size_t start = 0;
  while (true) {
    const size_t comma = s.find(',', start);
    const std::string_view item =
        s.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    const auto v = parseDecimal(item);
    if (!v) return "bad status list " + quoted(s) + expected;
    if (*v < kHttpStatusRange.min || *v > kHttpStatusRange.max) {
      return "status " + quoted(item) + " is out of range" + expected;
    }
    out.push_back(static_cast<uint16_t>(*v));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return checkExpect(out);
}

template <typename T>
T* findByName(std::vector<T>& items, std::string_view name) {
  for (auto& item : items) {
    if (item.name == name) return &item;
  }
  return nullptr;
}

template <typename T>
bool eraseByName(std::vector<T>& items, std::string_view name) {
  const auto it =
      std::find_if(items.begin(), items.end(), [&](const T& item) { return item.name == name; });
  if (it == items.end()) return false;
  items.erase(it);
  return true;
}

// ---------------------------------------------------------------------------
// Tokens.

struct Token {
  std::string value;     // quotes removed, escapes resolved
  std::string_view raw;  // as written, for error messages
};

ConfigError makeError(uint32_t line, std::string_view word, std::string message) {
  return ConfigError{line, std::string(word), std::move(message)};
}

std::optional<ConfigError> tokenize(std::string_view line, uint32_t lineNo,
                                    std::vector<Token>& out) {
  out.clear();
  if (line.size() > kMaxLineLength) {
    return makeError(lineNo, "",
                     "line is longer than " + std::to_string(kMaxLineLength) + " bytes");
  }
  size_t i = 0;
  const size_t n = line.size();
  while (i < n) {
    if (isBlank(line[i])) {
      ++i;
      continue;
    }
    if (line[i] == '#') break;
    Token token;
    const size_t start = i;
    if (line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        const char c = line[i];
        if (c == '\\' && i + 1 < n && (line[i + 1] == '"' || line[i + 1] == '\\')) {
          token.value += line[i + 1];
          i += 2;
          continue;
        }
        if (c == '"') {
          closed = true;
          ++i;
          break;
        }
        if (isControl(c) && c != '\t') {
          return makeError(lineNo, line.substr(start, i + 1 - start),
                           "control character in quoted text");
        }
        token.value += c;
        ++i;
      }
      if (!closed) {
        return makeError(lineNo, line.substr(start), "unterminated quote");
      }
      if (i < n && !isBlank(line[i])) {
        return makeError(lineNo, line.substr(start, i + 1 - start),
                         "text right after a closing quote (leave a blank between words)");
      }
    } else {
      while (i < n && !isBlank(line[i])) {
        if (line[i] == '"') {
          return makeError(lineNo, line.substr(start, i + 1 - start),
                           "quote inside a word (a quoted word must start with \")");
        }
        if (isControl(line[i])) {
          return makeError(lineNo, line.substr(start, i + 1 - start), "control character");
        }
        ++i;
      }
      token.value = std::string(line.substr(start, i - start));
    }
    token.raw = line.substr(start, i - start);
    out.push_back(std::move(token));
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// One statement, applied to the configuration as it reads.

class StatementParser {
 public:
  StatementParser(Config& config, uint32_t line, const std::vector<Token>& tokens)
      : config_(config), line_(line), tokens_(tokens) {}

  std::optional<ConfigError> run() {
    if (atEnd()) return std::nullopt;
    const Token& verb = take();
    if (verb.value == "set") return parseSet(verb);
    if (verb.value == "delete") return parseDelete(verb);
    return error(verb, "unknown command " + quoted(verb.value) + " (expected set or delete)");
  }

 private:
  bool atEnd() const { return pos_ >= tokens_.size(); }
  const Token& take() { return tokens_[pos_++]; }
  bool nextIs(std::string_view word) const { return !atEnd() && tokens_[pos_].value == word; }

  ConfigError error(const Token& word, std::string message) const {
    return makeError(line_, word.raw, std::move(message));
  }
  ConfigError error(std::string_view word, std::string message) const {
    return makeError(line_, word, std::move(message));
  }

  // The value after `key`, or a "missing value" error naming `key`.
  std::optional<ConfigError> takeValue(const Token& key, std::string_view expected,
                                       const Token*& value) {
    if (atEnd()) {
      return error(key, "missing value after " + quoted(key.value) + " (expected " +
                            std::string(expected) + ")");
    }
    value = &take();
    return std::nullopt;
  }

  std::optional<ConfigError> takeNumber(const Token& key, Range range, uint64_t& out) {
    const Token* value = nullptr;
    if (auto e = takeValue(key, rangeText(range), value)) return e;
    const auto v = parseDecimal(value->value);
    if (!v) {
      return error(key,
                   quoted(value->value) + " is not a number (expected " + rangeText(range) + ")");
    }
    if (*v < range.min || *v > range.max) {
      // Quote the number as written: one too long for uint64_t has no value.
      return error(key, key.value + " " + quoted(value->value) + " is out of range (expected " +
                            rangeText(range) + ")");
    }
    out = *v;
    return std::nullopt;
  }

  template <typename T>
  std::optional<ConfigError> takeNumberAs(const Token& key, Range range, T& out) {
    uint64_t v = 0;
    if (auto e = takeNumber(key, range, v)) return e;
    out = static_cast<T>(v);
    return std::nullopt;
  }

  std::optional<ConfigError> takeName(const Token& key, std::string_view what, std::string& out) {
    const Token* value = nullptr;
    if (auto e = takeValue(key, std::string(what) + " name", value)) return e;
    if (auto p = checkName(value->value)) return error(key, *p);
    out = value->value;
    return std::nullopt;
  }

  std::optional<ConfigError> takeAddress(const Token& key, IpAddress& out) {
    const Token* value = nullptr;
    if (auto e = takeValue(key, "an IP address", value)) return e;
    const auto a = IpAddress::parse(value->value);
    if (!a)
      return error(key, "bad address " + quoted(value->value) + " (expected e.g. 198.18.0.10)");
    if (auto p = checkUnicast(*a)) return error(key, *p);
    out = *a;
    return std::nullopt;
  }

  template <size_t N>
  std::optional<ConfigError> takeChoice(const Token& key, std::string_view what,
                                        const std::array<std::string_view, N>& words,
                                        size_t& index) {
    const Token* value = nullptr;
    if (auto e = takeValue(key, joinWords(words), value)) return e;
    for (size_t i = 0; i < N; ++i) {
      if (value->value == words[i]) {
        index = i;
        return std::nullopt;
      }
    }
    return error(key, "unknown " + std::string(what) + " " + quoted(value->value) + " (expected " +
                          joinWords(words) + ")");
  }

  std::optional<ConfigError> expectEnd() {
    if (atEnd()) return std::nullopt;
    const Token& extra = take();
    return error(extra, "unexpected " + quoted(extra.value) + " at the end of the statement");
  }

  // --- set -----------------------------------------------------------------

  std::optional<ConfigError> parseSet(const Token& verb) {
    if (atEnd()) {
      return error(verb, "missing object after 'set' (expected system, service-set, application)");
    }
    const Token& object = take();
    if (object.value == "system") return setSystem(object);
    if (object.value == "service-set") return setServiceSet(object);
    if (object.value == "application") return setApplication(object);
    return error(object, "unknown keyword " + quoted(object.value) +
                             " (expected system, service-set, application)");
  }

  std::optional<ConfigError> setSystem(const Token& object) {
    if (atEnd()) {
      return error(object, "missing attribute (expected " + std::string(kSystemKeywords) + ")");
    }
    SystemConfig& system = config_.system;
    while (!atEnd()) {
      const Token& key = take();
      const Token* value = nullptr;
      if (key.value == "control-channel") {
        if (auto e = takeValue(key, "ADDR:PORT", value)) return e;
        if (auto p = checkControlChannel(value->value)) return error(key, *p);
        system.controlChannel = value->value;
      } else if (key.value == "affinity-store") {
        if (auto e = takeValue(key, "local or redis://HOST:PORT[/DB]", value)) return e;
        if (auto p = checkAffinityStore(value->value)) return error(key, *p);
        system.affinityStore = value->value;
      } else if (key.value == "affinity-store-password-file") {
        if (auto e = takeValue(key, "an absolute path", value)) return e;
        if (auto p = checkPasswordFile(value->value)) return error(key, *p);
        system.affinityStorePasswordFile = value->value;
      } else if (key.value == "affinity-store-timeout") {
        if (auto e = takeNumberAs(key, kStoreTimeoutRange, system.affinityStoreTimeoutMs)) {
          return e;
        }
      } else if (key.value == "syslog-file") {
        if (auto e = takeValue(key, "an absolute path", value)) return e;
        if (auto p = checkSyslogFile(value->value)) return error(key, *p);
        system.syslogFile = value->value;
      } else {
        return error(key, "unknown system keyword " + quoted(key.value) + " (expected " +
                              std::string(kSystemKeywords) + ")");
      }
    }
    return std::nullopt;
  }

  std::optional<ConfigError> setServiceSet(const Token& object) {
    std::string name;
    if (auto e = takeName(object, "service set", name)) return e;
    static constexpr std::string_view kExpected = "inside-interface, outside-interface";
    // Unlike an application (which always has a port) or a server (a weight),
    // a service set has no attribute with a default value, so a bare `set
    // service-set NAME` is the only way to write one whose interfaces were
    // both deleted while editing. Validation still requires both interfaces.
    ServiceSetConfig* set = findByName(config_.serviceSets, name);
    if (set == nullptr) {
      ServiceSetConfig created;
      created.name = name;
      config_.serviceSets.push_back(std::move(created));
      set = &config_.serviceSets.back();
    }
    set->line.number = line_;
    while (!atEnd()) {
      const Token& key = take();
      if (key.value == "inside-interface") {
        if (auto e = takeName(key, "interface", set->insideInterface)) return e;
      } else if (key.value == "outside-interface") {
        if (auto e = takeName(key, "interface", set->outsideInterface)) return e;
      } else {
        return error(key, "unknown service-set keyword " + quoted(key.value) + " (expected " +
                              std::string(kExpected) + ")");
      }
    }
    return std::nullopt;
  }

  std::optional<ConfigError> setApplication(const Token& object) {
    std::string name;
    if (auto e = takeName(object, "application", name)) return e;
    const Token& nameToken = tokens_[pos_ - 1];
    if (atEnd()) {
      return error(nameToken, "missing attribute after application " + quoted(name) +
                                  " (expected " + std::string(kApplicationKeywords) + ")");
    }
    ApplicationConfig* app = findByName(config_.applications, name);
    if (app == nullptr) {
      ApplicationConfig created;
      created.name = name;
      config_.applications.push_back(std::move(created));
      app = &config_.applications.back();
      app->line.number = line_;
    }
    while (!atEnd()) {
      const Token& key = take();
      if (key.value == "server") return setServer(*app, key);
      app->line.number = line_;
      if (key.value == "service-set") {
        if (auto e = takeName(key, "service set", app->serviceSet)) return e;
        app->serviceSetLine.number = line_;
      } else if (key.value == "facade") {
        if (auto e = takeAddress(key, app->facade)) return e;
        app->facadeSet = true;
        app->facadeLine.number = line_;
      } else if (key.value == "port") {
        if (auto e = takeNumberAs(key, kPortRange, app->port)) return e;
        app->portLine.number = line_;
      } else if (key.value == "algorithm") {
        size_t i = 0;
        if (auto e = takeChoice(key, "algorithm", kAlgorithmWords, i)) return e;
        app->algorithm = kAlgorithms[i];
      } else if (key.value == "persistence") {
        static constexpr std::array<std::string_view, 2> kModes = {"source-address", "none"};
        size_t i = 0;
        if (auto e = takeChoice(key, "persistence", kModes, i)) return e;
        app->persistence = i == 0;
        if (nextIs("timeout")) {
          const Token& timeoutKey = take();
          if (auto e = takeNumberAs(timeoutKey, kTimeoutRange, app->persistenceTimeoutSeconds)) {
            return e;
          }
        }
      } else if (key.value == "session-timeout") {
        if (auto e = takeNumberAs(key, kTimeoutRange, app->sessionTimeoutSeconds)) return e;
      } else if (key.value == "http-filter") {
        size_t i = 0;
        if (auto e = takeChoice(key, "http-filter setting", kSwitchWords, i)) return e;
        app->httpFilter = i == 0;
      } else if (key.value == "session-sync") {
        size_t i = 0;
        if (auto e = takeChoice(key, "session-sync setting", kSwitchWords, i)) return e;
        app->sessionSync = i == 0;
      } else if (key.value == "monitor") {
        return setMonitor(*app, key);
      } else {
        return error(key, "unknown application keyword " + quoted(key.value) + " (expected " +
                              std::string(kApplicationKeywords) + ")");
      }
    }
    return std::nullopt;
  }

  // Takes the rest of the line: every monitor keyword is distinct from the
  // application's, but `timeout` would be ambiguous with persistence's.
  std::optional<ConfigError> setMonitor(ApplicationConfig& app, const Token& object) {
    static constexpr std::string_view kExpected =
        "type, path, expect, expect-body, interval, timeout, rise, fall";
    if (atEnd()) {
      return error(object,
                   "missing attribute after 'monitor' (expected " + std::string(kExpected) + ")");
    }
    MonitorConfig& m = app.monitor;
    app.monitorLine.number = line_;
    while (!atEnd()) {
      const Token& key = take();
      const Token* value = nullptr;
      if (key.value == "type") {
        size_t i = 0;
        if (auto e = takeChoice(key, "monitor type", kMonitorTypeWords, i)) return e;
        m.type = kMonitorTypes[i];
      } else if (key.value == "path") {
        if (auto e = takeValue(key, "a path starting with /", value)) return e;
        if (auto p = checkHttpPath(value->value)) return error(key, *p);
        m.path = value->value;
      } else if (key.value == "expect") {
        if (auto e = takeValue(key, "status codes, e.g. 200,204", value)) return e;
        if (auto p = parseExpectList(value->value, m.expect)) return error(key, *p);
      } else if (key.value == "expect-body") {
        if (auto e = takeValue(key, "text the body must contain", value)) return e;
        if (auto p = checkExpectBody(value->value)) return error(key, *p);
        m.expectBody = value->value;
      } else if (key.value == "interval") {
        if (auto e = takeNumberAs(key, kMonitorSecondsRange, m.intervalSeconds)) return e;
      } else if (key.value == "timeout") {
        if (auto e = takeNumberAs(key, kMonitorSecondsRange, m.timeoutSeconds)) return e;
      } else if (key.value == "rise") {
        if (auto e = takeNumberAs(key, kRiseFallRange, m.rise)) return e;
      } else if (key.value == "fall") {
        if (auto e = takeNumberAs(key, kRiseFallRange, m.fall)) return e;
      } else {
        return error(key, "unknown monitor keyword " + quoted(key.value) + " (expected " +
                              std::string(kExpected) + ")");
      }
    }
    return std::nullopt;
  }

  // Takes the rest of the line, since a server's `port` is not the façade's.
  std::optional<ConfigError> setServer(ApplicationConfig& app, const Token& object) {
    std::string name;
    if (auto e = takeName(object, "server", name)) return e;
    const Token& nameToken = tokens_[pos_ - 1];
    static constexpr std::string_view kExpected = "address, port, weight, max-connections";
    if (atEnd()) {
      return error(nameToken, "missing attribute after server " + quoted(name) + " (expected " +
                                  std::string(kExpected) + ")");
    }
    ServerConfig* server = findByName(app.servers, name);
    if (server == nullptr) {
      ServerConfig created;
      created.name = name;
      app.servers.push_back(std::move(created));
      server = &app.servers.back();
    }
    server->line.number = line_;
    while (!atEnd()) {
      const Token& key = take();
      if (key.value == "address") {
        if (auto e = takeAddress(key, server->address)) return e;
        server->addressLine.number = line_;
      } else if (key.value == "port") {
        if (auto e = takeNumberAs(key, kPortRange, server->port)) return e;
      } else if (key.value == "weight") {
        if (auto e = takeNumberAs(key, kWeightRange, server->weight)) return e;
      } else if (key.value == "max-connections") {
        if (auto e = takeNumberAs(key, kMaxConnectionsRange, server->maxConnections)) return e;
      } else {
        return error(key, "unknown server keyword " + quoted(key.value) + " (expected " +
                              std::string(kExpected) + ")");
      }
    }
    return std::nullopt;
  }

  // --- delete --------------------------------------------------------------

  std::optional<ConfigError> parseDelete(const Token& verb) {
    if (atEnd()) {
      return error(verb,
                   "missing object after 'delete' (expected system, service-set, application)");
    }
    const Token& object = take();
    std::optional<ConfigError> e;
    if (object.value == "system") {
      e = deleteSystem(object);
    } else if (object.value == "service-set") {
      e = deleteServiceSet(object);
    } else if (object.value == "application") {
      e = deleteApplication(object);
    } else {
      return error(object, "unknown keyword " + quoted(object.value) +
                               " (expected system, service-set, application)");
    }
    if (e) return e;
    return expectEnd();
  }

  std::optional<ConfigError> deleteSystem(const Token& object) {
    if (atEnd()) {
      return error(object, "missing attribute (expected " + std::string(kSystemKeywords) + ")");
    }
    const Token& key = take();
    const SystemConfig defaults;
    if (key.value == "control-channel") {
      config_.system.controlChannel = defaults.controlChannel;
    } else if (key.value == "affinity-store") {
      config_.system.affinityStore = defaults.affinityStore;
    } else if (key.value == "affinity-store-password-file") {
      config_.system.affinityStorePasswordFile = defaults.affinityStorePasswordFile;
    } else if (key.value == "affinity-store-timeout") {
      config_.system.affinityStoreTimeoutMs = defaults.affinityStoreTimeoutMs;
    } else if (key.value == "syslog-file") {
      config_.system.syslogFile = defaults.syslogFile;
    } else {
      return error(key, "unknown system keyword " + quoted(key.value) + " (expected " +
                            std::string(kSystemKeywords) + ")");
    }
    return std::nullopt;
  }

  // Finds the object named by the next token, or reports that it is absent.
  template <typename T>
  std::optional<ConfigError> takeExisting(const Token& object, std::string_view what,
                                          std::vector<T>& items, T*& found,
                                          std::string_view where = {}) {
    std::string name;
    if (auto e = takeName(object, what, name)) return e;
    found = findByName(items, name);
    if (found == nullptr) {
      return error(tokens_[pos_ - 1],
                   "there is no " + std::string(what) + " " + quoted(name) + std::string(where));
    }
    return std::nullopt;
  }

  std::optional<ConfigError> deleteServiceSet(const Token& object) {
    ServiceSetConfig* set = nullptr;
    if (auto e = takeExisting(object, "service set", config_.serviceSets, set)) return e;
    if (atEnd()) {
      eraseByName(config_.serviceSets, std::string(set->name));
      return std::nullopt;
    }
    const Token& key = take();
    if (key.value == "inside-interface") {
      set->insideInterface.clear();
    } else if (key.value == "outside-interface") {
      set->outsideInterface.clear();
    } else {
      return error(key, "unknown service-set keyword " + quoted(key.value) +
                            " (expected inside-interface, outside-interface)");
    }
    set->line.number = line_;
    return std::nullopt;
  }

  std::optional<ConfigError> deleteApplication(const Token& object) {
    ApplicationConfig* app = nullptr;
    if (auto e = takeExisting(object, "application", config_.applications, app)) return e;
    if (atEnd()) {
      eraseByName(config_.applications, std::string(app->name));
      return std::nullopt;
    }
    const Token& key = take();
    if (key.value == "server") return deleteServer(*app, key);
    const ApplicationConfig defaults;
    const std::string of = " of application " + quoted(app->name);
    app->line.number = line_;
    if (key.value == "service-set") {
      if (app->serviceSet.empty()) return error(key, "there is no service-set" + of + " to delete");
      app->serviceSet.clear();
      app->serviceSetLine.number = line_;
    } else if (key.value == "facade") {
      if (!app->facadeSet) return error(key, "there is no facade" + of + " to delete");
      app->facade = IpAddress{};
      app->facadeSet = false;
      app->facadeLine.number = line_;
    } else if (key.value == "port") {
      app->port = defaults.port;
      app->portLine.number = line_;
    } else if (key.value == "algorithm") {
      app->algorithm = defaults.algorithm;
    } else if (key.value == "persistence") {
      if (!app->persistence &&
          app->persistenceTimeoutSeconds == defaults.persistenceTimeoutSeconds) {
        return error(key, "there is no persistence" + of + " to delete");
      }
      app->persistence = defaults.persistence;
      app->persistenceTimeoutSeconds = defaults.persistenceTimeoutSeconds;
    } else if (key.value == "session-timeout") {
      app->sessionTimeoutSeconds = defaults.sessionTimeoutSeconds;
    } else if (key.value == "http-filter") {
      app->httpFilter = defaults.httpFilter;
    } else if (key.value == "session-sync") {
      app->sessionSync = defaults.sessionSync;
    } else if (key.value == "monitor") {
      return deleteMonitor(*app, key);
    } else {
      return error(key, "unknown application keyword " + quoted(key.value) + " (expected " +
                            std::string(kApplicationKeywords) + ")");
    }
    return std::nullopt;
  }

  std::optional<ConfigError> deleteMonitor(ApplicationConfig& app, const Token& object) {
    const MonitorConfig defaults;
    if (app.monitor == defaults) {
      return error(object, "there is no monitor of application " + quoted(app.name) + " to delete");
    }
    app.monitorLine.number = line_;
    if (atEnd()) {
      app.monitor = defaults;
      return std::nullopt;
    }
    const Token& key = take();
    MonitorConfig& m = app.monitor;
    if (key.value == "type") {
      m.type = defaults.type;
    } else if (key.value == "path") {
      m.path = defaults.path;
    } else if (key.value == "expect") {
      m.expect = defaults.expect;
    } else if (key.value == "expect-body") {
      m.expectBody = defaults.expectBody;
    } else if (key.value == "interval") {
      m.intervalSeconds = defaults.intervalSeconds;
    } else if (key.value == "timeout") {
      m.timeoutSeconds = defaults.timeoutSeconds;
    } else if (key.value == "rise") {
      m.rise = defaults.rise;
    } else if (key.value == "fall") {
      m.fall = defaults.fall;
    } else {
      return error(key, "unknown monitor keyword " + quoted(key.value) +
                            " (expected type, path, expect, expect-body, interval, timeout, "
                            "rise, fall)");
    }
    return std::nullopt;
  }

  std::optional<ConfigError> deleteServer(ApplicationConfig& app, const Token& object) {
    ServerConfig* server = nullptr;
    const std::string where = " in application " + quoted(app.name);
    if (auto e = takeExisting(object, "server", app.servers, server, where)) return e;
    if (atEnd()) {
      eraseByName(app.servers, std::string(server->name));
      return std::nullopt;
    }
    const Token& key = take();
    const ServerConfig defaults;
    server->line.number = line_;
    if (key.value == "address") {
      server->address = defaults.address;
      server->addressLine.number = line_;
    } else if (key.value == "port") {
      server->port = defaults.port;
    } else if (key.value == "weight") {
      server->weight = defaults.weight;
    } else if (key.value == "max-connections") {
      server->maxConnections = defaults.maxConnections;
    } else {
      return error(key, "unknown server keyword " + quoted(key.value) +
                            " (expected address, port, weight, max-connections)");
    }
    return std::nullopt;
  }

  Config& config_;
  const uint32_t line_;
  const std::vector<Token>& tokens_;
  size_t pos_ = 0;
};

// Line numbers in `base` refer to some other text; reporting them against the
// text being parsed would point the operator at the wrong line.
void clearSourceLines(Config& config) {
  for (auto& set : config.serviceSets) set.line = {};
  for (auto& app : config.applications) {
    app.line = {};
    app.serviceSetLine = {};
    app.facadeLine = {};
    app.portLine = {};
    app.monitorLine = {};
    for (auto& server : app.servers) {
      server.line = {};
      server.addressLine = {};
    }
  }
}

// ---------------------------------------------------------------------------
// Validation: collects every problem, then reports the earliest line, which
// is the one an operator reading the file top-down expects to fix first.

class Validator {
 public:
  explicit Validator(const Config& config) : config_(config) {}

  std::optional<ConfigError> run() {
    checkSystem();
    checkServiceSets();
    for (const auto& app : config_.applications) checkApplication(app);
    checkApplicationNames();
    checkFacadesUnique();
    checkFacadesNotServers();
    if (errors_.empty()) return std::nullopt;
    // stable: among equal lines, the order of the checks above decides.
    return *std::min_element(
        errors_.begin(), errors_.end(),
        [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
  }

 private:
  void add(SourceLine line, std::string_view word, std::string message) {
    errors_.push_back(makeError(line.number, word, std::move(message)));
  }

  static SourceLine later(SourceLine a, SourceLine b) { return a.number >= b.number ? a : b; }

  void checkSystem() {
    const SystemConfig& s = config_.system;
    if (auto p = checkControlChannel(s.controlChannel)) add({}, "control-channel", *p);
    if (auto p = checkAffinityStore(s.affinityStore)) add({}, "affinity-store", *p);
    if (!s.affinityStorePasswordFile.empty()) {
      if (auto p = checkPasswordFile(s.affinityStorePasswordFile)) {
        add({}, "affinity-store-password-file", *p);
      }
    }
    if (auto p =
            checkRange("affinity-store-timeout", s.affinityStoreTimeoutMs, kStoreTimeoutRange)) {
      add({}, "affinity-store-timeout", *p);
    }
    if (auto p = checkSyslogFile(s.syslogFile)) add({}, "syslog-file", *p);
  }

  void checkServiceSets() {
    std::map<std::string_view, const ServiceSetConfig*> names;
    // An interface belongs to one service set, or the data plane could not
    // tell which set a packet arriving on it is for.
    std::map<std::string_view, const ServiceSetConfig*> interfaces;
    for (const auto& set : config_.serviceSets) {
      if (auto p = checkName(set.name)) add(set.line, "service-set", *p);
      if (!names.emplace(set.name, &set).second) {
        add(set.line, set.name, "service set " + quoted(set.name) + " is defined twice");
      }
      const std::string of = " of service set " + quoted(set.name);
      const std::pair<std::string_view, const std::string*> sides[] = {
          {"inside-interface", &set.insideInterface}, {"outside-interface", &set.outsideInterface}};
      for (const auto& [keyword, interface] : sides) {
        if (interface->empty()) {
          add(set.line, set.name,
              "service set " + quoted(set.name) + " has no " + std::string(keyword));
          continue;
        }
        if (auto p = checkName(*interface)) {
          add(set.line, keyword, *p);
          continue;
        }
        const auto [it, inserted] = interfaces.emplace(*interface, &set);
        if (!inserted && it->second != &set) {
          add(later(set.line, it->second->line), keyword,
              "interface " + quoted(*interface) + of + " is already used by service set " +
                  quoted(it->second->name));
        }
      }
      if (!set.insideInterface.empty() && set.insideInterface == set.outsideInterface) {
        add(set.line, "outside-interface",
            "service set " + quoted(set.name) + " uses interface " + quoted(set.insideInterface) +
                " as both inside and outside");
      }
    }
  }

  bool serviceSetDefined(std::string_view name) const {
    return std::any_of(config_.serviceSets.begin(), config_.serviceSets.end(),
                       [&](const ServiceSetConfig& s) { return s.name == name; });
  }

  void checkApplication(const ApplicationConfig& app) {
    const std::string of = " of application " + quoted(app.name);
    if (auto p = checkName(app.name)) add(app.line, "application", *p);

    // Without a service set and a façade nothing reaches the application, so
    // its servers have, in effect, no application. With servers, blame the
    // first one's line: usually a server line written for an application that
    // was never set up. A later `delete` of either attribute is blamed instead.
    std::string missing;
    SourceLine blame = app.servers.empty() ? app.line : app.servers.front().line;
    std::string hint = "set application " + app.name;
    if (app.serviceSet.empty()) {
      missing = "no service-set";
      hint += " service-set NAME";
      blame = later(blame, app.serviceSetLine);
    } else if (!serviceSetDefined(app.serviceSet)) {
      add(app.serviceSetLine.number != 0 ? app.serviceSetLine : app.line, "service-set",
          "service set " + quoted(app.serviceSet) + " of application " + quoted(app.name) +
              " is not defined");
    }
    if (!app.facadeSet) {
      missing += missing.empty() ? "no facade" : " and no facade";
      hint += " facade ADDR";
      blame = later(blame, app.facadeLine);
    } else if (auto p = checkUnicast(app.facade)) {
      add(app.facadeLine, "facade", *p);
    } else if (!app.facade.isV4()) {
      add(app.facadeLine, "facade",
          "IPv6 applications are not supported yet (facade " + app.facade.toString() + of +
              "; the data plane only NATs IPv4 for now)");
    }
    if (!missing.empty()) {
      const std::string problem = "application " + quoted(app.name) + " has " + missing;
      add(blame, app.name,
          (app.servers.empty() ? problem
                               : "server " + quoted(app.servers.front().name) +
                                     " has no usable application: " + problem) +
              " (" + hint + ")");
    }
    if (auto p = checkRange("port", app.port, kPortRange)) add(app.portLine, "port", *p);
    if (std::string_view(algorithmName(app.algorithm)) == "unknown") {
      add(app.line, "algorithm", "unknown algorithm" + of);
    }
    if (auto p = checkRange("persistence timeout", app.persistenceTimeoutSeconds, kTimeoutRange)) {
      add(app.line, "persistence", *p);
    }
    if (auto p = checkRange("session-timeout", app.sessionTimeoutSeconds, kTimeoutRange)) {
      add(app.line, "session-timeout", *p);
    }
    checkMonitor(app);
    checkServers(app);
  }

  void checkMonitor(const ApplicationConfig& app) {
    const MonitorConfig& m = app.monitor;
    const SourceLine line = app.monitorLine.number != 0 ? app.monitorLine : app.line;
    const std::string of = " of application " + quoted(app.name);
    if (m.type == MonitorType::kNone) {
      if (!(m == MonitorConfig{})) {
        add(line, "monitor",
            "monitor" + of + " has no type (set it with: monitor type icmp|tcp|http)");
      }
      return;
    }
    if (std::string_view(monitorTypeName(m.type)) == "unknown") {
      add(line, "type", "unknown monitor type" + of);
    }
    if (auto p = checkRange("interval", m.intervalSeconds, kMonitorSecondsRange)) {
      add(line, "interval", *p);
    }
    if (auto p = checkRange("timeout", m.timeoutSeconds, kMonitorSecondsRange)) {
      add(line, "timeout", *p);
    } else if (m.timeoutSeconds > m.intervalSeconds) {
      add(line, "timeout",
          "monitor timeout " + std::to_string(m.timeoutSeconds) + " s" + of +
              " is longer than its interval " + std::to_string(m.intervalSeconds) +
              " s (a check would still run when the next one starts)");
    }
    if (auto p = checkRange("rise", m.rise, kRiseFallRange)) add(line, "rise", *p);
    if (auto p = checkRange("fall", m.fall, kRiseFallRange)) add(line, "fall", *p);
    // Path, expect and expect-body are kept for every type (they only matter
    // to HTTP), so that switching a monitor's type loses nothing; they must
    // still be well formed, to survive configToText().
    if (auto p = checkHttpPath(m.path)) add(line, "path", *p);
    if (auto p = checkExpect(m.expect)) add(line, "expect", *p);
    if (auto p = checkExpectBody(m.expectBody)) add(line, "expect-body", *p);
  }

  void checkServers(const ApplicationConfig& app) {
    const std::string of = " of application " + quoted(app.name);
    std::set<std::string_view> names;
    std::map<std::pair<IpAddress, uint16_t>, const ServerConfig*> endpoints;
    for (const auto& s : app.servers) {
      const std::string server = "server " + quoted(s.name) + of;
      if (auto p = checkName(s.name)) add(s.line, "server", *p);
      if (!names.insert(s.name).second) add(s.line, s.name, server + " is defined twice");
      if (auto p = checkRange("weight", s.weight, kWeightRange)) add(s.line, "weight", *p);
      if (auto p = checkRange("max-connections", s.maxConnections, kMaxConnectionsRange)) {
        add(s.line, "max-connections", *p);
      }
      if (s.address == IpAddress{}) {
        add(s.line, s.name, server + " has no address");
        continue;
      }
      const SourceLine addressLine = s.addressLine.number != 0 ? s.addressLine : s.line;
      if (auto p = checkUnicast(s.address)) {
        add(addressLine, "address", *p);
        continue;
      }
      if (app.facadeSet && app.facade.isV4() != s.address.isV4()) {
        add(later(addressLine, app.facadeLine), "address",
            server + " has " + (s.address.isV4() ? "IPv4" : "IPv6") + " address " +
                s.address.toString() + " but the facade " + app.facade.toString() + " is " +
                (app.facade.isV4() ? "IPv4" : "IPv6") +
                " (the data plane does not translate between families)");
      } else if (!s.address.isV4()) {
        add(addressLine, "address",
            "IPv6 applications are not supported yet (" + server + " has address " +
                s.address.toString() + "; the data plane only NATs IPv4 for now)");
      }
      const auto [it, inserted] = endpoints.emplace(std::pair(s.address, app.serverPort(s)), &s);
      if (!inserted) {
        add(s.line, "address",
            server + " has the same address and port, " +
                formatEndpoint(s.address, app.serverPort(s)) + ", as server " +
                quoted(it->second->name));
      }
    }
  }

  void checkApplicationNames() {
    std::set<std::string_view> names;
    for (const auto& app : config_.applications) {
      if (!names.insert(app.name).second) {
        add(app.line, app.name, "application " + quoted(app.name) + " is defined twice");
      }
    }
  }

  // The line that made two applications collide is the later of where each
  // set its façade or port; the application owning it is "the second".
  static SourceLine facadeConflictLine(const ApplicationConfig& app) {
    return later(app.facadeLine, app.portLine);
  }

  void checkFacadesUnique() {
    std::map<std::tuple<std::string_view, IpAddress, uint16_t>, const ApplicationConfig*> seen;
    for (const auto& app : config_.applications) {
      if (!app.facadeSet || app.serviceSet.empty()) continue;
      const auto [it, inserted] =
          seen.emplace(std::tuple(std::string_view(app.serviceSet), app.facade, app.port), &app);
      if (inserted) continue;
      const ApplicationConfig* first = it->second;
      const ApplicationConfig* second = &app;
      if (facadeConflictLine(*first).number > facadeConflictLine(*second).number) {
        std::swap(first, second);
      }
      const bool portLater = second->portLine.number > second->facadeLine.number;
      add(facadeConflictLine(*second), portLater ? "port" : "facade",
          "application " + quoted(second->name) + " has the same facade " +
              formatEndpoint(app.facade, app.port) + " as application " + quoted(first->name) +
              " in service set " + quoted(app.serviceSet));
    }
  }

  // A façade that is also a server address would make the data plane NAT a
  // server's own traffic back to itself.
  void checkFacadesNotServers() {
    struct Owner {
      const ApplicationConfig* app;
      const ServerConfig* server;
    };
    std::map<IpAddress, Owner> serverAddresses;
    for (const auto& app : config_.applications) {
      for (const auto& s : app.servers) {
        if (s.address != IpAddress{}) serverAddresses.emplace(s.address, Owner{&app, &s});
      }
    }
    for (const auto& app : config_.applications) {
      if (!app.facadeSet) continue;
      const auto it = serverAddresses.find(app.facade);
      if (it == serverAddresses.end()) continue;
      const ServerConfig& s = *it->second.server;
      const SourceLine addressLine = s.addressLine.number != 0 ? s.addressLine : s.line;
      const bool facadeLater = app.facadeLine.number >= addressLine.number;
      add(later(app.facadeLine, addressLine), facadeLater ? "facade" : "address",
          app.facade.toString() + " is both the facade of application " + quoted(app.name) +
              " and the address of server " + quoted(s.name) + " of application " +
              quoted(it->second.app->name));
    }
  }

  const Config& config_;
  std::vector<ConfigError> errors_;
};

// ---------------------------------------------------------------------------
// Text output.

std::string token(std::string_view s) {
  const bool plain = !s.empty() && s.front() != '#' && std::none_of(s.begin(), s.end(), [](char c) {
    return isBlank(c) || c == '"' || isControl(c);
  });
  if (plain) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string expectList(const std::vector<uint16_t>& codes) {
  std::string out;
  for (uint16_t c : codes) {
    if (!out.empty()) out += ',';
    out += std::to_string(c);
  }
  return out;
}

}  // namespace

std::string ConfigError::toString() const {
  std::string out;
  if (line != 0) out += "line " + std::to_string(line) + ": ";
  if (!word.empty()) out += quoted(word) + ": ";
  out += escapeControl(message);
  return out;
}

ConfigResult applyConfig(std::string_view text, const Config& base) {
  ConfigResult result;
  result.config = base;
  clearSourceLines(result.config);
  std::vector<Token> tokens;
  uint32_t lineNo = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    if (lineNo == std::numeric_limits<uint32_t>::max()) {
      result.error = makeError(lineNo, "", "too many lines");
      return result;
    }
    ++lineNo;
    if (auto e = tokenize(text.substr(start, end - start), lineNo, tokens)) {
      result.error = std::move(e);
      return result;
    }
    if (auto e = StatementParser(result.config, lineNo, tokens).run()) {
      result.error = std::move(e);
      return result;
    }
    start = end + 1;
  }
  return result;
}

ConfigResult parseConfig(std::string_view text, const Config& base) {
  ConfigResult result = applyConfig(text, base);
  if (result.ok()) result.error = validateConfig(result.config);
  return result;
}

std::optional<ConfigError> validateConfig(const Config& config) {
  return Validator(config).run();
}

std::string configToText(const Config& config) {
  std::string out;
  auto line = [&out](const std::string& s) {
    out += s;
    out += '\n';
  };
  const SystemConfig systemDefaults;
  if (config.system.controlChannel != systemDefaults.controlChannel) {
    line("set system control-channel " + token(config.system.controlChannel));
  }
  if (config.system.affinityStore != systemDefaults.affinityStore) {
    line("set system affinity-store " + token(config.system.affinityStore));
  }
  if (config.system.affinityStorePasswordFile != systemDefaults.affinityStorePasswordFile) {
    line("set system affinity-store-password-file " +
         token(config.system.affinityStorePasswordFile));
  }
  if (config.system.affinityStoreTimeoutMs != systemDefaults.affinityStoreTimeoutMs) {
    line("set system affinity-store-timeout " +
         std::to_string(config.system.affinityStoreTimeoutMs));
  }
  if (config.system.syslogFile != systemDefaults.syslogFile) {
    line("set system syslog-file " + token(config.system.syslogFile));
  }

  for (const auto& set : config.serviceSets) {
    std::string s = "set service-set " + token(set.name);
    if (!set.insideInterface.empty()) s += " inside-interface " + token(set.insideInterface);
    if (!set.outsideInterface.empty()) s += " outside-interface " + token(set.outsideInterface);
    line(s);
  }

  const ApplicationConfig appDefaults;
  const MonitorConfig monitorDefaults;
  const ServerConfig serverDefaults;
  for (const auto& app : config.applications) {
    const std::string prefix = "set application " + token(app.name);
    // Always at least this line, with the port, so that an application with
    // nothing else set still exists after a round trip.
    std::string head = prefix;
    if (!app.serviceSet.empty()) head += " service-set " + token(app.serviceSet);
    if (app.facadeSet) head += " facade " + app.facade.toString();
    head += " port " + std::to_string(app.port);
    line(head);
    if (app.algorithm != appDefaults.algorithm) {
      line(prefix + " algorithm " + algorithmName(app.algorithm));
    }
    if (app.persistence || app.persistenceTimeoutSeconds != appDefaults.persistenceTimeoutSeconds) {
      line(prefix + " persistence " + (app.persistence ? "source-address" : "none") + " timeout " +
           std::to_string(app.persistenceTimeoutSeconds));
    }
    if (app.sessionTimeoutSeconds != appDefaults.sessionTimeoutSeconds) {
      line(prefix + " session-timeout " + std::to_string(app.sessionTimeoutSeconds));
    }
    if (app.httpFilter != appDefaults.httpFilter) {
      line(prefix + " http-filter " + (app.httpFilter ? "on" : "off"));
    }
    if (app.sessionSync != appDefaults.sessionSync) {
      line(prefix + " session-sync " + (app.sessionSync ? "on" : "off"));
    }
    const MonitorConfig& m = app.monitor;
    if (!(m == monitorDefaults)) {
      std::string s = prefix + " monitor";
      if (m.type != MonitorType::kNone) s += std::string(" type ") + monitorTypeName(m.type);
      s += " path " + token(m.path);
      if (!m.expect.empty()) s += " expect " + expectList(m.expect);
      if (!m.expectBody.empty()) s += " expect-body " + token(m.expectBody);
      s += " interval " + std::to_string(m.intervalSeconds);
      s += " timeout " + std::to_string(m.timeoutSeconds);
      s += " rise " + std::to_string(m.rise);
      s += " fall " + std::to_string(m.fall);
      line(s);
    }
    for (const auto& server : app.servers) {
      const std::string serverPrefix = prefix + " server " + token(server.name);
      std::string s = serverPrefix;
      if (server.address != IpAddress{}) s += " address " + server.address.toString();
      if (server.port != serverDefaults.port) s += " port " + std::to_string(server.port);
      if (server.weight != serverDefaults.weight) s += " weight " + std::to_string(server.weight);
      if (server.maxConnections != serverDefaults.maxConnections) {
        s += " max-connections " + std::to_string(server.maxConnections);
      }
      // A server line needs an attribute; one being edited may have none
      // yet (no address, every default), and must still exist after a
      // round trip.
      if (s.size() == serverPrefix.size()) s += " weight " + std::to_string(server.weight);
      line(s);
    }
  }
  return out;
}

}  // namespace fulcrum
