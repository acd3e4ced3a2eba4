#include "shared/channel/channel.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <google/protobuf/message_lite.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fulcrum::channel {

namespace {

std::string errnoText(int err) {
  return std::strerror(err);
}

bool fillSockaddr(const Endpoint& e, sockaddr_storage& ss, socklen_t& len, std::string* error) {
  std::memset(&ss, 0, sizeof(ss));
  if (e.kind == Endpoint::Kind::kUnix) {
    auto* un = reinterpret_cast<sockaddr_un*>(&ss);
    if (e.path.size() >= sizeof(un->sun_path)) {
      if (error) *error = "socket path too long: " + e.path;
      return false;
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, e.path.c_str(), e.path.size() + 1);
    len = sizeof(sockaddr_un);
    return true;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET, e.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(e.port);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET6, e.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(e.port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  if (error) *error = "not a numeric address: " + e.host;
  return false;
}

std::string describePeer(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof(buf));
    return std::string(buf) + ":" + std::to_string(ntohs(v4->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof(buf));
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(v6->sin6_port));
  }
  return "local";
}

void putLength(char* out, uint32_t n) {
  out[0] = static_cast<char>(n >> 24);
  out[1] = static_cast<char>(n >> 16);
  out[2] = static_cast<char>(n >> 8);
  out[3] = static_cast<char>(n);
}

uint32_t getLength(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
  Endpoint e;
  if (text.starts_with("unix:")) text.remove_prefix(5);
  if (text.starts_with("/")) {
    e.kind = Kind::kUnix;
    e.path = std::string(text);
    return e;
  }
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) return std::nullopt;
  std::string_view host = text.substr(0, colon), port = text.substr(colon + 1);
  if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 65535) return std::nullopt;
  }
  e.kind = Kind::kTcp;
  e.host = std::string(host);
  e.port = static_cast<uint16_t>(value);
  sockaddr_storage ss;
  socklen_t len;
  if (!fillSockaddr(e, ss, len, nullptr)) return std::nullopt;
  return e;
}

std::string Endpoint::toString() const {
  if (kind == Kind::kUnix) return path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string encodeFrame(const google::protobuf::MessageLite& message) {
  std::string out(4, '\0');
  message.AppendToString(&out);
  putLength(out.data(), static_cast<uint32_t>(out.size() - 4));
  return out;
}

// ------------------------------------------------------------------ Connection

Connection::Connection(std::string peer, Options options, Callbacks callbacks)
    : peer_(std::move(peer)), options_(options), callbacks_(std::move(callbacks)) {}

Connection::~Connection() {
  if (bev_) bufferevent_free(bev_);
}

bool Connection::attach(bufferevent* bev) {
  if (!bev) return false;
  bev_ = bev;
  bufferevent_setcb(bev_, &Connection::onRead, &Connection::onWrite, &Connection::onEvent, this);
  if (options_.idleTimeout.count() > 0) {
    timeval tv{static_cast<time_t>(options_.idleTimeout.count() / 1000),
               static_cast<suseconds_t>((options_.idleTimeout.count() % 1000) * 1000)};
    bufferevent_set_timeouts(bev_, &tv, nullptr);
  }
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  return true;
}

std::shared_ptr<Connection> Connection::adopt(event_base* base, evutil_socket_t fd,
                                              std::string peer, Options options,
                                              Callbacks callbacks) {
  std::shared_ptr<Connection> c(new Connection(std::move(peer), options, std::move(callbacks)));
  evutil_make_socket_nonblocking(fd);
  evutil_make_socket_closeonexec(fd);
  if (!c->attach(bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE))) {
    evutil_closesocket(fd);
    return nullptr;
  }
  return c;
}

std::shared_ptr<Connection> Connection::connect(event_base* base, const Endpoint& to,
                                                Options options, Callbacks callbacks) {
  std::shared_ptr<Connection> c(new Connection(to.toString(), options, std::move(callbacks)));
  sockaddr_storage ss;
  socklen_t len = 0;
  std::string error;
  if (!fillSockaddr(to, ss, len, &error)) {
    c->close("connect to " + c->peer_ + ": " + error);
    return c;
  }
  if (!c->attach(bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE))) {
    c->close("connect to " + c->peer_ + ": cannot create a socket");
    return c;
  }
  // Most failures (refused, unreachable) arrive later through onEvent; the
  // ones reported at once close here. Either way onClose runs exactly once.
  if (bufferevent_socket_connect(c->bev_, reinterpret_cast<sockaddr*>(&ss), static_cast<int>(len)) <
      0)
    c->close("connect to " + c->peer_ + ": " + errnoText(errno));
  return c;
}

