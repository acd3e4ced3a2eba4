#include "data-plane/http/http_filter.h"

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
  const size_t room = v.frameCapacity > v.frameLength ? v.frameCapacity : v.frameLength;
  const size_t ipOffset = static_cast<size_t>(v.ip - v.frame);
  PayloadEdit edits[kMaxEdits];
  size_t editCount = 0;
  const size_t ipLimit = v.ipTotalLength > kPlainPacketLimit ? 65535 : kPlainPacketLimit;
  auto fits = [&](size_t count) {
    const size_t after = v.frameLengthAfter(edits, count, valueLength);
    return after <= room && after - ipOffset <= ipLimit;
  };

  flow.lock();
  size_t redone = 0, added = 0;
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
    // same way; a segment that cuts one cannot be made consistent.
    for (size_t i = 0; i < flow.adjust.count(); ++i) {
      const HostRewrite& r = flow.adjust.rewrite(i);
      const bool overlaps = seqBefore(first, r.clientEnd()) && seqBefore(r.clientSeq, end);
      if (!overlaps) continue;
      const bool inside = seqAtOrBefore(first, r.clientSeq) && seqAtOrBefore(r.clientEnd(), end);
      const size_t offset = r.clientSeq - first;
      if (!inside || editCount == kMaxEdits ||
          !hostNamesFacade({reinterpret_cast<const char*>(v.payload) + offset, r.oldLength},
                           s.facade, s.facadePort)) {
        flow.unlock();
        counters_.add(Counter::kDropHttpRetransmitSplit);
        return false;
      }
      edits[editCount++] = {offset, r.oldLength};
    }
    redone = editCount;
    if (redone > 0 && !fits(redone)) {
      flow.unlock();
      counters_.add(Counter::kDropHttpRetransmitSplit);
      return false;
    }
    // New bytes go to the parser.
    if (!flow.stopped && seqBefore(flow.nextSeq, end)) {
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
  // Every recorded rewrite ending at or before the first payload byte shifts
  // the segment (a SYN's own number has nothing before it).
  const int32_t shift = syn ? 0 : flow.adjust.shiftAt(seq);
  if (added > 0) flow.rewritten.store(true, std::memory_order_release);
  flow.unlock();

  // Checked to fit above; the recorded rewrites describe exactly these edits.
  if (editCount > 0) v.replacePayload(edits, editCount, {value, valueLength});
  if (redone > 0) counters_.add(Counter::kHttpRetransmitsRewritten);
  if (added > 0) counters_.add(Counter::kHttpHostsRewritten, added);
  if (shift != 0) v.setSeq(seq + static_cast<uint32_t>(shift));
  return true;
}

void HttpFilter::ingress(HttpFlow& flow, PacketView& v, const SessionIdentity& session) {
  if ((v.tcpFlags() & (tcpflag::kSyn | tcpflag::kAck)) == (tcpflag::kSyn | tcpflag::kAck))
    reserveMss(v, session);
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

void HttpFilter::reserveMss(PacketView& v, const SessionIdentity& s) {
  char value[24], facade[16];
  if (serverHostValue(s.server, s.serverPort, value) <= formatV4(s.facade, facade)) return;
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
      // 536 is the smallest MSS every IPv4 host must accept (RFC 9293).
      if (mss > 536 + kMssReserve) {
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
