// The Store over a Connection. SQL here is portable between SQLite and PostgreSQL: $N placeholders,
// INTEGER 0/1 booleans, ON CONFLICT DO NOTHING and RETURNING (SQLite >= 3.35, PostgreSQL >= 9.5).
#include "storage/sql_store.h"

#include <charconv>
#include <mutex>
#include <string>

#include "common/semver.h"

namespace airlock::storage {
namespace {

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
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(what) + " must be " + std::to_string(length) +
                         " lower-case hex digits");
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
    if (r.capgo_target->empty()) return MakeError(ErrorCode::kInvalidArgument, "empty capgo target");
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

constexpr std::string_view kAppColumns =
    "app_id, display_name, created_at, enroll_token_sha256, app_key, enroll_policy";

constexpr std::string_view kChannelColumns =
    "app_id, name, is_default, allow_self_assign, ios, android, electron, min_native_version, "
    "rollout_percent, paused, current_version, rolled_back";
constexpr size_t kChannelColumnCount = 12;

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
  return c;
}

constexpr std::string_view kReleaseColumns =
    "app_id, version, target_name, sha256, length, encryption, capgo_session_key, capgo_checksum, "
    "created_at, format, capgo_target, capgo_sha256, capgo_length";
// The same columns qualified by table aliases (for the join of ListChannelReleases).
constexpr std::string_view kReleaseColumnsR =
    "r.app_id, r.version, r.target_name, r.sha256, r.length, r.encryption, r.capgo_session_key, "
    "r.capgo_checksum, r.created_at, r.format, r.capgo_target, r.capgo_sha256, r.capgo_length";
constexpr std::string_view kChannelColumnsC =
    "c.app_id, c.name, c.is_default, c.allow_self_assign, c.ios, c.android, c.electron, "
    "c.min_native_version, c.rollout_percent, c.paused, c.current_version, c.rolled_back";

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
  return rel;
}

constexpr std::string_view kDeviceColumns =
    "app_id, device_id, public_key, platform, channel_override, last_seen, signing_key, status";

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

constexpr std::string_view kEventColumns =
    "app_id, device_id, seq, version, kind, reason_code, detail, occurred_at, received_at";

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

std::string Sql(std::string_view a, std::string_view b, std::string_view c) {
  std::string s(a);
  s += b;
  s += c;
  return s;
}

class SqlStore final : public Store {
 public:
  explicit SqlStore(std::unique_ptr<Connection> conn) : conn_(std::move(conn)) {}

