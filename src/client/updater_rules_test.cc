// The client rules where the reference implementations differ or are easy to get wrong (issue 10,
// section 8): repeated signature key ids, the delegation "diamond", fast-forward recovery that
// keeps a key, and targets streamed to disk under their signed length. Each attack runs against the
// real Updater and asserts the exact error and that nothing was trusted or written.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "client/test_repo.h"
#include "client/updater.h"
#include "client/updater_test_fixture.h"
#include "common/file.h"
#include "crypto/hash.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;
using testing::kDay;
using testing::kMetadataUrl;
using testing::kTargetsUrl;
using testing::UpdaterTest;

std::vector<std::string> DirEntries(const fs::path& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// --- signatures naming one key id twice --------------------------------------------------------

TEST_F(UpdaterTest, TimestampListingOneKeyIdTwiceIsRefusedAndNotStored) {
  ASSERT_TRUE(Refresh().has_value());
  const Bytes trusted = Stored("timestamp.json");
  repo_.timestamp.version++;
  auto md = metadata::SignMetadata(repo_.timestamp, repo_.Signers("timestamp"));
  ASSERT_TRUE(md.has_value());
  md->signatures.push_back(md->signatures.front());
  repo_.fetcher.Set(kMetadataUrl + "timestamp.json", ToBytes(*md->ToBytes()));
  Result<void> r = Refresh();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_TRUE(Contains(r.error().ToString(), "more than once")) << r.error().ToString();
  EXPECT_EQ(Stored("timestamp.json"), trusted);
}

// --- delegation diamond ------------------------------------------------------------------------
//
// targets delegates "a" (a/*, terminating) and "b" (*/*). Both delegate "c": a lists key KA for it,
// b lists key KB. c is signed with KB only, and lists a/evil (which only a's delegation may grant,
// since a is terminating for a/*) and b/ok. python-tuf, go-tuf and tuf-js keep loaded delegated
// metadata by role name: once c was loaded through b, a search through a returns c's a/evil
// without checking KA. Here c through a must be verified with a's keys and is refused.
class DiamondTest : public UpdaterTest {
 protected:
  void SetUp() override {
    UpdaterTest::SetUp();
    repo_.Delegate("targets", "a", {"a/*"}, /*terminating=*/true);
    repo_.Delegate("targets", "b", {"*/*"});
    repo_.Delegate("a", "c", {"a/*"});  // keys["c"] = {KA}
    repo_.Delegate("b", "c", {"*/*"});  // keys["c"] = {KA, KB}
  }

  // Signs c with KB, and with KA too if `also_ka`, and releases everything.
  void Publish(bool also_ka) {
    repo_.AddTarget("a/evil", "evil", "c");
    repo_.AddTarget("b/ok", "ok", "c");
    if (!also_ka) repo_.keys["c"].erase(repo_.keys["c"].begin());
    for (const char* r : {"c", "a", "b"}) repo_.PublishTargets(r);
    repo_.Release();
    repo_.fetcher.ClearRequests();
  }

  void ExpectNoTargetFetched() {
    for (const auto& url : repo_.fetcher.requests()) {
      EXPECT_FALSE(Contains(url, kTargetsUrl)) << url;
    }
    EXPECT_TRUE(DirEntries(td_->path()).empty());
  }
};

TEST_F(DiamondTest, RoleLoadedThroughOneDelegatorIsNotTrustedThroughAnother) {
  Publish(/*also_ka=*/false);
  auto updater = MakeUpdater();
  ASSERT_TRUE(updater.has_value()) << updater.error().ToString();
  // c through b: signed by the key b lists, so b/ok is c's to give.
  auto ok = updater->GetTargetInfo("b/ok");
  ASSERT_TRUE(ok.has_value()) << ok.error().ToString();
  ASSERT_NE(updater->trusted().targets_on_path({"targets", "b", "c"}), nullptr);
  // The attack: the same updater searches a/evil, which only a's delegation covers.
  auto evil = updater->GetTargetInfo("a/evil");
  ASSERT_FALSE(evil.has_value());
  EXPECT_EQ(evil.error().code(), ErrorCode::kBadSignature);
  EXPECT_TRUE(Contains(evil.error().ToString(), "c (delegated by a)")) << evil.error().ToString();
  EXPECT_TRUE(Contains(evil.error().ToString(), "0 of 1 required signatures"))
      << evil.error().ToString();
  EXPECT_EQ(updater->trusted().targets_on_path({"targets", "a", "c"}), nullptr);
  // c's copy through b is still trusted for b's path only.
  EXPECT_NE(updater->trusted().targets_on_path({"targets", "b", "c"}), nullptr);
  ExpectNoTargetFetched();
}

TEST_F(DiamondTest, StoredCopyLoadedThroughOneDelegatorIsReverifiedThroughAnother) {
  Publish(/*also_ka=*/false);
  {
    auto updater = MakeUpdater();
    ASSERT_TRUE(updater.has_value());
    ASSERT_TRUE(updater->GetTargetInfo("b/ok").has_value());
  }
  ASSERT_TRUE(HasStored("c.json"));
  const Bytes stored = Stored("c.json");
  // A new process: c.json on disk was verified through b; through a it is refused.
  auto path = Download("a/evil");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kBadSignature);
  EXPECT_EQ(Stored("c.json"), stored);
  ExpectNoTargetFetched();
}

