#include "bundle/delta.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "bundle/archive.h"
#include "bundle/bundle_test_util.h"
#include "common/file.h"
#include "crypto/random.h"
#include "crypto/sign.h"

namespace airlock::bundle {
namespace {

namespace fs = std::filesystem;
using crypto::KeyType;
using crypto::PrivateKey;

void WriteBytes(const fs::path& p, const Bytes& b) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
using test_util::Tree;
using test_util::WriteText;

// Entries of `dir` whose names start with ".airlock-" (staging left behind).
int StagingLeftovers(const fs::path& dir) { return test_util::Leftovers(dir, ".airlock-"); }

class DeltaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<ScopedTempDir>(*ScopedTempDir::Create());
    lib_ = *crypto::RandomBytes(200 * 1024);
    // 1.0.0: a web app.
    const fs::path v1 = tmp_->path() / "v1";
    WriteText(v1 / "index.html", "<html><script src=assets/app.js></script></html>\n");
    WriteBytes(v1 / "assets/vendor.js", lib_);
    Bytes app = lib_;
    app.resize(50 * 1024);
    WriteBytes(v1 / "assets/app.js", app);
    WriteText(v1 / "assets/old.css", "body{color:red}\n");
    WriteText(v1 / "empty.txt", "");
    base_ = Release("1.0.0", v1);
    // 1.0.1: app.js changed in one place, old.css renamed, a new file, vendor.js as it was.
    const fs::path v2 = tmp_->path() / "v2";
    WriteText(v2 / "index.html", "<html><script src=assets/app.js></script></html>\n");
    WriteBytes(v2 / "assets/vendor.js", lib_);
    app[1000] ^= 0xff;
    WriteBytes(v2 / "assets/app.js", app);
    WriteText(v2 / "assets/new.css", "body{color:red}\n");
    WriteText(v2 / "assets/extra.txt", "new in 1.0.1\n");
    WriteText(v2 / "empty.txt", "");
    target_ = Release("1.0.1", v2);
    signer_ = std::make_unique<PrivateKey>(*PrivateKey::Generate(KeyType::kEd25519));
    content_key_ = *crypto::RandomBytes(32);
  }

  ReleaseFiles Release(const std::string& version, const fs::path& dir) {
    const fs::path zip = tmp_->path() / (version + ".zip");
    auto manifest = CreateArchive(dir, ArchiveFormat::kZip, zip);
    EXPECT_TRUE(manifest) << manifest.error().message();
    return ReleaseFiles{version, *manifest, dir};
  }

  fs::path Make(DeltaMethod method, const std::string& name = "d.ald") {
    DeltaOptions options;
    options.app_id = "com.example.app";
    options.method = method;
    crypto::PrivateKeySigner signer(*signer_);
    const fs::path out = tmp_->path() / name;
    auto made = MakeDelta(base_, target_, options, signer, content_key_, out);
    EXPECT_TRUE(made) << made.error().message();
    return out;
  }

  Result<AppliedDelta> Apply(const fs::path& delta, const fs::path& out) {
    return ApplyDelta(delta, signer_->Public(), content_key_, base_, out);
  }

  std::unique_ptr<ScopedTempDir> tmp_;
  Bytes lib_;
  ReleaseFiles base_, target_;
  std::unique_ptr<PrivateKey> signer_;
  Bytes content_key_;
};

TEST_F(DeltaTest, PatchGivesTheNewReleaseByteForByte) {
  const fs::path delta = Make(DeltaMethod::kPatch);
  const fs::path out = tmp_->path() / "out";
  auto applied = Apply(delta, out);
  ASSERT_TRUE(applied) << applied.error().message();
  EXPECT_EQ(applied->files, target_.manifest);
  EXPECT_EQ(applied->header.base_version, "1.0.0");
  EXPECT_EQ(applied->header.version, "1.0.1");
  EXPECT_EQ(Tree(out), Tree(target_.dir));
  EXPECT_EQ(fs::status(out / "assets/app.js").permissions() & fs::perms::all, fs::perms(0644));
  EXPECT_EQ(StagingLeftovers(tmp_->path()), 0);
  // One changed byte in 50 KiB plus a new file: far below the 250 KiB release.
  EXPECT_LT(fs::file_size(delta), 4096u);
}

TEST_F(DeltaTest, FilesMethodCarriesOnlyTheFilesTheBaseLacks) {
  const fs::path delta = Make(DeltaMethod::kFiles);
  const fs::path out = tmp_->path() / "out";
  auto applied = Apply(delta, out);
  ASSERT_TRUE(applied) << applied.error().message();
  EXPECT_EQ(Tree(out), Tree(target_.dir));
  // app.js (50 KiB of random bytes, changed) travels whole; vendor.js (200 KiB) does not.
  EXPECT_GT(fs::file_size(delta), 50u * 1024);
  EXPECT_LT(fs::file_size(delta), 60u * 1024);
}

