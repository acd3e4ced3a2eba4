// The management API over the control plane's Unix socket, with the
// blocking helpers of shared/channel (no event loop): connect, write one
// frame, read one frame, under one deadline for the whole exchange. The
// reply frame may be as large as channel::kDefaultMaxFrame.
#pragma once

#include "mgmt/transport.h"

namespace fulcrum::cli {

class SocketTransport final : public Transport {
 public:
  Exchange exchange(const std::string& socketPath, const pb::MgmtRequest& request,
                    std::chrono::milliseconds timeout) override;
};

}  // namespace fulcrum::cli
