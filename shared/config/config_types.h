// Plain types of the configuration language (DESIGN.md, "Configuration
// language"). Parsing and validation live in config_parser.h; these structs
// carry no behaviour so that both planes and the harness can share them.
//
// Equality (operator==) compares what a configuration *means*: two configs
// that differ only in the source lines recorded for error messages are equal,
// so a configuration survives configToText()/parseConfig() unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shared/net/address.h"

namespace fulcrum {

enum class Algorithm : uint8_t {
  kLeastConnections,
  kRoundRobin,
  kWeightedRoundRobin,
  kSourceHash,
  kMaglev,
};

enum class MonitorType : uint8_t { kNone, kIcmp, kTcp, kHttp };

// The 1-based line of the statement that last set an object or attribute, so
// that validation, which runs after the whole text is read, can still point at
// a line. 0 = not set from text (a default, or a Config built in code).
// Always compares equal: where a value came from is not part of its meaning.
struct SourceLine {
  uint32_t number = 0;
  friend constexpr bool operator==(const SourceLine&, const SourceLine&) { return true; }
};

struct SystemConfig {
  std::string controlChannel = "127.0.0.1:7080";
  std::string affinityStore = "local";  // "local" or "redis://HOST:PORT[/DB]"
  // The file the engine reads the store's password from (AUTH); empty = no
  // password. Only the path is configuration: the parser never opens it.
  std::string affinityStorePasswordFile;
  // How long a new connection may wait for the store's answer before the
  // engine decides locally (and counts it), in milliseconds.
  uint32_t affinityStoreTimeoutMs = 5;
  std::string syslogFile = "/var/log/fulcrum/fulcrum.log";

  bool operator==(const SystemConfig&) const = default;
};

struct ServiceSetConfig {
  std::string name;
  std::string insideInterface;
  std::string outsideInterface;

  SourceLine line = {};  // last `set service-set` of this set

  bool operator==(const ServiceSetConfig&) const = default;
};

struct MonitorConfig {
  MonitorType type = MonitorType::kNone;
  std::string path = "/";
  std::vector<uint16_t> expect = {200};  // accepted HTTP status codes
  std::string expectBody;                // substring the body must contain; empty = any
  uint32_t intervalSeconds = 2;
  uint32_t timeoutSeconds = 1;
  uint32_t rise = 2;
  uint32_t fall = 3;

  bool operator==(const MonitorConfig&) const = default;
};

struct ServerConfig {
  std::string name;
  IpAddress address;  // all zeros (::) = not set; never a valid server address
  uint16_t port = 0;  // 0 = the application's port
  uint32_t weight = 1;
  uint32_t maxConnections = 0;  // 0 = no limit

  SourceLine line = {};         // last statement that set or deleted anything of this server
  SourceLine addressLine = {};  // last statement that set `address`

  bool operator==(const ServerConfig&) const = default;
};

struct ApplicationConfig {
  std::string name;
  std::string serviceSet;
  IpAddress facade;
  bool facadeSet = false;
  uint16_t port = 80;
  Algorithm algorithm = Algorithm::kLeastConnections;
  bool persistence = false;
  uint32_t persistenceTimeoutSeconds = 1800;
  uint32_t sessionTimeoutSeconds = 900;
  bool httpFilter = false;
  // Each session's decision is also written to the affinity store under its
  // 5-tuple, so that another engine can continue the session.
  bool sessionSync = false;
  MonitorConfig monitor;
  std::vector<ServerConfig> servers;

  // Where the attributes that validation checks across objects were last set
  // (see SourceLine). `line` is the last statement about the application
  // itself (not one of its servers).
  SourceLine line = {};
  SourceLine serviceSetLine = {};
  SourceLine facadeLine = {};
  SourceLine portLine = {};
  SourceLine monitorLine = {};

  // The port a server listens on: its own, or the façade's when it set none.
  uint16_t serverPort(const ServerConfig& s) const { return s.port != 0 ? s.port : port; }

  bool operator==(const ApplicationConfig&) const = default;
};

struct Config {
  SystemConfig system;
  std::vector<ServiceSetConfig> serviceSets;    // in the order first named
  std::vector<ApplicationConfig> applications;  // in the order first named

  bool operator==(const Config&) const = default;
};

// The configuration-language spelling: "least-connections", "maglev", "http",
// "none" for MonitorType::kNone. "unknown" for a value outside the enum.
const char* algorithmName(Algorithm a);
const char* monitorTypeName(MonitorType t);

}  // namespace fulcrum
