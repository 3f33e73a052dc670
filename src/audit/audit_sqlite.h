// The audit log's SQLite helpers, shared by audit_log.cc and audit_report.cc: every error names
// the "audit log" database.
#ifndef AIRLOCK_AUDIT_AUDIT_SQLITE_H_
#define AIRLOCK_AUDIT_AUDIT_SQLITE_H_

#include <sqlite3.h>

#include <string_view>

#include "common/result.h"
#include "sqlite/sqlite_util.h"

namespace airlock::audit::internal {

inline constexpr std::string_view kDbContext = "audit log";

inline Error DbError(sqlite3* db, std::string_view what) {
  return sqlite::DbError(db, kDbContext, what);
}

inline Result<sqlite::StmtPtr> Prepare(sqlite3* db, std::string_view sql) {
  return sqlite::Prepare(db, sql, kDbContext);
}

}  // namespace airlock::audit::internal

#endif  // AIRLOCK_AUDIT_AUDIT_SQLITE_H_
