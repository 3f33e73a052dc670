#include "repo/repository.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <system_error>

#include "bundle/bundle.h"
#include "common/bytes.h"
#include "common/canonical_json.h"
#include "common/fd.h"
#include "common/file.h"
#include "common/json.h"
#include "common/semver.h"
#include "crypto/hash.h"
#include "repo/repository_internal.h"

namespace airlock::repo {

namespace fs = std::filesystem;
using internal::IoError;
using internal::StateDir;
using internal::TargetsDir;
using metadata::DelegatedRole;
using metadata::TargetFile;

namespace {

// Copies `src` to DIR/targets/<dirs>/<sha256>.<basename> (atomically, hashing on the way) and
// returns the target entry. The copy is hashed, not the source, so what is listed is exactly what
// is served.
Result<TargetFile> CopyTarget(const fs::path& dir, const fs::path& src, const std::string& name,
                              bool* created) {
  uint64_t size = 0;
  AIRLOCK_ASSIGN_OR_RETURN(UniqueFd in, OpenForRead(src, &size));
  fs::path incoming = StateDir(dir) / "incoming";
  AIRLOCK_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(incoming, 0644));
  crypto::Hasher hasher = crypto::Hasher::Sha256();
  Bytes buf(1 << 20);
  uint64_t offset = 0;
  while (true) {
    AIRLOCK_ASSIGN_OR_RETURN(size_t n, PreadSome(in.get(), offset, std::span<uint8_t>(buf)));
    if (n == 0) break;
    ByteSpan chunk(buf.data(), n);
    hasher.Update(chunk);
    AIRLOCK_TRY(out.Write(chunk));
    offset += n;
  }
  AIRLOCK_TRY(out.Commit());
  std::string sha256 = HexEncode(hasher.Finish());
  fs::path final_path = TargetsDir(dir) / metadata::ConsistentTargetPath(name, sha256);
  std::error_code ec;
  fs::create_directories(final_path.parent_path(), ec);
  if (ec) {
    fs::remove(incoming, ec);
    return MakeError(ErrorCode::kIo, "cannot create " + final_path.parent_path().string());
  }
  *created = !fs::exists(final_path, ec);
  if (::rename(incoming.c_str(), final_path.c_str()) != 0) {
    int err = errno;
    fs::remove(incoming, ec);
    return tl::unexpected(IoError("cannot rename into", final_path, err));
  }
  TargetFile file;
  file.length = offset;
  file.hashes["sha256"] = sha256;
  return file;
}

// Checks the fields of `custom` that docs/design.md §3 gives a meaning to.
Result<void> ValidateCustom(const nlohmann::json& custom) {
  if (custom.contains("version")) {
    if (!custom["version"].is_string()) {
      return MakeError(ErrorCode::kInvalidArgument, "custom.version must be a string");
    }
    auto v = Semver::Parse(custom["version"].get<std::string>());
    if (!v)
      return tl::unexpected(
          Error(ErrorCode::kInvalidArgument, "custom.version: " + v.error().message()));
  }
  if (custom.contains("channels")) {
    const auto& c = custom["channels"];
    bool ok = c.is_array() && std::all_of(c.begin(), c.end(), [](const nlohmann::json& e) {
                return e.is_string() && !e.get<std::string>().empty();
              });
    if (!ok) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "custom.channels must be an array of non-empty strings");
    }
  }
  if (custom.contains("security_floor") && !custom["security_floor"].is_number_unsigned()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "custom.security_floor must be a non-negative integer");
  }
  if (!CanonicalJson(custom)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "custom must not hold floating-point numbers (TUF canonical JSON has none)");
  }
  return {};
}

