#include "data-plane/control_client.h"

#include <time.h>

#include "shared/log.h"

namespace fulcrum {

namespace {

timeval toTimeval(std::chrono::milliseconds ms) {
  return {static_cast<time_t>(ms.count() / 1000),
          static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

uint32_t monotonicSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint32_t>(ts.tv_sec);
}

}  // namespace

ControlClient::ControlClient(event_base* base, Engine& engine, Options options)
    : base_(base),
      engine_(engine),
      options_(std::move(options)),
      backoff_(options_.backoffMin),
      rng_(static_cast<uint32_t>(log::nowUnixUs())) {
  timer_ = event_new(base_, -1, EV_PERSIST, &ControlClient::onTimer, this);
  reconnect_ = event_new(base_, -1, 0, &ControlClient::onReconnect, this);
  logTimer_ = event_new(base_, -1, EV_PERSIST, &ControlClient::onLogTimer, this);
  heartbeatTimer_ = event_new(base_, -1, EV_PERSIST, &ControlClient::onHeartbeat, this);
}

ControlClient::~ControlClient() {
  stopping_ = true;
  if (connection_) connection_->close("engine stopping");
  event_free(timer_);
  event_free(reconnect_);
  event_free(logTimer_);
  event_free(heartbeatTimer_);
}

void ControlClient::start() {
  timeval tv = toTimeval(options_.statusInterval);
  event_add(timer_, &tv);
  timeval logTv = toTimeval(options_.logInterval);
  event_add(logTimer_, &logTv);
  connect();
}

void ControlClient::connect() {
  channel::Connection::Callbacks cb;
  cb.onConnected = [this](channel::Connection& c) {
    pb::EngineMessage m;
    pb::Hello* hello = m.mutable_hello();
    hello->set_protocol_version(channel::kProtocolVersion);
    hello->set_engine_id(options_.engineId);
    hello->set_software_version(options_.softwareVersion);
    hello->set_loops(static_cast<uint32_t>(engine_.loopCount()));
    hello->set_config_generation(engine_.generation());
    c.send(m);
  };
  cb.onFrame = [this](channel::Connection&, std::string_view payload) { onFrame(payload); };
  cb.onClose = [this](channel::Connection&, const std::string& reason) { onClosed(reason); };
  channel::Connection::Options opts;
  // Until the hello reply says otherwise, the default heartbeat applies.
  opts.idleTimeout = heartbeat_ * 3;
  connection_ = channel::Connection::connect(base_, options_.control, opts, std::move(cb));
}

void ControlClient::onClosed(const std::string& reason) {
  if (stopping_) return;
  if (accepted_) {
    std::string message = "lost the control plane: " + reason +
                          "; forwarding goes on with generation " +
                          std::to_string(engine_.generation());
    log::warning(message);
    engine_.event(4, "control", message);  // shipped once it is back
  } else if (!warnedUnreachable_) {
    log::warning("control plane not reached (" + reason + "); retrying until it answers");
  } else {
    log::debug("control plane not reached: " + reason);
  }
  warnedUnreachable_ = !accepted_;
  accepted_ = false;
  scheduleReconnect();
}

void ControlClient::scheduleReconnect() {
  rng_ = rng_ * 1103515245u + 12345u;
  // Up to 25% jitter, so engines that lost the control plane together do not
  // all come back in the same millisecond.
  auto jitter =
      std::chrono::milliseconds(backoff_.count() / 4 > 0 ? rng_ % (backoff_.count() / 4) : 0);
  timeval tv = toTimeval(backoff_ + jitter);
  event_add(reconnect_, &tv);
  backoff_ = std::min(backoff_ * 2, options_.backoffMax);
}

void ControlClient::onReconnect(evutil_socket_t, short, void* arg) {
  static_cast<ControlClient*>(arg)->connect();
}

void ControlClient::onTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ControlClient*>(arg);
  self->engine_.reclaim();
  if (self->accepted_) self->sendStatus();
}

void ControlClient::onHeartbeat(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ControlClient*>(arg);
  if (!self->accepted_) return;
  pb::EngineMessage m;
  m.mutable_heartbeat()->set_time_unix_ms(log::nowUnixMs());
  self->connection_->send(m);
}

void ControlClient::onLogTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ControlClient*>(arg);
  if (self->accepted_) self->shipLogs();
}

