#include "data-plane/io/pcap_queue.h"

#include <pcap/pcap.h>

#include <cstring>

namespace fulcrum {

std::unique_ptr<PcapQueue> PcapQueue::openRead(const std::string& path, std::string* error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* p = pcap_open_offline(path.c_str(), errbuf);
  if (!p) {
    *error = "cannot read capture " + path + ": " + errbuf;
    return nullptr;
  }
  std::unique_ptr<PcapQueue> q(new PcapQueue());
  q->pcap_ = p;
  return q;
}

std::unique_ptr<PcapQueue> PcapQueue::openWrite(const std::string& path, int linkType,
                                                std::string* error) {
  pcap_t* p = pcap_open_dead(linkType, static_cast<int>(kMaxPacketSize));
  if (!p) {
    *error = "cannot write " + path + ": no pcap handle for link type " + std::to_string(linkType);
    return nullptr;
  }
  pcap_dumper_t* d = pcap_dump_open(p, path.c_str());
  if (!d) {
    *error = "cannot write " + path + ": " + pcap_geterr(p);
    pcap_close(p);
    return nullptr;
  }
  std::unique_ptr<PcapQueue> q(new PcapQueue());
  q->pcap_ = p;
  q->dumper_ = d;
  return q;
}

PcapQueue::~PcapQueue() {
  if (dumper_) pcap_dump_close(dumper_);
  if (pcap_) pcap_close(pcap_);
}

int PcapQueue::linkType() const {
  return pcap_datalink(pcap_);
}

size_t PcapQueue::receiveBurst(PacketBuffer** buffers, size_t max) {
  if (dumper_ || failed()) return 0;
  size_t n = 0;
  while (n < max) {
    pcap_pkthdr* header = nullptr;
    const u_char* data = nullptr;
    int rc = pcap_next_ex(pcap_, &header, &data);
    if (rc != 1) {
      if (rc == PCAP_ERROR) error_ = pcap_geterr(pcap_);
      break;
    }
    // Longer than any packet we handle: keep what fits, as a snaplen would.
    const size_t length = header->caplen < kMaxPacketSize ? header->caplen : kMaxPacketSize;
    std::memcpy(buffers[n]->data, data, length);
    buffers[n]->length = static_cast<uint32_t>(length);
    buffers[n]->timestampUs = int64_t{header->ts.tv_sec} * 1000000 + header->ts.tv_usec;
    ++n;
  }
  return n;
}

size_t PcapQueue::transmitBurst(PacketBuffer* const* buffers, size_t count) {
  if (!dumper_) return 0;
  for (size_t i = 0; i < count; ++i) {
    pcap_pkthdr header{};
    header.ts.tv_sec = static_cast<time_t>(buffers[i]->timestampUs / 1000000);
    header.ts.tv_usec = static_cast<suseconds_t>(buffers[i]->timestampUs % 1000000);
    header.caplen = header.len = buffers[i]->length;
    pcap_dump(reinterpret_cast<u_char*>(dumper_), &header, buffers[i]->data);
  }
  return count;
}

}  // namespace fulcrum
