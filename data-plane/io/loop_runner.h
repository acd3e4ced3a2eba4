// LoopRunner: the packet loops of fulcrum-data, one thread each (pinned to a
// core), each owning one queue of each service interface.
//
// A loop polls its queues, receives a burst from each, runs it through its
// PacketProcessor (inside interface = egress, outside = ingress) and sends
// what is forwarded out of the other interface of the same service set. It
// reads the clock once per burst and ages a slice of the session table on
// every turn, so an idle loop still expires sessions and passes quiescent
// points for configuration swaps.
//
// Service interfaces follow the configuration: sync() (control thread) opens
// the TUN queues of every service set and hands each loop its new set of
// ports; a loop picks them up at its next turn (an atomic flag, then a
// short-lived lock only when something changed), never mid-burst.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data-plane/engine.h"
#include "data-plane/io/packet_io.h"
#include "shared/config/config_types.h"

namespace fulcrum {

class LoopRunner {
 public:
  // Opens one queue of interface `name`.
  using QueueFactory =
      std::function<std::unique_ptr<PacketQueue>(const std::string& name, std::string* error)>;
  // Brings an interface up once its queues exist.
  using LinkUp = std::function<bool(const std::string& name, std::string* error)>;

  // `burst`: packets taken from a queue per turn, 1 to PacketProcessor::kMaxBurst.
  // `busyPollUs`: after its last packet, a loop keeps polling its queues
  // without sleeping for this long (0: it sleeps in poll() at once), which
  // spares the wakeup of a loop that would have slept for microseconds, at
  // the price of a core spinning meanwhile.
  // `pinLoops`: loop i runs on core i (modulo the cores) only; otherwise the
  // scheduler places the loops.
  LoopRunner(Engine& engine, QueueFactory factory, LinkUp linkUp,
             size_t burst = PacketProcessor::kMaxBurst, uint32_t busyPollUs = 0,
             bool pinLoops = true);
  ~LoopRunner();
  LoopRunner(const LoopRunner&) = delete;
  LoopRunner& operator=(const LoopRunner&) = delete;

  // Control thread. Opens the queues of every service set in `config` (one
  // of each interface per loop; kept when a service set keeps its
  // interfaces) and gives them to the loops. False with *error when an
  // interface cannot be opened; the loops then keep their previous ports.
  bool sync(const Config& config, std::string* error);
  void start();
  void stop();

 private:
  struct Pair {
    std::string inside, outside;  // interface names
    uint16_t serviceSet = 0;
    std::shared_ptr<PacketQueue> in, out;
  };
  struct Ports {
    std::vector<Pair> pairs;
  };
  struct Loop {
    std::thread thread;
    std::mutex mutex;                   // guards next
    std::shared_ptr<const Ports> next;  // handed over by sync()
    std::atomic<bool> changed{false};
  };
  void run(size_t index);

  Engine& engine_;
  QueueFactory factory_;
  LinkUp linkUp_;
  size_t burst_;
  uint32_t busyPollUs_;
  bool pinLoops_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::shared_ptr<const Ports>> current_;  // control thread's view, per loop
  std::atomic<bool> stop_{false};
};

}  // namespace fulcrum
