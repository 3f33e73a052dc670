// Approvals and release statistics (sql_release_ops.h). SQL here is portable between SQLite and
// PostgreSQL, as in sql_store.cc.
#include "storage/sql_release_ops.h"

#include <string>

#include "storage/sql_rows.h"

namespace airlock::storage::release_ops {
namespace {

using namespace sql_rows;  // NOLINT(google-build-using-namespace): the store's own row helpers

constexpr std::string_view kApprovalColumns =
    "id, app_id, channel, kind, version, rollout_percent, policy_required, policy_rollout_above, "
    "requested_by, requester_lineage, requested_at, status, decided_by, decided_at";

Result<Approval> ApprovalFromRow(const Row& r) {
  Approval a;
  AIRLOCK_ASSIGN_OR_RETURN(a.id, Int(r[0]));
  a.app_id = Str(r[1]);
  a.channel = Str(r[2]);
  a.kind = Str(r[3]);
  a.version = r[4];
  AIRLOCK_ASSIGN_OR_RETURN(a.rollout_percent, OptionalInt(r[5]));
  AIRLOCK_ASSIGN_OR_RETURN(auto required, OptionalInt(r[6]));
  if (required) a.policy_required = *required != 0;
  AIRLOCK_ASSIGN_OR_RETURN(a.policy_rollout_above, OptionalInt(r[7]));
  a.requested_by = Str(r[8]);
  a.requester_lineage = Str(r[9]);
  AIRLOCK_ASSIGN_OR_RETURN(a.requested_at, Int(r[10]));
  a.status = Str(r[11]);
  a.decided_by = r[12];
  AIRLOCK_ASSIGN_OR_RETURN(a.decided_at, OptionalInt(r[13]));
  return a;
}

Result<void> CheckPercent(std::optional<int64_t> value, std::string_view what) {
  if (!value || *value < 0 || *value > 100) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " must be 0 to 100");
  }
  return {};
}

Result<void> CheckApproval(const Approval& a) {
  AIRLOCK_TRY(CheckId(a.app_id, "app id"));
  AIRLOCK_TRY(CheckId(a.channel, "channel name"));
  AIRLOCK_TRY(CheckText(a.requested_by, "requested by"));
  AIRLOCK_TRY(CheckText(a.requester_lineage, "requester root"));
  if (a.kind == "publish") {
    if (!a.version) return MakeError(ErrorCode::kInvalidArgument, "a publish names a version");
    AIRLOCK_TRY(CheckVersion(*a.version, "version"));
  } else if (a.kind == "rollout") {
    AIRLOCK_TRY(CheckPercent(a.rollout_percent, "rollout percent"));
  } else if (a.kind == "policy") {
    if (!a.policy_required) {
      return MakeError(ErrorCode::kInvalidArgument, "a policy change names approval_required");
    }
    AIRLOCK_TRY(CheckPercent(a.policy_rollout_above, "approval rollout threshold"));
  } else {
    return MakeError(ErrorCode::kInvalidArgument,
                     "approval kind must be publish, rollout or policy");
  }
  return {};
}

// Applies an approved change to its channel. kNotFound when the channel (or release) is gone.
Result<void> Apply(Connection& conn, const Approval& a) {
  std::vector<Row> rows;
  if (a.kind == "publish") {
    Param p[] = {a.app_id, a.channel, *a.version};
    AIRLOCK_ASSIGN_OR_RETURN(rows,
                             conn.Query("UPDATE channels SET current_version = $3, rolled_back = 0 "
                                        "WHERE app_id = $1 AND name = $2 RETURNING name",
                                        p));
  } else if (a.kind == "rollout") {
    Param p[] = {a.app_id, a.channel, *a.rollout_percent};
    AIRLOCK_ASSIGN_OR_RETURN(rows, conn.Query("UPDATE channels SET rollout_percent = $3 "
                                              "WHERE app_id = $1 AND name = $2 RETURNING name",
                                              p));
  } else {
    Param p[] = {a.app_id, a.channel, Bool(*a.policy_required), *a.policy_rollout_above};
    AIRLOCK_ASSIGN_OR_RETURN(
        rows, conn.Query("UPDATE channels SET approval_required = $3, approval_rollout_above = $4 "
                         "WHERE app_id = $1 AND name = $2 RETURNING name",
                         p));
  }
  if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no channel " + a.channel);
  return {};
}

}  // namespace

