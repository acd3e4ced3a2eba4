#include "data-plane/io/loop_runner.h"

#include <poll.h>

#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <algorithm>

#include "shared/log.h"

namespace fulcrum {

namespace {

uint32_t monotonicSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint32_t>(ts.tv_sec);
}

constexpr size_t kBurst = PacketProcessor::kMaxBurst;
constexpr int kPollMs = 10;
// A loop ages its whole slice of the table about once a second, a share per
// turn in proportion to the time since its last turn, so a session is gone
// within a second of its timeout whether the loop is busy or idle.
constexpr uint64_t kSweepPeriodMs = 1000;

uint64_t monotonicUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

}  // namespace

LoopRunner::LoopRunner(Engine& engine, QueueFactory factory, LinkUp linkUp, size_t burst,
                       uint32_t busyPollUs, bool pinLoops)
    : engine_(engine),
      factory_(std::move(factory)),
      linkUp_(std::move(linkUp)),
      burst_(std::clamp<size_t>(burst, 1, kBurst)),
      busyPollUs_(busyPollUs),
      pinLoops_(pinLoops) {
  for (size_t i = 0; i < engine_.loopCount(); ++i) {
    loops_.push_back(std::make_unique<Loop>());
    current_.push_back(std::make_shared<Ports>());
    // Loop i ages its own share of the table's buckets.
    const uint64_t buckets = engine_.shared().table.bucketCount();
    const uint64_t n = engine_.loopCount();
    engine_.loop(i).setExpirySlice(static_cast<uint32_t>(buckets * i / n),
                                   static_cast<uint32_t>(buckets * (i + 1) / n));
  }
}

LoopRunner::~LoopRunner() {
  stop();
}

bool LoopRunner::sync(const Config& config, std::string* error) {
  std::vector<std::shared_ptr<Ports>> next(loops_.size());
  for (auto& p : next) p = std::make_shared<Ports>();
  std::vector<std::string> opened;
  for (size_t ss = 0; ss < config.serviceSets.size(); ++ss) {
    const ServiceSetConfig& set = config.serviceSets[ss];
    for (size_t l = 0; l < loops_.size(); ++l) {
      Pair pair;
      pair.inside = set.insideInterface;
      pair.outside = set.outsideInterface;
      pair.serviceSet = static_cast<uint16_t>(ss);
      // Queues of a service set that keeps its interfaces are reused.
      for (const Pair& old : current_[l]->pairs) {
        if (old.inside == pair.inside && old.outside == pair.outside && !old.in->dead() &&
            !old.out->dead()) {
          pair.in = old.in;
          pair.out = old.out;
        }
      }
      if (!pair.in) {
        std::unique_ptr<PacketQueue> in = factory_(pair.inside, error);
        if (!in) return false;
        std::unique_ptr<PacketQueue> out = factory_(pair.outside, error);
        if (!out) return false;
        pair.in = std::move(in);
        pair.out = std::move(out);
        if (l == 0) {
          opened.push_back(pair.inside);
          opened.push_back(pair.outside);
        }
      }
      next[l]->pairs.push_back(std::move(pair));
    }
  }
  for (const std::string& name : opened)
    if (!linkUp_(name, error)) return false;
  for (size_t l = 0; l < loops_.size(); ++l) {
    current_[l] = next[l];
    std::lock_guard lock(loops_[l]->mutex);
    loops_[l]->next = next[l];
    loops_[l]->changed.store(true, std::memory_order_release);
  }
  if (!opened.empty()) {
    std::string names;
    for (const auto& n : opened) names += (names.empty() ? "" : ", ") + n;
    log::info("service interfaces up: " + names + " (" + std::to_string(loops_.size()) +
              " queues each)");
  }
  return true;
}

void LoopRunner::start() {
  stop_.store(false);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (size_t i = 0; i < loops_.size(); ++i) {
    loops_[i]->thread = std::thread([this, i] { run(i); });
    if (!pinLoops_) continue;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(i % cores, &set);
    pthread_setaffinity_np(loops_[i]->thread.native_handle(), sizeof(set), &set);
  }
}

void LoopRunner::stop() {
  stop_.store(true);
  for (auto& loop : loops_)
    if (loop->thread.joinable()) loop->thread.join();
}

