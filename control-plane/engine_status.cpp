#include "control-plane/engine_status.h"

#include <algorithm>
#include <limits>

namespace fulcrum {

namespace {

uint64_t addSaturating(uint64_t a, uint64_t b) {
  return b > std::numeric_limits<uint64_t>::max() - a ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

// The summed counters, in the order storeTotals() promises.
struct SummedField {
  const char* name;
  uint64_t (pb::AffinityStoreStatus::*get)() const;
};
constexpr SummedField kSummed[] = {
    {"store_requests", &pb::AffinityStoreStatus::requests},
    {"store_answered", &pb::AffinityStoreStatus::answered},
    {"store_failed", &pb::AffinityStoreStatus::failed},
    {"store_timeouts", &pb::AffinityStoreStatus::timeouts},
    {"store_down_decisions", &pb::AffinityStoreStatus::down_decisions},
    {"store_cache_hits", &pb::AffinityStoreStatus::cache_hits},
    {"store_cache_misses", &pb::AffinityStoreStatus::cache_misses},
    {"store_reconnects", &pb::AffinityStoreStatus::reconnects},
    {"store_session_sync_writes", &pb::AffinityStoreStatus::session_sync_writes},
    {"store_session_sync_recoveries", &pb::AffinityStoreStatus::session_sync_recoveries},
};

}  // namespace

std::vector<std::pair<std::string, uint64_t>> storeTotals(
    const std::vector<const pb::EngineStatus*>& statuses) {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const SummedField& f : kSummed) {
    uint64_t sum = 0;
    for (const pb::EngineStatus* s : statuses) {
      if (s->has_affinity_store()) sum = addSaturating(sum, (s->affinity_store().*f.get)());
    }
    out.emplace_back(f.name, sum);
  }
  // An average of averages would let an idle engine weigh as much as a busy
  // one; weighting by answered requests gives the average over all of them.
  long double weighted = 0;
  long double answered = 0;
  uint64_t latencyMax = 0;
  uint64_t down = 0;
  for (const pb::EngineStatus* s : statuses) {
    if (!s->has_affinity_store()) continue;
    const pb::AffinityStoreStatus& a = s->affinity_store();
    weighted += static_cast<long double>(a.latency_avg_us()) * a.answered();
    answered += a.answered();
    latencyMax = std::max(latencyMax, a.latency_max_us());
    if (a.state() == "down") ++down;
  }
  out.emplace_back("store_latency_avg_us",
                   answered > 0 ? static_cast<uint64_t>(weighted / answered + 0.5L) : 0);
  out.emplace_back("store_latency_max_us", latencyMax);
  out.emplace_back("store_engines_down", down);
  return out;
}

std::optional<StoreTransition> watchStore(StoreWatch& watch, std::string_view engineId,
                                          const pb::EngineStatus& status) {
  if (!status.has_affinity_store()) {
    watch = {};
    return std::nullopt;
  }
  const pb::AffinityStoreStatus& store = status.affinity_store();
  const std::string& state = store.state();
  if (state != "up" && state != "down") {
    // "connecting" is on the way between two settled states; anything else
    // ("local", or a word this control plane does not know) has no outage.
    if (state != "connecting") watch = {};
    return std::nullopt;
  }
  const std::string& address = store.address().empty() ? store.kind() : store.address();
  if (address != watch.address) {
    // Another store (a commit changed it): what was known of the old one
    // says nothing about this one.
    watch.address = address;
    watch.settled.clear();
  }
  const std::string previous = std::exchange(watch.settled, state);
  const std::string prefix =
      "engine " + std::string(engineId) + ": affinity store " + address + " is ";
  if (state == "down" && previous != "down") {
    return StoreTransition{
        true, prefix + "down" + (store.last_error().empty() ? "" : ": " + store.last_error())};
  }
  if (state == "up" && previous == "down") return StoreTransition{false, prefix + "up"};
  return std::nullopt;
}

}  // namespace fulcrum
