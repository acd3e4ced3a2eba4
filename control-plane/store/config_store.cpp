#include "control-plane/store/config_store.h"

#include <sqlite3.h>

#include <chrono>
#include <limits>
#include <utility>

#include "control-plane/store/line_diff.h"

namespace fulcrum {
namespace {

// Single-row tables carry CHECK (id = 1) so that no bug can ever make a
// second candidate or a second schema version appear. Commit numbers are
// assigned by the store as MAX + 1 inside the write transaction, never by
// SQLite's rowid allocation, so that they stay 1..N without gaps.
constexpr const char* kCreateSchema = R"sql(
CREATE TABLE meta(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  schema_version INTEGER NOT NULL
);
CREATE TABLE candidate(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  text TEXT NOT NULL,
  modified_ms INTEGER NOT NULL
);
CREATE TABLE commits(
  number INTEGER PRIMARY KEY CHECK (number >= 1),
  time_ms INTEGER NOT NULL,
  user TEXT NOT NULL,
  comment TEXT NOT NULL,
  text TEXT NOT NULL
);
)sql";

constexpr const char* kCommitColumns = "SELECT number, time_ms, user, comment, text FROM commits";

int64_t nowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A write transaction that rolls back unless committed, so that every early
// return on an error leaves the database as it was. IMMEDIATE takes the
// write lock at once: a read-then-write change (edit, commit) must not find
// at COMMIT time that another process wrote in between.
class WriteTransaction {
 public:
  explicit WriteTransaction(const SqliteConnection& db) : db_(db) {}
  ~WriteTransaction() {
    // After some errors (I/O, full disk) SQLite has already rolled back.
    if (open_ && db_.inTransaction()) db_.exec("ROLLBACK");
  }
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;

  bool begin() {
    open_ = db_.exec("BEGIN IMMEDIATE") == SQLITE_OK;
    return open_;
  }
  bool commit() {
    if (db_.exec("COMMIT") != SQLITE_OK) return false;
    open_ = false;
    return true;
  }

 private:
  const SqliteConnection& db_;
  bool open_ = false;
};

CommitRecord commitFromRow(const SqliteStatement& s) {
  CommitRecord r;
  r.number = s.columnInt64(0);
  r.timeUnixMs = s.columnInt64(1);
  r.user = s.columnText(2);
  r.comment = s.columnText(3);
  r.text = s.columnText(4);
  return r;
}

// Stored texts were canonical for the program that wrote them; printing
// them again through this program's configToText() keeps the diff and the
// "changed" test about meaning, should the canonical form ever change. Text
// that does not read back is compared as it is.
std::string canonical(const std::string& text) {
  const ConfigResult r = applyConfig(text);
  return r.ok() ? configToText(r.config) : text;
}

std::string prefixed(const std::string& path, std::string_view reason) {
  return "configuration store " + path + ": " + std::string(reason);
}

}  // namespace

