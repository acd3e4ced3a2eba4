// What the control plane makes of the engines' periodic status
// (pb::EngineStatus) for the management API and the event log: the
// affinity-store totals of `show statistics`, and the store's state changes
// that become syslog events. Pure functions over protobuf messages, so that
// they are tested without sockets or daemons.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/proto/fulcrum.pb.h"

namespace fulcrum {

// The affinity-store counters of every status in `statuses` that has one,
// as (name, value) in this order: store_requests, store_answered,
// store_failed, store_timeouts, store_down_decisions, store_cache_hits,
// store_cache_misses, store_reconnects, store_session_sync_writes,
// store_session_sync_recoveries (each the sum over engines), then
// store_latency_avg_us (the engines' averages weighted by their answered
// requests; 0 when none was answered), store_latency_max_us (the largest)
// and store_engines_down (engines whose store state is "down"). Statuses
// without an affinity store (engines older than the field) count as zeros;
// sums saturate instead of wrapping.
std::vector<std::pair<std::string, uint64_t>> storeTotals(
    const std::vector<const pb::EngineStatus*>& statuses);

// What the control plane remembers of one engine's store between two
// status reports: the last settled state ("up" or "down") and the store it
// was about. One per engine connection, default-constructed at hello.
struct StoreWatch {
  std::string address;
  std::string settled;  // "up", "down", or empty: not known yet
};

// A state change worth one event line.
struct StoreTransition {
  bool down = false;    // true: the store went down (a warning); false: it is back up
  std::string message;  // "engine lb1: affinity store redis://198.18.5.2:6379/0 is down: ..."
};

// Feeds one status of engine `engineId` to `watch` and returns the event
// it causes, if any:
// - the store is reported "down" and was not known to be down (first report,
//   or it was up, or it is a different store than before): "... is down",
//   with ": LAST-ERROR" when the engine gave one;
// - the store is reported "up" and was last known "down" (the same store):
//   "... is up".
// "connecting" keeps the last settled state (up -> connecting -> down is one
// event; down -> connecting -> up too); "local", or a status without an
// affinity store, forgets it (the embedded store cannot be down). The
// engine's words go in as they are: the syslog writer escapes control
// characters.
std::optional<StoreTransition> watchStore(StoreWatch& watch, std::string_view engineId,
                                          const pb::EngineStatus& status);

}  // namespace fulcrum
