// Internal to the storage module: the checks every row passes before it is written, the column
// lists, and the conversions between rows (every value as text) and the Store's structs, shared by
// the SQL store (sql_store.cc). Portable between SQLite and PostgreSQL.
#ifndef AIRLOCK_STORAGE_SQL_ROWS_H_
#define AIRLOCK_STORAGE_SQL_ROWS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "storage/connection.h"
#include "storage/store.h"

namespace airlock::storage::sql_rows {

// Column lists, in the order the *FromRow functions read them (C/R: qualified for joins).
inline constexpr std::string_view kAppColumns =
    "app_id, display_name, created_at, enroll_token_sha256, app_key, enroll_policy";
inline constexpr std::string_view kChannelColumns =
    "app_id, name, is_default, allow_self_assign, ios, android, electron, min_native_version, "
    "rollout_percent, paused, current_version, rolled_back, approval_required, "
    "approval_rollout_above";
inline constexpr size_t kChannelColumnCount = 14;
inline constexpr std::string_view kReleaseColumns =
    "app_id, version, target_name, sha256, length, encryption, capgo_session_key, capgo_checksum, "
    "created_at, format, capgo_target, capgo_sha256, capgo_length, capgo_key_id, capgo_manifest";
inline constexpr std::string_view kReleaseColumnsR =
    "r.app_id, r.version, r.target_name, r.sha256, r.length, r.encryption, r.capgo_session_key, "
    "r.capgo_checksum, r.created_at, r.format, r.capgo_target, r.capgo_sha256, r.capgo_length, "
    "r.capgo_key_id, r.capgo_manifest";
inline constexpr std::string_view kChannelColumnsC =
    "c.app_id, c.name, c.is_default, c.allow_self_assign, c.ios, c.android, c.electron, "
    "c.min_native_version, c.rollout_percent, c.paused, c.current_version, c.rolled_back, "
    "c.approval_required, c.approval_rollout_above";
inline constexpr std::string_view kDeviceColumns =
    "app_id, device_id, public_key, platform, channel_override, last_seen, signing_key, status";
inline constexpr std::string_view kEventColumns =
    "app_id, device_id, seq, version, kind, reason_code, detail, occurred_at, received_at";

// kInvalidArgument naming `what` (or the field) when a value is out of the stored range.
Result<void> CheckId(std::string_view value, std::string_view what);
Result<void> CheckText(std::string_view value, std::string_view what);
Result<void> CheckVersion(std::string_view version, std::string_view what);
Result<void> CheckHex(std::string_view value, size_t length, std::string_view what);
Result<void> CheckChannel(const Channel& c);
Result<void> CheckRelease(const Release& r);
Result<void> CheckDevice(const Device& d);
Result<void> CheckEvent(const DeviceEvent& e);
// Statement parameters: NULL for nullopt; booleans as INTEGER 0/1.
Param Opt(const std::optional<std::string>& value);
Param Bool(bool value);
Param OptInt(const std::optional<int64_t>& value);
// Column readers (drivers return every value as text); kInternal for a cell that does not parse.
Result<int64_t> Int(const std::optional<std::string>& cell);
std::string Str(const std::optional<std::string>& cell);
Result<std::optional<int64_t>> OptionalInt(const std::optional<std::string>& cell);
Result<Channel> ChannelFromRow(const Row& r);
Result<Release> ReleaseFromRow(const Row& r);
Result<Device> DeviceFromRow(const Row& r);
Result<DeviceEvent> EventFromRow(const Row& r);

template <typename T, typename F>
Result<std::vector<T>> MapRows(const std::vector<Row>& rows, F from_row) {
  std::vector<T> out;
  out.reserve(rows.size());
  for (const Row& r : rows) {
    AIRLOCK_ASSIGN_OR_RETURN(T value, from_row(r));
    out.push_back(std::move(value));
  }
  return out;
}

// Runs `body` in a write transaction on `conn`: committed when it succeeds, rolled back otherwise.
template <typename F>
Result<void> InTransaction(Connection& conn, F body) {
  AIRLOCK_TRY(conn.Begin());
  Result<void> result = body();
  if (!result) {
    (void)conn.Rollback();
    return result;
  }
  // A COMMIT that fails (SQLite busy past the timeout) leaves the transaction open on SQLite; end
  // it so the connection stays usable.
  auto committed = conn.Commit();
  if (!committed) (void)conn.Rollback();
  return committed;
}

inline std::string Sql(std::string_view a, std::string_view b, std::string_view c) {
  std::string s(a);
  s += b;
  s += c;
  return s;
}

}  // namespace airlock::storage::sql_rows

#endif  // AIRLOCK_STORAGE_SQL_ROWS_H_
