#include "data-plane/io/tun.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "shared/log.h"

namespace fulcrum {

namespace {

// Submission queue entries per ring: a burst of PacketProcessor::kMaxBurst
// fits twice; longer transmits go in chunks.
constexpr unsigned kRingEntries = 64;

std::atomic<bool> fallbackLogged{false};

}  // namespace

std::unique_ptr<TunQueue> TunQueue::open(const std::string& name, bool offload, TunIo io,
                                         std::string* error) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    *error = "interface name '" + name + "' must have 1 to " + std::to_string(IFNAMSIZ - 1) +
             " characters";
    return nullptr;
  }
  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *error = "open /dev/net/tun: " + std::string(std::strerror(errno));
    return nullptr;
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE | (offload ? IFF_VNET_HDR : 0);
  std::memcpy(ifr.ifr_name, name.c_str(), name.size());
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    *error = "create TUN queue " + name + ": " + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  if (offload) {
    int size = static_cast<int>(kVnetHeaderSize);
    unsigned features = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    if (ioctl(fd, TUNSETVNETHDRSZ, &size) != 0 || ioctl(fd, TUNSETOFFLOAD, features) != 0) {
      *error = "enable offloads on TUN queue " + name + ": " + std::strerror(errno);
      ::close(fd);
      return nullptr;
    }
  }
  std::unique_ptr<TunQueue> queue(new TunQueue(fd, offload));
  if (io == TunIo::kUring) {
    auto ring = std::make_unique<io_uring>();
    // SUBMIT_ALL: a bad entry does not hold back the rest of a burst;
    // COOP_TASKRUN: every completion here is posted inline, none needs task
    // work, so the kernel need not interrupt the loop. Kernels before 5.19
    // know neither flag.
    int r = io_uring_queue_init(kRingEntries, ring.get(),
                                IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN);
    if (r == -EINVAL) r = io_uring_queue_init(kRingEntries, ring.get(), 0);
    if (r == 0) {
      // A registered file saves a file-table lookup and reference per entry;
      // optional: the plain descriptor works too.
      queue->fixedFile_ = io_uring_register_files(ring.get(), &fd, 1) == 0;
      queue->ring_ = std::move(ring);
    } else {
      queue->countFallback();
      if (!fallbackLogged.exchange(true))
        log::warning("io_uring refused (" + std::string(std::strerror(-r)) +
                     "): TUN queues use read() and write() instead");
    }
  }
  return queue;
}

TunQueue::TunQueue(int fd, bool offload) : fd_(fd), offload_(offload) {}

TunQueue::~TunQueue() {
  releaseRing();
  ::close(fd_);
}

void TunQueue::releaseRing() {
  // Nothing is in flight between calls: every entry a burst submits is
  // completed before the burst returns.
  if (!ring_) return;
  // The ring's teardown runs later in the kernel, and a registered file
  // would live until then: the device would outlast the queue, and a queue
  // opened again at once could find the old one. Unregistering drops the
  // ring's reference now.
  if (fixedFile_) io_uring_unregister_files(ring_.get());
  fixedFile_ = false;
  io_uring_queue_exit(ring_.get());
  ring_.reset();
}

void TunQueue::fallBackToSyscalls() {
  log::warning("io_uring failed on a TUN queue: it uses read() and write() from now on");
  releaseRing();
  countFallback();
}

size_t TunQueue::receiveBurst(PacketBuffer** buffers, size_t max) {
  return ring_ ? receiveUring(buffers, max) : receiveSyscalls(buffers, max);
}

size_t TunQueue::transmitBurst(PacketBuffer* const* buffers, size_t count) {
  return ring_ ? transmitUring(buffers, count) : transmitSyscalls(buffers, count);
}

size_t TunQueue::receiveSyscalls(PacketBuffer** buffers, size_t max) {
  // A TUN queue hands out one packet per read(); there is no batched read.
  size_t n = 0;
  while (n < max) {
    PacketBuffer& b = *buffers[n];
    ssize_t got;
    if (offload_) {
      iovec iov[2] = {{b.vnet, kVnetHeaderSize}, {b.data, kMaxPacketSize}};
      got = ::readv(fd_, iov, 2);
      if (got < 0 && errno != EAGAIN && errno != EINTR) markDead();  // the device is gone
      if (got < static_cast<ssize_t>(kVnetHeaderSize)) break;        // drained (or a runt)
      got -= static_cast<ssize_t>(kVnetHeaderSize);
    } else {
      got = ::read(fd_, b.data, kMaxPacketSize);
      if (got < 0 && errno != EAGAIN && errno != EINTR) markDead();
      if (got <= 0) break;
      std::memset(b.vnet, 0, kVnetHeaderSize);
    }
    b.length = static_cast<uint32_t>(got);
    ++n;
  }
  return n;
}

size_t TunQueue::transmitSyscalls(PacketBuffer* const* buffers, size_t count) {
  size_t sent = 0;
  for (size_t i = 0; i < count; ++i) {
    PacketBuffer& b = *buffers[i];
    if (offload_) {
      iovec iov[2] = {{b.vnet, kVnetHeaderSize}, {b.data, b.length}};
      if (::writev(fd_, iov, 2) == static_cast<ssize_t>(kVnetHeaderSize + b.length)) ++sent;
    } else if (::write(fd_, b.data, b.length) == static_cast<ssize_t>(b.length)) {
      ++sent;
    }
  }
  return sent;
}

