// IcmpPinger: the one ICMP socket that every icmp check of a Monitor shares,
// and the matching of echo replies to the checks waiting for them.
//
// Contract:
// - ping() sends one echo request to an IPv4 address and returns a ticket;
//   the callback runs later, from the event loop, when the echo reply with
//   that (source address, identifier, sequence) and this pinger's payload
//   arrives, at most once. There is no timeout here: the caller owns it and
//   cancel()s the ticket (cancelling an answered or unknown ticket is a no-op).
// - The socket is opened on the first ping(): a raw socket (SOCK_RAW,
//   IPPROTO_ICMP; needs CAP_NET_RAW), else an unprivileged ping socket
//   (SOCK_DGRAM, IPPROTO_ICMP; needs the group in net.ipv4.ping_group_range).
//   When neither opens, ping() fails with "icmp socket: raw: <errno text>;
//   ping socket: <errno text>" and tries again on the next call.
// - A failed send fails that ping only: "send: <errno text>".
// - Single-threaded: everything runs on the event_base's thread. Callbacks may
//   call ping() and cancel(), but must not destroy the pinger.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

struct event;
struct event_base;

namespace fulcrum {

enum class IcmpSocketPolicy : uint8_t {
  kRawThenPing,  // the default: raw socket, else the ping socket
  kPingOnly,     // only the ping socket (tests, hosts that forbid raw sockets)
};

class IcmpPinger {
 public:
  enum class Mode : uint8_t { kClosed, kRaw, kPing };
  using OnReply = std::function<void()>;
  struct Sent {
    uint64_t ticket = 0;  // 0 = not sent; see `error`
    std::string error;
  };

  IcmpPinger(event_base* base, IcmpSocketPolicy policy);
  ~IcmpPinger();
  IcmpPinger(const IcmpPinger&) = delete;
  IcmpPinger& operator=(const IcmpPinger&) = delete;

  Sent ping(uint32_t destinationHostOrder, OnReply onReply);
  void cancel(uint64_t ticket);

  Mode mode() const { return mode_; }
  size_t pending() const { return pending_.size(); }

 private:
  static void onReadable(int fd, short what, void* arg);
  std::string open();  // "" on success, else the error detail
  void readReplies();
  void deliver(uint32_t sourceHostOrder, const uint8_t* icmp, size_t length);

  event_base* base_;
  IcmpSocketPolicy policy_;
  Mode mode_ = Mode::kClosed;
  int fd_ = -1;
  event* readEvent_ = nullptr;
  uint16_t identifier_;  // ours on a raw socket; the kernel picks it on a ping socket
  uint16_t nextSequence_ = 0;
  uint64_t cookie_;  // in every payload: replies to other pingers are not ours
  // Key: destination (upper 32 bits) and sequence (lower 16): what a reply names.
  std::unordered_map<uint64_t, OnReply> pending_;
};

}  // namespace fulcrum
