#include "sqlite/sqlite_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace airlock::sqlite {

Error DbError(sqlite3* db, std::string_view context, std::string_view what) {
  int code = sqlite3_errcode(db);
  ErrorCode ec =
      (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) ? ErrorCode::kMalformed : ErrorCode::kIo;
  return Error(ec, std::string(context) + ": " + std::string(what) + ": " + sqlite3_errmsg(db));
}

Result<DbPtr> OpenPrivateDb(const std::filesystem::path& path, bool create, std::string_view what,
                            bool read_only_fallback) {
  const std::string name = std::string(what) + " " + path.string();
  std::error_code ec;
  bool exists = std::filesystem::exists(path, ec);
  if (!exists && !create) return MakeError(ErrorCode::kNotFound, name + " does not exist");
  if (!exists) {
    int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) return MakeError(ErrorCode::kIo, "cannot create " + name);
    if (fd >= 0) ::close(fd);
  }
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK && read_only_fallback) {
    raw = nullptr;
    rc =
        sqlite3_open_v2(path.c_str(), &raw,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, nullptr);
    db.reset(raw);
  }
  if (rc != SQLITE_OK) {
    return MakeError(ErrorCode::kIo, "cannot open " + name + ": " +
                                         (raw != nullptr ? sqlite3_errmsg(raw) : "out of memory"));
  }
  sqlite3_busy_timeout(db.get(), 5000);
  return db;
}

Result<StmtPtr> Prepare(sqlite3* db, std::string_view sql, std::string_view context) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return tl::unexpected(DbError(db, context, "prepare"));
  }
  return StmtPtr(stmt);
}

Result<void> Exec(sqlite3* db, const char* sql, std::string_view context) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : "unknown";
    sqlite3_free(message);
    return MakeError(DbError(db, context, "exec").code(), std::string(context) + ": " + text);
  }
  return {};
}

void BindText(sqlite3_stmt* s, int index, std::string_view text) {
  sqlite3_bind_text(s, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

void BindBlob(sqlite3_stmt* s, int index, ByteSpan blob) {
  sqlite3_bind_blob(s, index, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
}

std::string ColumnText(sqlite3_stmt* s, int index) {
  const unsigned char* text = sqlite3_column_text(s, index);
  int size = sqlite3_column_bytes(s, index);
  return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text), size);
}

Bytes ColumnBlob(sqlite3_stmt* s, int index) {
  const auto* data = static_cast<const uint8_t*>(sqlite3_column_blob(s, index));
  int size = sqlite3_column_bytes(s, index);
  return data == nullptr ? Bytes() : Bytes(data, data + size);
}

Result<Transaction> Transaction::Begin(sqlite3* db, std::string_view context) {
  AIRLOCK_TRY(Exec(db, "BEGIN IMMEDIATE", context));
  return Transaction(db, context);
}

Transaction::~Transaction() {
  if (db_ != nullptr) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Result<void> Transaction::Commit() {
  AIRLOCK_TRY(Exec(db_, "COMMIT", context_));
  db_ = nullptr;
  return {};
}

}  // namespace airlock::sqlite
