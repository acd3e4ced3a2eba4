#include "tests/harness/replay.h"

#include <pcap/pcap.h>

#include <algorithm>
#include <cstring>
#include <iomanip>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <vector>

#include "data-plane/engine_config.h"
#include "data-plane/io/pcap_queue.h"
#include "data-plane/log_queue.h"
#include "data-plane/processor.h"
#include "shared/net/checksum.h"
#include "shared/net/packet_view.h"

namespace fulcrum::replay {

namespace {

// Where the IP header starts for each supported link type, and how the data
// plane should see the bytes we hand it.
struct Link {
  LinkType type;
  size_t strip;  // bytes of link header the data plane does not understand
};

bool linkFor(int dlt, Link& link) {
  switch (dlt) {
    case DLT_EN10MB:
      link = {LinkType::kEthernet, 0};
      return true;
    case DLT_RAW:
    case 228 /* DLT_IPV4 */:
      link = {LinkType::kRawIp, 0};
      return true;
    case DLT_LINUX_SLL:
      link = {LinkType::kRawIp, 16};
      return true;
    case 276 /* DLT_LINUX_SLL2 */:
      link = {LinkType::kRawIp, 20};
      return true;
    default:
      return false;
  }
}

using FlowId = std::tuple<uint32_t, uint16_t, uint32_t, uint16_t>;  // client, port, façade, port

std::string endpoint(uint32_t addr, uint16_t port) {
  return formatEndpoint(IpAddress::v4(addr), port);
}

// ---------------------------------------------------------------------------
// HTTP filter checks: the harness's own model of what the data plane must do
// to a connection, built from the capture alone. Nothing here calls the data
// plane's HTTP code; the scan below is deliberately simple and only has to
// read what real clients send.
//
// Positions are offsets in a direction's byte stream: offset 0 is the byte
// after the SYN (sequence number ISN + 1).

// The client's stream as captured (first pass), and for each byte the number
// of the packet that brought it first in order: the segment the data plane's
// parser read it from.
struct ClientStream {
  bool hasIsn = false;
  uint32_t isn = 0;
  bool reopened = false;  // a second SYN with another ISN: not modelled
  bool gap = false;       // a segment started past the bytes so far
  std::vector<uint8_t> bytes;
  std::vector<uint64_t> origin;
  struct Segment {
    size_t start, length;  // stream offsets
    size_t ipLength;       // IP total length as captured
  };
  std::map<uint64_t, Segment> segments;  // by packet number: those that brought new bytes
};

constexpr size_t kMaxModelledStream = 64u << 20;  // per connection; longer ones go unchecked

// One request head of the scan.
struct ScannedRequest {
  std::string method, target, version, host;
  bool hostPresent = false;
  size_t hostStart = 0, hostLength = 0;  // the value without surrounding whitespace
  size_t headEnd = 0;                    // one past the empty line that ends the head
};

struct ScanResult {
  std::vector<ScannedRequest> requests;
  bool notHttp = false;  // the first request line is not one
};

bool isUpper(uint8_t c) {
  return c >= 'A' && c <= 'Z';
}
bool isOws(uint8_t c) {
  return c == ' ' || c == '\t';
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// Request heads of an HTTP/1.x client stream: request line, header lines up
// to an empty line, then a body of Content-Length bytes or chunks. Stops at
// the first line it cannot read, where the stream ends inside a request, at
// CONNECT, and after the body of an HTTP/1.1 request with Upgrade (the rest
// is another protocol).
ScanResult scanRequests(const std::vector<uint8_t>& s) {
  ScanResult result;
  const size_t n = s.size();
  size_t p = 0;
  // [p, end of line), and where the next line starts; false if no LF follows.
  auto line = [&](size_t from, std::string& text, size_t& next) {
    const auto lf = std::find(s.begin() + static_cast<std::ptrdiff_t>(from), s.end(), '\n');
    if (lf == s.end()) return false;
    size_t end = static_cast<size_t>(lf - s.begin());
    next = end + 1;
    if (end > from && s[end - 1] == '\r') --end;
    text.assign(s.begin() + static_cast<std::ptrdiff_t>(from),
                s.begin() + static_cast<std::ptrdiff_t>(end));
    return true;
  };
  std::string text;
  size_t next = 0;
  while (p < n) {
    while (p < n && (s[p] == '\n' || (s[p] == '\r' && p + 1 < n && s[p + 1] == '\n')))
      p += s[p] == '\r' ? 2 : 1;
    if (p >= n || !line(p, text, next)) break;
    // METHOD SP target SP HTTP/1.d
    ScannedRequest r;
    size_t i = 0;
    while (i < text.size() && isUpper(static_cast<uint8_t>(text[i]))) ++i;
    const size_t sp1 = i;
    const size_t sp2 = sp1 < text.size() ? text.find(' ', sp1 + 1) : std::string::npos;
    bool ok = sp1 > 0 && sp1 < text.size() && text[sp1] == ' ' && sp2 != std::string::npos &&
              sp2 > sp1 + 1;
    if (ok) {
      r.method = text.substr(0, sp1);
      r.target = text.substr(sp1 + 1, sp2 - sp1 - 1);
      r.version = text.substr(sp2 + 1);
      for (char c : r.target) ok = ok && static_cast<uint8_t>(c) > 0x20 && c != 0x7f;
      ok = ok && r.version.size() == 8 && r.version.compare(0, 7, "HTTP/1.") == 0 &&
           r.version[7] >= '0' && r.version[7] <= '9';
    }
    if (!ok) {
      result.notHttp = result.requests.empty();
      break;
    }
    p = next;
    uint64_t contentLength = 0;
    bool chunked = false, upgrade = false, complete = false;
    while (line(p, text, next)) {
      const size_t lineStart = p;
      p = next;
      if (text.empty()) {
        complete = true;
        break;
      }
      const size_t colon = text.find(':');
      if (colon == std::string::npos) continue;
      const std::string name = lower(text.substr(0, colon));
      size_t b = colon + 1, e = text.size();
      while (b < e && isOws(static_cast<uint8_t>(text[b]))) ++b;
      while (e > b && isOws(static_cast<uint8_t>(text[e - 1]))) --e;
      const std::string value = text.substr(b, e - b);
      if (name == "host") {
        r.hostPresent = true;
        r.host = value;
        r.hostStart = lineStart + b;
        r.hostLength = value.size();
      } else if (name == "content-length") {
        contentLength = std::strtoull(value.c_str(), nullptr, 10);
      } else if (name == "transfer-encoding") {
        const size_t comma = value.rfind(',');
        std::string last = comma == std::string::npos ? value : value.substr(comma + 1);
        while (!last.empty() && isOws(static_cast<uint8_t>(last.front()))) last.erase(0, 1);
        chunked = lower(last) == "chunked";
      } else if (name == "upgrade") {
        upgrade = true;
      }
    }
    if (!complete) break;  // the stream ends inside this head
    r.headEnd = p;
    result.requests.push_back(r);
    if (r.method == "CONNECT") break;
    if (chunked) {
      while (true) {
        if (!line(p, text, next)) return result;
        const uint64_t size = std::strtoull(text.c_str(), nullptr, 16);
        p = next;
        if (size == 0) {
          while (line(p, text, next)) {
            p = next;
            if (text.empty()) break;
          }
          break;
        }
        p += size + 2;  // data, CRLF
        if (p > n) return result;
      }
    } else {
      p += contentLength;
    }
    if (upgrade && r.version == "HTTP/1.1") break;
  }
  return result;
}

// What the data plane must make of one connection.
struct HttpModel {
  bool filtered = false;  // its application has http-filter on
  bool complete = false;  // the capture holds the whole client stream: compare at the end
  ScanResult scan;
  std::vector<size_t> facadeHosts;  // indices into scan.requests
  struct Rewrite {
    size_t start, length;  // the client's value
  };
  std::vector<Rewrite> candidates;  // façade values in the segment that ends their head
  std::vector<Rewrite> rewrites;    // of those, the ones that fit (chooseRewrites)
  uint64_t split = 0;
  uint64_t tooBig = 0;  // candidates whose segment would grow past its limit
};

// The data plane grows a packet of up to 1500 IP bytes to 1500 at most (a
// larger one is a GSO super-packet: up to 65535), taking a segment's values
// in order while they fit. The capture was made without a load balancer, so
// its client used the server's full MSS; behind Fulcrum it would have got an
// MSS lowered by HttpFilter::kMssReserve and sent segments that leave room.
constexpr size_t kPlainPacketLimit = 1500;

void chooseRewrites(HttpModel& m, const ClientStream& c, size_t valueLength) {
  m.rewrites.clear();
  m.tooBig = 0;
  for (const auto& r : m.candidates) {
    const ClientStream::Segment& seg = c.segments.at(c.origin[r.start]);
    int64_t size = static_cast<int64_t>(seg.ipLength);
    for (const auto& done : m.rewrites)
      if (done.start >= seg.start && done.start + done.length <= seg.start + seg.length)
        size += static_cast<int64_t>(valueLength) - static_cast<int64_t>(done.length);
    size += static_cast<int64_t>(valueLength) - static_cast<int64_t>(r.length);
    const size_t limit = seg.ipLength > kPlainPacketLimit ? 65535 : kPlainPacketLimit;
    if (size <= static_cast<int64_t>(limit))
      m.rewrites.push_back(r);
    else
      ++m.tooBig;
  }
}

std::string v4Text(uint32_t address) {
  return IpAddress::v4(address).toString();
}

HttpModel buildModel(const ClientStream& c, bool filtered, uint32_t facade, uint16_t facadePort) {
  HttpModel m;
  m.filtered = filtered;
  m.complete = c.hasIsn && !c.reopened && !c.gap && c.bytes.size() < kMaxModelledStream;
  if (!filtered || !c.hasIsn || c.reopened) return m;
  m.scan = scanRequests(c.bytes);
  const std::string name = v4Text(facade);
  const std::string withPort = name + ":" + std::to_string(facadePort);
  for (size_t i = 0; i < m.scan.requests.size(); ++i) {
    const ScannedRequest& r = m.scan.requests[i];
    if (!r.hostPresent || (r.host != name && r.host != withPort)) continue;
    m.facadeHosts.push_back(i);
    // The value is rewritten when the segment that ends the head also holds
    // its first byte; one that began earlier is passed as sent.
    if (c.origin[r.hostStart] == c.origin[r.headEnd - 1])
      m.candidates.push_back({r.hostStart, r.hostLength});
    else
      ++m.split;
  }
  return m;
}

// Per connection in the second pass: the model, the server-side stream the
// data plane produced, and the request logs it wrote.
struct HttpFlowState {
  const ClientStream* client = nullptr;
  HttpModel model;
  std::string serverValue;  // the Host value the server must get
  std::vector<uint8_t> serverBytes;
  std::vector<bool> serverHave;
  std::optional<int64_t> serverFin;  // server-space offset of the client's FIN
  std::vector<RequestLogEntry> logged;
  uint64_t order = 0;  // SYN order, for the report

  // Net length change of the rewrites that end at or before client offset `at`.
  int64_t shiftAt(int64_t at) const {
    int64_t d = 0;
    for (const auto& r : model.rewrites) {
      if (static_cast<int64_t>(r.start + r.length) > at) break;
      d += static_cast<int64_t>(serverValue.size()) - static_cast<int64_t>(r.length);
    }
    return d;
  }
  int64_t offset(uint32_t seq) const {
    return static_cast<int32_t>(seq - (client->isn + 1));  // the SYN itself is -1
  }
  // The server's stream as it must be: the client's with each value replaced.
  std::vector<uint8_t> expectedServerStream() const {
    std::vector<uint8_t> out;
    size_t from = 0;
    for (const auto& r : model.rewrites) {
      out.insert(out.end(), client->bytes.begin() + static_cast<std::ptrdiff_t>(from),
                 client->bytes.begin() + static_cast<std::ptrdiff_t>(r.start));
      out.insert(out.end(), serverValue.begin(), serverValue.end());
      from = r.start + r.length;
    }
    out.insert(out.end(), client->bytes.begin() + static_cast<std::ptrdiff_t>(from),
               client->bytes.end());
    return out;
  }
};

struct FlowState {
  bool hasServer = false;
  uint32_t server = 0;
  uint16_t serverPort = 0;
  std::string serverName;
  bool finClient = false, finServer = false, rst = false;
  bool closed() const { return rst || (finClient && finServer); }
  std::unique_ptr<HttpFlowState> http;  // application flows whose first SYN was captured
};

void recomputeChecksums(const PacketView& v) {
  checksum::store16(v.ip + 10, checksum::ipv4HeaderChecksum(v.ip, v.ipHeaderLength));
  checksum::store16(v.tcp + 16, checksum::ipv4TransportChecksum(v.srcV4(), v.dstV4(), 6, v.tcp,
                                                                v.tcpSegmentLength(), 16));
}

// The four-byte edges of the SACK option blocks of a TCP header.
std::vector<uint8_t*> sackEdges(const PacketView& v) {
  std::vector<uint8_t*> edges;
  uint8_t* p = v.tcp + 20;
  uint8_t* const end = v.tcp + v.tcpHeaderLength;
  while (p < end && *p != 0) {
    if (*p == 1) {
      ++p;
      continue;
    }
    if (end - p < 2 || p[1] < 2 || p[1] > end - p) break;
    if (p[0] == 5)
      for (uint8_t* e = p + 2; e + 8 <= p + p[1]; e += 8) {
        edges.push_back(e);
        edges.push_back(e + 4);
      }
    p += p[1];
  }
  return edges;
}

// Lowers the MSS option of a SYN+ACK by HttpFilter::kMssReserve, as long as
// it stays above 536 (RFC 9293's minimum). False when it has none to lower.
bool lowerMss(std::vector<uint8_t>& frame, LinkType type, bool fresh) {
  PacketView v;
  if (parsePacket(frame.data(), frame.size(), type, v) != ParseStatus::kTcpIpv4) return false;
  uint8_t* p = v.tcp + 20;
  uint8_t* const end = v.tcp + v.tcpHeaderLength;
  while (p < end && *p != 0) {
    if (*p == 1) {
      ++p;
      continue;
    }
    if (end - p < 2 || p[1] < 2 || p[1] > end - p) return false;
    if (p[0] == 2 && p[1] == 4) {
      const uint16_t mss = checksum::load16(p + 2);
      if (mss <= 536 + HttpFilter::kMssReserve) return false;
      const auto lowered = static_cast<uint16_t>(mss - HttpFilter::kMssReserve);
      if (fresh) {
        checksum::store16(p + 2, lowered);
        recomputeChecksums(v);
      } else {
        v.rewriteTcp32(p, (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | lowered);
      }
      return true;
    }
    p += p[1];
  }
  return false;
}

// First pass: every application connection's client stream.
std::map<FlowId, ClientStream> readClientStreams(
    const std::string& path, const Link& link,
    const std::map<std::pair<uint32_t, uint16_t>, const AppRuntime*>& facades) {
  std::map<FlowId, ClientStream> streams;
  std::string error;
  std::unique_ptr<PcapQueue> input = PcapQueue::openRead(path, &error);
  if (!input) return streams;  // the second pass says why
  auto packet = std::make_unique<PacketBuffer>();
  PacketBuffer* buffers[1] = {packet.get()};
  uint64_t number = 0;
  while (input->receiveBurst(buffers, 1) == 1) {
    ++number;
    if (packet->length < link.strip) continue;
    PacketView v;
    if (parsePacket(packet->data + link.strip, packet->length - link.strip, link.type, v) !=
            ParseStatus::kTcpIpv4 ||
        !facades.count({v.dstV4(), v.dstPort()}))
      continue;
    ClientStream& c = streams[{v.srcV4(), v.srcPort(), v.dstV4(), v.dstPort()}];
    const uint8_t flags = v.tcpFlags();
    if ((flags & tcpflag::kSyn) && !(flags & tcpflag::kAck)) {
      if (!c.hasIsn) {
        c.hasIsn = true;
        c.isn = v.seq();
      } else if (v.seq() != c.isn) {
        c.reopened = true;
      }
      continue;
    }
    if (!c.hasIsn || v.payloadLength == 0 || (flags & tcpflag::kSyn)) continue;
    const int64_t at = static_cast<int32_t>(v.seq() - (c.isn + 1));
    const int64_t have = static_cast<int64_t>(c.bytes.size());
    const int64_t end = at + static_cast<int64_t>(v.payloadLength);
    if (at > have) {
      c.gap = true;
    } else if (end > have && c.bytes.size() < kMaxModelledStream) {
      c.bytes.insert(c.bytes.end(), v.payload + (have - at), v.payload + v.payloadLength);
      c.origin.resize(c.bytes.size(), number);
      c.segments[number] = {static_cast<size_t>(at), v.payloadLength, v.ipTotalLength};
    }
  }
  return streams;
}

}  // namespace

bool run(const Config& config, const Options& options, Report& report, std::string* error) {
  std::string buildError;
  std::unique_ptr<EngineConfig> built = EngineConfig::build(config, &buildError);
  const EngineConfig* engine = built.get();
  if (!engine) {
    *error = "configuration cannot be served: " + buildError;
    return false;
  }
  int ssIndex = options.serviceSet.empty() ? (config.serviceSets.empty() ? -1 : 0)
                                           : engine->serviceSetIndex(options.serviceSet);
  if (ssIndex < 0) {
    *error = options.serviceSet.empty() ? "the configuration defines no service set"
                                        : "unknown service set '" + options.serviceSet + "'";
    return false;
  }
  const uint16_t ss = static_cast<uint16_t>(ssIndex);

  std::unique_ptr<PcapQueue> input = PcapQueue::openRead(options.capturePath, error);
  if (!input) return false;
  Link link{};
  if (!linkFor(input->linkType(), link)) {
    *error = "capture " + options.capturePath + ": unsupported link type " +
             std::to_string(input->linkType());
    return false;
  }
  std::unique_ptr<PcapQueue> outCluster, outClient;
  for (auto [path, out] :
       {std::pair{&options.outCluster, &outCluster}, std::pair{&options.outClient, &outClient}}) {
    if (path->empty()) continue;
    *out = PcapQueue::openWrite(*path, input->linkType(), error);
    if (!*out) return false;
  }

  LocalAffinityStore store;
  EngineShared shared(options.capacity, store);
  if (!shared.publish(std::move(built), false, error)) return false;
  PacketProcessor processor(shared, link.type);
  LogRing logs;
  processor.setLogRing(&logs);

  // Which application each façade of this service set belongs to, and the
  // name of each server endpoint.
  std::map<std::pair<uint32_t, uint16_t>, const AppRuntime*> facades;
  std::map<std::pair<uint32_t, uint16_t>, std::string> serverNames;
  for (const auto& app : engine->apps()) {
    if (app->serviceSet != ss) continue;
    facades[{app->facade, app->port}] = app.get();
    if (app->httpFilter) report.http.filter = true;
    for (size_t i = 0; i < app->pool->size(); ++i) {
      serverNames[{app->serverAddress[i], app->serverPort[i]}] = app->pool->server(i).name;
      report.sessionsByServer[app->pool->server(i).name] += 0;
    }
  }
  const std::map<FlowId, ClientStream> clientStreams =
      readClientStreams(options.capturePath, link, facades);

  std::map<FlowId, FlowState> flows;
  auto packet = std::make_unique<PacketBuffer>();
  PacketBuffer* buffers[1] = {packet.get()};
  uint8_t* const buffer = packet->data;
  // Room to grow: the rest of the 64 KiB buffer (0: the packet's own length).
  const uint32_t capacity =
      options.noRoom ? 0 : static_cast<uint32_t>(sizeof(packet->data) - link.strip);
  uint32_t now = 0;
  uint64_t number = 0;
  auto mismatch = [&](const std::string& what) {
    if (report.mismatches++ == 0) report.firstMismatch = what;
    if (report.mismatchDetails.size() < Report::kMismatchDetails)
      report.mismatchDetails.push_back(what);
  };
  // Written as the packet stands at that moment (the buffer is rewritten in place).
  auto write = [&](const std::unique_ptr<PcapQueue>& out) {
    if (out) out->transmitBurst(buffers, 1);
  };
  auto drainLogs = [&] {
    logs.drain(std::numeric_limits<uint32_t>::max(), [&](const RequestLogEntry& e) {
      ++report.http.requestsLogged;
      auto it = flows.find({e.client, e.clientPort, e.facade, e.facadePort});
      if (it == flows.end() || !it->second.http) {
        ++report.http.logMismatches;
        mismatch("request log for " + endpoint(e.client, e.clientPort) + ", no such connection");
        return;
      }
      it->second.http->logged.push_back(e);
    });
  };
  uint64_t synOrder = 0;

  while (input->receiveBurst(buffers, 1) == 1) {
    ++report.packets;
    ++number;
    now = static_cast<uint32_t>(packet->timestampUs / 1000000);
    if (packet->length < link.strip) {
      ++report.passthroughPackets;
      continue;
    }
    uint8_t* frame = buffer + link.strip;
    const size_t frameLength = packet->length - link.strip;

    PacketView in;
    ParseStatus status = parsePacket(frame, frameLength, link.type, in);
    const bool tcp4 = status == ParseStatus::kTcpIpv4;
    const bool toFacade = tcp4 && facades.count({in.dstV4(), in.dstPort()});
    const bool fromFacade = tcp4 && !toFacade && facades.count({in.srcV4(), in.srcPort()});
    PacketRef ref{frame, static_cast<uint32_t>(frameLength), ss, Direction::kEgress};
    ref.capacity = capacity;

    if (toFacade) {
      ++report.egressPackets;
      FlowId id{in.srcV4(), in.srcPort(), in.dstV4(), in.dstPort()};
      auto [it, isNew] = flows.try_emplace(id);
      if (isNew) ++report.flows;
      FlowState& flow = it->second;
      const bool inputValid = in.ipv4ChecksumValid() && in.tcpChecksumValid();
      const uint8_t flags = in.tcpFlags();
      const uint32_t inSeq = in.seq(), inAck = in.ack();
      const size_t inPayload = in.payloadLength;
      if (!flow.http && (flags & tcpflag::kSyn) && !(flags & tcpflag::kAck)) {
        auto stream = clientStreams.find(id);
        if (stream != clientStreams.end() && stream->second.hasIsn) {
          const AppRuntime* app = facades.at({in.dstV4(), in.dstPort()});
          flow.http = std::make_unique<HttpFlowState>();
          flow.http->client = &stream->second;
          flow.http->model = buildModel(stream->second, app->httpFilter, app->facade, app->port);
          flow.http->order = synOrder++;
        }
      }
      HttpFlowState* http = flow.http.get();
      write(outClient);
      Verdict verdict = processor.process(ref, now);
      drainLogs();
      if (flags & tcpflag::kRst) flow.rst = true;
      if (flags & tcpflag::kFin) flow.finClient = true;
      if (verdict == Verdict::kDrop) {
        ++report.dropped;
        continue;
      }
      packet->length = static_cast<uint32_t>(link.strip + ref.length);
      PacketView out;
      parsePacket(frame, ref.length, link.type, out);
      auto server = serverNames.find({out.dstV4(), out.dstPort()});
      if (server == serverNames.end()) {
        mismatch("flow " + endpoint(std::get<0>(id), std::get<1>(id)) + " sent to " +
                 endpoint(out.dstV4(), out.dstPort()) + ", which is no server");
      } else if (!flow.hasServer) {
        flow.hasServer = true;
        flow.server = out.dstV4();
        flow.serverPort = out.dstPort();
        flow.serverName = server->second;
        ++report.sessionsByServer[server->second];
        report.serversByClient[IpAddress::v4(std::get<0>(id)).toString()].insert(server->second);
        if (http) {
          http->serverValue = v4Text(flow.server) +
                              (flow.serverPort == 80 ? "" : ":" + std::to_string(flow.serverPort));
          chooseRewrites(http->model, *http->client, http->serverValue.size());
        }
      } else if (flow.server != out.dstV4() || flow.serverPort != out.dstPort()) {
        mismatch("flow " + endpoint(std::get<0>(id), std::get<1>(id)) + " moved from " +
                 flow.serverName + " to " + server->second);
      }
      if (out.srcV4() != std::get<0>(id) || out.srcPort() != std::get<1>(id))
        mismatch("egress source rewritten for " + endpoint(std::get<0>(id), std::get<1>(id)));
      // A packet that came in with a bad checksum leaves with a bad one
      // (the data plane updates, it does not repair); only count ours.
      if (inputValid && !(out.ipv4ChecksumValid() && out.tcpChecksumValid())) {
        ++report.checksumErrors;
      }
      report.http.largestEgressIp =
          std::max<uint64_t>(report.http.largestEgressIp, out.ipTotalLength);
      // The server's view: sequence numbers shifted by the rewrites before
      // them, and bytes that agree with every earlier copy.
      if (http && !http->client->reopened && flow.hasServer) {
        const std::string who = endpoint(std::get<0>(id), std::get<1>(id));
        const int64_t at = http->offset(inSeq);
        const uint32_t wantSeq = inSeq + static_cast<uint32_t>(http->shiftAt(at));
        if (out.seq() != wantSeq || out.ack() != inAck) {
          ++report.http.seqMismatches;
          mismatch("client segment of " + who + " at offset " + std::to_string(at) + ": seq " +
                   std::to_string(out.seq()) + " ack " + std::to_string(out.ack()) +
                   ", expected seq " + std::to_string(wantSeq) + " ack " + std::to_string(inAck));
        }
        if (inPayload > 0 && !(flags & tcpflag::kSyn)) {
          const int64_t serverAt = http->offset(out.seq());
          bool consistent = serverAt >= 0;
          for (size_t i = 0; consistent && i < out.payloadLength; ++i) {
            const size_t pos = static_cast<size_t>(serverAt) + i;
            if (pos >= kMaxModelledStream) break;
            if (pos >= http->serverBytes.size()) {
              http->serverBytes.resize(pos + 1);
              http->serverHave.resize(pos + 1);
            }
            if (http->serverHave[pos]) {
              consistent = http->serverBytes[pos] == out.payload[i];
            } else {
              http->serverHave[pos] = true;
              http->serverBytes[pos] = out.payload[i];
            }
          }
          if (!consistent) {
            ++report.http.streamMismatches;
            mismatch("client segment of " + who + " at offset " + std::to_string(at) +
                     " reaches the server with bytes that differ from an earlier copy");
          }
          // A copy of a segment that held a rewritten value must be rewritten again.
          const auto& rw = http->model.rewrites;
          const bool again = std::any_of(rw.begin(), rw.end(), [&](const auto& r) {
            return static_cast<int64_t>(r.start) >= at &&
                   static_cast<int64_t>(r.start + r.length) <=
                       at + static_cast<int64_t>(inPayload) &&
                   http->client->origin[r.start] != number;
          });
          if (again) ++report.http.retransmitsRewrittenExpected;
        }
        if (flags & tcpflag::kFin) {
          const int64_t fin = http->offset(out.seq()) + static_cast<int64_t>(out.payloadLength);
          if (http->serverFin && *http->serverFin != fin) {
            ++report.http.streamMismatches;
            mismatch("client FIN of " + who + " moved in the server's stream");
          }
          http->serverFin = fin;
        }
      }
      write(outCluster);
    } else if (fromFacade) {
      FlowId id{in.dstV4(), in.dstPort(), in.srcV4(), in.srcPort()};
      auto it = flows.find(id);
      if (it == flows.end() || !it->second.hasServer) {
        ++report.repliesWithoutSession;
        continue;
      }
      ++report.ingressPackets;
      FlowState& flow = it->second;
      const bool inputValid = in.ipv4ChecksumValid() && in.tcpChecksumValid();
      const std::vector<uint8_t> original(frame, frame + frameLength);
      const uint8_t flags = in.tcpFlags();
      // Make the packet the server would have sent: its own address and port,
      // checksums computed afresh as a server's stack does. (A capture made
      // with checksum offload can hold bad checksums; keep those bad in the
      // same way, so the byte comparison below still means something.) The
      // capture was taken at the client, so acknowledgements and SACK edges
      // count the client's bytes; the server counted its own, which the
      // rewrites before them made longer or shorter.
      std::vector<std::pair<uint8_t*, uint32_t>> serverSpace;
      if (HttpFlowState* http = flow.http.get(); http && !http->client->reopened) {
        auto map = [&](uint8_t* field) {
          const uint32_t clientValue = checksum::load32(field);
          const int64_t shift = http->shiftAt(http->offset(clientValue));
          if (shift != 0)
            serverSpace.push_back({field, clientValue + static_cast<uint32_t>(shift)});
          return shift != 0;
        };
        if ((flags & tcpflag::kAck) && map(in.tcp + 8)) ++report.http.acksMapped;
        for (uint8_t* edge : sackEdges(in))
          if (map(edge)) ++report.http.sackEdgesMapped;
      }
      if (inputValid) {
        checksum::store32(in.ip + 12, flow.server);
        checksum::store16(in.tcp, flow.serverPort);
        for (auto [field, value] : serverSpace) checksum::store32(field, value);
        recomputeChecksums(in);
      } else {
        in.setSrcV4(flow.server);
        in.setSrcPort(flow.serverPort);
        for (auto [field, value] : serverSpace) in.rewriteTcp32(field, value);
      }
      write(outCluster);
      ref.direction = Direction::kIngress;
      Verdict verdict = processor.process(ref, now);
      if (flags & tcpflag::kRst) flow.rst = true;
      if (flags & tcpflag::kFin) flow.finServer = true;
      if (verdict == Verdict::kDrop) {
        ++report.dropped;
        mismatch("reply to " + endpoint(std::get<0>(id), std::get<1>(id)) + " dropped");
        continue;
      }
      // What the client must get: the captured original, except that a
      // SYN+ACK offers an MSS lowered by HttpFilter::kMssReserve when the
      // server's Host value is longer than the façade's address (room for
      // segments that grow).
      std::vector<uint8_t> expected = original;
      if (const HttpFlowState* http = flow.http.get();
          http && http->model.filtered && (flags & tcpflag::kSyn) && (flags & tcpflag::kAck) &&
          http->serverValue.size() > v4Text(std::get<2>(id)).size() &&
          lowerMss(expected, link.type, inputValid))
        ++report.http.mssLoweredExpected;
      // Compare the layer-3 bytes: the link header is not ours to judge.
      PacketView out;
      parsePacket(frame, ref.length, link.type, out);
      const size_t l3 = static_cast<size_t>(out.ip - frame);
      if (ref.length != frameLength ||
          std::memcmp(frame + l3, expected.data() + l3, frameLength - l3) != 0)
        mismatch("reply to " + endpoint(std::get<0>(id), std::get<1>(id)) +
                 " differs from the captured original after un-NAT");
      write(outClient);
    } else {
      ++report.passthroughPackets;
      const std::vector<uint8_t> original(frame, frame + frameLength);
      Verdict verdict = processor.process(ref, now);
      if (verdict == Verdict::kDrop) {
        ++report.dropped;
        continue;
      }
      if (ref.length != frameLength || std::memcmp(frame, original.data(), frameLength) != 0)
        mismatch("a packet of no application was changed");
      write(outCluster);
    }
    processor.expireStep(now, 1024);
  }
  if (input->failed()) {
    *error = "capture " + options.capturePath + " is damaged: " + input->error();
    return false;
  }

  // Age the table past every closing timeout: what closed in the capture must
  // be gone, what was still open stays.
  const TcpTimeouts& t = engine->timeouts();
  processor.expireAll(now + std::max(t.timeWait, t.closed) + 1);
  drainLogs();
  std::set<FlowId> live;
  shared.table.forEach([&](const SessionInfo& s) {
    if (s.kind != SessionKind::kApplication) return;
    ++report.openSessions;
    live.insert({s.client, s.clientPort, s.facade, s.facadePort});
  });
  std::vector<std::pair<uint64_t, HttpFlowReport>> httpFlows;
  for (const auto& [id, flow] : flows) {
    const std::string who = endpoint(std::get<0>(id), std::get<1>(id));
    if (flow.closed()) {
      ++report.closedFlows;
      if (live.count(id)) {
        ++report.closedSessionsLeft;
        mismatch("closed connection " + who + " still has a session");
      }
    }
    const HttpFlowState* http = flow.http.get();
    if (!http || !flow.hasServer) continue;
    const HttpModel& m = http->model;
    // The server's whole stream: the client's with the values replaced, no
    // byte missing, the FIN right after the last byte.
    HttpFlowReport f;
    f.client = who;
    f.server = flow.serverName;
    f.clientBytes = http->client->bytes.size();
    f.serverBytes = http->serverBytes.size();
    f.checked = m.complete;
    if (m.complete) {
      const std::vector<uint8_t> want = http->expectedServerStream();
      const bool whole =
          std::all_of(http->serverHave.begin(), http->serverHave.end(), [](bool b) { return b; });
      if (!whole || http->serverBytes != want) {
        ++report.http.streamMismatches;
        size_t at = 0;
        while (at < want.size() && at < http->serverBytes.size() && http->serverHave[at] &&
               want[at] == http->serverBytes[at])
          ++at;
        mismatch("the server's stream of " + who + " differs from the expected one at offset " +
                 std::to_string(at) + " (" + std::to_string(http->serverBytes.size()) +
                 " bytes, expected " + std::to_string(want.size()) + ")");
      }
      if (http->serverFin && *http->serverFin != static_cast<int64_t>(want.size())) {
        ++report.http.streamMismatches;
        mismatch("client FIN of " + who + " at server offset " + std::to_string(*http->serverFin) +
                 ", expected " + std::to_string(want.size()));
      }
    } else {
      ++report.http.uncheckedFlows;
    }
    if (!m.filtered) {
      if (!http->logged.empty()) {
        report.http.logMismatches += http->logged.size();
        mismatch("request logs for " + who + ", whose application has http-filter off");
      }
      continue;
    }
    // The request logs: one per request head, in order, saying what the
    // client sent.
    const auto& requests = m.scan.requests;
    f.requests = requests.size();
    f.logged = http->logged.size();
    f.facadeHosts = m.facadeHosts.size();
    f.rewrites = m.rewrites.size();
    f.split = m.split;
    f.tooBig = m.tooBig;
    f.notHttp = m.scan.notHttp;
    for (const auto& r : m.rewrites)
      f.lengthChange +=
          static_cast<int64_t>(http->serverValue.size()) - static_cast<int64_t>(r.length);
    // (A stream the capture does not hold whole was scanned only in part.)
    if (m.complete ? requests.size() != http->logged.size()
                   : requests.size() > http->logged.size()) {
      ++report.http.logMismatches;
      mismatch(who + ": " + std::to_string(http->logged.size()) + " requests logged, " +
               std::to_string(requests.size()) + " in the stream");
    }
    for (size_t i = 0; i < std::min(requests.size(), http->logged.size()); ++i) {
      const ScannedRequest& r = requests[i];
      const RequestLogEntry& e = http->logged[i];
      // The data plane keeps 256 bytes of a path and 192 of a Host value at
      // least; longer ones are compared as far as both go.
      auto same = [](const std::string& want, const char* got, size_t keep) {
        const std::string_view g(got);
        return want.size() > keep ? g == std::string_view(want).substr(0, g.size()) : g == want;
      };
      if (!same(r.method, e.method, 15) || !same(r.target, e.path, 256) ||
          !same(r.version, e.version, 15) || !same(r.host, e.host, 192) ||
          flow.serverName != e.serverName) {
        ++report.http.logMismatches;
        mismatch(who + ": request " + std::to_string(i + 1) + " logged as " + e.method + " " +
                 e.path + " " + e.version + " Host " + e.host + " on " + e.serverName +
                 ", sent as " + r.method + " " + r.target + " " + r.version + " Host " + r.host);
      }
    }
    report.http.requestsExpected += f.requests;
    report.http.facadeHosts += f.facadeHosts;
    report.http.hostsRewrittenExpected += f.rewrites;
    report.http.hostsSplitExpected += f.split;
    report.http.hostsTooBigExpected += f.tooBig;
    if (f.notHttp) ++report.http.notHttpFlows;
    if (f.rewrites > 0)
      ++(f.lengthChange != 0 ? report.http.lengthChangedFlows : report.http.sameLengthFlows);
    httpFlows.emplace_back(http->order, f);
  }
  std::sort(httpFlows.begin(), httpFlows.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, f] : httpFlows) report.http.flows.push_back(std::move(f));
  for (size_t i = 0; i < kCounterCount; ++i) {
    uint64_t v = processor.counters().get(static_cast<Counter>(i));
    if (v) report.counters[std::string(kCounterInfo[i].name)] = v;
  }
  return true;
}

std::string toJson(const Report& r) {
  std::ostringstream o;
  auto map = [&](const std::map<std::string, uint64_t>& m) {
    o << "{";
    bool first = true;
    for (const auto& [k, v] : m) {
      o << (first ? "" : ", ") << "\"" << k << "\": " << v;  // names are [A-Za-z0-9_.-]
      first = false;
    }
    o << "}";
  };
  o << "{\"packets\": " << r.packets << ", \"egress_packets\": " << r.egressPackets
    << ", \"ingress_packets\": " << r.ingressPackets
    << ", \"passthrough_packets\": " << r.passthroughPackets
    << ", \"replies_without_session\": " << r.repliesWithoutSession
    << ", \"dropped\": " << r.dropped << ", \"flows\": " << r.flows
    << ", \"closed_flows\": " << r.closedFlows << ", \"sessions_by_server\": ";
  map(r.sessionsByServer);
  o << ", \"servers_by_client\": {";
  bool firstClient = true;
  for (const auto& [client, servers] : r.serversByClient) {
    o << (firstClient ? "" : ", ") << "\"" << client << "\": [";
    bool firstServer = true;
    for (const auto& name : servers) {
      o << (firstServer ? "" : ", ") << "\"" << name << "\"";
      firstServer = false;
    }
    o << "]";
    firstClient = false;
  }
  o << "}";
  o << ", \"mismatches\": " << r.mismatches << ", \"checksum_errors\": " << r.checksumErrors
    << ", \"open_sessions\": " << r.openSessions
    << ", \"closed_sessions_left\": " << r.closedSessionsLeft << ", \"counters\": ";
  map(r.counters);
  const HttpReport& h = r.http;
  o << ", \"http\": {\"filter\": " << (h.filter ? "true" : "false")
    << ", \"requests_expected\": " << h.requestsExpected
    << ", \"requests_logged\": " << h.requestsLogged << ", \"log_mismatches\": " << h.logMismatches
    << ", \"facade_hosts\": " << h.facadeHosts
    << ", \"hosts_rewritten_expected\": " << h.hostsRewrittenExpected
    << ", \"hosts_split_expected\": " << h.hostsSplitExpected
    << ", \"hosts_too_big_expected\": " << h.hostsTooBigExpected
    << ", \"mss_lowered_expected\": " << h.mssLoweredExpected
    << ", \"retransmits_rewritten_expected\": " << h.retransmitsRewrittenExpected
    << ", \"not_http_flows\": " << h.notHttpFlows
    << ", \"stream_mismatches\": " << h.streamMismatches
    << ", \"seq_mismatches\": " << h.seqMismatches << ", \"acks_mapped\": " << h.acksMapped
    << ", \"sack_edges_mapped\": " << h.sackEdgesMapped
    << ", \"length_changed_flows\": " << h.lengthChangedFlows
    << ", \"same_length_flows\": " << h.sameLengthFlows
    << ", \"unchecked_flows\": " << h.uncheckedFlows
    << ", \"largest_egress_ip\": " << h.largestEgressIp << ", \"flows\": [";
  for (size_t i = 0; i < h.flows.size(); ++i) {
    const HttpFlowReport& f = h.flows[i];
    o << (i ? ", " : "") << "{\"client\": \"" << f.client << "\", \"server\": \"" << f.server
      << "\", \"requests\": " << f.requests << ", \"logged\": " << f.logged
      << ", \"facade_hosts\": " << f.facadeHosts << ", \"rewrites\": " << f.rewrites
      << ", \"split\": " << f.split << ", \"too_big\": " << f.tooBig
      << ", \"length_change\": " << f.lengthChange << ", \"client_bytes\": " << f.clientBytes
      << ", \"server_bytes\": " << f.serverBytes
      << ", \"not_http\": " << (f.notHttp ? "true" : "false")
      << ", \"checked\": " << (f.checked ? "true" : "false") << "}";
  }
  o << "]}}\n";
  return o.str();
}

std::string toText(const Report& r) {
  std::ostringstream o;
  o << "packets          " << r.packets << " (" << r.egressPackets << " client->facade, "
    << r.ingressPackets << " replies, " << r.passthroughPackets << " other)\n"
    << "flows            " << r.flows << " (" << r.closedFlows << " closed in the capture)\n"
    << "dropped          " << r.dropped << "\n"
    << "sessions by server:\n";
  uint64_t total = 0;
  for (const auto& [name, n] : r.sessionsByServer) total += n;
  for (const auto& [name, n] : r.sessionsByServer) {
    o << "  " << std::left << std::setw(14) << name << std::right << std::setw(6) << n;
    if (total) o << "  (" << (100 * n + total / 2) / total << "%)";
    o << "\n";
  }
  if (r.http.filter) {
    const HttpReport& h = r.http;
    o << "http filter      " << h.requestsExpected << " requests in the streams, "
      << h.requestsLogged << " logged; " << h.facadeHosts
      << " Host values name the facade: " << h.hostsRewrittenExpected << " to rewrite, "
      << h.hostsSplitExpected << " split, " << h.hostsTooBigExpected << " too big\n"
      << "                 " << h.lengthChangedFlows << " connections change length, "
      << h.sameLengthFlows << " keep it; " << h.notHttpFlows << " not HTTP; " << h.acksMapped
      << " acks and " << h.sackEdgesMapped << " SACK edges in server space\n"
      << "                 mismatches: " << h.streamMismatches << " in streams, " << h.seqMismatches
      << " in seq/ack, " << h.logMismatches << " in logs\n";
  }
  o << "mismatches       " << r.mismatches << "\n"
    << "checksum errors  " << r.checksumErrors << "\n"
    << "open sessions    " << r.openSessions << "\n";
  if (!r.mismatchDetails.empty()) {
    o << "first mismatches:\n";
    for (const auto& m : r.mismatchDetails) o << "  " << m << "\n";
  }
  return o.str();
}

}  // namespace fulcrum::replay
