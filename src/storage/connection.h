// Internal: one SQL connection (SQLite or PostgreSQL) behind a small interface, so the Store is written
// once. Not part of the module's public API; the server uses store.h.
#ifndef AIRLOCK_STORAGE_CONNECTION_H_
#define AIRLOCK_STORAGE_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace airlock::storage {

// A bound parameter: NULL, an integer or text. Values only ever travel as parameters, never inside SQL.
using Param = std::variant<std::monostate, int64_t, std::string>;

// One result row; every column as text (both drivers can render any value as text), NULL as nullopt.
using Row = std::vector<std::optional<std::string>>;

enum class Backend { kSqlite, kPostgres };

// Not thread-safe: one caller at a time (SqlStore lends each through its ConnectionPool).
class Connection {
 public:
  virtual ~Connection() = default;
  virtual Backend backend() const = 0;

  // Runs one statement. SQL uses PostgreSQL placeholders ($1, $2, ...); the SQLite driver maps them to ?1.
  // Errors: kAlreadyExists on a unique/primary-key violation, kNotFound on a foreign-key violation,
  // kIo for anything else the database refuses.
  [[nodiscard]] virtual Result<std::vector<Row>> Query(std::string_view sql,
                                                       std::span<const Param> params) = 0;
  // Runs a script of several statements without parameters (migrations).
  [[nodiscard]] virtual Result<void> ExecScript(std::string_view sql) = 0;

  // Starts a write transaction; on PostgreSQL at the default READ COMMITTED level, on SQLite
  // BEGIN IMMEDIATE (takes the write lock at once, so two writers never deadlock on lock upgrade).
  [[nodiscard]] virtual Result<void> Begin() = 0;
  [[nodiscard]] virtual Result<void> Commit();
  [[nodiscard]] virtual Result<void> Rollback();

  // Serializes migrations between processes sharing one database, until the transaction ends.
  [[nodiscard]] virtual Result<void> LockForMigration() = 0;

  // Table -> columns (in declared order) with normalized types, for the schema-equality test and
  // `doctor` checks. schema_migrations is included; internal tables of the database are not.
  struct Column {
    std::string table;
    std::string name;
    std::string type;  // lower case: "text", "bigint", "integer"
    bool not_null = false;
    bool operator==(const Column&) const = default;
  };
  [[nodiscard]] virtual Result<std::vector<Column>> DescribeSchema() = 0;

  // Convenience: Query() without results.
  [[nodiscard]] Result<void> Exec(std::string_view sql, std::span<const Param> params = {});
};

// `path` is a file name; creates it if missing. WAL, busy_timeout and foreign keys are switched on.
[[nodiscard]] Result<std::unique_ptr<Connection>> OpenSqliteConnection(const std::string& path);
// `conninfo` is a libpq URI or key=value string.
[[nodiscard]] Result<std::unique_ptr<Connection>> OpenPostgresConnection(const std::string& conninfo);

// Opens by URL: "sqlite:PATH" or a plain path -> SQLite; "postgresql://..." / "postgres://..." ->
// PostgreSQL. kInvalidArgument for an empty or over-long URL or an unknown scheme.
[[nodiscard]] Result<std::unique_ptr<Connection>> OpenConnection(std::string_view url);

inline constexpr size_t kMaxUrlLength = 4096;

}  // namespace airlock::storage

#endif  // AIRLOCK_STORAGE_CONNECTION_H_
