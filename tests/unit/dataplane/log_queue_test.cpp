#include "data-plane/log_queue.h"

#include <gtest/gtest.h>

#include <thread>

namespace fulcrum {
namespace {

RequestLogEntry entry(int64_t n) {
  RequestLogEntry e;
  e.timeUnixUs = n;
  RequestLogEntry::set(e.path, "/item/" + std::to_string(n));
  return e;
}

TEST(LogRing, KeepsOrderAndCountsDrops) {
  LogRing ring(4);
  for (int i = 0; i < 6; ++i) ring.push(entry(i));
  EXPECT_EQ(ring.dropped(), 2u);
  std::vector<int64_t> seen;
  EXPECT_EQ(ring.drain(100, [&](const RequestLogEntry& e) { seen.push_back(e.timeUnixUs); }), 4u);
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_TRUE(ring.push(entry(9)));  // room again
  EXPECT_EQ(ring.drain(1, [&](const RequestLogEntry& e) { EXPECT_EQ(e.timeUnixUs, 9); }), 1u);
}

TEST(LogRing, FieldsAreCutAndTerminated) {
  RequestLogEntry e;
  RequestLogEntry::set(e.method, std::string(100, 'G'));
  EXPECT_EQ(std::string(e.method), std::string(15, 'G'));
  RequestLogEntry::set(e.host, "198.18.0.10");
  EXPECT_STREQ(e.host, "198.18.0.10");
}

TEST(LogRing, ProducerAndConsumerOnTwoThreads) {
  // Every entry pushed is either drained, once and in order, or counted as dropped.
  LogRing ring(64);
  constexpr int kEntries = 200000;
  int pushed = 0;
  std::thread producer([&] {
    for (int i = 0; i < kEntries; ++i)
      if (ring.push(entry(i))) ++pushed;
  });
  int64_t last = -1;
  uint64_t drained = 0;
  bool ordered = true;
  while (producer.joinable()) {
    drained += ring.drain(32, [&](const RequestLogEntry& e) {
      ordered = ordered && e.timeUnixUs > last;
      last = e.timeUnixUs;
    });
    if (drained + ring.dropped() == kEntries) break;
  }
  producer.join();
  drained += ring.drain(1000, [&](const RequestLogEntry& e) {
    ordered = ordered && e.timeUnixUs > last;
    last = e.timeUnixUs;
  });
  EXPECT_TRUE(ordered);
  EXPECT_EQ(drained, static_cast<uint64_t>(pushed));
  EXPECT_EQ(drained + ring.dropped(), static_cast<uint64_t>(kEntries));
}

}  // namespace
}  // namespace fulcrum
