// Process logging for the daemons and tools: one line per event on stderr,
// "2026-11-22T00:10:47.123Z fulcrum-data[engine-1] warning: text", which
// systemd's journal (or a test's log file) collects. Request logs and events
// that operators read go to the control plane's syslog file instead.
#pragma once

#include <string>
#include <string_view>

namespace fulcrum::log {

enum class Level { kError, kWarning, kInfo, kDebug };

// Names the process in every line, e.g. setIdentity("fulcrum-data[engine-1]").
void setIdentity(std::string identity);
// Lines below `level` are not written (default kInfo).
void setLevel(Level level);
void write(Level level, std::string_view message);

inline void error(std::string_view m) {
  write(Level::kError, m);
}
inline void warning(std::string_view m) {
  write(Level::kWarning, m);
}
inline void info(std::string_view m) {
  write(Level::kInfo, m);
}
inline void debug(std::string_view m) {
  write(Level::kDebug, m);
}

// Wall-clock time in Unix milliseconds and microseconds.
int64_t nowUnixMs();
int64_t nowUnixUs();

}  // namespace fulcrum::log
