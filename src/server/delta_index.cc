#include "server/delta_index.h"

#include "bundle/delta.h"

namespace airlock::server {

std::optional<DeltaTarget> DeltaIndex::Find(std::string_view app_id, std::string_view version,
                                            std::string_view base_version) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  auto it = apps_.find(app_id);
  if (it == apps_.end() || now - it->second.loaded >= ttl_ ||
      (!it->second.releases.contains(version) &&
       now - it->second.loaded >= std::chrono::milliseconds(100))) {
    if (apps_.size() > 10000) apps_.clear();  // bounded by the apps there are
    AppDeltas fresh;
    fresh.loaded = now;
    if (auto targets = repo_->CurrentTargets(app_id)) {
      for (const TrustedTarget& t : *targets) {
        if (auto v = t.custom.find("version"); v != t.custom.end() && v->is_string()) {
          fresh.releases.insert(v->get<std::string>());
        }
        auto d = bundle::ReadDeltaTargetCustom(t.custom);
        if (!d || d->app_id != app_id) continue;
        fresh.by_versions[{d->version, d->base_version}] =
            DeltaTarget{t.name, t.length, t.sha256, d->method};
      }
    }
    it = apps_.insert_or_assign(std::string(app_id), std::move(fresh)).first;
  }
  auto found = it->second.by_versions.find({std::string(version), std::string(base_version)});
  if (found == it->second.by_versions.end()) return std::nullopt;
  return found->second;
}

}  // namespace airlock::server
