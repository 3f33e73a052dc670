#include "keys/file_vault.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <algorithm>
#include <memory>

#include <gtest/gtest.h>

#include "common/file.h"
#include "crypto/base64.h"
#include "crypto/sign.h"
#include "crypto/wrap.h"
#include "keys/secret_box.h"

namespace airlock::keys {
namespace {

namespace fs = std::filesystem;
using crypto::KeyType;

constexpr std::string_view kPassphrase = "correct horse battery staple";

class FileVaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<ScopedTempDir>(std::move(*dir));
    path_ = dir_->path() / "keys.vault";
    options_.kdf = KdfParams::ForTests();
    options_.secret = [] { return Result<std::string>(std::string(kPassphrase)); };
    options_.now = [this] { return now_; };
  }

  std::unique_ptr<KeyStore> Init() {
    auto store = OpenFileVault(path_, options_, /*create=*/true);
    EXPECT_TRUE(store) << store.error().ToString();
    return store ? std::move(*store) : nullptr;
  }
  std::unique_ptr<KeyStore> Reopen() {
    auto store = OpenFileVault(path_, options_, /*create=*/false);
    EXPECT_TRUE(store) << store.error().ToString();
    return store ? std::move(*store) : nullptr;
  }
  Bytes FileBytes() {
    auto b = ReadFile(path_, 1 << 26);
    EXPECT_TRUE(b);
    return b ? *b : Bytes();
  }
  // Runs one SQL statement on the vault file, behind the vault's back (an attacker with write access).
  void Tamper(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  // Flips one bit of key `name`'s sealed record at `offset`.
  void FlipSealedByte(const std::string& name, int offset) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT sealed FROM vault_keys WHERE name = ?", -1, &q, nullptr),
              SQLITE_OK);
    sqlite3_bind_text(q, 1, name.c_str(), -1, SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(q, 0));
    Bytes blob(p, p + sqlite3_column_bytes(q, 0));
    sqlite3_finalize(q);
    blob.at(static_cast<size_t>(offset)) ^= 0x01;
    ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE vault_keys SET sealed = ? WHERE name = ?", -1, &q, nullptr),
              SQLITE_OK);
    sqlite3_bind_blob(q, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, name.c_str(), -1, SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(db);
  }

  std::unique_ptr<ScopedTempDir> dir_;
  fs::path path_;
  KeyStoreOptions options_;
  int64_t now_ = 1'700'000'000;
};

bool Contains(const Bytes& haystack, ByteSpan needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

TEST_F(FileVaultTest, InitMakesAPrivateFileAndRefusesToOverwrite) {
  ASSERT_NE(Init(), nullptr);
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = OpenFileVault(path_, options_, true);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
}

TEST_F(FileVaultTest, OpenMissingVaultIsNotFound) {
  auto store = OpenFileVault(path_, options_, false);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), ErrorCode::kNotFound);
}

TEST_F(FileVaultTest, OpenThroughTheRegistryByUri) {
  ASSERT_NE(Init(), nullptr);
  auto store = OpenKeyStore("file:" + path_.string(), options_);
  ASSERT_TRUE(store) << store.error().ToString();
  EXPECT_EQ((*store)->Uri(), "file:" + path_.string());
}

TEST_F(FileVaultTest, CreateListSignVerifyEveryType) {
  auto store = Init();
  ASSERT_NE(store, nullptr);
  const std::string message = "the update manifest";
  for (auto [name, type] : {std::pair{"ed", KeyType::kEd25519}, std::pair{"ec", KeyType::kEcdsaP256},
                            std::pair{"rsa", KeyType::kRsa}}) {
    auto info = store->Create(name, type, KeyPurpose::kTargets);
    ASSERT_TRUE(info) << info.error().ToString();
    EXPECT_EQ(info->state, KeyState::kActive);
    EXPECT_EQ(info->created_at, now_);
    auto pub = store->PublicKey(name);
    ASSERT_TRUE(pub);
    EXPECT_EQ(pub->KeyId(), info->key_id);
    auto sig = store->Sign(name, AsBytes(message));
    ASSERT_TRUE(sig) << sig.error().ToString();
    EXPECT_TRUE(crypto::Verify(*pub, AsBytes(message), *sig));
    EXPECT_EQ(crypto::Verify(*pub, AsBytes("other"), *sig).error().code(),
              ErrorCode::kBadSignature);
  }
  auto reopened = Reopen();
  ASSERT_NE(reopened, nullptr);
  auto list = reopened->List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].name, "ec");
  EXPECT_EQ((*list)[1].name, "ed");
  EXPECT_EQ((*list)[2].name, "rsa");
  EXPECT_EQ((*list)[2].type, KeyType::kRsa);
  EXPECT_TRUE(reopened->Sign("ed", AsBytes(message)));
}

