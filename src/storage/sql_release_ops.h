// Internal: the Store's approvals and release statistics over a Connection (sql_store.cc calls
// these on a connection it holds). Portable SQL, as the rest of the store.
#ifndef AIRLOCK_STORAGE_SQL_RELEASE_OPS_H_
#define AIRLOCK_STORAGE_SQL_RELEASE_OPS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "storage/connection.h"
#include "storage/store.h"

namespace airlock::storage::release_ops {

// Inside the caller's transaction (CreateApproval makes one, with the release it may insert first).
Result<Approval> InsertApproval(Connection& conn, const Approval& approval);
Result<Approval> GetApproval(Connection& conn, std::string_view app_id, int64_t id);
Result<std::vector<Approval>> ListApprovals(Connection& conn, std::string_view app_id,
                                            std::string_view status, size_t limit);
Result<Approval> DecideApproval(Connection& conn, std::string_view app_id, int64_t id, bool approve,
                                std::string_view decided_by, int64_t decided_at);
Result<void> SetChannelApproval(Connection& conn, std::string_view app_id, std::string_view channel,
                                bool required, int rollout_above);
Result<ReleaseStats> GetReleaseStats(Connection& conn, std::string_view app_id,
                                     std::string_view version, int64_t active_since, int64_t from,
                                     int64_t bucket);

}  // namespace airlock::storage::release_ops

#endif  // AIRLOCK_STORAGE_SQL_RELEASE_OPS_H_
