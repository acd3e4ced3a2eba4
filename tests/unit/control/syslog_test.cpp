#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control-plane/syslog/syslog_format.h"
#include "control-plane/syslog/syslog_writer.h"

namespace fulcrum {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kT = 1795306247123456;  // 2026-11-22T00:10:47.123456Z

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/fulcrum-syslog-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> readLines(const std::string& path) {
  return splitLines(readFile(path));
}

LogRecord requestRecord() {
  LogRecord r;
  r.timeUnixUs = kT;
  r.severity = Severity::kInfo;
  r.appName = "fulcrum-data";
  r.procId = "engine-1";
  r.msgId = "request";
  r.fields = {{"client", "198.18.0.1:40000"}, {"facade", "198.18.0.10:80"},
              {"server", "198.18.1.11:8080"}, {"method", "GET"},
              {"host", "shop.example"},       {"path", "/index.html"}};
  r.message = "GET /index.html";
  return r;
}

bool isValidUtf8SingleLine(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) return false;
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    if (c >= 0x80 && (c & 0xC0) == 0x80) return false;
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// ---------------------------------------------------------------- format()

TEST(SyslogFormat, RequestRecord) {
  EXPECT_EQ(SyslogWriter::format(requestRecord(), "lb1", 16),
            "<134>1 2026-11-22T00:10:47.123456Z lb1 fulcrum-data engine-1 request "
            "[fulcrum@32473 client=\"198.18.0.1:40000\" facade=\"198.18.0.10:80\" "
            "server=\"198.18.1.11:8080\" method=\"GET\" host=\"shop.example\" "
            "path=\"/index.html\"] GET /index.html");
}

TEST(SyslogFormat, PriorityIsFacilityTimesEightPlusSeverity) {
  struct Case {
    Severity severity;
    int facility;
    std::string pri;
  };
  const Case cases[] = {
      {Severity::kEmergency, 0, "<0>"}, {Severity::kDebug, 23, "<191>"},
      {Severity::kError, 4, "<35>"},    {Severity::kNotice, 16, "<133>"},
      {Severity::kWarning, 1, "<12>"},  {Severity::kAlert, 20, "<161>"},
      {Severity::kCritical, 3, "<26>"}, {Severity::kInfo, 24, "<134>"},  // bad facility: local0
      {Severity::kInfo, -1, "<134>"},   {static_cast<Severity>(9), 16, "<135>"},  // clamped
  };
  for (const Case& c : cases) {
    LogRecord r;
    r.timeUnixUs = kT;
    r.severity = c.severity;
    EXPECT_EQ(SyslogWriter::format(r, "h", c.facility),
              c.pri + "1 2026-11-22T00:10:47.123456Z h - - - -")
        << "facility " << c.facility << " severity " << static_cast<int>(c.severity);
  }
}

TEST(SyslogFormat, Timestamps) {
  const std::pair<int64_t, std::string> cases[] = {
      {1, "1970-01-01T00:00:00.000001Z"},
      {1795306247000007, "2026-11-22T00:10:47.000007Z"},
      {1709251199999999, "2024-02-29T23:59:59.999999Z"},  // leap day
      {1709251200000000, "2024-03-01T00:00:00.000000Z"},
      {946684799999999, "1999-12-31T23:59:59.999999Z"},
      {946684800000000, "2000-01-01T00:00:00.000000Z"},
      {951782400000000, "2000-02-29T00:00:00.000000Z"},   // divisible by 400: leap
      {4107542399999999, "2100-02-28T23:59:59.999999Z"},  // divisible by 100: not leap
      {4107542400000000, "2100-03-01T00:00:00.000000Z"},
      {-1, "1969-12-31T23:59:59.999999Z"},
      {253402300799999999, "9999-12-31T23:59:59.999999Z"},
      {253402300800000000, "-"},  // year 10000 does not fit RFC 3339
      {-62167219200000001, "-"},  // nor year -1
      {-62167219200000000, "0000-01-01T00:00:00.000000Z"},
      {0, "-"},  // unset
  };
  for (const auto& [us, text] : cases) {
    LogRecord r;
    r.timeUnixUs = us;
    EXPECT_EQ(SyslogWriter::format(r, "h", 16), "<134>1 " + text + " h - - - -") << us;
    auto back = SyslogWriter::parse(SyslogWriter::format(r, "h", 16));
    ASSERT_TRUE(back.has_value()) << us;
    if (text != "-") {
      EXPECT_EQ(back->timeUnixUs, us);
    }
  }
}

TEST(SyslogFormat, EmptyFieldsAreNil) {
  LogRecord r;
  r.timeUnixUs = kT;
  EXPECT_EQ(SyslogWriter::format(r, "", 16), "<134>1 2026-11-22T00:10:47.123456Z - - - - -");
  r.message = "hello";
  EXPECT_EQ(SyslogWriter::format(r, "", 16), "<134>1 2026-11-22T00:10:47.123456Z - - - - - hello");
}

TEST(SyslogFormat, StructuredDataEscaping) {
  LogRecord r;
  r.timeUnixUs = kT;
  r.fields = {{"q", "a\"b\\c]d"},    {"client addr", "x"},
              {"a=b", "y"},          {"", "z"},
              {"n\"]", "w"},         {std::string(40, 'n'), "v"},
              {"na\xc3\xafve", "u"}, {"ctl", "a\nb\x01 \xc3\xa9"},
              {"empty", ""}};
  EXPECT_EQ(SyslogWriter::format(r, "h", 16),
            "<134>1 2026-11-22T00:10:47.123456Z h - - - [fulcrum@32473 q=\"a\\\"b\\\\c\\]d\" "
            "client_addr=\"x\" a_b=\"y\" _=\"z\" n__=\"w\" " +
                std::string(32, 'n') +
                "=\"v\" na__ve=\"u\" ctl=\"a\\nb\\x01 \xc3\xa9\" empty=\"\"]");
}

TEST(SyslogFormat, MessageControlCharactersAreEscaped) {
  struct Case {
    std::string in;
    std::string out;
  };
  const Case cases[] = {
      {"line1\nline2\r\n\tend", "line1\\nline2\\r\\n\\tend"},
      {"bell\x01 esc\x1b[31m del\x7f nul" + std::string(1, '\0'),
       "bell\\x01 esc\\x1B[31m del\\x7F nul\\x00"},
      {"C:\\temp\\x41", "C:\\\\temp\\\\x41"},    // backslash escaped: reversible
      {"say \"hi\" ] [x]", "say \"hi\" ] [x]"},  // nothing to escape in MSG
      {"h\xc3\xa9llo \xe2\x9c\x93 \xe6\x97\xa5\xf0\x9f\x98\x80",
       "h\xc3\xa9llo \xe2\x9c\x93 \xe6\x97\xa5\xf0\x9f\x98\x80"},
      {"\xff\xfe ok \xc3", "\\xFF\\xFE ok \\xC3"},   // not UTF-8
      {"\xc0\xaf", "\\xC0\\xAF"},                    // overlong '/'
      {"\xed\xa0\x80", "\\xED\\xA0\\x80"},           // surrogate
      {"\xf4\x90\x80\x80", "\\xF4\\x90\\x80\\x80"},  // beyond U+10FFFF
      {"a\xc2\x85"
       "b",
       "a\\xC2\\x85b"},                  // NEL (C1)
      {"\xe2\x80\xa8", "\xe2\x80\xa8"},  // U+2028 is text
  };
  for (const Case& c : cases) {
    LogRecord r;
    r.timeUnixUs = kT;
    r.message = c.in;
    const std::string line = SyslogWriter::format(r, "h", 16);
    EXPECT_EQ(line, "<134>1 2026-11-22T00:10:47.123456Z h - - - - " + c.out);
    EXPECT_TRUE(isValidUtf8SingleLine(line)) << line;
    auto back = SyslogWriter::parse(line);
    ASSERT_TRUE(back.has_value()) << line;
    EXPECT_EQ(back->message, c.in);
  }
}

TEST(SyslogFormat, LongHeaderFieldsAreCut) {
  LogRecord r;
  r.timeUnixUs = kT;
  r.appName = std::string(60, 'a');
  r.procId = std::string(200, 'p');
  r.msgId = std::string(40, 'm');
  EXPECT_EQ(SyslogWriter::format(r, std::string(300, 'h'), 16),
            "<134>1 2026-11-22T00:10:47.123456Z " + std::string(255, 'h') + " " +
                std::string(48, 'a') + " " + std::string(128, 'p') + " " + std::string(32, 'm') +
                " -");
}

TEST(SyslogFormat, NonAsciiInHeaderFieldsIsStripped) {
  LogRecord r;
  r.timeUnixUs = kT;
  r.appName = "f\xc3\xbclcrum data";
  r.procId = "engine 1\t";
  r.msgId = "\xc3\xa9v\xc3\xa9nement";
  EXPECT_EQ(SyslogWriter::format(r,
                                 "lb-\xc3\xb1"
                                 "1.example",
                                 16),
            "<134>1 2026-11-22T00:10:47.123456Z lb-1.example flcrumdata engine1 vnement -");
  r.appName = "\xe6\x97\xa5\xe6\x9c\xac";  // nothing printable left: nil
  r.procId = " ";
  r.msgId = "\x7f";
  EXPECT_EQ(SyslogWriter::format(r, "\n", 16), "<134>1 2026-11-22T00:10:47.123456Z - - - - -");
}

TEST(SyslogFormat, ParseRoundTrip) {
  std::vector<LogRecord> records;
  records.push_back(requestRecord());
  LogRecord event;
  event.timeUnixUs = 1;
  event.severity = Severity::kCritical;
  event.appName = "fulcrum-control";
  event.msgId = "server-state";
  event.fields = {{"application", "shop"},
                  {"server", "s1"},
                  {"state", "down"},
                  {"reason", "HTTP 503 \"Service Unavailable\" [x]\\"}};
  event.message = "server s1 of shop is down\nsecond line\t\x01";
  records.push_back(event);
  LogRecord bare;
  bare.timeUnixUs = -1;
  bare.severity = Severity::kDebug;
  records.push_back(bare);
  for (const LogRecord& r : records) {
    const std::string line = SyslogWriter::format(r, "lb1.example", 23);
    auto back = SyslogWriter::parse(line);
    ASSERT_TRUE(back.has_value()) << line;
    EXPECT_EQ(*back, r) << line;
    auto full = parseRfc5424(line + "\n");
    ASSERT_TRUE(full.has_value());
    EXPECT_EQ(full->hostname, "lb1.example");
    EXPECT_EQ(full->facility, 23);
  }
}

TEST(SyslogFormat, ParseRoundTripOfArbitraryBytes) {
  std::mt19937 rng(20261122);
  auto randomBytes = [&](size_t maxLen) {
    std::string s(rng() % (maxLen + 1), '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xFF);
    return s;
  };
  for (int i = 0; i < 3000; ++i) {
    LogRecord r;
    r.timeUnixUs = static_cast<int64_t>(rng() % 4000000000ULL) * 1000000 + rng() % 1000000 + 1;
    r.severity = static_cast<Severity>(rng() % 8);
    r.appName = "fulcrum-data";
    r.procId = "engine-" + std::to_string(rng() % 100);
    r.msgId = "event";
    const size_t fields = rng() % 4;
    for (size_t f = 0; f < fields; ++f)
      r.fields.emplace_back("k" + std::to_string(f), randomBytes(20));
    r.message = randomBytes(60);
    const std::string line = SyslogWriter::format(r, "h", static_cast<int>(rng() % 24));
    ASSERT_TRUE(isValidUtf8SingleLine(line)) << line;
    auto back = SyslogWriter::parse(line);
    ASSERT_TRUE(back.has_value()) << line;
    ASSERT_EQ(*back, r) << line;
  }
}

TEST(SyslogFormat, ParseRejectsAnythingElse) {
  const std::string ok = "<134>1 2026-11-22T00:10:47.123456Z h a p m";
  ASSERT_TRUE(SyslogWriter::parse(ok + " -").has_value());
  ASSERT_TRUE(SyslogWriter::parse(ok + " [fulcrum@32473 a=\"b\"] msg").has_value());
  const std::string bad[] = {
      "",
      "hello",
      "<134>1",
      "<134>1 ",
      "<192>1 2026-11-22T00:10:47.123456Z h a p m -",  // PRI too big
      "<034>1 2026-11-22T00:10:47.123456Z h a p m -",  // leading zero
      "<>1 2026-11-22T00:10:47.123456Z h a p m -",
      "<134>2 2026-11-22T00:10:47.123456Z h a p m -",       // version
      "<134>1 2026-13-22T00:10:47.123456Z h a p m -",       // month
      "<134>1 2026-02-29T00:10:47.123456Z h a p m -",       // 2026 is not a leap year
      "<134>1 2026-11-22T24:00:00.000000Z h a p m -",       // hour
      "<134>1 2026-11-22T00:10:47Z h a p m -",              // no microseconds
      "<134>1 2026-11-22T00:10:47.123456+01:00 h a p m -",  // not UTC
      "<134>1 2026-11-22T00:10:47.123456Z h a p m",         // no SD
      "<134>1 2026-11-22T00:10:47.123456Z h a p -",         // missing field
      "<134>1 2026-11-22T00:10:47.123456Z h " + std::string(49, 'a') + " p m -",
      ok + " [other@1 a=\"b\"]",                     // other SD-ID
      ok + " [fulcrum@32473]",                       // element without params
      ok + " [fulcrum@32473 a=\"b\"][x@1 c=\"d\"]",  // two elements
      ok + " [fulcrum@32473 a=\"b\"",                // unterminated element
      ok + " [fulcrum@32473 a=\"b]",                 // unterminated value
      ok + " [fulcrum@32473 a=\"b]c\"]",             // raw ']' in a value
      ok + " [fulcrum@32473 a=b]",                   // unquoted value
      ok + " [fulcrum@32473 =\"b\"]",                // empty name
      ok + " [fulcrum@32473 " + std::string(33, 'n') + "=\"b\"]",
      ok + " -msg",  // no space before MSG
      ok + " - bad \\q escape",
      ok + " - short \\x4",
      ok + " - trailing \\",
      ok + " - raw\tcontrol",
      ok + " - two\nlines",
  };
  for (const std::string& line : bad) EXPECT_FALSE(SyslogWriter::parse(line).has_value()) << line;
}

TEST(SyslogFormat, HostDatagram) {
  LogRecord r = requestRecord();
  r.severity = Severity::kWarning;
  r.fields = {{"server", "s1"}};
  std::string out;
  appendHostSyslog(out, r, 16, 8192);
  time_t secs = static_cast<time_t>(kT / 1000000);
  struct tm tm {};
  ::localtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);  // the C locale in tests
  EXPECT_EQ(out,
            std::string("<132>") + stamp +
                " fulcrum-data[engine-1]: request [fulcrum@32473 server=\"s1\"] GET /index.html");

  LogRecord bare;
  bare.timeUnixUs = kT;
  bare.message = "m";
  out.clear();
  appendHostSyslog(out, bare, 16, 8192);
  EXPECT_EQ(out, std::string("<134>") + stamp + " fulcrum: m");

  // Cut at the limit, never inside a UTF-8 sequence.
  bare.message.clear();
  for (int i = 0; i < 100; ++i) bare.message += "\xc3\xa9";
  for (size_t limit = 30; limit < 40; ++limit) {
    out.clear();
    appendHostSyslog(out, bare, 16, limit);
    EXPECT_LE(out.size(), limit);
    EXPECT_GE(out.size(), limit - 1);
    EXPECT_TRUE(isValidUtf8SingleLine(out)) << limit;
  }
}

TEST(SyslogStatsTable, NamesAreUniqueAndDocumented) {
  std::set<std::string_view> names;
  for (const SyslogStatInfo& info : kSyslogStatInfo) {
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
    EXPECT_FALSE(info.help.empty()) << info.name;
  }
}

// ---------------------------------------------------------------- writer

// Options for `path`, adjusted by `tweak` (designated initializers would trip
// g++ 12's -Wmissing-field-initializers).
template <typename Tweak = void (*)(SyslogWriter::Options&)>
SyslogWriter::Options opts(
    std::string path, Tweak tweak = [](SyslogWriter::Options&) {}) {
  SyslogWriter::Options o;
  o.path = std::move(path);
  tweak(o);
  return o;
}

std::unique_ptr<SyslogWriter> openWriter(SyslogWriter::Options options) {
  std::string error;
  auto writer = SyslogWriter::open(std::move(options), &error);
  EXPECT_NE(writer, nullptr) << error;
  EXPECT_TRUE(error.empty()) << error;
  return writer;
}

LogRecord numbered(int thread, int n, std::string message = "") {
  LogRecord r;
  r.timeUnixUs = kT + n;
  r.appName = "fulcrum-data";
  r.procId = "engine-" + std::to_string(thread);
  r.msgId = "request";
  r.fields = {{"t", std::to_string(thread)}, {"n", std::to_string(n)}};
  r.message = message.empty() ? "record " + std::to_string(n) + " \"q\"\nnext" : message;
  return r;
}

void expectBalanced(const SyslogStats& s) {
  EXPECT_EQ(s.submitted, s.written + s.dropped + s.queueDepth);
  EXPECT_EQ(s.dropped, s.droppedQueueFull + s.droppedIo + s.droppedShutdown);
}

TEST(SyslogWriter, RecordsFromFourThreadsAllLandExactlyOnce) {
  TempDir dir;
  const std::string path = dir / "fulcrum.log";
  auto writer = openWriter(opts(path, [](auto& o) { o.hostname = "lb1"; }));
  ASSERT_NE(writer, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2500;
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < kPerThread; ++n) {
        if (!writer->submit(numbered(t, n))) ++refused;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(writer->flush(20s));
  EXPECT_EQ(refused.load(), 0);

  const SyslogStats s = writer->stats();
  EXPECT_EQ(s.submitted, 10000u);
  EXPECT_EQ(s.queued, 10000u);
  EXPECT_EQ(s.written, 10000u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.writeErrors, 0u);
  EXPECT_EQ(s.queueDepth, 0u);
  expectBalanced(s);

  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), 10000u);
  std::set<std::pair<int, int>> seen;
  std::vector<int> lastOfThread(kThreads, -1);
  for (const std::string& line : lines) {
    auto parsed = parseRfc5424(line);
    ASSERT_TRUE(parsed.has_value()) << line;
    EXPECT_EQ(parsed->hostname, "lb1");
    EXPECT_EQ(parsed->facility, 16);
    const LogRecord& r = parsed->record;
    ASSERT_EQ(r.fields.size(), 2u);
    const int t = std::stoi(r.fields[0].second);
    const int n = std::stoi(r.fields[1].second);
    EXPECT_EQ(r, numbered(t, n));
    EXPECT_TRUE(seen.emplace(t, n).second) << "duplicate " << t << "/" << n;
    EXPECT_GT(n, lastOfThread[static_cast<size_t>(t)]) << "one thread's records stay in order";
    lastOfThread[static_cast<size_t>(t)] = n;
  }
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(SyslogWriter, BurstIntoTinyQueueCountsEveryDrop) {
  TempDir dir;
  const std::string path = dir / "fulcrum.log";
  auto writer = openWriter(opts(path, [](auto& o) { o.queueCapacity = 100; }));
  ASSERT_NE(writer, nullptr);
  uint64_t accepted = 0, refused = 0;
  for (int n = 0; n < 20000; ++n) (writer->submit(numbered(0, n)) ? accepted : refused)++;
  ASSERT_TRUE(writer->flush(20s));
  const SyslogStats s = writer->stats();
  EXPECT_EQ(s.submitted, 20000u);
  EXPECT_EQ(s.written, accepted);
  EXPECT_EQ(s.droppedQueueFull, refused);
  EXPECT_EQ(s.written + s.dropped, s.submitted);
  expectBalanced(s);
  EXPECT_EQ(readLines(path).size(), s.written);
}

TEST(SyslogWriter, BlockedWriterFillsQueueAndDropsAreCounted) {
  // The "file" is a FIFO the test reads only later: the writer thread blocks
  // in write(2) as on a stalled disk, while submit() must go on not blocking.
  TempDir dir;
  const std::string path = dir / "fulcrum.fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0640), 0);
  const int reader = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  auto writer = openWriter(opts(path, [](auto& o) { o.queueCapacity = 100; }));
  ASSERT_NE(writer, nullptr);
  ASSERT_EQ(::fcntl(reader, F_SETFL, 0), 0);

  // 2 KB records: far fewer than 100 of them fill the pipe, so once the queue
  // has filled, the writer is necessarily stuck.
  const std::string big(2000, 'x');
  uint64_t accepted = 0, refused = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int n = 0; n < 5000; ++n) (writer->submit(numbered(0, n, big)) ? accepted : refused)++;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "submit() must not block";
  EXPECT_GT(refused, 0u);
  EXPECT_FALSE(writer->flush(100ms));  // stuck: flush times out instead of hanging
  SyslogStats s = writer->stats();
  EXPECT_EQ(s.droppedQueueFull, refused);
  EXPECT_LE(s.queueDepth, 100u);
  expectBalanced(s);

