// RAII ownership of an SQLite connection and its prepared statements, for the
// control plane's stores. The header does not include <sqlite3.h>, so that
// users of a store see no SQLite (only control-plane/ links it).
//
// Nothing here throws. Every operation that can fail returns the SQLite result
// code (SQLITE_OK, SQLITE_ROW, SQLITE_DONE, or an error); the connection's
// errorMessage() then says why, for a person.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace fulcrum {

// Owns one connection and closes it when destroyed. Not thread-safe: one
// thread at a time uses a connection and its statements.
class SqliteConnection {
 public:
  SqliteConnection() = default;
  // Opens `path` for reading and writing, creating the file when absent, with
  // extended result codes on. On failure returns an empty connection (get()
  // is nullptr) and the reason in *error.
  static SqliteConnection open(const std::string& path, std::string* error);

  ~SqliteConnection();
  SqliteConnection(SqliteConnection&& other) noexcept;
  SqliteConnection& operator=(SqliteConnection&& other) noexcept;
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  sqlite3* get() const { return db_; }

  // Runs SQL that returns no rows the caller needs (DDL, BEGIN, COMMIT,
  // pragmas that set). Returns the result code of the first failure, or
  // SQLITE_OK.
  int exec(const char* sql) const;

  // The message of the latest failure on this connection ("disk I/O error",
  // "file is not a database").
  std::string errorMessage() const;

  // True while a transaction is open (a failed COMMIT may leave one open; an
  // I/O error may have rolled one back already).
  bool inTransaction() const;

 private:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

// One prepared statement, finalized when destroyed. Values bound are copied
// (SQLITE_TRANSIENT), so the arguments need not outlive the call.
class SqliteStatement {
 public:
  // Prepares `sql` on `db`. On failure ok() is false and result() is the
  // SQLite result code; step() then returns that code.
  SqliteStatement(const SqliteConnection& db, std::string_view sql);
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  int result() const { return result_; }

  // 1-based parameter index. Return the SQLite result code.
  int bind(int index, int64_t value);
  int bind(int index, std::string_view text);  // any bytes, NUL included

  // SQLITE_ROW (a row is ready for the column accessors), SQLITE_DONE, or an
  // error code.
  int step();

  // 0-based column of the current row. NULL reads as 0 or "".
  int64_t columnInt64(int column) const;
  std::string columnText(int column) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int result_ = 0;
};

}  // namespace fulcrum
