#include "data-plane/engine_shared.h"

#include <sys/random.h>

#include <algorithm>
#include <chrono>

namespace fulcrum {

namespace {

// The session table's hash seed is secret and per process, so nobody can
// choose addresses that pile into one bucket. (Selection hashes, which must
// agree across engines, are fixed instead; see shared/net/hash.h.)
uint64_t randomSeed() {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
    seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return seed | 1;
}

}  // namespace

EngineShared::EngineShared(uint32_t capacity, AffinityStore& store, uint32_t httpFlowCapacity)
    : table(capacity, randomSeed()),
      affinity(store),
      flowLimit(capacity / 4),
      httpFlows(
          std::min(httpFlowCapacity ? httpFlowCapacity : capacity, state_word::kMaxHttpSlots)),
      epochs_(std::make_unique<std::atomic<const EngineConfig*>[]>(kEpochs)),
      epochSessions_(std::make_unique<std::atomic<uint32_t>[]>(kEpochs)) {}

EngineShared::~EngineShared() = default;

bool EngineShared::publish(std::unique_ptr<EngineConfig> config, bool keepStates,
                           std::string* error) {
  std::lock_guard control(controlMutex_);
  // An epoch is free when no configuration holds it: its sessions are gone
  // and reclaim() released it.
  uint32_t epoch = kEpochs;
  for (uint32_t i = 0; i < kEpochs; ++i) {
    uint32_t candidate = (nextEpoch_ + i) % kEpochs;
    if (epochs_[candidate].load(std::memory_order_relaxed) == nullptr) {
      epoch = candidate;
      break;
    }
  }
  if (epoch == kEpochs) {
    if (error) *error = "every configuration epoch is still held by live sessions";
    return false;
  }
  nextEpoch_ = (epoch + 1) % kEpochs;
  config->epoch_ = static_cast<uint16_t>(epoch);

  for (const auto& app : config->apps()) {
    const AppRuntime* was = owned_ ? owned_->findApp(app->name) : nullptr;
    app->serverLineage.resize(app->pool->size());
    for (uint32_t i = 0; i < app->pool->size(); ++i) {
      int w = was ? was->serverIndex(app->pool->server(i).name) : -1;
      app->serverLineage[i] =
          w >= 0 ? was->serverLineage[static_cast<uint32_t>(w)] : nextLineage_++;
    }
  }

  std::unique_lock slow(slowPathLock);
  if (const EngineConfig* old = owned_.get()) {
    for (const auto& app : config->apps()) {
      const AppRuntime* was = old->findApp(app->name);
      if (!was) continue;
#define FULCRUM_X(field, name)                                                   \
  app->counters.field.store(was->counters.field.load(std::memory_order_relaxed), \
                            std::memory_order_relaxed);
      FULCRUM_APP_COUNTERS(FULCRUM_X)
#undef FULCRUM_X
      for (uint32_t i = 0; i < app->pool->size(); ++i) {
        int w = was->serverIndex(app->pool->server(i).name);
        if (w < 0) continue;
        const auto oldIndex = static_cast<uint32_t>(w);
        app->pool->adoptSessions(i, was->pool->active(oldIndex));
        if (keepStates) {
          app->pool->setUp(i, was->pool->isUp(oldIndex));
          app->pool->setDraining(i, was->pool->isDraining(oldIndex));
        }
      }
    }
  }
  epochs_[epoch].store(config.get(), std::memory_order_release);
  current_.store(config.get(), std::memory_order_release);
  const uint64_t seq = publishSeq_.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (owned_) retired_.push_back({std::move(owned_), seq});
  owned_ = std::move(config);
  return true;
}

bool EngineShared::loopsPassed(uint64_t mark) {
  std::lock_guard control(controlMutex_);
  for (auto* loop : loops_)
    if (loop->load(std::memory_order_acquire) < mark) return false;
  return true;
}

size_t EngineShared::reclaim() {
  std::lock_guard control(controlMutex_);
  uint64_t oldestSeen = UINT64_MAX;
  for (auto* loop : loops_)
    oldestSeen = std::min(oldestSeen, loop->load(std::memory_order_acquire));
  auto done = [&](const Retired& r) {
    const uint16_t epoch = r.config->epoch();
    if (epochSessions_[epoch].load(std::memory_order_acquire) != 0) return false;
    if (oldestSeen < r.retiredAt) return false;  // a loop may still hold it
    epochs_[epoch].store(nullptr, std::memory_order_release);
    return true;
  };
  retired_.erase(std::remove_if(retired_.begin(), retired_.end(), done), retired_.end());
  return retired_.size() + (owned_ ? 1 : 0);
}

void EngineShared::sessionRemoved(const SessionInfo& info) {
  if (info.httpSlot != 0) httpFlows.release(info.httpSlot);
  if (info.kind == SessionKind::kFlow) {
    flowCount.fetch_sub(1, std::memory_order_relaxed);
    sessionEnded(info.epoch);
    return;
  }
  {
    // Counts live in the current configuration's pools (publish() carried
    // them over), so the server is found there, by name when the session
    // comes from an earlier configuration.
    std::shared_lock slow(slowPathLock);
    const EngineConfig* cur = current();
    const EngineConfig* made = byEpoch(info.epoch);
    if (cur && made && info.app < made->apps().size()) {
      if (cur == made) {
        cur->app(info.app).pool->release(info.serverIndex);
      } else if (const AppRuntime* app = cur->findApp(made->app(info.app).name)) {
        const AppRuntime& was = made->app(info.app);
        int index = app->serverIndex(was.pool->server(info.serverIndex).name);
        // Only the same continuous presence of the server holds this count.
        if (index >= 0 &&
            app->serverLineage[static_cast<uint32_t>(index)] == was.serverLineage[info.serverIndex])
          app->pool->release(static_cast<uint32_t>(index));
      }
    }
  }
  sessionEnded(info.epoch);
}

void EngineShared::registerLoop(std::atomic<uint64_t>* loopSeq) {
  std::lock_guard control(controlMutex_);
  loopSeq->store(publishSeq_.load(std::memory_order_acquire), std::memory_order_release);
  loops_.push_back(loopSeq);
}

void EngineShared::unregisterLoop(std::atomic<uint64_t>* loopSeq) {
  std::lock_guard control(controlMutex_);
  loops_.erase(std::remove(loops_.begin(), loops_.end(), loopSeq), loops_.end());
}

}  // namespace fulcrum