  std::string received;
  std::thread drain([&] {
    char buf[65536];
    for (ssize_t n; (n = ::read(reader, buf, sizeof(buf))) != 0;) {
      if (n > 0)
        received.append(buf, static_cast<size_t>(n));
      else if (errno != EINTR)
        break;
    }
  });
  EXPECT_TRUE(writer->flush(20s));
  s = writer->stats();
  writer.reset();  // closes the FIFO: the reader sees EOF
  drain.join();
  ::close(reader);

  EXPECT_EQ(s.submitted, 5000u);
  EXPECT_EQ(s.written, accepted);
  EXPECT_EQ(s.written + s.dropped, s.submitted);
  const auto lines = splitLines(received);
  EXPECT_EQ(lines.size(), s.written);
  for (const std::string& line : lines) ASSERT_TRUE(SyslogWriter::parse(line).has_value());
}

std::atomic<SyslogWriter*> gHupWriter{nullptr};
extern "C" void onSighup(int) {
  if (SyslogWriter* w = gHupWriter.load()) w->requestReopen();
}

TEST(SyslogWriter, ReopenAfterRenameLogrotateStyle) {
  TempDir dir;
  const std::string path = dir / "fulcrum.log";
  auto writer = openWriter(opts(path));
  ASSERT_NE(writer, nullptr);
  for (int n = 0; n < 100; ++n) writer->submit(numbered(0, n));
  ASSERT_TRUE(writer->flush(10s));

  // Rotation 1: rename, then requestReopen() directly.
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
  writer->requestReopen();
  for (int n = 100; n < 200; ++n) writer->submit(numbered(0, n));
  ASSERT_TRUE(writer->flush(10s));

  // Rotation 2: rename, then SIGHUP through a real handler.
  ASSERT_EQ(::rename(path.c_str(), (path + ".2").c_str()), 0);
  struct sigaction action {
  }, previous{};
  action.sa_handler = onSighup;
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(::sigaction(SIGHUP, &action, &previous), 0);
  gHupWriter = writer.get();
  ASSERT_EQ(::raise(SIGHUP), 0);
  gHupWriter = nullptr;
  ::sigaction(SIGHUP, &previous, nullptr);
  for (int n = 200; n < 300; ++n) writer->submit(numbered(0, n));
  ASSERT_TRUE(writer->flush(10s));

  const SyslogStats s = writer->stats();
  EXPECT_EQ(s.reopens, 2u);
  EXPECT_EQ(s.written, 300u);
  EXPECT_EQ(s.dropped, 0u);
  writer.reset();

  auto expectRange = [](const std::string& file, int from, int to) {
    const auto lines = readLines(file);
    ASSERT_EQ(lines.size(), static_cast<size_t>(to - from)) << file;
    for (int n = from; n < to; ++n) {
      auto r = SyslogWriter::parse(lines[static_cast<size_t>(n - from)]);
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(*r, numbered(0, n)) << file;
    }
  };
  expectRange(path + ".1", 0, 100);
  expectRange(path + ".2", 100, 200);
  expectRange(path, 200, 300);
}

