#include "data-plane/affinity/redis_store.h"

#include <arpa/inet.h>
#include <hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "data-plane/affinity/affinity_cache.h"
#include "data-plane/affinity/spsc_ring.h"

namespace fulcrum {

namespace {

// KEYS[1]: the key; ARGV: proposed value, TTL in seconds, mode: "0"
// read-miss-create, "1" lookup only, "2" overwrite.
// Returns {1, value} found, {0} not found (lookup only), {2, value} created
// (or overwritten). The value is returned as the string stored, and parsed by
// the engine, so a key that some other program filled fails one request, not
// the script.
constexpr std::string_view kScript = R"lua(local ttl = tonumber(ARGV[2])
if ARGV[3] == '2' then
  if ttl < 1 then ttl = 1 end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
  return {2, ARGV[1]}
end
local v = redis.call('GET', KEYS[1])
if v then
  if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
  return {1, v}
end
if ARGV[3] == '1' then return {0} end
if ttl < 1 then ttl = 1 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
return {2, ARGV[1]}
)lua";

constexpr size_t kMaxKeyPrefix = 64;
// prefix, 16 hex digits, ':', "[" IPv6 "]", ':', port.
constexpr size_t kKeyBufferSize = kMaxKeyPrefix + 16 + 1 + INET6_ADDRSTRLEN + 2 + 1 + 5 + 1;
constexpr size_t kMaxLoops = 4096;
constexpr uint32_t kMaxQueue = 1 << 20;
constexpr uint32_t kMaxBatch = 1 << 16;
constexpr uint32_t kMaxCache = 1 << 26;
constexpr uint32_t kMaxRefreshPerRound = 4096;
// After a round the thread polls the queues this long before it sleeps: a loop
// that submits again right after its last reply is served without a wake-up.
constexpr uint64_t kSpinUs = 30;
constexpr uint64_t kLatencyWindowUs = 1'000'000;

// The cache and the idle timers: a coarse clock (a few ms of resolution, a few
// ns to read), good enough for lifetimes of seconds.
uint64_t coarseNowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000;
}

uint64_t nowUs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

timeval toTimeval(uint32_t ms) {
  timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = static_cast<suseconds_t>(ms % 1000) * 1000;
  return tv;
}

void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Writes the key's name into buf (kKeyBufferSize bytes); returns its length.
size_t formatKey(std::string_view prefix, const AffinityKey& key, char* buf) {
  char* p = buf;
  const size_t n = std::min(prefix.size(), kMaxKeyPrefix);
  std::memcpy(p, prefix.data(), n);
  p += n;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) *p++ = kHex[(key.scope >> shift) & 0xf];
  *p++ = ':';
  if (key.client.isV4()) {
    in_addr v4{};
    v4.s_addr = htonl(key.client.v4HostOrder());
    inet_ntop(AF_INET, &v4, p, INET_ADDRSTRLEN);
    p += std::strlen(p);
  } else {
    in6_addr v6{};
    std::memcpy(v6.s6_addr, key.client.bytes().data(), 16);
    *p++ = '[';
    inet_ntop(AF_INET6, &v6, p, INET6_ADDRSTRLEN);
    p += std::strlen(p);
    *p++ = ']';
  }
  if (key.clientPort != 0) {
    *p++ = ':';
    p = std::to_chars(p, buf + kKeyBufferSize, key.clientPort).ptr;
  }
  return static_cast<size_t>(p - buf);
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

std::string replyText(const redisReply* r) {
  if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS ||
      r->type == REDIS_REPLY_STRING)
    return std::string(r->str, r->len);
  return "unexpected reply type " + std::to_string(r->type);
}

}  // namespace

const char* redisStateName(RedisState state) {
  switch (state) {
    case RedisState::kConnecting:
      return "connecting";
    case RedisState::kUp:
      return "up";
    case RedisState::kDown:
      return "down";
  }
  return "?";
}