std::unique_ptr<ConfigStore> ConfigStore::open(const std::string& path, std::string* error) {
  const auto fail = [&](std::string_view reason) -> std::unique_ptr<ConfigStore> {
    if (error != nullptr) *error = prefixed(path, reason);
    return nullptr;
  };
  // SQLite reads "" as a private temporary database, which would silently
  // lose every commit.
  if (path.empty()) return fail("no file name given");
  std::string reason;
  SqliteConnection db = SqliteConnection::open(path, &reason);
  if (db.get() == nullptr) return fail(reason);
  // SQLite quietly falls back to read-only when the file is not writable;
  // a store that cannot take commits is an error now, not at the first one.
  if (sqlite3_db_readonly(db.get(), "main") == 1) return fail("the file is not writable");
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);

  // WAL + synchronous=FULL: a commit is durable once COMMIT returns, and a
  // torn write is rolled back on the next open. The pragma is the first
  // read of the file, so "file is not a database" surfaces here.
  {
    SqliteStatement walMode(db, "PRAGMA journal_mode=WAL");
    if (walMode.step() != SQLITE_ROW) return fail(db.errorMessage());
    const std::string mode = walMode.columnText(0);
    if (mode != "wal") return fail("cannot use write-ahead logging (journal mode is " + mode + ")");
  }
  if (db.exec("PRAGMA synchronous=FULL") != SQLITE_OK ||
      db.exec("PRAGMA foreign_keys=ON") != SQLITE_OK) {
    return fail(db.errorMessage());
  }

  // Creating or checking the schema in one write transaction: two control
  // planes started at once on a new file must not both create it.
  WriteTransaction tx(db);
  if (!tx.begin()) return fail(db.errorMessage());
  int64_t objects = 0;
  {
    SqliteStatement count(db, "SELECT count(*) FROM sqlite_master");
    if (count.step() != SQLITE_ROW) return fail(db.errorMessage());
    objects = count.columnInt64(0);
  }
  if (objects == 0) {
    if (db.exec(kCreateSchema) != SQLITE_OK) return fail(db.errorMessage());
    SqliteStatement meta(db, "INSERT INTO meta(id, schema_version) VALUES (1, ?)");
    meta.bind(1, kSchemaVersion);
    if (meta.step() != SQLITE_DONE) return fail(db.errorMessage());
  } else {
    {
      SqliteStatement hasMeta(db,
                              "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                              "name = 'meta'");
      if (hasMeta.step() != SQLITE_ROW) return fail(db.errorMessage());
      if (hasMeta.columnInt64(0) == 0) {
        return fail("an SQLite database but not a Fulcrum configuration store (no meta table)");
      }
    }
    SqliteStatement version(db, "SELECT schema_version FROM meta WHERE id = 1");
    const int rc = version.step();
    if (rc == SQLITE_DONE) return fail("damaged: no schema version in table meta");
    if (rc != SQLITE_ROW) return fail(db.errorMessage());
    const int64_t v = version.columnInt64(0);
    if (v > kSchemaVersion) {
      return fail("schema version " + std::to_string(v) + " is newer than this program's (" +
                  std::to_string(kSchemaVersion) + "); it was written by a newer Fulcrum");
    }
    if (v < 1) return fail("damaged: bad schema version " + std::to_string(v));
    // Version 1 is the only one so far: nothing to migrate. Preparing the
    // statements the store uses checks that the tables have their columns.
    SqliteStatement candidateColumns(db, "SELECT id, text, modified_ms FROM candidate");
    SqliteStatement commitColumns(db, kCommitColumns);
    if (!candidateColumns.ok() || !commitColumns.ok()) {
      return fail("damaged: " + db.errorMessage());
    }
  }
  // The candidate row is made here, not by the writers, so that they can
  // simply UPDATE it. Should it be missing, the active configuration is the
  // natural candidate.
  {
    SqliteStatement row(
        db,
        "INSERT OR IGNORE INTO candidate(id, text, modified_ms) VALUES (1, "
        "COALESCE((SELECT text FROM commits ORDER BY number DESC LIMIT 1), ''), ?)");
    row.bind(1, nowUnixMs());
    if (row.step() != SQLITE_DONE) return fail(db.errorMessage());
  }
  if (!tx.commit()) return fail(db.errorMessage());

  std::unique_ptr<ConfigStore> store(new ConfigStore(path, std::move(db)));
  std::string candidateText;
  std::optional<CommitRecord> active;
  if (!store->readCandidateText(candidateText) || !store->readLatestCommit(active)) {
    return fail(store->db_.errorMessage());
  }
  store->candidateText_ = std::move(candidateText);
  store->active_ = std::move(active);
  return store;
}

ConfigStore::ConfigStore(std::string path, SqliteConnection db)
    : path_(std::move(path)), db_(std::move(db)) {}

ConfigStore::~ConfigStore() = default;

ConfigError ConfigStore::storageError() const {
  return ConfigError{0, "", prefixed(path_, db_.errorMessage())};
}

void ConfigStore::noteReadError() const {
  lastReadError_ = prefixed(path_, db_.errorMessage());
}

// --- Reads -------------------------------------------------------------------

bool ConfigStore::readCandidateText(std::string& text) const {
  SqliteStatement s(db_, "SELECT text FROM candidate WHERE id = 1");
  const int rc = s.step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return false;
  text = rc == SQLITE_ROW ? s.columnText(0) : std::string();
  return true;
}

