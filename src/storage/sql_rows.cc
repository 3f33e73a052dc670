// Row checks and conversions of the SQL store (storage/sql_rows.h).
#include "storage/sql_rows.h"

#include <charconv>

#include "common/semver.h"

namespace airlock::storage::sql_rows {

Result<void> CheckId(std::string_view value, std::string_view what) {
  if (value.empty() || value.size() > kMaxIdLength) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(what) + " must be 1 to 128 bytes long");
  }
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return MakeError(ErrorCode::kInvalidArgument,
                       std::string(what) + " may only contain letters, digits, '.', '_' and '-'");
    }
  }
  return {};
}

Result<void> CheckText(std::string_view value, std::string_view what) {
  if (value.size() > kMaxTextLength) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " longer than 4096 bytes");
  }
  if (value.find('\0') != std::string_view::npos) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " contains a NUL byte");
  }
  return {};
}

Result<void> CheckVersion(std::string_view version, std::string_view what) {
  AIRLOCK_TRY_CTX(Semver::Parse(version), what);
  return {};
}

Result<void> CheckHex(std::string_view value, size_t length, std::string_view what) {
  bool ok = value.size() == length;
  for (char c : value) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!ok) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        std::string(what) + " must be " + std::to_string(length) + " lower-case hex digits");
  }
  return {};
}

Result<void> CheckChannel(const Channel& c) {
  AIRLOCK_TRY(CheckId(c.app_id, "app id"));
  AIRLOCK_TRY(CheckId(c.name, "channel name"));
  if (c.min_native_version) AIRLOCK_TRY(CheckVersion(*c.min_native_version, "min native version"));
  if (c.current_version) AIRLOCK_TRY(CheckVersion(*c.current_version, "current version"));
  if (c.rollout_percent < 0 || c.rollout_percent > 100) {
    return MakeError(ErrorCode::kInvalidArgument, "rollout percent must be 0 to 100");
  }
  if (c.approval_rollout_above < 0 || c.approval_rollout_above > 100) {
    return MakeError(ErrorCode::kInvalidArgument, "approval rollout threshold must be 0 to 100");
  }
  return {};
}

Result<void> CheckRelease(const Release& r) {
  AIRLOCK_TRY(CheckId(r.app_id, "app id"));
  AIRLOCK_TRY(CheckVersion(r.version, "version"));
  if (r.target_name.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty target name");
  AIRLOCK_TRY(CheckText(r.target_name, "target name"));
  AIRLOCK_TRY(CheckHex(r.sha256, 64, "sha256"));
  if (r.length < 0) return MakeError(ErrorCode::kInvalidArgument, "negative length");
  if (r.capgo_session_key) AIRLOCK_TRY(CheckText(*r.capgo_session_key, "capgo session key"));
  if (r.capgo_checksum) AIRLOCK_TRY(CheckText(*r.capgo_checksum, "capgo checksum"));
  if (r.capgo_key_id && (r.capgo_key_id->empty() || r.capgo_key_id->size() > 64)) {
    return MakeError(ErrorCode::kInvalidArgument, "capgo key id must be 1 to 64 bytes");
  }
  if (r.capgo_key_id) AIRLOCK_TRY(CheckText(*r.capgo_key_id, "capgo key id"));
  if (r.capgo_manifest && r.capgo_manifest->size() > kMaxCapgoManifestText) {
    return MakeError(ErrorCode::kInvalidArgument, "capgo manifest is too large");
  }
  if (r.format && *r.format != "alb" && *r.format != "zip") {
    return MakeError(ErrorCode::kInvalidArgument, "release format must be 'alb' or 'zip'");
  }
  bool any_capgo = r.capgo_target || r.capgo_sha256 || r.capgo_length;
  bool all_capgo = r.capgo_target && r.capgo_sha256 && r.capgo_length;
  if (any_capgo && !all_capgo) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "capgo target, sha256 and length must be given together");
  }
  if (all_capgo) {
    if (r.capgo_target->empty())
      return MakeError(ErrorCode::kInvalidArgument, "empty capgo target");
    AIRLOCK_TRY(CheckText(*r.capgo_target, "capgo target"));
    AIRLOCK_TRY(CheckHex(*r.capgo_sha256, 64, "capgo sha256"));
    if (*r.capgo_length < 0) return MakeError(ErrorCode::kInvalidArgument, "negative capgo length");
  }
  return {};
}

Result<void> CheckDevice(const Device& d) {
  AIRLOCK_TRY(CheckId(d.app_id, "app id"));
  AIRLOCK_TRY(CheckId(d.device_id, "device id"));
  AIRLOCK_TRY(CheckHex(d.public_key, 64, "device public key"));
  AIRLOCK_TRY(CheckId(d.platform, "platform"));
  if (d.channel_override) AIRLOCK_TRY(CheckId(*d.channel_override, "channel override"));
  if (d.signing_key) AIRLOCK_TRY(CheckHex(*d.signing_key, 64, "device signing key"));
  return {};
}

Result<void> CheckEvent(const DeviceEvent& e) {
  AIRLOCK_TRY(CheckId(e.app_id, "app id"));
  AIRLOCK_TRY(CheckId(e.device_id, "device id"));
  if (e.seq < 0) return MakeError(ErrorCode::kInvalidArgument, "negative event seq");
  AIRLOCK_TRY(CheckVersion(e.version, "event version"));
  AIRLOCK_TRY(CheckId(e.kind, "event kind"));
  if (!e.reason_code.empty()) AIRLOCK_TRY(CheckId(e.reason_code, "reason code"));
  AIRLOCK_TRY(CheckText(e.detail, "event detail"));
  return {};
}