struct RedisAffinityStore::Impl {
  struct Loop {
    explicit Loop(uint32_t capacity) : requests(capacity), replies(capacity) {}
    SpscRing<AffinityRequest> requests;  // the loop -> the thread
    SpscRing<AffinityReply> replies;     // the thread -> the loop
    // Written by the loop only (load + store, no read-modify-write).
    alignas(64) std::atomic<uint64_t> accepted{0};
    std::atomic<uint64_t> rejected{0};
  };
  struct InFlight {
    uint32_t loop;
    bool replied;
    AffinityRequest request;
  };
  struct Refresh {
    AffinityKey key;
    uint32_t ttlSeconds;
  };

  explicit Impl(const RedisAffinityOptions& o);
  ~Impl();

  void run();
  bool connect();
  // The connection failed: down, everything taken or queued answered=false.
  void lose(const std::string& why);
  bool round();
  void idle();
  void sleepFor(uint32_t ms);
  void collect();
  bool hasWork(bool* blocked);
  void failQueued();
  void appendScript(const AffinityRequest& request, bool bySha);
  void handle(InFlight& f, const redisReply* r, uint64_t sentUs);
  void reply(InFlight& f, const AffinityReply& r);
  bool ping();
  void setError(std::string text);
  std::string ioError(const char* what) const;
  void recordLatency(uint64_t us);
  void maybePublishLatency();
  template <class T>
  static void bump(std::atomic<T>& counter, T by = 1) {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }

  const RedisAffinityOptions options;
  const std::string address;
  AffinityCache cache;
  std::vector<std::unique_ptr<Loop>> loops;
  bool valid = false;

  std::atomic<RedisState> state{RedisState::kConnecting};
  std::atomic<bool> stop{false};
  // The thread is about to sleep or sleeps on wakeFd: the next submit()
  // writes to it (see idle()).
  alignas(64) std::atomic<bool> sleeping{false};
  int wakeFd = -1;

  // Written by the thread only.
  alignas(64) std::atomic<uint64_t> answered{0};
  std::atomic<uint64_t> failed{0}, refreshes{0}, connects{0}, reconnects{0}, scriptLoads{0};
  std::atomic<uint32_t> latencyAvgUs{0}, latencyMaxUs{0};
  std::atomic<uint64_t> latencySamples{0};

  mutable std::mutex errorMutex;
  std::string lastError;  // guarded by errorMutex

  // The thread's own.
  redisContext* ctx = nullptr;
  std::string sha;
  std::vector<InFlight> inflight;
  std::vector<Refresh> refreshList;
  std::vector<size_t> retry;  // indices in inflight answered NOSCRIPT
  size_t nextLoop = 0;
  uint64_t nextRefreshMs = 0;
  uint64_t lastTrafficMs = 0;
  uint64_t windowStartUs = 0, windowSumUs = 0, windowMaxUs = 0, windowCount = 0;

  std::thread thread;
};

RedisAffinityStore::Impl::Impl(const RedisAffinityOptions& o)
    : options(o),
      address((o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) + ":" +
              std::to_string(o.port)),
      cache(std::max<uint32_t>(o.cacheCapacity, 1), o.cacheTtlMs) {
  std::string error;
  valid = validate(o, &error);
  if (!valid) {
    lastError = error;
    state.store(RedisState::kDown);
    return;
  }
  for (size_t i = 0; i < o.loops; ++i) loops.push_back(std::make_unique<Loop>(o.queueCapacity));
  inflight.reserve(o.maxBatch);
  retry.reserve(o.maxBatch);
  refreshList.reserve(kMaxRefreshPerRound);
  wakeFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd < 0) {
    valid = false;
    lastError = std::string("eventfd: ") + std::strerror(errno);
    state.store(RedisState::kDown);
    return;
  }
  thread = std::thread([this] { run(); });
}

RedisAffinityStore::Impl::~Impl() {
  stop.store(true);
  if (wakeFd >= 0) {
    uint64_t one = 1;
    (void)!write(wakeFd, &one, sizeof(one));
  }
  if (thread.joinable()) thread.join();
  if (ctx) redisFree(ctx);
  if (wakeFd >= 0) close(wakeFd);
}

