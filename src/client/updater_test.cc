#include "client/updater.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "client/test_repo.h"
#include "client/updater_test_fixture.h"
#include "common/file.h"

namespace airlock::client {
namespace {

using testing::kDay;
using testing::kMetadataUrl;
using testing::kNow;
using testing::kTargetsUrl;
using testing::TestRepo;
using testing::UpdaterTest;
namespace fs = std::filesystem;

std::vector<std::string> Urls(std::initializer_list<const char*> names) {
  std::vector<std::string> out;
  for (const char* n : names) out.push_back(kMetadataUrl + n);
  return out;
}

// --- basic workflow, requests and storage
// ---------------------------------------------------------

TEST_F(UpdaterTest, FirstRefreshRequestsExactlyTheWorkflowFilesAndStoresThemByteExact) {
  ASSERT_TRUE(Refresh().has_value());
  EXPECT_EQ(repo_.fetcher.requests(),
            Urls({"2.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json"}));
  EXPECT_EQ(StoredNames(), (std::vector<std::string>{"root.json", "snapshot.json", "targets.json",
                                                     "timestamp.json"}));
  EXPECT_EQ(Stored("root.json"), repo_.root_bytes.at(1));
  EXPECT_EQ(Stored("timestamp.json"), repo_.timestamp_bytes);
  EXPECT_EQ(Stored("snapshot.json"), repo_.snapshot_bytes);
}

TEST_F(UpdaterTest, SecondRefreshWithoutChangesUsesLocalSnapshotAndTargets) {
  ASSERT_TRUE(Refresh().has_value());
  repo_.fetcher.ClearRequests();
  ASSERT_TRUE(Refresh().has_value());
  EXPECT_EQ(repo_.fetcher.requests(), Urls({"2.root.json", "timestamp.json"}));
}

TEST_F(UpdaterTest, NewReleaseFetchesOnlyChangedMetadata) {
  ASSERT_TRUE(Refresh().has_value());
  repo_.Release();
  repo_.fetcher.ClearRequests();
  ASSERT_TRUE(Refresh().has_value());
  EXPECT_EQ(repo_.fetcher.requests(),
            Urls({"2.root.json", "timestamp.json", "2.snapshot.json", "2.targets.json"}));
  EXPECT_EQ(StoredVersion("targets.json"), 2u);
}

TEST_F(UpdaterTest, WithoutConsistentSnapshotsRequestsUnversionedNames) {
  repo_.root.consistent_snapshot = false;
  repo_.root.version = 2;
  repo_.PublishRoot();
  repo_.AddTarget("a.txt", "hello");
  repo_.Release();
  repo_.fetcher.Set(kTargetsUrl + "a.txt", ToBytes("hello"));
  repo_.fetcher.ClearRequests();
  ASSERT_TRUE(Download("a.txt").has_value());
  std::vector<std::string> expected =
      Urls({"2.root.json", "3.root.json", "timestamp.json", "snapshot.json", "targets.json"});
  expected.push_back(kTargetsUrl + "a.txt");
  EXPECT_EQ(repo_.fetcher.requests(), expected);
}

TEST_F(UpdaterTest, MissingTrustedRootIsNotFound) {
  fs::remove(md_->path() / "root.json");
  auto u = MakeUpdater();
  ASSERT_FALSE(u.has_value());
  EXPECT_EQ(u.error().code(), ErrorCode::kNotFound);
}

TEST_F(UpdaterTest, TrustedRootNotSignedByItselfIsRejected) {
  metadata::Root other = repo_.root;
  Bytes bytes = testing::SignToBytes(other, {});
  ASSERT_TRUE(InitMetadataDir(md_->path(), bytes).has_value());
  auto u = MakeUpdater();
  ASSERT_FALSE(u.has_value());
  EXPECT_EQ(u.error().code(), ErrorCode::kBadSignature);
}

// --- root rotation -----------------------------------------------------------------------------

TEST_F(UpdaterTest, RootRotationChainIsFollowedOneVersionAtATime) {
  RotateKey("root");  // v2
  RotateKey("root");  // v3
  ASSERT_TRUE(Refresh().has_value());
  EXPECT_EQ(repo_.fetcher.requests(),
            Urls({"2.root.json", "3.root.json", "4.root.json", "timestamp.json", "1.snapshot.json",
                  "1.targets.json"}));
  EXPECT_EQ(Stored("root.json"), repo_.root_bytes.at(3));
}

TEST_F(UpdaterTest, RootRotationChainStopsAtTheCap) {
  config_.max_root_rotations = 2;
  for (int i = 0; i < 4; ++i) RotateKey("root");  // v2..v5
  ASSERT_TRUE(Refresh().has_value());
  EXPECT_EQ(repo_.fetcher.requests(), Urls({"2.root.json", "3.root.json", "timestamp.json",
                                            "1.snapshot.json", "1.targets.json"}));
  EXPECT_EQ(StoredVersion("root.json"), 3u);
}

TEST_F(UpdaterTest, RootNotSignedByTrustedRootKeysIsRejected) {
  RotateKey("root");
  // Re-sign v2 by the new key only.
  repo_.PublishRoot();
  EXPECT_EQ(RefreshError(), ErrorCode::kBadSignature);
  EXPECT_EQ(Stored("root.json"), repo_.root_bytes.at(1));
  EXPECT_EQ(repo_.fetcher.requests(), Urls({"2.root.json"}));
}

TEST_F(UpdaterTest, RootNotSignedByItsOwnNewThresholdIsRejected) {
  crypto::PrivateKey extra = testing::NewKey();
  ASSERT_TRUE(repo_.root.AddKey("root", extra.Public()).has_value());
  repo_.root.roles["root"].threshold = 2;
  repo_.root.version = 2;
  repo_.PublishRoot();  // by the v1 key only: the old threshold (1) holds, the new one (2) does not
  EXPECT_EQ(RefreshError(), ErrorCode::kBadSignature);
  EXPECT_EQ(StoredVersion("root.json"), 1u);
  repo_.PublishRoot({&extra});
  EXPECT_TRUE(Refresh().has_value());
  EXPECT_EQ(StoredVersion("root.json"), 2u);
}

TEST_F(UpdaterTest, RootWithVersionOtherThanNextIsRejected) {
  repo_.root.version = 3;
  repo_.PublishRoot();
  repo_.fetcher.Set(kMetadataUrl + "2.root.json", repo_.root_bytes.at(3));
  EXPECT_EQ(RefreshError(), ErrorCode::kRollback);
}

TEST_F(UpdaterTest, ExpiredIntermediateRootIsFineButExpiredFinalRootIsNot) {
  repo_.root.version = 2;
  repo_.root.expires = kNow - kDay;
  repo_.PublishRoot();
  EXPECT_EQ(RefreshError(), ErrorCode::kExpired);
  EXPECT_EQ(StoredVersion("root.json"), 2u);  // verified roots are kept even so
  repo_.root.version = 3;
  repo_.root.expires = kNow + kDay;
  repo_.PublishRoot();
  EXPECT_TRUE(Refresh().has_value());
}

TEST_F(UpdaterTest, RootProbeFailureOtherThanNotFoundFails) {
  repo_.fetcher.Set(kMetadataUrl + "2.root.json", Bytes(600000, 'x'));
  EXPECT_EQ(RefreshError(), ErrorCode::kLimitExceeded);
}

// --- timestamp ---------------------------------------------------------------------------------

TEST_F(UpdaterTest, TimestampBelowThresholdIsRejected) {
  repo_.root.roles["timestamp"].threshold = 2;
  repo_.keys["timestamp"].push_back(testing::NewKey());
  ASSERT_TRUE(repo_.root.AddKey("timestamp", repo_.keys["timestamp"].back().Public()).has_value());
  repo_.root.version = 2;
  repo_.PublishRoot();
  repo_.fetcher.Set(kMetadataUrl + "timestamp.json",
                    testing::SignToBytes(repo_.timestamp, {&repo_.keys["timestamp"].front()}));
  EXPECT_EQ(RefreshError(), ErrorCode::kBadSignature);
  EXPECT_FALSE(HasStored("timestamp.json"));
}

TEST_F(UpdaterTest, MaliciousMirrorMetadataSignedByUnknownKeysIsRejected) {
  TestRepo mirror;  // another repository with its own keys
  repo_.fetcher.Set(kMetadataUrl + "timestamp.json", mirror.timestamp_bytes);
  EXPECT_EQ(RefreshError(), ErrorCode::kBadSignature);
}

TEST_F(UpdaterTest, TimestampRollbackIsRejectedAndTrustedCopyKept) {
  repo_.timestamp.version = 2;
  repo_.PublishTimestamp();
  ASSERT_TRUE(Refresh().has_value());
  repo_.timestamp.version = 1;
  repo_.PublishTimestamp();
  EXPECT_EQ(RefreshError(), ErrorCode::kRollback);
  EXPECT_EQ(StoredVersion("timestamp.json"), 2u);
}

TEST_F(UpdaterTest, TimestampSnapshotMetaRollbackIsRejected) {
  repo_.Release();  // snapshot v2
  ASSERT_TRUE(Refresh().has_value());
  repo_.timestamp.version++;
  repo_.timestamp.snapshot_meta.version = 1;
  repo_.PublishTimestamp();
  EXPECT_EQ(RefreshError(), ErrorCode::kRollback);
}

TEST_F(UpdaterTest, SameTimestampVersionKeepsTrustedCopy) {
  ASSERT_TRUE(Refresh().has_value());
  Bytes before = Stored("timestamp.json");
  // Same version, other bytes (a later expiry): not new, so not stored.
  repo_.timestamp.expires += kDay;
  repo_.PublishTimestamp();
  ASSERT_TRUE(Refresh().has_value());
  EXPECT_EQ(Stored("timestamp.json"), before);
}

TEST_F(UpdaterTest, IndefiniteFreezeExpiredTimestampIsRejected) {
  ASSERT_TRUE(Refresh().has_value());
  now_ = kNow + 2 * kDay;  // timestamp expires after one day; the repository serves the same one
  EXPECT_EQ(RefreshError(), ErrorCode::kExpired);
  EXPECT_EQ(repo_.fetcher.requests().back(), kMetadataUrl + "timestamp.json");
}

TEST_F(UpdaterTest, ExpiredNewTimestampIsNotStored) {
  repo_.timestamp.version = 2;
  repo_.timestamp.expires = kNow - 1;
  repo_.PublishTimestamp();
  EXPECT_EQ(RefreshError(), ErrorCode::kExpired);
  EXPECT_FALSE(HasStored("timestamp.json"));
}

TEST_F(UpdaterTest, EndlessDataTimestampStopsAtTheLimit) {
  repo_.fetcher.Set(kMetadataUrl + "timestamp.json", Bytes(10 * 1024 * 1024, ' '));
  EXPECT_EQ(RefreshError(), ErrorCode::kLimitExceeded);
  EXPECT_LE(repo_.fetcher.delivered_bytes(), metadata::kMaxTimestampSize + 1);
}

TEST_F(UpdaterTest, FastForwardTimestampRecoveryAfterKeyRotation) {
  repo_.timestamp.version = 100;  // attacker-made version, trusted by the client
  repo_.PublishTimestamp();
  ASSERT_TRUE(Refresh().has_value());
  repo_.timestamp.version = 1;
  repo_.PublishTimestamp();
  EXPECT_EQ(RefreshError(), ErrorCode::kRollback);  // without rotation the rollback is refused
  RotateKey("timestamp");
  repo_.PublishTimestamp();  // signed with the new key, version 1
  ASSERT_TRUE(Refresh().has_value());
  EXPECT_EQ(StoredVersion("timestamp.json"), 1u);
}

TEST_F(UpdaterTest, FastForwardSnapshotRecoveryAfterKeyRotation) {
  repo_.snapshot.version = 99999;
  repo_.PublishSnapshot();
  repo_.timestamp.version++;
  repo_.PublishTimestamp();
  ASSERT_TRUE(Refresh().has_value());
  RotateKey("snapshot");
  RotateKey("timestamp");
  repo_.snapshot.version = 1;
  repo_.PublishSnapshot();
  repo_.timestamp.version++;
  repo_.PublishTimestamp();
  ASSERT_TRUE(Refresh().has_value());
  EXPECT_EQ(StoredVersion("snapshot.json"), 1u);
}

// --- snapshot ----------------------------------------------------------------------------------

TEST_F(UpdaterTest, MixAndMatchSnapshotVersionNotInTimestampIsRejected) {
  repo_.snapshot.version = 2;
  repo_.PublishSnapshot();
  repo_.timestamp.snapshot_meta.version = 1;  // timestamp still names v1 ...
  repo_.fetcher.Set(kMetadataUrl + "1.snapshot.json", repo_.snapshot_bytes);  // ... served v2
  EXPECT_EQ(RefreshError(), ErrorCode::kRollback);
  EXPECT_FALSE(HasStored("snapshot.json"));
  EXPECT_EQ(repo_.fetcher.requests().back(), kMetadataUrl + "1.snapshot.json");
}

TEST_F(UpdaterTest, SnapshotNotMatchingTimestampHashesIsRejected) {
  metadata::MetaFile meta;
  meta.version = 1;
  meta.length = repo_.snapshot_bytes.size();
  meta.hashes = metadata::Hashes{{"sha256", std::string(64, '0')}};
  repo_.timestamp.snapshot_meta = meta;
  repo_.timestamp.version = 2;
  repo_.PublishTimestamp();
  EXPECT_EQ(RefreshError(), ErrorCode::kHashMismatch);
}

TEST_F(UpdaterTest, SnapshotLongerThanTimestampLengthStopsAtTheLength) {
  repo_.timestamp.snapshot_meta.length = 100;
  repo_.timestamp.version = 2;
  repo_.PublishTimestamp();
  EXPECT_EQ(RefreshError(), ErrorCode::kLimitExceeded);
}

TEST_F(UpdaterTest, SnapshotSignedByWrongKeyIsRejected) {
  repo_.keys["snapshot"].front() = testing::NewKey();
  repo_.Release();
  EXPECT_EQ(RefreshError(), ErrorCode::kBadSignature);
}

TEST_F(UpdaterTest, SnapshotRollingBackTargetsVersionIsRejected) {
  repo_.Release();  // targets v2
  ASSERT_TRUE(Refresh().has_value());
  repo_.targets.version = 0;
  repo_.Release();  // targets v1 in snapshot v3
  EXPECT_EQ(RefreshError(), ErrorCode::kRollback);
  EXPECT_EQ(StoredVersion("snapshot.json"), 2u);
}

TEST_F(UpdaterTest, SnapshotDroppingARoleIsRejected) {
  repo_.Delegate("targets", "team", {"team/*"});
  repo_.PublishTargets("team");
  repo_.Release();
  ASSERT_TRUE(Refresh().has_value());
  repo_.snapshot.meta.erase("team.json");
  repo_.snapshot.version++;
  repo_.PublishSnapshot();
  repo_.timestamp.version++;
  repo_.PublishTimestamp();
  EXPECT_EQ(RefreshError(), ErrorCode::kRollback);
}

TEST_F(UpdaterTest, ExpiredSnapshotIsRejected) {
  repo_.snapshot.expires = kNow - 1;
  repo_.Release();
  EXPECT_EQ(RefreshError(), ErrorCode::kExpired);
}

// --- targets -----------------------------------------------------------------------------------

TEST_F(UpdaterTest, TargetsVersionNotInSnapshotIsRejected) {
  repo_.targets.version = 2;
  repo_.fetcher.Set(kMetadataUrl + "1.targets.json",
                    testing::SignToBytes(repo_.targets, repo_.Signers("targets")));
  EXPECT_EQ(RefreshError(), ErrorCode::kRollback);
  EXPECT_FALSE(HasStored("targets.json"));
}

TEST_F(UpdaterTest, ExpiredTargetsIsRejected) {
  repo_.targets.expires = kNow - 1;
  repo_.Release();
  EXPECT_EQ(RefreshError(), ErrorCode::kExpired);
}

TEST_F(UpdaterTest, TargetsSignedByWrongKeyIsRejected) {
  repo_.keys["targets"].front() = testing::NewKey();
  repo_.Release();
  EXPECT_EQ(RefreshError(), ErrorCode::kBadSignature);
}

// --- target download ---------------------------------------------------------------------------

TEST_F(UpdaterTest, DownloadsTargetByHashPrefixedNameAndVerifiesIt) {
  repo_.AddTarget("dir/app v1.bin", "payload");
  std::string hash0 = repo_.targets.targets.at("dir/app v1.bin").hashes.at("sha256");
  repo_.fetcher.Set(kTargetsUrl + "dir/" + hash0 + ".app%20v1.bin", ToBytes("payload"));
  repo_.Release();
  auto path = Download("dir/app v1.bin");
  ASSERT_TRUE(path.has_value()) << path.error().ToString();
  EXPECT_EQ(path->filename(), "dir%2Fapp%20v1.bin");
  EXPECT_EQ(*ReadFile(*path, 100), ToBytes("payload"));
  std::string hash = repo_.targets.targets.at("dir/app v1.bin").hashes.at("sha256");
  EXPECT_EQ(repo_.fetcher.requests().back(), kTargetsUrl + "dir/" + hash + ".app%20v1.bin");
  EXPECT_EQ(repo_.fetcher.requests().size(), 5u);
}

TEST_F(UpdaterTest, ArbitraryInstallationWrongTargetContentIsRejected) {
  repo_.AddTarget("a.bin", "payload");
  repo_.Release();
  std::string hash = repo_.targets.targets.at("a.bin").hashes.at("sha256");
  repo_.fetcher.Set(kTargetsUrl + hash + ".a.bin", ToBytes("malware"));  // same length
  auto path = Download("a.bin");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kHashMismatch);
  EXPECT_FALSE(fs::exists(td_->path() / "a.bin"));
}

TEST_F(UpdaterTest, EndlessDataTargetStopsAtItsSignedLength) {
  repo_.AddTarget("a.bin", "payload");
  repo_.Release();
  std::string hash = repo_.targets.targets.at("a.bin").hashes.at("sha256");
  repo_.fetcher.Set(kTargetsUrl + hash + ".a.bin", Bytes(1 << 20, 'x'));
  auto path = Download("a.bin");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kLimitExceeded);
}

