// DownloadFile against a real HTTP server on 127.0.0.1 (test_http_server.h, Node.js): resume with
// Range, a server that ignores Range, a truncated transfer, an endless body, wrong bytes.
#include "client/download.h"

#include <sys/stat.h>

#include <filesystem>
#include <optional>

#include <gtest/gtest.h>

#include "client/test_http_server.h"
#include "common/file.h"
#include "crypto/hash.h"
#include "crypto/random.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

class DownloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ScopedTempDir::Create({}, "airlock-download-");
    ASSERT_TRUE(tmp);
    tmp_.emplace(std::move(*tmp));
    server_ = std::make_unique<testing::NodeHttpServer>(tmp_->path() / "www");
    ASSERT_TRUE(server_->ok()) << "node is needed for this test";
    blob_ = crypto::RandomBytes(300 * 1024 + 17).value();
    ASSERT_TRUE(WriteFileAtomic(server_->root() / "blob", blob_));
    sha_ = HexEncode(crypto::Sha256(blob_));
    dest_ = tmp_->path() / "bundle.alb";
  }

  std::string Contents(const fs::path& p) { return ReadTextFile(p, 64 << 20).value_or("<none>"); }
  std::string Blob() const { return std::string(AsString(blob_)); }

  std::optional<ScopedTempDir> tmp_;
  std::unique_ptr<testing::NodeHttpServer> server_;
  Bytes blob_;
  std::string sha_;
  fs::path dest_;
};

TEST_F(DownloadTest, PlacesTheFileWhenLengthAndHashMatchAndReportsProgress) {
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  DownloadOptions options;
  options.progress = [&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); };
  auto r = DownloadFile(server_->Url("/blob"), dest_, blob_.size(), sha_, options);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(Contents(dest_), Blob());
  EXPECT_FALSE(fs::exists(PartPath(dest_)));
  ASSERT_GE(progress.size(), 2u);
  EXPECT_EQ(progress.front(), std::make_pair(uint64_t{0}, uint64_t{blob_.size()}));
  EXPECT_EQ(progress.back(), std::make_pair(uint64_t{blob_.size()}, uint64_t{blob_.size()}));
  for (size_t i = 1; i < progress.size(); ++i) EXPECT_GE(progress[i].first, progress[i - 1].first);

  // Already there with the right bytes: no request at all.
  server_->ClearRequests();
  ASSERT_TRUE(DownloadFile(server_->Url("/blob"), dest_, blob_.size(), sha_));
  EXPECT_TRUE(server_->Requests().empty());
}

// A CDN's redirect (302 with a relative Location) is followed; the bytes are checked by hash.
TEST_F(DownloadTest, FollowsARedirectToTheBlob) {
  auto r = DownloadFile(server_->Url("/redirect"), dest_, blob_.size(), sha_);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(Contents(dest_), Blob());
  EXPECT_EQ(server_->Requests(), (std::vector<std::string>{"/redirect", "/blob"}));
}

TEST_F(DownloadTest, ResumesATruncatedDownloadWithARangeFromThePartSize) {
  auto cut = DownloadFile(server_->Url("/blob?truncate"), dest_, blob_.size(), sha_);
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().code(), ErrorCode::kIo) << cut.error().ToString();
  EXPECT_FALSE(fs::exists(dest_));
  const uint64_t half = blob_.size() / 2;
  ASSERT_EQ(fs::file_size(PartPath(dest_)), half);  // what arrived is kept

  server_->ClearRequests();
  std::vector<uint64_t> done;
  DownloadOptions options;
  options.progress = [&](uint64_t d, uint64_t) { done.push_back(d); };
  auto resumed = DownloadFile(server_->Url("/blob"), dest_, blob_.size(), sha_, options);
  ASSERT_TRUE(resumed) << resumed.error().ToString();
  EXPECT_EQ(Contents(dest_), Blob());
  EXPECT_FALSE(fs::exists(PartPath(dest_)));
  EXPECT_EQ(server_->Requests(),
            std::vector<std::string>{"/blob range=bytes=" + std::to_string(half) + "-"});
  ASSERT_FALSE(done.empty());
  EXPECT_EQ(done.front(), half);
}

