// EngineConfig: a configuration turned into what the packet path needs: the
// application of each (service set, façade address, façade port), each
// application's server pool and its settings. Built once per configuration
// and then only read by the packet loops (server pools keep their own lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data-plane/server_pool.h"
#include "data-plane/tcp_state.h"
#include "shared/config/config_types.h"

namespace fulcrum {

// Per-application counters, bumped on the slow path only (a new connection),
// never per forwarded packet. X(field, name).
#define FULCRUM_APP_COUNTERS(X)          \
  X(sessionsCreated, "sessions_created") \
  X(dropNoServer, "drop_no_server")      \
  X(dropTableFull, "drop_table_full")    \
  X(persistenceHits, "persistence_hits") \
  X(persistenceOverrides, "persistence_overrides")

struct AppCounters {
#define FULCRUM_X(field, name) std::atomic<uint64_t> field{0};
  FULCRUM_APP_COUNTERS(FULCRUM_X)
#undef FULCRUM_X
  void bump(std::atomic<uint64_t> AppCounters::*c) {
    (this->*c).fetch_add(1, std::memory_order_relaxed);
  }
};

struct AppRuntime {
  std::string name;
  uint16_t index = 0;
  uint16_t serviceSet = 0;
  uint32_t facade = 0;  // IPv4, host order
  uint16_t port = 0;
  bool persistence = false;
  uint32_t persistenceTimeout = 0;
  uint32_t sessionTimeout = 0;
  bool httpFilter = false;
  // Each session's server is also written to the remote store under its
  // 5-tuple, so another engine can continue the connection (session-sync).
  bool sessionSync = false;
  uint64_t affinityScope = 0;           // stable id of the name, shared by every engine
  uint64_t sessionSyncScope = 0;        // the same for its per-connection keys
  std::vector<uint32_t> serverAddress;  // per pool index, IPv4 host order
  std::vector<uint16_t> serverPort;     // per pool index, resolved
  // Persistence stores a server's stable id (its name's hash), not its index,
  // so a mapping survives configuration changes and means the same server on
  // every engine.
  std::vector<uint32_t> serverStableId;
  std::unordered_map<uint32_t, uint16_t> serverByStableId;
  std::unordered_map<std::string, uint16_t> serverByName;
  std::unique_ptr<ServerPool> pool;
  // Per pool index: which continuous presence of the server this is. Set by
  // EngineShared::publish() and carried over by name with the server's count,
  // so a server removed and added again does not absorb the ends of sessions
  // its earlier presence counted (their counts left with it).
  std::vector<uint64_t> serverLineage;
  // Carried over to the next configuration by EngineShared::publish().
  mutable AppCounters counters;

  // Pool index of a server by name, or -1.
  int serverIndex(const std::string& serverName) const {
    auto it = serverByName.find(serverName);
    return it == serverByName.end() ? -1 : it->second;
  }
};

class EngineConfig {
 public:
  // `config` must have passed validateConfig(). Fails (nullptr, *error set)
  // on what the packet path cannot serve: more than 65535 applications,
  // servers or service sets, or an IPv6 application.
  static std::unique_ptr<EngineConfig> build(
      const Config& config, std::string* error,
      uint32_t maglevTableSize = ServerPool::kDefaultMaglevTableSize);

  // The application serving (service set, façade, port), or nullptr.
  const AppRuntime* match(uint16_t serviceSet, uint32_t facade, uint16_t port) const {
    auto it = byFacade_.find(facadeKey(serviceSet, facade, port));
    return it == byFacade_.end() ? nullptr : apps_[it->second].get();
  }
  // The application with session sync that (address, port) serves, or
  // nullptr (the first one, should several share the server).
  const AppRuntime* sessionSyncApp(uint32_t address, uint16_t port) const {
    if (syncServers_.empty()) return nullptr;
    auto it = syncServers_.find((uint64_t{address} << 16) | port);
    return it == syncServers_.end() ? nullptr : apps_[it->second].get();
  }
  // Index of a service set by name, or -1.
  int serviceSetIndex(std::string_view name) const;
  const AppRuntime* findApp(const std::string& name) const {
    auto it = appByName_.find(name);
    return it == appByName_.end() ? nullptr : apps_[it->second].get();
  }
  // Set by EngineShared::publish(); recorded in every session made under it.
  uint16_t epoch() const { return epoch_; }

  const std::vector<std::unique_ptr<AppRuntime>>& apps() const { return apps_; }
  AppRuntime& app(uint16_t index) const { return *apps_[index]; }
  const Config& config() const { return config_; }
  const TcpTimeouts& timeouts() const { return timeouts_; }
  void setTimeouts(const TcpTimeouts& t) { timeouts_ = t; }

 private:
  static uint64_t facadeKey(uint16_t serviceSet, uint32_t facade, uint16_t port) {
    return (uint64_t{serviceSet} << 48) | (uint64_t{facade} << 16) | port;
  }
  friend class EngineShared;
  Config config_;
  TcpTimeouts timeouts_;
  uint16_t epoch_ = 0;
  std::unordered_map<std::string, uint16_t> appByName_;
  std::vector<std::unique_ptr<AppRuntime>> apps_;
  std::unordered_map<uint64_t, uint16_t> byFacade_;
  std::unordered_map<uint64_t, uint16_t> syncServers_;  // (address << 16 | port) -> app
};

}  // namespace fulcrum
