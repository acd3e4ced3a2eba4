// SyslogWriter: the control plane's syslog file. Request logs and events from
// every engine go through one writer into one file, one RFC 5424 line each
// (format: syslog_format.h), and optionally to the host's syslog as well.
//
// Threads: submit(), flush(), stats() and lastError() may be called from any
// thread; requestReopen() from any thread and from a signal handler. One
// writer thread owned by the object does all file and socket I/O, in batches.
//
// Accounting: nothing is lost silently. Every record passed to submit() ends
// up either written to the file or counted in exactly one drop reason (queue
// full, I/O error, shutdown); see FULCRUM_SYSLOG_STATS in syslog_types.h.
// The host-syslog copy is best effort on top of that, counted separately
// (hostSent / hostDropped).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "control-plane/syslog/syslog_format.h"
#include "control-plane/syslog/syslog_types.h"

namespace fulcrum {

class SyslogWriter {
 public:
  struct Options {
    std::string path;                 // the syslog file
    size_t queueCapacity = 65536;     // records waiting or being written, at most
    bool alsoHostSyslog = false;      // also send each record to the host syslog
    std::string hostname;             // HOSTNAME field; empty: gethostname()
    int facility = kDefaultFacility;  // 0..23; 16 = local0
    // The host syslog's datagram socket; tests point it at their own socket.
    std::string hostSyslogSocket = "/dev/log";
    // Only records at least this severe (numerically <=) go to the host
    // syslog; the file gets everything. Request logs at kInfo can be kept out
    // of the host's journal with kNotice.
    Severity hostSyslogThreshold = Severity::kDebug;
  };

  // Creates the file's missing parent directories (mode 0750) and the file if
  // missing (mode 0640; existing files and directories keep their modes), opens
  // it for appending and starts the writer thread. A FIFO without a reader is
  // refused rather than waited for. Returns nullptr and sets *error (when not
  // null) to one line naming the path and the cause when the options are
  // invalid (empty path, zero capacity, facility outside 0..23, socket path
  // too long) or the file cannot be opened. The host-syslog socket is not
  // needed to open: while it is absent its records are counted in hostDropped
  // and a connect is retried at most every few seconds.
  static std::unique_ptr<SyslogWriter> open(Options options, std::string* error);

  // Drains what is queued, giving up after about 2 s (what is left is counted
  // in droppedShutdown), stops the writer thread and closes the file. A write
  // already blocked in the kernel (a hung NFS server, a FIFO nobody reads)
  // cannot be interrupted and delays this. No other call may run concurrently
  // with or after the destructor, including requestReopen from a handler.
  ~SyslogWriter();

  SyslogWriter(const SyslogWriter&) = delete;
  SyslogWriter& operator=(const SyslogWriter&) = delete;

  // Enqueues `record` for the writer thread; never waits for I/O (it takes a
  // mutex only for the push). A record with timeUnixUs == 0 is stamped with the
  // current time. Returns false, and counts the record in droppedQueueFull,
  // when queueCapacity records are already waiting or being written.
  bool submit(LogRecord record);

  // Asks the writer thread to reopen the file at its path: log rotation (the
  // file was renamed; later records go to a new file at the path). Async-
  // signal-safe: it stores a lock-free atomic flag and write(2)s one byte to a
  // non-blocking pipe, keeping errno, so a SIGHUP handler may call it on a live
  // writer. Records submitted after this call returns go to the reopened file.
  // When reopening fails, writing continues to the old file, open_errors is
  // counted and the reopen is retried with the next batch.
  void requestReopen();

  // Waits until every record accepted before the call has been written or
  // counted as dropped (and sent to the host syslog, when enabled). Returns
  // false on timeout. Written means handed to write(2), not fsync'ed.
  bool flush(std::chrono::milliseconds timeout);

  // A consistent snapshot: submitted == written + dropped + queueDepth.
  SyslogStats stats() const;

  // The most recent I/O error, "" if none ever happened: for status output.
  std::string lastError() const;

  const std::string& path() const { return options_.path; }
  const std::string& hostname() const { return hostname_; }

  // The file form of one record, without the newline: see syslog_format.h.
  static std::string format(const LogRecord& record, const std::string& hostname, int facility);
  // Parses a line produced by format() (hostname and facility are dropped:
  // parseRfc5424 returns them); nullopt for anything else.
  static std::optional<LogRecord> parse(std::string_view line);

 private:
  explicit SyslogWriter(Options options);

  void run();
  void sleepUntilWoken();
  void wake();
  void writeBatch(const std::vector<LogRecord>& batch, bool stopping,
                  std::chrono::steady_clock::time_point deadline, SyslogStats& delta);
  void sendBatchToHost(const std::vector<LogRecord>& batch, SyslogStats& delta);
  bool openFile(SyslogStats& delta);
  void reopenFile(SyslogStats& delta);
  bool connectHost();
  void setError(std::string message);

  // Constant after open().
  const Options options_;
  std::string hostname_;
  int wakeRead_ = -1;  // self-pipe: the writer thread sleeps in poll() on it
  int wakeWrite_ = -1;

  // Any thread, including signal handlers.
  std::atomic<bool> reopenRequested_{false};

  mutable std::mutex mutex_;
  std::condition_variable doneCv_;  // done_ advanced; flush() waits on it
  std::vector<LogRecord> pending_;  // guarded by mutex_
  SyslogStats counters_;            // guarded by mutex_; dropped, queueDepth derived in stats()
  uint64_t done_ = 0;               // guarded by mutex_: accepted records written or dropped
  bool sleeping_ = false;           // guarded by mutex_: the writer is (about to be) in poll()
  bool wakeSent_ = false;           // guarded by mutex_: a byte is on its way to the pipe
  bool stopping_ = false;           // guarded by mutex_
  std::chrono::steady_clock::time_point drainDeadline_;  // guarded by mutex_
  std::string lastError_;                                // guarded by mutex_

  // Writer thread only.
  int fd_ = -1;                   // the syslog file; -1 after an error that spoilt it
  bool needNewline_ = false;      // the file ends in a partial line: start with '\n'
  std::string buffer_;            // the lines of one write(2), about 1 MiB, reused
  std::vector<size_t> lineEnds_;  // where each of them ends in buffer_
  int hostFd_ = -1;
  std::chrono::steady_clock::time_point nextHostConnect_{};
  std::string hostBuffer_;

  std::thread thread_;  // last: started once everything above is set up
};

}  // namespace fulcrum