TEST_F(DownloadTest, StartsOverWhenTheServerAnswersTheRangeWithTheWholeFile) {
  const uint64_t third = blob_.size() / 3;
  ASSERT_TRUE(WriteFileAtomic(PartPath(dest_), ByteSpan(blob_).first(third), 0600));
  server_->ClearRequests();
  auto r = DownloadFile(server_->Url("/blob?norange"), dest_, blob_.size(), sha_);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(Contents(dest_), Blob());
  EXPECT_EQ(server_->Requests(),
            (std::vector<std::string>{"/blob?norange range=bytes=" + std::to_string(third) + "-",
                                      "/blob?norange"}));
}

TEST_F(DownloadTest, ACorruptPartEndsInHashMismatchAndIsDropped) {
  Bytes wrong(blob_.begin(), blob_.begin() + 1000);
  wrong[10] ^= 0x01;  // a flipped bit in the bytes kept from an earlier attempt
  ASSERT_TRUE(WriteFileAtomic(PartPath(dest_), wrong, 0600));
  auto r = DownloadFile(server_->Url("/blob"), dest_, blob_.size(), sha_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch) << r.error().ToString();
  EXPECT_FALSE(fs::exists(dest_));
  EXPECT_FALSE(fs::exists(PartPath(dest_)));
  // The next attempt starts clean and succeeds.
  ASSERT_TRUE(DownloadFile(server_->Url("/blob"), dest_, blob_.size(), sha_));
  EXPECT_EQ(Contents(dest_), Blob());
}

TEST_F(DownloadTest, RefusesAnEndlessBodyAtTheSignedLength) {
  std::vector<uint64_t> done;
  DownloadOptions options;
  options.progress = [&](uint64_t d, uint64_t) { done.push_back(d); };
  auto r = DownloadFile(server_->Url("/blob.endless"), dest_, 100000, sha_, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded) << r.error().ToString();
  EXPECT_NE(r.error().message().find("100000 bytes"), std::string::npos);
  EXPECT_FALSE(fs::exists(dest_));
  EXPECT_FALSE(fs::exists(PartPath(dest_)));
  ASSERT_FALSE(done.empty());
  EXPECT_LE(done.back(), 100000u);  // no byte past the bound was written
}

TEST_F(DownloadTest, RefusesAFileLongerThanTheSignedLength) {
  const std::string short_sha = HexEncode(crypto::Sha256(ByteSpan(blob_).first(1000)));
  auto r = DownloadFile(server_->Url("/blob"), dest_, 1000, short_sha);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded) << r.error().ToString();
  EXPECT_FALSE(fs::exists(dest_));
  EXPECT_FALSE(fs::exists(PartPath(dest_)));
}

TEST_F(DownloadTest, RefusesBytesWithAnotherHashAndLeavesTheDestinationAlone) {
  ASSERT_TRUE(WriteFileAtomic(dest_, AsBytes("the installed one")));
  Bytes other = blob_;
  other.back() ^= 0x80;
  ASSERT_TRUE(WriteFileAtomic(server_->root() / "blob", other));
  auto r = DownloadFile(server_->Url("/blob"), dest_, blob_.size(), sha_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  EXPECT_EQ(Contents(dest_), "the installed one");
  EXPECT_FALSE(fs::exists(PartPath(dest_)));
}

TEST_F(DownloadTest, APartLongerThanTheSignedLengthIsDiscarded) {
  Bytes longer = blob_;
  longer.push_back(0);
  ASSERT_TRUE(WriteFileAtomic(PartPath(dest_), longer, 0600));
  server_->ClearRequests();
  ASSERT_TRUE(DownloadFile(server_->Url("/blob"), dest_, blob_.size(), sha_));
  EXPECT_EQ(Contents(dest_), Blob());
  EXPECT_EQ(server_->Requests(), std::vector<std::string>{"/blob"});
}

TEST_F(DownloadTest, AMissingBlobIsNotFound) {
  auto r = DownloadFile(server_->Url("/nothing"), dest_, blob_.size(), sha_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

TEST_F(DownloadTest, RefusesOtherSchemesAndBadHashes) {
  auto file = DownloadFile("file:///etc/passwd", dest_, 10, sha_);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().code(), ErrorCode::kInvalidArgument);
  auto bad = DownloadFile(server_->Url("/blob"), dest_, blob_.size(), "abc");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(PartPath(dest_)));
}

TEST_F(DownloadTest, ThePartIsPrivate) {
  ASSERT_FALSE(DownloadFile(server_->Url("/blob?truncate"), dest_, blob_.size(), sha_));
  struct stat st {};
  ASSERT_EQ(::stat(PartPath(dest_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace airlock::client
