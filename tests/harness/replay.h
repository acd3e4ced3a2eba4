// The replay harness: feeds a capture of clients talking to a façade through
// the data plane and checks what comes out (see README, "Replay harness").
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "data-plane/tcp_state.h"
#include "shared/config/config_types.h"

namespace fulcrum::replay {

struct Options {
  std::string capturePath;
  std::string serviceSet;  // empty = the first service set of the configuration
  std::string outCluster;  // pcap of the cluster side: NATed egress, server replies
  std::string outClient;   // pcap of the client side: client packets, un-NATed replies
  uint32_t capacity = 1 << 16;
};

struct Report {
  uint64_t packets = 0;
  uint64_t egressPackets = 0;       // client -> façade
  uint64_t ingressPackets = 0;      // façade replies, replayed as from the chosen server
  uint64_t passthroughPackets = 0;  // matched no façade in either direction
  uint64_t repliesWithoutSession = 0;
  uint64_t dropped = 0;
  uint64_t flows = 0;        // client connections to a façade
  uint64_t closedFlows = 0;  // of which closed in the capture (both FINs, or RST)
  uint64_t mismatches = 0;
  uint64_t checksumErrors = 0;
  uint64_t openSessions = 0;        // application sessions left after ageing
  uint64_t closedSessionsLeft = 0;  // closed in the capture but still in the table (a mismatch)
  std::map<std::string, uint64_t> sessionsByServer;
  std::map<std::string, std::set<std::string>> serversByClient;  // client address -> servers
  std::map<std::string, uint64_t> counters;  // data-plane counters that are not zero
  std::string firstMismatch;                 // what the first mismatch was, for a person
};

// Replays. Returns false with *error set (one line) when the capture cannot
// be read or the configuration cannot be served.
bool run(const Config& config, const Options& options, Report& report, std::string* error);

std::string toJson(const Report& r);
std::string toText(const Report& r);

}  // namespace fulcrum::replay
