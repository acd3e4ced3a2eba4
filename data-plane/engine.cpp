#include "data-plane/engine.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "data-plane/counters.h"
#include "shared/config/config_parser.h"
#include "shared/log.h"

namespace fulcrum {

Engine::Engine(const Options& options) : shared_(options.capacity, store_, options.httpFlows) {
  for (uint32_t i = 0; i < options.loops; ++i) {
    loops_.push_back(std::make_unique<PacketProcessor>(shared_, options.link));
    rings_.push_back(std::make_unique<LogRing>());
    loops_.back()->setLogRing(rings_.back().get());
    loops_.back()->setLoopIndex(i);
  }
}

void Engine::event(uint32_t severity, const std::string& msgId, const std::string& message) {
  if (events_.size() >= kMaxEvents) {
    events_.erase(events_.begin());  // the oldest goes; what happened last matters most
    ++eventsDropped_;
  }
  pb::EventLog e;
  e.set_time_unix_us(log::nowUnixUs());
  e.set_severity(severity);
  e.set_msg_id(msgId);
  e.set_message(message);
  events_.push_back(std::move(e));
}

size_t Engine::takeLogs(pb::LogBatch& batch, uint32_t max) {
  size_t moved = events_.size();
  for (pb::EventLog& e : events_) *batch.add_events() = std::move(e);
  events_.clear();
  for (auto& ring : rings_) {
    moved += ring->drain(max, [&](const RequestLogEntry& e) {
      pb::RequestLog* r = batch.add_requests();
      r->set_time_unix_us(e.timeUnixUs);
      r->set_client(formatEndpoint(IpAddress::v4(e.client), e.clientPort));
      r->set_facade(formatEndpoint(IpAddress::v4(e.facade), e.facadePort));
      r->set_application(e.application);
      r->set_server(e.serverName);
      r->set_server_address(formatEndpoint(IpAddress::v4(e.server), e.serverPort));
      r->set_method(e.method);
      r->set_host(e.host);
      r->set_path(e.path);
      r->set_version(e.version);
    });
  }
  return moved;
}

uint64_t Engine::logsDropped() const {
  uint64_t n = eventsDropped_;
  for (const auto& ring : rings_) n += ring->dropped();
  return n;
}

Engine::~Engine() = default;

bool Engine::applySnapshot(const pb::ConfigSnapshot& snapshot, std::string* error) {
  ConfigResult parsed = parseConfig(snapshot.config_text());
  if (!parsed.ok()) {
    *error = "configuration generation " + std::to_string(snapshot.generation()) +
             " does not parse: " + parsed.error->toString();
    return false;
  }
  std::unique_ptr<EngineConfig> built = EngineConfig::build(parsed.config, error);
  if (!built) return false;
  for (const pb::ServerState& s : snapshot.servers()) {
    const AppRuntime* app = built->findApp(s.application());
    int index = app ? app->serverIndex(s.server()) : -1;
    if (index < 0) continue;
    app->pool->setUp(static_cast<uint32_t>(index), s.up());
    app->pool->setDraining(static_cast<uint32_t>(index), s.draining());
  }
  if (!shared_.publish(std::move(built), false, error)) return false;
  generation_ = snapshot.generation();
  configureStore(parsed.config);
  return true;
}

namespace {

// host, port and database of "redis://HOST:PORT[/DB]" (HOST may be
// [IPv6]); the configuration parser has checked the form already.
bool parseRedisAddress(const std::string& s, RedisAffinityOptions& o) {
  constexpr std::string_view kScheme = "redis://";
  if (s.compare(0, kScheme.size(), kScheme) != 0) return false;
  std::string rest = s.substr(kScheme.size());
  if (size_t slash = rest.find('/'); slash != std::string::npos) {
    o.db = static_cast<uint32_t>(std::strtoul(rest.c_str() + slash + 1, nullptr, 10));
    rest.resize(slash);
  }
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return false;
  o.host = rest.substr(0, colon);
  if (o.host.size() > 2 && o.host.front() == '[' && o.host.back() == ']')
    o.host = o.host.substr(1, o.host.size() - 2);
  o.port = static_cast<uint16_t>(std::strtoul(rest.c_str() + colon + 1, nullptr, 10));
  return true;
}

}  // namespace

void Engine::configureStore(const Config& config) {
  shared_.remoteTimeoutUs.store(config.system.affinityStoreTimeoutMs * 1000,
                                std::memory_order_relaxed);
  const std::string& address = config.system.affinityStore;
  const std::string& passwordFile = config.system.affinityStorePasswordFile;
  // The same store again (a commit of something else): keep it. A store that
  // could not be made is tried again with every snapshot.
  if (address == storeAddress_ && passwordFile == storePasswordFile_ &&
      (address == "local" || redis_))
    return;
  storeAddress_ = address;
  storePasswordFile_ = passwordFile;
  storeError_.clear();
  shared_.setRemote(nullptr);
  if (redis_) retiredStores_.push_back({std::move(redis_), shared_.quiescenceMark()});
  if (address == "local") {
    event(5, "affinity-store", "affinity store: local (decisions made by this engine alone)");
    return;
  }
  RedisAffinityOptions options;
  options.loops = loops_.empty() ? 1 : loops_.size();
  if (!parseRedisAddress(address, options)) {
    storeError_ = "not redis://HOST:PORT[/DB]";
    event(3, "affinity-store", "affinity store " + address + " is " + storeError_);
    return;
  }
  if (!passwordFile.empty()) {
    std::ifstream in(passwordFile);
    if (!in || !std::getline(in, options.password)) {
      // Without its password the store would refuse us: local decisions
      // until a commit brings a readable file.
      storeError_ = "cannot read the password file " + passwordFile;
      event(3, "affinity-store",
            "affinity store " + address + ": " + storeError_ + "; decisions stay local");
      return;
    }
    while (!options.password.empty() &&
           (options.password.back() == '\r' || options.password.back() == ' '))
      options.password.pop_back();
  }
  std::string why;
  if (!RedisAffinityStore::validate(options, &why)) {
    storeError_ = why;
    event(3, "affinity-store", "affinity store " + address + ": " + why);
    return;
  }
  redis_ = std::make_unique<RedisAffinityStore>(options);
  shared_.setRemote(redis_.get());
  event(5, "affinity-store", "affinity store: " + address + " (shared by the engines using it)");
}

void Engine::reclaim() {
  shared_.reclaim();
  std::erase_if(retiredStores_, [&](const RetiredStore& r) { return shared_.loopsPassed(r.mark); });
}

size_t Engine::applyUpdate(const pb::ConfigUpdate& update) {
  const EngineConfig* cur = shared_.current();
  if (!cur || update.generation() != generation_) {
    log::warning("update for generation " + std::to_string(update.generation()) +
                 " ignored: running " + std::to_string(generation_));
    return 0;
  }
  size_t changed = 0;
  for (const pb::ServerState& s : update.servers()) {
    const AppRuntime* app = cur->findApp(s.application());
    int index = app ? app->serverIndex(s.server()) : -1;
    if (index < 0) {
      log::warning("update names unknown server " + s.application() + "/" + s.server());
      continue;
    }
    app->pool->setUp(static_cast<uint32_t>(index), s.up());
    app->pool->setDraining(static_cast<uint32_t>(index), s.draining());
    ++changed;
  }
  return changed;
}

void Engine::fillStatus(pb::EngineStatus& status, int64_t nowUnixMs) const {
  status.set_time_unix_ms(nowUnixMs);
  status.set_config_generation(generation_);
  if (const EngineConfig* cur = shared_.current()) {
    for (const auto& app : cur->apps()) {
      pb::ApplicationCounters* ac = status.add_applications();
      ac->set_application(app->name);
#define FULCRUM_X(field, name)                                            \
  if (uint64_t v = app->counters.field.load(std::memory_order_relaxed)) { \
    pb::Counter* c = ac->add_counters();                                  \
    c->set_name(name);                                                    \
    c->set_value(v);                                                      \
  }
      FULCRUM_APP_COUNTERS(FULCRUM_X)
#undef FULCRUM_X
      for (uint32_t i = 0; i < app->pool->size(); ++i) {
        pb::ServerSessions* s = status.add_servers();
        s->set_application(app->name);
        s->set_server(app->pool->server(i).name);
        s->set_active(app->pool->active(i));
      }
    }
  }
  for (size_t l = 0; l < loops_.size(); ++l) {
    pb::LoopStatus* loop = status.add_loops();
    loop->set_loop(static_cast<uint32_t>(l));
    for (size_t c = 0; c < kCounterCount; ++c) {
      uint64_t v = loops_[l]->counters().get(static_cast<Counter>(c));
      if (v == 0) continue;
      pb::Counter* counter = loop->add_counters();
      counter->set_name(std::string(kCounterInfo[c].name));
      counter->set_value(v);
    }
  }
  status.set_logs_dropped(logsDropped());
  pb::AffinityStoreStatus* store = status.mutable_affinity_store();
  auto sum = [&](Counter c) {
    uint64_t n = 0;
    for (const auto& loop : loops_) n += loop->counters().get(c);
    return n;
  };
  store->set_address(storeAddress_);
  store->set_timeouts(sum(Counter::kStoreTimeouts));
  store->set_down_decisions(sum(Counter::kStoreDownDecisions));
  store->set_session_sync_writes(sum(Counter::kSessionSyncWrites));
  store->set_session_sync_recoveries(sum(Counter::kSessionSyncRecoveries));
  if (!redis_ && storeAddress_ == "local") {
    store->set_kind("local");
    store->set_state("local");
  } else if (!redis_) {
    // Configured, but it could not be made (see storeError_): local decisions.
    store->set_kind("redis");
    store->set_state("down");
    store->set_last_error(storeError_);
  } else {
    const RedisAffinityStatus r = redis_->status();
    store->set_kind("redis");
    store->set_state(redisStateName(r.state));
    store->set_last_error(r.lastError);
    store->set_requests(r.requests);
    store->set_answered(r.answered);
    store->set_failed(r.failed);
    store->set_cache_hits(r.cacheHits);
    store->set_cache_misses(r.cacheMisses);
    store->set_reconnects(r.reconnects);
    store->set_latency_avg_us(r.latencyAvgUs);
    store->set_latency_max_us(r.latencyMaxUs);
  }
  status.set_sessions(shared_.table.size());
  status.set_session_capacity(shared_.table.capacity());
}

void Engine::dumpSessions(const pb::SessionDumpRequest& request, pb::SessionDumpReply& reply,
                          uint32_t now) {
  reply.set_request_id(request.request_id());
  const uint32_t limit = request.limit() ? request.limit() : 10000;
  EngineShared& shared = shared_;
  shared_.table.forEach([&](const SessionInfo& s) {
    if (s.kind != SessionKind::kApplication) return;
    if (static_cast<int32_t>(s.expiresAt - now) <= 0) return;  // over, not yet swept
    // The session is alive while we hold its bucket, and so is its epoch's
    // configuration.
    const EngineConfig* made = shared.byEpoch(s.epoch);
    if (!made || s.app >= made->apps().size()) return;
    const AppRuntime& app = made->app(s.app);
    if (!request.application().empty() && app.name != request.application()) return;
    if (static_cast<uint32_t>(reply.sessions_size()) >= limit) {
      reply.set_truncated(true);
      return;
    }
    pb::Session* out = reply.add_sessions();
    out->set_client(formatEndpoint(IpAddress::v4(s.client), s.clientPort));
    out->set_facade(formatEndpoint(IpAddress::v4(s.facade), s.facadePort));
    out->set_application(app.name);
    out->set_server(app.pool->server(s.serverIndex).name);
    out->set_server_address(formatEndpoint(IpAddress::v4(s.server), s.serverPort));
    out->set_state(tcpStateName(s.state));
    out->set_age_seconds(now - s.createdAt);
    int32_t left = static_cast<int32_t>(s.expiresAt - now);
    out->set_expires_in_seconds(left > 0 ? static_cast<uint32_t>(left) : 0);
  });
}

uint64_t Engine::clearSessions(const std::string& application) {
  std::vector<FlowKey4> keys;
  shared_.table.forEach([&](const SessionInfo& s) {
    if (s.kind != SessionKind::kApplication) return;
    if (!application.empty()) {
      const EngineConfig* made = shared_.byEpoch(s.epoch);
      if (!made || s.app >= made->apps().size() || made->app(s.app).name != application) return;
    }
    keys.push_back(s.egressKey());
  });
  uint64_t cleared = 0;
  for (const FlowKey4& key : keys) {
    if (shared_.table.removeIf(
            key, [](Session4& s) { return s.kind == SessionKind::kApplication; },
            [&](const SessionInfo& info) { shared_.sessionRemoved(info); }))
      ++cleared;
  }
  return cleared;
}

}  // namespace fulcrum