void Connection::setIdleTimeout(std::chrono::milliseconds timeout) {
  options_.idleTimeout = timeout;
  if (!bev_) return;
  if (timeout.count() > 0) {
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    bufferevent_set_timeouts(bev_, &tv, nullptr);
  } else {
    bufferevent_set_timeouts(bev_, nullptr, nullptr);
  }
}

bool Connection::send(const google::protobuf::MessageLite& message) {
  if (!isOpen() || closing_) return false;
  size_t size = message.ByteSizeLong();
  if (size > options_.maxFrame) return false;
  std::string frame = encodeFrame(message);
  if (bufferevent_write(bev_, frame.data(), frame.size()) != 0) return false;
  if (evbuffer_get_length(bufferevent_get_output(bev_)) > options_.maxPendingOutput) {
    close("peer " + peer_ + " is not reading (" + std::to_string(options_.maxPendingOutput >> 20) +
          " MiB queued)");
    return false;
  }
  return true;
}

void Connection::close(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  auto self = shared_from_this();
  if (bev_) bufferevent_disable(bev_, EV_READ | EV_WRITE);
  if (callbacks_.onClose) callbacks_.onClose(*this, reason);
}

void Connection::closeAfterFlush(const std::string& reason) {
  if (closed_) return;
  if (!bev_ || evbuffer_get_length(bufferevent_get_output(bev_)) == 0) {
    close(reason);
    return;
  }
  closing_ = true;
  closeReason_ = reason;
  bufferevent_disable(bev_, EV_READ);
  // A peer that does not take the rest within two seconds is closed anyway.
  timeval bound{2, 0};
  bufferevent_set_timeouts(bev_, nullptr, &bound);
}

void Connection::onRead(bufferevent*, void* arg) {
  auto self = static_cast<Connection*>(arg)->shared_from_this();
  self->readFrames();
}

void Connection::onWrite(bufferevent*, void* arg) {
  auto self = static_cast<Connection*>(arg)->shared_from_this();
  if (self->closing_) self->close(self->closeReason_);
}

void Connection::onEvent(bufferevent*, short events, void* arg) {
  auto self = static_cast<Connection*>(arg)->shared_from_this();
  if (events & BEV_EVENT_CONNECTED) {
    evutil_socket_t fd = bufferevent_getfd(self->bev_);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
               sizeof(one));  // fails harmlessly on Unix sockets
    if (self->callbacks_.onConnected) self->callbacks_.onConnected(*self);
    return;
  }
  if (events & BEV_EVENT_TIMEOUT) {
    self->close("peer " + self->peer_ + " silent for " +
                std::to_string(self->options_.idleTimeout.count()) + " ms");
    return;
  }
  if (events & BEV_EVENT_EOF) {
    self->readFrames();  // whatever arrived before the EOF
    self->close("peer " + self->peer_ + " closed the connection");
    return;
  }
  if (events & BEV_EVENT_ERROR) {
    int err = EVUTIL_SOCKET_ERROR();
    self->close((self->callbacks_.onConnected ? "connection to " : "connection from ") +
                self->peer_ + ": " + evutil_socket_error_to_string(err));
  }
}

void Connection::readFrames() {
  evbuffer* in = bufferevent_get_input(bev_);
  while (!closed_) {
    size_t available = evbuffer_get_length(in);
    if (available < 4) return;
    unsigned char head[4];
    evbuffer_copyout(in, head, 4);
    uint32_t length = getLength(head);
    if (length > options_.maxFrame) {
      close("peer " + peer_ + " sent a frame of " + std::to_string(length) + " bytes (limit " +
            std::to_string(options_.maxFrame) + ")");
      return;
    }
    if (available < 4 + size_t{length}) return;
    evbuffer_drain(in, 4);
    std::string payload(length, '\0');
    evbuffer_remove(in, payload.data(), length);
    if (callbacks_.onFrame) callbacks_.onFrame(*this, payload);
  }
}

// ------------------------------------------------------------------ Listener

Listener::~Listener() {
  if (listener_) evconnlistener_free(listener_);
  if (endpoint_.kind == Endpoint::Kind::kUnix && !endpoint_.path.empty())
    ::unlink(endpoint_.path.c_str());
}

