// Real peers for the monitor tests, all on 127.0.0.1 (or in network
// namespaces the tests create): an event loop that only ever runs for a
// bounded time, TCP servers with scripted behaviour on that same loop, and
// python3's http.server as a child process.
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "control-plane/monitor/monitor_types.h"

namespace fulcrum::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline constexpr uint32_t kLoopback = 0x7f000001;  // 127.0.0.1

// An event_base that runs only inside runUntil()/runFor(), each bounded.
class Loop {
 public:
  Loop() : base_(event_base_new()) {
    if (!base_) throw std::runtime_error("event_base_new failed");
  }
  ~Loop() { event_base_free(base_); }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  event_base* base() const { return base_; }

  // Runs the loop until `done()` holds (checked every few ms) or `limit`
  // passes; returns done().
  bool runUntil(const std::function<bool()>& done, Clock::duration limit) {
    const auto deadline = Clock::now() + limit;
    // Wakes the loop so that `done` and the deadline are looked at even when
    // nothing else happens.
    event* poll = event_new(
        base_, -1, EV_PERSIST, [](evutil_socket_t, short, void*) {}, nullptr);
    const timeval every{0, 5000};
    event_add(poll, &every);
    bool ok = done();
    while (!ok && Clock::now() < deadline) {
      event_base_loop(base_, EVLOOP_ONCE);
      ok = done();
    }
    event_free(poll);
    return ok;
  }
  void runFor(Clock::duration d) {
    runUntil([] { return false; }, d);
  }

 private:
  event_base* base_;
};

inline sockaddr_in loopbackAddress(uint16_t port, uint32_t address = kLoopback) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(address);
  return a;
}

inline uint16_t boundPort(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.sin_port);
}

// A port on 127.0.0.1 with nothing listening: bound (so nobody else gets it
// while the test runs) but never listen()ed, so connects are refused.
class ClosedPort {
 public:
  ClosedPort() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    const sockaddr_in a = loopbackAddress(0);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) != 0) {
      throw std::runtime_error(std::string("ClosedPort: ") + std::strerror(errno));
    }
    port_ = boundPort(fd_);
  }
  ~ClosedPort() { close(fd_); }
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_;
  uint16_t port_ = 0;
};

// A TCP server on 127.0.0.1 driven by the test's event loop.
class LoopbackServer {
 public:
  enum class Behaviour {
    kClose,         // accept, then close at once (a tcp check's peer)
    kHold,          // accept, read and ignore everything, never answer
    kReplyAndHold,  // after the request's blank line: write `reply`, keep the connection open
    kReply,         // after the request's blank line: write `reply`, then FIN
    kGreet,         // write `reply` at once without reading, then FIN
  };

