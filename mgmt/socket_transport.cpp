#include "mgmt/socket_transport.h"

#include <unistd.h>

#include <algorithm>

#include "shared/channel/channel.h"

namespace fulcrum::cli {

Exchange SocketTransport::exchange(const std::string& socketPath, const pb::MgmtRequest& request,
                                   std::chrono::milliseconds timeout) {
  using std::chrono::steady_clock;
  const auto deadline = steady_clock::now() + timeout;
  // The helpers take a span, not a deadline, and give up when less than a
  // millisecond of it is left. Each step gets what is left of the one
  // deadline, rounded up and a millisecond more, so that a step that gives up
  // for time does so after the deadline: their error strings do not say
  // which failure was a timeout, the clock does.
  auto left = [&] {
    const auto remaining =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - steady_clock::now());
    return std::max(remaining, std::chrono::milliseconds(0)) + std::chrono::milliseconds(1);
  };
  auto expired = [&] { return steady_clock::now() >= deadline; };

  channel::Endpoint to;
  to.kind = channel::Endpoint::Kind::kUnix;
  to.path = socketPath;
  Exchange out;
  const int fd = channel::connectBlocking(to, timeout, &out.reason);
  if (fd < 0) {
    out.status = Exchange::Status::kUnreachable;
    return out;
  }
  if (!channel::writeFrameBlocking(fd, request, left(), &out.reason)) {
    out.status = expired() ? Exchange::Status::kTimedOut : Exchange::Status::kSendFailed;
  } else if (!channel::readFrameBlocking(fd, out.payload, channel::kDefaultMaxFrame, left(),
                                         &out.reason)) {
    out.status = expired() ? Exchange::Status::kTimedOut : Exchange::Status::kBroken;
    out.payload.clear();
  }
  ::close(fd);
  return out;
}

}  // namespace fulcrum::cli
