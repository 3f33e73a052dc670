#include "client/fetcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

#include "client/http_fetcher.h"
#include "client/metadata_store.h"
#include "client/test_http_server.h"
#include "common/file.h"

namespace airlock::client {
namespace {

TEST(UrlQuote, EncodesEverythingButUnreserved) {
  EXPECT_EQ(UrlQuote("a-b_c.d~e"), "a-b_c.d~e");
  EXPECT_EQ(UrlQuote("team/a b"), "team%2Fa%20b");
  EXPECT_EQ(UrlQuote("%41?#&+"), "%2541%3F%23%26%2B");
  EXPECT_EQ(UrlQuote("\xc3\xa9"), "%C3%A9");
}

TEST(TargetFileName, NeverNamesADirectory) {
  EXPECT_EQ(TargetFileName("."), "%2E");
  EXPECT_EQ(TargetFileName(".."), "%2E%2E");
  EXPECT_EQ(TargetFileName("../etc/passwd"), "..%2Fetc%2Fpasswd");
}

TEST(MetadataStore, StoresLoadsAndRemovesByQuotedRoleName) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.has_value());
  MetadataStore store(dir->path() / "md");
  ASSERT_TRUE(store.Store("a/b", AsBytes("x")).has_value());
  EXPECT_TRUE(std::filesystem::exists(dir->path() / "md" / "a%2Fb.json"));
  EXPECT_EQ(*store.Load("a/b", 10), ToBytes("x"));
  EXPECT_EQ(store.Load("a/b", 0).error().code(), ErrorCode::kLimitExceeded);
  ASSERT_TRUE(store.Remove("a/b").has_value());
  EXPECT_TRUE(store.Remove("a/b").has_value());
  EXPECT_EQ(store.Load("a/b", 10).error().code(), ErrorCode::kNotFound);
}

TEST(MemoryFetcher, RecordsRequestsAndEnforcesTheBound) {
  MemoryFetcher f;
  f.Set("u", ToBytes("12345"));
  EXPECT_EQ(*f.Fetch("u", 5), ToBytes("12345"));
  EXPECT_EQ(f.Fetch("u", 4).error().code(), ErrorCode::kLimitExceeded);
  EXPECT_EQ(f.Fetch("v", 4).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(f.requests(), (std::vector<std::string>{"u", "u", "v"}));
  EXPECT_EQ(f.delivered_bytes(), 10u);
}

TEST(FileFetcher, ReadsPathsAndFileUrls) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.has_value());
  ASSERT_TRUE(WriteFileAtomic(dir->path() / "f", AsBytes("abc")).has_value());
  FileFetcher f;
  EXPECT_EQ(*f.Fetch((dir->path() / "f").string(), 3), ToBytes("abc"));
  EXPECT_EQ(*f.Fetch("file://" + (dir->path() / "f").string(), 3), ToBytes("abc"));
  EXPECT_EQ(f.Fetch((dir->path() / "f").string(), 2).error().code(), ErrorCode::kLimitExceeded);
  EXPECT_EQ(f.Fetch((dir->path() / "g").string(), 2).error().code(), ErrorCode::kNotFound);
}

// Collects what a FetchTo delivers and the largest chunk.
struct Collector {
  Bytes body;
  size_t largest_chunk = 0;
  ChunkSink Sink() {
    return [this](ByteSpan chunk) -> Result<void> {
      largest_chunk = std::max(largest_chunk, chunk.size());
      body.insert(body.end(), chunk.begin(), chunk.end());
      return {};
    };
  }
};

TEST(MemoryFetcher, StreamsInChunksAndNeverPastTheBound) {
  MemoryFetcher f;
  f.set_chunk_size(2);
  f.Set("u", ToBytes("12345"));
  Collector all;
  ASSERT_TRUE(f.FetchTo("u", 5, all.Sink()).has_value());
  EXPECT_EQ(all.body, ToBytes("12345"));
  EXPECT_EQ(all.largest_chunk, 2u);
  Collector cut;
  auto r = f.FetchTo("u", 3, cut.Sink());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded);
  EXPECT_EQ(cut.body, ToBytes("123"));
}

TEST(Fetcher, SinkErrorStopsTheTransferAndIsReturned) {
  MemoryFetcher f;
  f.set_chunk_size(1);
  f.Set("u", ToBytes("12345"));
  int calls = 0;
  auto r = f.FetchTo("u", 5, [&calls](ByteSpan) -> Result<void> {
    if (++calls == 2) return MakeError(ErrorCode::kHashMismatch, "stop");
    return {};
  });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  EXPECT_EQ(calls, 2);
}