TEST_F(UpdaterTest, ShortTargetIsRejected) {
  repo_.AddTarget("a.bin", "payload");
  repo_.Release();
  std::string hash = repo_.targets.targets.at("a.bin").hashes.at("sha256");
  repo_.fetcher.Set(kTargetsUrl + hash + ".a.bin", ToBytes("pay"));
  auto path = Download("a.bin");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kHashMismatch);
}

TEST_F(UpdaterTest, UnknownTargetIsNotFound) {
  auto path = Download("nothing.bin");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kNotFound);
}

TEST_F(UpdaterTest, CachedTargetIsFound) {
  repo_.AddTarget("a.bin", "payload");
  repo_.Release();
  ASSERT_TRUE(Download("a.bin").has_value());
  auto updater = MakeUpdater();
  ASSERT_TRUE(updater.has_value());
  auto info = updater->GetTargetInfo("a.bin");
  ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(updater->FindCachedTarget("a.bin", *info, td_->path()).has_value());
  ASSERT_TRUE(WriteFileAtomic(td_->path() / "a.bin", AsBytes("paylod")).has_value());
  EXPECT_FALSE(updater->FindCachedTarget("a.bin", *info, td_->path()).has_value());
}

// --- delegations -------------------------------------------------------------------------------

TEST_F(UpdaterTest, DelegatedTargetIsFoundAndRoleStoredUnderQuotedName) {
  repo_.Delegate("targets", "team/a", {"apps/*"});
  repo_.AddTarget("apps/x.bin", "x", "team/a");
  repo_.PublishTargets("team/a");
  repo_.Release();
  repo_.fetcher.ClearRequests();
  auto path = Download("apps/x.bin");
  ASSERT_TRUE(path.has_value()) << path.error().ToString();
  auto reqs = repo_.fetcher.requests();
  ASSERT_EQ(reqs.size(), 6u);
  EXPECT_EQ(reqs[4], kMetadataUrl + "1.team%2Fa.json");
  EXPECT_TRUE(HasStored("team%2Fa.json"));
}