void RedisAffinityStore::Impl::setError(std::string text) {
  std::lock_guard<std::mutex> guard(errorMutex);
  lastError = std::move(text);
}

std::string RedisAffinityStore::Impl::ioError(const char* what) const {
  if (!ctx) return std::string(what) + ": out of memory";
  // A socket timeout reads as EAGAIN ("Resource temporarily unavailable").
  if (ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
    return std::string(what) + ": no reply from " + address + " within " +
           std::to_string(options.commandTimeoutMs) + " ms";
  return std::string(what) + ": " + address + ": " + ctx->errstr;
}

void RedisAffinityStore::Impl::run() {
  // hiredis writes with write(): a peer that went away must give EPIPE here,
  // not kill the process (the daemon ignores SIGPIPE; a test may not).
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);

  uint32_t backoff = options.backoffInitialMs;
  windowStartUs = nowUs();
  while (!stop.load(std::memory_order_relaxed)) {
    if (!ctx) {
      state.store(RedisState::kConnecting);
      if (!connect()) {
        state.store(RedisState::kDown);
        failQueued();
        sleepFor(backoff);
        backoff = std::min(backoff * 2, options.backoffMaxMs);
        continue;
      }
      bump(connects);
      if (connects.load(std::memory_order_relaxed) > 1) bump(reconnects);
      backoff = options.backoffInitialMs;
      lastTrafficMs = coarseNowMs();
      state.store(RedisState::kUp);
    }
    if (!round()) idle();
    maybePublishLatency();
  }
  // Let a SIGPIPE left pending go (it would hit nobody, but be tidy).
  timespec zero{};
  while (sigtimedwait(&pipe, nullptr, &zero) == SIGPIPE) {
  }
}

bool RedisAffinityStore::Impl::connect() {
  ctx = redisConnectWithTimeout(options.host.c_str(), options.port,
                                toTimeval(options.connectTimeoutMs));
  auto fail = [this](std::string text) {
    setError(std::move(text));
    if (ctx) redisFree(ctx);
    ctx = nullptr;
    return false;
  };
  if (!ctx) return fail("connect to " + address + ": out of memory");
  if (ctx->err) {
    const bool timedOut = ctx->err == REDIS_ERR_IO && (errno == EINPROGRESS || errno == ETIMEDOUT);
    return fail("connect to " + address + ": " +
                (timedOut ? "no answer within " + std::to_string(options.connectTimeoutMs) + " ms"
                          : std::string(ctx->errstr)));
  }
  if (redisSetTimeout(ctx, toTimeval(options.commandTimeoutMs)) != REDIS_OK)
    return fail(ioError("setting socket timeouts"));
  redisEnableKeepAlive(ctx);

  // One command, its reply or a message saying what failed.
  auto command = [this](int argc, const char** argv, const size_t* lens, const char* what,
                        std::string* error) -> ReplyPtr {
    ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(ctx, argc, argv, lens)));
    if (!r) {
      *error = ioError(what);
    } else if (r->type == REDIS_REPLY_ERROR) {
      *error = std::string(what) + " refused by " + address + ": " + replyText(r.get());
      r.reset();
    }
    return r;
  };
  std::string error;
  if (!options.password.empty()) {
    const char* argv[3] = {"AUTH", nullptr, nullptr};
    size_t lens[3] = {4, 0, 0};
    int argc = 1;
    if (!options.username.empty()) {
      argv[argc] = options.username.data();
      lens[argc++] = options.username.size();
    }
    argv[argc] = options.password.data();
    lens[argc++] = options.password.size();
    if (!command(argc, argv, lens, "AUTH", &error)) return fail(error);
  }
  if (options.db != 0) {
    const std::string db = std::to_string(options.db);
    const char* argv[2] = {"SELECT", db.c_str()};
    const size_t lens[2] = {6, db.size()};
    const std::string what = "SELECT " + db;
    if (!command(2, argv, lens, what.c_str(), &error)) return fail(error);
  }
  const char* argv[3] = {"SCRIPT", "LOAD", kScript.data()};
  const size_t lens[3] = {6, 4, kScript.size()};
  ReplyPtr r = command(3, argv, lens, "SCRIPT LOAD", &error);
  if (!r) return fail(error);
  if (r->type != REDIS_REPLY_STRING) return fail("SCRIPT LOAD: " + replyText(r.get()));
  sha.assign(r->str, r->len);
  bump(scriptLoads);
  return true;
}

