#include "storage/store.h"

#include <algorithm>
#include <vector>

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
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown encryption mode (want none, app or device)");
}

std::string_view EnrollPolicyName(EnrollPolicy policy) {
  switch (policy) {
    case EnrollPolicy::kToken:
      return "token";
    case EnrollPolicy::kApprove:
      return "approve";
    case EnrollPolicy::kPreauth:
      return "preauth";
  }
  return "token";
}

Result<EnrollPolicy> ParseEnrollPolicy(std::string_view name) {
  if (name == "token") return EnrollPolicy::kToken;
  if (name == "approve") return EnrollPolicy::kApprove;
  if (name == "preauth") return EnrollPolicy::kPreauth;
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown enrollment policy (want token, approve or preauth)");
}

std::string_view DeviceStatusName(DeviceStatus status) {
  switch (status) {
    case DeviceStatus::kActive:
      return "active";
    case DeviceStatus::kPending:
      return "pending";
    case DeviceStatus::kRevoked:
      return "revoked";
  }
  return "revoked";
}

Result<DeviceStatus> ParseDeviceStatus(std::string_view name) {
  if (name == "active") return DeviceStatus::kActive;
  if (name == "pending") return DeviceStatus::kPending;
  if (name == "revoked") return DeviceStatus::kRevoked;
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown device status (want active, pending or revoked)");
}

Result<std::unique_ptr<Store>> OpenStore(std::string_view url, int64_t now,
                                         size_t pg_connections) {
  AIRLOCK_ASSIGN_OR_RETURN(auto conn, OpenConnection(url));
  AIRLOCK_TRY_CTX(Migrate(*conn, now), "migrate");
  const Backend backend = conn->backend();
  std::vector<std::unique_ptr<Connection>> conns;
  conns.push_back(std::move(conn));
  // PostgreSQL serves the server's threads in parallel; SQLite keeps its single writer.
  const size_t size = backend == Backend::kPostgres ? std::max<size_t>(pg_connections, 1) : 1;
  while (conns.size() < size) {
    AIRLOCK_ASSIGN_OR_RETURN(auto more, OpenConnection(url));
    conns.push_back(std::move(more));
  }
  return MakeSqlStore(std::move(conns));
}

int64_t ReleaseStats::Devices(std::string_view step) const {
  auto it = funnel.find(std::string(step));
  return it == funnel.end() ? 0 : it->second;
}

std::optional<double> ReleaseStats::SuccessRate() const {
  const int64_t confirmed = Devices("confirmed");
  const int64_t ended = confirmed + Devices("failed") + Devices("rolled_back");
  if (ended == 0) return std::nullopt;
  return static_cast<double>(confirmed) / static_cast<double>(ended);
}

}  // namespace airlock::storage
