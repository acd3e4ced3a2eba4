// Writes a seed corpus for packet_path_fuzz: a handshake, data, FIN and RST
// toward the façades in both link types, so the fuzzer starts inside the
// interesting branches instead of having to discover TCP on its own.
#include <cstdio>
#include <string>

#include "tests/common/packet_builder.h"

using namespace fulcrum;
using namespace fulcrum::testing;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds DIR\n");
    return 2;
  }
  int n = 0;
  auto write = [&](uint8_t control, const std::vector<uint8_t>& frame) {
    std::string path = std::string(argv[1]) + "/seed-" + std::to_string(n++);
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return;
    uint8_t head[2] = {control, 1};
    std::fwrite(head, 1, 2, f);
    std::fwrite(frame.data(), 1, frame.size(), f);
    std::fclose(f);
  };
  for (bool ethernet : {true, false}) {
    for (uint32_t facade : {ip4(198, 18, 0, 10), ip4(198, 18, 0, 20), ip4(198, 18, 9, 9)}) {
      uint16_t port = facade == ip4(198, 18, 0, 20) ? 443 : 80;
      uint8_t link = ethernet ? 0 : 2;
      for (uint8_t flags : {tcpflag::kSyn, tcpflag::kAck, uint8_t(tcpflag::kAck | tcpflag::kPsh),
                            uint8_t(tcpflag::kFin | tcpflag::kAck), tcpflag::kRst}) {
        TcpPacketSpec s;
        s.ethernet = ethernet;
        s.vlanTags = ethernet && flags == tcpflag::kAck ? 1 : 0;
        s.dst = facade;
        s.dstPort = port;
        s.flags = flags;
        // The client's first data byte follows its SYN's sequence number,
        // so the HTTP filter reads these requests.
        s.seq = flags == tcpflag::kSyn ? 1000 : 1001;
        s.payload = flags & tcpflag::kPsh ? "GET / HTTP/1.1\r\nHost: 198.18.0.10\r\n\r\n"
                                            "POST /a HTTP/1.1\r\nHost: 198.18.0.10:80\r\n"
                                            "Content-Length: 5\r\n\r\nhello"
                                          : "";
        write(link, buildTcp(s));
        TcpPacketSpec r;
        r.ethernet = ethernet;
        r.src = ip4(198, 18, 1, 11);
        r.srcPort = 8080;
        r.dst = ip4(198, 18, 0, 1);
        r.dstPort = 40000;
        r.flags = flags == tcpflag::kSyn ? uint8_t(tcpflag::kSyn | tcpflag::kAck) : flags;
        write(static_cast<uint8_t>(link | 1), buildTcp(r));
      }
    }
  }
  std::printf("%d seeds\n", n);
  return 0;
}
