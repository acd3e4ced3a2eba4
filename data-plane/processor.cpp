#include "data-plane/processor.h"

#include <time.h>

#include <algorithm>
#include <cstring>

#include "data-plane/tcp_state.h"

namespace fulcrum {

namespace {

FlowKey4 keyOf(const PacketView& v, uint16_t serviceSet, Direction direction) {
  return {v.srcV4(), v.dstV4(), v.srcPort(), v.dstPort(), serviceSet, direction};
}

// A new entry for the connection whose client packet has egress key `key`.
SessionInit initFor(const FlowKey4& key, SessionKind kind, uint32_t now) {
  SessionInit init;
  init.client = key.src;
  init.facade = key.dst;
  init.clientPort = key.srcPort;
  init.facadePort = key.dstPort;
  init.serviceSet = key.serviceSet;
  init.kind = kind;
  init.createdAt = now;
  return init;
}

uint64_t monotonicUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// Tokens of parked packets: the slot in the low 16 bits, its generation above
// (a late reply for a slot since reused is recognised and ignored). 0 is never
// a parked packet's token: fire-and-forget writes use it.
uint64_t tokenOf(size_t index, uint32_t generation) {
  return (uint64_t{generation} << 16) | index;
}

bool isInitialSyn(uint8_t flags) {
  return (flags & (tcpflag::kSyn | tcpflag::kAck | tcpflag::kRst | tcpflag::kFin)) == tcpflag::kSyn;
}

// Applies a packet to a session's state word and refreshes its expiry. Runs
// under the entry's bucket lock; the CAS covers the other direction's loop.
TcpState advance(Session4& s, uint8_t flags, Direction from, const TcpTimeouts& t,
                 uint32_t establishedTimeout, uint32_t now) {
  uint32_t w = s.stateWord.load(std::memory_order_seq_cst);
  uint32_t next;
  do {
    next = tcpNextState(w, flags, from);
  } while (next != w && !s.stateWord.compare_exchange_weak(w, next, std::memory_order_seq_cst));
  // Closed sessions keep the deadline set when they closed, so retransmitted
  // RSTs cannot keep them alive.
  if (state_word::state(w) == TcpState::kClosed && next == w) return TcpState::kClosed;
  for (;;) {
    TcpState state = state_word::state(next);
    // Most packets of a connection land in the same second with the same
    // deadline: only a changed deadline is written, so the record's line is
    // not dirtied (and taken from the other direction's core) for nothing.
    const uint32_t deadline = now + tcpStateTimeout(state, t, establishedTimeout);
    if (s.expiresAt.load(std::memory_order_seq_cst) != deadline)
      s.expiresAt.store(deadline, std::memory_order_seq_cst);
    // The other direction's loop may have moved the state on after we read
    // it (an RST): its short deadline must not be overwritten by ours.
    uint32_t again = s.stateWord.load(std::memory_order_seq_cst);
    if (state_word::state(again) == state) return state;
    next = again;
  }
}

}  // namespace

PacketProcessor::PacketProcessor(EngineShared& shared, LinkType link)
    : shared_(shared), link_(link), parked_(std::make_unique<Parked[]>(kMaxParked)) {
  for (size_t i = 0; i < kMaxParked; ++i)
    parkedFree_[i] = static_cast<uint16_t>(kMaxParked - 1 - i);
  parkedFreeCount_ = kMaxParked;
  setExpirySlice(0, static_cast<uint32_t>(shared.table.bucketCount()));
  shared_.registerLoop(&seenSeq_);
}

PacketProcessor::~PacketProcessor() {
  shared_.unregisterLoop(&seenSeq_);
}

uint32_t PacketProcessor::establishedTimeout(const Session4& s) const {
  // The session's own configuration: it may predate the current one.
  const EngineConfig* made = shared_.byEpoch(s.epoch);
  return made && s.app < made->apps().size() ? made->app(s.app).sessionTimeout : timeouts_.timeWait;
}

void PacketProcessor::setExpirySlice(uint32_t begin, uint32_t end) {
  sliceBegin_ = begin;
  sliceEnd_ = end;
  cursor_ = begin;
}

uint32_t PacketProcessor::expireStep(uint32_t now, uint32_t budget) {
  if (sliceEnd_ <= sliceBegin_) return 0;
  uint32_t end = cursor_ + budget;
  if (end > sliceEnd_) end = sliceEnd_;
  uint32_t removed =
      shared_.table.expire(now, cursor_, end, [this](const SessionInfo& i) { onRemoved(i); });
  cursor_ = end == sliceEnd_ ? sliceBegin_ : end;
  counters_.add(Counter::kSessionsExpired, removed);
  return removed;
}

uint32_t PacketProcessor::expireAll(uint32_t now) {
  uint32_t removed = shared_.table.expire(now, sliceBegin_, sliceEnd_,
                                          [this](const SessionInfo& i) { onRemoved(i); });
  counters_.add(Counter::kSessionsExpired, removed);
  return removed;
}

void PacketProcessor::onRemoved(const SessionInfo& info) {
  shared_.sessionRemoved(info);
}

Verdict PacketProcessor::process(uint8_t* frame, size_t length, uint16_t serviceSet,
                                 Direction direction, uint32_t now) {
  PacketRef packet{frame, static_cast<uint32_t>(length), serviceSet, direction};
  packet.capacity = packet.length;
  return process(packet, now);
}

Verdict PacketProcessor::process(PacketRef& packet, uint32_t now) {
  cfg_ = shared_.beginBurst(seenSeq_);
  PacketView v;
  ParseStatus status = parsePacket(packet.data, packet.length, link_, v);
  v.l4ChecksumPartial = packet.l4ChecksumPartial;
  v.frameCapacity = packet.capacity;
  FlowKey4 key{};
  uint64_t h = 0;
  if (status == ParseStatus::kTcpIpv4) {
    key = keyOf(v, packet.serviceSet, packet.direction);
    h = shared_.table.hash(key);
  }
  current_ = &packet;
  packet.verdict = handle(v, status, h, key, now);
  current_ = nullptr;
  if (status == ParseStatus::kTcpIpv4) packet.length = static_cast<uint32_t>(v.frameLength);
  return packet.verdict;
}

void PacketProcessor::processBurst(PacketRef* packets, size_t count, uint32_t now) {
  PacketView views[kMaxBurst];
  ParseStatus status[kMaxBurst];
  FlowKey4 keys[kMaxBurst];
  uint64_t hashes[kMaxBurst] = {};
  cfg_ = shared_.beginBurst(seenSeq_);
  while (count > 0) {
    size_t n = count < kMaxBurst ? count : kMaxBurst;
    for (size_t i = 0; i < n; ++i) {
      status[i] = parsePacket(packets[i].data, packets[i].length, link_, views[i]);
      views[i].l4ChecksumPartial = packets[i].l4ChecksumPartial;
      views[i].frameCapacity = packets[i].capacity;
      if (status[i] == ParseStatus::kTcpIpv4) {
        keys[i] = keyOf(views[i], packets[i].serviceSet, packets[i].direction);
        hashes[i] = shared_.table.hash(keys[i]);
        shared_.table.prefetch(hashes[i]);
      }
    }
    // A software pipeline over the burst: packet j's first record is
    // fetched, then kStage packets later its second one (when the first is
    // not its key), then kStage packets later it is handled. Each step finds
    // what the one before fetched in cache while the handling of earlier
    // packets runs meanwhile, instead of three passes that each wait.
    constexpr size_t kStage = 8;
    for (size_t j = 0; j < n + 2 * kStage; ++j) {
      if (j < n && status[j] == ParseStatus::kTcpIpv4) shared_.table.prefetchRecord(hashes[j]);
      if (j >= kStage && j - kStage < n && status[j - kStage] == ParseStatus::kTcpIpv4)
        shared_.table.prefetchSecond(hashes[j - kStage], keys[j - kStage]);
      if (j < 2 * kStage || j - 2 * kStage >= n) continue;
      const size_t i = j - 2 * kStage;
      current_ = &packets[i];
      packets[i].verdict = handle(views[i], status[i], hashes[i], keys[i], now);
      current_ = nullptr;
      if (status[i] == ParseStatus::kTcpIpv4)
        packets[i].length = static_cast<uint32_t>(views[i].frameLength);
    }
    packets += n;
    count -= n;
  }
}

Verdict PacketProcessor::handle(PacketView& v, ParseStatus status, uint64_t hash,
                                const FlowKey4& key, uint32_t now) {
  counters_.add(Counter::kRxPackets);
  Verdict verdict = Verdict::kForward;
  switch (status) {
    case ParseStatus::kTcpIpv4:
      verdict = key.direction == Direction::kEgress ? egress(v, key, hash, now)
                                                    : ingress(v, key, hash, now);
      break;
    case ParseStatus::kNotIp:
      counters_.add(Counter::kNonIpPassed);
      break;
    case ParseStatus::kNotTcp:
      counters_.add(Counter::kNonTcpPassed);
      break;
    case ParseStatus::kTcpIpv6:
    case ParseStatus::kIpv6Other:
      counters_.add(Counter::kIpv6Passed);
      break;
    default:
      verdict = drop(counterFor(status));
      break;
  }
  if (verdict == Verdict::kForward) counters_.add(Counter::kTxPackets);
  return verdict;
}

Verdict PacketProcessor::egress(PacketView& v, const FlowKey4& key, uint64_t hash, uint32_t now) {
  const uint8_t flags = v.tcpFlags();
  const TcpTimeouts& timeouts = cfg_ ? cfg_->timeouts() : timeouts_;
  bool flow = false, reopen = false, filtered = false;
  uint32_t server = 0;
  uint16_t serverPort = 0;
  bool hit = shared_.table.find(key, hash, now, [&](Session4& s, Direction) {
    if (s.kind == SessionKind::kFlow) {
      flow = true;
      return;
    }
    const uint32_t word = s.stateWord.load(std::memory_order_relaxed);
    if (isInitialSyn(flags) && tcpSynReopens(state_word::state(word))) {
      reopen = true;
      return;
    }
    if (const uint32_t slot = state_word::httpSlot(word); slot != 0 && !filterEgress(s, slot, v)) {
      filtered = true;  // dropped by the filter (counted there)
      return;
    }
    advance(s, flags, Direction::kEgress, timeouts, establishedTimeout(s), now);
    server = s.server;
    serverPort = s.serverPort;
  });
  if (hit && flow) {
    // A flow entry made before this façade had an application must not hide
    // it: a new connection's SYN drops the entry and goes to the slow path.
    const bool nowAnApp =
        isInitialSyn(flags) && cfg_ && cfg_->match(key.serviceSet, key.dst, key.dstPort);
    if (!nowAnApp || !shared_.table.removeIf(
                         key, [](Session4& s) { return s.kind == SessionKind::kFlow; },
                         [this](const SessionInfo& i) { onRemoved(i); })) {
      counters_.add(Counter::kFlowPassed);
      return Verdict::kForward;
    }
    return newConnection(v, key, hash, now);
  }
  if (hit && filtered) return Verdict::kDrop;
  if (hit && !reopen) {
    v.setDstV4(server);
    v.setDstPort(serverPort);
    counters_.add(Counter::kEgressNat);
    return Verdict::kForward;
  }
  if (reopen) {
    // The old connection is over; the SYN starts a new one, with a fresh pick.
    bool removed = shared_.table.removeIf(
        key,
        [](Session4& s) {
          return tcpSynReopens(state_word::state(s.stateWord.load(std::memory_order_relaxed)));
        },
        [this](const SessionInfo& i) { onRemoved(i); });
    if (removed) counters_.add(Counter::kSessionsReopened);
  }
  const AppRuntime* app = cfg_ ? cfg_->match(key.serviceSet, key.dst, key.dstPort) : nullptr;
  if (!app) return newFlow(key, now);
  if (!isInitialSyn(flags)) {
    // Mid-connection with no session: another engine's, if session sync
    // recorded it (the network moved the flow here); else the server would
    // only answer with an RST.
    if (app->sessionSync && shared_.remote() && !(flags & tcpflag::kRst))
      return recoverSession(v, key, hash, now, nullptr);
    return drop(Counter::kDropNotSyn);
  }
  return newConnection(v, key, hash, now);
}

Verdict PacketProcessor::newFlow(const FlowKey4& key, uint32_t now) {
  counters_.add(Counter::kFlowPassed);
  // Reserve a flow slot first so that concurrent loops cannot overshoot it.
  if (shared_.flowCount.fetch_add(1, std::memory_order_relaxed) >= shared_.flowLimit) {
    shared_.flowCount.fetch_sub(1, std::memory_order_relaxed);
    counters_.add(Counter::kFlowTableFullPassed);
    return Verdict::kForward;
  }
  SessionInit init = initFor(key, SessionKind::kFlow, now);
  init.expiresAt = now + (cfg_ ? cfg_->timeouts() : timeouts_).flow;
  init.epoch = cfg_ ? cfg_->epoch() : 0;
  shared_.sessionCreated(init.epoch);  // before the entry can be seen, and ended
  auto result = shared_.table.create(init, now, [this](const SessionInfo& i) { onRemoved(i); });
  if (result.status == SessionTable::CreateStatus::kCreated) {
    counters_.add(Counter::kFlowsCreated);
  } else {
    shared_.sessionEnded(init.epoch);
    shared_.flowCount.fetch_sub(1, std::memory_order_relaxed);
    if (result.status == SessionTable::CreateStatus::kFull)
      counters_.add(Counter::kFlowTableFullPassed);
  }
  return Verdict::kForward;
}

Verdict PacketProcessor::newConnection(PacketView& v, const FlowKey4& key, uint64_t hash,
                                       uint32_t now, const AffinityReply* resumed) {
  // Under the slow-path lock the configuration cannot change: the session is
  // made in the current one, whose pools hold every server's count.
  std::shared_lock slow(shared_.slowPathLock);
  const EngineConfig* cur = shared_.current();
  const AppRuntime* matched = cur->match(key.serviceSet, key.dst, key.dstPort);
  if (!matched) {
    slow.unlock();
    return newFlow(key, now);  // the application went away in a swap just now
  }
  const AppRuntime& app = *matched;
  ServerPool& pool = *app.pool;
  const SelectionKey selection{IpAddress::v4(key.src), key.srcPort};
  int32_t picked = pool.acquire(selection);
  if (picked == ServerPool::kNoServer) {
    app.counters.bump(&AppCounters::dropNoServer);
    return drop(Counter::kDropNoServer);
  }
  if (app.persistence) {
    const uint32_t proposed = app.serverStableId[static_cast<uint32_t>(picked)];
    const AffinityKey akey{app.affinityScope, IpAddress::v4(key.src)};
    RemoteAffinity* remote = shared_.remote();
    AffinityResult r;
    uint32_t known = 0;
    bool counted = true;  // a value decided earlier counts as a persistence hit
    if (resumed && resumed->answered) {
      // The store's answer is the decision, whether it held a value before
      // (found) or took ours: this pick may differ from what we proposed.
      r.value = resumed->value;
      counted = resumed->found;
    } else if (resumed && resumed->value != 0) {
      // The store did not answer in time (or failed), but the request went
      // out and may yet be recorded: follow what it proposed, through the
      // embedded store, which keeps this engine consistent meanwhile.
      r = shared_.affinity.readMissCreate(akey, resumed->value, app.persistenceTimeout, now);
      r.created = false;
      counted = false;
    } else if (resumed || !remote) {
      // No store across the network, or no request went out: the embedded
      // store decides (and keeps this engine consistent).
      r = shared_.affinity.readMissCreate(akey, proposed, app.persistenceTimeout, now);
    } else if (remote->cached(akey, &known)) {
      r.value = known;
    } else if (!remote->up()) {
      counters_.add(Counter::kStoreDownDecisions);
      r = shared_.affinity.readMissCreate(akey, proposed, app.persistenceTimeout, now);
    } else {
      // Wait for the store without holding anything: the pick is given back
      // and made again when the reply comes.
      pool.release(static_cast<uint32_t>(picked));
      slow.unlock();
      if (park(v, {0, akey, proposed, app.persistenceTimeout, false}, false))
        return Verdict::kParked;
      counters_.add(Counter::kStoreQueueFull);
      const AffinityReply none;
      return newConnection(v, key, hash, now, &none);
    }
    if (r.fallback) counters_.add(Counter::kAffinityFallbacks);
    const bool decided = !r.created && !r.fallback;
    if (decided && r.value != proposed) {
      pool.release(static_cast<uint32_t>(picked));
      auto stored = app.serverByStableId.find(r.value);
      if (stored != app.serverByStableId.end() && pool.acquireSpecific(stored->second)) {
        picked = static_cast<int32_t>(stored->second);
        if (counted) {
          counters_.add(Counter::kPersistenceHits);
          app.counters.bump(&AppCounters::persistenceHits);
        }
      } else {
        // The persisted server cannot take it now; this connection goes
        // elsewhere, the mapping stays for when the server is back.
        picked = pool.acquire(selection);
        if (picked == ServerPool::kNoServer) {
          app.counters.bump(&AppCounters::dropNoServer);
          return drop(Counter::kDropNoServer);
        }
        counters_.add(Counter::kPersistenceOverrides);
        app.counters.bump(&AppCounters::persistenceOverrides);
      }
    } else if (decided && counted) {
      counters_.add(Counter::kPersistenceHits);
      app.counters.bump(&AppCounters::persistenceHits);
    }
  }
  const uint32_t serverIndex = static_cast<uint32_t>(picked);
  SessionInit init = initFor(key, SessionKind::kApplication, now);
  init.server = app.serverAddress[serverIndex];
  init.serverPort = app.serverPort[serverIndex];
  init.app = app.index;
  init.serverIndex = static_cast<uint16_t>(serverIndex);
  init.state = TcpState::kSynSent;
  init.expiresAt = now + cur->timeouts().synSent;
  init.epoch = cur->epoch();
  init.httpSlot = app.httpFilter ? newHttpFlow(v) : 0;
  AffinityRequest syncWrite{0,
                            {app.sessionSyncScope, IpAddress::v4(key.src), key.srcPort},
                            app.serverStableId[serverIndex],
                            app.sessionTimeout,
                            false};
  syncWrite.overwrite = true;  // a reused client port must not find the old server
  const auto result = createSession(init, app, slow, now);
  const bool sync = app.sessionSync && result.status == SessionTable::CreateStatus::kCreated;
  // Session sync: the decision for this 5-tuple goes to the store too, for
  // an engine the network may move the connection to. Nobody waits for it.
  if (RemoteAffinity* remote = shared_.remote(); sync && remote) {
    if (remote->submit(loopIndex_, syncWrite)) counters_.add(Counter::kSessionSyncWrites);
  }

  switch (result.status) {
    case SessionTable::CreateStatus::kCreated:
      counters_.add(Counter::kSessionsCreated);
      // Data on the SYN (TCP Fast Open) is the filtered stream's first bytes.
      if (init.httpSlot != 0 && v.payloadLength > 0) {
        bool keep = true;
        shared_.table.find(key, hash, now, [&](Session4& s, Direction) {
          // The session found is ours only if it holds our slot (another loop
          // may have ended it and made a new one with these ports meanwhile).
          if (state_word::httpSlot(s.stateWord.load(std::memory_order_relaxed)) == init.httpSlot)
            keep = filterEgress(s, init.httpSlot, v);
        });
        if (!keep) return Verdict::kDrop;
      }
      v.setDstV4(init.server);
      v.setDstPort(init.serverPort);
      counters_.add(Counter::kEgressNat);
      return Verdict::kForward;
    case SessionTable::CreateStatus::kExists:
      // Another loop made this session between our miss and our create:
      // follow theirs (our pick was given back above).
      counters_.add(Counter::kCreateRaces);
      return egress(v, key, hash, now);
    case SessionTable::CreateStatus::kIngressConflict:
      return drop(Counter::kDropIngressConflict);
    case SessionTable::CreateStatus::kFull:
      return drop(Counter::kDropTableFull);
  }
  return Verdict::kDrop;
}

Verdict PacketProcessor::recoverSession(PacketView& v, const FlowKey4& key, uint64_t hash,
                                        uint32_t now, const AffinityReply* resumed) {
  const bool fromServer = key.direction == Direction::kIngress;
  const Counter noSession = fromServer ? Counter::kDropIngressNoSession : Counter::kDropNotSyn;
  auto appOf = [&](const EngineConfig* c) -> const AppRuntime* {
    if (!c) return nullptr;
    return fromServer ? c->sessionSyncApp(key.src, key.srcPort)
                      : c->match(key.serviceSet, key.dst, key.dstPort);
  };
  RemoteAffinity* remote = shared_.remote();
  const AppRuntime* app = appOf(shared_.current());
  if (!app || !app->sessionSync) return drop(noSession);
  const uint32_t client = fromServer ? key.dst : key.src;
  const uint16_t clientPort = fromServer ? key.dstPort : key.srcPort;
  const AffinityKey syncKey{app->sessionSyncScope, IpAddress::v4(client), clientPort};
  uint32_t stableId = 0;
  if (resumed) {
    if (!resumed->answered || !resumed->found) return drop(noSession);
    stableId = resumed->value;
  } else if (!remote || !remote->cached(syncKey, &stableId)) {
    if (!remote || !remote->up()) return drop(noSession);
    if (park(v, {0, syncKey, 0, app->sessionTimeout, true}, true)) return Verdict::kParked;
    counters_.add(Counter::kStoreQueueFull);
    return drop(noSession);
  }

  std::shared_lock slow(shared_.slowPathLock);
  const EngineConfig* cur = shared_.current();
  app = appOf(cur);
  if (!app) return drop(noSession);
  auto it = app->serverByStableId.find(stableId);
  if (it == app->serverByStableId.end() || !app->pool->isUp(it->second))
    return drop(noSession);  // that server is gone: the connection cannot go on
  const uint32_t serverIndex = it->second;
  // A server packet must come from the server the connection was made to.
  if (fromServer &&
      (app->serverAddress[serverIndex] != key.src || app->serverPort[serverIndex] != key.srcPort))
    return drop(noSession);
  // The connection exists on that server: counted there whatever its limits.
  app->pool->adoptSessions(serverIndex, 1);
  const FlowKey4 egressKey{client,    app->facade,    clientPort,
                           app->port, key.serviceSet, Direction::kEgress};
  SessionInit init = initFor(egressKey, SessionKind::kApplication, now);
  init.server = app->serverAddress[serverIndex];
  init.serverPort = app->serverPort[serverIndex];
  init.app = app->index;
  init.serverIndex = static_cast<uint16_t>(serverIndex);
  init.state = TcpState::kEstablished;
  init.expiresAt = now + app->sessionTimeout;
  init.epoch = cur->epoch();
  // Mid-stream: the HTTP filter cannot find its place, so it stays off.
  const auto result = createSession(init, *app, slow, now);
  switch (result.status) {
    case SessionTable::CreateStatus::kCreated:
      counters_.add(Counter::kSessionSyncRecoveries);
      if (fromServer) {
        v.setSrcV4(init.facade);
        v.setSrcPort(init.facadePort);
        counters_.add(Counter::kIngressUnnat);
      } else {
        v.setDstV4(init.server);
        v.setDstPort(init.serverPort);
        counters_.add(Counter::kEgressNat);
      }
      return Verdict::kForward;
    case SessionTable::CreateStatus::kExists:
      // Recovered meanwhile by a packet of the other direction.
      counters_.add(Counter::kCreateRaces);
      return fromServer ? ingress(v, key, hash, now) : egress(v, key, hash, now);
    case SessionTable::CreateStatus::kIngressConflict:
      return drop(Counter::kDropIngressConflict);
    case SessionTable::CreateStatus::kFull:
      return drop(Counter::kDropTableFull);
  }
  return Verdict::kDrop;
}

bool PacketProcessor::park(const PacketView& v, AffinityRequest request, bool sessionSync) {
  RemoteAffinity* remote = shared_.remote();
  if (!remote || !current_ || parkedFreeCount_ == 0 || v.frameLength > kParkedBytes ||
      (sessionSync && parkedLookups_ >= kMaxParkedLookups))
    return false;
  const size_t index = parkedFree_[parkedFreeCount_ - 1];
  Parked& p = parked_[index];
  request.token = tokenOf(index, p.generation + 1);
  if (!remote->submit(loopIndex_, request)) return false;
  --parkedFreeCount_;
  ++parkedCount_;
  ++p.generation;
  p.used = true;
  p.sessionSync = sessionSync;
  p.proposal = request.proposed;
  if (sessionSync) ++parkedLookups_;
  p.serviceSet = current_->serviceSet;
  p.direction = current_->direction;
  p.partial = current_->l4ChecksumPartial;
  p.length = static_cast<uint32_t>(v.frameLength);
  std::memcpy(p.bytes, v.frame, v.frameLength);
  if (current_->vnet)
    std::memcpy(p.vnet, current_->vnet, kVnetHeaderSize);
  else
    std::memset(p.vnet, 0, kVnetHeaderSize);
  p.deadlineUs = monotonicUs() + shared_.remoteTimeoutUs.load(std::memory_order_relaxed);
  counters_.add(Counter::kStoreWaits);
  return true;
}

Verdict PacketProcessor::finishParked(size_t index, const AffinityReply& reply, uint32_t now) {
  Parked& p = parked_[index];
  PacketRef ref{p.bytes, p.length, p.serviceSet, p.direction, p.partial};
  ref.capacity = static_cast<uint32_t>(kParkedBytes);
  ref.vnet = p.vnet;
  PacketView v;
  Verdict verdict = Verdict::kDrop;
  if (parsePacket(p.bytes, p.length, link_, v) == ParseStatus::kTcpIpv4) {
    v.l4ChecksumPartial = p.partial;
    v.frameCapacity = kParkedBytes;
    const FlowKey4 key = keyOf(v, p.serviceSet, p.direction);
    const uint64_t hash = shared_.table.hash(key);
    current_ = &ref;
    verdict = p.sessionSync ? recoverSession(v, key, hash, now, &reply)
                            : newConnection(v, key, hash, now, &reply);
    current_ = nullptr;
    p.length = static_cast<uint32_t>(v.frameLength);
  }
  if (verdict == Verdict::kForward) counters_.add(Counter::kTxPackets);
  return verdict;
}

size_t PacketProcessor::resume(uint32_t now, PacketBuffer* const* out, uint16_t* serviceSets,
                               size_t max, Direction* directions) {
  // Replies are read every turn, even with nothing parked: those to session
  // sync writes (token 0) must not fill the loop's reply queue, or the store
  // stops taking this loop's requests.
  // A quiescent point first: the store read below is then one a replaced
  // store's release waits for (EngineShared::quiescenceMark()).
  cfg_ = shared_.beginBurst(seenSeq_);
  RemoteAffinity* remote = shared_.remote();
  if (parkedCount_ == 0 && !remote) return 0;
  size_t n = 0;
  auto finish = [&](size_t index, const AffinityReply& reply) {
    Parked& p = parked_[index];
    if (finishParked(index, reply, now) == Verdict::kForward) {
      out[n]->length = p.length;
      std::memcpy(out[n]->data, p.bytes, p.length);
      std::memcpy(out[n]->vnet, p.vnet, kVnetHeaderSize);
      serviceSets[n] = p.serviceSet;
      if (directions) directions[n] = p.direction;
      ++n;
    }
    if (p.sessionSync) --parkedLookups_;
    p.used = false;
    parkedFree_[parkedFreeCount_++] = static_cast<uint16_t>(index);
    --parkedCount_;
  };
  if (remote) {
    AffinityReply replies[32];
    while (n < max) {
      const size_t got = remote->poll(loopIndex_, replies, std::min(std::size(replies), max - n));
      if (got == 0) break;
      for (size_t i = 0; i < got; ++i) {
        const size_t index = replies[i].token & 0xffff;
        // Replies to writes nobody waits for (token 0), and late ones for a
        // slot that timed out and was reused, are not for a parked packet.
        if (replies[i].token == 0 || index >= kMaxParked || !parked_[index].used ||
            parked_[index].generation != (replies[i].token >> 16))
          continue;
        if (!replies[i].answered) {
          // The store failed it (connection lost, an error reply).
          counters_.add(Counter::kStoreDownDecisions);
          replies[i].value = parked_[index].proposal;
        }
        finish(index, replies[i]);
      }
    }
  }
  if (parkedCount_ == 0 || n == max) return n;
  const uint64_t nowUs = monotonicUs();
  for (size_t i = 0; i < kMaxParked && n < max; ++i) {
    if (!parked_[i].used || parked_[i].deadlineUs > nowUs) continue;
    counters_.add(Counter::kStoreTimeouts);
    // Unanswered; `value` carries what was proposed, which the store may yet
    // record: the local decision follows it, so the client does not end up
    // on two servers.
    finish(i, AffinityReply{0, false, false, parked_[i].proposal});
  }
  return n;
}

SessionTable::CreateResult PacketProcessor::createSession(const SessionInit& init,
                                                          const AppRuntime& app,
                                                          std::shared_lock<std::shared_mutex>& slow,
                                                          uint32_t now) {
  // An expired holder that create() removes is released after the slow-path
  // lock is dropped: onRemoved() takes it too, and a shared_mutex may not be
  // locked twice by one thread (a waiting publish() would deadlock it).
  SessionInfo evicted[4];
  size_t evictedCount = 0;
  shared_.sessionCreated(init.epoch);  // before the session can be seen, and ended
  auto result = shared_.table.create(init, now, [&](const SessionInfo& i) {
    if (evictedCount < std::size(evicted)) evicted[evictedCount++] = i;
  });
  // Counts change only under the lock, so publish() carries them exactly.
  if (result.status != SessionTable::CreateStatus::kCreated) {
    shared_.sessionEnded(init.epoch);
    app.pool->release(init.serverIndex);
    if (init.httpSlot != 0) shared_.httpFlows.release(init.httpSlot);
    if (result.status == SessionTable::CreateStatus::kFull)
      app.counters.bump(&AppCounters::dropTableFull);
  } else {
    app.counters.bump(&AppCounters::sessionsCreated);
  }
  slow.unlock();
  for (size_t i = 0; i < evictedCount; ++i) onRemoved(evicted[i]);
  return result;
}

uint32_t PacketProcessor::newHttpFlow(const PacketView& syn) {
  const uint32_t slot = shared_.httpFlows.allocate();
  if (slot == 0) {
    counters_.add(Counter::kHttpUntracked);
    return 0;
  }
  shared_.httpFlows.at(slot).reset(syn.seq());
  return slot;
}

bool PacketProcessor::filterEgress(Session4& s, uint32_t slot, PacketView& v) {
  HttpSessionContext ctx;
  ctx.session = &s;
  // The names come from the session's own configuration, alive while it is.
  if (const EngineConfig* made = shared_.byEpoch(s.epoch); made && s.app < made->apps().size()) {
    const AppRuntime& app = made->app(s.app);
    ctx.application = app.name.c_str();
    if (s.serverIndex < app.pool->size())
      ctx.serverName = app.pool->server(s.serverIndex).name.c_str();
  }
  return http_.egress(shared_.httpFlows.at(slot), v, ctx);
}

Verdict PacketProcessor::ingress(PacketView& v, const FlowKey4& key, uint64_t hash, uint32_t now) {
  const uint8_t flags = v.tcpFlags();
  const TcpTimeouts& timeouts = cfg_ ? cfg_->timeouts() : timeouts_;
  uint32_t facade = 0;
  uint16_t facadePort = 0;
  bool hit = shared_.table.find(key, hash, now, [&](Session4& s, Direction) {
    advance(s, flags, Direction::kIngress, timeouts, establishedTimeout(s), now);
    // The slot bits never change while the session lives.
    if (const uint32_t slot = state_word::httpSlot(s.stateWord.load(std::memory_order_relaxed));
        slot != 0)
      http_.ingress(shared_.httpFlows.at(slot), v, s);
    facade = s.facade;
    facadePort = s.facadePort;
  });
  if (!hit) {
    // A server of a session-sync application answering a connection this
    // engine has not taken over yet (the network just moved it here): the
    // store says whose it is, and the session is recovered from this side
    // (a server that pushes data while the client is silent). Without an
    // answer it is dropped: passed on un-NATed, it would make the client
    // reset the connection.
    if (cfg_ && cfg_->sessionSyncApp(key.src, key.srcPort)) {
      if (shared_.remote() && !(v.tcpFlags() & tcpflag::kRst))
        return recoverSession(v, key, hash, now, nullptr);
      return drop(Counter::kDropIngressNoSession);
    }
    counters_.add(Counter::kIngressMissPassed);
    return Verdict::kForward;
  }
  v.setSrcV4(facade);
  v.setSrcPort(facadePort);
  counters_.add(Counter::kIngressUnnat);
  return Verdict::kForward;
}

}  // namespace fulcrum
