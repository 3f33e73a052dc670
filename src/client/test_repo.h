// Test helper (not part of the library): a TUF repository built in memory with the metadata
// module's signing API and served by a MemoryFetcher, in the spirit of python-tuf's
// RepositorySimulator.
#ifndef AIRLOCK_CLIENT_TEST_REPO_H_
#define AIRLOCK_CLIENT_TEST_REPO_H_

#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "client/fetcher.h"
#include "client/metadata_store.h"
#include "common/bytes.h"
#include "crypto/keys.h"
#include "metadata/metadata.h"

namespace airlock::client::testing {

inline constexpr std::time_t kNow = 1'800'000'000;  // 2027-01-15
inline constexpr std::time_t kDay = 86400;
inline const std::string kMetadataUrl = "https://repo.test/metadata/";
inline const std::string kTargetsUrl = "https://repo.test/targets/";

inline crypto::PrivateKey NewKey() {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  EXPECT_TRUE(key.has_value());
  return std::move(*key);
}

template <typename T>
Bytes SignToBytes(const T& data, const std::vector<const crypto::PrivateKey*>& keys) {
  auto md = metadata::SignMetadata(data, keys);
  EXPECT_TRUE(md.has_value()) << md.error().ToString();
  auto text = md->ToBytes();
  EXPECT_TRUE(text.has_value());
  return ToBytes(*text);
}

class TestRepo {
 public:
  // Metadata expiries count from `now` (root 1 year, targets 90 days, snapshot 7, timestamp 1).
  explicit TestRepo(std::time_t now = kNow) {
    root.expires = now + 365 * kDay;
    root.consistent_snapshot = true;
    for (const char* role : {"root", "targets", "snapshot", "timestamp"}) {
      keys[role].push_back(NewKey());
      EXPECT_TRUE(root.AddKey(role, keys[role].back().Public()).has_value());
    }
    targets.expires = now + 90 * kDay;
    snapshot.expires = now + 7 * kDay;
    timestamp.expires = now + 1 * kDay;
    delegated_expires_ = now + 90 * kDay;
    PublishRoot();
    PublishTargets("targets");
    PublishSnapshot();
    PublishTimestamp();
  }

  std::vector<const crypto::PrivateKey*> Signers(const std::string& role) const {
    std::vector<const crypto::PrivateKey*> out;
    auto it = keys.find(role);
    if (it != keys.end()) {
      for (const auto& k : it->second) out.push_back(&k);
    }
    return out;
  }

  // Signs root with the current root keys plus `extra` (e.g. the previous root's keys).
  void PublishRoot(const std::vector<const crypto::PrivateKey*>& extra = {}) {
    auto signers = Signers("root");
    signers.insert(signers.end(), extra.begin(), extra.end());
    Bytes bytes = SignToBytes(root, signers);
    root_bytes[root.version] = bytes;
    fetcher.Set(kMetadataUrl + std::to_string(root.version) + ".root.json", bytes);
  }

  metadata::Targets& Role(const std::string& role) {
    return role == "targets" ? targets : delegated[role];
  }

  // Signs and serves `role` (targets or a delegated role) and records it for the next snapshot.
  void PublishTargets(const std::string& role) {
    Bytes bytes = SignToBytes(Role(role), Signers(role));
    std::string name = UrlQuote(role) + ".json";
    fetcher.Set(kMetadataUrl + std::to_string(Role(role).version) + "." + name, bytes);
    fetcher.Set(kMetadataUrl + name, bytes);
    metadata::MetaFile meta;
    meta.version = Role(role).version;
    snapshot.meta[role + ".json"] = meta;
  }

  void PublishSnapshot() {
    snapshot_bytes = SignToBytes(snapshot, Signers("snapshot"));
    fetcher.Set(kMetadataUrl + std::to_string(snapshot.version) + ".snapshot.json", snapshot_bytes);
    fetcher.Set(kMetadataUrl + "snapshot.json", snapshot_bytes);
    timestamp.snapshot_meta.version = snapshot.version;
  }

  void PublishTimestamp() {
    timestamp_bytes = SignToBytes(timestamp, Signers("timestamp"));
    fetcher.Set(kMetadataUrl + "timestamp.json", timestamp_bytes);
  }

  // The usual release: bump and publish role, snapshot and timestamp.
  void Release(const std::string& role = "targets") {
    Role(role).version++;
    PublishTargets(role);
    snapshot.version++;
    PublishSnapshot();
    timestamp.version++;
    PublishTimestamp();
  }

  // Adds a target to `role` and serves its content under the consistent-snapshot name.
  void AddTarget(const std::string& path, const std::string& content,
                 const std::string& role = "targets") {
    metadata::TargetFile file = metadata::TargetFile::FromData(AsBytes(content));
    Role(role).targets[path] = file;
    fetcher.Set(kTargetsUrl + metadata::ConsistentTargetPath(path, file.hashes.at("sha256")),
                ToBytes(content));
  }

  // Adds delegated role `name` of `delegator` for `paths`, with a fresh key.
  void Delegate(const std::string& delegator, const std::string& name,
                std::vector<std::string> paths, bool terminating = false) {
    metadata::Targets& parent = Role(delegator);
    if (!parent.delegations) parent.delegations.emplace();
    metadata::DelegatedRole role;
    role.name = name;
    role.terminating = terminating;
    role.paths = std::move(paths);
    parent.delegations->roles.push_back(role);
    keys[name].push_back(NewKey());
    EXPECT_TRUE(parent.delegations->AddKey(name, keys[name].back().Public()).has_value());
    metadata::Targets& child = delegated[name];
    child.expires = delegated_expires_;
  }

  metadata::Root root;
  metadata::Targets targets;
  metadata::Snapshot snapshot;
  metadata::Timestamp timestamp;
  std::map<std::string, metadata::Targets> delegated;
  std::map<std::string, std::vector<crypto::PrivateKey>> keys;
  std::map<uint64_t, Bytes> root_bytes;
  Bytes snapshot_bytes;
  Bytes timestamp_bytes;
  MemoryFetcher fetcher;

 private:
  std::time_t delegated_expires_ = 0;
};

}  // namespace airlock::client::testing

#endif  // AIRLOCK_CLIENT_TEST_REPO_H_