// Builds `custom` from --custom and, for a sealed bundle, its header.
Result<nlohmann::json> BuildCustom(const fs::path& file, const std::string& custom_json,
                                   const std::string& app_id) {
  nlohmann::json custom = nlohmann::json::object();
  if (!custom_json.empty()) {
    auto parsed = ParseJson(custom_json, kMaxCustomSize, kMaxCustomDepth);
    if (!parsed) {
      return tl::unexpected(
          Error(ErrorCode::kInvalidArgument, "--custom: " + parsed.error().message()));
    }
    if (!parsed->is_object()) {
      return MakeError(ErrorCode::kInvalidArgument, "--custom must be a JSON object");
    }
    custom = std::move(*parsed);
  }
  if (file.extension() == ".alb") {
    // Unverified read of the header: the repository signs what it lists, and the device verifies
    // the bundle's own signature anyway; this only fills in what the header already says.
    auto info = bundle::InspectBundle(file, nullptr);
    if (!info) return tl::unexpected(info.error().WithContext("bundle " + file.string()));
    const bundle::BundleHeader& h = info->header;
    if (h.app_id != app_id) {
      return MakeError(ErrorCode::kInvalidArgument, "bundle " + file.string() + " is for app " +
                                                        h.app_id + ", this repository is for " +
                                                        app_id);
    }
    for (const auto& [field, value] :
         {std::pair{"app_id", h.app_id}, std::pair{"version", h.version}}) {
      if (custom.contains(field) && custom[field] != value) {
        return MakeError(ErrorCode::kInvalidArgument, std::string("--custom ") + field +
                                                          " conflicts with the bundle's " + field +
                                                          " (" + value + ")");
      }
      custom[field] = value;
    }
    if (!custom.contains("format")) custom["format"] = "airlock-bundle";
  }
  AIRLOCK_TRY(ValidateCustom(custom));
  return custom;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Targets

Result<AddTargetResult> Repository::AddTarget(const fs::path& file,
                                              const AddTargetOptions& options) {
  AddTargetResult result;
  result.name = options.name.empty() ? file.filename().string() : options.name;
  AIRLOCK_TRY(ValidateTargetName(result.name));
  std::map<std::string, TargetFile>* staged = &targets_;
  result.role = "targets";
  if (!options.role.empty() && options.role != "targets") {
    const DelegatedRole* role = delegations_ ? delegations_->FindRole(options.role) : nullptr;
    if (role == nullptr) {
      return MakeError(ErrorCode::kNotFound,
                       "no delegated role " + options.role + " (see `airlock repo delegate`)");
    }
    if (!role->IsDelegatedPath(result.name)) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          "target " + result.name + " is outside the paths delegated to " + options.role);
    }
    staged = &delegated_targets_[options.role];
    result.role = options.role;
  }
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json custom, BuildCustom(file, options.custom_json, app_id_));
  bool created = false;
  AIRLOCK_ASSIGN_OR_RETURN(result.file, CopyTarget(dir_, file, result.name, &created));
  if (!custom.empty()) result.file.custom = custom;
  result.replaced = staged->count(result.name) > 0;
  std::optional<TargetFile> previous;
  if (result.replaced) previous = (*staged)[result.name];
  (*staged)[result.name] = result.file;
  if (auto saved = SaveState(); !saved) {
    // Undo: the in-memory state and the copied file (if it is new and nothing else lists it).
    if (previous) {
      (*staged)[result.name] = *previous;
    } else {
      staged->erase(result.name);
    }
    if (created) {
      std::error_code ec;
      fs::remove(TargetsDir(dir_) /
                     metadata::ConsistentTargetPath(result.name, result.file.hashes["sha256"]),
                 ec);
    }
    return tl::unexpected(saved.error());
  }
  return result;
}

Result<std::string> Repository::RemoveTarget(std::string_view name) {
  std::string key(name);
  std::string role;
  std::map<std::string, TargetFile>* holder = nullptr;
  if (targets_.count(key)) {
    holder = &targets_;
    role = "targets";
  } else {
    for (auto& [r, targets] : delegated_targets_) {
      if (targets.count(key)) {
        holder = &targets;
        role = r;
        break;
      }
    }
  }
  if (holder == nullptr) return MakeError(ErrorCode::kNotFound, "no target named " + key);
  TargetFile previous = (*holder)[key];
  holder->erase(key);
  if (auto saved = SaveState(); !saved) {
    (*holder)[key] = previous;
    return tl::unexpected(saved.error());
  }
  return role;
}

}  // namespace airlock::repo
