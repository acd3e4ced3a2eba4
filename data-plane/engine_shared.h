// EngineShared: what every packet loop of one engine shares: the session
// table, the affinity store, and the configuration.
//
// Configuration swaps (DESIGN.md; CONVENTIONS.md #7). The control thread
// publishes a new EngineConfig; loops pick it up at their next burst without
// stopping. Each configuration gets an epoch (16 bits) that every session
// created under it records, so a session that outlives its configuration can
// still be resolved (its application and server names) when it ends, and its
// server's count released in the configuration current at that time. An old
// configuration is freed once no session refers to it and every loop has
// passed a burst boundary since it was replaced (reclaim()).
//
// Server active counts carry over exactly: publish() holds slowPathLock
// exclusively while it copies the counts into the new pools and swaps the
// pointer; creating or ending a session takes it shared. Only new connections
// and session ends take it, never a packet of an existing session.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "data-plane/affinity_store.h"
#include "data-plane/engine_config.h"
#include "data-plane/http/http_flow.h"
#include "data-plane/session_table.h"

namespace fulcrum {

class EngineShared {
 public:
  // `httpFlowCapacity`: connections the HTTP filter can follow at once (0: as many as
  // the table holds sessions; at most state_word::kMaxHttpSlots).
  EngineShared(uint32_t capacity, AffinityStore& store, uint32_t httpFlowCapacity = 0);
  ~EngineShared();

  SessionTable table;
  AffinityStore& affinity;
  const uint32_t flowLimit;            // at most this many non-application flow entries
  std::atomic<uint32_t> flowCount{0};  // live non-application flow entries
  std::shared_mutex slowPathLock;      // see the header comment
  HttpFlowPool httpFlows;              // states of HTTP-filtered connections

  // The store across the network that persistence and session sync go
  // through, or nullptr (the embedded `affinity` store decides alone). Set by
  // the control thread. Loops read it only after a beginBurst() of the same
  // turn, so a replaced store may be freed once loopsPassed(quiescenceMark())
  // holds for a mark taken after the swap.
  RemoteAffinity* remote() const { return remote_.load(std::memory_order_acquire); }
  void setRemote(RemoteAffinity* store) { remote_.store(store, std::memory_order_release); }
  // How long a new connection waits for the store before a local decision.
  std::atomic<uint32_t> remoteTimeoutUs{5000};

  // Control thread. Gives `config` an epoch, carries every server's active
  // count and up/draining state over from the current configuration (by
  // application and server name; `keepStates` false takes the new config's
  // states as they are), and makes it current. False with *error when all
  // 65536 epochs are still in use by live sessions.
  bool publish(std::unique_ptr<EngineConfig> config, bool keepStates, std::string* error);
  // Control thread. Frees replaced configurations that nothing refers to any
  // more. Returns how many configurations are still kept (current included).
  size_t reclaim();

  // Loops. The configuration for this burst; `loopSeq` is the loop's
  // quiescence slot (registerLoop()).
  const EngineConfig* beginBurst(std::atomic<uint64_t>& loopSeq) const {
    loopSeq.store(publishSeq_.load(std::memory_order_acquire), std::memory_order_release);
    return current_.load(std::memory_order_acquire);
  }
  const EngineConfig* current() const { return current_.load(std::memory_order_acquire); }
  // The configuration a live session was created under (kept alive by it).
  const EngineConfig* byEpoch(uint16_t epoch) const {
    return epochs_[epoch].load(std::memory_order_acquire);
  }
  void sessionCreated(uint16_t epoch) {
    epochSessions_[epoch].fetch_add(1, std::memory_order_relaxed);
  }
  void sessionEnded(uint16_t epoch) {
    epochSessions_[epoch].fetch_sub(1, std::memory_order_relaxed);
  }

  // A session left the table (ageing, reopen, clear): give its server's count
  // back in the current configuration and release its epoch. Takes
  // slowPathLock shared; must not be called with it held.
  void sessionRemoved(const SessionInfo& info);

  // A point every loop must pass (begin a burst, or idle) before something it
  // may hold is freed: take a mark after unpublishing it, free once
  // loopsPassed(mark).
  uint64_t quiescenceMark() { return publishSeq_.fetch_add(1, std::memory_order_acq_rel) + 1; }
  bool loopsPassed(uint64_t mark);

  // A loop announces itself so reclaim() waits for it; unregister on exit.
  void registerLoop(std::atomic<uint64_t>* loopSeq);
  void unregisterLoop(std::atomic<uint64_t>* loopSeq);

 private:
  static constexpr uint32_t kEpochs = 1u << 16;
  struct Retired {
    std::unique_ptr<EngineConfig> config;
    uint64_t retiredAt;  // publishSeq_ value once it was replaced
  };

  std::atomic<RemoteAffinity*> remote_{nullptr};
  std::atomic<const EngineConfig*> current_{nullptr};
  std::atomic<uint64_t> publishSeq_{1};
  std::unique_ptr<std::atomic<const EngineConfig*>[]> epochs_;
  std::unique_ptr<std::atomic<uint32_t>[]> epochSessions_;
  uint32_t nextEpoch_ = 0;    // control thread only
  uint64_t nextLineage_ = 1;  // control thread only

  std::mutex controlMutex_;  // guards everything below (control thread, loop registration)
  std::unique_ptr<EngineConfig> owned_;  // the current configuration
  std::vector<Retired> retired_;
  std::vector<std::atomic<uint64_t>*> loops_;
};

}  // namespace fulcrum
