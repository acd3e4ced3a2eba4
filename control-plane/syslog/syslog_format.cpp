#include "control-plane/syslog/syslog_format.h"

#include <time.h>

#include <array>
#include <ctime>

namespace fulcrum {
namespace {

constexpr int64_t kUsPerSecond = 1'000'000;
constexpr int64_t kUsPerDay = 86'400 * kUsPerSecond;
// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z: RFC 3339 has four-digit years.
constexpr int64_t kMinTimeUs = -62'167'219'200 * kUsPerSecond;
constexpr int64_t kEndTimeUs = 253'402'300'800 * kUsPerSecond;

constexpr char kHex[] = "0123456789ABCDEF";
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Proleptic Gregorian calendar conversions (H. Hinnant's algorithms): exact for
// negative days too, and independent of gmtime's time_t range and of the TZ.
struct CivilDate {
  int64_t year;
  unsigned month;  // 1..12
  unsigned day;    // 1..31
};

CivilDate civilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned day = doy - (153 * mp + 2) / 5 + 1;
  const unsigned month = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<int64_t>(yoe) + era * 400 + (month <= 2), month, day};
}

int64_t daysFromCivil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto yoe = static_cast<unsigned>(year - era * 400);
  const unsigned doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

unsigned daysInMonth(int64_t year, unsigned month) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
  return month == 2 && leap ? 29 : kDays[month - 1];
}

void appendDigits(std::string& out, uint64_t value, int width) {
  char buf[20];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.append(buf, static_cast<size_t>(width));
}

void appendTimestamp(std::string& out, int64_t us) {
  if (us == 0 || us < kMinTimeUs || us >= kEndTimeUs) {
    out += '-';
    return;
  }
  int64_t days = us / kUsPerDay;
  int64_t rem = us % kUsPerDay;
  if (rem < 0) {  // floor, not truncation, for times before 1970
    rem += kUsPerDay;
    --days;
  }
  const CivilDate date = civilFromDays(days);
  const auto secondOfDay = static_cast<uint64_t>(rem / kUsPerSecond);
  appendDigits(out, static_cast<uint64_t>(date.year), 4);
  out += '-';
  appendDigits(out, date.month, 2);
  out += '-';
  appendDigits(out, date.day, 2);
  out += 'T';
  appendDigits(out, secondOfDay / 3600, 2);
  out += ':';
  appendDigits(out, secondOfDay / 60 % 60, 2);
  out += ':';
  appendDigits(out, secondOfDay % 60, 2);
  out += '.';
  appendDigits(out, static_cast<uint64_t>(rem % kUsPerSecond), 6);
  out += 'Z';
}

bool isPrintUsAscii(unsigned char c) {
  return c >= 33 && c <= 126;
}

void appendHeaderField(std::string& out, std::string_view value, size_t maxLen) {
  size_t kept = 0;
  for (const char ch : value) {
    if (kept == maxLen) break;
    if (isPrintUsAscii(static_cast<unsigned char>(ch))) {
      out += ch;
      ++kept;
    }
  }
  if (kept == 0) out += '-';
}

void appendHexEscape(std::string& out, unsigned char c) {
  out += "\\x";
  out += kHex[c >> 4];
  out += kHex[c & 0xF];
}

// Length of the valid UTF-8 sequence at the start of `s` and its code point,
// or 0 when the first byte does not begin one (stray continuation, overlong
// form, surrogate, beyond U+10FFFF, truncated).
size_t utf8Sequence(std::string_view s, uint32_t* codePoint) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  size_t len;
  uint32_t cp;
  uint32_t min;
  if (b0 < 0x80) {
    *codePoint = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  *codePoint = cp;
  return len;
}

