// fulcrum-replay --config FILE --capture IN.pcap [--service-set NAME]
//                [--out-cluster OUT.pcap] [--out-client OUT.pcap] [--json] [--no-room]
// Exit status: 0 when there are no mismatches and no checksum errors, 1 when
// there are, 2 when the arguments, the configuration or the capture are bad.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "shared/config/config_parser.h"
#include "tests/harness/replay.h"

namespace {

constexpr const char* kUsage =
    "usage: fulcrum-replay --config FILE --capture IN.pcap [--service-set NAME]\n"
    "                      [--out-cluster OUT.pcap] [--out-client OUT.pcap] [--json]\n"
    "                      [--no-room]\n"
    "Replays a capture of clients talking to a facade through the data plane and\n"
    "checks every rewrite. With http-filter on, it also checks the request logs,\n"
    "the Host rewrites and the server's and the client's view of each stream.\n"
    "--no-room gives packets no room to grow (a test of the checks themselves).\n"
    "Exit 0: no mismatch and no checksum error; 1: some; 2: bad arguments,\n"
    "configuration or capture.\n";

int fail(const std::string& message) {
  std::fprintf(stderr, "fulcrum-replay: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  fulcrum::replay::Options options;
  std::string configPath;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    bool ok = true;
    if (arg == "--config")
      ok = value(configPath);
    else if (arg == "--capture")
      ok = value(options.capturePath);
    else if (arg == "--service-set")
      ok = value(options.serviceSet);
    else if (arg == "--out-cluster")
      ok = value(options.outCluster);
    else if (arg == "--out-client")
      ok = value(options.outClient);
    else if (arg == "--json")
      json = true;
    else if (arg == "--no-room")
      options.noRoom = true;
    else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fputs(kUsage, stderr);
      return fail("unknown argument '" + arg + "'");
    }
    if (!ok) return fail("'" + arg + "' needs a value");
  }
  if (configPath.empty() || options.capturePath.empty()) {
    std::fputs(kUsage, stderr);
    return fail("--config and --capture are required");
  }
  std::ifstream file(configPath);
  if (!file) return fail("cannot read configuration " + configPath + ": " + std::strerror(errno));
  std::stringstream text;
  text << file.rdbuf();
  fulcrum::ConfigResult parsed = fulcrum::parseConfig(text.str());
  if (!parsed.ok()) return fail(configPath + ": " + parsed.error->toString());

  fulcrum::replay::Report report;
  std::string error;
  if (!fulcrum::replay::run(parsed.config, options, report, &error)) return fail(error);
  std::fputs(
      json ? fulcrum::replay::toJson(report).c_str() : fulcrum::replay::toText(report).c_str(),
      stdout);
  return report.mismatches == 0 && report.checksumErrors == 0 ? 0 : 1;
}