// One statement, so that both come from the same snapshot even while
// another process commits.
bool ConfigStore::readCandidateAndActiveText(std::string& candidate, std::string& active) const {
  SqliteStatement s(db_,
                    "SELECT (SELECT text FROM candidate WHERE id = 1), "
                    "(SELECT text FROM commits ORDER BY number DESC LIMIT 1)");
  if (s.step() != SQLITE_ROW) {
    noteReadError();
    candidate = candidateText_;
    active = active_ ? active_->text : std::string();
    return false;
  }
  candidate = s.columnText(0);
  active = s.columnText(1);  // NULL (no commit) reads as the empty configuration
  lastReadError_.clear();
  return true;
}

bool ConfigStore::readCommits(const char* sql, int64_t parameter,
                              std::vector<CommitRecord>& out) const {
  out.clear();
  SqliteStatement s(db_, std::string(kCommitColumns) + sql);
  if (s.bind(1, parameter) != SQLITE_OK) return false;
  int rc = SQLITE_OK;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(commitFromRow(s));
  if (rc != SQLITE_DONE) {
    out.clear();
    return false;
  }
  return true;
}

bool ConfigStore::readCommit(int64_t number, std::optional<CommitRecord>& out) const {
  std::vector<CommitRecord> rows;
  if (!readCommits(" WHERE number = ?", number, rows)) return false;
  out = rows.empty() ? std::nullopt : std::optional<CommitRecord>(std::move(rows.front()));
  return true;
}

bool ConfigStore::readLatestCommit(std::optional<CommitRecord>& out) const {
  std::vector<CommitRecord> rows;
  if (!readCommits(" ORDER BY number DESC LIMIT ?", 1, rows)) return false;
  out = rows.empty() ? std::nullopt : std::optional<CommitRecord>(std::move(rows.front()));
  return true;
}

std::string ConfigStore::candidateText() const {
  std::string text;
  if (readCandidateText(text)) {
    candidateText_ = text;
    lastReadError_.clear();
  } else {
    noteReadError();
    text = candidateText_;
  }
  return canonical(text);
}

Config ConfigStore::candidate() const {
  const std::string text = candidateText();
  ConfigResult r = applyConfig(text);
  if (!r.ok()) {
    lastReadError_ =
        prefixed(path_, "the stored candidate does not read back: " + r.error->toString());
    return Config{};
  }
  return std::move(r.config);
}

std::optional<CommitRecord> ConfigStore::active() const {
  std::optional<CommitRecord> latest;
  if (!readLatestCommit(latest)) {
    noteReadError();
    return active_;
  }
  lastReadError_.clear();
  active_ = latest;
  return latest;
}

std::optional<CommitRecord> ConfigStore::commitByNumber(int64_t n) const {
  std::optional<CommitRecord> record;
  if (!readCommit(n, record)) {
    noteReadError();
    return std::nullopt;
  }
  lastReadError_.clear();
  return record;
}

std::vector<CommitRecord> ConfigStore::commits(size_t limit) const {
  std::vector<CommitRecord> out;
  if (limit == 0) return out;
  const int64_t bound = limit > static_cast<size_t>(std::numeric_limits<int64_t>::max())
                            ? std::numeric_limits<int64_t>::max()
                            : static_cast<int64_t>(limit);
  if (!readCommits(" ORDER BY number DESC LIMIT ?", bound, out)) {
    noteReadError();
    return {};
  }
  lastReadError_.clear();
  return out;
}

std::string ConfigStore::compare() const {
  std::string candidate;
  std::string active;
  readCandidateAndActiveText(candidate, active);
  return diffLines(canonical(active), canonical(candidate));
}

bool ConfigStore::candidateChanged() const {
  std::string candidate;
  std::string active;
  readCandidateAndActiveText(candidate, active);
  return canonical(active) != canonical(candidate);
}

// --- Changes -----------------------------------------------------------------

bool ConfigStore::writeCandidateText(const std::string& text) {
  SqliteStatement s(db_, "UPDATE candidate SET text = ?, modified_ms = ? WHERE id = 1");
  return s.bind(1, text) == SQLITE_OK && s.bind(2, nowUnixMs()) == SQLITE_OK &&
         s.step() == SQLITE_DONE;
}