// The escaping shared by MSG and SD-PARAM values: the result is one line of
// valid UTF-8 and reversible (see unescape). `inSdValue` adds the three
// characters RFC 5424 requires escaped inside a quoted value.
void appendEscaped(std::string& out, std::string_view text, bool inSdValue) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F) {
      if (c == '\\' || (inSdValue && (c == '"' || c == ']'))) out += '\\';
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c == '\n' || c == '\r' || c == '\t') {
      out += '\\';
      out += c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t len = c < 0x80 ? 0 : utf8Sequence(text.substr(i), &cp);
    if (len == 0) {  // C0 control, DEL, or a byte that is not valid UTF-8
      appendHexEscape(out, c);
      ++i;
    } else if (cp >= 0x80 && cp <= 0x9F) {  // C1 controls (NEL is a line break to some tools)
      for (size_t k = 0; k < len; ++k)
        appendHexEscape(out, static_cast<unsigned char>(text[i + k]));
      i += len;
    } else {
      out.append(text.substr(i, len));
      i += len;
    }
  }
}

void appendSdName(std::string& out, std::string_view name) {
  size_t kept = 0;
  for (const char ch : name) {
    if (kept == kMaxSdNameLen) break;
    const auto c = static_cast<unsigned char>(ch);
    out += isPrintUsAscii(c) && c != '=' && c != ']' && c != '"' ? ch : '_';
    ++kept;
  }
  if (kept == 0) out += '_';
}

void appendStructuredData(std::string& out, const LogRecord& record) {
  if (record.fields.empty()) {
    out += '-';
    return;
  }
  out += '[';
  out += kSdId;
  for (const auto& [name, value] : record.fields) {
    out += ' ';
    appendSdName(out, name);
    out += "=\"";
    appendEscaped(out, value, /*inSdValue=*/true);
    out += '"';
  }
  out += ']';
}

int priority(Severity severity, int facility) {
  if (facility < 0 || facility > 23) facility = kDefaultFacility;
  const int sev = static_cast<int>(severity) > 7 ? 7 : static_cast<int>(severity);
  return facility * 8 + sev;
}