void RedisAffinityStore::Impl::lose(const std::string& why) {
  setError(why);
  if (ctx) redisFree(ctx);
  ctx = nullptr;
  state.store(RedisState::kDown);
  AffinityReply failure;
  for (InFlight& f : inflight)
    if (!f.replied) {
      failure.token = f.request.token;
      reply(f, failure);
    }
  failQueued();
}

void RedisAffinityStore::Impl::reply(InFlight& f, const AffinityReply& r) {
  f.replied = true;
  bump(r.answered ? answered : failed);
  // Room was counted when the request was taken (collect()), so this fits.
  loops[f.loop]->replies.push(r);
}

void RedisAffinityStore::Impl::failQueued() {
  for (size_t i = 0; i < loops.size(); ++i) {
    Loop& loop = *loops[i];
    AffinityRequest request;
    for (uint32_t room = loop.replies.freeSlots(); room > 0 && loop.requests.pop(&request);
         --room) {
      AffinityReply failure;
      failure.token = request.token;
      loop.replies.push(failure);
      bump(failed);
    }
  }
}

void RedisAffinityStore::Impl::collect() {
  inflight.clear();
  const size_t n = loops.size();
  // Round-robin start, so one busy loop cannot take every batch.
  for (size_t k = 0; k < n && inflight.size() < options.maxBatch; ++k) {
    const size_t i = (nextLoop + k) % n;
    Loop& loop = *loops[i];
    uint32_t room = loop.replies.freeSlots();
    InFlight f{static_cast<uint32_t>(i), false, {}};
    while (room > 0 && inflight.size() < options.maxBatch && loop.requests.pop(&f.request)) {
      inflight.push_back(f);
      --room;
    }
  }
  nextLoop = (nextLoop + 1) % n;
}

bool RedisAffinityStore::Impl::hasWork(bool* blocked) {
  *blocked = false;
  for (auto& loop : loops) {
    if (loop->requests.empty()) continue;
    if (loop->replies.freeSlots() > 0) return true;
    *blocked = true;  // the loop has not polled its replies yet
  }
  return false;
}

void RedisAffinityStore::Impl::appendScript(const AffinityRequest& request, bool bySha) {
  char key[kKeyBufferSize];
  const size_t keyLen = formatKey(options.keyPrefix, request.key, key);
  char proposed[16], ttl[16];
  const size_t proposedLen = static_cast<size_t>(
      std::to_chars(proposed, proposed + sizeof(proposed), request.proposed).ptr - proposed);
  const size_t ttlLen =
      static_cast<size_t>(std::to_chars(ttl, ttl + sizeof(ttl), request.ttlSeconds).ptr - ttl);
  const char* argv[7] = {bySha ? "EVALSHA" : "EVAL",
                         bySha ? sha.data() : kScript.data(),
                         "1",
                         key,
                         proposed,
                         ttl,
                         request.overwrite    ? "2"
                         : request.lookupOnly ? "1"
                                              : "0"};
  const size_t lens[7] = {bySha ? size_t{7} : size_t{4},
                          bySha ? sha.size() : kScript.size(),
                          1,
                          keyLen,
                          proposedLen,
                          ttlLen,
                          1};
  redisAppendCommandArgv(ctx, 7, argv, lens);
}