template <typename Change>
std::optional<ConfigError> ConfigStore::changeCandidate(Change change) {
  WriteTransaction tx(db_);
  if (!tx.begin()) return storageError();
  // Read inside the transaction: another process may have edited since this
  // object last looked, and its edit must not be lost.
  std::string stored;
  if (!readCandidateText(stored)) return storageError();
  ConfigResult next = change(stored);
  if (!next.ok()) return std::move(next.error);
  std::string text = configToText(next.config);
  if (text != stored && !writeCandidateText(text)) return storageError();
  if (!tx.commit()) return storageError();
  candidateText_ = std::move(text);
  return std::nullopt;
}

std::optional<ConfigError> ConfigStore::edit(std::string_view statements) {
  return changeCandidate([&](const std::string& stored) {
    ConfigResult current = applyConfig(stored);
    if (!current.ok()) {
      // Only a database edited by hand gets here; say how to get out.
      current.error = ConfigError{
          0, "",
          prefixed(path_, "the stored candidate does not read back (" + current.error->toString() +
                              "); replace it with `load` or `rollback`")};
      return current;
    }
    return applyConfig(statements, current.config);
  });
}

std::optional<ConfigError> ConfigStore::replaceCandidate(std::string_view text) {
  return changeCandidate([&](const std::string&) { return applyConfig(text); });
}

std::optional<ConfigError> ConfigStore::rollback(int64_t n) {
  WriteTransaction tx(db_);
  if (!tx.begin()) return storageError();
  std::optional<CommitRecord> record;
  if (!readCommit(n, record)) return storageError();
  if (!record) {
    std::optional<CommitRecord> latest;
    if (!readLatestCommit(latest)) return storageError();
    return ConfigError{0, std::to_string(n),
                       "there is no commit " + std::to_string(n) +
                           (latest ? " (commits are 1.." + std::to_string(latest->number) + ")"
                                   : std::string(" (nothing was committed yet)"))};
  }
  std::string text = canonical(record->text);
  if (!writeCandidateText(text)) return storageError();
  if (!tx.commit()) return storageError();
  candidateText_ = std::move(text);
  return std::nullopt;
}

std::variant<int64_t, ConfigError> ConfigStore::commit(std::string_view user,
                                                       std::string_view comment) {
  WriteTransaction tx(db_);
  if (!tx.begin()) return storageError();
  std::string stored;
  if (!readCandidateText(stored)) return storageError();
  // Validate the text as candidateText() prints it, so that the line of an
  // error is the line the operator sees in `show configuration`.
  const ConfigResult applied = applyConfig(stored);
  if (!applied.ok()) {
    return ConfigError{
        0, "",
        prefixed(path_, "the stored candidate does not read back (" + applied.error->toString() +
                            "); replace it with `load` or `rollback`")};
  }
  const std::string text = configToText(applied.config);
  const ConfigResult parsed = parseConfig(text);
  if (!parsed.ok()) return *parsed.error;

  int64_t number = 0;
  {
    SqliteStatement next(db_, "SELECT COALESCE(MAX(number), 0) + 1 FROM commits");
    if (next.step() != SQLITE_ROW) return storageError();
    number = next.columnInt64(0);
  }
  CommitRecord record;
  record.number = number;
  record.timeUnixMs = nowUnixMs();
  record.user = std::string(user);
  record.comment = std::string(comment);
  record.text = text;
  {
    SqliteStatement insert(db_,
                           "INSERT INTO commits(number, time_ms, user, comment, text) "
                           "VALUES (?, ?, ?, ?, ?)");
    if (insert.bind(1, record.number) != SQLITE_OK ||
        insert.bind(2, record.timeUnixMs) != SQLITE_OK || insert.bind(3, user) != SQLITE_OK ||
        insert.bind(4, comment) != SQLITE_OK || insert.bind(5, text) != SQLITE_OK ||
        insert.step() != SQLITE_DONE) {
      return storageError();
    }
  }
  if (text != stored && !writeCandidateText(text)) return storageError();
  if (!tx.commit()) return storageError();
  candidateText_ = text;
  active_ = std::move(record);
  return number;
}

}  // namespace fulcrum
