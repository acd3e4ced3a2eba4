// Per-connection state of the HTTP request filter, and the pool it comes from.
//
// A connection of an application with `http-filter on` gets an HttpFlow when
// its session is made (the slow path). The session records the slot in its
// state word (session_types.h), so the flow is found without another lookup
// and goes back to the pool with the session (EngineShared::sessionRemoved).
//
// SeqAdjust is the sequence arithmetic of Host rewrites that change the
// payload length. Client sequence numbers ("client space") are what the client
// sends and expects acknowledged; the server sees its own numbering ("server
// space"), shifted by the net length change of every rewrite before a byte.
// Each rewrite is remembered with its position, so a retransmission is
// rewritten exactly as the original was and a segment is shifted by what lies
// before it, not by the latest total. Rewrites the server has acknowledged are
// folded into one base shift once the history is full.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "data-plane/http/request_parser.h"
#include "data-plane/spin_lock.h"

namespace fulcrum {

// Serial-number comparison of TCP sequence numbers (RFC 1982 style).
inline bool seqBefore(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}
inline bool seqAtOrBefore(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) <= 0;
}

struct HostRewrite {
  uint32_t clientSeq = 0;  // client-space sequence number of the value's first byte
  uint16_t oldLength = 0;  // bytes the client sent
  uint16_t newLength = 0;  // bytes the server gets instead
  uint32_t clientEnd() const { return clientSeq + oldLength; }
  int32_t change() const { return int32_t{newLength} - int32_t{oldLength}; }
};

class SeqAdjust {
 public:
  static constexpr size_t kMaxRewrites = 8;

  // Shift to add to the sequence number of a client segment starting at
  // `clientSeq`: the net change of every rewrite that ends at or before it.
  int32_t shiftAt(uint32_t clientSeq) const {
    int32_t d = base_;
    for (size_t i = 0; i < count_; ++i) {
      if (!seqAtOrBefore(rewrites_[i].clientEnd(), clientSeq)) break;
      d += rewrites_[i].change();
    }
    return d;
  }

  // The client-space number of a server-space acknowledgement or SACK edge.
  // One that falls inside a rewritten value maps to the value's start, or
  // with `roundUp` (a SACK block's left edge) to its end: the client must not
  // take part of a value as received, it resends the value whole.
  uint32_t toClient(uint32_t serverSeq, bool roundUp) const {
    int32_t d = base_;
    for (size_t i = 0; i < count_; ++i) {
      const HostRewrite& r = rewrites_[i];
      const uint32_t start = r.clientSeq + static_cast<uint32_t>(d);
      if (seqAtOrBefore(serverSeq, start)) break;
      if (seqBefore(serverSeq, start + r.newLength)) return roundUp ? r.clientEnd() : r.clientSeq;
      d += r.change();
    }
    return serverSeq - static_cast<uint32_t>(d);
  }

  // Records a rewrite made at the end of the stream so far (after every
  // recorded one). When the history is full, the oldest rewrites the server
  // has acknowledged (`serverAcked`, server space; `acked` false when it has
  // acknowledged nothing yet) are folded into the base shift. False when
  // nothing can be folded: the caller leaves this value unrewritten.
  bool add(const HostRewrite& r, uint32_t serverAcked, bool acked) {
    if (count_ == kMaxRewrites && !(acked && foldAcked(serverAcked))) return false;
    rewrites_[count_++] = r;
    if (r.change() != 0) lengthChanged_ = true;
    return true;
  }

  size_t count() const { return count_; }
  const HostRewrite& rewrite(size_t i) const { return rewrites_[i]; }
  int32_t base() const { return base_; }
  // Whether any recorded or folded rewrite changed a length: only then do
  // sequence and acknowledgement numbers need adjusting.
  bool lengthChanged() const { return lengthChanged_; }

 private:
  // Folds the leading rewrites whose last server-space byte was acknowledged.
  bool foldAcked(uint32_t serverAcked) {
    size_t n = 0;
    int32_t d = base_;
    while (n < count_) {
      const HostRewrite& r = rewrites_[n];
      const uint32_t serverEnd = r.clientSeq + static_cast<uint32_t>(d) + r.newLength;
      if (!seqAtOrBefore(serverEnd, serverAcked)) break;
      d += r.change();
      ++n;
    }
    if (n == 0) return false;
    base_ = d;
    for (size_t i = n; i < count_; ++i) rewrites_[i - n] = rewrites_[i];
    count_ -= n;
    return true;
  }

  HostRewrite rewrites_[kMaxRewrites];
  int32_t base_ = 0;
  uint8_t count_ = 0;
  bool lengthChanged_ = false;
};

// One filtered connection. The egress loop (client -> server) parses and
// rewrites under the session's egress bucket lock; the ingress loop (server ->
// client) maps acknowledgements under the ingress bucket lock. The two may be
// different threads, so `adjust` and `serverAcked` are guarded by `lock` as
// well; `rewritten` lets ingress skip the lock until there is a rewrite to
// account for.
struct HttpFlow {
  HttpRequestParser parser;
  SeqAdjust adjust;
  uint32_t isn = 0;          // the client's initial sequence number
  uint32_t nextSeq = 0;      // client space: the next byte the parser expects
  uint32_t serverAcked = 0;  // server space: highest acknowledgement from the server
  uint16_t serverMss = 0;    // what the server's SYN+ACK offered; 0 = not seen
  bool serverAckSeen = false;
  bool stopped = false;  // parser ended (not HTTP, malformed, tunnel): counted once
  std::atomic<bool> rewritten{false};
  SpinLock mutex;

  void lock() { mutex.lock(); }
  void unlock() { mutex.unlock(); }

  // A fresh state for a connection whose client SYN had sequence number `isn`.
  void reset(uint32_t initialSeq);
  // No byte of the stream has been read yet.
  bool nothingRead() const { return nextSeq == isn + 1 && adjust.count() == 0; }
};

// A fixed pool of HttpFlow, allocated at start. Its memory is reserved, not
// touched: a page is only used once a slot on it is, and freed slots are
// reused first, so resident memory follows the number of filtered connections
// open at once, not the pool's size. Slots are numbered from 1 (0 = none, as
// the session's state word stores it).
class HttpFlowPool {
 public:
  explicit HttpFlowPool(uint32_t capacity);
  ~HttpFlowPool();
  HttpFlowPool(const HttpFlowPool&) = delete;
  HttpFlowPool& operator=(const HttpFlowPool&) = delete;

  // A free slot, or 0 when every slot is taken. The flow must be reset().
  uint32_t allocate();
  void release(uint32_t slot);
  HttpFlow& at(uint32_t slot) { return flows_[slot - 1]; }

  uint32_t capacity() const { return capacity_; }
  uint32_t inUse() const { return inUse_.load(std::memory_order_relaxed); }

 private:
  uint32_t capacity_;
  HttpFlow* flows_ = nullptr;  // mmap'd, capacity_ entries
  size_t mappedBytes_ = 0;
  // Released slots, a stack guarded by mutex_ (taken only on new connections
  // and session ends, never per packet); slots never used yet come from
  // neverUsed_ onward, so neither array is touched before it is needed.
  std::unique_ptr<uint32_t[]> free_;
  uint32_t freeCount_ = 0;
  uint32_t neverUsed_ = 1;
  SpinLock mutex_;
  std::atomic<uint32_t> inUse_{0};
};

}  // namespace fulcrum