TEST(SyslogWriter, OpenFailsWithAClearError) {
  TempDir dir;
  std::ofstream(dir / "blocker") << "a regular file\n";
  std::string error;
  EXPECT_EQ(SyslogWriter::open(opts(dir / "blocker/sub/fulcrum.log"), &error), nullptr);
  EXPECT_NE(error.find("cannot create directory " + (dir / "blocker")), std::string::npos) << error;
  EXPECT_NE(error.find(std::strerror(ENOTDIR)), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);

  ASSERT_EQ(::mkdir((dir / "adir").c_str(), 0750), 0);
  EXPECT_EQ(SyslogWriter::open(opts(dir / "adir"), &error), nullptr);
  EXPECT_NE(error.find(std::strerror(EISDIR)), std::string::npos) << error;

  EXPECT_EQ(SyslogWriter::open(opts(""), &error), nullptr);
  EXPECT_NE(error.find("no path"), std::string::npos) << error;
  EXPECT_EQ(SyslogWriter::open(opts(dir / "x.log", [](auto& o) { o.queueCapacity = 0; }), &error),
            nullptr);
  EXPECT_NE(error.find("capacity"), std::string::npos) << error;
  EXPECT_EQ(SyslogWriter::open(opts(dir / "x.log", [](auto& o) { o.facility = 24; }), &error),
            nullptr);
  EXPECT_NE(error.find("facility 24"), std::string::npos) << error;
  EXPECT_EQ(SyslogWriter::open(opts(dir / "x.log",
                                    [](auto& o) {
                                      o.alsoHostSyslog = true;
                                      o.hostSyslogSocket = std::string(200, 's');
                                    }),
                               &error),
            nullptr);
  EXPECT_NE(error.find("host syslog socket"), std::string::npos) << error;
  EXPECT_EQ(SyslogWriter::open(opts(dir / "blocker/x.log"), nullptr), nullptr);  // no crash

  // A FIFO nobody reads is refused instead of hanging open().
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0640), 0);
  EXPECT_EQ(SyslogWriter::open(opts(dir / "fifo"), &error), nullptr);
  EXPECT_NE(error.find(std::strerror(ENXIO)), std::string::npos) << error;
}

