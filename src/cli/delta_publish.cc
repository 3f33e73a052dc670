#include "cli/delta_publish.h"

#include <algorithm>
#include <system_error>

#include "bundle/archive.h"
#include "bundle/delta.h"
#include "cli/app_config.h"
#include "cli/server_command_helpers.h"
#include "common/file.h"
#include "common/semver.h"
#include "metadata/release_rules.h"

namespace airlock::cli {

namespace fs = std::filesystem;

namespace {

Result<fs::path> CacheDir(const std::string& app) {
  AIRLOCK_ASSIGN_OR_RETURN(fs::path config, ConfigDir());
  return config / "releases" / app;
}

// A zip unpacked into `dir`, with its manifest.
Result<bundle::ReleaseFiles> Unpack(const std::string& version, const fs::path& zip,
                                    const fs::path& dir) {
  AIRLOCK_ASSIGN_OR_RETURN(bundle::Manifest manifest, bundle::ScanArchive(zip));
  fs::create_directories(dir);
  AIRLOCK_TRY(bundle::ExtractArchive(zip, manifest, dir));
  return bundle::ReleaseFiles{version, std::move(manifest), dir};
}

}  // namespace

Result<std::vector<MadeDelta>> MakePublishDeltas(const DeltaPlan& plan,
                                                 const metadata::Targets& targets,
                                                 crypto::Signer& signer, ByteSpan content_key,
                                                 std::vector<std::string>* skipped) {
  std::vector<MadeDelta> made;
  if (plan.count == 0) return made;
  AIRLOCK_ASSIGN_OR_RETURN(Semver now, Semver::Parse(plan.version));
  std::vector<std::pair<Semver, std::string>> bases;
  for (const auto& [name, t] : targets.targets) {
    const nlohmann::json custom = t.custom.value_or(nlohmann::json::object());
    if (custom.value("format", "") != "airlock-bundle") continue;
    auto rules = metadata::ReadReleaseRules(custom);
    if (!rules || rules->app_id != plan.app || !rules->NamesChannel(plan.channel)) continue;
    auto v = Semver::Parse(rules->version);
    if (!v || Compare(*v, now) >= 0) continue;
    if (std::none_of(bases.begin(), bases.end(),
                     [&](const auto& b) { return b.second == rules->version; })) {
      bases.emplace_back(*v, rules->version);
    }
  }
  std::sort(bases.begin(), bases.end(),
            [](const auto& a, const auto& b) { return Compare(a.first, b.first) > 0; });
  if (bases.size() > plan.count) bases.resize(plan.count);
  if (bases.empty()) return made;

  AIRLOCK_ASSIGN_OR_RETURN(fs::path cache, CacheDir(plan.app));
  AIRLOCK_ASSIGN_OR_RETURN(bundle::ReleaseFiles target,
                           Unpack(plan.version, plan.new_zip, plan.work_dir / "new"));
  for (const auto& [semver, base_version] : bases) {
    std::error_code ec;
    const fs::path zip = cache / (base_version + ".zip");
    if (!fs::is_regular_file(zip, ec)) {
      skipped->push_back(base_version + ": its files are not in this machine's release cache (" +
                         cache.string() + ")");
      continue;
    }
    auto base = Unpack(base_version, zip, plan.work_dir / ("base-" + base_version));
    if (!base) {
      skipped->push_back(base_version + ": " + base.error().message());
      continue;
    }
    bundle::DeltaOptions options;
    options.app_id = plan.app;
    // A patch needs the base in the device's memory: above the bound, the files the base lacks.
    options.method = bundle::ManifestTotalSize(base->manifest) <= bundle::kMaxDeltaReference / 2
                         ? bundle::DeltaMethod::kPatch
                         : bundle::DeltaMethod::kFiles;
    MadeDelta d;
    d.base_version = base_version;
    d.target_name = "releases/" + plan.version + "/delta-from-" + base_version + ".ald";
    d.file = plan.work_dir / ("delta-from-" + base_version + ".ald");
    auto header = bundle::MakeDelta(*base, target, options, signer, content_key, d.file);
    if (!header) {
      skipped->push_back(base_version + ": " + header.error().message());
      continue;
    }
    const nlohmann::json custom =
        bundle::DeltaTargetCustomJson({plan.app, plan.version, base_version,
                                       std::string(bundle::DeltaMethodName(header->method))});
    AIRLOCK_ASSIGN_OR_RETURN(d.target, TargetFor(d.file, custom));
    if (d.target.length >= plan.bundle_length) {
      skipped->push_back(base_version + ": the delta is no smaller than the bundle");
      continue;
    }
    made.push_back(std::move(d));
  }
  return made;
}

Result<void> CacheReleaseFiles(const std::string& app, const std::string& version,
                               const fs::path& zip, size_t keep) {
  AIRLOCK_ASSIGN_OR_RETURN(fs::path cache, CacheDir(app));
  AIRLOCK_TRY(MakePrivateDirs(cache));
  std::error_code ec;
  const fs::path part = cache / ("." + version + ".zip.part");
  fs::copy_file(zip, part, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::permissions(part, fs::perms::owner_read | fs::perms::owner_write, ec);
  if (!ec) fs::rename(part, cache / (version + ".zip"), ec);
  if (ec) {
    fs::remove(part, ec);
    return MakeError(ErrorCode::kIo, "cannot keep " + version + " in " + cache.string());
  }
  std::vector<std::pair<Semver, fs::path>> kept;
  for (const auto& e : fs::directory_iterator(cache, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= 4 || name.substr(name.size() - 4) != ".zip") continue;
    auto v = Semver::Parse(name.substr(0, name.size() - 4));
    if (v) kept.emplace_back(*v, e.path());
  }
  std::sort(kept.begin(), kept.end(),
            [](const auto& a, const auto& b) { return Compare(a.first, b.first) > 0; });
  for (size_t i = keep; i < kept.size(); ++i) fs::remove(kept[i].second, ec);
  return {};
}

}  // namespace airlock::cli
