#include "cli/app_trust.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <optional>
#include <utility>

#include "cli/app_config.h"
#include "common/bytes.h"
#include "common/file.h"
#include "common/json.h"

namespace airlock::cli {

namespace fs = std::filesystem;
using metadata::Metadata;
using metadata::Root;
using metadata::Targets;

namespace {

// python-tuf's default bound on root rotations followed in one update (a server cannot keep the
// client walking forever).
constexpr uint64_t kMaxRootRotations = 256;

// A root taken as trust anchor: parsed and signed by a threshold of its own root keys.
Result<Metadata<Root>> ParseAnchor(const std::string& bytes, const std::string& where) {
  auto root = metadata::ParseRoot(bytes);
  if (!root) return tl::unexpected(root.error().WithContext(where));
  if (auto ok = root->signed_data.VerifyDelegate("root", *root); !ok) {
    return tl::unexpected(ok.error().WithContext(where + " is not signed by its own root keys"));
  }
  return std::move(*root);
}

Result<uint64_t> SeenTargetsVersion(const std::string& app_id) {
  AIRLOCK_ASSIGN_OR_RETURN(fs::path path, AppFilePath(app_id, ".state.json"));
  auto text = ReadTextFile(path, kMaxConfigFile);
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) return uint64_t{0};
    return tl::unexpected(text.error());
  }
  auto j = ParseJson(*text, kMaxConfigFile);
  if (!j || !j->is_object() || !j->contains("targets_version") ||
      !(*j)["targets_version"].is_number_unsigned()) {
    return MakeError(ErrorCode::kMalformed,
                     path.string() + " is not an object with an unsigned targets_version");
  }
  return (*j)["targets_version"].get<uint64_t>();
}

Result<void> WriteTargetsVersion(const std::string& app_id, uint64_t version) {
  AIRLOCK_ASSIGN_OR_RETURN(fs::path path, AppFilePath(app_id, ".state.json"));
  AIRLOCK_TRY(MakePrivateDirs(path.parent_path()));
  const nlohmann::json state = {{"targets_version", version}};
  return WriteFileAtomic(path, AsBytes(state.dump(2) + "\n"), 0600);
}

}  // namespace

Result<void> PinTrustedRoot(const std::string& app_id, const std::string& root_bytes) {
  AIRLOCK_ASSIGN_OR_RETURN(fs::path path, AppFilePath(app_id, ".root.json"));
  AIRLOCK_TRY(MakePrivateDirs(path.parent_path()));
  return WriteFileAtomic(path, AsBytes(root_bytes), 0600);
}

Result<TrustedRoot> LoadTrustedRoot(HttpClient& client, const std::string& app_id,
                                    const std::string& trusted_root_file) {
  AIRLOCK_ASSIGN_OR_RETURN(fs::path pinned_path, AppFilePath(app_id, ".root.json"));
  const bool explicit_root = !trusted_root_file.empty();
  const fs::path start_path = explicit_root ? fs::path(trusted_root_file) : pinned_path;
  auto text = ReadTextFile(start_path, metadata::kMaxRootSize);
  if (!text) {
    if (text.error().code() != ErrorCode::kNotFound) return tl::unexpected(text.error());
    if (explicit_root) {
      return MakeError(ErrorCode::kNotFound, "--trusted-root " + trusted_root_file +
                                                 " does not exist");
    }
    return MakeError(ErrorCode::kNotFound,
                     "no trusted root for app " + app_id + " on this machine (" +
                         pinned_path.string() +
                         ", pinned by `airlock app create`); pass --trusted-root FILE, the "
                         "root.json your app ships");
  }
  TrustedRoot trusted;
  trusted.bytes = std::move(*text);
  AIRLOCK_ASSIGN_OR_RETURN(trusted.root, ParseAnchor(trusted.bytes, start_path.string()));
  const uint64_t start_version = trusted.root.signed_data.version;

  // Newer roots, each signed by the old and the new threshold (VerifyRootRotation).
  for (uint64_t n = start_version + 1; n <= start_version + kMaxRootRotations; ++n) {
    const std::string path = "/tuf/" + app_id + "/" + std::to_string(n) + ".root.json";
    AIRLOCK_ASSIGN_OR_RETURN(
        HttpResponse r, client.Request("GET", path, std::nullopt, "", metadata::kMaxRootSize));
    if (r.status == 404) break;
    if (r.status != 200) return tl::unexpected(ServerError("GET", path, r));
    auto next = metadata::ParseRoot(r.body);
    if (!next) return tl::unexpected(next.error().WithContext(path));
    if (auto ok = metadata::VerifyRootRotation(trusted.root, *next); !ok) {
      return tl::unexpected(ok.error().WithContext(
          path + " does not verify from the trusted root v" +
          std::to_string(trusted.root.signed_data.version)));
    }
    trusted.root = std::move(*next);
    trusted.bytes = std::move(r.body);
  }
  // An expired root would make every device refuse updates: never ship or build on one.
  AIRLOCK_TRY(metadata::CheckExpiry(trusted.root.signed_data, std::time(nullptr),
                                    "root v" + std::to_string(trusted.root.signed_data.version)));
  // The pin moves forward along the verified chain; an explicit root is pinned only where none is.
  std::error_code ec;
  const bool pin = explicit_root ? !fs::exists(pinned_path, ec)
                                 : trusted.root.signed_data.version != start_version;
  if (pin) {
    AIRLOCK_TRY(PinTrustedRoot(app_id, trusted.bytes));
  }
  return trusted;
}

Result<Metadata<Targets>> FetchVerifiedTargets(HttpClient& client, const std::string& app_id,
                                               const TrustedRoot& root, uint64_t version) {
  AIRLOCK_ASSIGN_OR_RETURN(uint64_t seen, SeenTargetsVersion(app_id));
  if (version < seen) {
    return MakeError(ErrorCode::kRollback,
                     "the server's targets metadata of app " + app_id + " is v" +
                         std::to_string(version) + ", but this machine already verified v" +
                         std::to_string(seen) + ": the server's state went backwards");
  }
  const std::string path = "/tuf/" + app_id + "/" + std::to_string(version) + ".targets.json";
  AIRLOCK_ASSIGN_OR_RETURN(
      HttpResponse r, client.Request("GET", path, std::nullopt, "", metadata::kMaxTargetsSize));
  if (r.status != 200) return tl::unexpected(ServerError("GET", path, r));
  auto targets = metadata::ParseTargets(r.body);
  if (!targets) return tl::unexpected(targets.error().WithContext(path));
  if (auto ok = root.root.signed_data.VerifyDelegate("targets", *targets); !ok) {
    return tl::unexpected(ok.error().WithContext(
        path + " is not signed by the trusted root v" +
        std::to_string(root.root.signed_data.version) + "'s targets keys"));
  }
  if (targets->signed_data.version != version) {
    return MakeError(ErrorCode::kRollback, path + " holds version " +
                                               std::to_string(targets->signed_data.version));
  }
  if (version > seen) AIRLOCK_TRY(WriteTargetsVersion(app_id, version));
  return std::move(*targets);
}

Result<void> RecordTargetsVersion(const std::string& app_id, uint64_t version) {
  AIRLOCK_ASSIGN_OR_RETURN(uint64_t seen, SeenTargetsVersion(app_id));
  if (version <= seen) return {};
  return WriteTargetsVersion(app_id, version);
}

}  // namespace airlock::cli