std::unique_ptr<Listener> Listener::listen(event_base* base, const Endpoint& at, OnAccept onAccept,
                                           std::string* error) {
  std::unique_ptr<Listener> l(new Listener());
  l->onAccept_ = std::move(onAccept);
  sockaddr_storage ss;
  socklen_t len = 0;
  if (!fillSockaddr(at, ss, len, error)) return nullptr;
  evutil_socket_t fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = "socket: " + errnoText(errno);
    return nullptr;
  }
  if (at.kind == Endpoint::Kind::kUnix) {
    struct stat st {};
    if (::lstat(at.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        *error = at.path + " exists and is not a socket";
        ::close(fd);
        return nullptr;
      }
      // Someone answering there means another instance runs: do not steal it.
      std::string ignored;
      int probe = connectBlocking(at, std::chrono::milliseconds(500), &ignored);
      if (probe >= 0) {
        ::close(probe);
        *error = at.path + " is in use by a running process";
        ::close(fd);
        return nullptr;
      }
      ::unlink(at.path.c_str());
    }
  } else {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  // Owner-only from the moment the socket file exists, not after a chmod.
  mode_t old = at.kind == Endpoint::Kind::kUnix ? ::umask(0177) : 0;
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len);
  int bindErr = errno;
  if (at.kind == Endpoint::Kind::kUnix) ::umask(old);
  if (rc != 0) {
    *error = "bind " + at.toString() + ": " + errnoText(bindErr);
    ::close(fd);
    return nullptr;
  }
  l->endpoint_ = at;
  l->listener_ = evconnlistener_new(base, &Listener::onAcceptCb, l.get(),
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, fd);
  if (!l->listener_) {
    *error = "listen " + at.toString() + ": " + errnoText(errno);
    ::close(fd);
    return nullptr;
  }
  return l;
}

uint16_t Listener::port() const {
  if (!listener_) return 0;
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(evconnlistener_get_fd(listener_), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

void Listener::onAcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int, void* arg) {
  auto* l = static_cast<Listener*>(arg);
  if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  l->onAccept_(fd, describePeer(sa));
}

// ------------------------------------------------------------------ blocking helpers

namespace {

bool waitFor(int fd, short events, std::chrono::steady_clock::time_point deadline,
             std::string* error) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      *error = "timed out";
      return false;
    }
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) {
      *error = "poll: " + errnoText(errno);
      return false;
    }
  }
}

}  // namespace

int connectBlocking(const Endpoint& to, std::chrono::milliseconds timeout, std::string* error) {
  sockaddr_storage ss;
  socklen_t len = 0;
  if (!fillSockaddr(to, ss, len, error)) return -1;
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = "socket: " + errnoText(errno);
    return -1;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) {
      *error = errnoText(errno);
      ::close(fd);
      return -1;
    }
    if (!waitFor(fd, POLLOUT, deadline, error)) {
      ::close(fd);
      return -1;
    }
    int err = 0;
    socklen_t errLen = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errLen);
    if (err != 0) {
      *error = errnoText(err);
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

bool writeFrameBlocking(int fd, const google::protobuf::MessageLite& message,
                        std::chrono::milliseconds timeout, std::string* error) {
  std::string frame = encodeFrame(message);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t n = ::send(fd, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!waitFor(fd, POLLOUT, deadline, error)) return false;
      continue;
    }
    *error = "write: " + errnoText(errno);
    return false;
  }
  return true;
}

bool readFrameBlocking(int fd, std::string& payload, size_t maxFrame,
                       std::chrono::milliseconds timeout, std::string* error) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto readExactly = [&](char* out, size_t want) {
    size_t got = 0;
    while (got < want) {
      ssize_t n = ::recv(fd, out + got, want - got, 0);
      if (n > 0) {
        got += static_cast<size_t>(n);
        continue;
      }
      if (n == 0) {
        *error = "connection closed by the peer";
        return false;
      }
      if (errno == EAGAIN || errno == EINTR) {
        if (!waitFor(fd, POLLIN, deadline, error)) return false;
        continue;
      }
      *error = "read: " + errnoText(errno);
      return false;
    }
    return true;
  };
  unsigned char head[4];
  if (!readExactly(reinterpret_cast<char*>(head), 4)) return false;
  uint32_t length = getLength(head);
  if (length > maxFrame) {
    *error = "frame of " + std::to_string(length) + " bytes is over the limit";
    return false;
  }
  payload.assign(length, '\0');
  return readExactly(payload.data(), length);
}

}  // namespace fulcrum::channel
