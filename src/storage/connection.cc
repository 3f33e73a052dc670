#include "storage/connection.h"

namespace airlock::storage {

Result<void> Connection::Commit() { return Exec("COMMIT"); }
Result<void> Connection::Rollback() { return Exec("ROLLBACK"); }

Result<void> Connection::Exec(std::string_view sql, std::span<const Param> params) {
  AIRLOCK_TRY(Query(sql, params));
  return {};
}

Result<std::unique_ptr<Connection>> OpenConnection(std::string_view url) {
  if (url.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty database URL");
  if (url.size() > kMaxUrlLength) {
    return MakeError(ErrorCode::kInvalidArgument, "database URL longer than 4096 bytes");
  }
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return OpenPostgresConnection(std::string(url));
  }
  if (url.starts_with("sqlite:")) url.remove_prefix(7);
  if (url.empty()) return MakeError(ErrorCode::kInvalidArgument, "sqlite: URL without a path");
  // Anything else with a scheme ("mysql://...") is a mistake, not a file name.
  if (url.find("://") != std::string_view::npos) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "unsupported database URL scheme (use sqlite:PATH or postgresql://...)");
  }
  return OpenSqliteConnection(std::string(url));
}

}  // namespace airlock::storage
