#include "common/toml_file.h"

#include <gtest/gtest.h>

#include "common/file.h"

namespace airlock {
namespace {

class TomlFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    path_ = dir_->path() / "config.toml";
  }
  void Write(const std::string& text) { ASSERT_TRUE(WriteFileAtomic(path_, AsBytes(text), 0600)); }
  std::optional<ScopedTempDir> dir_;
  std::filesystem::path path_;
};

TEST_F(TomlFileTest, ReadsATable) {
  Write("server = \"http://127.0.0.1:8080\"\nthreads = 4\n");
  auto t = ReadTomlFile(path_);
  ASSERT_TRUE(t) << t.error().ToString();
  EXPECT_EQ(t->get("server")->value<std::string>(), "http://127.0.0.1:8080");
  EXPECT_EQ(t->get("threads")->value<int64_t>(), 4);
}

TEST_F(TomlFileTest, ParseErrorNamesFileAndLine) {
  Write("a = 1\nb = = 2\n");
  auto t = ReadTomlFile(path_);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), ErrorCode::kMalformed);
  EXPECT_EQ(t.error().message().rfind(path_.string() + ":2: ", 0), 0u) << t.error().message();
}

TEST_F(TomlFileTest, MissingDirectoryAndOversizedFilesAreRefused) {
  auto missing = ReadTomlFile(path_);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message(), "config file " + path_.string() + " does not exist");

  auto dir = ReadTomlFile(dir_->path());
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().code(), ErrorCode::kInvalidArgument);

  Write("# " + std::string(kMaxConfigFileBytes, 'x') + "\n");
  auto big = ReadTomlFile(path_);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), ErrorCode::kLimitExceeded);
  EXPECT_EQ(big.error().message(), path_.string() + " is larger than 1 MiB");
}

}  // namespace
}  // namespace airlock
