#include "storage/migrations.h"

#include <string>

#include "storage/connection.h"

namespace airlock::storage {
namespace {

// Created outside the numbered files so that every file, including 0001, is recorded in it.
constexpr std::string_view kCreateMigrationsTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

Result<int64_t> CurrentVersion(Connection& conn) {
  AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                           conn.Query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {}));
  if (rows.size() != 1 || !rows[0][0]) return MakeError(ErrorCode::kInternal, "no schema version");
  return std::stoll(*rows[0][0]);
}

Result<void> ApplyOne(Connection& conn, const Migration& m, int64_t applied_at) {
  AIRLOCK_TRY(conn.LockForMigration());
  // Another process may have applied it while we waited for the lock.
  AIRLOCK_ASSIGN_OR_RETURN(int64_t current, CurrentVersion(conn));
  if (current >= m.version) return {};
  if (current != m.version - 1) {
    return MakeError(ErrorCode::kInternal, "migrations are not numbered without gaps");
  }
  AIRLOCK_TRY(conn.ExecScript(m.sql));
  Param p[] = {m.version, std::string(m.name), applied_at};
  AIRLOCK_TRY(conn.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                        p));
  return {};
}

}  // namespace

Result<int64_t> Migrate(Connection& conn, int64_t applied_at) {
  // Under the lock: two PostgreSQL sessions racing on CREATE TABLE IF NOT EXISTS can both fail.
  AIRLOCK_TRY(conn.Begin());
  auto created = conn.LockForMigration().and_then([&] { return conn.Exec(kCreateMigrationsTable); });
  if (!created) {
    (void)conn.Rollback();
    return tl::unexpected(created.error().WithContext("create schema_migrations"));
  }
  if (auto committed = conn.Commit(); !committed) {
    (void)conn.Rollback();
    return tl::unexpected(committed.error().WithContext("create schema_migrations"));
  }
  auto migrations = Migrations();
  int64_t newest = migrations.empty() ? 0 : migrations.back().version;
  AIRLOCK_ASSIGN_OR_RETURN(int64_t current, CurrentVersion(conn));
  if (current > newest) {
    return MakeError(ErrorCode::kUnsupported,
                     "database schema version " + std::to_string(current) +
                         " is newer than this binary's " + std::to_string(newest) +
                         "; upgrade airlockd");
  }
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    AIRLOCK_TRY(conn.Begin());
    auto applied = ApplyOne(conn, m, applied_at);
    if (!applied) {
      (void)conn.Rollback();
      return tl::unexpected(applied.error().WithContext(std::string(m.name)));
    }
    auto committed = conn.Commit();
    if (!committed) {
      (void)conn.Rollback();
      return tl::unexpected(committed.error().WithContext(std::string(m.name)));
    }
  }
  return newest;
}

}  // namespace airlock::storage
