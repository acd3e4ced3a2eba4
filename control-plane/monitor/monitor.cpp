#include "control-plane/monitor/monitor.h"

#include <event2/event.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <new>
#include <set>
#include <utility>

#include "control-plane/monitor/health_state.h"
#include "control-plane/monitor/probe.h"

namespace fulcrum {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int64_t unixNowMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

timeval toTimeval(Clock::duration d) {
  if (d < Clock::duration::zero()) d = Clock::duration::zero();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
}

}  // namespace

struct Monitor::Target {
  Target(Monitor& owner, MonitorTarget t) : monitor(owner), target(std::move(t)) {
    health.application = target.application;
    health.server = target.server;
    health.sinceUnixMs = unixNowMs();
    interval = milliseconds(std::max<uint32_t>(target.config.intervalSeconds, 1) * 1000);
    tick = event_new(monitor.base_, -1, 0, &Target::onTick, this);
    if (!tick) throw std::bad_alloc();
    const uint32_t offsetMs = firstCheckOffsetMs(target.application, target.server,
                                                 static_cast<uint32_t>(interval.count()));
    nextTick = Clock::now() + milliseconds(offsetMs);
    const timeval tv = toTimeval(milliseconds(offsetMs));
    event_add(tick, &tv);
  }
  ~Target() {
    probe.reset();  // cancels the check in flight: no result, sockets closed
    event_free(tick);
  }
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  static void onTick(int, short, void* arg) { static_cast<Target*>(arg)->ticked(); }

  void ticked() {
    // A fixed grid, not "interval after the last check": checks keep their
    // phase, so the spread set up by the first offset survives. Ticks missed
    // while the loop was stalled are dropped rather than run in a burst.
    const auto now = Clock::now();
    nextTick += interval;
    if (nextTick <= now) nextTick += ((now - nextTick) / interval + 1) * interval;
    const timeval tv = toTimeval(nextTick - now);
    event_add(tick, &tv);
    if (probe) {
      tickWaiting = true;
      return;
    }
    startCheck();
  }

  void startCheck() {
    probe = startProbe(monitor.base_, monitor.pinger(), target,
                       [this](CheckResult r) { finished(std::move(r)); });
  }

  void finished(CheckResult result) {
    // Destroys the probe whose finish() called us; it touches nothing after.
    probe.reset();
    const bool report = recordResult(health, std::move(result), target.config.rise,
                                     target.config.fall, unixNowMs());
    if (tickWaiting) {
      tickWaiting = false;
      startCheck();  // never completes synchronously, so no recursion
    }
    if (!report) return;
    // Last statement: onChange may call setTargets(), which may destroy this.
    const ServerHealth copy = health;
    monitor.onChange_(copy);
  }

  Monitor& monitor;
  const MonitorTarget target;
  ServerHealth health;
  milliseconds interval;
  event* tick = nullptr;
  Clock::time_point nextTick;
  std::unique_ptr<Probe> probe;
  bool tickWaiting = false;  // a tick came while `probe` was still running
};

Monitor::Monitor(event_base* base, OnChange onChange, MonitorOptions options)
    : base_(base), onChange_(std::move(onChange)), options_(options) {}

Monitor::~Monitor() {
  targets_.clear();  // before pinger_, explicitly (member order says the same)
}

IcmpPinger& Monitor::pinger() {
  // Created on first use so that a Monitor without icmp targets never opens
  // a raw socket; kept until the destructor, because a reply callback running
  // inside the pinger may lead (through onChange) to setTargets().
  if (!pinger_) pinger_ = std::make_unique<IcmpPinger>(base_, options_.icmpSocket);
  return *pinger_;
}

void Monitor::setTargets(std::vector<MonitorTarget> targets) {
  using Key = std::pair<std::string, std::string>;
  std::map<Key, std::unique_ptr<Target>> old;
  for (auto& t : targets_) {
    Key key{t->target.application, t->target.server};
    old.emplace(std::move(key), std::move(t));
  }
  targets_.clear();

  std::set<Key> seen;
  std::vector<std::unique_ptr<Target>> next;
  next.reserve(targets.size());
  for (auto& t : targets) {
    if (t.config.type == MonitorType::kNone) continue;
    Key key{t.application, t.server};
    if (!seen.insert(key).second) continue;
    auto it = old.find(key);
    if (it != old.end() && it->second->target == t) {
      next.push_back(std::move(it->second));
      old.erase(it);
    } else {
      next.push_back(std::make_unique<Target>(*this, std::move(t)));
    }
  }
  targets_ = std::move(next);
  // `old` now holds the removed and the changed targets; leaving scope
  // cancels their checks.
}

std::vector<ServerHealth> Monitor::health() const {
  std::vector<ServerHealth> out;
  out.reserve(targets_.size());
  for (const auto& t : targets_) out.push_back(t->health);
  return out;
}

size_t Monitor::checksInFlight() const {
  return static_cast<size_t>(std::count_if(targets_.begin(), targets_.end(),
                                           [](const auto& t) { return t->probe != nullptr; }));
}

}  // namespace fulcrum