void RedisAffinityStore::Impl::handle(InFlight& f, const redisReply* r, uint64_t sentUs) {
  AffinityReply out;
  out.token = f.request.token;
  int64_t status = -1;
  if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
      r->element[0]->type == REDIS_REPLY_INTEGER)
    status = r->element[0]->integer;
  if (status == 0) {
    out.answered = true;
  } else if ((status == 1 || status == 2) && r->elements >= 2 &&
             r->element[1]->type == REDIS_REPLY_STRING) {
    const char* text = r->element[1]->str;
    const char* end = text + r->element[1]->len;
    auto [ptr, ec] = std::from_chars(text, end, out.value);
    out.answered = ec == std::errc() && ptr == end;
    out.found = status == 1;
  }
  if (!out.answered) {
    char key[kKeyBufferSize];
    const size_t keyLen = formatKey(options.keyPrefix, f.request.key, key);
    setError("readMissCreate " + std::string(key, keyLen) + ": " +
             (r->type == REDIS_REPLY_ERROR ? replyText(r)
                                           : std::string("the key does not hold a number")));
    out.found = false;
    out.value = 0;
  } else {
    recordLatency(nowUs() - sentUs);
    if (status != 0)
      cache.put(f.request.key, out.value, f.request.ttlSeconds, coarseNowMs());
    else
      cache.erase(f.request.key);
  }
  reply(f, out);
}

bool RedisAffinityStore::Impl::round() {
  collect();
  refreshList.clear();
  const uint64_t nowMs = coarseNowMs();
  if (nowMs >= nextRefreshMs) {
    const uint32_t drained =
        cache.drainHits(kMaxRefreshPerRound, [this](const AffinityKey& key, uint32_t ttlSeconds) {
          if (ttlSeconds > 0) refreshList.push_back({key, ttlSeconds});
        });
    // More keys were hit than one round sends: the next round sends more.
    if (drained < kMaxRefreshPerRound) nextRefreshMs = nowMs + options.refreshIntervalMs;
  }
  if (inflight.empty() && refreshList.empty()) return false;

  for (const InFlight& f : inflight) appendScript(f.request, true);
  for (const Refresh& r : refreshList) {
    char key[kKeyBufferSize];
    char ttl[16];
    const size_t keyLen = formatKey(options.keyPrefix, r.key, key);
    const size_t ttlLen =
        static_cast<size_t>(std::to_chars(ttl, ttl + sizeof(ttl), r.ttlSeconds).ptr - ttl);
    const char* argv[3] = {"EXPIRE", key, ttl};
    const size_t lens[3] = {6, keyLen, ttlLen};
    redisAppendCommandArgv(ctx, 3, argv, lens);
  }
  // The first read writes the whole pipeline, then replies come in order.
  const uint64_t sentUs = nowUs();
  retry.clear();
  for (size_t i = 0; i < inflight.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx, &raw) != REDIS_OK) {
      lose(ioError("readMissCreate"));
      return true;
    }
    ReplyPtr r(static_cast<redisReply*>(raw));
    // The server lost its scripts (restart, SCRIPT FLUSH, failover): sent
    // again whole below, which loads the script for the next rounds.
    if (r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with("NOSCRIPT")) {
      retry.push_back(i);
      continue;
    }
    handle(inflight[i], r.get(), sentUs);
  }
  for (size_t i = 0; i < refreshList.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx, &raw) != REDIS_OK) {
      lose(ioError("EXPIRE"));
      return true;
    }
    freeReplyObject(raw);  // 0 when the key has gone since: nothing to do
  }
  bump(refreshes, static_cast<uint64_t>(refreshList.size()));
  if (!retry.empty()) {
    bump(scriptLoads);
    for (size_t i : retry) appendScript(inflight[i].request, false);
    const uint64_t resentUs = nowUs();
    for (size_t i : retry) {
      void* raw = nullptr;
      if (redisGetReply(ctx, &raw) != REDIS_OK) {
        lose(ioError("readMissCreate"));
        return true;
      }
      ReplyPtr r(static_cast<redisReply*>(raw));
      handle(inflight[i], r.get(), resentUs);
    }
  }
  inflight.clear();
  lastTrafficMs = coarseNowMs();
  return true;
}

bool RedisAffinityStore::Impl::ping() {
  ReplyPtr r(static_cast<redisReply*>(redisCommand(ctx, "PING")));
  if (!r) {
    lose(ioError("PING"));
    return false;
  }
  if (r->type != REDIS_REPLY_STATUS) {
    lose("PING: " + address + ": " + replyText(r.get()));
    return false;
  }
  lastTrafficMs = coarseNowMs();
  return true;
}