namespace {

// Points `sqe` (prepared with descriptor `fd`) at registered file 0 instead.
void useFixedFile(io_uring_sqe* sqe, bool fixed) {
  if (!fixed) return;
  sqe->fd = 0;
  sqe->flags |= IOSQE_FIXED_FILE;
}

// Submits what is queued in `ring` and collects `expected` completions, the
// result of entry i (user_data i) in results[i]. False when the ring fails;
// the entries are then not (all) submitted and results[] is incomplete.
bool submitAndReap(io_uring* ring, int* results, unsigned expected) {
  int r;
  do {
    r = io_uring_submit_and_wait(ring, expected);
  } while (r == -EINTR);
  if (r < 0 || static_cast<unsigned>(r) != expected) return false;
  unsigned got = 0;
  while (got < expected) {
    io_uring_cqe* cqe = nullptr;
    r = io_uring_wait_cqe(ring, &cqe);
    if (r == -EINTR) continue;
    if (r < 0) return false;
    results[cqe->user_data] = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    ++got;
  }
  return true;
}

}  // namespace

size_t TunQueue::receiveUring(PacketBuffer** buffers, size_t max) {
  // Rounds of RWF_NOWAIT reads, one io_uring_enter each: a read with nothing
  // waiting completes at once with -EAGAIN instead of staying posted. A
  // round that fills completely is followed by one twice its size.
  const ssize_t header = offload_ ? static_cast<ssize_t>(kVnetHeaderSize) : 0;
  iovec iov[kRingEntries][2];
  int results[kRingEntries];
  size_t n = 0;
  size_t round = std::max<size_t>(1, readHint_);
  while (n < max) {
    round = std::min({round, max - n, static_cast<size_t>(kRingEntries)});
    for (size_t i = 0; i < round; ++i) {
      PacketBuffer& b = *buffers[n + i];
      io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
      if (offload_) {
        iov[i][0] = {b.vnet, kVnetHeaderSize};
        iov[i][1] = {b.data, kMaxPacketSize};
        io_uring_prep_readv(sqe, fd_, iov[i], 2, 0);
      } else {
        io_uring_prep_read(sqe, fd_, b.data, kMaxPacketSize, 0);
      }
      sqe->rw_flags = RWF_NOWAIT;
      sqe->user_data = i;
      useFixedFile(sqe, fixedFile_);
    }
    if (!submitAndReap(ring_.get(), results, static_cast<unsigned>(round))) {
      fallBackToSyscalls();
      return n + receiveSyscalls(buffers + n, max - n);
    }
    // Reads complete in order, but a packet that arrives during the round
    // can fill a later read after an earlier one found nothing: move the
    // filled buffers to the front.
    size_t filled = n;
    for (size_t i = 0; i < round; ++i) {
      const int got = results[i];
      if (got < 0 && got != -EAGAIN && got != -EINTR) markDead();  // the device is gone
      if (got <= header) continue;                                 // nothing waiting (or a runt)
      std::swap(buffers[filled], buffers[n + i]);
      PacketBuffer& b = *buffers[filled];
      b.length = static_cast<uint32_t>(got - header);
      if (!offload_) std::memset(b.vnet, 0, kVnetHeaderSize);
      ++filled;
    }
    const bool full = filled - n == round;
    n = filled;
    if (!full) break;
    round *= 2;
  }
  readHint_ = std::min(n + 1, max);
  return n;
}

size_t TunQueue::transmitUring(PacketBuffer* const* buffers, size_t count) {
  iovec iov[kRingEntries][2];
  int results[kRingEntries];
  size_t sent = 0;
  for (size_t start = 0; start < count; start += kRingEntries) {
    const size_t chunk = std::min<size_t>(count - start, kRingEntries);
    for (size_t i = 0; i < chunk; ++i) {
      PacketBuffer& b = *buffers[start + i];
      io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
      if (offload_) {
        iov[i][0] = {b.vnet, kVnetHeaderSize};
        iov[i][1] = {b.data, b.length};
        io_uring_prep_writev(sqe, fd_, iov[i], 2, 0);
      } else {
        io_uring_prep_write(sqe, fd_, b.data, b.length, 0);
      }
      sqe->user_data = i;
      useFixedFile(sqe, fixedFile_);
    }
    if (!submitAndReap(ring_.get(), results, static_cast<unsigned>(chunk))) {
      fallBackToSyscalls();
      return sent + transmitSyscalls(buffers + start, count - start);
    }
    for (size_t i = 0; i < chunk; ++i) {
      const size_t want = (offload_ ? kVnetHeaderSize : 0) + buffers[start + i]->length;
      if (results[i] == static_cast<int>(want)) ++sent;
    }
  }
  return sent;
}

bool setInterfaceUp(const std::string& name, int mtu, std::string* error) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    *error = "socket: " + std::string(std::strerror(errno));
    return false;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  bool ok = true;
  if (mtu > 0) {
    ifr.ifr_mtu = mtu;
    if (ioctl(s, SIOCSIFMTU, &ifr) != 0) {
      *error = "set MTU of " + name + ": " + std::strerror(errno);
      ok = false;
    }
  }
  if (ok && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
      *error = "bring " + name + " up: " + std::strerror(errno);
      ok = false;
    }
  } else if (ok) {
    *error = "read flags of " + name + ": " + std::strerror(errno);
    ok = false;
  }
  ::close(s);
  return ok;
}

}  // namespace fulcrum
