#include "keys/signer.h"

#include <memory>

#include <gtest/gtest.h>

#include "audit/audit_log.h"
#include "common/file.h"
#include "crypto/sign.h"
#include "keys/key_store.h"
#include "metadata/metadata.h"

namespace airlock::keys {
namespace {

class LogSink : public UsageSink {
 public:
  explicit LogSink(audit::AuditLog& log) : log_(log) {}
  Result<void> Append(const audit::UsageRecord& r) override {
    AIRLOCK_TRY(log_.Append(r));
    return {};
  }

 private:
  audit::AuditLog& log_;
};

// A file vault opened by URI, with a real audit log beside it, as the CLI has them.
class KeyStoreSignerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<ScopedTempDir>(std::move(*dir));
    const std::string uri = "file:" + (dir_->path() / "vault").string();
    KeyStoreOptions options;
    options.kdf = KdfParams::ForTests();
    options.secret = [] { return Result<std::string>(std::string("pw")); };
    auto parsed = ParseKeyUri(uri);
    ASSERT_TRUE(parsed);
    auto store = InitKeyStore(*parsed, options);
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    auto log = audit::AuditLog::Open(dir_->path() / "vault.audit");
    ASSERT_TRUE(log) << log.error().ToString();
    log_ = std::make_unique<audit::AuditLog>(std::move(*log));
    sink_ = std::make_unique<LogSink>(*log_);
    manager_ = std::make_unique<KeyManager>(*store_, *sink_, gate_);
    ctx_.actor = "release-bot";
    ASSERT_TRUE(manager_->Create(ctx_, "rel", crypto::KeyType::kEd25519, KeyPurpose::kTargets));
  }

  std::vector<audit::UsageRecord> SignRecords() {
    audit::AuditFilter filter;
    filter.key = "rel";
    filter.operation = "sign";
    auto records = log_->Query(filter);
    EXPECT_TRUE(records);
    return records ? *records : std::vector<audit::UsageRecord>{};
  }

  std::unique_ptr<ScopedTempDir> dir_;
  std::unique_ptr<KeyStore> store_;
  std::unique_ptr<audit::AuditLog> log_;
  std::unique_ptr<LogSink> sink_;
  OpenGate gate_;
  std::unique_ptr<KeyManager> manager_;
  OperationContext ctx_;
};

TEST_F(KeyStoreSignerTest, SignsInCryptoSignFormatAndLogsTheUse) {
  auto signer = KeyStoreSigner::Create(*manager_, ctx_, "rel");
  ASSERT_TRUE(signer) << signer.error().ToString();
  auto pub = store_->PublicKey("rel");
  ASSERT_TRUE(pub);
  EXPECT_EQ((*signer)->KeyId(), pub->KeyId());
  auto sig = (*signer)->Sign(AsBytes("release 1.2.3"));
  ASSERT_TRUE(sig) << sig.error().ToString();
  EXPECT_TRUE(crypto::Verify((*signer)->Public(), AsBytes("release 1.2.3"), *sig));

  auto records = SignRecords();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].result, audit::UsageResult::kOk);
  EXPECT_EQ(records[0].actor, "release-bot");
  EXPECT_EQ(records[0].key_id, pub->KeyId());
}

TEST_F(KeyStoreSignerTest, SuspendedKeyRefusesAndTheRefusalIsLogged) {
  auto signer = KeyStoreSigner::Create(*manager_, ctx_, "rel");
  ASSERT_TRUE(signer);
  ASSERT_TRUE(manager_->Suspend(ctx_, "rel"));
  auto sig = (*signer)->Sign(AsBytes("m"));
  ASSERT_FALSE(sig);
  EXPECT_EQ(sig.error().code(), ErrorCode::kKeyUnusable);
  auto records = SignRecords();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].result, audit::UsageResult::kFailed);
}

TEST_F(KeyStoreSignerTest, UnknownKeyIsNotFound) {
  auto signer = KeyStoreSigner::Create(*manager_, ctx_, "nope");
  ASSERT_FALSE(signer);
  EXPECT_EQ(signer.error().code(), ErrorCode::kNotFound);
}

TEST_F(KeyStoreSignerTest, SignsTufMetadataThatVerifies) {
  auto signer = KeyStoreSigner::Create(*manager_, ctx_, "rel");
  ASSERT_TRUE(signer);
  metadata::Root root;
  root.version = 1;
  root.expires = 4'000'000'000;
  ASSERT_TRUE(root.AddKey("root", (*signer)->Public()));
  root.roles["root"].threshold = 1;
  auto md = metadata::SignMetadata(root, std::vector<crypto::Signer*>{signer->get()});
  ASSERT_TRUE(md) << md.error().ToString();
  EXPECT_TRUE(root.VerifyDelegate("root", *md));
}

TEST_F(KeyStoreSignerTest, RotationHookSignsWithOldAndNewBeforeRetiring) {
  OperationContext custodian = ctx_;
  auto rotated = manager_->Rotate(custodian, "rel", [&](const Rotation& r) -> Result<void> {
    EXPECT_EQ(r.old_key.name, "rel@1");
    AIRLOCK_ASSIGN_OR_RETURN(auto old_signer, KeyStoreSigner::Create(*manager_, ctx_, "rel@1"));
    AIRLOCK_ASSIGN_OR_RETURN(auto new_signer, KeyStoreSigner::Create(*manager_, ctx_, "rel"));
    AIRLOCK_TRY(old_signer->Sign(AsBytes("hand-over")));
    AIRLOCK_TRY(new_signer->Sign(AsBytes("hand-over")));
    return {};
  });
  ASSERT_TRUE(rotated) << rotated.error().ToString();
  EXPECT_EQ(rotated->old_key.state, KeyState::kRetired);
  auto after = manager_->Sign(ctx_, "rel@1", AsBytes("m"));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code(), ErrorCode::kKeyUnusable);
}

TEST_F(KeyStoreSignerTest, FailedRotationHookUndoesTheRotation) {
  auto before = store_->Get("rel");
  ASSERT_TRUE(before);
  auto rotated = manager_->Rotate(ctx_, "rel", [](const Rotation&) -> Result<void> {
    return MakeError(ErrorCode::kIo, "publish failed");
  });
  ASSERT_FALSE(rotated);
  EXPECT_EQ(rotated.error().code(), ErrorCode::kIo);
  auto after = store_->Get("rel");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->key_id, before->key_id);
  EXPECT_EQ(after->state, KeyState::kActive);
  auto old = store_->Get("rel@1");
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace airlock::keys
