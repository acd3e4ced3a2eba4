// The configuration store of the control plane (DESIGN.md, "Control plane"):
// an SQLite database holding the candidate configuration that operators edit
// and the numbered commits, the latest of which is the active configuration.
//
// Every configuration is kept as its canonical text (configToText), the same
// `set` lines that `show configuration` prints and `fulcrum load` reads. The
// candidate is persisted as well: edits survive a restart of the control
// plane.
//
// Durability: the database runs in WAL mode with synchronous=FULL, and every
// change is one SQLite transaction, so after a crash (or a kill) at any
// moment, reopening gives either the state before a change or the state
// after it, never a mix; a change that returned success is on disk.
//
// Concurrency: a ConfigStore is used by one thread at a time. Several
// processes may open the same file: each change runs in a write transaction
// taken when it starts (waiting up to kBusyTimeoutMs for another writer), and
// reads see the latest committed state, so no edit or commit is lost between
// them.
//
// Errors never throw. Storage failures are reported as a ConfigError with
// line 0, no word and the message "configuration store PATH: REASON" (e.g.
// "... : disk I/O error"); in that case nothing changed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "control-plane/store/sqlite_handle.h"
#include "shared/config/config_parser.h"
#include "shared/config/config_types.h"

namespace fulcrum {

struct CommitRecord {
  int64_t number = 0;  // 1, 2, 3 ... in commit order, without gaps
  int64_t timeUnixMs = 0;
  std::string user, comment;
  std::string text;  // full configuration text, canonical (configToText) when committed

  bool operator==(const CommitRecord&) const = default;
};

class ConfigStore {
 public:
  // The version of the tables this code reads and writes. A database of a
  // higher version was written by a newer Fulcrum and is refused.
  static constexpr int64_t kSchemaVersion = 1;
  // How long a change waits for another process's write transaction.
  static constexpr int kBusyTimeoutMs = 5000;

  // Opens or creates the SQLite database at `path` (WAL mode,
  // synchronous=FULL, foreign keys on, busy timeout), creating the schema
  // (tables meta, candidate, commits) when the file is new or empty. Returns
  // nullptr and a one-line reason in *error (when error is not nullptr) when
  // the path cannot be opened for writing (missing directory, a directory,
  // read-only file), the file is not an SQLite database, is an SQLite
  // database of something else, or has a newer schema version; also for ""
  // and ":memory:", which SQLite would accept but where nothing is kept.
  static std::unique_ptr<ConfigStore> open(const std::string& path, std::string* error);

  ~ConfigStore();
  ConfigStore(const ConfigStore&) = delete;
  ConfigStore& operator=(const ConfigStore&) = delete;

  const std::string& path() const { return path_; }

  // The candidate: the configuration being edited, possibly incomplete (it is
  // only validated by commit()). Starts empty in a new store, equals the
  // active configuration after each commit, and becomes commit N after
  // rollback(N). candidateText() is its canonical text.
  Config candidate() const;
  std::string candidateText() const;

  // Applies one or more statements (set/delete lines, the file format of
  // `fulcrum load`) to the candidate with applyConfig(): each statement is
  // checked on its own (keywords, values, that a deleted object exists), not
  // against the rest of the configuration. All or nothing: on the first bad
  // line nothing changes and its error is returned, the line number counting
  // from the first line of `statements`.
  std::optional<ConfigError> edit(std::string_view statements);

  // Replaces the candidate by the configuration `text` describes, applied to
  // an empty configuration (`fulcrum load FILE`). Same all-or-nothing rule
  // and line numbers as edit().
  std::optional<ConfigError> replaceCandidate(std::string_view text);

  // Validates the whole candidate (validateConfig); if valid, stores it as
  // the next numbered commit, which becomes the active configuration, in one
  // SQLite transaction (see Durability above). Returns the new commit number,
  // or the first validation error, whose line refers to candidateText() (the
  // candidate as `show configuration` prints it), or a storage error; on an
  // error nothing is stored. `user` and `comment` are stored as given.
  // Committing a candidate identical to the active configuration is allowed
  // and makes a new commit, as on routers: an operator may want to record a
  // comment, and the engines simply get the same configuration again.
  std::variant<int64_t, ConfigError> commit(std::string_view user, std::string_view comment);

  // The active configuration: the latest commit (nullopt when there is none).
  std::optional<CommitRecord> active() const;
  // Commit `n`; nullopt when there is no such commit.
  std::optional<CommitRecord> commitByNumber(int64_t n) const;
  // At most `limit` commits, newest first.
  std::vector<CommitRecord> commits(size_t limit = 100) const;

  // Makes commit n the candidate; it becomes active only when committed.
  // Uncommitted edits of the candidate are discarded. An error naming `n`
  // (as the word) when there is no commit n; nothing changes then.
  std::optional<ConfigError> rollback(int64_t n);

  // The candidate against the active configuration (or against an empty one
  // when nothing was committed yet) as a diff of `set` lines (diffLines):
  // lines only in the active configuration prefixed "- ", lines only in the
  // candidate "+ ". Empty when they are equal.
  std::string compare() const;

  // True when the candidate differs from the active configuration (from an
  // empty one when nothing was committed yet).
  bool candidateChanged() const;

  // The readers above are const and have no error channel: when the
  // database cannot be read (an I/O error), candidate(), candidateText(),
  // active(), compare() and candidateChanged() work from the candidate and
  // the active configuration as this object last read or wrote them,
  // commitByNumber() returns nullopt and commits() an empty list; the error
  // is kept here ("configuration store PATH: REASON"). Also set when the
  // stored candidate text does not read back (a database edited by hand):
  // candidate() is then empty. Empty when the latest read succeeded.
  std::string lastReadError() const { return lastReadError_; }

 private:
  ConfigStore(std::string path, SqliteConnection db);

  ConfigError storageError() const;
  void noteReadError() const;
  // Reads, inside the caller's transaction or alone; false on a storage error.
  bool readCandidateText(std::string& text) const;
  bool readCandidateAndActiveText(std::string& candidate, std::string& active) const;
  bool readCommit(int64_t number, std::optional<CommitRecord>& out) const;
  bool readLatestCommit(std::optional<CommitRecord>& out) const;
  bool readCommits(const char* sql, int64_t parameter, std::vector<CommitRecord>& out) const;
  // Stores `text` as the candidate inside the caller's transaction.
  bool writeCandidateText(const std::string& text);
  // Applies change(storedText) -> ConfigResult to the stored candidate inside
  // a write transaction and stores the canonical text of the result; nothing
  // changes on error.
  template <typename Change>
  std::optional<ConfigError> changeCandidate(Change change);

  const std::string path_;
  SqliteConnection db_;
  // The latest values read or written, for the readers' fallback on a
  // storage error (see lastReadError()).
  mutable std::string candidateText_;
  mutable std::optional<CommitRecord> active_;
  mutable std::string lastReadError_;
};

}  // namespace fulcrum
