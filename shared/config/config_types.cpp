#include "shared/config/config_types.h"

namespace fulcrum {

// These spellings are the configuration language: the parser accepts exactly
// them and configToText() prints them, so they must never change casually.
const char* algorithmName(Algorithm a) {
  switch (a) {
    case Algorithm::kLeastConnections:
      return "least-connections";
    case Algorithm::kRoundRobin:
      return "round-robin";
    case Algorithm::kWeightedRoundRobin:
      return "weighted-round-robin";
    case Algorithm::kSourceHash:
      return "source-hash";
    case Algorithm::kMaglev:
      return "maglev";
  }
  return "unknown";  // a value cast from outside the enum
}

const char* monitorTypeName(MonitorType t) {
  switch (t) {
    case MonitorType::kNone:
      return "none";
    case MonitorType::kIcmp:
      return "icmp";
    case MonitorType::kTcp:
      return "tcp";
    case MonitorType::kHttp:
      return "http";
  }
  return "unknown";
}

}  // namespace fulcrum
