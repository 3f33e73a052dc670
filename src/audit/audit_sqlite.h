// The audit log's database name, shared by audit_log.cc and audit_report.cc: every error names
// the "audit log" database.
#ifndef AIRLOCK_AUDIT_AUDIT_SQLITE_H_
#define AIRLOCK_AUDIT_AUDIT_SQLITE_H_

#include "sqlite/sqlite_util.h"

namespace airlock::audit::internal {

inline constexpr sqlite::Context kAuditDb{"audit log"};

}  // namespace airlock::audit::internal

#endif  // AIRLOCK_AUDIT_AUDIT_SQLITE_H_
