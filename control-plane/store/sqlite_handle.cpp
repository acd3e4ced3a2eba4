#include "control-plane/store/sqlite_handle.h"

#include <sqlite3.h>

#include <utility>

namespace fulcrum {

SqliteConnection SqliteConnection::open(const std::string& path, std::string* error) {
  sqlite3* db = nullptr;
  // NOMUTEX: a connection is used by one thread at a time (the header says
  // so), so SQLite's per-connection mutex would only cost time.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  // sqlite3_open_v2 hands back a handle even when it fails (to carry the
  // message); it must be closed either way.
  SqliteConnection connection(db);
  if (rc != SQLITE_OK) {
    if (error != nullptr) {
      *error = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    }
    return SqliteConnection();
  }
  sqlite3_extended_result_codes(db, 1);
  return connection;
}

SqliteConnection::~SqliteConnection() {
  // close_v2 cannot fail for want of finalized statements: it defers the
  // close until the last one is finalized instead of leaking the handle.
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

SqliteConnection::SqliteConnection(SqliteConnection&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)) {}

SqliteConnection& SqliteConnection::operator=(SqliteConnection&& other) noexcept {
  if (this != &other) {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

int SqliteConnection::exec(const char* sql) const {
  if (db_ == nullptr) return SQLITE_MISUSE;
  return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
}

std::string SqliteConnection::errorMessage() const {
  if (db_ == nullptr) return "no database connection";
  return sqlite3_errmsg(db_);
}

bool SqliteConnection::inTransaction() const {
  return db_ != nullptr && sqlite3_get_autocommit(db_) == 0;
}

SqliteStatement::SqliteStatement(const SqliteConnection& db, std::string_view sql) {
  if (db.get() == nullptr) {
    result_ = SQLITE_MISUSE;
    return;
  }
  result_ = sqlite3_prepare_v2(db.get(), sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (result_ != SQLITE_OK) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
  }
}

SqliteStatement::~SqliteStatement() {
  sqlite3_finalize(stmt_);  // a no-op on nullptr
}

int SqliteStatement::bind(int index, int64_t value) {
  if (stmt_ == nullptr) return result_;
  return sqlite3_bind_int64(stmt_, index, value);
}

int SqliteStatement::bind(int index, std::string_view text) {
  if (stmt_ == nullptr) return result_;
  // sqlite3_bind_text64 takes any length without an int overflow; a
  // string_view's data() may be nullptr when empty, which SQLite would bind
  // as NULL, so an empty text is bound from a literal.
  const char* data = text.empty() ? "" : text.data();
  return sqlite3_bind_text64(stmt_, index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

int SqliteStatement::step() {
  if (stmt_ == nullptr) return result_;
  return sqlite3_step(stmt_);
}

int64_t SqliteStatement::columnInt64(int column) const {
  if (stmt_ == nullptr) return 0;
  return sqlite3_column_int64(stmt_, column);
}

std::string SqliteStatement::columnText(int column) const {
  if (stmt_ == nullptr) return {};
  // Text first, then its length: the documented order, so that no type
  // conversion happens between the two calls.
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  if (text == nullptr || size <= 0) return {};
  return std::string(text, static_cast<size_t>(size));
}

}  // namespace fulcrum
