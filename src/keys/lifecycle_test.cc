#include "keys/lifecycle.h"

#include <memory>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "common/file.h"
#include "crypto/rsa_raw.h"
#include "crypto/sign.h"
#include "keys/backup.h"
#include "keys/file_vault.h"

namespace airlock::keys {
namespace {

namespace fs = std::filesystem;
using crypto::KeyType;

class VectorSink : public UsageSink {
 public:
  Result<void> Append(const audit::UsageRecord& r) override {
    records.push_back(r);
    return {};
  }
  std::vector<audit::UsageRecord> records;
};

// Requires "123456" for custodian actions, refuses the actor "mallory".
class FakeGate : public Gate {
 public:
  access::Action last_action = access::Action::kKeyList;
  Result<void> Authorize(std::string_view actor, access::Action action,
                         std::optional<std::string_view> totp) override {
    if (actor == "mallory") return MakeError(access::kDeniedCode, "access denied: mallory");
    last_action = action;
    if (!access::RequiresSecondFactor(action)) return {};
    if (!totp) return MakeError(ErrorCode::kInvalidArgument, "pass --totp");
    if (*totp != "123456") return MakeError(ErrorCode::kBadSignature, "wrong TOTP code");
    return {};
  }
};

class KeyManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<ScopedTempDir>(std::move(*dir));
    options_.kdf = KdfParams::ForTests();
    options_.secret = [] { return Result<std::string>(std::string("pw")); };
    options_.now = [this] { return now_; };
    auto store = OpenFileVault(dir_->path() / "v", options_, true);
    ASSERT_TRUE(store);
    store_ = std::move(*store);
    KeyManagerOptions mopts;
    mopts.now = [this] { return now_; };
    manager_ = std::make_unique<KeyManager>(*store_, sink_, gate_, mopts);
    ctx_.actor = "alice";
    custodian_ = ctx_;
    custodian_.totp_code = "123456";
  }

  std::unique_ptr<ScopedTempDir> dir_;
  KeyStoreOptions options_;
  int64_t now_ = 1'700'000'000;
  std::unique_ptr<KeyStore> store_;
  VectorSink sink_;
  FakeGate gate_;
  std::unique_ptr<KeyManager> manager_;
  OperationContext ctx_, custodian_;
};