Result<Approval> InsertApproval(Connection& conn, const Approval& approval) {
  AIRLOCK_TRY(CheckApproval(approval));
  Approval a = approval;
  a.status = "pending";
  a.decided_by.reset();
  a.decided_at.reset();
  if (a.version) {
    Param r[] = {a.app_id, *a.version};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto found,
        conn.Query("SELECT version FROM releases WHERE app_id = $1 AND version = $2", r));
    if (found.empty()) return MakeError(ErrorCode::kNotFound, "no release " + *a.version);
  }
  // Ids are MAX + 1: two servers inserting at once on PostgreSQL (READ COMMITTED) are serialized
  // by a transaction-scoped lock; SQLite's BEGIN IMMEDIATE already holds the write lock.
  if (conn.backend() == Backend::kPostgres) {
    AIRLOCK_TRY(conn.Exec("SELECT pg_advisory_xact_lock(7007)"));
  }
  AIRLOCK_ASSIGN_OR_RETURN(auto max, conn.Query("SELECT COALESCE(MAX(id), 0) FROM approvals", {}));
  AIRLOCK_ASSIGN_OR_RETURN(int64_t last, Int(max[0][0]));
  a.id = last + 1;
  std::optional<int64_t> required;
  if (a.policy_required) required = *a.policy_required ? 1 : 0;
  Param p[] = {a.id,
               a.app_id,
               a.channel,
               a.kind,
               Opt(a.version),
               sql_rows::OptInt(a.rollout_percent),
               sql_rows::OptInt(required),
               sql_rows::OptInt(a.policy_rollout_above),
               a.requested_by,
               a.requester_lineage,
               a.requested_at,
               a.status};
  AIRLOCK_TRY(conn.Exec(Sql("INSERT INTO approvals (", kApprovalColumns,
                            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, "
                            "NULL)"),
                        p));
  return a;
}

Result<Approval> GetApproval(Connection& conn, std::string_view app_id, int64_t id) {
  AIRLOCK_TRY(CheckId(app_id, "app id"));
  Param p[] = {std::string(app_id), id};
  AIRLOCK_ASSIGN_OR_RETURN(
      auto rows,
      conn.Query(Sql("SELECT ", kApprovalColumns, " FROM approvals WHERE app_id = $1 AND id = $2"),
                 p));
  if (rows.empty()) {
    return MakeError(ErrorCode::kNotFound, "no approval " + std::to_string(id));
  }
  return ApprovalFromRow(rows[0]);
}

Result<std::vector<Approval>> ListApprovals(Connection& conn, std::string_view app_id,
                                            std::string_view status, size_t limit) {
  AIRLOCK_TRY(CheckId(app_id, "app id"));
  if (limit == 0 || limit > kMaxListLimit) {
    return MakeError(ErrorCode::kInvalidArgument, "list limit must be 1 to 10000");
  }
  if (!status.empty() && status != "pending" && status != "approved" && status != "rejected") {
    return MakeError(ErrorCode::kInvalidArgument, "status must be pending, approved or rejected");
  }
  Param p[] = {std::string(app_id), std::string(status), static_cast<int64_t>(limit)};
  AIRLOCK_ASSIGN_OR_RETURN(
      auto rows, conn.Query(Sql("SELECT ", kApprovalColumns,
                                " FROM approvals WHERE app_id = $1 AND ($2 = '' OR status = $2) "
                                "ORDER BY id DESC LIMIT $3"),
                            p));
  return MapRows<Approval>(rows, ApprovalFromRow);
}

Result<Approval> DecideApproval(Connection& conn, std::string_view app_id, int64_t id, bool approve,
                                std::string_view decided_by, int64_t decided_at) {
  AIRLOCK_TRY(CheckId(app_id, "app id"));
  AIRLOCK_TRY(CheckText(decided_by, "decided by"));
  Approval decided;
  AIRLOCK_TRY(InTransaction(conn, [&]() -> Result<void> {
    Param p[] = {std::string(app_id), id, std::string(approve ? "approved" : "rejected"),
                 std::string(decided_by), decided_at};
    // Only a pending approval moves, once: a second decision (here or on another server) finds
    // no pending row.
    AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                             conn.Query(Sql("UPDATE approvals SET status = $3, decided_by = $4, "
                                            "decided_at = $5 WHERE app_id = $1 AND id = $2 AND "
                                            "status = 'pending' RETURNING ",
                                            kApprovalColumns, ""),
                                        p));
    if (rows.empty()) {
      AIRLOCK_ASSIGN_OR_RETURN(Approval existing, GetApproval(conn, app_id, id));
      return MakeError(ErrorCode::kRollback,
                       "approval " + std::to_string(id) + " is already " + existing.status);
    }
    AIRLOCK_ASSIGN_OR_RETURN(decided, ApprovalFromRow(rows[0]));
    if (approve) AIRLOCK_TRY(Apply(conn, decided));
    return {};
  }));
  return decided;
}

