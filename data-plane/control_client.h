// ControlClient: fulcrum-data's side of the engine channel, on a libevent
// base of its own thread (the only part of the data plane that touches
// libevent).
//
// Connects to the control plane and says hello; applies the snapshot and the
// updates it receives to the Engine; sends status every second and answers
// session dumps and clears. When the connection drops (or never comes up) it
// retries with exponential backoff (100 ms doubling to 5 s, with jitter) and
// keeps the running configuration: packet loops never stop forwarding.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "data-plane/engine.h"
#include "shared/channel/channel.h"

namespace fulcrum {

class ControlClient {
 public:
  struct Options {
    channel::Endpoint control;
    std::string engineId;
    std::string softwareVersion;
    std::chrono::milliseconds statusInterval{1000};
    std::chrono::milliseconds logInterval{50};  // request logs and events go out this often
    std::chrono::milliseconds backoffMin{100};
    std::chrono::milliseconds backoffMax{5000};
    // After a snapshot is applied: attach the packet I/O to its service sets
    // (e.g. open TUN devices). A failure is logged and reported as an event.
    std::function<bool(const Config&, std::string* error)> onApplied;
  };
  ControlClient(event_base* base, Engine& engine, Options options);
  ~ControlClient();
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  void start();
  bool connected() const { return accepted_; }

 private:
  void connect();
  void scheduleReconnect();
  void onFrame(std::string_view payload);
  void onClosed(const std::string& reason);
  void sendStatus();
  void shipLogs();
  static void onTimer(evutil_socket_t, short, void* self);
  static void onLogTimer(evutil_socket_t, short, void* self);
  static void onHeartbeat(evutil_socket_t, short, void* self);
  static void onReconnect(evutil_socket_t, short, void* self);

  event_base* base_;
  Engine& engine_;
  Options options_;
  std::shared_ptr<channel::Connection> connection_;
  bool accepted_ = false;
  bool stopping_ = false;
  bool warnedUnreachable_ = false;  // said once per outage, then only at debug level
  std::chrono::milliseconds backoff_;
  std::chrono::milliseconds heartbeat_{1000};
  event* timer_ = nullptr;      // status and heartbeat, every statusInterval
  event* reconnect_ = nullptr;  // one-shot
  event* logTimer_ = nullptr;   // every logInterval
  event* heartbeatTimer_ = nullptr;  // every heartbeat interval the control plane asked for
  uint32_t rng_;
};

}  // namespace fulcrum
