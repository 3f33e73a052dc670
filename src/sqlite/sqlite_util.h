// The SQLite plumbing shared by the private database files (file vault, audit log, access store):
// RAII handles, prepared statements, exec, binding and columns, and an IMMEDIATE transaction. Each
// caller passes a context ("audit log", "access store", ...) that prefixes its error messages.
#ifndef AIRLOCK_SQLITE_SQLITE_UTIL_H_
#define AIRLOCK_SQLITE_SQLITE_UTIL_H_

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace airlock::sqlite {

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;
struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// Opens a private database file; with `create`, a missing file is first created with mode 0600
// (SQLite would use the umask, and its journal copies the file's mode). kNotFound when it is
// missing and `create` is false. With `read_only_fallback`, a file that cannot be opened read-write
// is opened read-only. `what` names the file in messages ("audit log"). Sets a 5 s busy timeout.
// A symbolic link in place of the file is refused (SQLITE_OPEN_NOFOLLOW).
[[nodiscard]] Result<DbPtr> OpenPrivateDb(const std::filesystem::path& path, bool create,
                                          std::string_view what, bool read_only_fallback = false);

// "context: what: sqlite message"; kMalformed when the file is not a (sound) database, kIo
// otherwise.
Error DbError(sqlite3* db, std::string_view context, std::string_view what);
[[nodiscard]] Result<StmtPtr> Prepare(sqlite3* db, std::string_view sql, std::string_view context);
[[nodiscard]] Result<void> Exec(sqlite3* db, const char* sql, std::string_view context);

// The three above bound to one database's name, so that a module declares
//   constexpr sqlite::Context kJournalDb{"install journal"};
// once and writes kJournalDb.Prepare(db, sql) instead of wrapping each helper itself.
struct Context {
  std::string_view name;
  Error DbError(sqlite3* db, std::string_view what) const {
    return sqlite::DbError(db, name, what);
  }
  [[nodiscard]] Result<StmtPtr> Prepare(sqlite3* db, std::string_view sql) const {
    return sqlite::Prepare(db, sql, name);
  }
  [[nodiscard]] Result<void> Exec(sqlite3* db, const char* sql) const {
    return sqlite::Exec(db, sql, name);
  }
};

void BindText(sqlite3_stmt* s, int index, std::string_view text);
void BindBlob(sqlite3_stmt* s, int index, ByteSpan blob);
std::string ColumnText(sqlite3_stmt* s, int index);
Bytes ColumnBlob(sqlite3_stmt* s, int index);

// BEGIN IMMEDIATE ... COMMIT; rolled back on destruction unless Commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> Begin(sqlite3* db, std::string_view context = "SQLite");
  Transaction(Transaction&& other) noexcept : db_(other.db_), context_(other.context_) {
    other.db_ = nullptr;
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Result<void> Commit();

 private:
  Transaction(sqlite3* db, std::string_view context) : db_(db), context_(context) {}
  sqlite3* db_;
  std::string_view context_;
};

}  // namespace airlock::sqlite

#endif  // AIRLOCK_SQLITE_SQLITE_UTIL_H_
