// The message channel: length-prefixed protobuf frames over TCP or a Unix
// socket, on libevent. Used by the engine channel (fulcrum-data <->
// fulcrum-control) and by the management API (fulcrum <-> fulcrum-control).
//
// Frame: a 4-byte big-endian payload length, then the payload (one serialized
// message). A frame longer than Options::maxFrame, or a payload the owner
// cannot parse (the owner calls close()), closes that connection with a reason
// naming the peer; every other connection keeps running.
//
// Threading: a Connection lives on one event_base and is used only from that
// base's thread. Connections are shared_ptr-owned; callbacks may drop the
// owner's reference (even from inside onFrame/onClose) safely.
#pragma once

#include <event2/event.h>
#include <event2/util.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace google::protobuf {
class MessageLite;
}

struct bufferevent;
struct evconnlistener;

namespace fulcrum::channel {

// Version of the engine channel and management API messages. Peers of other
// versions are refused with an error that names both versions.
inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kDefaultMaxFrame = 16u << 20;

// "127.0.0.1:7080", "[::1]:7080", or a Unix socket path ("/run/fulcrum/mgmt.sock",
// optionally written "unix:/run/...").
struct Endpoint {
  enum class Kind : uint8_t { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // numeric address (kTcp)
  uint16_t port = 0;
  std::string path;  // kUnix
  static std::optional<Endpoint> parse(std::string_view text);
  std::string toString() const;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  struct Options {
    size_t maxFrame = kDefaultMaxFrame;
    // Close when nothing arrives for this long (0 = never). The engine channel
    // sets three heartbeat intervals.
    std::chrono::milliseconds idleTimeout{0};
    // Close when the peer lets this much output pile up unread.
    size_t maxPendingOutput = 64u << 20;
  };
  struct Callbacks {
    std::function<void(Connection&)> onConnected;  // connect() only
    std::function<void(Connection&, std::string_view payload)> onFrame;
    std::function<void(Connection&, const std::string& reason)> onClose;  // once
  };

  // Adopts an accepted socket.
  static std::shared_ptr<Connection> adopt(event_base* base, evutil_socket_t fd, std::string peer,
                                           Options options, Callbacks callbacks);
  // Starts a non-blocking connect; onConnected or onClose("connect to ...: reason")
  // follows (onClose may run before connect() returns when it fails at once).
  static std::shared_ptr<Connection> connect(event_base* base, const Endpoint& to, Options options,
                                             Callbacks callbacks);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Queues one frame. False when closed, or when the message is larger than
  // maxFrame (the connection then stays open: it is our bug, not the peer's).
  bool send(const google::protobuf::MessageLite& message);
  // Stops reading and writing after flushing nothing more; calls onClose(reason) once.
  void close(const std::string& reason);
  // Closes once everything queued has been written (or after a short bound).
  void closeAfterFlush(const std::string& reason);

  // Changes the idle timeout (0 = none), e.g. once the peer announced its
  // heartbeat interval.
  void setIdleTimeout(std::chrono::milliseconds timeout);

  const std::string& peer() const { return peer_; }
  bool isOpen() const { return bev_ != nullptr && !closed_; }

 private:
  Connection(std::string peer, Options options, Callbacks callbacks);
  bool attach(bufferevent* bev);
  static void onRead(bufferevent* bev, void* self);
  static void onWrite(bufferevent* bev, void* self);
  static void onEvent(bufferevent* bev, short events, void* self);
  void readFrames();

  std::string peer_;
  Options options_;
  Callbacks callbacks_;
  bufferevent* bev_ = nullptr;
  bool closed_ = false;
  bool closing_ = false;  // closeAfterFlush pending
  std::string closeReason_;
};

// Accepts connections on a TCP or Unix endpoint. A Unix socket is created with
// owner-only permissions (0600); a stale socket file from a dead process is
// replaced, a live one is an error ("already in use").
class Listener {
 public:
  using OnAccept = std::function<void(evutil_socket_t fd, std::string peer)>;
  static std::unique_ptr<Listener> listen(event_base* base, const Endpoint& at, OnAccept onAccept,
                                          std::string* error);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  // The bound TCP port (useful with port 0).
  uint16_t port() const;

 private:
  Listener() = default;
  static void onAcceptCb(evconnlistener*, evutil_socket_t, sockaddr*, int, void*);
  evconnlistener* listener_ = nullptr;
  Endpoint endpoint_;
  OnAccept onAccept_;
};

// Serializes one frame (length prefix and payload).
std::string encodeFrame(const google::protobuf::MessageLite& message);

// Blocking helpers for command-line clients (no event loop): connect, write a
// frame, read a frame, each bounded by `timeout`. False and *error on failure.
int connectBlocking(const Endpoint& to, std::chrono::milliseconds timeout, std::string* error);
bool writeFrameBlocking(int fd, const google::protobuf::MessageLite& message,
                        std::chrono::milliseconds timeout, std::string* error);
bool readFrameBlocking(int fd, std::string& payload, size_t maxFrame,
                       std::chrono::milliseconds timeout, std::string* error);

}  // namespace fulcrum::channel
