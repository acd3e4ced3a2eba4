#include "control-plane/syslog/syslog_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace fulcrum {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kDrainTimeout{2};
// Big enough to amortise the syscall, small enough that one failed write
// drops a bounded number of records and the drain deadline is checked often.
constexpr size_t kMaxWriteBytes = 1 << 20;
// rsyslog's default maximum message size; journald takes more, nobody less.
constexpr size_t kMaxHostDatagram = 8192;
// An absent /dev/log is retried this often, not once per record.
constexpr std::chrono::seconds kHostRetryInterval{5};

static_assert(std::atomic<bool>::is_always_lock_free, "requestReopen must stay async-signal-safe");

std::string errnoText(int err) {
  return std::strerror(err);
}

int64_t nowUnixUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// mkdir -p of the file's directory. Directories we create get exactly 0750
// whatever the umask, so that the log group can always traverse them;
// directories that exist are the operator's and are left alone.
bool createParentDirectories(const std::string& path, std::string* error) {
  size_t slash = path.find('/', 1);
  while (slash != std::string::npos) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0750) == 0) {
      ::chmod(dir.c_str(), 0750);
    } else if (errno != EEXIST) {
      *error = "cannot create directory " + dir + ": " + errnoText(errno);
      return false;
    }
    slash = path.find('/', slash + 1);
    while (slash != std::string::npos && path[slash - 1] == '/') slash = path.find('/', slash + 1);
  }
  return true;
}

// Opens the log file for appending, creating it (and its directories) when
// missing. O_NONBLOCK during open() only: a FIFO without a reader fails with
// ENXIO instead of hanging the control plane; writes are blocking again after.
int openLogFile(const std::string& path, std::string* error) {
  if (!createParentDirectories(path, error)) return -1;
  constexpr int kFlags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  int fd = ::open(path.c_str(), kFlags | O_CREAT | O_EXCL, 0640);
  if (fd >= 0) {
    ::fchmod(fd, 0640);  // ours, so the mode is the documented one, not the umask's
  } else if (errno == EEXIST) {
    fd = ::open(path.c_str(), kFlags);
  }
  if (fd < 0) {
    *error = "cannot open " + path + ": " + errnoText(errno);
    return -1;
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
    *error = "cannot set " + path + " blocking: " + errnoText(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

// True when the file ends in a partial line (a write cut short, here or by a
// crashed predecessor): appending straight after it would corrupt our line.
// The descriptor is write-only (O_RDWR would make us a FIFO's own reader), so
// the last byte is read through a second descriptor, checked to be the same
// file.
bool endsInPartialLine(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return false;
  const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (rfd < 0) return false;
  struct stat rst {};
  char last = '\n';
  const bool partial = ::fstat(rfd, &rst) == 0 && rst.st_dev == st.st_dev &&
                       rst.st_ino == st.st_ino && ::pread(rfd, &last, 1, st.st_size - 1) == 1 &&
                       last != '\n';
  ::close(rfd);
  return partial;
}

// write(2) until everything is written or an error; returns 0 or the errno,
// and in *done how many bytes went out.
int writeAll(int fd, const char* data, size_t size, size_t* done) {
  *done = 0;
  while (*done < size) {
    const ssize_t n = ::write(fd, data + *done, size - *done);
    if (n > 0) {
      *done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return n < 0 ? errno : EIO;
    }
  }
  return 0;
}

// Errors after which the descriptor itself is fine and reopening cannot help.
bool fdStillGood(int err) {
  return err == ENOSPC || err == EDQUOT || err == EFBIG;
}

void addStats(SyslogStats& into, const SyslogStats& delta) {
  for (const SyslogStatInfo& info : kSyslogStatInfo) into.*info.field += delta.*info.field;
}

}  // namespace

std::unique_ptr<SyslogWriter> SyslogWriter::open(Options options, std::string* error) {
  std::string ignored;
  if (error == nullptr) error = &ignored;
  const std::string prefix = "syslog file " + options.path + ": ";
  if (options.path.empty()) {
    *error = "syslog file: no path given";
    return nullptr;
  }
  if (options.queueCapacity == 0) {
    *error = prefix + "queue capacity must be at least 1";
    return nullptr;
  }
  if (options.facility < 0 || options.facility > 23) {
    *error = prefix + "facility " + std::to_string(options.facility) + " is not in 0..23";
    return nullptr;
  }
  if (options.alsoHostSyslog &&
      (options.hostSyslogSocket.empty() ||
       options.hostSyslogSocket.size() >= sizeof(sockaddr_un::sun_path))) {
    *error = prefix + "host syslog socket path '" + options.hostSyslogSocket + "' is not usable";
    return nullptr;
  }

  std::unique_ptr<SyslogWriter> writer(new SyslogWriter(std::move(options)));
  std::string cause;
  writer->fd_ = openLogFile(writer->options_.path, &cause);
  if (writer->fd_ < 0) {
    *error = "syslog file: " + cause;  // the cause names the path
    return nullptr;
  }
  writer->needNewline_ = endsInPartialLine(writer->fd_, writer->options_.path);
  int pipeFds[2];
  if (::pipe2(pipeFds, O_NONBLOCK | O_CLOEXEC) != 0) {
    *error = prefix + "cannot create wake-up pipe: " + errnoText(errno);
    return nullptr;
  }
  writer->wakeRead_ = pipeFds[0];
  writer->wakeWrite_ = pipeFds[1];
  writer->thread_ = std::thread([w = writer.get()] { w->run(); });
  return writer;
}

SyslogWriter::SyslogWriter(Options options) : options_(std::move(options)) {
  hostname_ = options_.hostname;
  if (hostname_.empty()) {
    char name[256] = {};
    if (::gethostname(name, sizeof(name) - 1) == 0) hostname_ = name;
  }
}

SyslogWriter::~SyslogWriter() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      drainDeadline_ = Clock::now() + kDrainTimeout;
    }
    wake();
    thread_.join();
  }
  closeFd(fd_);
  closeFd(hostFd_);
  closeFd(wakeRead_);
  closeFd(wakeWrite_);
}