// --- parsing -----------------------------------------------------------------

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool done() const { return pos_ == s_.size(); }
  char peek() const { return s_[pos_]; }
  bool take(char c) {
    if (done() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  // Up to the next space (not consumed) or the end.
  std::string_view token() {
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != ' ') ++pos_;
    return s_.substr(start, pos_ - start);
  }
  bool digits(size_t n, unsigned* value) {
    if (s_.size() - pos_ < n) return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; ++i) {
      const char c = s_[pos_ + i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    pos_ += n;
    *value = v;
    return true;
  }
  std::string_view rest() const { return s_.substr(pos_); }
  size_t pos() const { return pos_; }
  void advance(size_t n) { pos_ += n; }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

bool parseHeaderField(std::string_view token, size_t maxLen, std::string* out) {
  if (token.empty() || token.size() > maxLen) return false;
  for (const char ch : token) {
    if (!isPrintUsAscii(static_cast<unsigned char>(ch))) return false;
  }
  if (token != "-") *out = token;
  return true;
}

bool parseTimestamp(std::string_view token, int64_t* us) {
  if (token == "-") {
    *us = 0;
    return true;
  }
  Cursor c(token);
  unsigned year, month, day, hour, minute, second, micros;
  if (!c.digits(4, &year) || !c.take('-') || !c.digits(2, &month) || !c.take('-') ||
      !c.digits(2, &day) || !c.take('T') || !c.digits(2, &hour) || !c.take(':') ||
      !c.digits(2, &minute) || !c.take(':') || !c.digits(2, &second) || !c.take('.') ||
      !c.digits(6, &micros) || !c.take('Z') || !c.done()) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 59) {
    return false;
  }
  const int64_t days = daysFromCivil(year, month, day);
  *us = (days * 86'400 + hour * 3600 + minute * 60 + second) * kUsPerSecond + micros;
  return true;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Reverses appendEscaped up to (not including) an unescaped `stop` character
// (0: to the end). Returns false on a malformed escape or a raw control byte.
bool unescape(Cursor& c, char stop, std::string* out) {
  while (!c.done()) {
    const char ch = c.peek();
    if (stop != 0 && ch == stop) return true;
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u == 0x7F) return false;
    if (stop != 0 && (ch == '"' || ch == ']')) return false;  // must have been escaped
    c.advance(1);
    if (ch != '\\') {
      *out += ch;
      continue;
    }
    if (c.done()) return false;
    const char e = c.peek();
    c.advance(1);
    switch (e) {
      case '\\':
        *out += '\\';
        break;
      case 'n':
        *out += '\n';
        break;
      case 'r':
        *out += '\r';
        break;
      case 't':
        *out += '\t';
        break;
      case 'x': {
        const std::string_view hex = c.rest().substr(0, 2);
        if (hex.size() != 2 || hexValue(hex[0]) < 0 || hexValue(hex[1]) < 0) return false;
        *out += static_cast<char>(hexValue(hex[0]) * 16 + hexValue(hex[1]));
        c.advance(2);
        break;
      }
      case '"':
      case ']':
        if (stop == 0) return false;
        *out += e;
        break;
      default:
        return false;
    }
  }
  return stop == 0;
}

bool parseStructuredData(Cursor& c, LogRecord* record) {
  if (c.take('-')) return true;
  if (!c.take('[')) return false;
  if (c.rest().substr(0, kSdId.size()) != kSdId) return false;
  c.advance(kSdId.size());
  while (!c.take(']')) {
    if (!c.take(' ')) return false;
    std::string name;
    while (!c.done() && c.peek() != '=') {
      const auto u = static_cast<unsigned char>(c.peek());
      if (!isPrintUsAscii(u) || u == ']' || u == '"') return false;
      name += c.peek();
      c.advance(1);
    }
    if (name.empty() || name.size() > kMaxSdNameLen || !c.take('=') || !c.take('"')) return false;
    std::string value;
    if (!unescape(c, '"', &value) || !c.take('"')) return false;
    record->fields.emplace_back(std::move(name), std::move(value));
  }
  return !record->fields.empty();  // format() writes "-" for no fields, never "[id]"
}

}  // namespace

void appendRfc5424(std::string& out, const LogRecord& record, std::string_view hostname,
                   int facility) {
  out += '<';
  out += std::to_string(priority(record.severity, facility));
  out += ">1 ";
  appendTimestamp(out, record.timeUnixUs);
  out += ' ';
  appendHeaderField(out, hostname, kMaxHostnameLen);
  out += ' ';
  appendHeaderField(out, record.appName, kMaxAppNameLen);
  out += ' ';
  appendHeaderField(out, record.procId, kMaxProcIdLen);
  out += ' ';
  appendHeaderField(out, record.msgId, kMaxMsgIdLen);
  out += ' ';
  appendStructuredData(out, record);
  if (!record.message.empty()) {
    out += ' ';
    appendEscaped(out, record.message, /*inSdValue=*/false);
  }
}

std::string formatRfc5424(const LogRecord& record, std::string_view hostname, int facility) {
  std::string out;
  out.reserve(128 + record.message.size());
  appendRfc5424(out, record, hostname, facility);
  return out;
}

std::optional<ParsedSyslogLine> parseRfc5424(std::string_view line) {
  if (line.ends_with('\n')) line.remove_suffix(1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  Cursor c(line);
  ParsedSyslogLine parsed;
  LogRecord& r = parsed.record;

  // PRI: 1-3 digits without a leading zero, at most 191.
  if (!c.take('<')) return std::nullopt;
  unsigned pri = 0;
  size_t priDigits = 0;
  while (!c.done() && c.peek() >= '0' && c.peek() <= '9' && priDigits < 3) {
    pri = pri * 10 + static_cast<unsigned>(c.peek() - '0');
    c.advance(1);
    ++priDigits;
  }
  if (priDigits == 0 || pri > 191 || (priDigits > 1 && line[1] == '0')) return std::nullopt;
  if (!c.take('>') || !c.take('1') || !c.take(' ')) return std::nullopt;
  parsed.facility = static_cast<int>(pri / 8);
  r.severity = static_cast<Severity>(pri % 8);

  if (!parseTimestamp(c.token(), &r.timeUnixUs) || !c.take(' ')) return std::nullopt;
  if (!parseHeaderField(c.token(), kMaxHostnameLen, &parsed.hostname) || !c.take(' ')) {
    return std::nullopt;
  }
  if (!parseHeaderField(c.token(), kMaxAppNameLen, &r.appName) || !c.take(' ')) {
    return std::nullopt;
  }
  if (!parseHeaderField(c.token(), kMaxProcIdLen, &r.procId) || !c.take(' ')) {
    return std::nullopt;
  }
  if (!parseHeaderField(c.token(), kMaxMsgIdLen, &r.msgId) || !c.take(' ')) return std::nullopt;
  if (!parseStructuredData(c, &r)) return std::nullopt;
  if (c.done()) return parsed;
  if (!c.take(' ') || !unescape(c, 0, &r.message)) return std::nullopt;
  return parsed;
}

void appendHostSyslog(std::string& out, const LogRecord& record, int facility, size_t maxBytes) {
  const size_t start = out.size();
  out += '<';
  out += std::to_string(priority(record.severity, facility));
  out += '>';

  // Local time, as syslog(3) writes it; receivers mostly stamp their own.
  time_t seconds = record.timeUnixUs != 0 ? static_cast<time_t>(record.timeUnixUs / kUsPerSecond)
                                          : ::time(nullptr);
  struct tm tm {};
  if (::localtime_r(&seconds, &tm) == nullptr) {
    seconds = ::time(nullptr);
    ::localtime_r(&seconds, &tm);
  }
  out += kMonths[static_cast<size_t>(tm.tm_mon) % 12];
  out += ' ';
  out += tm.tm_mday < 10 ? ' ' : static_cast<char>('0' + tm.tm_mday / 10);
  out += static_cast<char>('0' + tm.tm_mday % 10);
  out += ' ';
  appendDigits(out, static_cast<uint64_t>(tm.tm_hour), 2);
  out += ':';
  appendDigits(out, static_cast<uint64_t>(tm.tm_min), 2);
  out += ':';
  appendDigits(out, static_cast<uint64_t>(tm.tm_sec), 2);
  out += ' ';

  // TAG[PID]: journald and rsyslog end the tag at '[' or ':', the pid at ']'.
  const size_t tagStart = out.size();
  for (const char ch : record.appName) {
    if (out.size() - tagStart == kMaxAppNameLen) break;
    if (isPrintUsAscii(static_cast<unsigned char>(ch)) && ch != '[' && ch != ']' && ch != ':') {
      out += ch;
    }
  }
  if (out.size() == tagStart) out += "fulcrum";
  const size_t pidStart = out.size();
  for (const char ch : record.procId) {
    if (out.size() - pidStart == kMaxProcIdLen) break;
    if (isPrintUsAscii(static_cast<unsigned char>(ch)) && ch != '[' && ch != ']') out += ch;
  }
  if (out.size() != pidStart) {
    out.insert(pidStart, 1, '[');
    out += ']';
  }
  out += ':';

  const size_t msgIdStart = out.size() + 1;
  out += ' ';
  appendHeaderField(out, record.msgId, kMaxMsgIdLen);
  if (out.compare(msgIdStart, std::string::npos, "-") == 0) out.resize(msgIdStart - 1);
  if (!record.fields.empty()) {
    out += ' ';
    appendStructuredData(out, record);
  }
  if (!record.message.empty()) {
    out += ' ';
    appendEscaped(out, record.message, /*inSdValue=*/false);
  }

  if (out.size() - start > maxBytes) {
    size_t end = start + maxBytes;
    while (end > start && (static_cast<unsigned char>(out[end]) & 0xC0) == 0x80) --end;
    out.resize(end);
  }
}

}  // namespace fulcrum