TEST_F(DiamondTest, SearchThroughTheFirstDelegatorRefusesWithNothingLoaded) {
  Publish(/*also_ka=*/false);
  auto path = Download("a/evil");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kBadSignature);
  EXPECT_FALSE(HasStored("c.json"));  // never trusted, never stored
  ExpectNoTargetFetched();
}

TEST_F(DiamondTest, RoleSignedWithBothDelegatorsKeysIsTrustedThroughEach) {
  Publish(/*also_ka=*/true);
  auto updater = MakeUpdater();
  ASSERT_TRUE(updater.has_value());
  ASSERT_TRUE(updater->GetTargetInfo("b/ok").has_value());
  auto evil = updater->GetTargetInfo("a/evil");
  ASSERT_TRUE(evil.has_value()) << evil.error().ToString();
  EXPECT_NE(updater->trusted().targets_on_path({"targets", "a", "c"}), nullptr);
  EXPECT_NE(updater->trusted().targets_on_path({"targets", "b", "c"}), nullptr);
  // Named by its delegator alone, c is now ambiguous.
  EXPECT_EQ(updater->trusted().targets("c"), nullptr);
}

// --- fast-forward attack recovery (5.3.11) -----------------------------------------------------
//
// After a fast-forward (versions pushed up with a key the attacker held), the repository rotates
// the role's keys and restarts its versions. If the rotation keeps a key (here: adds one), the old
// copy still verifies under the new root, so only the deletion the specification asks for lets
// the client accept the restarted versions. These tests fail when that deletion is removed.

TEST_F(UpdaterTest, FastForwardRecoveryResetsTimestampEvenWhenARotationKeepsTheOldKey) {
  repo_.timestamp.version = 1000;  // the attacker's version, trusted by the client
  repo_.PublishTimestamp();
  ASSERT_TRUE(Refresh().has_value());
  ASSERT_EQ(StoredVersion("timestamp.json"), 1000u);
  repo_.keys["timestamp"].push_back(testing::NewKey());
  ASSERT_TRUE(repo_.root.AddKey("timestamp", repo_.keys["timestamp"].back().Public()));
  repo_.root.version++;
  repo_.PublishRoot();
  repo_.timestamp.version = 1;
  repo_.PublishTimestamp();
  Result<void> r = Refresh();
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(StoredVersion("timestamp.json"), 1u);
  EXPECT_EQ(StoredVersion("root.json"), 2u);
}

TEST_F(UpdaterTest, FastForwardRecoveryResetsSnapshotEvenWhenARotationKeepsTheOldKey) {
  repo_.snapshot.version = 1000;
  repo_.PublishSnapshot();
  repo_.timestamp.version++;
  repo_.PublishTimestamp();
  ASSERT_TRUE(Refresh().has_value());
  ASSERT_EQ(StoredVersion("snapshot.json"), 1000u);
  repo_.keys["snapshot"].push_back(testing::NewKey());
  ASSERT_TRUE(repo_.root.AddKey("snapshot", repo_.keys["snapshot"].back().Public()));
  repo_.root.version++;
  repo_.PublishRoot();
  repo_.snapshot.version = 1;  // the timestamp keeps counting; its snapshot version restarts
  repo_.PublishSnapshot();
  repo_.timestamp.version++;
  repo_.PublishTimestamp();
  Result<void> r = Refresh();
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(StoredVersion("snapshot.json"), 1u);
}

TEST_F(UpdaterTest, RestartedVersionsWithoutARotationAreStillRollbacks) {
  repo_.timestamp.version = 1000;
  repo_.PublishTimestamp();
  ASSERT_TRUE(Refresh().has_value());
  // A new root that leaves the timestamp and snapshot keys alone resets nothing.
  repo_.root.expires += kDay;
  repo_.root.version++;
  repo_.PublishRoot();
  repo_.timestamp.version = 1;
  repo_.PublishTimestamp();
  EXPECT_EQ(RefreshError(), ErrorCode::kRollback);
  EXPECT_EQ(StoredVersion("timestamp.json"), 1000u);
  EXPECT_EQ(StoredVersion("root.json"), 2u);
}

