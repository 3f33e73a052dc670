#include "repo/repository.h"

#include <algorithm>
#include <set>
#include <system_error>

#include "common/bytes.h"
#include "common/file.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "repo/repository_internal.h"

namespace airlock::repo {

namespace fs = std::filesystem;
using internal::kDelegatedExpiryKey;
using internal::LoadSigningKey;
using internal::MetadataDir;
using internal::NowOr;
using internal::Pointers;
using internal::RecordedSpec;
using internal::SignerPtr;
using internal::TargetsDir;
using metadata::DelegatedRole;
using metadata::Delegations;
using metadata::Metadata;
using metadata::Root;
using metadata::Snapshot;
using metadata::Targets;
using metadata::Timestamp;

namespace {

template <typename T>
Result<Metadata<T>> ReadMetadataFile(const fs::path& path) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, T::kDefaultMaxSize));
  auto md = metadata::ParseMetadata<T>(text);
  if (!md) return tl::unexpected(md.error().WithContext(path.string()));
  return std::move(*md);
}

// The published versions of every role, read back from DIR/metadata (0 for a role not published).
struct Published {
  Metadata<Root> root;
  uint64_t timestamp_version = 0;
  uint64_t snapshot_version = 0;
  std::map<std::string, uint64_t> targets_versions;  // "targets" and delegated role names
};

Result<Published> ReadPublished(const fs::path& dir) {
  Published p;
  AIRLOCK_ASSIGN_OR_RETURN(p.root, ReadMetadataFile<Root>(MetadataDir(dir) / "root.json"));
  fs::path ts_path = MetadataDir(dir) / "timestamp.json";
  std::error_code ec;
  if (!fs::exists(ts_path, ec)) return p;
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Timestamp> ts, ReadMetadataFile<Timestamp>(ts_path));
  p.timestamp_version = ts.signed_data.version;
  p.snapshot_version = ts.signed_data.snapshot_meta.version;
  AIRLOCK_ASSIGN_OR_RETURN(
      Metadata<Snapshot> snap,
      ReadMetadataFile<Snapshot>(MetadataDir(dir) /
                                 (std::to_string(p.snapshot_version) + ".snapshot.json")));
  for (const auto& [name, meta] : snap.signed_data.meta) {
    if (name.size() > 5 && name.ends_with(".json")) {
      p.targets_versions[name.substr(0, name.size() - 5)] = meta.version;
    }
  }
  return p;
}