// Signing with a root key is asked of the gate as key.sign-root (custodian, second factor); other
// keys sign as key.sign.
TEST_F(KeyManagerTest, RootKeysSignOnlyAsACustodianOperation) {
  ASSERT_TRUE(manager_->Create(ctx_, "root", KeyType::kEd25519, KeyPurpose::kRoot));
  ASSERT_TRUE(manager_->Create(ctx_, "t", KeyType::kEd25519, KeyPurpose::kTargets));
  ASSERT_TRUE(manager_->Sign(ctx_, "t", AsBytes("m")));
  EXPECT_EQ(gate_.last_action, access::Action::kKeySign);
  auto refused = manager_->Sign(ctx_, "root", AsBytes("m"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(gate_.last_action, access::Action::kKeySignRoot);
  EXPECT_EQ(sink_.records.back().operation, "sign");
  EXPECT_EQ(sink_.records.back().result, audit::UsageResult::kFailed);
  ASSERT_TRUE(manager_->Sign(custodian_, "root", AsBytes("m")));
}

TEST_F(KeyManagerTest, EveryOperationIsRecordedIncludingFailures) {
  ASSERT_TRUE(manager_->Create(ctx_, "t", KeyType::kEd25519, KeyPurpose::kTargets));
  ASSERT_TRUE(manager_->Sign(ctx_, "t", AsBytes("m")));
  ASSERT_TRUE(manager_->Suspend(ctx_, "t"));
  auto refused = manager_->Sign(ctx_, "t", AsBytes("m"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kKeyUnusable);
  ASSERT_TRUE(manager_->Resume(custodian_, "t"));
  ASSERT_EQ(sink_.records.size(), 5u);
  EXPECT_EQ(sink_.records[0].operation, "create");
  EXPECT_EQ(sink_.records[1].operation, "sign");
  EXPECT_EQ(sink_.records[1].result, audit::UsageResult::kOk);
  EXPECT_EQ(sink_.records[1].purpose, "targets");
  EXPECT_EQ(sink_.records[1].actor, "alice");
  EXPECT_FALSE(sink_.records[1].key_id.empty());
  EXPECT_EQ(sink_.records[2].operation, "suspend");
  EXPECT_EQ(sink_.records[3].operation, "sign");
  EXPECT_EQ(sink_.records[3].result, audit::UsageResult::kFailed);
  EXPECT_NE(sink_.records[3].result_reason.find("key_unusable"), std::string::npos);
  EXPECT_EQ(sink_.records[4].operation, "resume");
}

TEST_F(KeyManagerTest, CapgoPrivateEncryptIsAuthorizedAndRecordedLikeSign) {
  ASSERT_TRUE(manager_->Create(ctx_, "capgo", KeyType::kRsa, KeyPurpose::kCapgo));
  const Bytes aes_key(16, 0x5a);
  auto block = manager_->PrivateEncryptPkcs1(ctx_, "capgo", aes_key);
  ASSERT_TRUE(block) << block.error().ToString();
  EXPECT_EQ(*crypto::RsaPkcs1Type1Recover(*store_->PublicKey("capgo"), *block), aes_key);
  OperationContext mallory = ctx_;
  mallory.actor = "mallory";
  EXPECT_EQ(manager_->PrivateEncryptPkcs1(mallory, "capgo", aes_key).error().code(),
            access::kDeniedCode);
  ASSERT_TRUE(manager_->Suspend(ctx_, "capgo"));
  EXPECT_EQ(manager_->PrivateEncryptPkcs1(ctx_, "capgo", aes_key).error().code(),
            ErrorCode::kKeyUnusable);
  ASSERT_EQ(sink_.records.size(), 5u);
  EXPECT_EQ(sink_.records[1].operation, "sign");
  EXPECT_EQ(sink_.records[1].result, audit::UsageResult::kOk);
  EXPECT_EQ(sink_.records[1].purpose, "capgo");
  EXPECT_EQ(sink_.records[1].key_name, "capgo");
  EXPECT_NE(sink_.records[1].details.find("pkcs1-type1"), std::string::npos);
  EXPECT_EQ(sink_.records[2].result, audit::UsageResult::kDenied);
  EXPECT_EQ(sink_.records[4].operation, "sign");
  EXPECT_EQ(sink_.records[4].result, audit::UsageResult::kFailed);
}

TEST_F(KeyManagerTest, CustodianOperationsNeedTotp) {
  ASSERT_TRUE(manager_->Create(ctx_, "root", KeyType::kEd25519, KeyPurpose::kRoot));
  EXPECT_EQ(manager_->Rotate(ctx_, "root").error().code(), ErrorCode::kInvalidArgument);
  OperationContext wrong = ctx_;
  wrong.totp_code = "000000";
  EXPECT_EQ(manager_->Rotate(wrong, "root").error().code(), ErrorCode::kBadSignature);
  EXPECT_EQ(manager_->Compromised(ctx_, "root").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(manager_->Delete(ctx_, "root").error().code(), ErrorCode::kInvalidArgument);
  OperationContext mallory = custodian_;
  mallory.actor = "mallory";
  EXPECT_EQ(manager_->Sign(mallory, "root", AsBytes("m")).error().code(), access::kDeniedCode);
  EXPECT_EQ(sink_.records.back().result, audit::UsageResult::kDenied);
  // Nothing changed.
  auto info = store_->Get("root");
  EXPECT_EQ(info->state, KeyState::kActive);
  EXPECT_EQ(store_->List()->size(), 1u);
  EXPECT_TRUE(manager_->Rotate(custodian_, "root"));
}

TEST_F(KeyManagerTest, RotateKeepsTheOldKeyRetiredAndVerifiable) {
  auto first = manager_->Create(ctx_, "targets", KeyType::kEcdsaP256, KeyPurpose::kTargets);
  ASSERT_TRUE(first);
  auto old_sig = manager_->Sign(ctx_, "targets", AsBytes("release 1"));
  ASSERT_TRUE(old_sig);
  now_ += 10;
  auto r = manager_->Rotate(custodian_, "targets");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->old_key.name, "targets@1");
  EXPECT_EQ(r->old_key.key_id, first->key_id);
  EXPECT_EQ(r->old_key.state, KeyState::kRetired);
  EXPECT_EQ(r->new_key.name, "targets");
  EXPECT_NE(r->new_key.key_id, first->key_id);
  EXPECT_EQ(r->new_key.type, KeyType::kEcdsaP256);
  EXPECT_EQ(r->new_key.purpose, KeyPurpose::kTargets);
  EXPECT_EQ(r->new_key.created_at, now_);
  auto old_pub = manager_->PublicKey(ctx_, "targets@1");
  ASSERT_TRUE(old_pub);
  EXPECT_TRUE(crypto::Verify(*old_pub, AsBytes("release 1"), *old_sig));
  EXPECT_EQ(manager_->Sign(ctx_, "targets@1", AsBytes("m")).error().code(), ErrorCode::kKeyUnusable);
  EXPECT_TRUE(manager_->Sign(ctx_, "targets", AsBytes("m")));
  auto r2 = manager_->Rotate(custodian_, "targets");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->old_key.name, "targets@2");
  EXPECT_EQ(sink_.records.back().operation, "rotate");
  EXPECT_NE(sink_.records.back().details.find("new_key_id=" + r2->new_key.key_id),
            std::string::npos);
  EXPECT_EQ(manager_->Rotate(custodian_, "targets@1").error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(KeyManagerTest, RevokedKeyCannotBeRotated) {
  ASSERT_TRUE(manager_->Create(ctx_, "t", KeyType::kEd25519, KeyPurpose::kTargets));
  ASSERT_TRUE(manager_->Revoke(ctx_, "t"));
  EXPECT_EQ(manager_->Rotate(custodian_, "t").error().code(), ErrorCode::kKeyUnusable);
  EXPECT_EQ(manager_->Resume(custodian_, "t").error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(KeyManagerTest, CompromisedRevokesAndRotatesAtOnce) {
  auto first = manager_->Create(ctx_, "ts", KeyType::kEd25519, KeyPurpose::kTimestamp);
  ASSERT_TRUE(first);
  auto r = manager_->Compromised(custodian_, "ts");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->old_key.name, "ts@1");
  EXPECT_EQ(r->old_key.state, KeyState::kCompromised);
  EXPECT_EQ(r->new_key.state, KeyState::kActive);
  EXPECT_EQ(sink_.records.back().operation, "compromised");
  EXPECT_EQ(manager_->Sign(ctx_, "ts@1", AsBytes("m")).error().code(), ErrorCode::kKeyUnusable);
  EXPECT_TRUE(manager_->Sign(ctx_, "ts", AsBytes("m")));
}

TEST_F(KeyManagerTest, RotateDueRotatesOnlyKeysPastTheirMaximumAge) {
  ASSERT_TRUE(manager_->Create(ctx_, "ts", KeyType::kEd25519, KeyPurpose::kTimestamp));
  ASSERT_TRUE(manager_->Create(ctx_, "root", KeyType::kEd25519, KeyPurpose::kRoot));
  ASSERT_TRUE(manager_->Create(ctx_, "old", KeyType::kEd25519, KeyPurpose::kSnapshot));
  ASSERT_TRUE(manager_->Retire(ctx_, "old"));
  now_ += 31 * 24 * 3600;  // past timestamp's 30 days, not root's 730 (retired keys never due)
  auto due = manager_->Due();
  ASSERT_TRUE(due);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].name, "ts");
  auto done = manager_->RotateDue(custodian_);
  ASSERT_TRUE(done);
  ASSERT_EQ(done->size(), 1u);
  EXPECT_EQ((*done)[0].old_key.name, "ts@1");
  EXPECT_TRUE(manager_->Due()->empty());
  EXPECT_EQ(DefaultMaxAge(KeyPurpose::kRoot), 730 * 24 * 3600);
}

// ---- importing an existing Capgo key ----

TEST_F(KeyManagerTest, ImportIsAuthorizedAsCreateAndRecordedAsImport) {
  auto key = crypto::PrivateKey::GenerateRsa(kCapgoRsaBits);
  ASSERT_TRUE(key) << key.error().ToString();
  auto imported = manager_->Import(ctx_, "capgo", *key, KeyPurpose::kCapgo);
  ASSERT_TRUE(imported) << imported.error().ToString();
  EXPECT_EQ(imported->origin, KeyOrigin::kImported);
  OperationContext mallory = ctx_;
  mallory.actor = "mallory";
  EXPECT_EQ(manager_->Import(mallory, "capgo2", *key, KeyPurpose::kCapgo).error().code(),
            access::kDeniedCode);
  EXPECT_EQ(manager_->Import(ctx_, "t", *key, KeyPurpose::kTargets).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(manager_->Import(ctx_, "capgo", *key, KeyPurpose::kCapgo).error().code(),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(manager_->Import(ctx_, "bad name", *key, KeyPurpose::kCapgo).error().code(),
            ErrorCode::kInvalidArgument);
  ASSERT_EQ(sink_.records.size(), 5u);
  for (const audit::UsageRecord& r : sink_.records) {
    EXPECT_EQ(r.operation, "import");
    EXPECT_EQ(r.key_id, key->KeyId());  // the offered key is named even when refused
    EXPECT_EQ(r.details, "type=rsa bits=2048 origin=imported");
  }
  EXPECT_EQ(sink_.records[0].result, audit::UsageResult::kOk);
  EXPECT_EQ(sink_.records[0].key_name, "capgo");
  EXPECT_EQ(sink_.records[0].purpose, "capgo");
  EXPECT_EQ(sink_.records[1].result, audit::UsageResult::kDenied);
  EXPECT_EQ(sink_.records[2].result, audit::UsageResult::kFailed);
  EXPECT_EQ(sink_.records[2].purpose, "targets");
  EXPECT_EQ(sink_.records[3].result, audit::UsageResult::kFailed);
  EXPECT_EQ(sink_.records[4].result, audit::UsageResult::kFailed);
  EXPECT_EQ(store_->List()->size(), 1u);
  // Used like any capgo key, through the manager.
  auto block = manager_->PrivateEncryptPkcs1(ctx_, "capgo", Bytes(16, 3));
  ASSERT_TRUE(block) << block.error().ToString();
  EXPECT_EQ(*crypto::RsaPkcs1Type1Recover(key->Public(), *block), Bytes(16, 3));
}

// A vault made before imports existed (no origin column): it opens and works unchanged, the first
// import adds the column, and its generated keys' records still authenticate afterwards.
TEST_F(KeyManagerTest, ImportIntoAVaultMadeBeforeImportsExisted) {
  const fs::path path = dir_->path() / "old.vault";
  {
    auto vault = OpenFileVault(path, options_, true);
    ASSERT_TRUE(vault);
    ASSERT_TRUE((*vault)->Create("t", KeyType::kEd25519, KeyPurpose::kTargets));
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc =
        sqlite3_exec(db, "ALTER TABLE vault_keys DROP COLUMN origin", nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err != nullptr ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }
  auto vault = OpenFileVault(path, options_, false);
  ASSERT_TRUE(vault) << vault.error().ToString();
  EXPECT_EQ((*vault)->Get("t")->origin, KeyOrigin::kGenerated);
  auto sig = (*vault)->Sign("t", AsBytes("m"));
  ASSERT_TRUE(sig) << sig.error().ToString();
  auto key = crypto::PrivateKey::GenerateRsa(kCapgoRsaBits);
  ASSERT_TRUE(key);
  ASSERT_TRUE((*vault)->ImportPrivateKey("capgo", *key, KeyPurpose::kCapgo));
  ASSERT_TRUE((*vault)->SetState("t", KeyState::kSuspended));  // re-sealed with the new column
  vault->reset();
  auto reopened = OpenFileVault(path, options_, false);
  ASSERT_TRUE(reopened) << reopened.error().ToString();
  EXPECT_EQ((*reopened)->Get("t")->origin, KeyOrigin::kGenerated);
  EXPECT_EQ((*reopened)->Get("capgo")->origin, KeyOrigin::kImported);
  ASSERT_TRUE((*reopened)->SetState("t", KeyState::kActive));
  auto sig2 = (*reopened)->Sign("t", AsBytes("m"));
  ASSERT_TRUE(sig2) << sig2.error().ToString();
  EXPECT_TRUE(crypto::Verify(*(*reopened)->PublicKey("t"), AsBytes("m"), *sig2));
  auto block = (*reopened)->PrivateEncryptPkcs1("capgo", Bytes(16, 1));
  ASSERT_TRUE(block) << block.error().ToString();
  EXPECT_EQ(*crypto::RsaPkcs1Type1Recover(key->Public(), *block), Bytes(16, 1));
}

// ---- backups ----

class BackupTest : public KeyManagerTest {};

TEST_F(BackupTest, RoundTripIntoAFreshVault) {
  auto root = store_->Create("root", KeyType::kEd25519, KeyPurpose::kRoot);
  auto wrap = store_->Create("wrap", KeyType::kX25519, KeyPurpose::kContentWrap);
  ASSERT_TRUE(store_->SetState("wrap", KeyState::kSuspended));
  const fs::path out = dir_->path() / "backup.json";
  auto written = WriteBackup(*store_, "backup pw", out, std::nullopt, KdfParams::ForTests());
  ASSERT_TRUE(written) << written.error().ToString();
  EXPECT_EQ(written->keys, 2u);
  EXPECT_EQ(WriteBackup(*store_, "backup pw", out, std::nullopt, KdfParams::ForTests())
                .error()
                .code(),
            ErrorCode::kAlreadyExists);
  auto other = OpenFileVault(dir_->path() / "other", options_, true);
  ASSERT_TRUE(other);
  EXPECT_EQ(RestoreBackup(**other, "wrong", out).error().code(), ErrorCode::kWrongKey);
  EXPECT_TRUE((*other)->List()->empty());
  auto restored = RestoreBackup(**other, "backup pw", out);
  ASSERT_TRUE(restored) << restored.error().ToString();
  ASSERT_EQ(restored->size(), 2u);
  auto got = (*other)->Get("wrap");
  EXPECT_EQ(got->state, KeyState::kSuspended);
  EXPECT_EQ(got->key_id, wrap->key_id);
  auto sig = (*other)->Sign("root", AsBytes("m"));
  ASSERT_TRUE(sig);
  EXPECT_TRUE(crypto::Verify(*store_->PublicKey("root"), AsBytes("m"), *sig));
  EXPECT_EQ(RestoreBackup(**other, "backup pw", out).error().code(), ErrorCode::kAlreadyExists);
}

// Backups carry the origin: an imported key comes back as the same key, still imported, and the
// origin cannot be edited in the backup file.
TEST_F(BackupTest, ImportedKeyRoundTripsWithItsOrigin) {
  auto key = crypto::PrivateKey::GenerateRsa(kCapgoRsaBits);
  ASSERT_TRUE(key);
  ASSERT_TRUE(store_->ImportPrivateKey("capgo", *key, KeyPurpose::kCapgo));
  const fs::path out = dir_->path() / "backup.json";
  ASSERT_TRUE(WriteBackup(*store_, "backup pw", out, std::nullopt, KdfParams::ForTests()));
  auto other = OpenFileVault(dir_->path() / "other", options_, true);
  ASSERT_TRUE(other);
  auto restored = RestoreBackup(**other, "backup pw", out);
  ASSERT_TRUE(restored) << restored.error().ToString();
  auto got = (*other)->Get("capgo");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->key_id, key->KeyId());
  EXPECT_EQ(got->origin, KeyOrigin::kImported);
  auto block = (*other)->PrivateEncryptPkcs1("capgo", Bytes(16, 2));
  ASSERT_TRUE(block) << block.error().ToString();
  EXPECT_EQ(*crypto::RsaPkcs1Type1Recover(key->Public(), *block), Bytes(16, 2));

  // The same backup with the origin removed (made to look generated) does not open.
  auto text = ReadTextFile(out, 1 << 24);
  ASSERT_TRUE(text);
  auto doc = nlohmann::json::parse(*text);
  bool edited = false;
  for (auto& entry : doc["keys"]) {
    for (auto& [field, value] : entry.items()) {
      if (value.is_object() && value.contains("origin")) {
        EXPECT_EQ(value["origin"], "imported");
        value.erase("origin");
        edited = true;
      }
    }
    if (entry.contains("origin")) {
      EXPECT_EQ(entry["origin"], "imported");
      entry.erase("origin");
      edited = true;
    }
  }
  ASSERT_TRUE(edited) << *text;
  const fs::path forged = dir_->path() / "forged.json";
  ASSERT_TRUE(WriteFileAtomic(forged, AsBytes(doc.dump()), 0600));
  auto third = OpenFileVault(dir_->path() / "third", options_, true);
  ASSERT_TRUE(third);
  auto refused = RestoreBackup(**third, "backup pw", forged);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kDecryptFailed) << refused.error().ToString();
  EXPECT_EQ((*third)->Get("capgo").error().code(), ErrorCode::kNotFound);
}

TEST_F(BackupTest, TamperedEntryFailsAndImportsNothing) {
  ASSERT_TRUE(store_->Create("a", KeyType::kEd25519, KeyPurpose::kTargets));
  ASSERT_TRUE(store_->Create("b", KeyType::kEd25519, KeyPurpose::kTargets));
  const fs::path out = dir_->path() / "backup.json";
  ASSERT_TRUE(WriteBackup(*store_, "pw2", out, std::nullopt, KdfParams::ForTests()));
  auto text = ReadTextFile(out, 1 << 20);
  auto doc = nlohmann::json::parse(*text);
  doc["keys"][1]["purpose"] = "root";  // metadata is bound: changing it breaks the entry
  ASSERT_TRUE(WriteFileAtomic(out, AsBytes(doc.dump())));
  auto other = OpenFileVault(dir_->path() / "other", options_, true);
  EXPECT_EQ(RestoreBackup(**other, "pw2", out).error().code(), ErrorCode::kDecryptFailed);
  EXPECT_TRUE((*other)->List()->empty());
}

TEST_F(BackupTest, RootKeySharesRestoreFromAnyKAndNotFromKMinusOne) {
  auto root = store_->Create("root", KeyType::kEd25519, KeyPurpose::kRoot);
  ASSERT_TRUE(store_->Create("t", KeyType::kEd25519, KeyPurpose::kTargets));
  const fs::path out = dir_->path() / "backup.json";
  auto written = WriteBackup(*store_, "pw", out, ShareSpec{3, 5}, KdfParams::ForTests());
  ASSERT_TRUE(written) << written.error().ToString();
  ASSERT_EQ(written->share_files.size(), 5u);  // only the root key is split
  const auto& f = written->share_files;
  int n = 0;
  for (auto subset : std::vector<std::vector<int>>{{0, 1, 2}, {2, 3, 4}, {0, 2, 4}, {4, 1, 3},
                                                   {0, 1, 2, 3, 4}}) {
    auto v = OpenFileVault(dir_->path() / ("r" + std::to_string(n++)), options_, true);
    ASSERT_TRUE(v);
    std::vector<fs::path> files;
    for (int i : subset) files.push_back(f[static_cast<size_t>(i)]);
    auto restored = RestoreFromShares(**v, files);
    ASSERT_TRUE(restored) << restored.error().ToString();
    ASSERT_EQ(restored->size(), 1u);
    EXPECT_EQ((*restored)[0].key_id, root->key_id);
    EXPECT_TRUE((*v)->Sign("root", AsBytes("m")));
  }
  auto v = OpenFileVault(dir_->path() / "few", options_, true);
  auto too_few = RestoreFromShares(**v, {f[0], f[3]});
  ASSERT_FALSE(too_few);
  EXPECT_EQ(too_few.error().code(), ErrorCode::kInvalidArgument);
  // Lying about K in a share file does not help: the recombined key does not open the box.
  auto text = ReadTextFile(f[0], 1 << 20);
  auto doc = nlohmann::json::parse(*text);
  doc["k"] = 2;
  auto text1 = ReadTextFile(f[1], 1 << 20);
  auto doc1 = nlohmann::json::parse(*text1);
  doc1["k"] = 2;
  ASSERT_TRUE(WriteFileAtomic(dir_->path() / "s0", AsBytes(doc.dump())));
  ASSERT_TRUE(WriteFileAtomic(dir_->path() / "s1", AsBytes(doc1.dump())));
  auto forged = RestoreFromShares(**v, {dir_->path() / "s0", dir_->path() / "s1"});
  ASSERT_FALSE(forged);
  EXPECT_EQ(forged.error().code(), ErrorCode::kDecryptFailed);
  EXPECT_TRUE((*v)->List()->empty());
}

}  // namespace
}  // namespace airlock::keys