void LoopRunner::run(size_t index) {
  Loop& me = *loops_[index];
  PacketProcessor& processor = engine_.loop(index);
  std::shared_ptr<const Ports> ports = std::make_shared<Ports>();
  std::vector<pollfd> fds;
  std::vector<std::unique_ptr<PacketBuffer>> storage(kBurst);
  PacketBuffer* buffers[kBurst];
  for (size_t i = 0; i < kBurst; ++i) {
    storage[i] = std::make_unique<PacketBuffer>();
    buffers[i] = storage[i].get();
  }
  PacketRef refs[kBurst];
  PacketBuffer* forward[kBurst];

  // The poll set: both queues of every pair that is still alive.
  auto pollFds = [&] {
    fds.clear();
    for (const Pair& p : ports->pairs) {
      if (p.in->dead() || p.out->dead()) continue;
      fds.push_back({p.in->pollFd(), POLLIN, 0});
      fds.push_back({p.out->pollFd(), POLLIN, 0});
    }
  };
  // A device that went away must not make poll() return at once forever.
  auto reapDead = [&] {
    bool any = false;
    for (const pollfd& f : fds) {
      if (!(f.revents & (POLLERR | POLLHUP | POLLNVAL))) continue;
      for (const Pair& p : ports->pairs) {
        for (PacketQueue* q : {p.in.get(), p.out.get()}) {
          if (q->pollFd() != f.fd || q->dead()) continue;
          q->markDead();
          log::warning("loop " + std::to_string(index) + ": a queue of " +
                       (q == p.in.get() ? p.inside : p.outside) +
                       " failed; it is reopened with the next configuration");
          any = true;
        }
      }
    }
    if (any) pollFds();
  };

  auto serve = [&](PacketQueue& from, PacketQueue& to, uint16_t serviceSet, Direction direction,
                   uint32_t now) {
    size_t n = from.receiveBurst(buffers, burst_);
    // Both queues of a pair are served from one side or the other, so this
    // sees each queue's fallbacks (at most a load each when there are none).
    if (const uint32_t f = from.takeFallbacks() + to.takeFallbacks())
      processor.countTunIoFallbacks(f);
    if (n == 0) return false;
    for (size_t i = 0; i < n; ++i)
      refs[i] = {buffers[i]->data,
                 buffers[i]->length,
                 serviceSet,
                 direction,
                 buffers[i]->l4ChecksumPartial(),
                 Verdict::kForward,
                 kMaxPacketSize,
                 buffers[i]->vnet};
    processor.processBurst(refs, n, now);
    size_t out = 0;
    for (size_t i = 0; i < n; ++i) {
      buffers[i]->length = refs[i].length;  // the HTTP filter may resize a packet
      if (refs[i].verdict == Verdict::kForward) forward[out++] = buffers[i];
    }
    size_t sent = to.transmitBurst(forward, out);
    if (sent < out) processor.countTxErrors(out - sent);
    return true;
  };

  // Packets that waited for the affinity store go out once it answered (or
  // the wait ran out).
  uint16_t resumedSets[kBurst];
  Direction resumedWays[kBurst];
  auto resumeParked = [&](uint32_t now) {
    const size_t n = processor.resume(now, buffers, resumedSets, kBurst, resumedWays);
    for (size_t k = 0; k < n; ++k) {
      bool sent = false;
      for (const Pair& p : ports->pairs) {
        if (p.serviceSet != resumedSets[k]) continue;
        // Client packets go on toward the cluster, server ones to the clients.
        PacketQueue& to = resumedWays[k] == Direction::kEgress ? *p.out : *p.in;
        sent = !to.dead() && to.transmitBurst(&buffers[k], 1) == 1;
        break;
      }
      // No device for it any more (the service set went in a commit meanwhile).
      if (!sent) processor.countTxErrors(1);
    }
    return n > 0;
  };

  const uint64_t buckets = engine_.shared().table.bucketCount();
  const uint64_t slice = (buckets + loops_.size() - 1) / loops_.size();
  uint64_t lastSweepMs = monotonicUs() / 1000;
  uint64_t lastBusyUs = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    if (me.changed.load(std::memory_order_acquire)) {
      std::lock_guard lock(me.mutex);
      ports = me.next;
      me.changed.store(false, std::memory_order_relaxed);
      pollFds();
    }
    bool busy = false;
    const uint32_t now = monotonicSeconds();
    for (const Pair& p : ports->pairs) {
      if (p.in->dead() || p.out->dead()) continue;
      busy |= serve(*p.in, *p.out, p.serviceSet, Direction::kEgress, now);
      busy |= serve(*p.out, *p.in, p.serviceSet, Direction::kIngress, now);
    }
    busy |= resumeParked(now);
    const uint64_t nowUs = monotonicUs();
    const uint64_t nowMs = nowUs / 1000;
    const uint64_t budget = std::min(slice, slice * (nowMs - lastSweepMs) / kSweepPeriodMs + 1);
    if (nowMs != lastSweepMs) {
      processor.expireStep(now, static_cast<uint32_t>(budget));
      lastSweepMs = nowMs;
    }
    if (busy) lastBusyUs = nowUs;
    if (!busy && nowUs - lastBusyUs < busyPollUs_) {
      // Busy polling: a loop that had packets a moment ago turns again
      // without sleeping, but lets whatever else waits for this core (the
      // threads that send and receive its packets, on a small machine) go first.
      sched_yield();
    } else if (!busy) {
      processor.idle();
      // Packets waiting for the store are looked after every millisecond.
      const int wait = processor.parked() > 0 ? 1 : kPollMs;
      if (fds.empty()) {
        ::poll(nullptr, 0, wait);
      } else if (::poll(fds.data(), fds.size(), wait) > 0) {
        reapDead();
      }
    }
  }
}

}  // namespace fulcrum