Param Opt(const std::optional<std::string>& value) {
  if (value) return *value;
  return std::monostate{};
}
Param Bool(bool value) { return int64_t{value ? 1 : 0}; }
Param OptInt(const std::optional<int64_t>& value) {
  if (value) return *value;
  return std::monostate{};
}

// Column readers: the drivers return every value as text.
Result<int64_t> Int(const std::optional<std::string>& cell) {
  int64_t value = 0;
  if (!cell) return MakeError(ErrorCode::kInternal, "unexpected NULL integer");
  auto [ptr, ec] = std::from_chars(cell->data(), cell->data() + cell->size(), value);
  if (ec != std::errc() || ptr != cell->data() + cell->size()) {
    return MakeError(ErrorCode::kInternal, "integer column holds '" + *cell + "'");
  }
  return value;
}
std::string Str(const std::optional<std::string>& cell) { return cell.value_or(""); }
Result<std::optional<int64_t>> OptionalInt(const std::optional<std::string>& cell) {
  if (!cell) return std::optional<int64_t>();
  AIRLOCK_ASSIGN_OR_RETURN(int64_t value, Int(cell));
  return std::optional<int64_t>(value);
}

Result<Channel> ChannelFromRow(const Row& r) {
  Channel c;
  c.app_id = Str(r[0]);
  c.name = Str(r[1]);
  AIRLOCK_ASSIGN_OR_RETURN(int64_t is_default, Int(r[2]));
  AIRLOCK_ASSIGN_OR_RETURN(int64_t self_assign, Int(r[3]));
  AIRLOCK_ASSIGN_OR_RETURN(int64_t ios, Int(r[4]));
  AIRLOCK_ASSIGN_OR_RETURN(int64_t android, Int(r[5]));
  AIRLOCK_ASSIGN_OR_RETURN(int64_t electron, Int(r[6]));
  AIRLOCK_ASSIGN_OR_RETURN(int64_t percent, Int(r[8]));
  AIRLOCK_ASSIGN_OR_RETURN(int64_t paused, Int(r[9]));
  c.is_default = is_default != 0;
  c.allow_self_assign = self_assign != 0;
  c.ios = ios != 0;
  c.android = android != 0;
  c.electron = electron != 0;
  c.min_native_version = r[7];
  c.rollout_percent = static_cast<int>(percent);
  c.paused = paused != 0;
  c.current_version = r[10];
  AIRLOCK_ASSIGN_OR_RETURN(int64_t rolled_back, Int(r[11]));
  c.rolled_back = rolled_back != 0;
  AIRLOCK_ASSIGN_OR_RETURN(int64_t approval_required, Int(r[12]));
  AIRLOCK_ASSIGN_OR_RETURN(int64_t approval_above, Int(r[13]));
  c.approval_required = approval_required != 0;
  c.approval_rollout_above = static_cast<int>(approval_above);
  return c;
}

// The same columns qualified by table aliases (for the join of ListChannelReleases).

Result<Release> ReleaseFromRow(const Row& r) {
  Release rel;
  rel.app_id = Str(r[0]);
  rel.version = Str(r[1]);
  rel.target_name = Str(r[2]);
  rel.sha256 = Str(r[3]);
  AIRLOCK_ASSIGN_OR_RETURN(rel.length, Int(r[4]));
  AIRLOCK_ASSIGN_OR_RETURN(rel.encryption, ParseEncryptionMode(Str(r[5])));
  rel.capgo_session_key = r[6];
  rel.capgo_checksum = r[7];
  AIRLOCK_ASSIGN_OR_RETURN(rel.created_at, Int(r[8]));
  rel.format = r[9];
  rel.capgo_target = r[10];
  rel.capgo_sha256 = r[11];
  AIRLOCK_ASSIGN_OR_RETURN(rel.capgo_length, OptionalInt(r[12]));
  rel.capgo_key_id = r[13];
  rel.capgo_manifest = r[14];
  return rel;
}

Result<Device> DeviceFromRow(const Row& r) {
  Device d;
  d.app_id = Str(r[0]);
  d.device_id = Str(r[1]);
  d.public_key = Str(r[2]);
  d.platform = Str(r[3]);
  d.channel_override = r[4];
  AIRLOCK_ASSIGN_OR_RETURN(d.last_seen, Int(r[5]));
  d.signing_key = r[6];
  AIRLOCK_ASSIGN_OR_RETURN(d.status, ParseDeviceStatus(Str(r[7])));
  return d;
}

Result<DeviceEvent> EventFromRow(const Row& r) {
  DeviceEvent e;
  e.app_id = Str(r[0]);
  e.device_id = Str(r[1]);
  AIRLOCK_ASSIGN_OR_RETURN(e.seq, Int(r[2]));
  e.version = Str(r[3]);
  e.kind = Str(r[4]);
  e.reason_code = Str(r[5]);
  e.detail = Str(r[6]);
  AIRLOCK_ASSIGN_OR_RETURN(e.occurred_at, Int(r[7]));
  AIRLOCK_ASSIGN_OR_RETURN(e.received_at, Int(r[8]));
  return e;
}

}  // namespace airlock::storage::sql_rows