void RedisAffinityStore::Impl::idle() {
  const uint64_t spinUntil = nowUs() + kSpinUs;
  bool blocked = false;
  do {
    if (hasWork(&blocked)) return;
    cpuRelax();
  } while (nowUs() < spinUntil);

  // Either submit() sees sleeping (and writes wakeFd) or hasWork() below sees
  // its request: both sides store, fence, then load.
  sleeping.store(true, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (hasWork(&blocked) || stop.load(std::memory_order_relaxed)) {
    sleeping.store(false, std::memory_order_relaxed);
    return;
  }
  const uint64_t nowMs = coarseNowMs();
  const uint64_t healthAt = lastTrafficMs + options.healthIntervalMs;
  uint64_t until = std::min(healthAt, nextRefreshMs);
  if (blocked) until = nowMs + 1;  // the loop polls without waking us: look again soon
  const int timeout = until > nowMs ? static_cast<int>(std::min<uint64_t>(until - nowMs, 1000)) : 0;
  pollfd fds[2] = {{wakeFd, POLLIN, 0}, {ctx->fd, POLLIN, 0}};
  ::poll(fds, 2, timeout);
  sleeping.store(false, std::memory_order_relaxed);
  if (fds[0].revents) {
    uint64_t count;
    (void)!read(wakeFd, &count, sizeof(count));
  }
  if (fds[1].revents) {
    // Nothing was asked: the server closed the connection (or broke the
    // protocol). Either way the connection cannot be trusted.
    if (redisBufferRead(ctx) != REDIS_OK)
      lose(ioError("idle connection"));
    else
      lose("idle connection: " + address + ": unexpected data from the server");
    return;
  }
  if (coarseNowMs() >= healthAt) ping();
}

void RedisAffinityStore::Impl::sleepFor(uint32_t ms) {
  const uint64_t until = coarseNowMs() + ms;
  for (;;) {
    const uint64_t nowMs = coarseNowMs();
    if (stop.load(std::memory_order_relaxed) || nowMs >= until) return;
    pollfd fd{wakeFd, POLLIN, 0};
    ::poll(&fd, 1, static_cast<int>(until - nowMs));
    if (fd.revents) {
      uint64_t count;
      (void)!read(wakeFd, &count, sizeof(count));
    }
    failQueued();  // submitted while we were going down
  }
}

void RedisAffinityStore::Impl::recordLatency(uint64_t us) {
  windowSumUs += us;
  windowMaxUs = std::max(windowMaxUs, us);
  ++windowCount;
}

void RedisAffinityStore::Impl::maybePublishLatency() {
  const uint64_t now = nowUs();
  if (now - windowStartUs < kLatencyWindowUs) return;
  if (windowCount > 0) {
    latencyAvgUs.store(static_cast<uint32_t>(windowSumUs / windowCount), std::memory_order_relaxed);
    latencyMaxUs.store(static_cast<uint32_t>(std::min<uint64_t>(windowMaxUs, UINT32_MAX)),
                       std::memory_order_relaxed);
    latencySamples.store(windowCount, std::memory_order_relaxed);
  }
  windowStartUs = now;
  windowSumUs = windowMaxUs = windowCount = 0;
}

RedisAffinityStore::RedisAffinityStore(const RedisAffinityOptions& options)
    : impl_(std::make_unique<Impl>(options)) {}

RedisAffinityStore::~RedisAffinityStore() = default;

bool RedisAffinityStore::cached(const AffinityKey& key, uint32_t* value) {
  return impl_->cache.lookup(key, value, coarseNowMs());
}

bool RedisAffinityStore::submit(size_t loop, const AffinityRequest& request) {
  Impl& m = *impl_;
  if (loop >= m.loops.size()) return false;
  Impl::Loop& l = *m.loops[loop];
  if (m.state.load(std::memory_order_relaxed) != RedisState::kUp || !l.requests.push(request)) {
    Impl::bump(l.rejected);
    return false;
  }
  Impl::bump(l.accepted);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (m.sleeping.load(std::memory_order_relaxed) &&
      m.sleeping.exchange(false, std::memory_order_relaxed)) {
    uint64_t one = 1;
    (void)!write(m.wakeFd, &one, sizeof(one));
  }
  return true;
}

size_t RedisAffinityStore::poll(size_t loop, AffinityReply* replies, size_t max) {
  if (loop >= impl_->loops.size()) return 0;
  auto& ring = impl_->loops[loop]->replies;
  size_t n = 0;
  while (n < max && ring.pop(&replies[n])) ++n;
  return n;
}

bool RedisAffinityStore::up() const {
  return impl_->state.load(std::memory_order_relaxed) == RedisState::kUp;
}

RedisAffinityStatus RedisAffinityStore::status() const {
  const Impl& m = *impl_;
  RedisAffinityStatus s;
  s.state = m.state.load(std::memory_order_relaxed);
  s.address = m.address;
  s.db = m.options.db;
  for (const auto& loop : m.loops) {
    s.requests += loop->accepted.load(std::memory_order_relaxed);
    s.rejected += loop->rejected.load(std::memory_order_relaxed);
  }
  s.answered = m.answered.load(std::memory_order_relaxed);
  s.failed = m.failed.load(std::memory_order_relaxed);
  const AffinityCache::Counters c = m.cache.counters();
  s.cacheHits = c.hits;
  s.cacheMisses = c.misses;
  s.cacheEvictions = c.evictions;
  s.refreshes = m.refreshes.load(std::memory_order_relaxed);
  s.connects = m.connects.load(std::memory_order_relaxed);
  s.reconnects = m.reconnects.load(std::memory_order_relaxed);
  s.scriptLoads = m.scriptLoads.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> guard(m.errorMutex);
    s.lastError = m.lastError;
  }
  s.latencyAvgUs = m.latencyAvgUs.load(std::memory_order_relaxed);
  s.latencyMaxUs = m.latencyMaxUs.load(std::memory_order_relaxed);
  s.latencySamples = m.latencySamples.load(std::memory_order_relaxed);
  return s;
}

