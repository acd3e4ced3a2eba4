// Probe: one running check of one target (internal to the monitor).
//
// Contract:
// - startProbe() begins a tcp, http or icmp check and returns at once; it never
//   calls `done` from inside itself. `done` runs exactly once, later, from the
//   event loop, with the result; a check that has not finished within
//   config.timeoutSeconds ends with "timeout after N ms (<phase>)".
// - The owner destroys the probe from inside `done` or at any time before;
//   destroying it cancels the check: sockets closed, events freed, no `done`.
// - Everything runs on the event_base's thread; no call blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "control-plane/monitor/monitor_types.h"

struct event;
struct event_base;

namespace fulcrum {

class IcmpPinger;

class Probe {
 public:
  using Done = std::function<void(CheckResult)>;

  virtual ~Probe();
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

 protected:
  Probe(event_base* base, uint32_t timeoutMs, Done done);

  // Releases the probe's resources, then calls `done`, which may destroy the
  // probe: the caller must return without touching members afterwards.
  void finish(CheckResult result);
  // For a result known while starting: delivered from the event loop.
  void finishSoon(CheckResult result);
  // Closes sockets and stops events; idempotent. Derived destructors call it.
  virtual void release() = 0;
  // What a timeout says; the default is "timeout after N ms".
  virtual std::string timeoutDetail() const;

  uint32_t timeoutMs() const { return timeoutMs_; }
  int64_t elapsedMs() const;
  event_base* base() const { return base_; }

 private:
  static void onTimer(int fd, short what, void* arg);

  event_base* base_;
  uint32_t timeoutMs_;
  Done done_;
  event* timer_ = nullptr;  // the timeout, and the carrier of finishSoon()
  std::chrono::steady_clock::time_point started_;
  std::optional<CheckResult> soon_;
};

// `pinger` is used by icmp targets only.
std::unique_ptr<Probe> startProbe(event_base* base, IcmpPinger& pinger, const MonitorTarget& target,
                                  Probe::Done done);

}  // namespace fulcrum
