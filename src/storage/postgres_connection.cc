// PostgreSQL driver over libpq. PGconn and PGresult are owned by unique_ptrs; every value is sent with
// PQexecParams as a text parameter, never spliced into SQL.
#include <libpq-fe.h>

#include <cctype>
#include <string>

#include "storage/connection.h"

namespace airlock::storage {
namespace {

struct ConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct ResultClearer {
  void operator()(PGresult* res) const { PQclear(res); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnCloser>;
using PgResultPtr = std::unique_ptr<PGresult, ResultClearer>;

// SQLSTATE classes we map to narrower codes.
constexpr std::string_view kUniqueViolation = "23505";
constexpr std::string_view kForeignKeyViolation = "23503";

// Any arbitrary 64-bit key for pg_advisory_xact_lock; "airlock" in ASCII.
constexpr int64_t kMigrationLockKey = 0x616972'6c6f636b;

Error PgError(const PGresult* res, PGconn* conn, std::string_view what) {
  std::string message = std::string(what) + ": ";
  const char* detail = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
  message += detail ? detail : "unknown error";
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) {
    message.pop_back();
  }
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  if (state != nullptr && state == kUniqueViolation) return Error(ErrorCode::kAlreadyExists, message);
  if (state != nullptr && state == kForeignKeyViolation) return Error(ErrorCode::kNotFound, message);
  return Error(ErrorCode::kIo, message);
}

class PostgresConnection final : public Connection {
 public:
  explicit PostgresConnection(ConnPtr conn) : conn_(std::move(conn)) {}
  Backend backend() const override { return Backend::kPostgres; }

  Result<std::vector<Row>> Query(std::string_view sql, std::span<const Param> params) override {
    AIRLOCK_TRY(EnsureConnected());
    std::string command(sql);
    std::vector<std::string> storage(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (size_t i = 0; i < params.size(); ++i) {
      if (std::holds_alternative<int64_t>(params[i])) {
        storage[i] = std::to_string(std::get<int64_t>(params[i]));
        values[i] = storage[i].c_str();
      } else if (std::holds_alternative<std::string>(params[i])) {
        values[i] = std::get<std::string>(params[i]).c_str();
      }
    }
    PgResultPtr res(PQexecParams(conn_.get(), command.c_str(), static_cast<int>(params.size()),
                                 nullptr, values.data(), nullptr, nullptr, /*resultFormat=*/0));
    if (!res) return tl::unexpected(PgError(nullptr, conn_.get(), "query"));
    ExecStatusType status = PQresultStatus(res.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return tl::unexpected(PgError(res.get(), conn_.get(), "query"));
    }
    std::vector<Row> rows;
    int n_rows = PQntuples(res.get());
    int n_cols = PQnfields(res.get());
    rows.reserve(n_rows);
    for (int r = 0; r < n_rows; ++r) {
      Row row;
      row.reserve(n_cols);
      for (int c = 0; c < n_cols; ++c) {
        if (PQgetisnull(res.get(), r, c)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string(PQgetvalue(res.get(), r, c), PQgetlength(res.get(), r, c)));
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  Result<void> ExecScript(std::string_view sql) override {
    AIRLOCK_TRY(EnsureConnected());
    std::string script(sql);
    // PQexec (no parameters) accepts several statements; they run in the caller's transaction.
    PgResultPtr res(PQexec(conn_.get(), script.c_str()));
    if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      return tl::unexpected(PgError(res.get(), conn_.get(), "exec"));
    }
    return {};
  }

  Result<void> Begin() override {
    AIRLOCK_TRY(Exec("BEGIN"));
    in_transaction_ = true;
    return {};
  }
  Result<void> Commit() override {
    // Checked before the flag is cleared, so a lost connection is never "committed" on a fresh one.
    auto connected = EnsureConnected();
    in_transaction_ = false;
    AIRLOCK_TRY(connected);
    return Exec("COMMIT");
  }
  Result<void> Rollback() override {
    in_transaction_ = false;
    return Exec("ROLLBACK");
  }

  Result<void> LockForMigration() override {
    Param p[] = {kMigrationLockKey};
    return Exec("SELECT pg_advisory_xact_lock($1::bigint)", p);
  }

  Result<std::vector<Column>> DescribeSchema() override {
    AIRLOCK_ASSIGN_OR_RETURN(
        auto cols,
        Query("SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
              "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
              {}));
    std::vector<Column> columns;
    for (const Row& c : cols) {
      columns.push_back({c[0].value_or(""), c[1].value_or(""), c[2].value_or(""),
                         c[3].value_or("YES") == "NO"});
    }
    return columns;
  }

 private:
  // After a server restart or a dropped connection, reconnect once -- but never in the middle of a
  // transaction: the statements after a silent reconnect would run outside it (and PostgreSQL answers
  // a COMMIT with no transaction with a mere warning), so half a change could be committed.
  Result<void> EnsureConnected() {
    if (PQstatus(conn_.get()) == CONNECTION_OK) return {};
    if (in_transaction_) {
      return MakeError(ErrorCode::kIo, "connection to PostgreSQL lost during a transaction");
    }
    PQreset(conn_.get());
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
      return tl::unexpected(PgError(nullptr, conn_.get(), "reconnect"));
    }
    PgResultPtr res(PQexec(conn_.get(), "SET client_min_messages = warning"));
    return {};
  }

  ConnPtr conn_;
  bool in_transaction_ = false;
};

}  // namespace

Result<std::unique_ptr<Connection>> OpenPostgresConnection(const std::string& conninfo) {
  ConnPtr conn(PQconnectdb(conninfo.c_str()));
  if (!conn) return MakeError(ErrorCode::kIo, "connect: out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    // The message names host and port but never the password (libpq does not echo it).
    return tl::unexpected(PgError(nullptr, conn.get(), "connect"));
  }
  auto pg = std::make_unique<PostgresConnection>(std::move(conn));
  // Quiet NOTICEs ("relation already exists, skipping") must not reach stderr of the server.
  AIRLOCK_TRY(pg->Exec("SET client_min_messages = warning"));
  return std::unique_ptr<Connection>(std::move(pg));
}

}  // namespace airlock::storage