TEST(FileFetcher, StreamsInBoundedChunks) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.has_value());
  Bytes content(2 * kFetchChunkSize + 3, 'z');
  ASSERT_TRUE(WriteFileAtomic(dir->path() / "f", content).has_value());
  FileFetcher f;
  Collector c;
  ASSERT_TRUE(f.FetchTo((dir->path() / "f").string(), content.size(), c.Sink()).has_value());
  EXPECT_EQ(c.body, content);
  EXPECT_EQ(c.largest_chunk, kFetchChunkSize);
  Collector none;
  auto r = f.FetchTo((dir->path() / "f").string(), content.size() - 1, none.Sink());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded);
  EXPECT_TRUE(none.body.empty());
  EXPECT_EQ(f.FetchTo((dir->path() / "g").string(), 9, none.Sink()).error().code(),
            ErrorCode::kNotFound);
}

class HttpFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir.has_value());
    dir_.emplace(std::move(*dir));
    std::filesystem::create_directories(dir_->path() / "www");
    ASSERT_TRUE(WriteFileAtomic(dir_->path() / "www" / "file.txt", AsBytes("hello")).has_value());
    server_ = std::make_unique<testing::NodeHttpServer>(dir_->path() / "www");
    ASSERT_TRUE(server_->ok()) << "node http server did not start";
  }
  std::optional<ScopedTempDir> dir_;
  std::unique_ptr<testing::NodeHttpServer> server_;
};

TEST_F(HttpFetcherTest, FetchesAFile) {
  HttpFetcher f;
  auto body = f.Fetch(server_->Url("/file.txt"), 5);
  ASSERT_TRUE(body.has_value()) << body.error().ToString();
  EXPECT_EQ(*body, ToBytes("hello"));
}

TEST_F(HttpFetcherTest, FollowsRedirectsOnlyAsFarAsAllowed) {
  ASSERT_TRUE(WriteFileAtomic(dir_->path() / "www" / "blob", AsBytes("moved")).has_value());
  HttpFetcher f;
  auto body = f.Fetch(server_->Url("/redirect"), 5);
  ASSERT_TRUE(body.has_value()) << body.error().ToString();
  EXPECT_EQ(*body, ToBytes("moved"));
  HttpFetcherOptions none;
  none.max_redirects = 0;  // the 302 is returned as it is: not a 2xx
  HttpFetcher strict(none);
  auto refused = strict.Fetch(server_->Url("/redirect"), 5);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kIo);
  EXPECT_NE(refused.error().message().find("HTTP 302"), std::string::npos)
      << refused.error().message();
}

TEST_F(HttpFetcherTest, MissingFileIsNotFound) {
  HttpFetcher f;
  EXPECT_EQ(f.Fetch(server_->Url("/nope.json"), 100).error().code(), ErrorCode::kNotFound);
}

TEST_F(HttpFetcherTest, DeclaredLengthOverTheBoundIsRefused) {
  HttpFetcher f;
  EXPECT_EQ(f.Fetch(server_->Url("/file.txt"), 4).error().code(), ErrorCode::kLimitExceeded);
}

TEST_F(HttpFetcherTest, EndlessDataIsCutOffAtTheBound) {
  HttpFetcher f;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(f.Fetch(server_->Url("/endless"), 1 << 20).error().code(), ErrorCode::kLimitExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(HttpFetcherTest, EndlessDataStreamedStopsAtTheBoundInSmallChunks) {
  HttpFetcher f;
  Collector c;
  auto r = f.FetchTo(server_->Url("/endless"), 1 << 20, c.Sink());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded);
  EXPECT_LE(c.body.size(), 1u << 20);  // nothing past the bound reached the sink
  EXPECT_GT(c.body.size(), 0u);
  EXPECT_LE(c.largest_chunk, kFetchChunkSize);
}

TEST_F(HttpFetcherTest, SinkErrorAbortsTheTransfer) {
  HttpFetcher f;
  auto r = f.FetchTo(server_->Url("/endless"), 1 << 30, [](ByteSpan) -> Result<void> {
    return MakeError(ErrorCode::kHashMismatch, "refused by the sink");
  });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  EXPECT_EQ(r.error().message(), "refused by the sink");
}

TEST_F(HttpFetcherTest, SlowRetrievalTimesOut) {
  HttpFetcherOptions options;
  options.low_speed_limit_bytes_per_second = 10;
  options.low_speed_time = std::chrono::seconds(1);
  HttpFetcher f(options);
  EXPECT_EQ(f.Fetch(server_->Url("/slow"), 100).error().code(), ErrorCode::kIo);
}

TEST_F(HttpFetcherTest, OnlyHttpAndHttpsAreFetched) {
  HttpFetcher f;
  auto path = (dir_->path() / "www" / "file.txt").string();
  EXPECT_EQ(f.Fetch("file://" + path, 100).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(f.Fetch("ftp://127.0.0.1/x", 100).error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(HttpFetcherTest, ConnectionRefusedIsIo) {
  HttpFetcher f;
  EXPECT_EQ(f.Fetch("http://127.0.0.1:1/x", 100).error().code(), ErrorCode::kIo);
}

}  // namespace
}  // namespace airlock::client