void ControlClient::shipLogs() {
  // Batches of at most 1000 requests per ring, so one frame stays small;
  // while the control plane is away, the rings hold what they can and count
  // the rest as dropped.
  for (int batches = 0; batches < 16; ++batches) {
    pb::EngineMessage m;
    if (engine_.takeLogs(*m.mutable_logs(), 1000) == 0) return;
    if (!connection_->send(m)) return;
  }
}

void ControlClient::sendStatus() {
  pb::EngineMessage m;
  engine_.fillStatus(*m.mutable_status(), log::nowUnixMs());
  connection_->send(m);
}

void ControlClient::onFrame(std::string_view payload) {
  pb::EngineMessage m;
  if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    connection_->close("control plane " + connection_->peer() +
                       " sent a frame that does not parse");
    return;
  }
  switch (m.body_case()) {
    case pb::EngineMessage::kHelloReply: {
      const pb::HelloReply& r = m.hello_reply();
      if (!r.accepted()) {
        log::error("control plane " + connection_->peer() + " refused this engine: " + r.reason());
        backoff_ = options_.backoffMax;  // retrying fast would not change its mind
        connection_->close("refused: " + r.reason());
        return;
      }
      accepted_ = true;
      warnedUnreachable_ = false;
      backoff_ = options_.backoffMin;
      // Both sides now keep the control plane's rhythm: we send a heartbeat
      // every interval (status alone comes only every second) and drop the
      // control plane after three silent ones.
      if (r.heartbeat_interval_ms() > 0)
        heartbeat_ = std::chrono::milliseconds(r.heartbeat_interval_ms());
      connection_->setIdleTimeout(heartbeat_ * 3);
      {
        timeval hb = toTimeval(heartbeat_);
        event_add(heartbeatTimer_, &hb);
      }
      log::info("connected to the control plane " + connection_->peer() + " (version " +
                r.software_version() + ")");
      sendStatus();
      return;
    }
    case pb::EngineMessage::kSnapshot: {
      std::string error;
      if (engine_.applySnapshot(m.snapshot(), &error)) {
        std::string message =
            "configuration generation " + std::to_string(m.snapshot().generation()) + " applied";
        log::info(message);
        engine_.event(6, "config", message);
        if (options_.onApplied &&
            !options_.onApplied(engine_.shared().current()->config(), &error)) {
          log::error("packet I/O: " + error);
          engine_.event(3, "io", "packet I/O: " + error);
        }
        sendStatus();
      } else {
        std::string message = "configuration generation " +
                              std::to_string(m.snapshot().generation()) + " not applied, keeping " +
                              std::to_string(engine_.generation()) + ": " + error;
        log::error(message);
        engine_.event(3, "config", message);
      }
      return;
    }
    case pb::EngineMessage::kUpdate:
      engine_.applyUpdate(m.update());
      return;
    case pb::EngineMessage::kDumpRequest: {
      pb::EngineMessage reply;
      engine_.dumpSessions(m.dump_request(), *reply.mutable_dump_reply(), monotonicSeconds());
      connection_->send(reply);
      return;
    }
    case pb::EngineMessage::kClearRequest: {
      pb::EngineMessage reply;
      reply.mutable_clear_reply()->set_request_id(m.clear_request().request_id());
      reply.mutable_clear_reply()->set_cleared(
          engine_.clearSessions(m.clear_request().application()));
      connection_->send(reply);
      return;
    }
    case pb::EngineMessage::kHeartbeat:
      return;
    default:
      log::warning("unexpected message " + std::to_string(m.body_case()) +
                   " from the control plane");
  }
}

}  // namespace fulcrum