Result<void> SetChannelApproval(Connection& conn, std::string_view app_id, std::string_view channel,
                                bool required, int rollout_above) {
  AIRLOCK_TRY(CheckId(app_id, "app id"));
  AIRLOCK_TRY(CheckId(channel, "channel name"));
  AIRLOCK_TRY(CheckPercent(rollout_above, "approval rollout threshold"));
  Param p[] = {std::string(app_id), std::string(channel), Bool(required), int64_t{rollout_above}};
  AIRLOCK_ASSIGN_OR_RETURN(
      auto rows, conn.Query("UPDATE channels SET approval_required = $3, approval_rollout_above = "
                            "$4 WHERE app_id = $1 AND name = $2 RETURNING name",
                            p));
  if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no channel " + std::string(channel));
  return {};
}

Result<ReleaseStats> GetReleaseStats(Connection& conn, std::string_view app_id,
                                     std::string_view version, int64_t active_since, int64_t from,
                                     int64_t bucket) {
  AIRLOCK_TRY(CheckId(app_id, "app id"));
  AIRLOCK_TRY(CheckVersion(version, "version"));
  if (bucket <= 0) return MakeError(ErrorCode::kInvalidArgument, "bucket must be positive");
  ReleaseStats stats;
  Param av[] = {std::string(app_id), std::string(version)};
  AIRLOCK_ASSIGN_OR_RETURN(auto kinds,
                           conn.Query("SELECT kind, COUNT(DISTINCT device_id) FROM device_events "
                                      "WHERE app_id = $1 AND version = $2 GROUP BY kind",
                                      av));
  for (const Row& r : kinds) {
    AIRLOCK_ASSIGN_OR_RETURN(stats.funnel[Str(r[0])], Int(r[1]));
  }
  AIRLOCK_ASSIGN_OR_RETURN(
      auto reasons,
      conn.Query("SELECT reason_code, COUNT(DISTINCT device_id) FROM device_events "
                 "WHERE app_id = $1 AND version = $2 AND kind IN ('failed', 'rolled_back') "
                 "GROUP BY reason_code",
                 av));
  for (const Row& r : reasons) {
    std::string reason = Str(r[0]);
    AIRLOCK_ASSIGN_OR_RETURN(stats.failed_by_reason[reason.empty() ? "unknown" : reason],
                             Int(r[1]));
  }
  Param active[] = {std::string(app_id), active_since};
  AIRLOCK_ASSIGN_OR_RETURN(
      auto count, conn.Query("SELECT COUNT(*) FROM devices WHERE app_id = $1 AND last_seen >= $2 "
                             "AND status <> 'revoked'",
                             active));
  AIRLOCK_ASSIGN_OR_RETURN(stats.active_devices, Int(count[0][0]));
  // On the release now: its confirmation is the device's latest confirmation or rollback (a
  // rollback reported later means the device went back).
  AIRLOCK_ASSIGN_OR_RETURN(
      auto on,
      conn.Query("SELECT COUNT(DISTINCT e.device_id) FROM device_events e "
                 "JOIN devices d ON d.app_id = e.app_id AND d.device_id = e.device_id "
                 "WHERE e.app_id = $1 AND e.version = $2 AND e.kind = 'confirmed' "
                 "AND d.status <> 'revoked' AND NOT EXISTS (SELECT 1 FROM device_events l "
                 "WHERE l.app_id = e.app_id AND l.device_id = e.device_id AND l.seq > e.seq "
                 "AND l.kind IN ('confirmed', 'rolled_back'))",
                 av));
  AIRLOCK_ASSIGN_OR_RETURN(stats.on_release, Int(on[0][0]));
  Param series[] = {std::string(app_id), std::string(version), from, bucket};
  AIRLOCK_ASSIGN_OR_RETURN(
      auto buckets,
      conn.Query("SELECT (CASE WHEN f.first_at < $3 THEN 0 ELSE (f.first_at - $3) / $4 END) AS b, "
                 "COUNT(*) FROM (SELECT device_id, MIN(received_at) AS first_at FROM device_events "
                 "WHERE app_id = $1 AND version = $2 AND kind = 'confirmed' GROUP BY device_id) f "
                 "GROUP BY b ORDER BY b",
                 series));
  for (const Row& r : buckets) {
    AIRLOCK_ASSIGN_OR_RETURN(int64_t b, Int(r[0]));
    AIRLOCK_ASSIGN_OR_RETURN(int64_t n, Int(r[1]));
    stats.confirmed_by_bucket.emplace_back(b * bucket, n);
  }
  return stats;
}

}  // namespace airlock::storage::release_ops