TEST_F(UpdaterTest, TargetsKeyRotationDropsTheStoredTargets) {
  ASSERT_TRUE(Refresh().has_value());
  ASSERT_TRUE(HasStored("targets.json"));
  RotateKey("targets");
  // Until the repository re-signs targets, the client has no targets it may trust.
  EXPECT_EQ(RefreshError(), ErrorCode::kBadSignature);
  EXPECT_FALSE(HasStored("targets.json"));
  repo_.Release();
  ASSERT_TRUE(Refresh().has_value());
  EXPECT_TRUE(HasStored("targets.json"));
}

// --- targets streamed to disk ------------------------------------------------------------------

// Serves through repo_.fetcher but refuses whole-body fetches of targets and records the largest
// chunk handed to the updater.
class StreamOnlyFetcher : public Fetcher {
 public:
  explicit StreamOnlyFetcher(MemoryFetcher& inner) : inner_(inner) {}
  Result<Bytes> Fetch(const std::string& url, uint64_t max_length) override {
    if (Contains(url, kTargetsUrl)) {
      ADD_FAILURE() << "whole-body fetch of a target: " << url;
      return MakeError(ErrorCode::kInternal, "whole-body fetch of a target");
    }
    return inner_.Fetch(url, max_length);
  }
  Result<void> FetchTo(const std::string& url, uint64_t max_length,
                       const ChunkSink& sink) override {
    return inner_.FetchTo(url, max_length, [&](ByteSpan chunk) {
      largest_chunk_ = std::max(largest_chunk_, chunk.size());
      return sink(chunk);
    });
  }
  size_t largest_chunk() const { return largest_chunk_; }

 private:
  MemoryFetcher& inner_;
  size_t largest_chunk_ = 0;
};

class StreamingTest : public UpdaterTest {
 protected:
  void SetUp() override {
    UpdaterTest::SetUp();
    fetcher_ = &stream_only_;
  }
  std::string TargetUrl(const std::string& path) {
    return kTargetsUrl +
           metadata::ConsistentTargetPath(path, repo_.targets.targets.at(path).hashes.at("sha256"));
  }
  StreamOnlyFetcher stream_only_{repo_.fetcher};
};

TEST_F(StreamingTest, TargetLargerThanTheBufferStreamsToDisk) {
  repo_.fetcher.set_chunk_size(4096);
  std::string content(3 * kFetchChunkSize + 7, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>((i * 131) % 251);
  repo_.AddTarget("big.bin", content);
  repo_.Release();
  auto path = Download("big.bin");
  ASSERT_TRUE(path.has_value()) << path.error().ToString();
  EXPECT_EQ(*ReadFile(*path, 1 << 24), ToBytes(content));
  EXPECT_EQ(stream_only_.largest_chunk(), 4096u);
  EXPECT_EQ(DirEntries(td_->path()), std::vector<std::string>{"big.bin"});
}

TEST_F(StreamingTest, EndlessBodyIsCutOffAtTheSignedLengthAndLeavesNoFile) {
  repo_.AddTarget("a.bin", "payload");
  repo_.Release();
  repo_.fetcher.Set(TargetUrl("a.bin"), Bytes(10 * 1024 * 1024, 'x'));
  auto path = Download("a.bin");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kLimitExceeded);
  EXPECT_EQ(path.error().message(),
            "target a.bin: the server sent more than its signed length of 7 bytes");
  EXPECT_LE(repo_.fetcher.delivered_bytes(), 64u * 1024);  // metadata + 8 bytes of the body
  EXPECT_TRUE(DirEntries(td_->path()).empty());
}

TEST_F(StreamingTest, WrongHashBodyLeavesNoFileAndKeepsAnOlderOne) {
  repo_.AddTarget("a.bin", "payload");
  repo_.Release();
  repo_.fetcher.Set(TargetUrl("a.bin"), ToBytes("malware"));  // the signed length, another hash
  auto path = Download("a.bin");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kHashMismatch);
  EXPECT_TRUE(DirEntries(td_->path()).empty());
  // A file already at the path (an earlier release) is left exactly as it was.
  ASSERT_TRUE(WriteFileAtomic(td_->path() / "a.bin", AsBytes("old release")).has_value());
  path = Download("a.bin");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kHashMismatch);
  EXPECT_EQ(DirEntries(td_->path()), std::vector<std::string>{"a.bin"});
  EXPECT_EQ(*ReadFile(td_->path() / "a.bin", 100), ToBytes("old release"));
}

TEST_F(StreamingTest, ShortBodyLeavesNoFile) {
  repo_.AddTarget("a.bin", "payload");
  repo_.Release();
  repo_.fetcher.Set(TargetUrl("a.bin"), ToBytes("pay"));
  auto path = Download("a.bin");
  ASSERT_FALSE(path.has_value());
  EXPECT_EQ(path.error().code(), ErrorCode::kHashMismatch);
  EXPECT_TRUE(Contains(path.error().ToString(), "length 3 but expected 7"))
      << path.error().ToString();
  EXPECT_TRUE(DirEntries(td_->path()).empty());
}

}  // namespace
}  // namespace airlock::client
