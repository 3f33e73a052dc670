// Test helper (not part of the library): the UpdaterTest fixture shared by the updater tests: a
// TestRepo served from memory, a metadata directory and a target directory, and an Updater made
// as a new process would make it.
#ifndef AIRLOCK_CLIENT_UPDATER_TEST_FIXTURE_H_
#define AIRLOCK_CLIENT_UPDATER_TEST_FIXTURE_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "client/test_repo.h"
#include "client/updater.h"
#include "common/file.h"

namespace airlock::client::testing {

namespace fs = std::filesystem;

class UpdaterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto md = ScopedTempDir::Create({}, "client-md-");
    ASSERT_TRUE(md.has_value());
    md_.emplace(std::move(*md));
    auto td = ScopedTempDir::Create({}, "client-td-");
    ASSERT_TRUE(td.has_value());
    td_.emplace(std::move(*td));
    ASSERT_TRUE(InitMetadataDir(md_->path(), repo_.root_bytes.at(1)).has_value());
    repo_.fetcher.ClearRequests();
  }

  Result<Updater> MakeUpdater() {
    UpdaterOptions options;
    options.metadata_dir = md_->path();
    options.metadata_base_url = kMetadataUrl;
    options.target_base_url = kTargetsUrl;
    options.fetcher = fetcher_ != nullptr ? fetcher_ : &repo_.fetcher;
    options.clock = [this] { return now_; };
    options.config = config_;
    return Updater::Create(options);
  }

  // A fresh Updater (as a new process would make) refreshing once.
  Result<void> Refresh() {
    AIRLOCK_ASSIGN_OR_RETURN(Updater updater, MakeUpdater());
    return updater.Refresh();
  }

  Result<fs::path> Download(const std::string& target) {
    AIRLOCK_ASSIGN_OR_RETURN(Updater updater, MakeUpdater());
    AIRLOCK_ASSIGN_OR_RETURN(metadata::TargetFile info, updater.GetTargetInfo(target));
    return updater.DownloadTarget(target, info, td_->path());
  }

  ErrorCode RefreshError() {
    Result<void> r = Refresh();
    EXPECT_FALSE(r.has_value());
    return r ? ErrorCode::kInternal : r.error().code();
  }

  Bytes Stored(const std::string& name) {
    auto b = ReadFile(md_->path() / name, 1 << 24);
    return b ? *b : Bytes();
  }
  bool HasStored(const std::string& name) { return fs::exists(md_->path() / name); }
  std::vector<std::string> StoredNames() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(md_->path())) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  uint64_t StoredVersion(const std::string& name) {
    auto env = metadata::Envelope::Parse(AsString(Stored(name)), 1 << 24);
    EXPECT_TRUE(env.has_value()) << name;
    return env ? env->signed_json.at("version").get<uint64_t>() : 0;
  }

  // Root v(N+1) with `role`'s key replaced by a new one; for root, signed by the old and new keys.
  void RotateKey(const std::string& role) {
    std::vector<crypto::PrivateKey> old_keys = std::move(repo_.keys[role]);
    repo_.keys[role].clear();
    for (const auto& k : old_keys) ASSERT_TRUE(repo_.root.RevokeKey(role, k.KeyId()).has_value());
    repo_.keys[role].push_back(NewKey());
    ASSERT_TRUE(repo_.root.AddKey(role, repo_.keys[role].back().Public()).has_value());
    repo_.root.version++;
    std::vector<const crypto::PrivateKey*> extra;
    if (role == "root") {
      for (const auto& k : old_keys) extra.push_back(&k);
    }
    repo_.PublishRoot(extra);
  }

  TestRepo repo_;
  std::optional<ScopedTempDir> md_;
  std::optional<ScopedTempDir> td_;
  std::time_t now_ = kNow;
  UpdaterConfig config_;
  Fetcher* fetcher_ = nullptr;  // when set, used instead of repo_.fetcher (e.g. a wrapper of it)
};

}  // namespace airlock::client::testing

#endif  // AIRLOCK_CLIENT_UPDATER_TEST_FIXTURE_H_
