// ControlServer: fulcrum-control's core, on one libevent base: the engine
// channel, the management API, the server monitor, and the plumbing between
// them and the configuration store and the syslog writer.
//
// - Engines connect and say hello; a protocol version mismatch is refused
//   with a reason naming both versions. An accepted engine gets the full
//   snapshot of the active configuration (with every server's state), then
//   an update whenever a server's health or drain state changes, and a new
//   snapshot on every commit. An engine id that connects again replaces its
//   old connection if that one has gone quiet, and is refused while the old
//   one is still talking (two engines configured with one id). A peer silent
//   for three heartbeat intervals is dropped.
// - Management requests (protobuf frames on the owner-only Unix socket) are
//   answered as they complete (the CLI sends one request per connection);
//   `show sessions` and `clear sessions` ask every engine
//   and answer when all have replied or after two seconds. `show engines`
//   and `show affinity-store` get the same rows (with each engine's last
//   affinity-store status); `show statistics` sums the engines' counters.
// - An engine's affinity store going down, or coming back up, as its status
//   reports say, is one syslog event (engine_status.h, watchStore()).
// - Drain state is operator intent and survives restarts (a file in the
//   state directory, replaced atomically).
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "control-plane/engine_status.h"
#include "control-plane/monitor/monitor.h"
#include "control-plane/store/config_store.h"
#include "control-plane/syslog/syslog_writer.h"
#include "shared/channel/channel.h"
#include "shared/config/config_types.h"
#include "shared/proto/fulcrum.pb.h"

namespace fulcrum {

class ControlServer {
 public:
  struct Options {
    std::string stateDir;    // store, default management socket and default syslog file
    std::string mgmtSocket;  // empty: STATE_DIR/mgmt.sock, or /run/fulcrum/mgmt.sock
    std::string listen;      // empty: the configuration's control-channel
    std::string syslogFile;  // empty: the configuration's syslog-file (STATE_DIR/fulcrum.log
                             // when that is the default and a state dir is given)
    bool alsoHostSyslog = false;
    std::chrono::milliseconds heartbeat{1000};
    std::chrono::milliseconds fanoutTimeout{2000};
    std::string version;
  };

  ControlServer(event_base* base, Options options);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Opens the store, the syslog file and both listeners; starts monitoring
  // and serves the active configuration. False and *error on any failure.
  bool start(std::string* error);
  // SIGHUP: reopen the syslog file (log rotation).
  void reopenLogs();

 private:
  struct EngineConn {
    std::shared_ptr<channel::Connection> conn;
    std::string id, version;
    uint32_t loops = 0;
    int64_t connectedMs = 0, lastStatusMs = 0, lastFrameMs = 0;
    pb::EngineStatus status;
    StoreWatch storeWatch;  // the affinity store's last settled state, for its events
    bool accepted = false;
    bool closed = false;  // erased by sweepClosed(), outside any callback of its own
  };
  struct ServerStatus {
    bool monitored = false;
    bool up = true;
    bool known = false;
    bool draining = false;
    int64_t sinceMs = 0;
    std::string lastCheck;
  };
  struct Pending {
    std::shared_ptr<channel::Connection> mgmt;
    pb::MgmtReply reply;
    std::set<channel::Connection*> waiting;
    event* timeout = nullptr;
  };
  using ServerKey = std::pair<std::string, std::string>;  // application, server

  // Engine channel.
  void onEngineFrame(channel::Connection& c, std::string_view payload);
  void onEngineClosed(channel::Connection& c, const std::string& reason);
  void sendSnapshot(EngineConn& e);
  void broadcast(const pb::EngineMessage& m);
  void pushServerState(const ServerKey& key);
  void takeLogs(const EngineConn& e, const pb::LogBatch& batch);
  void takeStatus(EngineConn& e, const pb::EngineStatus& status);

  // Management API.
  void onMgmtFrame(channel::Connection& c, std::string_view payload);
  void handle(const std::shared_ptr<channel::Connection>& c, const pb::MgmtRequest& request);
  void fillServers(pb::MgmtReply& reply) const;
  void fillStatistics(pb::MgmtReply& reply) const;
  void fillEngines(pb::MgmtReply& reply) const;
  void fanOut(const std::shared_ptr<channel::Connection>& c, const pb::MgmtRequest& request);
  void finish(uint64_t id);

  // Configuration.
  bool activate(const CommitRecord* record, std::string* error);
  void onHealth(const ServerHealth& health);
  void saveDrains() const;
  void loadDrains();
  bool openSyslog(const std::string& path, std::string* error);
  void logEvent(Severity severity, const std::string& msgId, const std::string& message);

  void sweepClosed();
  static void onHeartbeat(evutil_socket_t, short, void* self);
  static void onSweep(evutil_socket_t, short, void* self);
  static void onFanoutTimeout(evutil_socket_t, short, void* arg);

  event_base* base_;
  Options options_;
  std::unique_ptr<ConfigStore> store_;
  std::unique_ptr<SyslogWriter> syslog_;
  std::string syslogPath_;
  std::unique_ptr<Monitor> monitor_;
  std::unique_ptr<channel::Listener> engineListener_, mgmtListener_;
  std::map<channel::Connection*, EngineConn> engines_;
  std::set<std::shared_ptr<channel::Connection>> mgmt_;
  std::map<uint64_t, Pending> pending_;
  uint64_t nextRequestId_ = 1;
  std::map<ServerKey, ServerStatus> servers_;
  Config active_;
  std::string activeText_;
  uint64_t generation_ = 0;
  event* heartbeat_ = nullptr;
  uint64_t requestLogs_ = 0, eventLogs_ = 0, badFrames_ = 0, mgmtRequests_ = 0;
  bool stopping_ = false;  // set by the destructor
};

}  // namespace fulcrum
