#include "storage/store.h"

#include "storage/connection.h"
#include "storage/migrations.h"
#include "storage/sql_store.h"

namespace airlock::storage {

std::string_view EncryptionModeName(EncryptionMode mode) {
  switch (mode) {
    case EncryptionMode::kNone:
      return "none";
    case EncryptionMode::kApp:
      return "app";
    case EncryptionMode::kDevice:
      return "device";
  }
  return "none";
}

Result<EncryptionMode> ParseEncryptionMode(std::string_view name) {
  if (name == "none") return EncryptionMode::kNone;
  if (name == "app") return EncryptionMode::kApp;
  if (name == "device") return EncryptionMode::kDevice;
  return MakeError(ErrorCode::kInvalidArgument, "unknown encryption mode (want none, app or device)");
}

Result<std::unique_ptr<Store>> OpenStore(std::string_view url, int64_t now) {
  AIRLOCK_ASSIGN_OR_RETURN(auto conn, OpenConnection(url));
  AIRLOCK_TRY_CTX(Migrate(*conn, now), "migrate");
  return MakeSqlStore(std::move(conn));
}

}  // namespace airlock::storage
