// pcap backend: a PacketQueue over capture files, for the replay harness and
// tools. A reading queue hands out the packets of a capture in order, with
// their timestamps and link-layer headers as captured; a writing queue
// appends packets to a new capture of a given link type.
#pragma once

#include <memory>
#include <string>

#include "data-plane/io/packet_io.h"

struct pcap;
struct pcap_dumper;

namespace fulcrum {

class PcapQueue final : public PacketQueue {
 public:
  // nullptr and *error (one line) when the file is missing or not a capture.
  static std::unique_ptr<PcapQueue> openRead(const std::string& path, std::string* error);
  static std::unique_ptr<PcapQueue> openWrite(const std::string& path, int linkType,
                                              std::string* error);
  ~PcapQueue() override;
  PcapQueue(const PcapQueue&) = delete;
  PcapQueue& operator=(const PcapQueue&) = delete;

  int pollFd() const override { return -1; }
  // Returns 0 at the end of the capture, or when it is damaged (then failed()).
  size_t receiveBurst(PacketBuffer** buffers, size_t max) override;
  size_t transmitBurst(PacketBuffer* const* buffers, size_t count) override;

  int linkType() const;
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  PcapQueue() = default;
  pcap* pcap_ = nullptr;
  pcap_dumper* dumper_ = nullptr;
  std::string error_;
};

}  // namespace fulcrum
