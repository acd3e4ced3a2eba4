// HttpFilter: step 5 of the packet path (DESIGN.md) for one packet loop.
//
// Egress (client -> server), for a session that has an HttpFlow:
//   - the client's bytes are fed to the flow's parser in stream order; every
//     request head found is logged (one RequestLogEntry on the loop's ring);
//   - a Host value naming the façade ("198.18.0.10" or "198.18.0.10:<façade
//     port>") becomes the server's address, with ":<port>" unless the server
//     listens on 80. When the length changes, the packet grows or shrinks and
//     every later segment's sequence number is shifted (SeqAdjust);
//   - a retransmission of bytes that held a rewritten value is rewritten the
//     same way again, and shifted by what precedes it;
//   - a segment past a gap (an earlier one was lost, or is still in another
//     loop's queue) is forwarded when the gap lies inside a request body, which
//     the parser skips unread; a gap anywhere else would lose the parser its
//     place, so that segment is dropped and counted, and the client resends it
//     after the gap is filled. Once the parser has stopped (not HTTP,
//     malformed, CONNECT/Upgrade), segments only get their shift.
// Ingress (server -> client): acknowledgement numbers and SACK edges are
// mapped back to client space, so the client sees the stream it sent.
//
// Room to grow: when the server's address is longer than the façade's, the
// MSS option of the server's SYN+ACK is lowered by kMssReserve, so a client
// segment of full size still fits the path after a rewrite. A packet never
// grows past 1500 bytes of IP, nor past the server's MSS plus 40 bytes of
// headers (the MSS its SYN+ACK offered, before lowering): a bigger one would
// be dropped on the way with an ICMP error the client cannot match to its
// connection (it names the server). A packet already larger than that is a GSO
// super-packet (or comes from a larger-MTU link) and may grow up to 65535
// bytes; the kernel cuts super-packets to their segment size.
//
// Retransmissions: a client that resends from another boundary than before
// (a merged or re-cut segment) may cut a rewritten value, or bring more
// rewrites than fit. The segment is then cut short before that value, or made
// to start after it (http_retransmits_trimmed); only one lying wholly inside a
// value is dropped (drop_http_retransmit_split). The server's acknowledgements
// stop at the value's start, so the client's next retransmission carries the
// value whole.
//
// TCP Fast Open: data on the client's SYN is the stream's first bytes and is
// read like any other.
//
// Left as sent, and counted: a Host value that began in an earlier segment
// than the one ending its header block (http_host_split), one that would not
// fit the packet (see below), and one arriving while eight earlier rewrites
// are still unacknowledged (http_host_not_rewritten).
//
// Both calls run under the session's bucket lock for their direction; the
// flow's own lock orders them against each other.
#pragma once

#include <cstdint>

#include "data-plane/counters.h"
#include "data-plane/http/http_flow.h"
#include "data-plane/log_queue.h"
#include "data-plane/session_types.h"
#include "shared/net/packet_view.h"

namespace fulcrum {

// What a filtered packet needs of its session, read under its lock.
struct HttpSessionContext {
  const SessionIdentity* session = nullptr;
  const char* application = "";
  const char* serverName = "";
};

class HttpFilter {
 public:
  explicit HttpFilter(LoopCounters& counters) : counters_(counters) {}

  // Where request logs go; without a ring they are counted, not logged.
  void setLogRing(LogRing* ring) { ring_ = ring; }

  // A client packet, before its NAT rewrite. False: drop it (counted).
  bool egress(HttpFlow& flow, PacketView& v, const HttpSessionContext& ctx);
  // A server packet, before or after its un-NAT (only TCP words change).
  void ingress(HttpFlow& flow, PacketView& v, const SessionIdentity& session);

  static constexpr uint16_t kMssReserve = 32;        // two rewrites of up to 14 more bytes
  static constexpr size_t kPlainPacketLimit = 1500;  // IP bytes a rewritten packet may reach

 private:
  static constexpr size_t kMaxEdits = 16;  // rewrites in one segment (pipelining)

  void log(const HttpRequestHead& head, const HttpSessionContext& ctx);
  // Records the MSS a server's SYN+ACK offers, and lowers it when rewrites
  // may grow segments.
  void reserveMss(HttpFlow& flow, PacketView& v, const SessionIdentity& session);

  LoopCounters& counters_;
  LogRing* ring_ = nullptr;
  RequestLogEntry entry_;  // reused: an entry is 700 bytes
};

// Whether `host` names the façade: its dotted address, optionally with
// ":<port>" equal to the façade port.
bool hostNamesFacade(std::string_view host, uint32_t facade, uint16_t facadePort);
// The Host value that replaces it: the server's address, with ":<port>" unless
// the port is 80. Writes at most 21 bytes to `out`; returns the length.
size_t serverHostValue(uint32_t server, uint16_t serverPort, char* out);

}  // namespace fulcrum