// Signers for one role: the configured private keys the role's key list authorizes.
Result<std::vector<SignerPtr>> RoleSigners(const SignerLoader& loader, std::string_view role,
                                           const std::vector<std::string>& key_files,
                                           const std::vector<std::string>& keyids,
                                           uint64_t threshold) {
  std::vector<SignerPtr> signers;
  std::set<std::string> seen;
  for (const std::string& file : key_files) {
    AIRLOCK_ASSIGN_OR_RETURN(SignerPtr key, LoadSigningKey(loader, file));
    std::string id = key->KeyId();
    if (std::find(keyids.begin(), keyids.end(), id) == keyids.end()) {
      return MakeError(ErrorCode::kWrongKey, std::string(role) + ": key " + file + " (" + id +
                                                 ") is not one the metadata lists for this role");
    }
    if (seen.insert(id).second) signers.push_back(std::move(key));
  }
  if (signers.size() < threshold) {
    return MakeError(ErrorCode::kNotFound,
                     std::string(role) + ": " + std::to_string(signers.size()) + " of " +
                         std::to_string(threshold) + " required signing keys available");
  }
  return signers;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Delegations

Result<DelegateResult> Repository::Delegate(const DelegateOptions& options) {
  AIRLOCK_TRY(ValidateRoleName(options.role));
  if (options.paths.empty() || options.paths.size() > 1000) {
    return MakeError(ErrorCode::kInvalidArgument, "a delegation needs 1 to 1000 --paths patterns");
  }
  for (const std::string& p : options.paths) {
    if (p.empty() || p.size() > kMaxTargetNameLength) {
      return MakeError(ErrorCode::kInvalidArgument, "bad --paths pattern '" + p + "'");
    }
  }
  if (options.public_keys.empty() || options.public_keys.size() > kMaxKeysPerRole) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a delegation needs 1 to " + std::to_string(kMaxKeysPerRole) + " keys");
  }
  // Public keys, and the private key for each (an explicit --signing-key, a K.key given directly,
  // or K.key beside K.pub).
  std::map<std::string, fs::path> explicit_signers;  // key id -> file
  for (const fs::path& f : options.signing_keys) {
    AIRLOCK_ASSIGN_OR_RETURN(SignerPtr key, LoadSigner(f.string()));
    explicit_signers.emplace(key->KeyId(), f);
  }
  std::vector<crypto::PublicKey> publics;
  std::vector<std::string> signer_files;
  std::set<std::string> ids;
  for (const fs::path& f : options.public_keys) {
    std::optional<crypto::PublicKey> pub;
    fs::path private_file;
    if (f.extension() == ".key" || IsKeyUriSpec(f.string())) {
      AIRLOCK_ASSIGN_OR_RETURN(SignerPtr key, LoadSigner(f.string()));
      pub = key->Public();
      private_file = f;
    } else {
      auto loaded = crypto::PublicKey::FromFile(f);
      if (!loaded) return tl::unexpected(loaded.error().WithContext("key " + f.string()));
      pub = std::move(*loaded);
    }
    if (pub->type() == crypto::KeyType::kX25519) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "key " + f.string() + " is an x25519 key, which cannot sign");
    }
    std::string id = pub->KeyId();
    if (!ids.insert(id).second) {
      return MakeError(ErrorCode::kInvalidArgument, "key " + f.string() + " is given twice");
    }
    if (private_file.empty()) {
      auto k = explicit_signers.find(id);
      if (k != explicit_signers.end()) private_file = k->second;
    }
    if (private_file.empty()) {
      fs::path sibling = f;
      sibling.replace_extension(".key");
      std::error_code ec;
      if (fs::exists(sibling, ec)) {
        AIRLOCK_ASSIGN_OR_RETURN(SignerPtr key, LoadSigner(sibling.string()));
        if (key->KeyId() != id) {
          return MakeError(ErrorCode::kWrongKey,
                           sibling.string() + " is not the private key of " + f.string());
        }
        private_file = sibling;
      }
    }
    if (!private_file.empty()) signer_files.push_back(RecordedSpec(private_file));
    publics.push_back(std::move(*pub));
  }
  for (const auto& [id, file] : explicit_signers) {
    if (!ids.count(id)) {
      return MakeError(ErrorCode::kWrongKey,
                       "--signing-key " + file.string() + " is not one of the delegation's keys");
    }
  }
  if (options.threshold < 1 || options.threshold > publics.size()) {
    return MakeError(ErrorCode::kInvalidArgument, "threshold " + std::to_string(options.threshold) +
                                                      " needs 1.." +
                                                      std::to_string(publics.size()) + " keys");
  }
  if (signer_files.size() < options.threshold) {
    return MakeError(
        ErrorCode::kNotFound,
        options.role + ": " + std::to_string(signer_files.size()) + " of " +
            std::to_string(options.threshold) +
            " private keys found; the repository signs delegated roles itself, so keep "
            "K.key beside K.pub or pass --signing-key");
  }

  Delegations delegations = delegations_.value_or(Delegations{});
  DelegatedRole role;
  role.name = options.role;
  role.threshold = options.threshold;
  role.terminating = options.terminating;
  role.paths = options.paths;
  DelegateResult result;
  auto it = std::find_if(delegations.roles.begin(), delegations.roles.end(),
                         [&](const DelegatedRole& r) { return r.name == options.role; });
  if (it != delegations.roles.end()) {
    *it = role;
    result.replaced = true;
  } else {
    delegations.roles.push_back(role);
  }
  for (const crypto::PublicKey& pub : publics) {
    AIRLOCK_TRY(delegations.AddKey(options.role, pub));
    result.key_ids.push_back(pub.KeyId());
  }
  // Drop keys no role lists any more.
  std::set<std::string> used;
  for (const DelegatedRole& r : delegations.roles) used.insert(r.keyids.begin(), r.keyids.end());
  for (auto k = delegations.keys.begin(); k != delegations.keys.end();) {
    k = used.count(k->first) ? std::next(k) : delegations.keys.erase(k);
  }

  auto saved_delegations = delegations_;
  auto saved_files = key_files_;
  delegations_ = std::move(delegations);
  key_files_[options.role] = signer_files;
  if (auto saved = SaveState(); !saved) {
    delegations_ = std::move(saved_delegations);
    key_files_ = std::move(saved_files);
    return tl::unexpected(saved.error());
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Publish

Result<PublishResult> Repository::Publish(const PublishOptions& options) {
  return PublishInternal(options, std::nullopt);
}

Result<PublishResult> Repository::PublishInternal(const PublishOptions& options,
                                                  const std::optional<Metadata<Root>>& new_root) {
  const std::time_t now = NowOr(options.now);
  std::map<std::string, int64_t> expiry = expires_in_;
  for (const auto& [role, seconds] : options.expires_in) {
    bool known = metadata::IsTopLevelRoleName(role) ||
                 (delegations_ && delegations_->FindRole(role) != nullptr);
    if (!known)
      return MakeError(ErrorCode::kInvalidArgument, "--expires-in: no role named " + role);
    if (seconds <= 0)
      return MakeError(ErrorCode::kInvalidArgument, "--expires-in: duration must be positive");
    expiry[role] = seconds;
  }
  auto expiry_for = [&](const std::string& role) {
    auto it = expiry.find(role);
    if (it != expiry.end()) return it->second;
    return expiry[std::string(kDelegatedExpiryKey)];
  };
  AIRLOCK_ASSIGN_OR_RETURN(Published published, ReadPublished(dir_));

  // Every staged target must still be in DIR/targets/ (someone may have cleaned up by hand).
  for (const TargetInfo& t : StagedTargets()) {
    fs::path p =
        TargetsDir(dir_) / metadata::ConsistentTargetPath(t.name, t.file.hashes.at("sha256"));
    std::error_code ec;
    auto size = fs::file_size(p, ec);
    if (ec || size != t.file.length) {
      return MakeError(
          ErrorCode::kNotFound,
          "target file " + p.string() + " is missing or has the wrong size; add the target again");
    }
  }

  PublishResult result;
  // Files to write, in order: versioned metadata first, then the root, then timestamp.json.
  std::vector<std::pair<fs::path, std::string>> writes;

  // Root: the rotated one, a re-signed one (new expiry), or the current one.
  std::optional<Metadata<Root>> root_md = new_root;
  if (!root_md && options.expires_in.count("root")) {
    Root next = published.root.signed_data;
    next.version += 1;
    next.expires = now + expiry_for("root");
    const metadata::Role& role = next.roles.at("root");
    AIRLOCK_ASSIGN_OR_RETURN(auto signers, RoleSigners(signer_loader_, "root", key_files_["root"],
                                                       role.keyids, role.threshold));
    AIRLOCK_ASSIGN_OR_RETURN(Metadata<Root> md, metadata::SignMetadata(next, Pointers(signers)));
    root_md = std::move(md);
  }
  if (root_md) AIRLOCK_TRY_CTX(metadata::VerifyRootRotation(published.root, *root_md), "new root");
  const Metadata<Root>& root = root_md ? *root_md : published.root;
  const Root& r = root.signed_data;
  result.versions["root"] = r.version;
  result.expires["root"] = r.expires;

  auto top_signers = [&](const std::string& role) -> Result<std::vector<SignerPtr>> {
    auto it = r.roles.find(role);
    if (it == r.roles.end())
      return MakeError(ErrorCode::kMalformed, "root lists no " + role + " role");
    return RoleSigners(signer_loader_, role, key_files_[role], it->second.keyids,
                       it->second.threshold);
  };

  // Delegated roles.
  Snapshot snapshot;
  std::map<std::string, Metadata<Targets>> delegated_md;
  if (delegations_) {
    for (const DelegatedRole& role : delegations_->roles) {
      Targets t;
      t.version =
          (published.targets_versions.count(role.name) ? published.targets_versions[role.name]
                                                       : 0) +
          1;
      t.expires = now + expiry_for(role.name);
      auto staged = delegated_targets_.find(role.name);
      if (staged != delegated_targets_.end()) t.targets = staged->second;
      AIRLOCK_ASSIGN_OR_RETURN(
          auto signers, RoleSigners(signer_loader_, role.name, key_files_[role.name], role.keyids,
                                    role.threshold));
      AIRLOCK_ASSIGN_OR_RETURN(Metadata<Targets> md, metadata::SignMetadata(t, Pointers(signers)));
      AIRLOCK_ASSIGN_OR_RETURN(std::string bytes, md.ToBytes());
      writes.emplace_back(
          MetadataDir(dir_) / (std::to_string(t.version) + "." + role.name + ".json"), bytes);
      snapshot.meta[role.name + ".json"].version = t.version;
      result.versions[role.name] = t.version;
      result.expires[role.name] = t.expires;
      delegated_md.emplace(role.name, std::move(md));
    }
  }

  // Top-level targets.
  Targets targets;
  targets.version =
      (published.targets_versions.count("targets") ? published.targets_versions["targets"] : 0) + 1;
  targets.expires = now + expiry_for("targets");
  targets.targets = targets_;
  if (delegations_ && !delegations_->roles.empty()) targets.delegations = delegations_;
  AIRLOCK_ASSIGN_OR_RETURN(auto targets_signers, top_signers("targets"));
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Targets> targets_md,
                           metadata::SignMetadata(targets, Pointers(targets_signers)));
  AIRLOCK_ASSIGN_OR_RETURN(std::string targets_bytes, targets_md.ToBytes());
  writes.emplace_back(MetadataDir(dir_) / (std::to_string(targets.version) + ".targets.json"),
                      targets_bytes);
  snapshot.meta["targets.json"].version = targets.version;
  result.versions["targets"] = targets.version;
  result.expires["targets"] = targets.expires;

  // Snapshot.
  snapshot.version = published.snapshot_version + 1;
  snapshot.expires = now + expiry_for("snapshot");
  AIRLOCK_ASSIGN_OR_RETURN(auto snapshot_signers, top_signers("snapshot"));
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Snapshot> snapshot_md,
                           metadata::SignMetadata(snapshot, Pointers(snapshot_signers)));
  AIRLOCK_ASSIGN_OR_RETURN(std::string snapshot_bytes, snapshot_md.ToBytes());
  writes.emplace_back(MetadataDir(dir_) / (std::to_string(snapshot.version) + ".snapshot.json"),
                      snapshot_bytes);
  result.versions["snapshot"] = snapshot.version;
  result.expires["snapshot"] = snapshot.expires;

  // Timestamp, listing the snapshot's length and hash too (python-tuf lists only the version; the
  // hash pins the exact snapshot bytes for clients that check it).
  Timestamp timestamp;
  timestamp.version = published.timestamp_version + 1;
  timestamp.expires = now + expiry_for("timestamp");
  timestamp.snapshot_meta.version = snapshot.version;
  timestamp.snapshot_meta.length = snapshot_bytes.size();
  timestamp.snapshot_meta.hashes =
      metadata::Hashes{{"sha256", HexEncode(crypto::Sha256(AsBytes(snapshot_bytes)))}};
  AIRLOCK_ASSIGN_OR_RETURN(auto timestamp_signers, top_signers("timestamp"));
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Timestamp> timestamp_md,
                           metadata::SignMetadata(timestamp, Pointers(timestamp_signers)));
  AIRLOCK_ASSIGN_OR_RETURN(std::string timestamp_bytes, timestamp_md.ToBytes());
  result.versions["timestamp"] = timestamp.version;
  result.expires["timestamp"] = timestamp.expires;

  // Check what we are about to publish as a client would, before writing anything.
  AIRLOCK_TRY_CTX(r.VerifyDelegate("timestamp", timestamp_md), "publish");
  AIRLOCK_TRY_CTX(r.VerifyDelegate("snapshot", snapshot_md), "publish");
  AIRLOCK_TRY_CTX(r.VerifyDelegate("targets", targets_md), "publish");
  for (const auto& [name, md] : delegated_md) {
    AIRLOCK_TRY_CTX(targets.VerifyDelegate(name, md), "publish");
  }

  if (root_md) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string root_bytes, root_md->ToBytes());
    writes.emplace_back(MetadataDir(dir_) / (std::to_string(r.version) + ".root.json"), root_bytes);
    writes.emplace_back(MetadataDir(dir_) / "root.json", root_bytes);
  }
  writes.emplace_back(MetadataDir(dir_) / "timestamp.json", timestamp_bytes);
  for (const auto& [path, bytes] : writes) AIRLOCK_TRY(WriteFileAtomic(path, AsBytes(bytes)));
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Rotate