TEST(SyslogWriter, CreatesDirectoriesAndFileWithTheirModes) {
  TempDir dir;
  const mode_t oldMask = ::umask(077);  // stricter than the documented modes
  auto writer = openWriter(opts(dir / "var/log/fulcrum/fulcrum.log"));
  ::umask(oldMask);
  ASSERT_NE(writer, nullptr);
  struct stat st {};
  for (const char* sub : {"var", "var/log", "var/log/fulcrum"}) {
    ASSERT_EQ(::stat((dir / sub).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0750u) << sub;
  }
  ASSERT_EQ(::stat((dir / "var/log/fulcrum/fulcrum.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);

  // An existing file keeps the mode the operator gave it, and its content.
  const std::string existing = dir / "existing.log";
  std::ofstream(existing) << "earlier line\n";
  ASSERT_EQ(::chmod(existing.c_str(), 0600), 0);
  auto second = openWriter(opts(existing));
  ASSERT_NE(second, nullptr);
  second->submit(numbered(0, 1));
  ASSERT_TRUE(second->flush(10s));
  ASSERT_EQ(::stat(existing.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  const auto lines = readLines(existing);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "earlier line");
}

TEST(SyslogWriter, PartialLastLineIsNotGluedToTheNextRecord) {
  TempDir dir;
  const std::string path = dir / "fulcrum.log";
  std::ofstream(path) << "old line\npartial";
  auto writer = openWriter(opts(path));
  ASSERT_NE(writer, nullptr);
  writer->submit(numbered(0, 1));
  ASSERT_TRUE(writer->flush(10s));
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "old line");
  EXPECT_EQ(lines[1], "partial");
  EXPECT_EQ(SyslogWriter::parse(lines[2]), numbered(0, 1));
}

TEST(SyslogWriter, LargeBatchesSpanSeveralWritesInOrder) {
  TempDir dir;
  const std::string path = dir / "fulcrum.log";
  auto writer = openWriter(opts(path));
  ASSERT_NE(writer, nullptr);
  const std::string big(1500, 'y');  // 6000 of these: several 1 MiB writes
  for (int n = 0; n < 6000; ++n) ASSERT_TRUE(writer->submit(numbered(0, n, big)));
  ASSERT_TRUE(writer->flush(20s));
  EXPECT_EQ(writer->stats().written, 6000u);
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), 6000u);
  for (int n = 0; n < 6000; ++n) {
    ASSERT_EQ(SyslogWriter::parse(lines[static_cast<size_t>(n)]), numbered(0, n, big));
  }
}

TEST(SyslogWriter, DestructorDrainsTheQueue) {
  TempDir dir;
  const std::string path = dir / "fulcrum.log";
  {
    auto writer = openWriter(opts(path));
    ASSERT_NE(writer, nullptr);
    for (int n = 0; n < 20000; ++n) ASSERT_TRUE(writer->submit(numbered(0, n)));
  }  // no flush()
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), 20000u);
  EXPECT_EQ(SyslogWriter::parse(lines.back()), numbered(0, 19999));
}

