// The Store over a Connection. SQL here is portable between SQLite and PostgreSQL: $N placeholders,
// INTEGER 0/1 booleans, ON CONFLICT DO NOTHING and RETURNING (SQLite >= 3.35, PostgreSQL >= 9.5).
#include "storage/sql_store.h"

#include <charconv>
#include <string>
#include <vector>

#include "common/semver.h"
#include "storage/connection_pool.h"
#include "storage/sql_release_ops.h"
#include "storage/sql_rows.h"

namespace airlock::storage {
namespace {

using namespace sql_rows;  // NOLINT(google-build-using-namespace): this store's own row helpers

class SqlStore final : public Store {
 public:
  explicit SqlStore(std::vector<std::unique_ptr<Connection>> conns) : pool_(std::move(conns)) {}

  Result<int64_t> SchemaVersion() override {
    auto conn = pool_.Acquire();
    AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                             conn->Query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {}));
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
    auto conn = pool_.Acquire();
    Param p[] = {app.app_id,         app.display_name,
                 app.created_at,     Opt(app.enroll_token_sha256),
                 Opt(app.app_key),   std::string(EnrollPolicyName(app.enroll_policy))};
    return conn->Exec(
        Sql("INSERT INTO apps (", kAppColumns, ") VALUES ($1, $2, $3, $4, $5, $6)"), p);
  }

