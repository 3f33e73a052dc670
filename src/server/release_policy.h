// The server obeys the release rules the targets key signed (metadata/release_rules.h): it makes a
// release current on a channel only when the release's signed custom names that channel, never
// publishes one below the highest signed security floor, and rolls a channel back only to a release
// signed as a rollback target, for that channel, at or above that floor. A database or token holder
// can then at most withhold releases, never re-route or downgrade them.
#ifndef AIRLOCK_SERVER_RELEASE_POLICY_H_
#define AIRLOCK_SERVER_RELEASE_POLICY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "server/app_repo.h"
#include "storage/store.h"

namespace airlock::server {

// The highest security_floor among `targets` (kMalformed for a malformed custom anywhere).
[[nodiscard]] Result<uint64_t> HighestSecurityFloor(const std::vector<TrustedTarget>& targets);

// Whether `target`, listed in `targets`, may be made current on `channel` by a publish:
// kInvalidArgument "target T is not signed for channel C" or "... security_floor F is below the
// highest signed (H)"; kMalformed for a malformed custom.
[[nodiscard]] Result<void> CheckPublishable(const std::vector<TrustedTarget>& targets,
                                            const TrustedTarget& target, std::string_view channel);

// The target of release `version` of `app_id` that `channel` may be rolled back to: signed
// rollback_allowed, naming `channel`, its floor not below the highest in `targets`. kNotFound when no
// target has that version; kInvalidArgument (message says why) when none may be rolled back to.
[[nodiscard]] Result<TrustedTarget> FindRollbackTarget(const std::vector<TrustedTarget>& targets,
                                                       std::string_view app_id,
                                                       std::string_view version,
                                                       std::string_view channel);

// Whether `row`'s current release may be served on its channel by `targets` (the app's current signed
// targets): each blob it serves (bundle, and Capgo zip when set) is a target whose own signed rules
// name this app, version and channel, whose security_floor is not below the highest signed, and which
// is signed rollback_allowed when the channel was rolled back. Anything else, including a malformed
// rule, is false (fail closed).
[[nodiscard]] bool ChannelReleaseAllowed(const std::vector<TrustedTarget>& targets,
                                         const storage::ChannelRelease& row);

// The ChannelCache release gate airlockd uses: reads the app's current signed targets once
// (repo->CurrentTargets) and withholds every row ChannelReleaseAllowed refuses (all of them when there
// are no current targets). `on_withhold` gets one line per release withheld.
std::function<void(std::string_view, std::vector<storage::ChannelRelease>*)> SignedReleaseGate(
    AppRepo* repo, std::function<void(const std::string&)> on_withhold);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_RELEASE_POLICY_H_
