#include "storage/database.h"

#include <sys/stat.h>

#include <cerrno>

namespace berth::storage {

namespace {

int errno_for(int sqlite_code) {
  switch (sqlite_code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return EBUSY;
    case SQLITE_CONSTRAINT:
      return EEXIST;
    case SQLITE_NOTFOUND:
      return ENOENT;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return EACCES;
    case SQLITE_FULL:
      return ENOSPC;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return EUCLEAN;
    default:
      return EIO;
  }
}

}  // namespace

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)), sql_(std::move(other.sql_)),
      bind_error_(std::move(other.bind_error_)) {}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, std::string_view text) {
  int rc = sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_.message.empty()) bind_error_ = Error{EINVAL, "bind " + sql_ + ": " + sqlite3_errstr(rc)};
  return *this;
}

Statement& Statement::bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_.message.empty()) bind_error_ = Error{EINVAL, "bind " + sql_ + ": " + sqlite3_errstr(rc)};
  return *this;
}

Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Statement::step() {
  if (!bind_error_.message.empty()) return std::unexpected(bind_error_);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return fail(errno_for(rc), "sqlite: " + std::string(sqlite3_errmsg(db_)) + " (in: " + sql_ + ")");
}

Result<> Statement::run() {
  while (BERTH_TRY(step())) {
  }
  return {};
}

std::string Statement::text(int column) const {
  auto* p = sqlite3_column_text(stmt_, column);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

int64_t Statement::integer(int column) const { return sqlite3_column_int64(stmt_, column); }

bool Statement::is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

Result<std::shared_ptr<Database>> Database::open(const std::string& path) {
  sqlite3* raw = nullptr;
  mode_t old = ::umask(077);
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  ::umask(old);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close(raw);
    return fail(errno_for(rc), "open database " + path + ": " + msg);
  }
  std::shared_ptr<Database> db(new Database(raw, path));
  sqlite3_busy_timeout(raw, 10000);
  // synchronous=FULL: a committed change survives power loss, which the daemon's
  // promises (no lost pod, no lost IP) rest on.
  BERTH_TRY_VOID(db->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  BERTH_TRY_VOID(db->exec("CREATE TABLE IF NOT EXISTS schema_versions (module TEXT PRIMARY KEY, version INTEGER NOT NULL)"));
  return db;
}

Database::~Database() { sqlite3_close_v2(db_); }

Error Database::error(std::string_view context) const {
  return Error{errno_for(sqlite3_errcode(db_)), std::string(context) + ": " + sqlite3_errmsg(db_)};
}

Result<> Database::exec(std::string_view sql) {
  auto guard = lock();
  std::string text(sql);
  char* msg = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    std::string message = msg ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    return fail(errno_for(rc), "sqlite: " + message + " (in: " + text.substr(0, 120) + ")");
  }
  return {};
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return std::unexpected(error("prepare " + std::string(sql)));
  return Statement(db_, stmt, std::string(sql));
}

Result<> Database::transaction(const std::function<Result<>()>& fn) {
  auto guard = lock();
  if (depth_ > 0) {
    ++depth_;
    auto r = fn();
    --depth_;
    return r;
  }
  BERTH_TRY_VOID(exec("BEGIN IMMEDIATE"));
  depth_ = 1;
  auto r = fn();
  depth_ = 0;
  if (!r) {
    (void)exec("ROLLBACK");
    return r;
  }
  if (auto c = exec("COMMIT"); !c) {
    (void)exec("ROLLBACK");
    return c;
  }
  return {};
}

Result<> Database::ensure_schema(std::string_view module, int version, std::string_view ddl) {
  return transaction([&]() -> Result<> {
    auto q = BERTH_TRY(prepare("SELECT version FROM schema_versions WHERE module = ?"));
    q.bind(1, module);
    int64_t have = BERTH_TRY(q.step()) ? q.integer(0) : 0;
    if (have >= version) return {};
    BERTH_TRY_VOID(exec(ddl));
    auto up = BERTH_TRY(prepare("INSERT OR REPLACE INTO schema_versions (module, version) VALUES (?, ?)"));
    up.bind(1, module).bind(2, static_cast<int64_t>(version));
    return up.run();
  });
}

}  // namespace berth::storage