  Result<void> SetEnrollTokenHash(std::string_view app_id, std::string_view sha256_hex) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckHex(sha256_hex, 64, "enrollment token hash"));
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), std::string(sha256_hex)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn->Query("UPDATE apps SET enroll_token_sha256 = $2 WHERE app_id = $1 RETURNING app_id", p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no app " + std::string(app_id));
    return {};
  }

  Result<App> GetApp(std::string_view app_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn->Query(Sql("SELECT ", kAppColumns, " FROM apps WHERE app_id = $1"), p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no app " + std::string(app_id));
    return AppFromRow(rows[0]);
  }

  Result<std::vector<App>> ListApps() override {
    auto conn = pool_.Acquire();
    Param p[] = {static_cast<int64_t>(kMaxListLimit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn->Query(Sql("SELECT ", kAppColumns, " FROM apps ORDER BY app_id LIMIT $1"), p));
    return MapRows<App>(rows, AppFromRow);
  }

  Result<void> CreateChannel(const Channel& c) override {
    AIRLOCK_TRY(CheckChannel(c));
    auto conn = pool_.Acquire();
    return sql_rows::InTransaction(*conn, [&]() -> Result<void> {
      if (c.is_default) AIRLOCK_TRY(ClearDefault(*conn, c.app_id, c.name));
      auto p = ChannelParams(c);
      return conn->Exec(Sql("INSERT INTO channels (", kChannelColumns,
                             ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"),
                         p);
    });
  }

  Result<void> UpdateChannel(const Channel& c) override {
    AIRLOCK_TRY(CheckChannel(c));
    auto conn = pool_.Acquire();
    return sql_rows::InTransaction(*conn, [&]() -> Result<void> {
      if (c.is_default) AIRLOCK_TRY(ClearDefault(*conn, c.app_id, c.name));
      auto all = ChannelParams(c);
      // Settings only ($1..$10 of ChannelParams): the release pointer and the approval policy are
      // not written (store.h), and a rollout above the approval threshold is refused here, in the
      // same statement, so a policy another server just switched on cannot be raced.
      std::span<const Param> p(all.data(), 10);
      AIRLOCK_ASSIGN_OR_RETURN(
          auto rows,
          conn->Query("UPDATE channels SET is_default = $3, allow_self_assign = $4, ios = $5, "
                       "android = $6, electron = $7, min_native_version = $8, rollout_percent = $9, "
                       "paused = $10 "
                       "WHERE app_id = $1 AND name = $2 AND (approval_required = 0 OR "
                       "$9 <= rollout_percent OR $9 <= approval_rollout_above) "
                       "RETURNING name",
                       p));
      if (rows.empty()) {
        Param key[] = {c.app_id, c.name};
        AIRLOCK_ASSIGN_OR_RETURN(
            auto found,
            conn->Query("SELECT approval_rollout_above FROM channels WHERE app_id = $1 AND "
                         "name = $2",
                         key));
        if (found.empty()) return MakeError(ErrorCode::kNotFound, "no channel " + c.name);
        return MakeError(ErrorCode::kRollback,
                         "channel " + c.name + " needs an approval for a rollout above " +
                             Str(found[0][0]) + " %");
      }
      return {};
    });
  }

  Result<Channel> GetChannel(std::string_view app_id, std::string_view name) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckId(name, "channel name"));
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), std::string(name)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn->Query(Sql("SELECT ", kChannelColumns,
                                    " FROM channels WHERE app_id = $1 AND name = $2"),
                                p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no channel " + std::string(name));
    return ChannelFromRow(rows[0]);
  }

  Result<Channel> GetDefaultChannel(std::string_view app_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn->Query(Sql("SELECT ", kChannelColumns,
                                    " FROM channels WHERE app_id = $1 AND is_default = 1"),
                                p));
    if (rows.empty()) {
      return MakeError(ErrorCode::kNotFound, "app " + std::string(app_id) + " has no default channel");
    }
    return ChannelFromRow(rows[0]);
  }

  Result<std::vector<Channel>> ListChannels(std::string_view app_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), static_cast<int64_t>(kMaxListLimit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn->Query(Sql("SELECT ", kChannelColumns,
                                    " FROM channels WHERE app_id = $1 ORDER BY name LIMIT $2"),
                                p));
    return MapRows<Channel>(rows, ChannelFromRow);
  }

  Result<std::vector<ChannelRelease>> ListChannelReleases(std::string_view app_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), static_cast<int64_t>(kMaxListLimit)};
    std::string sql = "SELECT ";
    sql += kChannelColumnsC;
    sql += ", ";
    sql += kReleaseColumnsR;
    sql +=
        " FROM channels c LEFT JOIN releases r ON r.app_id = c.app_id AND r.version = "
        "c.current_version WHERE c.app_id = $1 ORDER BY c.name LIMIT $2";
    AIRLOCK_ASSIGN_OR_RETURN(auto rows, conn->Query(sql, p));
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
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), std::string(channel), std::string(version), Bool(rolled_back)};
    // The foreign key (app_id, current_version) -> releases reports a missing release as kNotFound.
    AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                             conn->Query("UPDATE channels SET current_version = $3, rolled_back = $4 "
                                          "WHERE app_id = $1 AND name = $2 RETURNING name",
                                          p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no channel " + std::string(channel));
    return {};
  }

  Result<void> CreateRelease(const Release& r) override {
    AIRLOCK_TRY(CheckRelease(r));
    auto conn = pool_.Acquire();
    return InsertRelease(*conn, r);
  }

  Result<void> PublishRelease(const Release& r, std::string_view channel) override {
    AIRLOCK_TRY(CheckRelease(r));
    AIRLOCK_TRY(CheckId(channel, "channel name"));
    auto conn = pool_.Acquire();
    return sql_rows::InTransaction(*conn, [&]() -> Result<void> {
      AIRLOCK_TRY(InsertRelease(*conn, r));
      Param p[] = {r.app_id, std::string(channel), r.version};
      AIRLOCK_ASSIGN_OR_RETURN(auto rows, conn->Query("UPDATE channels SET current_version = $3, rolled_back = 0 "
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
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), std::string(version)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn->Query(Sql("SELECT ", kReleaseColumns,
                                    " FROM releases WHERE app_id = $1 AND version = $2"),
                                p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no release " + std::string(version));
    return ReleaseFromRow(rows[0]);
  }

  Result<std::vector<Release>> ListReleases(std::string_view app_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), static_cast<int64_t>(kMaxListLimit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn->Query(Sql("SELECT ", kReleaseColumns,
                         " FROM releases WHERE app_id = $1 "
                         "ORDER BY created_at DESC, version DESC LIMIT $2"),
                     p));
    return MapRows<Release>(rows, ReleaseFromRow);
  }

  Result<void> CreateDevice(const Device& d) override {
    AIRLOCK_TRY(CheckDevice(d));
    auto conn = pool_.Acquire();
    Param p[] = {d.app_id,    d.device_id,         d.public_key,
                 d.platform,  Opt(d.channel_override), d.last_seen,
                 Opt(d.signing_key), std::string(DeviceStatusName(d.status))};
    return conn->Exec(
        Sql("INSERT INTO devices (", kDeviceColumns, ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
        p);
  }

  Result<void> UpdateDevice(const Device& d) override {
    AIRLOCK_TRY(CheckDevice(d));
    auto conn = pool_.Acquire();
    Param p[] = {d.app_id,   d.device_id,         d.public_key,
                 d.platform, Opt(d.channel_override), d.last_seen,
                 Opt(d.signing_key)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn->Query("UPDATE devices SET public_key = $3, platform = $4, channel_override = $5, "
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
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), std::string(device_id),
                 std::string(DeviceStatusName(status))};
    // One statement, so a concurrent revoke cannot be undone by an approve that read the row
    // before.
    AIRLOCK_ASSIGN_OR_RETURN(auto rows, conn->Query("UPDATE devices SET status = $3 WHERE "
                                                     "app_id = $1 AND device_id = $2 AND "
                                                     "status <> 'revoked' RETURNING device_id",
                                                     p));
    if (!rows.empty()) return {};
    Param q[] = {std::string(app_id), std::string(device_id)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto found,
        conn->Query("SELECT status FROM devices WHERE app_id = $1 AND device_id = $2", q));
    if (found.empty())
      return MakeError(ErrorCode::kNotFound, "no device " + std::string(device_id));
    if (status == DeviceStatus::kRevoked) return {};
    return MakeError(ErrorCode::kAlreadyExists, "device " + std::string(device_id) + " is revoked");
  }

  Result<void> SetEnrollPolicy(std::string_view app_id, EnrollPolicy policy) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), std::string(EnrollPolicyName(policy))};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn->Query("UPDATE apps SET enroll_policy = $2 WHERE app_id = $1 RETURNING app_id", p));
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
    auto conn = pool_.Acquire();
    size_t added = 0;
    AIRLOCK_TRY(sql_rows::InTransaction(*conn, [&]() -> Result<void> {
      for (const PreauthorizedKey& k : keys) {
        Param p[] = {k.app_id, k.signing_key, Opt(k.device_id), k.created_at};
        AIRLOCK_ASSIGN_OR_RETURN(
            auto rows, conn->Query("INSERT INTO device_preauth (app_id, signing_key, device_id, "
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
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), static_cast<int64_t>(limit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn->Query("SELECT app_id, signing_key, device_id, created_at FROM "
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
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), std::string(signing_key), std::string(device_id)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn->Query("UPDATE device_preauth SET device_id = $3 WHERE app_id = $1 AND "
                                "signing_key = $2 AND (device_id IS NULL OR device_id = $3) "
                                "RETURNING signing_key",
                                p));
    if (!rows.empty()) return {};
    Param q[] = {std::string(app_id), std::string(signing_key)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto found,
        conn->Query("SELECT device_id FROM device_preauth WHERE app_id = $1 AND signing_key = $2",
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
    auto conn = pool_.Acquire();
    Param p[] = {k.app_id, k.device_id, k.sha256, k.public_key, k.wrapped_key, k.created_at};
    return conn->Exec("INSERT INTO device_wrapped_keys (app_id, device_id, sha256, public_key, "
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
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), std::string(device_id), std::string(sha256)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn->Query("SELECT app_id, device_id, sha256, public_key, wrapped_key, "
                                "created_at FROM device_wrapped_keys WHERE app_id = $1 AND "
                                "device_id = $2 AND sha256 = $3",
                                p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no wrapped key");
    WrappedKey k{Str(rows[0][0]), Str(rows[0][1]), Str(rows[0][2]), Str(rows[0][3]),
                 Str(rows[0][4])};
    AIRLOCK_ASSIGN_OR_RETURN(k.created_at, Int(rows[0][5]));
    return k;
  }

  Result<void> TouchDevices(std::span<const DeviceTouch> touches) override {
    if (touches.size() > kMaxTouchBatch) {
      return MakeError(ErrorCode::kInvalidArgument, "at most 500 touches per batch");
    }
    if (touches.empty()) return {};
    std::vector<Param> p;
    p.reserve(touches.size() * 3);
    std::string values;
    for (const DeviceTouch& t : touches) {
      AIRLOCK_TRY(CheckId(t.app_id, "app id"));
      AIRLOCK_TRY(CheckId(t.device_id, "device id"));
      const size_t n = p.size();
      if (!values.empty()) values += ", ";
      values += "($" + std::to_string(n + 1) + ", $" + std::to_string(n + 2) + ", CAST($" +
                std::to_string(n + 3) + " AS BIGINT))";
      p.insert(p.end(), {t.app_id, t.device_id, t.last_seen});
    }
    // VALUES names its columns column1.. on both SQLite (>= 3.33 for UPDATE FROM) and PostgreSQL.
    auto conn = pool_.Acquire();
    return conn->Exec("UPDATE devices SET last_seen = v.column3 FROM (VALUES " + values +
                           ") AS v WHERE devices.app_id = v.column1 AND devices.device_id = "
                           "v.column2 AND devices.last_seen < v.column3",
                       p);
  }

  Result<Device> GetDevice(std::string_view app_id, std::string_view device_id) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckId(device_id, "device id"));
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), std::string(device_id)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn->Query(Sql("SELECT ", kDeviceColumns,
                                    " FROM devices WHERE app_id = $1 AND device_id = $2"),
                                p));
    if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no device " + std::string(device_id));
    return DeviceFromRow(rows[0]);
  }

  Result<std::vector<Device>> ListDevices(std::string_view app_id, size_t limit) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckLimit(limit));
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), static_cast<int64_t>(limit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn->Query(Sql("SELECT ", kDeviceColumns,
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
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), static_cast<int64_t>(limit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn->Query("SELECT device_id, channel_override FROM devices WHERE app_id = $1 "
                                "AND channel_override IS NOT NULL AND signing_key IS NULL AND "
                                "status <> 'revoked' ORDER BY device_id LIMIT $2",
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
    auto conn = pool_.Acquire();
    size_t stored = 0;
    AIRLOCK_TRY(sql_rows::InTransaction(*conn, [&]() -> Result<void> {
      int64_t recent = 0;
      if (quota && !events.empty()) {
        // The no-op write locks the device's row (PostgreSQL) or the database (SQLite) until the
        // commit, so two reports of one device cannot both pass the count below.
        Param d[] = {events[0].app_id, events[0].device_id};
        AIRLOCK_TRY(conn->Exec(
            "UPDATE devices SET last_seen = last_seen WHERE app_id = $1 AND device_id = $2", d));
        Param q[] = {events[0].app_id, events[0].device_id, quota->since};
        AIRLOCK_ASSIGN_OR_RETURN(
            auto rows, conn->Query("SELECT COUNT(*) FROM device_events WHERE app_id = $1 AND "
                                    "device_id = $2 AND received_at >= $3",
                                    q));
        AIRLOCK_ASSIGN_OR_RETURN(recent, Int(rows[0][0]));
      }
      for (const DeviceEvent& e : events) {
        Param p[] = {e.app_id, e.device_id,  e.seq,         e.version,    e.kind,
                     e.reason_code, e.detail, e.occurred_at, e.received_at};
        AIRLOCK_ASSIGN_OR_RETURN(
            auto rows,
            conn->Query(Sql("INSERT INTO device_events (", kEventColumns,
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
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), std::string(device_id), static_cast<int64_t>(limit)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn->Query(Sql("SELECT ", kEventColumns,
                         " FROM device_events WHERE app_id = $1 AND device_id = $2 "
                         "ORDER BY seq LIMIT $3"),
                     p));
    return MapRows<DeviceEvent>(rows, EventFromRow);
  }

  Result<Approval> CreateApproval(const Approval& approval, const Release* release) override {
    if (release) AIRLOCK_TRY(CheckRelease(*release));
    auto conn = pool_.Acquire();
    Approval made;
    AIRLOCK_TRY(sql_rows::InTransaction(*conn, [&]() -> Result<void> {
      if (release) AIRLOCK_TRY(InsertRelease(*conn, *release));
      AIRLOCK_ASSIGN_OR_RETURN(made, release_ops::InsertApproval(*conn, approval));
      return {};
    }));
    return made;
  }
  Result<Approval> GetApproval(std::string_view app_id, int64_t id) override {
    auto conn = pool_.Acquire();
    return release_ops::GetApproval(*conn, app_id, id);
  }
  Result<std::vector<Approval>> ListApprovals(std::string_view app_id, std::string_view status,
                                              size_t limit) override {
    auto conn = pool_.Acquire();
    return release_ops::ListApprovals(*conn, app_id, status, limit);
  }
  Result<Approval> DecideApproval(std::string_view app_id, int64_t id, bool approve,
                                  std::string_view decided_by, int64_t decided_at) override {
    auto conn = pool_.Acquire();
    return release_ops::DecideApproval(*conn, app_id, id, approve, decided_by, decided_at);
  }
  Result<void> SetChannelApproval(std::string_view app_id, std::string_view channel, bool required,
                                  int rollout_above) override {
    auto conn = pool_.Acquire();
    return release_ops::SetChannelApproval(*conn, app_id, channel, required, rollout_above);
  }
  Result<ReleaseStats> GetReleaseStats(std::string_view app_id, std::string_view version,
                                       int64_t active_since, int64_t from,
                                       int64_t bucket) override {
    auto conn = pool_.Acquire();
    return release_ops::GetReleaseStats(*conn, app_id, version, active_since, from, bucket);
  }

  Result<std::map<std::string, int64_t>> CountEventsByKind(std::string_view app_id,
                                                           std::string_view version) override {
    AIRLOCK_TRY(CheckId(app_id, "app id"));
    AIRLOCK_TRY(CheckVersion(version, "version"));
    auto conn = pool_.Acquire();
    Param p[] = {std::string(app_id), std::string(version)};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows, conn->Query("SELECT kind, COUNT(DISTINCT device_id) FROM device_events "
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
            Opt(c.current_version), Bool(c.rolled_back),
            Bool(c.approval_required), int64_t{c.approval_rollout_above}};
  }

  static Result<void> ClearDefault(Connection& conn, const std::string& app_id,
                                   const std::string& keep) {
    Param p[] = {app_id, keep};
    return conn.Exec(
        "UPDATE channels SET is_default = 0 WHERE app_id = $1 AND name <> $2 AND is_default = 1", p);
  }

  static Result<void> InsertRelease(Connection& conn, const Release& r) {
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
                 OptInt(r.capgo_length),
                 Opt(r.capgo_key_id),
                 Opt(r.capgo_manifest)};
    return conn.Exec(Sql("INSERT INTO releases (", kReleaseColumns,
                         ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
                         "$15)"),
                     p);
  }

  ConnectionPool pool_;
};

}  // namespace

std::unique_ptr<Store> MakeSqlStore(std::vector<std::unique_ptr<Connection>> conns) {
  return std::make_unique<SqlStore>(std::move(conns));
}

}  // namespace airlock::storage
