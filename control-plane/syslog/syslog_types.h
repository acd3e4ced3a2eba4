// Plain types of the syslog aggregator: what a record is and what the writer
// counts. What can be done with them lives in syslog_format.h (text form) and
// syslog_writer.h (the file writer).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fulcrum {

// RFC 5424 section 6.2.1 severities; the enumerator's value is the wire value.
enum class Severity : uint8_t {
  kEmergency = 0,
  kAlert = 1,
  kCritical = 2,
  kError = 3,
  kWarning = 4,
  kNotice = 5,
  kInfo = 6,
  kDebug = 7,
};

// One request-log line or event, as an engine (or the control plane itself)
// reports it. Every field may hold anything; formatting makes it a valid
// RFC 5424 line (see syslog_format.h for what is stripped, cut or escaped).
struct LogRecord {
  int64_t timeUnixUs = 0;  // when it happened (at the engine), microseconds since the epoch
  Severity severity = Severity::kInfo;
  std::string appName;  // "fulcrum-data" or "fulcrum-control"
  std::string procId;   // the engine id, e.g. "engine-1"; empty is written as "-"
  std::string msgId;    // "request", "event", "server-state", ...
  // Structured data: one SD-ELEMENT "fulcrum@32473" with these params, in this
  // order (names may repeat). Empty: no structured data ("-").
  std::vector<std::pair<std::string, std::string>> fields;
  std::string message;  // free text, UTF-8

  bool operator==(const LogRecord&) const = default;
};

// Counters of a SyslogWriter, defined once: the struct's fields, their names
// and help text all come from this table. X(field, name, help).
//
// Accounting: every record handed to submit() is, once flushed, either written
// or dropped for exactly one reason:
//   submitted == written + droppedQueueFull + droppedIo + droppedShutdown + queueDepth
// and `dropped` is the sum of the three drop reasons.
#define FULCRUM_SYSLOG_STATS(X)                                                                    \
  X(submitted, "submitted", "records handed to submit()")                                          \
  X(queued, "queued", "records accepted into the queue")                                           \
  X(written, "written", "records written to the syslog file")                                      \
  X(dropped, "dropped", "records not written to the syslog file, all reasons (should read 0)")     \
  X(droppedQueueFull, "dropped_queue_full", "records refused by submit(): queue full")             \
  X(droppedIo, "dropped_io", "records lost to a failed write or a file that could not be opened")  \
  X(droppedShutdown, "dropped_shutdown", "records still queued when the shutdown drain timed out") \
  X(writeErrors, "write_errors", "failed write(2) calls on the syslog file (should read 0)")       \
  X(openErrors, "open_errors", "failed attempts to (re)open the syslog file (should read 0)")      \
  X(reopens, "reopens", "times the syslog file was reopened (rotation or recovery)")               \
  X(hostSent, "host_sent", "records sent to the host syslog socket")                               \
  X(hostDropped, "host_dropped",                                                                   \
    "records not delivered to the host syslog: socket absent, full or failing")                    \
  X(queueDepth, "queue_depth", "records submitted and not yet written or dropped (a gauge)")

struct SyslogStats {
#define FULCRUM_X(field, name, help) uint64_t field = 0;
  FULCRUM_SYSLOG_STATS(FULCRUM_X)
#undef FULCRUM_X
};

struct SyslogStatInfo {
  std::string_view name;
  std::string_view help;
  uint64_t SyslogStats::*field;
};

inline constexpr std::array kSyslogStatInfo = {
#define FULCRUM_X(field, name, help) SyslogStatInfo{name, help, &SyslogStats::field},
    FULCRUM_SYSLOG_STATS(FULCRUM_X)
#undef FULCRUM_X
};

}  // namespace fulcrum
