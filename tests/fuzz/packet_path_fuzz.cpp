// libFuzzer entry point: one frame through the whole packet path (the HTTP
// filter included), and a check that whatever is forwarded as IPv4 TCP still
// carries valid checksums when it came in with valid ones.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "data-plane/processor.h"
#include "shared/config/config_parser.h"
#include "tests/fuzz/fuzz_config.h"

namespace {

struct Engine {
  Engine() : shared(256, store) {
    fulcrum::ConfigResult parsed = fulcrum::parseConfig(fulcrum::fuzz::kConfig);
    if (!parsed.ok()) std::abort();
    std::string error;
    auto config = fulcrum::EngineConfig::build(parsed.config, &error, 251);
    if (!config || !shared.publish(std::move(config), false, &error)) std::abort();
    for (auto link : {fulcrum::LinkType::kEthernet, fulcrum::LinkType::kRawIp}) {
      loops.push_back(std::make_unique<fulcrum::PacketProcessor>(shared, link));
      loops.back()->setLogRing(&ring);
    }
  }
  fulcrum::LocalAffinityStore store{1024};
  fulcrum::LogRing ring{8};  // mostly full: drops are exercised too
  fulcrum::EngineShared shared;
  std::vector<std::unique_ptr<fulcrum::PacketProcessor>> loops;
  uint32_t now = 1000;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Engine engine;
  if (size < 2) return 0;
  const uint8_t control = data[0];
  engine.now += data[1];
  const auto direction = (control & 1) ? fulcrum::Direction::kIngress : fulcrum::Direction::kEgress;
  auto& loop = *engine.loops[(control >> 1) & 1];
  const auto link = (control & 2) ? fulcrum::LinkType::kRawIp : fulcrum::LinkType::kEthernet;
  const uint16_t serviceSet = (control >> 2) & 1;
  // A copy with room for a Host rewrite to grow the packet, and nothing
  // beyond: AddressSanitizer reports any access past the room given.
  const size_t length = size - 2;
  std::vector<uint8_t> frame(length + 64);
  std::memcpy(frame.data(), data + 2, length);
  fulcrum::PacketView in;
  bool validIn =
      fulcrum::parsePacket(frame.data(), length, link, in) == fulcrum::ParseStatus::kTcpIpv4 &&
      in.ipv4ChecksumValid() && in.tcpChecksumValid();
  fulcrum::PacketRef packet{frame.data(), static_cast<uint32_t>(length), serviceSet, direction};
  packet.capacity = static_cast<uint32_t>(frame.size());
  auto verdict = loop.process(packet, engine.now);
  if (packet.length > frame.size()) std::abort();  // grew past the room it had
  if (verdict == fulcrum::Verdict::kForward && validIn) {
    fulcrum::PacketView out;
    if (fulcrum::parsePacket(frame.data(), packet.length, link, out) !=
            fulcrum::ParseStatus::kTcpIpv4 ||
        !out.ipv4ChecksumValid() || !out.tcpChecksumValid())
      std::abort();  // a rewrite broke a checksum
  }
  // Keep the log ring from filling for good: drain it now and then.
  if ((control & 0x30) == 0x30) engine.ring.drain(8, [](const fulcrum::RequestLogEntry&) {});
  if ((control & 0xf0) == 0xf0) loop.expireStep(engine.now, 64);
  return 0;
}
