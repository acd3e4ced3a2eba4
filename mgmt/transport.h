// How the CLI reaches the control plane: one request frame out, one reply
// frame back. An interface so that everything above it (cli.h) runs in tests
// without a socket; socket_transport.h is the real one.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "shared/proto/fulcrum.pb.h"

namespace fulcrum::cli {

struct Exchange {
  enum class Status : uint8_t {
    kOk,           // `payload` holds the reply frame's payload
    kUnreachable,  // no connection: no such socket, refused, permission denied, timed out
    kSendFailed,   // connected, but the request could not be written
    kTimedOut,     // no whole reply within the timeout
    kBroken,       // the reply was cut short (peer closed, read error) or over the frame limit
  };
  Status status = Status::kOk;
  std::string reason;   // one line, for a failure: what the system said
  std::string payload;  // kOk: the serialized MgmtReply, not parsed yet
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends `request` as one frame to the control plane listening at
  // `socketPath` and reads one frame back, all within `timeout`.
  virtual Exchange exchange(const std::string& socketPath, const pb::MgmtRequest& request,
                            std::chrono::milliseconds timeout) = 0;
};

}  // namespace fulcrum::cli