bool RedisAffinityStore::validate(const RedisAffinityOptions& o, std::string* error) {
  auto fail = [error](std::string text) {
    if (error) *error = std::move(text);
    return false;
  };
  if (!IpAddress::parse(o.host))
    return fail("bad address '" + o.host +
                "': a numeric IPv4 or IPv6 address is needed (no host names)");
  if (o.port == 0) return fail("bad address '" + o.host + "': port 0");
  if (o.loops == 0 || o.loops > kMaxLoops)
    return fail("loops must be 1 to " + std::to_string(kMaxLoops));
  if (o.queueCapacity == 0 || o.queueCapacity > kMaxQueue)
    return fail("queue capacity must be 1 to " + std::to_string(kMaxQueue));
  if (o.maxBatch == 0 || o.maxBatch > kMaxBatch)
    return fail("batch size must be 1 to " + std::to_string(kMaxBatch));
  if (o.cacheCapacity == 0 || o.cacheCapacity > kMaxCache)
    return fail("cache capacity must be 1 to " + std::to_string(kMaxCache));
  if (o.keyPrefix.size() > kMaxKeyPrefix)
    return fail("key prefix longer than " + std::to_string(kMaxKeyPrefix) + " bytes");
  if (o.connectTimeoutMs == 0 || o.commandTimeoutMs == 0 || o.backoffInitialMs == 0 ||
      o.backoffMaxMs < o.backoffInitialMs || o.refreshIntervalMs == 0 || o.healthIntervalMs == 0)
    return fail("timeouts and intervals must not be 0, nor the backoff decrease");
  return true;
}

std::string RedisAffinityStore::keyName(std::string_view prefix, const AffinityKey& key) {
  char buf[kKeyBufferSize];
  return std::string(buf, formatKey(prefix, key, buf));
}

}  // namespace fulcrum