  Result<int64_t> SchemaVersion() override {
    std::lock_guard lock(mu_);
    AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                             conn_->Query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {}));
    if (rows.empty()) return MakeError(ErrorCode::kInternal, "no schema version");
    return Int(rows[0][0]);
  }

  Result<void> CreateApp(const App& app) override {
    AIRLOCK_TRY(CheckId(app.app_id, "app id"));
    AIRLOCK_TRY(CheckText(app.display_name, "display name"));
    if (app.enroll_token_sha256) {
      AIRLOCK_TRY(CheckHex(*app.enroll_token_sha256, 64, "enrollment token hash"));
    }
    if (app.app_key) AIRLOCK_TRY(CheckText(*app.app_key, "app key"));
    std::lock_guard lock(mu_);
    Param p[] = {app.app_id,         app.display_name,
                 app.created_at,     Opt(app.enroll_token_sha256),
                 Opt(app.app_key),   std::string(EnrollPolicyName(app.enroll_policy))};
    return conn_->Exec(
        Sql("INSERT INTO apps (", kAppColumns, ") VALUES ($1, $2, $3, $4, $5, $6)"), p);
  }

  Result<void> SetEnrollTokenHash(std::string_view app_id, std::string_view sha256_hex) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckHex(sha256_hex, 64, "enrollment token hash"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), std::string(sha256_hex)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn_->Query("UPDATE apps SET enroll_token_sha256 = $2 WHERE app_id = $1 RETURNING app_id", p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no app " + std::string(app_id));
    return {};
  }

  Result<App> GetApp(std::string_view app_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn_->Query(Sql("SELECT ", kAppColumns, " FROM apps WHERE app_id = $1"), p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no app " + std::string(app_id));
    return AppFromRow(rows[0]);
  }

  Result<std::vector<App>> ListApps() override {
    std::lock_guard lock(mu_);
    Param p[] = {static_cast<int64_t>(kMaxListLimit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn_->Query(Sql("SELECT ", kAppColumns, " FROM apps ORDER BY app_id LIMIT $1"), p));
    return MapRows<App>(rows, AppFromRow);
  }

  Result<void> CreateChannel(const Channel& c) override {
    AIRLOCK_TRY(CheckChannel(c));
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Result<void> {
      if (c.is_default) AIRLOCK_TRY(ClearDefault(c.app_id, c.name));
      auto p = ChannelParams(c);
      return conn_->Exec(Sql("INSERT INTO channels (", kChannelColumns,
                             ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"),
                         p);
    });
  }

  Result<void> UpdateChannel(const Channel& c) override {
    AIRLOCK_TRY(CheckChannel(c));
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Result<void> {
      if (c.is_default) AIRLOCK_TRY(ClearDefault(c.app_id, c.name));
      auto all = ChannelParams(c);
      // Settings only ($1..$10 of ChannelParams): the release pointer is not written (store.h).
      std::span<const Param> p(all.data(), 10);
      AIRLOCK_ASSIGN_OR_RETURN(
          auto rows,
          conn_->Query("UPDATE channels SET is_default = $3, allow_self_assign = $4, ios = $5, "
                       "android = $6, electron = $7, min_native_version = $8, rollout_percent = $9, "
                       "paused = $10 "
                       "WHERE app_id = $1 AND name = $2 "
                       "RETURNING name",
                       p));
      if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no channel " + c.name);
      return {};
    });
  }

  Result<Channel> GetChannel(std::string_view app_id, std::string_view name) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckId(name, "channel name"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), std::string(name)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn_->Query(Sql("SELECT ", kChannelColumns,
                                    " FROM channels WHERE app_id = $1 AND name = $2"),
                                p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no channel " + std::string(name));
    return ChannelFromRow(rows[0]);
  }

  Result<Channel> GetDefaultChannel(std::string_view app_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn_->Query(Sql("SELECT ", kChannelColumns,
                                    " FROM channels WHERE app_id = $1 AND is_default = 1"),
                                p));
    if (rows.empty()) {
      return MakeError(ErrorCode::kNotFound, "app " + std::string(app_id) + " has no default channel");
    }
    return ChannelFromRow(rows[0]);
  }

  Result<std::vector<Channel>> ListChannels(std::string_view app_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), static_cast<int64_t>(kMaxListLimit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn_->Query(Sql("SELECT ", kChannelColumns,
                                    " FROM channels WHERE app_id = $1 ORDER BY name LIMIT $2"),
                                p));
    return MapRows<Channel>(rows, ChannelFromRow);
  }

  Result<std::vector<ChannelRelease>> ListChannelReleases(std::string_view app_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), static_cast<int64_t>(kMaxListLimit)};
    std::string sql = "SELECT ";
    sql += kChannelColumnsC;
    sql += ", ";
    sql += kReleaseColumnsR;
    sql +=
        " FROM channels c LEFT JOIN releases r ON r.app_id = c.app_id AND r.version = "
        "c.current_version WHERE c.app_id = $1 ORDER BY c.name LIMIT $2";
    AIRLOCK_ASSIGN_OR_RETURN(auto rows, conn_->Query(sql, p));
    std::vector<ChannelRelease> out;
    out.reserve(rows.size());
    for (const Row& row : rows) {
      ChannelRelease cr;
      AIRLOCK_ASSIGN_OR_RETURN(cr.channel, ChannelFromRow(row));
      if (row.size() > kChannelColumnCount && row[kChannelColumnCount]) {
        Row release_row(row.begin() + kChannelColumnCount, row.end());
        AIRLOCK_ASSIGN_OR_RETURN(auto release, ReleaseFromRow(release_row));
        cr.release = std::move(release);
      }
      out.push_back(std::move(cr));
    }
    return out;
  }

  Result<void> SetChannelCurrentVersion(std::string_view app_id, std::string_view channel,
                                        std::string_view version, bool rolled_back) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckId(channel, "channel name"));
    AIRLOCK_TRY(CheckVersion(version, "version"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), std::string(channel), std::string(version), Bool(rolled_back)};
    // The foreign key (app_id, current_version) -> releases reports a missing release as kNotFound.
    AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                             conn_->Query("UPDATE channels SET current_version = $3, rolled_back = $4 "
                                          "WHERE app_id = $1 AND name = $2 RETURNING name",
                                          p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no channel " + std::string(channel));
    return {};
  }

  Result<void> CreateRelease(const Release& r) override {
    AIRLOCK_TRY(CheckRelease(r));
    std::lock_guard lock(mu_);
    return InsertRelease(r);
  }

  Result<void> PublishRelease(const Release& r, std::string_view channel) override {
    AIRLOCK_TRY(CheckRelease(r));
    AIRLOCK_TRY(CheckId(channel, "channel name"));
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Result<void> {
      AIRLOCK_TRY(InsertRelease(r));
      Param p[] = {r.app_id, std::string(channel), r.version};
      AIRLOCK_ASSIGN_OR_RETURN(auto rows, conn_->Query("UPDATE channels SET current_version = $3, rolled_back = 0 "
                                                       "WHERE app_id = $1 AND name = $2 "
                                                       "RETURNING name",
                                                       p));
      if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no channel " + std::string(channel));
      return {};
    });
  }

  Result<Release> GetRelease(std::string_view app_id, std::string_view version) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckVersion(version, "version"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), std::string(version)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn_->Query(Sql("SELECT ", kReleaseColumns,
                                    " FROM releases WHERE app_id = $1 AND version = $2"),
                                p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no release " + std::string(version));
    return ReleaseFromRow(rows[0]);
  }

  Result<std::vector<Release>> ListReleases(std::string_view app_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), static_cast<int64_t>(kMaxListLimit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn_->Query(Sql("SELECT ", kReleaseColumns,
                         " FROM releases WHERE app_id = $1 "
                         "ORDER BY created_at DESC, version DESC LIMIT $2"),
                     p));
    return MapRows<Release>(rows, ReleaseFromRow);
  }

  Result<void> CreateDevice(const Device& d) override {
    AIRLOCK_TRY(CheckDevice(d));
    std::lock_guard lock(mu_);
    Param p[] = {d.app_id,    d.device_id,         d.public_key,
                 d.platform,  Opt(d.channel_override), d.last_seen,
                 Opt(d.signing_key), std::string(DeviceStatusName(d.status))};
    return conn_->Exec(
        Sql("INSERT INTO devices (", kDeviceColumns, ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
        p);
  }

  Result<void> UpdateDevice(const Device& d) override {
    AIRLOCK_TRY(CheckDevice(d));
    std::lock_guard lock(mu_);
    Param p[] = {d.app_id,   d.device_id,         d.public_key,
                 d.platform, Opt(d.channel_override), d.last_seen,
                 Opt(d.signing_key)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn_->Query("UPDATE devices SET public_key = $3, platform = $4, channel_override = $5, "
                     "last_seen = $6, signing_key = $7 WHERE app_id = $1 AND device_id = $2 "
                     "RETURNING device_id",
                     p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no device " + d.device_id);
    return {};
  }

  Result<void> SetDeviceStatus(std::string_view app_id, std::string_view device_id,
                               DeviceStatus status) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckId(device_id, "device id"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), std::string(device_id),
                 std::string(DeviceStatusName(status))};
    AIRLOCK_ASSIGN_OR_RETURN(auto rows, conn_->Query("UPDATE devices SET status = $3 WHERE "
                                                     "app_id = $1 AND device_id = $2 "
                                                     "RETURNING device_id",
                                                     p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no device " + std::string(device_id));
    return {};
  }

  Result<void> SetEnrollPolicy(std::string_view app_id, EnrollPolicy policy) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), std::string(EnrollPolicyName(policy))};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn_->Query("UPDATE apps SET enroll_policy = $2 WHERE app_id = $1 RETURNING app_id", p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no app " + std::string(app_id));
    return {};
  }

  Result<size_t> AddPreauthorizedKeys(std::span<const PreauthorizedKey> keys) override {
    if (keys.size() > kMaxEventBatch) {
      return MakeError(ErrorCode::kLimitExceeded, "more than 1000 keys in one batch");
    }
    for (const PreauthorizedKey& k : keys) {
      AIRLOCK_TRY(CheckId(k.app_id, "app id"));
      AIRLOCK_TRY(CheckHex(k.signing_key, 64, "signing key"));
      if (k.device_id) AIRLOCK_TRY(CheckId(*k.device_id, "device id"));
    }
    std::lock_guard lock(mu_);
    size_t added = 0;
    AIRLOCK_TRY(InTransaction([&]() -> Result<void> {
      for (const PreauthorizedKey& k : keys) {
        Param p[] = {k.app_id, k.signing_key, Opt(k.device_id), k.created_at};
        AIRLOCK_ASSIGN_OR_RETURN(
            auto rows, conn_->Query("INSERT INTO device_preauth (app_id, signing_key, device_id, "
                                    "created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (app_id, "
                                    "signing_key) DO NOTHING RETURNING signing_key",
                                    p));
        added += rows.size();
      }
      return {};
    }));
    return added;
  }

  Result<std::vector<PreauthorizedKey>> ListPreauthorizedKeys(std::string_view app_id,
                                                              size_t limit) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckLimit(limit));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), static_cast<int64_t>(limit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn_->Query("SELECT app_id, signing_key, device_id, created_at FROM "
                                "device_preauth WHERE app_id = $1 ORDER BY signing_key LIMIT $2",
                                p));
    return MapRows<PreauthorizedKey>(rows, [](const Row& r) -> Result<PreauthorizedKey> {
      PreauthorizedKey k{Str(r[0]), Str(r[1]), r[2]};
      AIRLOCK_ASSIGN_OR_RETURN(k.created_at, Int(r[3]));
      return k;
    });
  }

  Result<void> ClaimPreauthorizedKey(std::string_view app_id, std::string_view signing_key,
                                     std::string_view device_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckHex(signing_key, 64, "signing key"));
    AIRLOCK_TRY(CheckId(device_id, "device id"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), std::string(signing_key), std::string(device_id)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn_->Query("UPDATE device_preauth SET device_id = $3 WHERE app_id = $1 AND "
                                "signing_key = $2 AND (device_id IS NULL OR device_id = $3) "
                                "RETURNING signing_key",
                                p));
    if (!rows.empty()) return {};
    Param q[] = {std::string(app_id), std::string(signing_key)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto found,
        conn_->Query("SELECT device_id FROM device_preauth WHERE app_id = $1 AND signing_key = $2",
                     q));
    if (found.empty()) return MakeError(ErrorCode::kNotFound, "signing key is not preauthorized");
    return MakeError(ErrorCode::kAlreadyExists, "signing key is preauthorized for another device");
  }

  Result<void> PutWrappedKey(const WrappedKey& k) override {
    AIRLOCK_TRY(CheckId(k.app_id, "app id"));
    AIRLOCK_TRY(CheckId(k.device_id, "device id"));
    AIRLOCK_TRY(CheckHex(k.sha256, 64, "sha256"));
    AIRLOCK_TRY(CheckHex(k.public_key, 64, "device public key"));
    AIRLOCK_TRY(CheckText(k.wrapped_key, "wrapped key"));
    std::lock_guard lock(mu_);
    Param p[] = {k.app_id, k.device_id, k.sha256, k.public_key, k.wrapped_key, k.created_at};
    return conn_->Exec("INSERT INTO device_wrapped_keys (app_id, device_id, sha256, public_key, "
                    "wrapped_key, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (app_id, "
                    "device_id, sha256) DO UPDATE SET public_key = excluded.public_key, "
                    "wrapped_key = excluded.wrapped_key, created_at = excluded.created_at WHERE "
                    "device_wrapped_keys.public_key <> excluded.public_key",
                    p);  // a foreign-key violation (unknown device) is kNotFound
  }

  Result<WrappedKey> GetWrappedKey(std::string_view app_id, std::string_view device_id,
                                   std::string_view sha256) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckId(device_id, "device id"));
    AIRLOCK_TRY(CheckHex(sha256, 64, "sha256"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), std::string(device_id), std::string(sha256)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn_->Query("SELECT app_id, device_id, sha256, public_key, wrapped_key, "
                                "created_at FROM device_wrapped_keys WHERE app_id = $1 AND "
                                "device_id = $2 AND sha256 = $3",
                                p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no wrapped key");
    WrappedKey k{Str(rows[0][0]), Str(rows[0][1]), Str(rows[0][2]), Str(rows[0][3]),
                 Str(rows[0][4])};
    AIRLOCK_ASSIGN_OR_RETURN(k.created_at, Int(rows[0][5]));
    return k;
  }

  Result<void> TouchDevice(std::string_view app_id, std::string_view device_id,
                           int64_t last_seen) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckId(device_id, "device id"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), std::string(device_id), last_seen};
    AIRLOCK_ASSIGN_OR_RETURN(auto rows, conn_->Query("UPDATE devices SET last_seen = $3 WHERE "
                                                     "app_id = $1 AND device_id = $2 "
                                                     "RETURNING device_id",
                                                     p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no device " + std::string(device_id));
    return {};
  }

  Result<Device> GetDevice(std::string_view app_id, std::string_view device_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckId(device_id, "device id"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), std::string(device_id)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn_->Query(Sql("SELECT ", kDeviceColumns,
                                    " FROM devices WHERE app_id = $1 AND device_id = $2"),
                                p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no device " + std::string(device_id));
    return DeviceFromRow(rows[0]);
  }

  Result<std::vector<Device>> ListDevices(std::string_view app_id, size_t limit) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckLimit(limit));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), static_cast<int64_t>(limit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn_->Query(Sql("SELECT ", kDeviceColumns,
                                    " FROM devices WHERE app_id = $1 ORDER BY device_id LIMIT $2"),
                                p));
    return MapRows<Device>(rows, DeviceFromRow);
  }

  Result<std::vector<ChannelOverride>> ListChannelOverrides(std::string_view app_id,
                                                            size_t limit) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    if (limit == 0 || limit > kMaxOverrideListLimit) {
      return MakeError(ErrorCode::kInvalidArgument, "override list limit must be 1 to 1000000");
    }
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), static_cast<int64_t>(limit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn_->Query("SELECT device_id, channel_override FROM devices WHERE app_id = $1 "
                                "AND channel_override IS NOT NULL ORDER BY device_id LIMIT $2",
                                p));
    std::vector<ChannelOverride> out;
    out.reserve(rows.size());
    for (const Row& row : rows) out.push_back(ChannelOverride{Str(row[0]), Str(row[1])});
    return out;
  }

  Result<size_t> AppendDeviceEvents(std::span<const DeviceEvent> events,
                                    std::optional<EventQuota> quota) override {
    if (events.size() > kMaxEventBatch) {
      return MakeError(ErrorCode::kLimitExceeded, "more than 1000 events in one batch");
    }
    for (const DeviceEvent& e : events) {
      AIRLOCK_TRY(CheckEvent(e));
      if (quota && (e.app_id != events[0].app_id || e.device_id != events[0].device_id)) {
        return MakeError(ErrorCode::kInvalidArgument, "a quota batch must be of one device");
      }
    }
    std::lock_guard lock(mu_);
    size_t stored = 0;
    AIRLOCK_TRY(InTransaction([&]() -> Result<void> {
      int64_t recent = 0;
      if (quota && !events.empty()) {
        // The no-op write locks the device's row (PostgreSQL) or the database (SQLite) until the
        // commit, so two reports of one device cannot both pass the count below.
        Param d[] = {events[0].app_id, events[0].device_id};
        AIRLOCK_TRY(conn_->Exec(
            "UPDATE devices SET last_seen = last_seen WHERE app_id = $1 AND device_id = $2", d));
        Param q[] = {events[0].app_id, events[0].device_id, quota->since};
        AIRLOCK_ASSIGN_OR_RETURN(
            auto rows, conn_->Query("SELECT COUNT(*) FROM device_events WHERE app_id = $1 AND "
                                    "device_id = $2 AND received_at >= $3",
                                    q));
        AIRLOCK_ASSIGN_OR_RETURN(recent, Int(rows[0][0]));
      }
      for (const DeviceEvent& e : events) {
        Param p[] = {e.app_id, e.device_id,  e.seq,         e.version,    e.kind,
                     e.reason_code, e.detail, e.occurred_at, e.received_at};
        AIRLOCK_ASSIGN_OR_RETURN(
            auto rows,
            conn_->Query(Sql("INSERT INTO device_events (", kEventColumns,
                             ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                             "ON CONFLICT (app_id, device_id, seq) DO NOTHING RETURNING seq"),
                         p));
        stored += rows.size();
      }
      if (quota && recent + static_cast<int64_t>(stored) > static_cast<int64_t>(quota->max_events)) {
        return MakeError(ErrorCode::kLimitExceeded,
                         "device " + events[0].device_id + " is over its quota of " +
                             std::to_string(quota->max_events) + " events");
      }
      return {};
    }));
    return stored;
  }

  Result<std::vector<DeviceEvent>> ListDeviceEvents(std::string_view app_id,
                                                    std::string_view device_id,
                                                    size_t limit) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckId(device_id, "device id"));
    AIRLOCK_TRY(CheckLimit(limit));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), std::string(device_id), static_cast<int64_t>(limit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn_->Query(Sql("SELECT ", kEventColumns,
                         " FROM device_events WHERE app_id = $1 AND device_id = $2 "
                         "ORDER BY seq LIMIT $3"),
                     p));
    return MapRows<DeviceEvent>(rows, EventFromRow);
  }

  Result<std::map<std::string, int64_t>> CountEventsByKind(std::string_view app_id,
                                                           std::string_view version) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckVersion(version, "version"));
    std::lock_guard lock(mu_);
    Param p[] = {std::string(app_id), std::string(version)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn_->Query("SELECT kind, COUNT(DISTINCT device_id) FROM device_events "
                                "WHERE app_id = $1 AND version = $2 GROUP BY kind",
                                p));
    std::map<std::string, int64_t> counts;
    for (const Row& r : rows) {
      AIRLOCK_ASSIGN_OR_RETURN(counts[Str(r[0])], Int(r[1]));
    }
    return counts;
  }

 private:
  static Result<App> AppFromRow(const Row& r) {
    App app{Str(r[0]), Str(r[1])};
    AIRLOCK_ASSIGN_OR_RETURN(app.created_at, Int(r[2]));
    app.enroll_token_sha256 = r[3];
    app.app_key = r[4];
    AIRLOCK_ASSIGN_OR_RETURN(app.enroll_policy, ParseEnrollPolicy(Str(r[5])));
    return app;
  }

  static Result<void> CheckLimit(size_t limit) {
    if (limit == 0 || limit > kMaxListLimit) {
      return MakeError(ErrorCode::kInvalidArgument, "list limit must be 1 to 10000");
    }
    return {};
  }

  static std::vector<Param> ChannelParams(const Channel& c) {
    return {c.app_id,   c.name,
            Bool(c.is_default),   Bool(c.allow_self_assign),
            Bool(c.ios),          Bool(c.android),
            Bool(c.electron),     Opt(c.min_native_version),
            int64_t{c.rollout_percent}, Bool(c.paused),
            Opt(c.current_version), Bool(c.rolled_back)};
  }

  // Requires mu_.
  Result<void> ClearDefault(const std::string& app_id, const std::string& keep) {
    Param p[] = {app_id, keep};
    return conn_->Exec(
        "UPDATE channels SET is_default = 0 WHERE app_id = $1 AND name <> $2 AND is_default = 1", p);
  }

  // Requires mu_.
  Result<void> InsertRelease(const Release& r) {
    Param p[] = {r.app_id,
                 r.version,
                 r.target_name,
                 r.sha256,
                 r.length,
                 std::string(EncryptionModeName(r.encryption)),
                 Opt(r.capgo_session_key),
                 Opt(r.capgo_checksum),
                 r.created_at,
                 Opt(r.format),
                 Opt(r.capgo_target),
                 Opt(r.capgo_sha256),
                 OptInt(r.capgo_length)};
    return conn_->Exec(Sql("INSERT INTO releases (", kReleaseColumns,
                           ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"),
                       p);
  }

  // Requires mu_. Runs `body` in a transaction; rolls back if it fails.
  template <typename F>
  Result<void> InTransaction(F body) {
    AIRLOCK_TRY(conn_->Begin());
    Result<void> result = body();
    if (!result) {
      (void)conn_->Rollback();
      return result;
    }
    // A COMMIT that fails (SQLite busy past the timeout) leaves the transaction open on SQLite; end it
    // so the connection stays usable.
    auto committed = conn_->Commit();
    if (!committed) (void)conn_->Rollback();
    return committed;
  }

  std::mutex mu_;
  std::unique_ptr<Connection> conn_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<Store> MakeSqlStore(std::unique_ptr<Connection> conn) {
  return std::make_unique<SqlStore>(std::move(conn));
}

}  // namespace airlock::storage
