// The replay harness: feeds a capture of clients talking to a façade through
// the data plane and checks what comes out (see README, "Replay harness").
//
// For applications with http-filter on it also checks the HTTP filter against
// its own model, made from the capture alone (a first pass reads each client
// byte stream and scans it for request heads, without the data plane's
// parser):
//   - the server's view: every client segment the data plane sends on has its
//     sequence number shifted by the rewrites before it and agrees byte for
//     byte with every earlier copy; in the end each server stream is the
//     client's with each Host value naming the façade replaced by the server's
//     address (except values split across segments and rewrites that would
//     grow a 1500-byte packet), and the client's FIN follows its last byte;
//   - the client's view: the capture was taken at the client, so a reply's
//     acknowledgement and SACK edges are moved into the server's numbering
//     before the reply goes through the data plane, and what comes out must be
//     the captured original (a SYN+ACK's MSS lowered by kMssReserve when the
//     server's value is longer than the façade's address);
//   - the request logs (drained from a LogRing): one per request head, in
//     order, with the method, path, version and Host the client sent.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "data-plane/tcp_state.h"
#include "shared/config/config_types.h"

namespace fulcrum::replay {

struct Options {
  std::string capturePath;
  std::string serviceSet;  // empty = the first service set of the configuration
  std::string outCluster;  // pcap of the cluster side: NATed egress, server replies
  std::string outClient;   // pcap of the client side: client packets, un-NATed replies
  uint32_t capacity = 1 << 16;
  // Hand the data plane packets without room to grow (as the old
  // process(frame, length) did). The expectations stay the same, so every
  // rewrite that needs room shows up as a mismatch: a test of the checks.
  bool noRoom = false;
};

// One client connection of an application with http-filter on, as the
// harness saw it (replay.cpp, "HTTP filter checks").
struct HttpFlowReport {
  std::string client;        // address:port
  std::string server;        // server name
  uint64_t requests = 0;     // request heads in the client's stream (the harness's scan)
  uint64_t logged = 0;       // request-log entries the data plane wrote for it
  uint64_t facadeHosts = 0;  // requests whose Host names the façade
  uint64_t rewrites = 0;     // of those, the ones to rewrite (value in the segment ending the head)
  uint64_t split = 0;        // the others: left as sent
  uint64_t tooBig = 0;       // rewrites that would grow a packet past its limit: left as sent
  int64_t lengthChange = 0;  // server stream length minus client stream length
  uint64_t clientBytes = 0;  // the client's stream, as captured
  uint64_t serverBytes = 0;  // the server's stream, as the data plane sent it
  bool notHttp = false;      // the stream does not begin with a request line
  bool checked = false;      // its streams were compared (complete, not reopened)
};

struct HttpReport {
  bool filter = false;            // some application of the service set has http-filter on
  uint64_t requestsExpected = 0;  // request heads found by the harness's own scan
  uint64_t requestsLogged = 0;    // entries drained from the processor's LogRing
  uint64_t logMismatches = 0;     // entries that differ from the scan (count, method, path, ...)
  uint64_t facadeHosts = 0;       // requests whose Host value names the façade
  uint64_t hostsRewrittenExpected = 0;
  uint64_t hostsSplitExpected = 0;
  uint64_t hostsTooBigExpected = 0;           // would grow a 1500-byte segment: left as sent
  uint64_t mssLoweredExpected = 0;            // SYN+ACKs to get an MSS lowered by kMssReserve
  uint64_t retransmitsRewrittenExpected = 0;  // later copies of a segment holding a rewrite
  uint64_t notHttpFlows = 0;
  uint64_t streamMismatches = 0;      // server's view: inconsistent or unexpected bytes, bad FIN
  uint64_t seqMismatches = 0;         // egress seq not shifted as the model says, or ack changed
  uint64_t acksMapped = 0;            // server replies whose ack the harness moved to server space
  uint64_t sackEdgesMapped = 0;       // and SACK edges
  uint64_t lengthChangedFlows = 0;    // flows with rewrites whose net length change is not 0
  uint64_t sameLengthFlows = 0;       // flows with rewrites that keep the length
  uint64_t uncheckedFlows = 0;        // streams not compared: capture incomplete, or reopened
  uint64_t largestEgressIp = 0;       // largest IP packet sent to a server
  std::vector<HttpFlowReport> flows;  // in order of the flows' SYNs
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
  HttpReport http;
  std::string firstMismatch;  // what the first mismatch was, for a person
  static constexpr size_t kMismatchDetails = 10;
  std::vector<std::string> mismatchDetails;  // the first few, for a person
};

// Replays. Returns false with *error set (one line) when the capture cannot
// be read or the configuration cannot be served.
bool run(const Config& config, const Options& options, Report& report, std::string* error);

std::string toJson(const Report& r);
std::string toText(const Report& r);

}  // namespace fulcrum::replay
