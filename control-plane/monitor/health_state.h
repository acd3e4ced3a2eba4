// The rise/fall state machine and the first-check schedule of the monitor,
// as pure functions so that they are tested without a network or a clock.
#pragma once

#include <cstdint>
#include <string_view>

#include "control-plane/monitor/monitor_types.h"

namespace fulcrum {

// Folds one finished check into `health` (counters, `last`, state) and returns
// true when the caller must report it:
// - the first result decides directly (ok -> up, failure -> down) and is
//   always reported; `sinceUnixMs` becomes `nowUnixMs`;
// - afterwards an up server goes down on its `fall`-th consecutive failure and
//   a down server comes up on its `rise`-th consecutive success; each change
//   is reported and sets `sinceUnixMs`. Nothing else is reported.
// rise/fall of 0 count as 1 (the configuration allows 1..100).
bool recordResult(ServerHealth& health, CheckResult result, uint32_t rise, uint32_t fall,
                  int64_t nowUnixMs);

// Delay of a target's first check, in [0, intervalMs): a fixed function of the
// application and server names, so that hundreds of servers configured at once
// spread over the first interval, and a restarted control plane checks each
// server at the same phase as before. intervalMs 0 gives 0.
uint32_t firstCheckOffsetMs(std::string_view application, std::string_view server,
                            uint32_t intervalMs);

}  // namespace fulcrum