TEST_F(UpdaterTest, WrongSoftwareTargetOutsideTheDelegatedPathsIsNotFound) {
  // "team" may only sign apps/*; it lists a target elsewhere (extraneous dependency / wrong
  // software).
  repo_.Delegate("targets", "team", {"apps/*"});
  repo_.AddTarget("system/kernel", "evil", "team");
  repo_.PublishTargets("team");
  repo_.Release();
  auto path = Download("system/kernel");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kNotFound);
  for (const auto& url : repo_.fetcher.requests()) EXPECT_EQ(url.find("team"), std::string::npos);
}

TEST_F(UpdaterTest, DelegatedRoleSignedByWrongKeyIsRejected) {
  repo_.Delegate("targets", "team", {"apps/*"});
  repo_.AddTarget("apps/x.bin", "x", "team");
  repo_.keys["team"].front() = testing::NewKey();
  repo_.PublishTargets("team");
  repo_.Release();
  auto path = Download("apps/x.bin");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kBadSignature);
}

TEST_F(UpdaterTest, SearchIsPreorderDepthFirst) {
  repo_.Delegate("targets", "a", {"*"});
  repo_.Delegate("a", "a1", {"*"});
  repo_.Delegate("targets", "b", {"*"});
  repo_.AddTarget("f", "from b", "b");
  for (const char* r : {"a1", "a", "b"}) repo_.PublishTargets(r);
  repo_.Release();
  repo_.fetcher.ClearRequests();
  ASSERT_TRUE(Download("f").has_value());
  auto reqs = repo_.fetcher.requests();
  ASSERT_EQ(reqs.size(), 8u);
  EXPECT_EQ(reqs[4], kMetadataUrl + "1.a.json");
  EXPECT_EQ(reqs[5], kMetadataUrl + "1.a1.json");
  EXPECT_EQ(reqs[6], kMetadataUrl + "1.b.json");
}