bool SyslogWriter::submit(LogRecord record) {
  if (record.timeUnixUs == 0) record.timeUnixUs = nowUnixUs();
  bool mustWake = false;
  {
    std::lock_guard lock(mutex_);
    ++counters_.submitted;
    if (stopping_) {
      ++counters_.droppedShutdown;
      return false;
    }
    if (counters_.queued - done_ >= options_.queueCapacity) {
      ++counters_.droppedQueueFull;
      return false;
    }
    ++counters_.queued;
    pending_.push_back(std::move(record));
    if (sleeping_ && !wakeSent_) {
      wakeSent_ = true;
      mustWake = true;
    }
  }
  // Outside the lock; only when the writer sleeps, so a busy writer costs
  // submitters no syscall at all.
  if (mustWake) wake();
  return true;
}

void SyslogWriter::requestReopen() {
  const int savedErrno = errno;
  reopenRequested_.store(true);
  wake();
  errno = savedErrno;
}

void SyslogWriter::wake() {
  const char byte = 1;
  // EAGAIN (pipe full) is fine: the writer has wake-ups pending already.
  const ssize_t n = ::write(wakeWrite_, &byte, 1);
  (void)n;
}

bool SyslogWriter::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  const uint64_t target = counters_.queued;
  return doneCv_.wait_for(lock, timeout, [&] { return done_ >= target; });
}

SyslogStats SyslogWriter::stats() const {
  std::lock_guard lock(mutex_);
  SyslogStats s = counters_;
  s.dropped = s.droppedQueueFull + s.droppedIo + s.droppedShutdown;
  s.queueDepth = s.queued - done_;
  return s;
}

std::string SyslogWriter::lastError() const {
  std::lock_guard lock(mutex_);
  return lastError_;
}

void SyslogWriter::setError(std::string message) {
  std::lock_guard lock(mutex_);
  lastError_ = std::move(message);
}

std::string SyslogWriter::format(const LogRecord& record, const std::string& hostname,
                                 int facility) {
  return formatRfc5424(record, hostname, facility);
}

std::optional<LogRecord> SyslogWriter::parse(std::string_view line) {
  auto parsed = parseRfc5424(line);
  if (!parsed) return std::nullopt;
  return std::move(parsed->record);
}

void SyslogWriter::run() {
  std::vector<LogRecord> batch;
  for (;;) {
    bool stopping;
    Clock::time_point deadline;
    {
      std::lock_guard lock(mutex_);
      batch.swap(pending_);
      stopping = stopping_;
      deadline = drainDeadline_;
      // Set under the same lock that submit() checks, so a record pushed after
      // this point always sends a wake-up byte: no lost wake-ups.
      if (batch.empty() && !stopping) sleeping_ = true;
    }
    SyslogStats delta;
    // Checked after taking the batch: whatever was submitted after a
    // requestReopen() call is in this batch or a later one, hence goes to the
    // new file.
    if (reopenRequested_.exchange(false)) reopenFile(delta);
    if (batch.empty()) {
      if (delta.reopens != 0 || delta.openErrors != 0) {
        std::lock_guard lock(mutex_);
        addStats(counters_, delta);
      }
      if (stopping) return;
      sleepUntilWoken();
      continue;
    }
    writeBatch(batch, stopping, deadline, delta);
    sendBatchToHost(batch, delta);
    {
      std::lock_guard lock(mutex_);
      addStats(counters_, delta);
      done_ += batch.size();
    }
    doneCv_.notify_all();
    batch.clear();
  }
}

