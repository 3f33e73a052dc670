// SQLite driver. One sqlite3* per Connection, owned by a unique_ptr; statements are finalized by RAII.
#include <sqlite3.h>

#include <string>

#include "storage/connection.h"

namespace airlock::storage {
namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// A writer waits this long for another process's write lock before giving up with kIo.
constexpr int kBusyTimeoutMs = 5000;

Error SqliteError(sqlite3* db, int rc, std::string_view what) {
  int extended = sqlite3_extended_errcode(db);
  std::string message = std::string(what) + ": " + sqlite3_errmsg(db);
  if (extended == SQLITE_CONSTRAINT_PRIMARYKEY || extended == SQLITE_CONSTRAINT_UNIQUE) {
    return Error(ErrorCode::kAlreadyExists, message);
  }
  if (extended == SQLITE_CONSTRAINT_FOREIGNKEY) return Error(ErrorCode::kNotFound, message);
  (void)rc;
  return Error(ErrorCode::kIo, message);
}

// "$12" -> "?12". Only placeholders are rewritten; our SQL has no '$' inside string literals.
std::string MapPlaceholders(std::string_view sql) {
  std::string out(sql);
  for (char& c : out) {
    if (c == '$') c = '?';
  }
  return out;
}

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(DbPtr db) : db_(std::move(db)) {}
  Backend backend() const override { return Backend::kSqlite; }

  Result<std::vector<Row>> Query(std::string_view sql, std::span<const Param> params) override {
    std::string mapped = MapPlaceholders(sql);
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), mapped.c_str(), static_cast<int>(mapped.size()), &raw,
                                nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return tl::unexpected(SqliteError(db_.get(), rc, "prepare"));
    if (static_cast<size_t>(sqlite3_bind_parameter_count(stmt.get())) != params.size()) {
      return MakeError(ErrorCode::kInternal, "parameter count does not match the statement");
    }
    for (size_t i = 0; i < params.size(); ++i) {
      int index = static_cast<int>(i) + 1;
      const Param& p = params[i];
      if (std::holds_alternative<int64_t>(p)) {
        rc = sqlite3_bind_int64(stmt.get(), index, std::get<int64_t>(p));
      } else if (std::holds_alternative<std::string>(p)) {
        const std::string& s = std::get<std::string>(p);
        rc = sqlite3_bind_text64(stmt.get(), index, s.data(), s.size(), SQLITE_TRANSIENT,
                                 SQLITE_UTF8);
      } else {
        rc = sqlite3_bind_null(stmt.get(), index);
      }
      if (rc != SQLITE_OK) return tl::unexpected(SqliteError(db_.get(), rc, "bind"));
    }
    std::vector<Row> rows;
    while (true) {
      rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return tl::unexpected(SqliteError(db_.get(), rc, "step"));
      int n = sqlite3_column_count(stmt.get());
      Row row;
      row.reserve(n);
      for (int c = 0; c < n; ++c) {
        if (sqlite3_column_type(stmt.get(), c) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
        } else {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), c));
          row.emplace_back(std::string(text, sqlite3_column_bytes(stmt.get(), c)));
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  Result<void> ExecScript(std::string_view sql) override {
    std::string script(sql);
    char* err = nullptr;
    int rc = sqlite3_exec(db_.get(), script.c_str(), nullptr, nullptr, &err);
    std::unique_ptr<char, decltype(&sqlite3_free)> err_owner(err, &sqlite3_free);
    if (rc != SQLITE_OK) return tl::unexpected(SqliteError(db_.get(), rc, "exec"));
    return {};
  }

  Result<void> Begin() override { return Exec("BEGIN IMMEDIATE"); }

  // BEGIN IMMEDIATE already holds the database's single write lock.
  Result<void> LockForMigration() override { return {}; }

  Result<std::vector<Column>> DescribeSchema() override {
    AIRLOCK_ASSIGN_OR_RETURN(
        auto tables, Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                           "'sqlite_%' ORDER BY name",
                           {}));
    std::vector<Column> columns;
    for (const Row& t : tables) {
      const std::string& table = *t[0];
      Param p[] = {table};
      // pragma_table_info as a table-valued function takes the table name as a parameter.
      AIRLOCK_ASSIGN_OR_RETURN(
          auto cols, Query("SELECT name, type, \"notnull\" FROM pragma_table_info($1) ORDER BY cid", p));
      for (const Row& c : cols) {
        std::string type = c[1].value_or("");
        for (char& ch : type) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        columns.push_back({table, c[0].value_or(""), type, c[2].value_or("0") == "1"});
      }
    }
    return columns;
  }

 private:
  DbPtr db_;
};

}  // namespace

Result<std::unique_ptr<Connection>> OpenSqliteConnection(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    std::string message = "open " + path + ": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
    return MakeError(ErrorCode::kIo, message);
  }
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  auto conn = std::make_unique<SqliteConnection>(std::move(db));
  // WAL: readers never block the writer; NORMAL sync is durable across process crashes in WAL mode.
  AIRLOCK_ASSIGN_OR_RETURN(auto mode, conn->Query("PRAGMA journal_mode = WAL", {}));
  if (mode.empty() || mode[0].empty() || mode[0][0].value_or("") != "wal") {
    return MakeError(ErrorCode::kIo, "open " + path + ": could not switch to WAL journal mode");
  }
  AIRLOCK_TRY(conn->Exec("PRAGMA synchronous = NORMAL"));
  AIRLOCK_TRY(conn->Exec("PRAGMA foreign_keys = ON"));
  // Reads through a memory map of the file's first GiB, not a pread per page into the 2 MB page
  // cache: without it, at 1 M devices the device reads of a cache refresh made the checks' p99
  // ~40 ms instead of ~7 ms (docs/benchmarks.md). An I/O error on a mapped page is a SIGBUS
  // (docs/operations/storage.md).
  AIRLOCK_TRY(conn->Query("PRAGMA mmap_size = 1073741824", {}));
  return std::unique_ptr<Connection>(std::move(conn));
}

}  // namespace airlock::storage
