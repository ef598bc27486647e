// The node's metadata database: one SQLite file in WAL mode under the root dir,
// shared by the image store now and pods and containers later. Every change is one
// transaction; modules own their tables and version them with ensure_schema().
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace berth::storage {

class Database;

// A prepared statement; bind parameters are 1-based as in SQLite.
class Statement {
 public:
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, int64_t value);
  Statement& bind_null(int index);
  // true when a row is ready, false when done.
  Result<bool> step();
  // Runs to completion (INSERT/UPDATE/DELETE).
  Result<> run();
  std::string text(int column) const;
  int64_t integer(int column) const;
  bool is_null(int column) const;

 private:
  friend class Database;
  Statement(sqlite3* db, sqlite3_stmt* stmt, std::string sql) : db_(db), stmt_(stmt), sql_(std::move(sql)) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::string sql_;
  Error bind_error_;
};

class Database {
 public:
  // Opens or creates the file (mode 0600); WAL, foreign keys, a busy timeout so
  // berthctl and berthd can share it.
  static Result<std::shared_ptr<Database>> open(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Result<> exec(std::string_view sql);
  Result<Statement> prepare(std::string_view sql);

  // Runs fn inside BEGIN IMMEDIATE … COMMIT; an error from fn (or from COMMIT)
  // rolls everything back. Nested calls join the outer transaction.
  Result<> transaction(const std::function<Result<>()>& fn);

  // Creates or upgrades a module's tables: runs `ddl` once when the recorded version
  // of `module` is below `version`.
  Result<> ensure_schema(std::string_view module, int version, std::string_view ddl);

  // Held by callers that run several statements which must see one state.
  std::unique_lock<std::recursive_mutex> lock() { return std::unique_lock(mutex_); }
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Error error(std::string_view context) const;

  sqlite3* db_;
  std::string path_;
  std::recursive_mutex mutex_;
  int depth_ = 0;
};

}  // namespace berth::storage