TEST(SyslogWriter, WriteErrorsAreCountedAndTheWriterGoesOn) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  auto writer = openWriter(opts("/dev/full"));
  ASSERT_NE(writer, nullptr);
  for (int n = 0; n < 50; ++n) EXPECT_TRUE(writer->submit(numbered(0, n)));
  ASSERT_TRUE(writer->flush(10s));
  SyslogStats s = writer->stats();
  EXPECT_EQ(s.written, 0u);
  EXPECT_EQ(s.droppedIo, 50u);
  EXPECT_GE(s.writeErrors, 1u);
  EXPECT_NE(writer->lastError().find(std::strerror(ENOSPC)), std::string::npos)
      << writer->lastError();
  expectBalanced(s);

  for (int n = 0; n < 50; ++n) EXPECT_TRUE(writer->submit(numbered(0, n)));
  ASSERT_TRUE(writer->flush(10s));
  s = writer->stats();
  EXPECT_EQ(s.droppedIo, 100u);
  EXPECT_GE(s.writeErrors, 2u);
  EXPECT_EQ(s.submitted, s.written + s.dropped);
}

TEST(SyslogWriter, ShortWriteDropsTheCutLineAndTheNextWriteStartsAFreshLine) {
  // RLIMIT_FSIZE makes the file "full" at 10000 bytes: one write(2) comes back
  // short in the middle of a line, the next fails with EFBIG.
  TempDir dir;
  const std::string path = dir / "fulcrum.log";
  auto writer = openWriter(opts(path));
  ASSERT_NE(writer, nullptr);
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  struct rlimit small = old;
  small.rlim_cur = 10000;
  void (*oldHandler)(int) = ::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  for (int n = 0; n < 200; ++n) writer->submit(numbered(0, n));
  const bool flushed = writer->flush(10s);
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, oldHandler);
  ASSERT_TRUE(flushed);

  SyslogStats s = writer->stats();
  EXPECT_EQ(s.written + s.droppedIo, 200u);
  EXPECT_GT(s.written, 0u);
  EXPECT_GT(s.droppedIo, 0u);
  EXPECT_GE(s.writeErrors, 1u);
  EXPECT_NE(writer->lastError().find(std::strerror(EFBIG)), std::string::npos)
      << writer->lastError();
  std::string content = readFile(path);
  EXPECT_EQ(content.size(), 10000u);
  EXPECT_EQ(static_cast<uint64_t>(std::count(content.begin(), content.end(), '\n')), s.written);

  // Room again: the next record starts on a line of its own.
  ASSERT_TRUE(writer->submit(numbered(0, 1000)));
  ASSERT_TRUE(writer->flush(10s));
  EXPECT_EQ(writer->stats().written, s.written + 1);
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), s.written + 2);
  for (size_t i = 0; i < s.written; ++i) {
    EXPECT_EQ(SyslogWriter::parse(lines[i]), numbered(0, static_cast<int>(i)));
  }
  EXPECT_FALSE(SyslogWriter::parse(lines[s.written]).has_value());  // the cut line
  EXPECT_EQ(SyslogWriter::parse(lines.back()), numbered(0, 1000));
}