TEST_F(UpdaterTest, TerminatingDelegationStopsTheSearch) {
  repo_.Delegate("targets", "a", {"*"}, /*terminating=*/true);
  repo_.Delegate("targets", "b", {"*"});
  repo_.AddTarget("f", "from b", "b");
  repo_.PublishTargets("a");
  repo_.PublishTargets("b");
  repo_.Release();
  auto path = Download("f");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(repo_.fetcher.requests().back(), kMetadataUrl + "1.a.json");
}

TEST_F(UpdaterTest, DelegationSearchVisitsAtMostMaxDelegations) {
  config_.max_delegations = 2;
  repo_.Delegate("targets", "r1", {"*"});
  repo_.Delegate("r1", "r2", {"*"});
  repo_.Delegate("r2", "r3", {"*"});
  repo_.AddTarget("f", "deep", "r3");
  for (const char* r : {"r1", "r2", "r3"}) repo_.PublishTargets(r);
  repo_.Release();
  auto path = Download("f");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kNotFound);
  config_.max_delegations = 3;
  EXPECT_TRUE(Download("f").has_value());
}

TEST_F(UpdaterTest, DelegationCycleIsVisitedOnce) {
  repo_.Delegate("targets", "a", {"*"});
  repo_.Delegate("a", "b", {"*"});
  repo_.Delegate("b", "a", {"*"});
  repo_.PublishTargets("a");
  repo_.PublishTargets("b");
  repo_.Release();
  repo_.fetcher.ClearRequests();
  auto path = Download("missing");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(repo_.fetcher.requests().size(), 6u);
}

}  // namespace
}  // namespace airlock::client
