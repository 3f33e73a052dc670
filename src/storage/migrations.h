// Numbered schema migrations, embedded at build time from src/storage/migrations/NNNN_name.sql. The same
// files run on SQLite and PostgreSQL.
#ifndef AIRLOCK_STORAGE_MIGRATIONS_H_
#define AIRLOCK_STORAGE_MIGRATIONS_H_

#include <cstdint>
#include <span>
#include <string_view>

#include "common/result.h"

namespace airlock::storage {

class Connection;

struct Migration {
  int64_t version;        // NNNN from the file name, 1, 2, ... without gaps
  std::string_view name;  // file name, e.g. "0001_init.sql"
  std::string_view sql;
};

// Every embedded migration in ascending version order (generated migrations_data.cc).
std::span<const Migration> Migrations();

// Brings the database up to the newest embedded migration. Each pending migration runs in its own
// transaction together with its row in schema_migrations, so a failure leaves the previous version intact.
// Concurrent callers (several airlockd on one PostgreSQL) are serialized. Returns the schema version.
// Errors: kUnsupported if the database already has a migration newer than this binary knows;
// kIo from the database.
[[nodiscard]] Result<int64_t> Migrate(Connection& conn, int64_t applied_at);

}  // namespace airlock::storage

#endif  // AIRLOCK_STORAGE_MIGRATIONS_H_
