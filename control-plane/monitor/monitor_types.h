// Plain types of the server monitor (DESIGN.md, "Control plane": server
// monitor). What the Monitor does with them is in monitor.h; these structs
// carry no behaviour so that the engine channel, the management API and the
// CLI can pass them around without linking the monitor.
#pragma once

#include <cstdint>
#include <string>

#include "shared/config/config_types.h"
#include "shared/net/address.h"

namespace fulcrum {

// One server to check. `address`/`port` are the server's own (the port is the
// resolved one: ApplicationConfig::serverPort), used by tcp and http checks;
// icmp ignores the port. `config.type` is kIcmp, kTcp or kHttp; a kNone target
// is not monitored at all (the caller treats such servers as up).
struct MonitorTarget {
  std::string application;
  std::string server;
  IpAddress address;
  uint16_t port = 0;
  MonitorConfig config;

  bool operator==(const MonitorTarget&) const = default;
};

// The outcome of one check. `detail` is for people (CLI, logs), one line, no
// bytes from the peer that are not printable: "HTTP 200 in 3 ms",
// "connect: Connection refused", "timeout after 1000 ms (connecting)",
// "HTTP 503 not in 200", "HTTP 200 but body lacks 'ok'".
struct CheckResult {
  bool ok = false;
  std::string detail;

  bool operator==(const CheckResult&) const = default;
};

// Everything `show servers` says about one monitored server.
struct ServerHealth {
  std::string application;
  std::string server;
  // Until the first check has finished, known = false and up = true: a server
  // that has not been checked yet is treated like an unmonitored one.
  bool up = true;
  bool known = false;
  // Unix time (ms) when `up` last changed; before that, when the state became
  // known by the first result; before that, when monitoring of this target began.
  int64_t sinceUnixMs = 0;
  CheckResult last;  // the most recent finished check (empty before the first)
  uint64_t checks = 0;
  uint32_t consecutiveOk = 0;
  uint32_t consecutiveFail = 0;

  bool operator==(const ServerHealth&) const = default;
};

}  // namespace fulcrum