void SyslogWriter::sleepUntilWoken() {
  pollfd pfd{wakeRead_, POLLIN, 0};
  while (::poll(&pfd, 1, -1) < 0 && errno == EINTR) {
  }
  char sink[64];
  while (::read(wakeRead_, sink, sizeof(sink)) > 0) {
  }
  std::lock_guard lock(mutex_);
  sleeping_ = false;
  wakeSent_ = false;
}

bool SyslogWriter::openFile(SyslogStats& delta) {
  std::string cause;
  const int fd = openLogFile(options_.path, &cause);
  if (fd < 0) {
    ++delta.openErrors;
    setError(cause);
    return false;
  }
  closeFd(fd_);
  fd_ = fd;
  needNewline_ = endsInPartialLine(fd_, options_.path);
  ++delta.reopens;
  return true;
}

void SyslogWriter::reopenFile(SyslogStats& delta) {
  // On failure the old descriptor (if any) stays: records keep going to the
  // renamed file rather than being dropped, and the next batch retries.
  if (!openFile(delta)) reopenRequested_.store(true);
}

void SyslogWriter::writeBatch(const std::vector<LogRecord>& batch, bool stopping,
                              Clock::time_point deadline, SyslogStats& delta) {
  if (fd_ < 0 && !openFile(delta)) {  // the last error spoilt the descriptor
    delta.droppedIo += batch.size();
    return;
  }
  size_t next = 0;  // first record not yet formatted
  while (next < batch.size()) {
    if (stopping && Clock::now() >= deadline) {
      delta.droppedShutdown += batch.size() - next;
      return;
    }
    // One write(2) of whole lines, about kMaxWriteBytes: few syscalls, a
    // bounded buffer, and a failure costs at most what the batch still holds.
    buffer_.clear();
    lineEnds_.clear();
    if (needNewline_) buffer_ += '\n';
    const size_t prefix = buffer_.size();
    const size_t first = next;
    while (next < batch.size() && buffer_.size() < kMaxWriteBytes) {
      appendRfc5424(buffer_, batch[next++], hostname_, options_.facility);
      buffer_ += '\n';
      lineEnds_.push_back(buffer_.size());
    }
    size_t done = 0;
    const int err = writeAll(fd_, buffer_.data(), buffer_.size(), &done);
    if (err == 0) {
      needNewline_ = false;
      delta.written += next - first;
      continue;
    }
    ++delta.writeErrors;
    // Lines that made it out whole count as written. A line cut in the middle
    // is garbage in the file: it is dropped with the rest of the batch, and
    // the next write starts with a newline so that no record is glued to it.
    size_t whole = 0;
    while (whole < lineEnds_.size() && lineEnds_[whole] <= done) ++whole;
    const size_t wholeEnd = whole == 0 ? prefix : lineEnds_[whole - 1];
    if (done > wholeEnd) {
      needNewline_ = true;
    } else if (done >= prefix) {
      needNewline_ = false;
    }
    delta.written += whole;
    delta.droppedIo += batch.size() - first - whole;
    setError("write " + options_.path + ": " + errnoText(err));
    if (!fdStillGood(err)) closeFd(fd_);  // reopened with the next batch
    return;
  }
}

void SyslogWriter::sendBatchToHost(const std::vector<LogRecord>& batch, SyslogStats& delta) {
  if (!options_.alsoHostSyslog) return;
  for (const LogRecord& record : batch) {
    if (record.severity > options_.hostSyslogThreshold) continue;
    if (hostFd_ < 0 && !connectHost()) {
      ++delta.hostDropped;
      continue;
    }
    hostBuffer_.clear();
    appendHostSyslog(hostBuffer_, record, options_.facility, kMaxHostDatagram);
    // Non-blocking: a stalled syslog daemon costs host copies, never the file.
    if (::send(hostFd_, hostBuffer_.data(), hostBuffer_.size(), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
      ++delta.hostSent;
      continue;
    }
    ++delta.hostDropped;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == EINTR) continue;
    // The daemon went away (ECONNREFUSED after a restart, ...): reconnect
    // with the next record, then back off if that fails.
    setError("host syslog " + options_.hostSyslogSocket + ": " + errnoText(errno));
    closeFd(hostFd_);
    nextHostConnect_ = Clock::now();
  }
}

bool SyslogWriter::connectHost() {
  const auto now = Clock::now();
  if (now < nextHostConnect_) return false;
  nextHostConnect_ = now + kHostRetryInterval;
  hostFd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (hostFd_ < 0) {
    setError("host syslog socket: " + errnoText(errno));
    return false;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, options_.hostSyslogSocket.data(), options_.hostSyslogSocket.size());
  if (::connect(hostFd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    setError("host syslog " + options_.hostSyslogSocket + ": " + errnoText(errno));
    closeFd(hostFd_);
    return false;
  }
  return true;
}

}  // namespace fulcrum