TEST(SyslogWriter, UnsetTimeIsStampedOnSubmit) {
  TempDir dir;
  const std::string path = dir / "fulcrum.log";
  auto writer = openWriter(opts(path));
  ASSERT_NE(writer, nullptr);
  const auto now = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const int64_t before = now();
  LogRecord r;
  r.message = "no time";
  writer->submit(r);
  ASSERT_TRUE(writer->flush(10s));
  const int64_t after = now();
  const auto lines = readLines(path);
  ASSERT_EQ(lines.size(), 1u);
  auto back = SyslogWriter::parse(lines[0]);
  ASSERT_TRUE(back.has_value());
  EXPECT_GE(back->timeUnixUs, before);
  EXPECT_LE(back->timeUnixUs, after);
}

class HostSocket {
 public:
  explicit HostSocket(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ADD_FAILURE() << "bind " << path << ": " << std::strerror(errno);
    }
  }
  ~HostSocket() { ::close(fd_); }
  // The next datagram, or "" when none is waiting.
  std::string receive() {
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }

 private:
  int fd_ = -1;
};

TEST(SyslogWriter, AlsoSendsToTheHostSyslogSocket) {
  TempDir dir;
  const std::string path = dir / "fulcrum.log";
  HostSocket devLog(dir / "dev-log");
  auto writer = openWriter(opts(path, [&](auto& o) {
    o.alsoHostSyslog = true;
    o.hostSyslogSocket = dir / "dev-log";
    o.hostSyslogThreshold = Severity::kNotice;
  }));
  ASSERT_NE(writer, nullptr);
  LogRecord info = requestRecord();  // less severe than kNotice: file only
  LogRecord warning = requestRecord();
  warning.severity = Severity::kWarning;
  warning.msgId = "server-state";
  warning.fields = {{"server", "s1"}};
  warning.message = "server s1 down\nbecause";
  LogRecord error = warning;
  error.severity = Severity::kError;
  for (const LogRecord& r : {info, warning, error}) ASSERT_TRUE(writer->submit(r));
  ASSERT_TRUE(writer->flush(10s));

  const std::string first = devLog.receive();
  const std::string second = devLog.receive();
  EXPECT_EQ(devLog.receive(), "");
  EXPECT_TRUE(first.starts_with("<132>")) << first;
  EXPECT_TRUE(second.starts_with("<131>")) << second;
  const std::string tail =
      " fulcrum-data[engine-1]: server-state [fulcrum@32473 server=\"s1\"] server s1 "
      "down\\nbecause";
  EXPECT_TRUE(first.ends_with(tail)) << first;
  EXPECT_TRUE(second.ends_with(tail)) << second;

  const SyslogStats s = writer->stats();
  EXPECT_EQ(s.written, 3u);
  EXPECT_EQ(s.hostSent, 2u);
  EXPECT_EQ(s.hostDropped, 0u);
  EXPECT_EQ(readLines(path).size(), 3u);
}

TEST(SyslogWriter, AbsentHostSyslogIsCountedNotFatal) {
  TempDir dir;
  const std::string path = dir / "fulcrum.log";
  auto writer = openWriter(opts(path, [&](auto& o) {
    o.alsoHostSyslog = true;
    o.hostSyslogSocket = dir / "no-such-log";
  }));
  ASSERT_NE(writer, nullptr);
  for (int n = 0; n < 5; ++n) ASSERT_TRUE(writer->submit(numbered(0, n)));
  ASSERT_TRUE(writer->flush(10s));
  const SyslogStats s = writer->stats();
  EXPECT_EQ(s.written, 5u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.hostSent, 0u);
  EXPECT_EQ(s.hostDropped, 5u);
  EXPECT_NE(writer->lastError().find("no-such-log"), std::string::npos) << writer->lastError();
  EXPECT_EQ(readLines(path).size(), 5u);
}

}  // namespace
}  // namespace fulcrum
