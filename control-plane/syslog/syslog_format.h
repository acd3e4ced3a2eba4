// The text forms of a LogRecord.
//
// File form: one RFC 5424 line per record (no trailing newline here):
//   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD[ MSG]
//   - PRI = facility * 8 + severity. A facility outside 0..23 is written as
//     kDefaultFacility (local0); a severity above 7 as 7 (debug).
//   - TIMESTAMP: RFC 3339 in UTC with microseconds, "2026-11-22T00:10:47.123456Z".
//     timeUnixUs == 0 (unset) and times outside years 0000..9999 are written
//     as "-" (RFC 5424 NILVALUE).
//   - HOSTNAME, APP-NAME, PROCID, MSGID: bytes outside printable US-ASCII
//     (33..126) are removed, then the field is cut to 255 / 48 / 128 / 32
//     bytes; an empty field is written as "-".
//   - SD: "-" when there are no fields, else one element
//     [fulcrum@32473 name="value" ...]. Names: bytes that SD-NAME forbids
//     (outside 33..126, and '=', ']', '"') become '_', cut to 32, "_" if empty.
//     Values: '"', '\' and ']' get a backslash (RFC 5424 6.3.3), and so does
//     everything MSG escapes below, so a value never breaks the line.
//   - MSG: omitted when empty, else preceded by one space. UTF-8 text is kept;
//     '\' becomes "\\", LF/CR/TAB become "\n" "\r" "\t", every other control
//     character (C0, DEL, C1) and every byte that is not part of valid UTF-8
//     becomes "\xHH". No BOM: the file is read with grep and less.
// Every line is thus a single line of valid UTF-8, and parseRfc5424 gives
// back the exact record whenever the header fields were already valid.
//
// Host form (the datagram for /dev/log): the traditional local format that
// syslog(3) sends and both journald and rsyslog parse,
//   <PRI>Mmm dd hh:mm:ss APP-NAME[PROCID]: MSGID SD MSG
// with the timestamp in local time, cut to at most maxBytes bytes (never in
// the middle of a UTF-8 sequence).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "control-plane/syslog/syslog_types.h"

namespace fulcrum {

inline constexpr int kDefaultFacility = 16;  // local0
inline constexpr std::string_view kSdId = "fulcrum@32473";
inline constexpr size_t kMaxHostnameLen = 255;
inline constexpr size_t kMaxAppNameLen = 48;
inline constexpr size_t kMaxProcIdLen = 128;
inline constexpr size_t kMaxMsgIdLen = 32;
inline constexpr size_t kMaxSdNameLen = 32;

// Appends the file form of `record` to `out` (no newline).
void appendRfc5424(std::string& out, const LogRecord& record, std::string_view hostname,
                   int facility);
std::string formatRfc5424(const LogRecord& record, std::string_view hostname, int facility);

struct ParsedSyslogLine {
  LogRecord record;  // "-" header fields come back empty, a "-" timestamp as 0
  std::string hostname;
  int facility = 0;
};

// Parses a line in the file form above (one trailing "\n" or "\r\n" is
// allowed). Anything else -- another version, another SD-ID, more than one
// SD element, a malformed escape, a bad date -- gives nullopt.
std::optional<ParsedSyslogLine> parseRfc5424(std::string_view line);

// Appends the host form of `record` to `out`, at most maxBytes bytes.
void appendHostSyslog(std::string& out, const LogRecord& record, int facility, size_t maxBytes);

}  // namespace fulcrum
