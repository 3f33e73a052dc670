// Runs the built airlock-agent binary against a repository served over HTTP on 127.0.0.1, exactly
// as the tuf-client contract (issue 3) says; and under faketime, past the timestamp's expiry.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "client/test_http_server.h"
#include "client/test_repo.h"
#include "common/file.h"
#include "common/require_service.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;
using testing::kMetadataUrl;
using testing::kTargetsUrl;

fs::path AgentBinary() {
  if (const char* dir = std::getenv("AIRLOCK_BIN_DIR")) return fs::path(dir) / "airlock-agent";
  return fs::read_symlink("/proc/self/exe").parent_path() / "airlock-agent";
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

// Runs `prefix airlock-agent tuf-client args...`; returns the exit status (-1 if it did not exit).
// With `stderr_file`, the agent's stderr goes there instead of /dev/null.
int RunAgent(const std::vector<std::string>& args, const std::string& prefix = "",
             const fs::path& stderr_file = {}) {
  std::string cmd = prefix + Quote(AgentBinary().string()) + " tuf-client";
  for (const auto& a : args) cmd += " " + Quote(a);
  cmd += " 2>" + (stderr_file.empty() ? std::string("/dev/null") : Quote(stderr_file.string()));
  int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(AgentBinary())) << AgentBinary();
    auto dir = ScopedTempDir::Create({}, "agent-test-");
    ASSERT_TRUE(dir.has_value());
    dir_.emplace(std::move(*dir));
    md_ = dir_->path() / "md";
    td_ = dir_->path() / "td";
    repo_.AddTarget("dir/a b.txt", "first release");
    repo_.Release();
    Serve();
    server_ = std::make_unique<testing::NodeHttpServer>(dir_->path() / "www");
    ASSERT_TRUE(server_->ok()) << "node http server did not start";
    ASSERT_TRUE(WriteFileAtomic(dir_->path() / "root.json", repo_.root_bytes.at(1)).has_value());
    metadata_url_ = server_->Url("/metadata/");
    targets_url_ = server_->Url("/targets/");
  }

  // Writes every file the in-memory repository serves under www/metadata and www/targets.
  void Serve() {
    for (const auto& [url, body] : repo_.fetcher.files()) {
      fs::path file;
      if (url.rfind(kMetadataUrl, 0) == 0) {
        file = dir_->path() / "www" / "metadata" / url.substr(kMetadataUrl.size());
      } else {
        file = dir_->path() / "www" / "targets" / url.substr(kTargetsUrl.size());
      }
      fs::create_directories(file.parent_path());
      ASSERT_TRUE(WriteFileAtomic(file, body).has_value());
    }
  }

  std::vector<std::string> MdFiles() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(md_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  int Init() {
    return RunAgent(
        {"--metadata-dir", md_.string(), "init", (dir_->path() / "root.json").string()});
  }
  // `download` of `names`; the agent's stderr in *err.
  int Download(const std::vector<std::string>& names, std::string* err) {
    std::vector<std::string> args = {"--metadata-url",    metadata_url_,  "--metadata-dir",
                                     md_.string(),        "--target-dir", td_.string(),
                                     "--target-base-url", targets_url_};
    for (const auto& n : names) {
      args.push_back("--target-name");
      args.push_back(n);
    }
    args.push_back("download");
    const fs::path err_file = dir_->path() / "stderr.txt";
    int rc = RunAgent(args, "", err_file);
    auto text = ReadTextFile(err_file, 1 << 20);
    *err = text ? *text : "";
    return rc;
  }
  std::vector<std::string> TdFiles() {
    std::vector<std::string> names;
    if (!fs::exists(td_)) return names;
    for (const auto& e : fs::directory_iterator(td_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  int Refresh(const std::string& prefix = "") {
    return RunAgent({"--metadata-url", metadata_url_, "--metadata-dir", md_.string(), "refresh"},
                    prefix);
  }

  testing::TestRepo repo_{::time(nullptr)};
  std::optional<ScopedTempDir> dir_;
  std::unique_ptr<testing::NodeHttpServer> server_;
  fs::path md_, td_;
  std::string metadata_url_, targets_url_;
};

TEST_F(AgentTest, InitRefreshDownloadFollowTheContract) {
  ASSERT_EQ(Init(), 0);
  EXPECT_EQ(MdFiles(), std::vector<std::string>{"root.json"});
  EXPECT_TRUE(server_->Requests().empty());  // init makes no request

  ASSERT_EQ(Refresh(), 0);
  EXPECT_EQ(MdFiles(), (std::vector<std::string>{"root.json", "snapshot.json", "targets.json",
                                                 "timestamp.json"}));
  EXPECT_EQ(*ReadFile(md_ / "snapshot.json", 1 << 20), repo_.snapshot_bytes);
  EXPECT_EQ(*ReadFile(md_ / "timestamp.json", 1 << 20), repo_.timestamp_bytes);
  EXPECT_EQ(server_->Requests(),
            (std::vector<std::string>{"/metadata/2.root.json", "/metadata/timestamp.json",
                                      "/metadata/2.snapshot.json", "/metadata/2.targets.json"}));

  server_->ClearRequests();
  // Options in another order; a base URL without its trailing '/'.
  ASSERT_EQ(RunAgent({"--target-dir", td_.string(), "--target-name", "dir/a b.txt",
                      "--metadata-dir", md_.string(), "--target-base-url", server_->Url("/targets"),
                      "--metadata-url", metadata_url_, "download"}),
            0);
  EXPECT_EQ(*ReadFile(td_ / "dir%2Fa%20b.txt", 1 << 20), ToBytes("first release"));
  std::string hash = repo_.targets.targets.at("dir/a b.txt").hashes.at("sha256");
  EXPECT_EQ(server_->Requests(),
            (std::vector<std::string>{"/metadata/2.root.json", "/metadata/timestamp.json",
                                      "/targets/dir/" + hash + ".a%20b.txt"}));

  // Cached: a second download makes no target request.
  server_->ClearRequests();
  ASSERT_EQ(RunAgent({"--metadata-url", metadata_url_, "--metadata-dir", md_.string(),
                      "--target-name", "dir/a b.txt", "--target-dir", td_.string(),
                      "--target-base-url", targets_url_, "download"}),
            0);
  EXPECT_EQ(server_->Requests().size(), 2u);
}

TEST_F(AgentTest, EveryFailureExitsWithOneAndUsageErrorsWithTwo) {
  // Usage errors (no subcommand, an unknown option, a missing argument or option) exit 2.
  EXPECT_EQ(RunAgent({}), 2);
  EXPECT_EQ(RunAgent({"--bogus", "refresh"}), 2);
  EXPECT_EQ(RunAgent({"--metadata-dir", md_.string(), "init"}), 2);
  EXPECT_EQ(RunAgent({"--metadata-dir", md_.string(), "init", "/nonexistent/root.json"}), 1);
  EXPECT_EQ(Refresh(), 1);  // not initialized
  ASSERT_EQ(Init(), 0);
  EXPECT_EQ(RunAgent({"--metadata-dir", md_.string(), "refresh"}), 2);  // no URL: usage
  EXPECT_EQ(RunAgent({"--metadata-url", server_->Url("/nothing/"), "--metadata-dir", md_.string(),
                      "refresh"}),
            1);
  // Unknown target, and a first good target followed by an unknown one.
  EXPECT_EQ(RunAgent({"--metadata-url", metadata_url_, "--metadata-dir", md_.string(),
                      "--target-name", "missing", "--target-dir", td_.string(), "--target-base-url",
                      targets_url_, "download"}),
            1);
  EXPECT_EQ(RunAgent({"--metadata-url", metadata_url_, "--metadata-dir", md_.string(),
                      "--target-name", "dir/a b.txt", "--target-name", "missing", "--target-dir",
                      td_.string(), "--target-base-url", targets_url_, "download"}),
            1);
  EXPECT_TRUE(fs::exists(td_ / "dir%2Fa%20b.txt"));
}

// Targets stream to disk (issue 10, section 8): a target several times larger than any network
// chunk arrives intact; an endless body stops at the signed length; a wrong body leaves no file.
TEST_F(AgentTest, LargeTargetDownloadsIntact) {
  std::string content(3 * 1024 * 1024 + 5, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>((i * 7919) % 253);
  repo_.AddTarget("big.bin", content);
  repo_.Release();
  Serve();
  ASSERT_EQ(Init(), 0);
  std::string err;
  ASSERT_EQ(Download({"big.bin"}, &err), 0) << err;
  EXPECT_EQ(*ReadFile(td_ / "big.bin", 1 << 24), ToBytes(content));
  EXPECT_EQ(TdFiles(), std::vector<std::string>{"big.bin"});
}

TEST_F(AgentTest, EndlessTargetIsCutOffAtItsSignedLengthAndLeavesNoFile) {
  // The server answers any path ending in ".endless" with an endless body.
  repo_.AddTarget("app.endless", "payload");
  repo_.Release();
  Serve();
  ASSERT_EQ(Init(), 0);
  std::string err;
  EXPECT_EQ(Download({"app.endless"}, &err), 1);
  EXPECT_NE(err.find("target app.endless: the server sent more than its signed length of 7 bytes"),
            std::string::npos)
      << err;
  EXPECT_TRUE(TdFiles().empty());
}

TEST_F(AgentTest, WrongTargetBodyLeavesNoFile) {
  repo_.AddTarget("a.bin", "payload");
  repo_.Release();
  Serve();
  const std::string hash = repo_.targets.targets.at("a.bin").hashes.at("sha256");
  ASSERT_TRUE(
      WriteFileAtomic(dir_->path() / "www" / "targets" / (hash + ".a.bin"), AsBytes("malware")));
  ASSERT_EQ(Init(), 0);
  std::string err;
  EXPECT_EQ(Download({"a.bin"}, &err), 1);
  EXPECT_NE(err.find("sha256 does not match"), std::string::npos) << err;
  EXPECT_TRUE(TdFiles().empty());
}

// The delegation diamond through the binary: one download command searches b/ok (reaching "c"
// through "b", whose listed key signed it) and then a/evil, which only "a" delegates (terminating),
// and "a" lists another key for "c". The second search must verify c against a's keys.
TEST_F(AgentTest, DelegatedRoleTrustedThroughOneDelegatorIsNotTrustedThroughAnother) {
  repo_.Delegate("targets", "a", {"a/*"}, /*terminating=*/true);
  repo_.Delegate("targets", "b", {"*/*"});
  repo_.Delegate("a", "c", {"a/*"});
  repo_.Delegate("b", "c", {"*/*"});
  repo_.keys["c"].erase(repo_.keys["c"].begin());  // c is signed with b's listed key only
  repo_.AddTarget("a/evil", "evil", "c");
  repo_.AddTarget("b/ok", "ok", "c");
  for (const char* r : {"c", "a", "b"}) repo_.PublishTargets(r);
  repo_.Release();
  Serve();
  ASSERT_EQ(Init(), 0);
  std::string err;
  EXPECT_EQ(Download({"b/ok", "a/evil"}, &err), 1);
  EXPECT_NE(err.find("c (delegated by a)"), std::string::npos) << err;
  EXPECT_EQ(TdFiles(), std::vector<std::string>{"b%2Fok"});
  const std::string evil_hash = repo_.delegated.at("c").targets.at("a/evil").hashes.at("sha256");
  for (const auto& request : server_->Requests()) {
    EXPECT_EQ(request.find(evil_hash), std::string::npos) << request;
  }
}

TEST_F(AgentTest, RefreshFailsOnceFaketimeMovesPastTimestampExpiry) {
  AIRLOCK_REQUIRE_SERVICE(std::system("command -v faketime >/dev/null 2>&1") == 0, "faketime");
  // The repository's timestamp expires in a day, everything else later.
  ASSERT_EQ(Init(), 0);
  EXPECT_EQ(Refresh("faketime '+400 days' "), 1);
  EXPECT_EQ(Refresh(), 0);
  EXPECT_EQ(Refresh("faketime '+2 days' "), 1);  // only the timestamp has expired
}

}  // namespace
}  // namespace airlock::client