TEST_F(FileVaultTest, CreateRefusesDuplicatesBadNamesAndWrongTypeForPurpose) {
  auto store = Init();
  ASSERT_TRUE(store->Create("a", KeyType::kEd25519, KeyPurpose::kRoot));
  EXPECT_EQ(store->Create("a", KeyType::kEd25519, KeyPurpose::kRoot).error().code(),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(store->Create("../x", KeyType::kEd25519, KeyPurpose::kRoot).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(store->Create("w", KeyType::kX25519, KeyPurpose::kTargets).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(store->Create("w", KeyType::kEd25519, KeyPurpose::kContentWrap).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(store->Sign("missing", AsBytes("m")).error().code(), ErrorCode::kNotFound);
}

TEST_F(FileVaultTest, UnwrapRoundTripsWithCryptoWrapKey) {
  auto store = Init();
  for (auto [name, type] : {std::pair{"x", KeyType::kX25519}, std::pair{"r", KeyType::kRsa}}) {
    ASSERT_TRUE(store->Create(name, type, KeyPurpose::kContentWrap));
    auto pub = store->PublicKey(name);
    ASSERT_TRUE(pub);
    const Bytes content_key(32, 0x5a);
    auto wrapped = crypto::WrapKey(*pub, content_key, AsBytes("bundle-1"));
    ASSERT_TRUE(wrapped);
    auto unwrapped = store->Unwrap(name, *wrapped, AsBytes("bundle-1"));
    ASSERT_TRUE(unwrapped) << unwrapped.error().ToString();
    EXPECT_EQ(*unwrapped, content_key);
    EXPECT_EQ(store->Unwrap(name, *wrapped, AsBytes("bundle-2")).error().code(),
              ErrorCode::kDecryptFailed);
  }
  EXPECT_EQ(store->Sign("x", AsBytes("m")).error().code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(store->Create("s", KeyType::kEd25519, KeyPurpose::kTargets));
  EXPECT_EQ(store->Unwrap("s", Bytes(80), {}).error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(FileVaultTest, WrongPassphraseIsWrongKeyAndChangesNothing) {
  {
    auto store = Init();
    ASSERT_TRUE(store->Create("k", KeyType::kEd25519, KeyPurpose::kTargets));
  }
  const Bytes before = FileBytes();
  options_.secret = [] { return Result<std::string>(std::string("not the passphrase")); };
  auto store = OpenFileVault(path_, options_, false);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), ErrorCode::kWrongKey);
  EXPECT_NE(store.error().message().find("wrong vault passphrase"), std::string::npos);
  EXPECT_EQ(FileBytes(), before);
  EXPECT_FALSE(fs::exists(path_.string() + "-journal"));
  EXPECT_FALSE(fs::exists(path_.string() + "-wal"));
}

TEST_F(FileVaultTest, EditedKdfParametersAreRefusedAsWrongKey) {
  ASSERT_NE(Init(), nullptr);
  Tamper("UPDATE vault_header SET value = CAST('2' AS BLOB) WHERE name = 'kdf_t'");
  auto store = OpenFileVault(path_, options_, false);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), ErrorCode::kWrongKey);
}

TEST_F(FileVaultTest, VaultFileNeverHoldsPrivateKeyBytes) {
  auto store = Init();
  ASSERT_TRUE(store->Create("ed", KeyType::kEd25519, KeyPurpose::kRoot));
  ASSERT_TRUE(store->Create("ec", KeyType::kEcdsaP256, KeyPurpose::kTargets));
  ASSERT_TRUE(store->Create("x", KeyType::kX25519, KeyPurpose::kContentWrap));
  // State changes and renames re-seal records; do some so every code path wrote the file.
  ASSERT_TRUE(store->SetState("ec", KeyState::kSuspended));
  ASSERT_TRUE(store->Rename("x", "x2"));
  const Bytes file = FileBytes();
  const Bytes backup_key(32, 7);
  for (const char* name : {"ed", "ec", "x2"}) {
    auto info = store->Get(name);
    ASSERT_TRUE(info);
    auto sealed = store->ExportSealed(name, backup_key);
    ASSERT_TRUE(sealed);
    auto pem = OpenAesGcm(backup_key, *sealed, SealedExportAad(*info));
    ASSERT_TRUE(pem) << pem.error().ToString();
    const std::string pem_text(AsString(pem->span()));
    ASSERT_NE(pem_text.find("PRIVATE KEY"), std::string::npos);
    auto key = crypto::PrivateKey::FromPem(pem_text);
    ASSERT_TRUE(key);
    EXPECT_EQ(key->KeyId(), info->key_id);
    // The PEM text and each of its base64 lines (the PKCS#8 DER) are absent.
    EXPECT_FALSE(Contains(file, AsBytes(pem_text))) << name;
    size_t start = pem_text.find('\n') + 1;
    while (start < pem_text.size()) {
      const size_t end = pem_text.find('\n', start);
      const std::string line = pem_text.substr(start, end - start);
      if (line.size() >= 16 && line.find("-----") == std::string::npos) {
        EXPECT_FALSE(Contains(file, AsBytes(line))) << name << ": " << line;
      }
      start = end + 1;
    }
    auto der = crypto::Base64Decode(pem_text.substr(pem_text.find('\n') + 1,
                                                    pem_text.find("-----END") -
                                                        pem_text.find('\n') - 1));
    // The raw secret: ed25519/x25519 32-byte private key, the EC private scalar.
    Bytes raw;
    if (info->type == KeyType::kEcdsaP256) {
      BIGNUM* d = nullptr;
      ASSERT_EQ(EVP_PKEY_get_bn_param(key->get(), OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
      raw.resize(32);
      ASSERT_EQ(BN_bn2binpad(d, raw.data(), 32), 32);
      BN_clear_free(d);
    } else {
      size_t len = 32;
      raw.resize(32);
      ASSERT_EQ(EVP_PKEY_get_raw_private_key(key->get(), raw.data(), &len), 1);
    }
    EXPECT_FALSE(Contains(file, raw)) << name;
    if (der) {
      EXPECT_FALSE(Contains(file, *der)) << name;
    }
  }
}

TEST_F(FileVaultTest, FlippedByteInOneRecordFailsThatKeyOnly) {
  auto store = Init();
  ASSERT_TRUE(store->Create("a", KeyType::kEd25519, KeyPurpose::kTargets));
  ASSERT_TRUE(store->Create("b", KeyType::kEd25519, KeyPurpose::kTargets));
  store.reset();
  FlipSealedByte("a", 20);
  auto reopened = Reopen();
  ASSERT_NE(reopened, nullptr);
  auto sig = reopened->Sign("a", AsBytes("m"));
  ASSERT_FALSE(sig);
  EXPECT_EQ(sig.error().code(), ErrorCode::kDecryptFailed);
  EXPECT_EQ(reopened->PublicKey("a").error().code(), ErrorCode::kDecryptFailed);
  EXPECT_TRUE(reopened->Sign("b", AsBytes("m")));
}

TEST_F(FileVaultTest, EditedStateColumnDoesNotReviveARevokedKey) {
  auto store = Init();
  ASSERT_TRUE(store->Create("a", KeyType::kEd25519, KeyPurpose::kTargets));
  ASSERT_TRUE(store->SetState("a", KeyState::kRevoked));
  EXPECT_EQ(store->Sign("a", AsBytes("m")).error().code(), ErrorCode::kKeyUnusable);
  store.reset();
  Tamper("UPDATE vault_keys SET state = 'active' WHERE name = 'a'");
  auto reopened = Reopen();
  EXPECT_EQ(reopened->Sign("a", AsBytes("m")).error().code(), ErrorCode::kDecryptFailed);
}

TEST_F(FileVaultTest, SwappedPublicKeyIsDetected) {
  auto store = Init();
  ASSERT_TRUE(store->Create("a", KeyType::kEd25519, KeyPurpose::kRoot));
  ASSERT_TRUE(store->Create("b", KeyType::kEd25519, KeyPurpose::kRoot));
  store.reset();
  Tamper("UPDATE vault_keys SET public_pem = (SELECT public_pem FROM vault_keys WHERE name = 'b'), "
         "key_id = (SELECT key_id FROM vault_keys WHERE name = 'b') WHERE name = 'a'");
  auto reopened = Reopen();
  EXPECT_EQ(reopened->PublicKey("a").error().code(), ErrorCode::kDecryptFailed);
}

// The whole state table, through the store.
TEST_F(FileVaultTest, LifecycleTable) {
  const std::vector<KeyState> states = {KeyState::kActive, KeyState::kSuspended, KeyState::kRetired,
                                        KeyState::kRevoked, KeyState::kCompromised};
  auto legal = [](KeyState from, KeyState to) {
    switch (from) {
      case KeyState::kActive: return to != KeyState::kActive;
      case KeyState::kSuspended: return to != KeyState::kSuspended;
      case KeyState::kRetired: return to == KeyState::kRevoked || to == KeyState::kCompromised;
      case KeyState::kRevoked: return to == KeyState::kCompromised;
      case KeyState::kCompromised: return false;
    }
    return false;
  };
  auto store = Init();
  int n = 0;
  for (KeyState from : states) {
    for (KeyState to : states) {
      const std::string name = "k" + std::to_string(n++);
      ASSERT_TRUE(store->Create(name, KeyType::kEd25519, KeyPurpose::kTargets));
      // Reach `from` by a legal path.
      if (from == KeyState::kRevoked || from == KeyState::kRetired ||
          from == KeyState::kSuspended || from == KeyState::kCompromised) {
        ASSERT_TRUE(store->SetState(name, from));
      }
      auto r = store->SetState(name, to);
      auto info = store->Get(name);
      ASSERT_TRUE(info);
      if (legal(from, to)) {
        EXPECT_TRUE(r) << KeyStateName(from) << " -> " << KeyStateName(to);
        EXPECT_EQ(info->state, to);
      } else {
        ASSERT_FALSE(r) << KeyStateName(from) << " -> " << KeyStateName(to);
        EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
        EXPECT_EQ(info->state, from);
      }
      // Only active keys sign; every state keeps its public key.
      auto sig = store->Sign(name, AsBytes("m"));
      if (info->state == KeyState::kActive) {
        EXPECT_TRUE(sig);
      } else {
        ASSERT_FALSE(sig);
        EXPECT_EQ(sig.error().code(), ErrorCode::kKeyUnusable);
        EXPECT_NE(sig.error().message().find(KeyStateName(info->state)), std::string::npos);
      }
      EXPECT_TRUE(store->PublicKey(name));
    }
  }
}

TEST_F(FileVaultTest, SuspendedWrapKeyCannotUnwrap) {
  auto store = Init();
  ASSERT_TRUE(store->Create("w", KeyType::kX25519, KeyPurpose::kContentWrap));
  auto pub = store->PublicKey("w");
  auto wrapped = crypto::WrapKey(*pub, Bytes(32, 1), {});
  ASSERT_TRUE(store->SetState("w", KeyState::kSuspended));
  EXPECT_EQ(store->Unwrap("w", *wrapped, {}).error().code(), ErrorCode::kKeyUnusable);
  ASSERT_TRUE(store->SetState("w", KeyState::kActive));
  EXPECT_TRUE(store->Unwrap("w", *wrapped, {}));
}

TEST_F(FileVaultTest, StateChangeRecordsTime) {
  auto store = Init();
  ASSERT_TRUE(store->Create("a", KeyType::kEd25519, KeyPurpose::kTargets));
  now_ += 100;
  ASSERT_TRUE(store->SetState("a", KeyState::kSuspended));
  auto info = store->Get("a");
  EXPECT_EQ(info->created_at, now_ - 100);
  EXPECT_EQ(info->state_changed_at, now_);
}

TEST_F(FileVaultTest, ExportImportBetweenVaults) {
  auto store = Init();
  auto info = store->Create("root", KeyType::kEd25519, KeyPurpose::kRoot);
  ASSERT_TRUE(info);
  const Bytes backup_key(32, 9);
  auto sealed = store->ExportSealed("root", backup_key);
  ASSERT_TRUE(sealed);
  path_ = dir_->path() / "other.vault";
  auto other = Init();
  EXPECT_EQ(other->ImportSealed(*info, *sealed, Bytes(32, 8)).error().code(),
            ErrorCode::kDecryptFailed);
  KeyInfo renamed = *info;
  renamed.name = "other";
  EXPECT_EQ(other->ImportSealed(renamed, *sealed, backup_key).error().code(),
            ErrorCode::kDecryptFailed);
  auto imported = other->ImportSealed(*info, *sealed, backup_key);
  ASSERT_TRUE(imported) << imported.error().ToString();
  auto sig = other->Sign("root", AsBytes("m"));
  ASSERT_TRUE(sig);
  EXPECT_TRUE(crypto::Verify(*store->PublicKey("root"), AsBytes("m"), *sig));
  EXPECT_EQ(other->ImportSealed(*info, *sealed, backup_key).error().code(),
            ErrorCode::kAlreadyExists);
}

TEST_F(FileVaultTest, DeleteRemovesTheKey) {
  auto store = Init();
  ASSERT_TRUE(store->Create("a", KeyType::kEd25519, KeyPurpose::kTargets));
  ASSERT_TRUE(store->Delete("a"));
  EXPECT_EQ(store->Get("a").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store->Delete("a").error().code(), ErrorCode::kNotFound);
}

// The vault records whether it has access control inside its own authenticated data, where someone
// who deletes the access file (or edits the vault file without the passphrase) cannot change it.
TEST_F(FileVaultTest, SealedStateRecordsAccessControlAndSurvivesReopening) {
  auto store = Init();
  ASSERT_TRUE(store);
  FileVaultStore* vault = AsFileVault(store.get());
  ASSERT_NE(vault, nullptr);
  auto fresh = vault->ReadState();
  ASSERT_TRUE(fresh) << fresh.error().ToString();
  EXPECT_FALSE(fresh->access_control);
  ASSERT_TRUE(vault->UpdateState([](VaultState& s) -> Result<void> {
    s.access_control = true;
    s.audit_heads["log"] = AuditAnchor{7, std::string(64, 'a'), 2};
    return {};
  }));
  store.reset();
  auto again = Reopen();
  ASSERT_TRUE(again);
  auto state = AsFileVault(again.get())->ReadState();
  ASSERT_TRUE(state);
  EXPECT_TRUE(state->access_control);
  EXPECT_EQ(state->audit_heads.at("log").seq, 7);
  EXPECT_EQ(state->audit_heads.at("log").checkpoints, 2);
  // A change that fails writes nothing.
  auto refused = AsFileVault(again.get())->UpdateState([](VaultState& s) -> Result<void> {
    s.access_control = false;
    return MakeError(ErrorCode::kInvalidArgument, "no");
  });
  EXPECT_FALSE(refused);
  EXPECT_TRUE(AsFileVault(again.get())->ReadState()->access_control);
}

// Attack: delete or edit the sealed state row to switch access control off. The vault then does not
// open at all (its key-check value says it has a state row), and the keys are untouched.
TEST_F(FileVaultTest, DeletedOrEditedStateRowMakesTheVaultRefuseToOpen) {
  {
    auto store = Init();
    ASSERT_TRUE(store);
    ASSERT_TRUE(AsFileVault(store.get())->UpdateState([](VaultState& s) -> Result<void> {
      s.access_control = true;
      return {};
    }));
  }
  Tamper("UPDATE vault_header SET value = randomblob(length(value)) WHERE name = 'state'");
  auto edited = OpenFileVault(path_, options_, /*create=*/false);
  ASSERT_FALSE(edited);
  EXPECT_EQ(edited.error().code(), ErrorCode::kDecryptFailed);
  EXPECT_NE(edited.error().message().find("does not authenticate"), std::string::npos);
  Tamper("DELETE FROM vault_header WHERE name = 'state'");
  auto deleted = OpenFileVault(path_, options_, /*create=*/false);
  ASSERT_FALSE(deleted);
  EXPECT_EQ(deleted.error().code(), ErrorCode::kDecryptFailed);
  EXPECT_NE(deleted.error().message().find("missing"), std::string::npos);
}

// A vault made before the sealed state existed (its key-check value under the v1 associated data,
// no state row) opens, and gets both on that first open, with access control off.
TEST_F(FileVaultTest, OlderVaultWithoutAStateRowIsUpgradedOnOpen) {
  { ASSERT_TRUE(Init()); }
  // Rebuild the v1 form: the check value under the v1 associated data, no state row.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT value FROM vault_header WHERE name = 'salt'", -1, &st,
                               nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(st, 0));
  Bytes salt(p, p + sqlite3_column_bytes(st, 0));
  sqlite3_finalize(st);
  auto kek = DeriveKeyArgon2id(kPassphrase, salt, KdfParams::ForTests());
  ASSERT_TRUE(kek);
  Bytes aad;
  const std::string_view domain = "airlock/vault/v1/check";
  AppendU32Be(aad, static_cast<uint32_t>(domain.size()));
  aad.insert(aad.end(), domain.begin(), domain.end());
  AppendU32Be(aad, KdfParams::ForTests().t_cost);
  AppendU32Be(aad, KdfParams::ForTests().m_cost_kib);
  AppendU32Be(aad, KdfParams::ForTests().parallelism);
  aad.insert(aad.end(), salt.begin(), salt.end());
  auto check = SealAesGcm(kek->span(), AsBytes("airlock vault key check v1"), aad);
  ASSERT_TRUE(check);
  ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE vault_header SET value = ? WHERE name = 'check'", -1,
                               &st, nullptr),
            SQLITE_OK);
  sqlite3_bind_blob(st, 1, check->data(), static_cast<int>(check->size()), SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  ASSERT_EQ(
      sqlite3_exec(db, "DELETE FROM vault_header WHERE name = 'state'", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);

  auto upgraded = Reopen();
  ASSERT_TRUE(upgraded);
  auto state = AsFileVault(upgraded.get())->ReadState();
  ASSERT_TRUE(state) << state.error().ToString();
  EXPECT_FALSE(state->access_control);
  upgraded.reset();
  // Now a v2 vault: deleting its state row makes it refuse to open.
  Tamper("DELETE FROM vault_header WHERE name = 'state'");
  EXPECT_EQ(OpenFileVault(path_, options_, false).error().code(), ErrorCode::kDecryptFailed);
}

TEST_F(FileVaultTest, SealedSecretsAreBoundToTheirPurpose) {
  auto store = Init();
  ASSERT_TRUE(store);
  FileVaultStore* vault = AsFileVault(store.get());
  auto sealed = vault->SealSecret(AsBytes("totp secret"), "airlock-totp:alice");
  ASSERT_TRUE(sealed);
  EXPECT_EQ(AsString(vault->OpenSecret(*sealed, "airlock-totp:alice")->span()), "totp secret");
  EXPECT_EQ(vault->OpenSecret(*sealed, "airlock-totp:mallory").error().code(),
            ErrorCode::kDecryptFailed);
  // Another vault (another key) cannot open it.
  path_ = dir_->path() / "other.vault";
  auto other = Init();
  ASSERT_TRUE(other);
  EXPECT_EQ(AsFileVault(other.get())->OpenSecret(*sealed, "airlock-totp:alice").error().code(),
            ErrorCode::kDecryptFailed);
}

TEST(VaultState, AnchorsOnlyMoveForward) {
  AuditAnchor a{5, "h5", 2};
  EXPECT_FALSE(AdvanceAnchor(a, AuditAnchor{4, "h4", 3}));
  EXPECT_FALSE(AdvanceAnchor(a, AuditAnchor{5, "h5", 1}));
  EXPECT_TRUE(AdvanceAnchor(a, AuditAnchor{5, "h5", 3}));
  EXPECT_TRUE(AdvanceAnchor(a, AuditAnchor{6, "h6", 3}));
  EXPECT_EQ(a.seq, 6);
  VaultState s;
  s.access_control = true;
  s.checkpoint_key = "audit-checkpoint-00";
  s.audit_heads["id"] = a;
  auto back = DecodeVaultState(EncodeVaultState(s));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->access_control);
  EXPECT_EQ(back->checkpoint_key, s.checkpoint_key);
  EXPECT_EQ(back->audit_heads.at("id").hash, "h6");
  EXPECT_EQ(DecodeVaultState(AsBytes("{}")).error().code(), ErrorCode::kMalformed);
  EXPECT_EQ(DecodeVaultState(AsBytes("not json")).error().code(), ErrorCode::kMalformed);
}

}  // namespace
}  // namespace airlock::keys
