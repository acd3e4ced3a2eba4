// Tests of what the control plane makes of the engines' status for the
// management API and the event log (control-plane/engine_status.h): the
// affinity-store totals of `show statistics`, and which store state changes
// become one syslog event.
#include "control-plane/engine_status.h"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <string>
#include <vector>

namespace fulcrum {
namespace {

pb::EngineStatus withStore(const std::string& state,
                           const std::string& address = "redis://r:6379/0",
                           const std::string& lastError = "") {
  pb::EngineStatus s;
  pb::AffinityStoreStatus* a = s.mutable_affinity_store();
  a->set_kind(state == "local" ? "local" : "redis");
  a->set_address(state == "local" ? "local" : address);
  a->set_state(state);
  a->set_last_error(lastError);
  return s;
}

std::map<std::string, uint64_t> totalsOf(const std::vector<const pb::EngineStatus*>& statuses) {
  std::map<std::string, uint64_t> out;
  for (const auto& [name, value] : storeTotals(statuses)) {
    EXPECT_TRUE(out.emplace(name, value).second) << name << " twice";
  }
  return out;
}

TEST(StoreTotals, NamesInOrderAndZerosWithoutEngines) {
  std::vector<std::string> names;
  for (const auto& [name, value] : storeTotals({})) {
    names.push_back(name);
    EXPECT_EQ(value, 0u) << name;
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{
                "store_requests", "store_answered", "store_failed", "store_timeouts",
                "store_down_decisions", "store_cache_hits", "store_cache_misses",
                "store_reconnects", "store_session_sync_writes", "store_session_sync_recoveries",
                "store_latency_avg_us", "store_latency_max_us", "store_engines_down"}));
}

TEST(StoreTotals, SumsOverEnginesWeightsTheAverageAndTakesTheLargestMaximum) {
  pb::EngineStatus busy = withStore("up");
  pb::AffinityStoreStatus* a = busy.mutable_affinity_store();
  a->set_requests(1000);
  a->set_answered(900);
  a->set_failed(10);
  a->set_timeouts(40);
  a->set_down_decisions(50);
  a->set_cache_hits(5000);
  a->set_cache_misses(1000);
  a->set_reconnects(1);
  a->set_latency_avg_us(100);
  a->set_latency_max_us(2000);
  a->set_session_sync_writes(700);
  a->set_session_sync_recoveries(3);
  pb::EngineStatus idle = withStore("down", "redis://r:6379/0", "connect: Connection refused");
  a = idle.mutable_affinity_store();
  a->set_requests(100);
  a->set_answered(100);
  a->set_failed(1);
  a->set_timeouts(2);
  a->set_down_decisions(300);
  a->set_cache_hits(1);
  a->set_cache_misses(2);
  a->set_reconnects(9);
  a->set_latency_avg_us(1100);
  a->set_latency_max_us(9000);
  a->set_session_sync_writes(4);
  a->set_session_sync_recoveries(5);
  const pb::EngineStatus local = withStore("local");
  const pb::EngineStatus old;  // an engine that predates the field

  const auto t = totalsOf({&busy, &idle, &local, &old});
  EXPECT_EQ(t.at("store_requests"), 1100u);
  EXPECT_EQ(t.at("store_answered"), 1000u);
  EXPECT_EQ(t.at("store_failed"), 11u);
  EXPECT_EQ(t.at("store_timeouts"), 42u);
  EXPECT_EQ(t.at("store_down_decisions"), 350u);
  EXPECT_EQ(t.at("store_cache_hits"), 5001u);
  EXPECT_EQ(t.at("store_cache_misses"), 1002u);
  EXPECT_EQ(t.at("store_reconnects"), 10u);
  EXPECT_EQ(t.at("store_session_sync_writes"), 704u);
  EXPECT_EQ(t.at("store_session_sync_recoveries"), 8u);
  // (900 * 100 + 100 * 1100) / 1000, not (100 + 1100) / 2.
  EXPECT_EQ(t.at("store_latency_avg_us"), 200u);
  EXPECT_EQ(t.at("store_latency_max_us"), 9000u);
  EXPECT_EQ(t.at("store_engines_down"), 1u);
}

TEST(StoreTotals, NothingAnsweredMeansNoAverageAndSumsSaturate) {
  pb::EngineStatus a = withStore("down");
  a.mutable_affinity_store()->set_latency_avg_us(500);  // nothing answered: no weight
  a.mutable_affinity_store()->set_requests(std::numeric_limits<uint64_t>::max() - 1);
  pb::EngineStatus b = withStore("down");
  b.mutable_affinity_store()->set_requests(5);
  const auto t = totalsOf({&a, &b});
  EXPECT_EQ(t.at("store_latency_avg_us"), 0u);
  EXPECT_EQ(t.at("store_requests"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(t.at("store_engines_down"), 2u);
}

// Feeds states one after another; returns the event messages ("" for none).
std::vector<std::string> feed(StoreWatch& watch, const std::vector<pb::EngineStatus>& statuses) {
  std::vector<std::string> out;
  for (const pb::EngineStatus& s : statuses) {
    const auto t = watchStore(watch, "lb1", s);
    out.push_back(!t ? "" : (t->down ? "W " : "N ") + t->message);
  }
  return out;
}

TEST(WatchStore, UpDownUpIsTwoEvents) {
  StoreWatch watch;
  const std::vector<std::string> events =
      feed(watch, {withStore("connecting"), withStore("up"), withStore("up"),
                   withStore("down", "redis://r:6379/0", "connect: Connection refused"),
                   withStore("down", "redis://r:6379/0", "connect: Connection refused"),
                   withStore("connecting"), withStore("down"), withStore("connecting"),
                   withStore("up"), withStore("up")});
  EXPECT_EQ(events,
            (std::vector<std::string>{
                "", "", "",
                "W engine lb1: affinity store redis://r:6379/0 is down: connect: "
                "Connection refused",
                "", "", "", "", "N engine lb1: affinity store redis://r:6379/0 is up", ""}));
}

TEST(WatchStore, DownAtTheFirstReportIsAnEventAndAnErrorIsOptional) {
  StoreWatch watch;
  EXPECT_EQ(feed(watch, {withStore("down")}),
            std::vector<std::string>{"W engine lb1: affinity store redis://r:6379/0 is down"});
  // Up, then connecting, then down: one event, when it is down.
  StoreWatch other;
  EXPECT_EQ(feed(other, {withStore("up"), withStore("connecting"),
                         withStore("down", "redis://r:6379/0", "timeout")}),
            (std::vector<std::string>{
                "", "", "W engine lb1: affinity store redis://r:6379/0 is down: timeout"}));
}

TEST(WatchStore, AnotherStoreStartsOver) {
  StoreWatch watch;
  EXPECT_EQ(feed(watch, {withStore("down", "redis://a:6379/0"), withStore("down", "redis://b:1/0"),
                         withStore("up", "redis://b:1/0"), withStore("up", "redis://a:6379/0"),
                         withStore("down", "redis://a:6379/0")}),
            (std::vector<std::string>{"W engine lb1: affinity store redis://a:6379/0 is down",
                                      "W engine lb1: affinity store redis://b:1/0 is down",
                                      "N engine lb1: affinity store redis://b:1/0 is up", "",
                                      "W engine lb1: affinity store redis://a:6379/0 is down"}));
}

TEST(WatchStore, ALocalStoreOrNoStoreForgetsTheState) {
  StoreWatch watch;
  EXPECT_EQ(
      feed(watch, {withStore("down"), withStore("local"), withStore("up"), withStore("down"),
                   pb::EngineStatus{}, withStore("down")}),
      (std::vector<std::string>{"W engine lb1: affinity store redis://r:6379/0 is down", "", "",
                                "W engine lb1: affinity store redis://r:6379/0 is down", "",
                                "W engine lb1: affinity store redis://r:6379/0 is down"}));
  EXPECT_EQ(watch.settled, "down");
  // A local store never makes an event.
  StoreWatch local;
  EXPECT_EQ(feed(local, {withStore("local"), withStore("local")}),
            (std::vector<std::string>{"", ""}));
}

TEST(WatchStore, WithoutAnAddressTheKindNamesTheStore) {
  StoreWatch watch;
  pb::EngineStatus s = withStore("down");
  s.mutable_affinity_store()->clear_address();
  const auto t = watchStore(watch, "e 2", s);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->message, "engine e 2: affinity store redis is down");
}

}  // namespace
}  // namespace fulcrum