  LoopbackServer(event_base* base, Behaviour behaviour, std::string reply = "")
      : base_(base), behaviour_(behaviour), reply_(std::move(reply)) {
    open(0);
  }
  ~LoopbackServer() {
    stop();
    connections_.clear();
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  uint16_t port() const { return port_; }
  size_t accepted() const { return accepted_; }
  size_t openConnections() const { return connections_.size(); }
  const std::vector<std::string>& requests() const { return requests_; }

  // Stops listening (new connects are refused); accepted connections stay.
  void stop() {
    if (listenEvent_) event_free(listenEvent_);
    listenEvent_ = nullptr;
    if (listenFd_ >= 0) close(listenFd_);
    listenFd_ = -1;
  }
  // Listens again on the same port.
  void restart() {
    stop();
    open(port_);
  }

 private:
  struct Connection {
    LoopbackServer* server = nullptr;
    int fd = -1;
    event* readEvent = nullptr;
    event* writeEvent = nullptr;
    std::string in;
    std::string out;
    size_t written = 0;
    bool finAfterWrite = false;
    ~Connection() {
      if (readEvent) event_free(readEvent);
      if (writeEvent) event_free(writeEvent);
      if (fd >= 0) close(fd);
    }
  };

  void open(uint16_t port) {
    listenFd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    const sockaddr_in a = loopbackAddress(port);
    if (listenFd_ < 0 || bind(listenFd_, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) != 0 ||
        listen(listenFd_, SOMAXCONN) != 0) {
      throw std::runtime_error(std::string("LoopbackServer: ") + std::strerror(errno));
    }
    port_ = boundPort(listenFd_);
    listenEvent_ = event_new(base_, listenFd_, EV_READ | EV_PERSIST, &onAccept, this);
    event_add(listenEvent_, nullptr);
  }

  static void onAccept(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<LoopbackServer*>(arg);
    for (;;) {
      const int fd = accept4(self->listenFd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      ++self->accepted_;
      if (self->behaviour_ == Behaviour::kClose) {
        close(fd);
        continue;
      }
      auto c = std::make_unique<Connection>();
      c->server = self;
      c->fd = fd;
      c->readEvent = event_new(self->base_, fd, EV_READ | EV_PERSIST, &onRead, c.get());
      c->writeEvent = event_new(self->base_, fd, EV_WRITE | EV_PERSIST, &onWrite, c.get());
      event_add(c->readEvent, nullptr);
      Connection* raw = c.get();
      self->connections_.emplace(fd, std::move(c));
      if (self->behaviour_ == Behaviour::kGreet) self->respond(*raw);
    }
  }

  void respond(Connection& c) {
    c.out = reply_;
    c.finAfterWrite = behaviour_ != Behaviour::kReplyAndHold;
    event_add(c.writeEvent, nullptr);
  }

  static void onRead(evutil_socket_t fd, short, void* arg) {
    auto* c = static_cast<Connection*>(arg);
    LoopbackServer* self = c->server;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      self->connections_.erase(fd);  // the client closed (or reset): so do we
      return;
    }
    const bool hadRequest = c->in.find("\r\n\r\n") != std::string::npos;
    c->in.append(buf, static_cast<size_t>(n));
    if (!hadRequest && c->in.find("\r\n\r\n") != std::string::npos) {
      self->requests_.push_back(c->in);
      if (self->behaviour_ == Behaviour::kReply || self->behaviour_ == Behaviour::kReplyAndHold) {
        self->respond(*c);
      }
    }
  }

  static void onWrite(evutil_socket_t fd, short, void* arg) {
    auto* c = static_cast<Connection*>(arg);
    while (c->written < c->out.size()) {
      const ssize_t n =
          send(fd, c->out.data() + c->written, c->out.size() - c->written, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        c->server->connections_.erase(fd);  // the client went away mid-reply
        return;
      }
      c->written += static_cast<size_t>(n);
    }
    event_del(c->writeEvent);
    if (c->finAfterWrite) shutdown(fd, SHUT_WR);
  }

  event_base* base_;
  Behaviour behaviour_;
  std::string reply_;
  int listenFd_ = -1;
  event* listenEvent_ = nullptr;
  uint16_t port_ = 0;
  size_t accepted_ = 0;
  std::map<int, std::unique_ptr<Connection>> connections_;
  std::vector<std::string> requests_;
};

// A blocking HTTP GET to 127.0.0.1 with every step bounded by `limit`;
// returns the whole response, or "" on any failure.
inline std::string blockingGet(uint16_t port, const std::string& path,
                               std::chrono::milliseconds limit) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  const timeval tv{static_cast<time_t>(limit.count() / 1000),
                   static_cast<suseconds_t>((limit.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  const sockaddr_in a = loopbackAddress(port);
  std::string response;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\n\r\n";
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return response;
}

// `python3 -m http.server` serving a temporary directory on 127.0.0.1. The
// child dies with the test process (PR_SET_PDEATHSIG) and is killed and
// reaped by the destructor. available() is false when python3 cannot run.
class PythonHttpServer {
 public:
  explicit PythonHttpServer(const std::map<std::string, std::string>& files) {
    char dir[] = "/tmp/fmon-http-XXXXXX";
    if (!mkdtemp(dir)) throw std::runtime_error("mkdtemp failed");
    dir_ = dir;
    for (const auto& [name, content] : files) std::ofstream(dir_ / name) << content;
    std::ofstream(dir_ / "fmon-ready.txt") << readyToken();
    // The port is picked by binding to 0 and released for python; another
    // process could take it in between, so readiness is proven by fetching a
    // file with a token only this server has, and a clash is retried.
    for (int attempt = 0; attempt < 3 && !ready_ && why_ != "python3 not found"; ++attempt) {
      start();
    }
  }
  ~PythonHttpServer() {
    kill();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  PythonHttpServer(const PythonHttpServer&) = delete;
  PythonHttpServer& operator=(const PythonHttpServer&) = delete;

  bool available() const { return ready_; }
  uint16_t port() const { return port_; }
  const std::string& whyUnavailable() const { return why_; }

 private:
  std::string readyToken() const { return "fmon-ready-" + std::to_string(getpid()); }

  void start() {
    {
      ClosedPort probe;  // an ephemeral port nobody listens on right now
      port_ = probe.port();
    }
    const std::string port = std::to_string(port_);
    const std::string dir = dir_.string();
    pid_ = fork();
    if (pid_ < 0) {
      why_ = "fork failed";
      return;
    }
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int devnull = ::open("/dev/null", O_RDWR);
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(devnull, 2);
      execlp("python3", "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory",
             dir.c_str(), port.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        why_ = WIFEXITED(status) && WEXITSTATUS(status) == 127
                   ? "python3 not found"
                   : "python3 -m http.server exited (port taken?)";
        return;
      }
      if (blockingGet(port_, "/fmon-ready.txt", 1000ms).find(readyToken()) != std::string::npos) {
        ready_ = true;
        return;
      }
      // Polling for readiness with a deadline: python needs ~100 ms to start.
      std::this_thread::sleep_for(20ms);
    }
    why_ = "python3 -m http.server did not answer within 10 s";
    kill();
  }

  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);  // SIGKILL cannot be ignored: this returns
    pid_ = -1;
  }

  std::filesystem::path dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  bool ready_ = false;
  std::string why_;
};

// Open file descriptors of this process (to prove that nothing leaks).
inline size_t openFdCount() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

inline MonitorTarget makeTarget(std::string server, MonitorType type, uint16_t port,
                                uint32_t address = kLoopback) {
  MonitorTarget t;
  t.application = "app";
  t.server = std::move(server);
  t.address = IpAddress::v4(address);
  t.port = port;
  t.config.type = type;
  t.config.intervalSeconds = 1;
  t.config.timeoutSeconds = 1;
  t.config.rise = 1;
  t.config.fall = 1;
  return t;
}

}  // namespace fulcrum::testing
