#include "server/release_policy.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "metadata/release_rules.h"

namespace airlock::server {

namespace {

Result<metadata::ReleaseRules> RulesOf(const TrustedTarget& t) {
  auto rules = metadata::ReadReleaseRules(t.custom);
  if (!rules) return tl::unexpected(rules.error().WithContext("target " + t.name));
  return rules;
}

}  // namespace

Result<uint64_t> HighestSecurityFloor(const std::vector<TrustedTarget>& targets) {
  uint64_t highest = 0;
  for (const TrustedTarget& t : targets) {
    AIRLOCK_ASSIGN_OR_RETURN(metadata::ReleaseRules rules, RulesOf(t));
    highest = std::max(highest, rules.security_floor);
  }
  return highest;
}

Result<void> CheckPublishable(const std::vector<TrustedTarget>& targets,
                              const TrustedTarget& target, std::string_view channel) {
  AIRLOCK_ASSIGN_OR_RETURN(metadata::ReleaseRules rules, RulesOf(target));
  if (!rules.NamesChannel(channel)) {
    return MakeError(ErrorCode::kInvalidArgument, "target " + target.name +
                                                      " is not signed for channel " +
                                                      std::string(channel) + " (custom.channels)");
  }
  AIRLOCK_ASSIGN_OR_RETURN(uint64_t highest, HighestSecurityFloor(targets));
  if (rules.security_floor < highest) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "target " + target.name + " has security_floor " +
                         std::to_string(rules.security_floor) + ", below the highest signed (" +
                         std::to_string(highest) + ")");
  }
  return {};
}

Result<TrustedTarget> FindRollbackTarget(const std::vector<TrustedTarget>& targets,
                                         std::string_view app_id, std::string_view version,
                                         std::string_view channel) {
  AIRLOCK_ASSIGN_OR_RETURN(uint64_t highest, HighestSecurityFloor(targets));
  std::optional<Error> refusal;
  auto refuse = [&](std::string why) {
    if (!refusal) refusal = Error(ErrorCode::kInvalidArgument, std::move(why));
  };
  for (const TrustedTarget& t : targets) {
    AIRLOCK_ASSIGN_OR_RETURN(metadata::ReleaseRules rules, RulesOf(t));
    if (rules.version != version || rules.app_id != app_id) continue;
    if (!rules.rollback_allowed) {
      refuse("target " + t.name +
             " is not signed as a rollback target (custom.rollback_allowed is not true)");
      continue;
    }
    if (!rules.NamesChannel(channel)) {
      refuse("target " + t.name + " is not signed for channel " + std::string(channel) +
             " (custom.channels)");
      continue;
    }
    if (rules.security_floor < highest) {
      refuse("target " + t.name + " has security_floor " + std::to_string(rules.security_floor) +
             ", below the highest listed (" + std::to_string(highest) + ")");
      continue;
    }
    return t;
  }
  if (refusal) return tl::unexpected(*refusal);
  return MakeError(ErrorCode::kNotFound, "the current targets metadata lists no target of version " +
                                             std::string(version));
}

bool ChannelReleaseAllowed(const std::vector<TrustedTarget>& targets,
                           const storage::ChannelRelease& row) {
  if (!row.release) return true;
  const storage::Release& release = *row.release;
  auto highest = HighestSecurityFloor(targets);
  if (!highest) return false;
  // Every blob the row serves (the bundle, and the Capgo zip when there is one) must be a signed
  // target of this release allowed on this channel by its own entry: not below the highest floor
  // (rolled back or not: the flag is the database's word), and signed as a rollback target when the
  // channel was rolled back.
  auto entry_allows = [&](const std::string& sha256) {
    for (const TrustedTarget& t : targets) {
      if (t.sha256 != sha256) continue;
      auto rules = metadata::ReadReleaseRules(t.custom);
      if (!rules || rules->app_id != release.app_id || rules->version != release.version ||
          !rules->NamesChannel(row.channel.name) || rules->security_floor < *highest ||
          (row.channel.rolled_back && !rules->rollback_allowed)) {
        continue;
      }
      return true;
    }
    return false;
  };
  if (!entry_allows(release.sha256)) return false;
  return !release.capgo_sha256 || entry_allows(*release.capgo_sha256);
}

std::function<void(std::string_view, std::vector<storage::ChannelRelease>*)> SignedReleaseGate(
    AppRepo* repo, std::function<void(const std::string&)> on_withhold) {
  // What was last reported per "app/channel", so a withheld row is reported when it starts being
  // withheld (or why changes), not on every reload of the cache. Bounded by the number of channels.
  struct Reported {
    std::mutex mu;
    std::map<std::string, std::string, std::less<>> last;
  };
  auto reported = std::make_shared<Reported>();
  return [repo, reported, on_withhold = std::move(on_withhold)](
             std::string_view app_id, std::vector<storage::ChannelRelease>* rows) {
    const bool serves_any = std::any_of(rows->begin(), rows->end(), [](const auto& row) {
      return row.release.has_value();
    });
    if (!serves_any) return;
    const auto targets = repo->CurrentTargets(app_id);
    for (storage::ChannelRelease& row : *rows) {
      const std::string key = row.channel.app_id + "/" + row.channel.name;
      if (!row.release || (targets && ChannelReleaseAllowed(*targets, row))) {
        std::lock_guard lock(reported->mu);
        reported->last.erase(key);
        continue;
      }
      std::string why = "withholding " + row.channel.app_id + " " + row.release->version +
                        " on channel " + row.channel.name +
                        ": the signed release rules do not allow it" +
                        (targets ? "" : " (" + targets.error().message() + ")");
      row.release.reset();
      {
        std::lock_guard lock(reported->mu);
        auto [it, inserted] = reported->last.try_emplace(key, why);
        if (!inserted && it->second == why) continue;
        it->second = why;
      }
      if (on_withhold) on_withhold(why);
    }
  };
}

}  // namespace airlock::server