Result<RotateResult> Repository::Rotate(const RotateOptions& options) {
  if (!metadata::IsTopLevelRoleName(options.role)) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        "--role must be root, targets, snapshot or timestamp (re-run `repo delegate` to "
        "change a delegated role's keys)");
  }
  if (options.new_keys.empty() || options.new_keys.size() > kMaxKeysPerRole) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "rotate needs 1 to " + std::to_string(kMaxKeysPerRole) + " --new-key files");
  }
  std::vector<SignerPtr> new_keys;
  std::vector<std::string> new_files;
  std::set<std::string> new_ids;
  for (const fs::path& f : options.new_keys) {
    AIRLOCK_ASSIGN_OR_RETURN(SignerPtr key, LoadSigner(f.string()));
    if (!new_ids.insert(key->KeyId()).second) {
      return MakeError(ErrorCode::kInvalidArgument, "key " + f.string() + " is given twice");
    }
    new_keys.push_back(std::move(key));
    new_files.push_back(RecordedSpec(f));
  }
  AIRLOCK_ASSIGN_OR_RETURN(Published published, ReadPublished(dir_));
  const Metadata<Root>& current = published.root;
  const metadata::Role& old_role = current.signed_data.roles.at(options.role);
  const uint64_t threshold = options.threshold.value_or(old_role.threshold);
  if (threshold < 1 || threshold > new_keys.size()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "threshold " + std::to_string(threshold) + " needs 1.." +
                         std::to_string(new_keys.size()) + " new keys");
  }

  RotateResult result;
  Root next = current.signed_data;
  next.version += 1;
  next.expires = NowOr(options.now) + expires_in_["root"];
  for (const std::string& id : old_role.keyids) {
    AIRLOCK_TRY(next.RevokeKey(options.role, id));
    if (!new_ids.count(id)) result.removed_key_ids.push_back(id);
  }
  for (const SignerPtr& key : new_keys) {
    AIRLOCK_TRY(next.AddKey(options.role, key->Public()));
    if (std::find(old_role.keyids.begin(), old_role.keyids.end(), key->KeyId()) ==
        old_role.keyids.end()) {
      result.added_key_ids.push_back(key->KeyId());
    }
  }
  next.roles[options.role].threshold = threshold;

  // Old root keys: --old-key, or the configured root keys. New root keys: the new keys when
  // rotating root, else the same configured root keys.
  std::vector<std::string> old_files;
  for (const fs::path& f : options.old_keys) old_files.push_back(RecordedSpec(f));
  if (old_files.empty()) old_files = key_files_["root"];
  const metadata::Role& old_root_role = current.signed_data.roles.at("root");
  auto old_signers = RoleSigners(signer_loader_, "old root", old_files, old_root_role.keyids,
                                 old_root_role.threshold);
  if (!old_signers) {
    return tl::unexpected(
        old_signers.error().WithContext("rotate (pass the old root keys with --old-key)"));
  }
  std::vector<crypto::Signer*> signing = Pointers(*old_signers);
  std::set<std::string> signing_ids;
  for (const auto* k : signing) signing_ids.insert(k->KeyId());
  std::vector<SignerPtr> new_root_signers;
  if (options.role == "root") {
    for (const SignerPtr& k : new_keys) {
      if (!signing_ids.count(k->KeyId())) signing.push_back(k.get());
    }
  } else {
    const metadata::Role& root_role = next.roles.at("root");
    AIRLOCK_ASSIGN_OR_RETURN(
        new_root_signers, RoleSigners(signer_loader_, "root", key_files_["root"], root_role.keyids,
                                      root_role.threshold));
    for (const SignerPtr& k : new_root_signers) {
      if (!signing_ids.count(k->KeyId())) signing.push_back(k.get());
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Root> next_md, metadata::SignMetadata(next, signing));
  AIRLOCK_TRY_CTX(metadata::VerifyRootRotation(current, next_md), "rotate");
  result.root_version = next.version;

  auto saved_files = key_files_;
  key_files_[options.role] = new_files;
  PublishOptions publish;
  publish.now = options.now;
  auto published_result = PublishInternal(publish, next_md);
  if (!published_result) {
    key_files_ = std::move(saved_files);
    return tl::unexpected(published_result.error());
  }
  result.published = std::move(*published_result);
  if (auto saved = SaveState(); !saved) {
    return tl::unexpected(saved.error().WithContext(
        "rotate: root " + std::to_string(next.version) +
        " is published but the repository state could not be saved; fix the state file's keys." +
        options.role + " by hand"));
  }
  return result;
}

}  // namespace airlock::repo
