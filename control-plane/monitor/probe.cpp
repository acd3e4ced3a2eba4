#include "control-plane/monitor/probe.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "control-plane/monitor/http_response.h"
#include "control-plane/monitor/icmp_pinger.h"

namespace fulcrum {

namespace {

// libevent returns null only when out of memory; so does operator new.
event* newEvent(event_base* base, int fd, short what, event_callback_fn fn, void* arg) {
  event* ev = event_new(base, fd, what, fn, arg);
  if (!ev) throw std::bad_alloc();
  return ev;
}

std::string errnoText(int err) {
  return std::strerror(err);
}

std::string inMs(int64_t ms) {
  return " in " + std::to_string(ms) + " ms";
}

// tcp and http: a non-blocking connect, then for http one request and a
// bounded read of the response.
class StreamProbe final : public Probe {
 public:
  StreamProbe(event_base* base, const MonitorTarget& target, Done done)
      : Probe(base, target.config.timeoutSeconds * 1000, std::move(done)),
        http_(target.config.type == MonitorType::kHttp),
        config_(target.config) {
    if (http_) request_ = buildHttpRequest(target.address, target.port, target.config.path);
  }
  ~StreamProbe() override { release(); }

  void begin(const IpAddress& address, uint16_t port) {
    sockaddr_storage to{};
    socklen_t toLength = 0;
    if (address.isV4()) {
      auto* in = reinterpret_cast<sockaddr_in*>(&to);
      in->sin_family = AF_INET;
      in->sin_port = htons(port);
      in->sin_addr.s_addr = htonl(address.v4HostOrder());
      toLength = sizeof(sockaddr_in);
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&to);
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(port);
      std::memcpy(in6->sin6_addr.s6_addr, address.bytes().data(), 16);
      toLength = sizeof(sockaddr_in6);
    }
    fd_ = socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return finishSoon({false, "socket: " + errnoText(errno)});
    if (connect(fd_, reinterpret_cast<const sockaddr*>(&to), toLength) != 0 &&
        errno != EINPROGRESS) {
      // Loopback refusals and local errors (no route, no free port) come
      // back at once; they are results like any other.
      return finishSoon({false, "connect: " + errnoText(errno)});
    }
    // Writable = the connect finished, one way or the other (also when it
    // already succeeded above: the socket is writable at once).
    writeEvent_ = newEvent(base(), fd_, EV_WRITE | EV_PERSIST, &StreamProbe::onWritable, this);
    event_add(writeEvent_, nullptr);
  }

 private:
  enum class Phase : uint8_t { kConnecting, kSending, kReceiving };

  static void onWritable(int, short, void* arg) { static_cast<StreamProbe*>(arg)->writable(); }
  static void onReadable(int, short, void* arg) { static_cast<StreamProbe*>(arg)->readable(); }

  void writable() {
    if (phase_ == Phase::kConnecting) {
      int err = 0;
      socklen_t len = sizeof(err);
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) return finish({false, "connect: " + errnoText(err)});
      if (!http_) return finish({true, "connected" + inMs(elapsedMs())});
      phase_ = Phase::kSending;
    }
    while (sent_ < request_.size()) {
      const ssize_t n = send(fd_, request_.data() + sent_, request_.size() - sent_, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // writable again later
        return finish({false, "send: " + errnoText(errno)});
      }
      sent_ += static_cast<size_t>(n);
    }
    event_del(writeEvent_);
    phase_ = Phase::kReceiving;
    response_.reserve(4096);
    readEvent_ = newEvent(base(), fd_, EV_READ | EV_PERSIST, &StreamProbe::onReadable, this);
    event_add(readEvent_, nullptr);
  }

  void readable() {
    char buf[16 * 1024];
    for (;;) {
      const size_t room = kMaxHttpResponseBytes - response_.size();
      const ssize_t n = recv(fd_, buf, std::min(room, sizeof(buf)), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        // A verdict the bytes so far allowed was already given; so these
        // bytes are not enough, and the reset is the story to tell.
        std::string detail = "recv: " + errnoText(errno);
        if (!response_.empty()) detail += " after " + std::to_string(response_.size()) + " bytes";
        return finish({false, std::move(detail)});
      }
      if (n == 0) return judge(ResponseEnd::kClosed);
      response_.append(buf, static_cast<size_t>(n));
      if (response_.size() >= kMaxHttpResponseBytes) return judge(ResponseEnd::kCapped);
      // Judging early lets a server that ignores "Connection: close" (or is
      // slow to close) pass as soon as its answer is complete.
      if (auto r = evaluateHttpResponse(response_, ResponseEnd::kOpen, config_)) {
        return finishJudged(std::move(*r));
      }
    }
  }

