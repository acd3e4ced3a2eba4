// Engine: one fulcrum-data process's data plane as the control channel sees
// it: the shared state of its packet loops, and the operations the control
// plane asks for (apply a snapshot or an update, report status, dump or clear
// sessions). Called from the control-channel thread only; the packet loops
// run beside it on their own threads and are never stopped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data-plane/affinity/redis_store.h"
#include "data-plane/affinity_store.h"
#include "data-plane/engine_shared.h"
#include "data-plane/log_queue.h"
#include "data-plane/processor.h"
#include "shared/proto/fulcrum.pb.h"

namespace fulcrum {

class Engine {
 public:
  struct Options {
    uint32_t capacity = SessionTable::kDefaultCapacity;
    uint32_t httpFlows = 0;  // HTTP-filtered connections at once; 0 = capacity
    uint32_t loops = 0;  // packet processors to create (their threads belong to the I/O backend)
    LinkType link = LinkType::kRawIp;
  };
  explicit Engine(const Options& options);
  ~Engine();

  // The generation (commit number) of the running configuration; 0 = none.
  uint64_t generation() const { return generation_; }

  // Parses, validates and publishes the snapshot's configuration with the
  // server states it carries. On failure the running configuration stays.
  bool applySnapshot(const pb::ConfigSnapshot& snapshot, std::string* error);
  // Server up/draining changes for the running configuration; a change for
  // another generation or an unknown server is ignored (counted in the log).
  // Returns how many servers changed.
  size_t applyUpdate(const pb::ConfigUpdate& update);

  void fillStatus(pb::EngineStatus& status, int64_t nowUnixMs) const;
  // `now` on the loops' clock (seconds).
  void dumpSessions(const pb::SessionDumpRequest& request, pb::SessionDumpReply& reply,
                    uint32_t now);
  uint64_t clearSessions(const std::string& application);
  void reclaim();

  // An event for the control plane's syslog file (RFC 5424 severity: 3 error,
  // 4 warning, 5 notice, 6 info). Kept until shipped; at most kMaxEvents wait,
  // older ones beyond that are dropped and counted.
  void event(uint32_t severity, const std::string& msgId, const std::string& message);
  // Moves up to `max` request logs and the waiting events into `batch`.
  // Returns how many records it moved.
  size_t takeLogs(pb::LogBatch& batch, uint32_t max);
  uint64_t logsDropped() const;
  // The request-log ring of loop `i` (its single producer is that loop).
  LogRing& logRing(size_t i) { return *rings_[i]; }

  // The affinity store in use: "local", or the configured redis:// address.
  const std::string& affinityStore() const { return storeAddress_; }

  EngineShared& shared() { return shared_; }
  PacketProcessor& loop(size_t i) { return *loops_[i]; }
  size_t loopCount() const { return loops_.size(); }

 private:
  LocalAffinityStore store_;
  EngineShared shared_;
  static constexpr size_t kMaxEvents = 1000;
  std::vector<std::unique_ptr<PacketProcessor>> loops_;
  std::vector<std::unique_ptr<LogRing>> rings_;
  // Follows `set system affinity-store`: a new Redis store when the address
  // or the password file changed; "local" leaves the embedded store alone.
  void configureStore(const Config& config);

  std::vector<pb::EventLog> events_;
  std::unique_ptr<RedisAffinityStore> redis_;  // the store in use, or none
  std::string storeAddress_ = "local";
  std::string storePasswordFile_;
  // A replaced store lives on until every loop has passed a quiescent point
  // since (a loop may still hold it for the rest of its turn).
  struct RetiredStore {
    std::unique_ptr<RedisAffinityStore> store;
    uint64_t mark;
  };
  std::string storeError_;  // why the configured Redis store is not in use
  std::vector<RetiredStore> retiredStores_;
  uint64_t eventsDropped_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace fulcrum
