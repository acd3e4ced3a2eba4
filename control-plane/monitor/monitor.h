// Monitor: health checks of servers (DESIGN.md, "Control plane": server
// monitor), all on one libevent event_base: no thread per check, non-blocking
// sockets, hundreds of servers at once.
//
// Contract:
// - setTargets() replaces the monitored set. A target whose (application,
//   server, address, port, config) is unchanged keeps its state, counters and
//   schedule, and gets no new report; a new or changed one starts unknown;
//   a removed one stops at once: its check in flight is cancelled (sockets
//   closed) and it is never reported again. Targets of type kNone are ignored;
//   of two targets with the same (application, server), the first is kept.
// - Schedule: each target is checked every config.intervalSeconds, on a fixed
//   grid; the first check comes after firstCheckOffsetMs() (within the first
//   interval, a fixed function of the names). A check that has not finished
//   within config.timeoutSeconds fails ("timeout after N ms (...)").
// - Checks of one target never overlap. A tick that finds the previous check
//   still running is not skipped but deferred: the next check starts as soon
//   as the running one ends (by result or by its timeout). The configuration
//   keeps timeout <= interval, so this only absorbs the few microseconds by
//   which a timeout equal to the interval trails the tick; further ticks missed
//   while the event loop was stalled are dropped, not run in a burst.
// - State (see health_state.h): unknown until the first result, which decides
//   directly (ok -> up, failure -> down); then an up server goes down after
//   `fall` consecutive failures and a down server comes up after `rise`
//   consecutive successes. The first result and every change of `up` are
//   reported through onChange; nothing else is.
// - Checks: tcp = non-blocking connect, ok once established (then closed
//   gracefully); http = connect, "GET <path> HTTP/1.0" (http_response.h),
//   read at most 64 KiB of the answer, ok when the status is in `expect` and
//   the body contains `expectBody` (when set); icmp = one echo request over a
//   socket shared by all icmp targets (icmp_pinger.h), IPv4 only: an IPv6
//   target fails with "IPv6 monitoring not supported yet". tcp and http work
//   over IPv4 and IPv6.
// - `base` must outlive the Monitor.
// - Threading: every method and onChange run on the event_base's thread.
//   onChange may call setTargets() and health(); it must not destroy the
//   Monitor. The destructor cancels every check and closes every socket;
//   onChange is never called after it.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "control-plane/monitor/icmp_pinger.h"
#include "control-plane/monitor/monitor_types.h"

struct event_base;

namespace fulcrum {

struct MonitorOptions {
  IcmpSocketPolicy icmpSocket = IcmpSocketPolicy::kRawThenPing;
};

class Monitor {
 public:
  using OnChange = std::function<void(const ServerHealth&)>;

  Monitor(event_base* base, OnChange onChange, MonitorOptions options = {});
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  void setTargets(std::vector<MonitorTarget> targets);

  // One entry per monitored target, in the order setTargets() received them.
  std::vector<ServerHealth> health() const;

  // Checks running right now (for tests and status).
  size_t checksInFlight() const;

 private:
  struct Target;

  IcmpPinger& pinger();

  event_base* base_;
  OnChange onChange_;
  MonitorOptions options_;
  // Declared before targets_ so that it outlives them: their icmp probes
  // cancel their tickets with it when destroyed.
  std::unique_ptr<IcmpPinger> pinger_;
  std::vector<std::unique_ptr<Target>> targets_;
};

}  // namespace fulcrum
