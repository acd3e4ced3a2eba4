#include "tests/harness/replay.h"

#include <pcap/pcap.h>

#include <cstring>
#include <iomanip>
#include <memory>
#include <set>
#include <sstream>
#include <tuple>
#include <vector>

#include "data-plane/engine_config.h"
#include "data-plane/io/pcap_queue.h"
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

struct FlowState {
  bool hasServer = false;
  uint32_t server = 0;
  uint16_t serverPort = 0;
  std::string serverName;
  bool finClient = false, finServer = false, rst = false;
  bool closed() const { return rst || (finClient && finServer); }
};

void recomputeChecksums(const PacketView& v) {
  checksum::store16(v.ip + 10, checksum::ipv4HeaderChecksum(v.ip, v.ipHeaderLength));
  checksum::store16(v.tcp + 16, checksum::ipv4TransportChecksum(v.srcV4(), v.dstV4(), 6, v.tcp,
                                                                v.tcpSegmentLength(), 16));
}

std::string endpoint(uint32_t addr, uint16_t port) {
  return formatEndpoint(IpAddress::v4(addr), port);
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

  // Which application each façade of this service set belongs to, and the
  // name of each server endpoint.
  std::map<std::pair<uint32_t, uint16_t>, const AppRuntime*> facades;
  std::map<std::pair<uint32_t, uint16_t>, std::string> serverNames;
  for (const auto& app : engine->apps()) {
    if (app->serviceSet != ss) continue;
    facades[{app->facade, app->port}] = app.get();
    for (size_t i = 0; i < app->pool->size(); ++i) {
      serverNames[{app->serverAddress[i], app->serverPort[i]}] = app->pool->server(i).name;
      report.sessionsByServer[app->pool->server(i).name] += 0;
    }
  }

  std::map<FlowId, FlowState> flows;
  auto packet = std::make_unique<PacketBuffer>();
  PacketBuffer* buffers[1] = {packet.get()};
  uint8_t* const buffer = packet->data;
  uint32_t now = 0;
  auto mismatch = [&](const std::string& what) {
    if (report.mismatches++ == 0) report.firstMismatch = what;
  };
  // Written as the packet stands at that moment (the buffer is rewritten in place).
  auto write = [&](const std::unique_ptr<PcapQueue>& out) {
    if (out) out->transmitBurst(buffers, 1);
  };

  while (input->receiveBurst(buffers, 1) == 1) {
    ++report.packets;
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

    if (toFacade) {
      ++report.egressPackets;
      FlowId id{in.srcV4(), in.srcPort(), in.dstV4(), in.dstPort()};
      auto [it, isNew] = flows.try_emplace(id);
      if (isNew) ++report.flows;
      FlowState& flow = it->second;
      const bool inputValid = in.ipv4ChecksumValid() && in.tcpChecksumValid();
      const uint8_t flags = in.tcpFlags();
      write(outClient);
      Verdict verdict = processor.process(frame, frameLength, ss, Direction::kEgress, now);
      if (flags & tcpflag::kRst) flow.rst = true;
      if (flags & tcpflag::kFin) flow.finClient = true;
      if (verdict == Verdict::kDrop) {
        ++report.dropped;
        continue;
      }
      PacketView out;
      parsePacket(frame, frameLength, link.type, out);
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
      // same way, so the byte comparison below still means something.)
      if (inputValid) {
        checksum::store32(in.ip + 12, flow.server);
        checksum::store16(in.tcp, flow.serverPort);
        recomputeChecksums(in);
      } else {
        in.setSrcV4(flow.server);
        in.setSrcPort(flow.serverPort);
      }
      write(outCluster);
      Verdict verdict = processor.process(frame, frameLength, ss, Direction::kIngress, now);
      if (flags & tcpflag::kRst) flow.rst = true;
      if (flags & tcpflag::kFin) flow.finServer = true;
      if (verdict == Verdict::kDrop) {
        ++report.dropped;
        mismatch("reply to " + endpoint(std::get<0>(id), std::get<1>(id)) + " dropped");
        continue;
      }
      // Compare the layer-3 bytes: the link header is not ours to judge.
      PacketView out;
      parsePacket(frame, frameLength, link.type, out);
      const size_t l3 = static_cast<size_t>(out.ip - frame);
      if (std::memcmp(frame + l3, original.data() + l3, frameLength - l3) != 0)
        mismatch("reply to " + endpoint(std::get<0>(id), std::get<1>(id)) +
                 " differs from the captured original after un-NAT");
      write(outClient);
    } else {
      ++report.passthroughPackets;
      const std::vector<uint8_t> original(frame, frame + frameLength);
      Verdict verdict = processor.process(frame, frameLength, ss, Direction::kEgress, now);
      if (verdict == Verdict::kDrop) {
        ++report.dropped;
        continue;
      }
      if (std::memcmp(frame, original.data(), frameLength) != 0)
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
  std::set<FlowId> live;
  shared.table.forEach([&](const SessionInfo& s) {
    if (s.kind != SessionKind::kApplication) return;
    ++report.openSessions;
    live.insert({s.client, s.clientPort, s.facade, s.facadePort});
  });
  for (const auto& [id, flow] : flows) {
    if (!flow.closed()) continue;
    ++report.closedFlows;
    if (live.count(id)) {
      ++report.closedSessionsLeft;
      mismatch("closed connection " + endpoint(std::get<0>(id), std::get<1>(id)) +
               " still has a session");
    }
  }
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
  o << "}\n";
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
  o << "mismatches       " << r.mismatches << "\n"
    << "checksum errors  " << r.checksumErrors << "\n"
    << "open sessions    " << r.openSessions << "\n";
  if (!r.firstMismatch.empty()) o << "first mismatch:  " << r.firstMismatch << "\n";
  return o.str();
}

}  // namespace fulcrum::replay
