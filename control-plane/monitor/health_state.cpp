#include "control-plane/monitor/health_state.h"

#include <algorithm>
#include <utility>

#include "shared/net/hash.h"

namespace fulcrum {

bool recordResult(ServerHealth& health, CheckResult result, uint32_t rise, uint32_t fall,
                  int64_t nowUnixMs) {
  const bool ok = result.ok;
  health.last = std::move(result);
  ++health.checks;
  if (ok) {
    ++health.consecutiveOk;
    health.consecutiveFail = 0;
  } else {
    ++health.consecutiveFail;
    health.consecutiveOk = 0;
  }
  if (!health.known) {
    // Waiting for `rise`/`fall` results before saying anything would leave a
    // freshly configured server in limbo for up to fall x interval; one result
    // is better information than none.
    health.known = true;
    health.up = ok;
    health.sinceUnixMs = nowUnixMs;
    return true;
  }
  const uint32_t needed = ok ? std::max<uint32_t>(rise, 1) : std::max<uint32_t>(fall, 1);
  const uint32_t have = ok ? health.consecutiveOk : health.consecutiveFail;
  if (health.up != ok && have >= needed) {
    health.up = ok;
    health.sinceUnixMs = nowUnixMs;
    return true;
  }
  return false;
}

uint32_t firstCheckOffsetMs(std::string_view application, std::string_view server,
                            uint32_t intervalMs) {
  if (intervalMs == 0) return 0;
  // The names are hashed apart and then mixed, so that ("a", "bc") and
  // ("ab", "c") land at different phases.
  const uint64_t h = hash::mix64(hash::fnv1a(application) ^ hash::mix64(hash::fnv1a(server)));
  return static_cast<uint32_t>(h % intervalMs);
}

}  // namespace fulcrum
