#include "data-plane/http/http_filter.h"

#include <algorithm>
#include <cstring>

#include "shared/log.h"

namespace fulcrum {

namespace {

size_t formatDecimal(uint32_t n, char* out) {
  char digits[10];
  size_t count = 0;
  do {
    digits[count++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  for (size_t i = 0; i < count; ++i) out[i] = digits[count - 1 - i];
  return count;
}

// "a.b.c.d" from a host-order address: at most 15 bytes.
size_t formatV4(uint32_t address, char* out) {
  size_t n = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    n += formatDecimal((address >> shift) & 0xff, out + n);
    if (shift != 0) out[n++] = '.';
  }
  return n;
}

// The loop counter of a parser that stopped reading the connection.
Counter stopCounter(const HttpRequestParser& parser) {
  switch (parser.status()) {
    case HttpParseStatus::kNotHttp:
      return Counter::kHttpNotHttp;
    case HttpParseStatus::kMalformed:
      return Counter::kHttpMalformed;
    case HttpParseStatus::kTooLong:
      return Counter::kHttpTooLong;
    case HttpParseStatus::kOk:
      break;
  }
  return Counter::kHttpTunneled;
}

}  // namespace

bool hostNamesFacade(std::string_view host, uint32_t facade, uint16_t facadePort) {
  char text[16];
  const size_t n = formatV4(facade, text);
  if (host.size() < n || host.substr(0, n) != std::string_view(text, n)) return false;
  if (host.size() == n) return true;
  if (host[n] != ':') return false;
  char port[6];
  return host.substr(n + 1) == std::string_view(port, formatDecimal(facadePort, port));
}

size_t serverHostValue(uint32_t server, uint16_t serverPort, char* out) {
  size_t n = formatV4(server, out);
  if (serverPort != 80) {
    out[n++] = ':';
    n += formatDecimal(serverPort, out + n);
  }
  return n;
}

bool HttpFilter::egress(HttpFlow& flow, PacketView& v, const HttpSessionContext& ctx) {
  const SessionIdentity& s = *ctx.session;
  const uint32_t seq = v.seq();
  const size_t length = v.payloadLength;
  // A SYN's data (TCP Fast Open) starts after the SYN's own sequence number.
  const bool syn = (v.tcpFlags() & tcpflag::kSyn) != 0;
  const uint32_t first = syn ? seq + 1 : seq;  // client-space number of payload byte 0
  const uint32_t end = first + static_cast<uint32_t>(length);
  char value[24];
  const size_t valueLength = serverHostValue(s.server, s.serverPort, value);
  PayloadEdit edits[kMaxEdits];
  size_t editCount = 0;
  // The payload bytes [keepFrom, keepTo) are forwarded (see "cut" below).
  size_t keepFrom = 0, keepTo = length;

  flow.lock();
  // The largest IP packet this one may become: see "Room to grow" in the header.
  size_t ipLimit = kPlainPacketLimit;
  if (flow.serverMss != 0) ipLimit = std::min<size_t>(ipLimit, 40 + size_t{flow.serverMss});
  if (v.ipTotalLength > ipLimit) ipLimit = 65535;  // a GSO super-packet
  const size_t room = v.frameCapacity > v.frameLength ? v.frameCapacity : v.frameLength;
  const size_t ipOffset = static_cast<size_t>(v.ip - v.frame);
  // Whether the kept bytes with the first `count` edits fit.
  auto fits = [&](size_t count) {
    size_t ip = v.ipHeaderLength + v.tcpHeaderLength + (keepTo - keepFrom);
    for (size_t i = 0; i < count; ++i) ip = ip - edits[i].length + valueLength;
    return ip <= ipLimit && ipOffset + ip <= room;
  };

  if (syn && !(v.tcpFlags() & tcpflag::kAck) && flow.nothingRead() && seq != flow.isn) {
    // The same ports again with a new initial sequence number (the client gave
    // up on a connection attempt and reused them): a new stream.
    flow.reset(seq);
  }
  size_t redone = 0, added = 0, trimmed = 0;
  if (length > 0) {
    if (!flow.stopped && seqBefore(flow.nextSeq, first)) {
      // A gap. Inside a request body (the other loop of a connection that
      // moved between queues still holds those bytes, typically) nothing in
      // it needs reading: skip it. Anywhere else the parser would lose its
      // place, so the segment waits for the client to send it again.
      const uint32_t gap = first - flow.nextSeq;
      if (gap > flow.parser.skippable()) {
        flow.unlock();
        counters_.add(Counter::kDropHttpOutOfOrder);
        return false;
      }
      flow.parser.skip(gap);
      flow.nextSeq = first;
      counters_.add(Counter::kHttpBodyGapsSkipped);
    }
    // Bytes sent before: every rewrite recorded in them is made again, the
    // same way. A segment that cuts a rewritten value (the client resent from
    // another boundary) is cut short before the value, or starts after it:
    // the server's acknowledgements then stop at the value's start, and the
    // client's next retransmission carries the value whole.
    for (size_t i = 0; i < flow.adjust.count(); ++i) {
      const HostRewrite& r = flow.adjust.rewrite(i);
      if (!seqBefore(first, r.clientEnd()) || !seqBefore(r.clientSeq, end)) continue;
      if (seqBefore(r.clientSeq, first)) {
        keepFrom = r.clientEnd() - first;  // starts inside the value: begin after it
        ++trimmed;
        continue;
      }
      const size_t offset = r.clientSeq - first;
      if (seqBefore(end, r.clientEnd())) {
        keepTo = offset;  // ends inside the value: stop before it
        ++trimmed;
        break;
      }
      if (editCount == kMaxEdits ||
          !hostNamesFacade({reinterpret_cast<const char*>(v.payload) + offset, r.oldLength},
                           s.facade, s.facadePort)) {
        keepTo = offset;  // cannot happen with a client resending what it sent
        ++trimmed;
        break;
      }
      edits[editCount++] = {offset, r.oldLength};
    }
    // Resent bytes that would now outgrow the packet (the client merged
    // segments) go in part: up to the first value that does not fit.
    while (editCount > 0 && !fits(editCount)) {
      keepTo = edits[--editCount].offset;
      ++trimmed;
    }
    redone = editCount;
    if (keepFrom >= keepTo || (syn && keepFrom > 0)) {
      flow.unlock();
      counters_.add(Counter::kDropHttpRetransmitSplit);
      return false;
    }
    // New bytes go to the parser (unless the segment was cut short: what
    // follows the cut comes again with the client's next retransmission).
    if (!flow.stopped && keepTo == length && seqBefore(flow.nextSeq, end)) {
      const size_t skip = flow.nextSeq - first;
      flow.parser.feed(v.payload + skip, length - skip, [&](const HttpRequestHead& head) {
        counters_.add(Counter::kHttpRequests);
        log(head, ctx);
        if (!head.hostPresent || !hostNamesFacade(head.host, s.facade, s.facadePort)) return;
        if (!head.hostInSegment) {
          counters_.add(Counter::kHttpHostSplit);
          return;
        }
        if (editCount == kMaxEdits) {
          counters_.add(Counter::kHttpHostNotRewritten);
          return;
        }
        edits[editCount] = {skip + head.hostOffset, head.hostLength};
        const HostRewrite r{first + static_cast<uint32_t>(edits[editCount].offset),
                            static_cast<uint16_t>(head.hostLength),
                            static_cast<uint16_t>(valueLength)};
        if (!fits(editCount + 1) || !flow.adjust.add(r, flow.serverAcked, flow.serverAckSeen)) {
          counters_.add(Counter::kHttpHostNotRewritten);
          return;
        }
        ++editCount;
        ++added;
      });
      flow.nextSeq = end;
      if (flow.parser.status() != HttpParseStatus::kOk || flow.parser.tunneled()) {
        flow.stopped = true;
        counters_.add(stopCounter(flow.parser));
      }
    }
  }
  // Every recorded rewrite ending at or before the first forwarded byte
  // shifts the segment (a SYN's own number has nothing before it).
  const uint32_t from = first + static_cast<uint32_t>(keepFrom);
  const int32_t shift = syn ? 0 : flow.adjust.shiftAt(from);
  if (added > 0) flow.rewritten.store(true, std::memory_order_release);
  flow.unlock();

  if (keepFrom > 0 || keepTo < length) {
    v.keepPayload(keepFrom, keepTo - keepFrom);
    for (size_t i = 0; i < editCount; ++i) edits[i].offset -= keepFrom;
    counters_.add(Counter::kHttpRetransmitsTrimmed);
  }
  // Checked to fit above; the recorded rewrites describe exactly these edits.
  if (editCount > 0) v.replacePayload(edits, editCount, {value, valueLength});
  if (redone > 0) counters_.add(Counter::kHttpRetransmitsRewritten);
  if (added > 0) counters_.add(Counter::kHttpHostsRewritten, added);
  if (shift != 0) v.setSeq((syn ? seq : from) + static_cast<uint32_t>(shift));
  return true;
}

void HttpFilter::ingress(HttpFlow& flow, PacketView& v, const SessionIdentity& session) {
  if ((v.tcpFlags() & (tcpflag::kSyn | tcpflag::kAck)) == (tcpflag::kSyn | tcpflag::kAck))
    reserveMss(flow, v, session);
  if (!flow.rewritten.load(std::memory_order_acquire)) return;
  const bool hasAck = (v.tcpFlags() & tcpflag::kAck) != 0;
  const uint32_t ack = v.ack();

  // SACK edges: the option's blocks, each a left and a right edge.
  constexpr size_t kMaxEdges = 8;
  uint8_t* edges[kMaxEdges];
  size_t edgeCount = 0;
  uint8_t* p = v.tcp + 20;
  uint8_t* const optionsEnd = v.tcp + v.tcpHeaderLength;
  while (p < optionsEnd && *p != 0) {
    if (*p == 1) {  // NOP
      ++p;
      continue;
    }
    if (optionsEnd - p < 2 || p[1] < 2 || p[1] > optionsEnd - p) break;
    const uint8_t kind = p[0], len = p[1];
    if (kind == 5 && (len - 2) % 8 == 0) {
      for (uint8_t* e = p + 2; e < p + len && edgeCount + 2 <= kMaxEdges; e += 8) {
        edges[edgeCount++] = e;
        edges[edgeCount++] = e + 4;
      }
    }
    p += len;
  }

  uint32_t mapped[kMaxEdges];
  uint32_t clientAck = ack;
  flow.lock();
  if (hasAck && (!flow.serverAckSeen || seqBefore(flow.serverAcked, ack))) {
    flow.serverAcked = ack;
    flow.serverAckSeen = true;
  }
  const bool adjust = flow.adjust.lengthChanged();
  if (adjust) {
    if (hasAck) clientAck = flow.adjust.toClient(ack, false);
    // A left edge inside a rewritten value rounds up, a right edge down: the
    // client must not take part of a value as received.
    for (size_t i = 0; i < edgeCount; ++i)
      mapped[i] = flow.adjust.toClient(checksum::load32(edges[i]), i % 2 == 0);
  }
  flow.unlock();
  if (!adjust) return;
  if (clientAck != ack) v.setAck(clientAck);
  for (size_t i = 0; i < edgeCount; ++i)
    if (mapped[i] != checksum::load32(edges[i])) v.rewriteTcp32(edges[i], mapped[i]);
}

void HttpFilter::reserveMss(HttpFlow& flow, PacketView& v, const SessionIdentity& s) {
  char value[24], facade[16];
  const bool grows = serverHostValue(s.server, s.serverPort, value) > formatV4(s.facade, facade);
  uint8_t* p = v.tcp + 20;
  uint8_t* const optionsEnd = v.tcp + v.tcpHeaderLength;
  while (p < optionsEnd && *p != 0) {
    if (*p == 1) {
      ++p;
      continue;
    }
    if (optionsEnd - p < 2 || p[1] < 2 || p[1] > optionsEnd - p) return;
    if (p[0] == 2 && p[1] == 4) {
      const uint16_t mss = checksum::load16(p + 2);
      // What the server can take bounds how far a client segment may grow.
      flow.lock();
      flow.serverMss = mss;
      flow.unlock();
      // 536 is the smallest MSS every IPv4 host must accept (RFC 9293).
      if (grows && mss > 536 + kMssReserve) {
        const auto lowered = static_cast<uint16_t>(mss - kMssReserve);
        // Kind, length and MSS rewritten as one 32-bit word (rewriteTcp32
        // keeps the checksum right at any alignment).
        v.rewriteTcp32(p, (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | lowered);
        counters_.add(Counter::kHttpMssLowered);
      }
      return;
    }
    p += p[1];
  }
}

void HttpFilter::log(const HttpRequestHead& head, const HttpSessionContext& ctx) {
  if (!ring_) return;
  const SessionIdentity& s = *ctx.session;
  RequestLogEntry& e = entry_;
  e.timeUnixUs = log::nowUnixUs();
  e.client = s.client;
  e.clientPort = s.clientPort;
  e.facade = s.facade;
  e.facadePort = s.facadePort;
  e.server = s.server;
  e.serverPort = s.serverPort;
  RequestLogEntry::set(e.application, ctx.application);
  RequestLogEntry::set(e.serverName, ctx.serverName);
  RequestLogEntry::set(e.method, head.method);
  RequestLogEntry::set(e.version, head.version);
  RequestLogEntry::set(e.host, head.host);
  RequestLogEntry::set(e.path, head.path);
  ring_->push(e);
}

}  // namespace fulcrum