TEST_F(DeltaTest, AlteredPayloadIsRefusedAndNothingAppears) {
  const fs::path delta = Make(DeltaMethod::kPatch);
  Bytes bytes = *ReadFile(delta, 1 << 20);
  bytes[bytes.size() - 20] ^= 1;
  WriteBytes(delta, bytes);
  const fs::path out = tmp_->path() / "out";
  auto applied = Apply(delta, out);
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().code(), ErrorCode::kHashMismatch) << applied.error().message();
  EXPECT_NE(applied.error().message().find("altered"), std::string::npos);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(StagingLeftovers(tmp_->path()), 0);
}

TEST_F(DeltaTest, DeltaForAnotherBaseIsRefused) {
  const fs::path delta = Make(DeltaMethod::kPatch);
  // The device is on another release with the same version number but other files.
  const fs::path other = tmp_->path() / "other";
  WriteText(other / "index.html", "something else\n");
  base_ = Release("1.0.0", other);
  const fs::path out = tmp_->path() / "out";
  auto applied = Apply(delta, out);
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().code(), ErrorCode::kHashMismatch);
  EXPECT_NE(applied.error().message().find("made for another base"), std::string::npos)
      << applied.error().message();
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(DeltaTest, EditedBaseFileIsRefusedForBothMethods) {
  for (DeltaMethod method : {DeltaMethod::kPatch, DeltaMethod::kFiles}) {
    const std::string name(DeltaMethodName(method));
    const fs::path delta = Make(method, name + ".ald");
    WriteText(base_.dir / "assets/vendor.js", "tampered on the device");
    const fs::path out = tmp_->path() / ("out-" + name);
    auto applied = Apply(delta, out);
    ASSERT_FALSE(applied) << name;
    EXPECT_EQ(applied.error().code(), ErrorCode::kHashMismatch) << name;
    EXPECT_NE(applied.error().message().find("assets/vendor.js"), std::string::npos)
        << applied.error().message();
    EXPECT_FALSE(fs::exists(out));
    WriteBytes(base_.dir / "assets/vendor.js", lib_);
  }
}

TEST_F(DeltaTest, OtherSignerAndWrongContentKeyAreRefused) {
  const fs::path delta = Make(DeltaMethod::kPatch);
  auto other = *PrivateKey::Generate(KeyType::kEd25519);
  auto wrong_signer = ApplyDelta(delta, other.Public(), content_key_, base_, tmp_->path() / "o1");
  ASSERT_FALSE(wrong_signer);
  EXPECT_EQ(wrong_signer.error().code(), ErrorCode::kWrongKey);
  Bytes key = content_key_;
  key[0] ^= 1;
  auto wrong_key = ApplyDelta(delta, signer_->Public(), key, base_, tmp_->path() / "o2");
  ASSERT_FALSE(wrong_key);
  EXPECT_EQ(wrong_key.error().code(), ErrorCode::kDecryptFailed) << wrong_key.error().message();
  EXPECT_FALSE(fs::exists(tmp_->path() / "o2"));
  EXPECT_EQ(StagingLeftovers(tmp_->path()), 0);
}

TEST_F(DeltaTest, AlteredHeaderBreaksTheSignature) {
  const fs::path delta = Make(DeltaMethod::kPatch);
  Bytes bytes = *ReadFile(delta, 1 << 20);
  const std::string text(AsString(bytes));
  const size_t at = text.find("\"base\":{\"manifest_sha256\":\"") + 28;
  bytes[at] = bytes[at] == 'a' ? 'b' : 'a';
  WriteBytes(delta, bytes);
  auto applied = Apply(delta, tmp_->path() / "out");
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().code(), ErrorCode::kBadSignature);
}

TEST_F(DeltaTest, ABundleIsNotADeltaAndADeltaIsNotABundle) {
  const fs::path delta = Make(DeltaMethod::kPatch);
  auto as_bundle =
      OpenBundleWithContentKey(delta, signer_->Public(), content_key_, tmp_->path() / "b");
  ASSERT_FALSE(as_bundle);
  EXPECT_EQ(as_bundle.error().code(), ErrorCode::kMalformed);
  SealOptions options;
  options.app_id = "com.example.app";
  options.version = "1.0.1";
  options.content_key = content_key_;
  const fs::path bundle = tmp_->path() / "b.alb";
  auto recipient = *PrivateKey::Generate(KeyType::kX25519);
  ASSERT_TRUE(SealBundle(target_.dir, options, *signer_, {recipient.Public()}, bundle));
  auto as_delta = Apply(bundle, tmp_->path() / "d");
  ASSERT_FALSE(as_delta);
  EXPECT_EQ(as_delta.error().code(), ErrorCode::kMalformed);
  // The bundle sealed under the given content key opens with it.
  auto opened =
      OpenBundleWithContentKey(bundle, signer_->Public(), content_key_, tmp_->path() / "opened");
  ASSERT_TRUE(opened) << opened.error().message();
  EXPECT_EQ(Tree(tmp_->path() / "opened"), Tree(target_.dir));
}

TEST_F(DeltaTest, ExistingOutputIsNeverReplaced) {
  const fs::path delta = Make(DeltaMethod::kPatch);
  const fs::path out = tmp_->path() / "out";
  WriteText(out / "keep.txt", "mine");
  auto applied = Apply(delta, out);
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(Tree(out).size(), 1u);
}

}  // namespace
}  // namespace airlock::bundle