  void judge(ResponseEnd end) {
    auto r = evaluateHttpResponse(response_, end, config_);
    finishJudged(r ? std::move(*r) : CheckResult{false, "response undecidable"});
  }

  void finishJudged(CheckResult r) {
    if (r.ok) r.detail += inMs(elapsedMs());
    finish(std::move(r));
  }

  void release() override {
    if (readEvent_) event_free(readEvent_);
    if (writeEvent_) event_free(writeEvent_);
    readEvent_ = writeEvent_ = nullptr;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  std::string timeoutDetail() const override {
    std::string d = "timeout after " + std::to_string(timeoutMs()) + " ms";
    switch (phase_) {
      case Phase::kConnecting:
        return d + " (connecting)";
      case Phase::kSending:
        return d + " (sending the request)";
      case Phase::kReceiving:
        return response_.empty() ? d + " (no response)"
                                 : d + " (response incomplete after " +
                                       std::to_string(response_.size()) + " bytes)";
    }
    return d;
  }

  bool http_;
  MonitorConfig config_;
  int fd_ = -1;
  event* writeEvent_ = nullptr;
  event* readEvent_ = nullptr;
  Phase phase_ = Phase::kConnecting;
  std::string request_;
  size_t sent_ = 0;
  std::string response_;
};

class IcmpProbe final : public Probe {
 public:
  IcmpProbe(event_base* base, IcmpPinger& pinger, const MonitorTarget& target, Done done)
      : Probe(base, target.config.timeoutSeconds * 1000, std::move(done)), pinger_(pinger) {}
  ~IcmpProbe() override { release(); }

  void begin(const IpAddress& address) {
    if (!address.isV4()) return finishSoon({false, "IPv6 monitoring not supported yet"});
    IcmpPinger::Sent sent = pinger_.ping(address.v4HostOrder(), [this] {
      ticket_ = 0;  // the pinger has forgotten it
      finish({true, "echo reply" + inMs(elapsedMs())});
    });
    if (sent.ticket == 0) return finishSoon({false, std::move(sent.error)});
    ticket_ = sent.ticket;
  }

 private:
  void release() override {
    if (ticket_ != 0) pinger_.cancel(ticket_);
    ticket_ = 0;
  }
  std::string timeoutDetail() const override {
    return "timeout after " + std::to_string(timeoutMs()) + " ms (no echo reply)";
  }

  IcmpPinger& pinger_;
  uint64_t ticket_ = 0;
};

}  // namespace

Probe::Probe(event_base* base, uint32_t timeoutMs, Done done)
    : base_(base),
      timeoutMs_(std::max<uint32_t>(timeoutMs, 1)),
      done_(std::move(done)),
      started_(std::chrono::steady_clock::now()) {
  timer_ = newEvent(base_, -1, 0, &Probe::onTimer, this);
  const timeval tv{static_cast<time_t>(timeoutMs_ / 1000),
                   static_cast<suseconds_t>((timeoutMs_ % 1000) * 1000)};
  event_add(timer_, &tv);
}

Probe::~Probe() {
  event_free(timer_);
}

void Probe::finish(CheckResult result) {
  event_del(timer_);
  release();
  // Moved to the stack: `done` usually destroys this probe, and with it done_.
  Done done = std::move(done_);
  done_ = nullptr;
  if (done) done(std::move(result));
}

void Probe::finishSoon(CheckResult result) {
  soon_ = std::move(result);
  const timeval now{0, 0};
  event_add(timer_, &now);
}

std::string Probe::timeoutDetail() const {
  return "timeout after " + std::to_string(timeoutMs_) + " ms";
}

int64_t Probe::elapsedMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               started_)
      .count();
}

void Probe::onTimer(int, short, void* arg) {
  auto* self = static_cast<Probe*>(arg);
  if (self->soon_) return self->finish(std::move(*self->soon_));
  self->finish({false, self->timeoutDetail()});
}

std::unique_ptr<Probe> startProbe(event_base* base, IcmpPinger& pinger, const MonitorTarget& target,
                                  Probe::Done done) {
  switch (target.config.type) {
    case MonitorType::kTcp:
    case MonitorType::kHttp: {
      auto p = std::make_unique<StreamProbe>(base, target, std::move(done));
      p->begin(target.address, target.port);
      return p;
    }
    case MonitorType::kIcmp: {
      auto p = std::make_unique<IcmpProbe>(base, pinger, target, std::move(done));
      p->begin(target.address);
      return p;
    }
    case MonitorType::kNone:
      break;
  }
  return nullptr;
}

}  // namespace fulcrum
