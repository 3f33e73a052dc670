// The shared key store backend suite: the same behaviour, byte formats and exact error codes for
// every KeyStore backend (keys/key_store.h). Instantiated for the file vault and for PKCS#11 on a
// throwaway SoftHSM2 token.
#include <gtest/gtest.h>
#include <openssl/rsa.h>

#include <memory>
#include <optional>
#include <string>

#include "common/file.h"
#include "common/require_service.h"
#include "crypto/keys.h"
#include "crypto/rsa_raw.h"
#include "crypto/sign.h"
#include "crypto/wrap.h"
#include "keys/key_store.h"
#include "keys/pkcs11.h"
#include "keys/softhsm_fixture.h"

namespace airlock::keys {
namespace {

using crypto::KeyType;

// ---- backends under test ----

class FileVaultBackend {
 public:
  static constexpr bool kKeysExtractable = true;  // ExportSealed works (encrypted backups)
  static constexpr bool kSupportsX25519 = true;

  Result<void> SetUp() {
    AIRLOCK_ASSIGN_OR_RETURN(ScopedTempDir dir, ScopedTempDir::Create());
    dir_.emplace(std::move(dir));
    return {};
  }
  std::string Uri() const { return "file:" + (dir_->path() / "keys.vault").string(); }
  KeyStoreOptions Options(std::string secret) const {
    KeyStoreOptions options;
    options.kdf = KdfParams::ForTests();
    options.secret = [secret] { return Result<std::string>(secret); };
    return options;
  }
  std::string GoodSecret() const { return "correct horse battery staple"; }
  Result<std::unique_ptr<KeyStore>> Init() {
    AIRLOCK_ASSIGN_OR_RETURN(KeyUri uri, ParseKeyUri(Uri()));
    return InitKeyStore(uri, Options(GoodSecret()));
  }
  // No token to ask: the file vault's own suite greps the file for private key bytes.
  Result<std::optional<Pkcs11KeyProtection>> Protection(std::string_view) {
    return std::optional<Pkcs11KeyProtection>();
  }

 private:
  std::optional<ScopedTempDir> dir_;
};

class SoftHsmBackend {
 public:
  static constexpr bool kKeysExtractable = false;
  // SoftHSM2 2.6.1 lists no CKM_EC_MONTGOMERY_KEY_PAIR_GEN. A token that has it runs the x25519
  // tests.
  static constexpr bool kSupportsX25519 = false;

  Result<void> SetUp() {
    AIRLOCK_ASSIGN_OR_RETURN(token_, testing::SoftHsmToken::Create());
    return {};
  }
  std::string Uri() const { return token_->StoreUri(); }
  KeyStoreOptions Options(std::string secret) const {
    KeyStoreOptions options;
    options.pkcs11_module = testing::SoftHsmModulePath();
    options.secret = [secret] { return Result<std::string>(secret); };
    return options;
  }
  std::string GoodSecret() const { return testing::kSoftHsmUserPin; }
  Result<std::unique_ptr<KeyStore>> Init() {
    AIRLOCK_ASSIGN_OR_RETURN(KeyUri uri, ParseKeyUri(Uri()));
    return InitKeyStore(uri, Options(GoodSecret()));
  }
  // Asks the token itself, through a second session.
  Result<std::optional<Pkcs11KeyProtection>> Protection(std::string_view name) {
    AIRLOCK_ASSIGN_OR_RETURN(auto token, Pkcs11Token::Open(token_->Options()));
    AIRLOCK_ASSIGN_OR_RETURN(Pkcs11KeyProtection p, token->InspectPrivateKey(name));
    return std::optional<Pkcs11KeyProtection>(p);
  }

 private:
  std::unique_ptr<testing::SoftHsmToken> token_;
};

template <typename Backend>
class KeyStoreBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if constexpr (std::is_same_v<Backend, SoftHsmBackend>) {
      AIRLOCK_REQUIRE_SERVICE(testing::SoftHsmAvailable(), "SoftHSM2 (softhsm2 package)");
    }
    auto ok = backend_.SetUp();
    ASSERT_TRUE(ok) << ok.error().ToString();
    auto store = backend_.Init();
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
  }
  void TearDown() override { store_.reset(); }  // before the backend (SoftHSM2 finalises first)

  Result<std::unique_ptr<KeyStore>> Open(std::string secret) {
    return OpenKeyStore(backend_.Uri(), backend_.Options(std::move(secret)));
  }
  void Reopen() {
    store_.reset();
    auto store = Open(backend_.GoodSecret());
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
  }
  KeyInfo MustCreate(std::string_view name, KeyType type, KeyPurpose purpose) {
    auto info = store_->Create(name, type, purpose);
    EXPECT_TRUE(info) << name << ": " << info.error().ToString();
    return info ? *info : KeyInfo{};
  }

  Backend backend_;
  std::unique_ptr<KeyStore> store_;
};

using Backends = ::testing::Types<FileVaultBackend, SoftHsmBackend>;

class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, FileVaultBackend>) return "FileVault";
    return "SoftHsm2";
  }
};
TYPED_TEST_SUITE(KeyStoreBackendTest, Backends, BackendNames);

// ---- the suite ----

TYPED_TEST(KeyStoreBackendTest, EachSigningTypeSignsInTufFormatAndVerifies) {
  const Bytes message = ToBytes("{\"signed\":{\"_type\":\"targets\"}}");
  for (KeyType type : {KeyType::kEd25519, KeyType::kEcdsaP256, KeyType::kRsa}) {
    std::string name = "sign-" + std::string(crypto::KeyTypeName(type));
    KeyInfo info = this->MustCreate(name, type, KeyPurpose::kTargets);
    EXPECT_EQ(info.name, name);
    EXPECT_EQ(info.type, type);
    EXPECT_EQ(info.state, KeyState::kActive);
    auto pub = this->store_->PublicKey(name);
    ASSERT_TRUE(pub) << pub.error().ToString();
    EXPECT_EQ(pub->type(), type);
    EXPECT_EQ(pub->KeyId(), info.key_id);
    auto sig = this->store_->Sign(name, message);
    ASSERT_TRUE(sig) << name << ": " << sig.error().ToString();
    switch (type) {
      case KeyType::kEd25519:
        EXPECT_EQ(sig->size(), 64u);  // raw RFC 8032 signature
        break;
      case KeyType::kEcdsaP256:
        EXPECT_EQ((*sig)[0], 0x30);  // DER, as TUF's ecdsa-sha2-nistp256
        break;
      case KeyType::kRsa:
        EXPECT_EQ(sig->size(), 512u);  // RSA-4096 PSS
        EXPECT_EQ(pub->bits(), 4096);
        break;
      case KeyType::kX25519:
        break;
    }
    EXPECT_TRUE(crypto::Verify(*pub, message, *sig)) << name;
    Bytes other = message;
    other.back() ^= 1;
    EXPECT_EQ(crypto::Verify(*pub, other, *sig).error().code(), ErrorCode::kBadSignature) << name;
  }
}

TYPED_TEST(KeyStoreBackendTest, ListIsSortedAndDescribesEveryKey) {
  this->MustCreate("timestamp", KeyType::kEd25519, KeyPurpose::kTimestamp);
  this->MustCreate("root", KeyType::kEcdsaP256, KeyPurpose::kRoot);
  auto list = this->store_->List();
  ASSERT_TRUE(list) << list.error().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "root");
  EXPECT_EQ((*list)[0].type, KeyType::kEcdsaP256);
  EXPECT_EQ((*list)[0].purpose, KeyPurpose::kRoot);
  EXPECT_EQ((*list)[1].name, "timestamp");
  EXPECT_EQ((*list)[1].purpose, KeyPurpose::kTimestamp);
  EXPECT_EQ((*list)[1].key_id, this->store_->PublicKey("timestamp")->KeyId());
  auto got = this->store_->Get("root");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->key_id, (*list)[0].key_id);
}

TYPED_TEST(KeyStoreBackendTest, UnwrapsRsaOaepKeysWrappedByCrypto) {
  this->MustCreate("wrap", KeyType::kRsa, KeyPurpose::kContentWrap);
  auto pub = this->store_->PublicKey("wrap");
  ASSERT_TRUE(pub);
  const Bytes content_key(32, 0xc3);
  const Bytes aad = ToBytes("airlock bundle v1 header");
  auto wrapped = crypto::WrapKey(*pub, content_key, aad);
  ASSERT_TRUE(wrapped);
  auto unwrapped = this->store_->Unwrap("wrap", *wrapped, aad);
  ASSERT_TRUE(unwrapped) << unwrapped.error().ToString();
  EXPECT_EQ(*unwrapped, content_key);
  auto wrong_aad = this->store_->Unwrap("wrap", *wrapped, AsBytes("another header"));
  ASSERT_FALSE(wrong_aad);
  EXPECT_EQ(wrong_aad.error().code(), ErrorCode::kDecryptFailed);
  Bytes tampered = *wrapped;
  tampered[10] ^= 0x80;
  EXPECT_EQ(this->store_->Unwrap("wrap", tampered, aad).error().code(), ErrorCode::kDecryptFailed);
}

// An RSA unwrap that fails says nothing about why: a tampered ciphertext (anywhere, including a
// first byte that puts it above the modulus) fails with exactly the error of a wrong key, so the
// answer cannot serve as a padding oracle.
TYPED_TEST(KeyStoreBackendTest, TamperedRsaWrapFailsExactlyLikeAWrongKey) {
  this->MustCreate("wrap", KeyType::kRsa, KeyPurpose::kContentWrap);
  this->MustCreate("other", KeyType::kRsa, KeyPurpose::kContentWrap);
  auto pub = this->store_->PublicKey("wrap");
  ASSERT_TRUE(pub);
  const Bytes aad = ToBytes("airlock bundle v1 header");
  auto wrapped = crypto::WrapKey(*pub, Bytes(32, 0x5a), aad);
  ASSERT_TRUE(wrapped);
  auto wrong_key = this->store_->Unwrap("other", *wrapped, aad);
  ASSERT_FALSE(wrong_key);
  EXPECT_EQ(wrong_key.error().code(), ErrorCode::kDecryptFailed);
  for (size_t at : {size_t{0}, size_t{1}, wrapped->size() / 2, wrapped->size() - 1}) {
    Bytes tampered = *wrapped;
    tampered[at] ^= at == 0 ? 0xff : 0x01;
    auto got = this->store_->Unwrap("wrap", tampered, aad);
    ASSERT_FALSE(got) << "byte " << at;
    EXPECT_EQ(got.error().code(), wrong_key.error().code()) << "byte " << at;
    EXPECT_EQ(got.error().message(), wrong_key.error().message()) << "byte " << at;
  }
  auto wrong_aad = this->store_->Unwrap("wrap", *wrapped, AsBytes("another header"));
  ASSERT_FALSE(wrong_aad);
  EXPECT_EQ(wrong_aad.error().message(), wrong_key.error().message());
}

TYPED_TEST(KeyStoreBackendTest, UnwrapsX25519WhereTheBackendCan) {
  auto created = this->store_->Create("x", KeyType::kX25519, KeyPurpose::kContentWrap);
  if (!TypeParam::kSupportsX25519) {
    ASSERT_FALSE(created);
    EXPECT_EQ(created.error().code(), ErrorCode::kUnsupported) << created.error().ToString();
    EXPECT_EQ(this->store_->Get("x").error().code(), ErrorCode::kNotFound);  // nothing left behind
    return;
  }
  ASSERT_TRUE(created) << created.error().ToString();
  auto pub = this->store_->PublicKey("x");
  ASSERT_TRUE(pub);
  const Bytes content_key(32, 0x42);
  auto wrapped = crypto::WrapKey(*pub, content_key, AsBytes("aad"));
  ASSERT_TRUE(wrapped);
  EXPECT_EQ(*this->store_->Unwrap("x", *wrapped, AsBytes("aad")), content_key);
  EXPECT_EQ(this->store_->Unwrap("x", *wrapped, AsBytes("bad")).error().code(),
            ErrorCode::kDecryptFailed);
  EXPECT_EQ(this->store_->Sign("x", AsBytes("m")).error().code(), ErrorCode::kInvalidArgument);
}

TYPED_TEST(KeyStoreBackendTest, SuspendedRetiredRevokedKeysCannotSignAndResumeWorks) {
  this->MustCreate("targets", KeyType::kEd25519, KeyPurpose::kTargets);
  auto pub = this->store_->PublicKey("targets");
  ASSERT_TRUE(pub);
  ASSERT_TRUE(this->store_->SetState("targets", KeyState::kSuspended));
  EXPECT_EQ(this->store_->Get("targets")->state, KeyState::kSuspended);
  auto refused = this->store_->Sign("targets", AsBytes("m"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kKeyUnusable);
  EXPECT_NE(refused.error().message().find("suspended"), std::string::npos)
      << refused.error().message();
  EXPECT_TRUE(this->store_->PublicKey("targets"));  // still verifiable

  ASSERT_TRUE(this->store_->SetState("targets", KeyState::kActive));  // resume
  auto sig = this->store_->Sign("targets", AsBytes("m"));
  ASSERT_TRUE(sig) << sig.error().ToString();
  EXPECT_TRUE(crypto::Verify(*pub, AsBytes("m"), *sig));

  ASSERT_TRUE(this->store_->SetState("targets", KeyState::kRetired));
  EXPECT_EQ(this->store_->Sign("targets", AsBytes("m")).error().code(), ErrorCode::kKeyUnusable);
  ASSERT_TRUE(this->store_->SetState("targets", KeyState::kRevoked));
  EXPECT_EQ(this->store_->Sign("targets", AsBytes("m")).error().code(), ErrorCode::kKeyUnusable);
  // Revoked is not resumable.
  EXPECT_EQ(this->store_->SetState("targets", KeyState::kActive).error().code(),
            ErrorCode::kInvalidArgument);
  ASSERT_TRUE(this->store_->SetState("targets", KeyState::kCompromised));
  EXPECT_EQ(this->store_->Sign("targets", AsBytes("m")).error().code(), ErrorCode::kKeyUnusable);
  EXPECT_EQ(this->store_->SetState("targets", KeyState::kRevoked).error().code(),
            ErrorCode::kInvalidArgument);
}

TYPED_TEST(KeyStoreBackendTest, SuspendedWrapKeyCannotUnwrap) {
  this->MustCreate("wrap", KeyType::kRsa, KeyPurpose::kContentWrap);
  auto wrapped = crypto::WrapKey(*this->store_->PublicKey("wrap"), Bytes(32, 1), AsBytes("a"));
  ASSERT_TRUE(wrapped);
  ASSERT_TRUE(this->store_->SetState("wrap", KeyState::kSuspended));
  EXPECT_EQ(this->store_->Unwrap("wrap", *wrapped, AsBytes("a")).error().code(),
            ErrorCode::kKeyUnusable);
  ASSERT_TRUE(this->store_->SetState("wrap", KeyState::kActive));
  EXPECT_EQ(*this->store_->Unwrap("wrap", *wrapped, AsBytes("a")), Bytes(32, 1));
}

// Capgo encryption v2: a PKCS#1 v1.5 type-1 block over the 16-byte AES key and the 32-byte SHA-256,
// which the app recovers with the public key.
TYPED_TEST(KeyStoreBackendTest, CapgoKeysMakeType1BlocksThatRecoverWithThePublicKey) {
  KeyInfo info = this->MustCreate("capgo", KeyType::kRsa, KeyPurpose::kCapgo);
  EXPECT_EQ(info.purpose, KeyPurpose::kCapgo);
  auto pub = this->store_->PublicKey("capgo");
  ASSERT_TRUE(pub) << pub.error().ToString();
  EXPECT_EQ(pub->bits(), kCapgoRsaBits);  // the Capgo CLI's size
  for (size_t size : {size_t{16}, size_t{32}, size_t{245}}) {
    Bytes data(size);
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<uint8_t>(i * 7 + 1);
    auto block = this->store_->PrivateEncryptPkcs1("capgo", data);
    ASSERT_TRUE(block) << size << ": " << block.error().ToString();
    EXPECT_EQ(block->size(), 256u);
    auto recovered = crypto::RsaPkcs1Type1Recover(*pub, *block);
    ASSERT_TRUE(recovered) << recovered.error().ToString();
    EXPECT_EQ(*recovered, data);
    // Type-1 padding is deterministic: the same input gives the same block.
    EXPECT_EQ(*this->store_->PrivateEncryptPkcs1("capgo", data), *block);
  }
  auto too_long = this->store_->PrivateEncryptPkcs1("capgo", Bytes(246, 1));  // k - 11 = 245
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(this->store_->PrivateEncryptPkcs1("missing", Bytes(16, 1)).error().code(),
            ErrorCode::kNotFound);
}

TYPED_TEST(KeyStoreBackendTest, PrivateEncryptIsOnlyForActiveCapgoKeys) {
  // Capgo keys are RSA only.
  EXPECT_EQ(this->store_->Create("c", KeyType::kEd25519, KeyPurpose::kCapgo).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(this->store_->Get("c").error().code(), ErrorCode::kNotFound);
  // An RSA key of another purpose does not make raw blocks (it would sign any chosen value).
  this->MustCreate("targets", KeyType::kRsa, KeyPurpose::kTargets);
  this->MustCreate("ed", KeyType::kEd25519, KeyPurpose::kTargets);
  for (const char* name : {"targets", "ed"}) {
    auto refused = this->store_->PrivateEncryptPkcs1(name, Bytes(16, 1));
    ASSERT_FALSE(refused) << name;
    EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument) << name;
  }
  // A suspended capgo key is unusable until resumed.
  this->MustCreate("capgo", KeyType::kRsa, KeyPurpose::kCapgo);
  ASSERT_TRUE(this->store_->SetState("capgo", KeyState::kSuspended));
  auto suspended = this->store_->PrivateEncryptPkcs1("capgo", Bytes(16, 1));
  ASSERT_FALSE(suspended);
  EXPECT_EQ(suspended.error().code(), ErrorCode::kKeyUnusable);
  EXPECT_NE(suspended.error().message().find("suspended"), std::string::npos);
  ASSERT_TRUE(this->store_->SetState("capgo", KeyState::kActive));
  auto block = this->store_->PrivateEncryptPkcs1("capgo", Bytes(16, 1));
  ASSERT_TRUE(block) << block.error().ToString();
  EXPECT_EQ(*crypto::RsaPkcs1Type1Recover(*this->store_->PublicKey("capgo"), *block), Bytes(16, 1));
  ASSERT_TRUE(this->store_->SetState("capgo", KeyState::kRetired));
  EXPECT_EQ(this->store_->PrivateEncryptPkcs1("capgo", Bytes(16, 1)).error().code(),
            ErrorCode::kKeyUnusable);
}

TYPED_TEST(KeyStoreBackendTest, WrongSecretIsWrongKey) {
  this->MustCreate("k", KeyType::kEd25519, KeyPurpose::kTargets);
  // While the good store is open (a PKCS#11 token is then already logged in) ...
  auto wrong = this->Open("definitely-not-it");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kWrongKey) << wrong.error().ToString();
  // ... and when it is not.
  this->store_.reset();
  wrong = this->Open("definitely-not-it");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kWrongKey) << wrong.error().ToString();
  // Nothing changed.
  this->Reopen();
  ASSERT_TRUE(this->store_);
  EXPECT_TRUE(this->store_->Sign("k", AsBytes("m")));
}

TYPED_TEST(KeyStoreBackendTest, KeysAndStatesPersistAcrossReopening) {
  KeyInfo ed = this->MustCreate("ed", KeyType::kEd25519, KeyPurpose::kRoot);
  KeyInfo ec = this->MustCreate("ec", KeyType::kEcdsaP256, KeyPurpose::kSnapshot);
  ASSERT_TRUE(this->store_->SetState("ec", KeyState::kSuspended));
  this->Reopen();
  ASSERT_TRUE(this->store_);
  auto list = this->store_->List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "ec");
  EXPECT_EQ((*list)[0].key_id, ec.key_id);
  EXPECT_EQ((*list)[0].state, KeyState::kSuspended);
  EXPECT_EQ((*list)[0].purpose, KeyPurpose::kSnapshot);
  EXPECT_EQ((*list)[1].key_id, ed.key_id);
  EXPECT_EQ((*list)[1].created_at, ed.created_at);
  auto sig = this->store_->Sign("ed", AsBytes("after reopen"));
  ASSERT_TRUE(sig);
  EXPECT_TRUE(crypto::Verify(*this->store_->PublicKey("ed"), AsBytes("after reopen"), *sig));
  EXPECT_EQ(this->store_->Sign("ec", AsBytes("m")).error().code(), ErrorCode::kKeyUnusable);
}

TYPED_TEST(KeyStoreBackendTest, NamesTypesAndPurposesAreChecked) {
  this->MustCreate("k", KeyType::kEd25519, KeyPurpose::kTargets);
  EXPECT_EQ(this->store_->Create("k", KeyType::kEcdsaP256, KeyPurpose::kTargets).error().code(),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(this->store_->Get("missing").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(this->store_->Sign("missing", AsBytes("m")).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(this->store_->PublicKey("missing").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(
      this->store_->Create("bad name!", KeyType::kEd25519, KeyPurpose::kTargets).error().code(),
      ErrorCode::kInvalidArgument);
  // A signing type cannot be a content-wrap key, nor x25519 a signing key.
  EXPECT_EQ(this->store_->Create("w", KeyType::kEd25519, KeyPurpose::kContentWrap).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(this->store_->Create("s", KeyType::kX25519, KeyPurpose::kTargets).error().code(),
            ErrorCode::kInvalidArgument);
  // A signing key does not unwrap.
  EXPECT_EQ(this->store_->Unwrap("k", Bytes(512, 1), {}).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(this->store_->SetState("k", KeyState::kActive).error().code(),
            ErrorCode::kInvalidArgument);  // X -> X is not a transition
}

TYPED_TEST(KeyStoreBackendTest, RenameKeepsTheKeyAndDeleteRemovesIt) {
  KeyInfo info = this->MustCreate("targets", KeyType::kEcdsaP256, KeyPurpose::kTargets);
  this->MustCreate("other", KeyType::kEd25519, KeyPurpose::kTargets);
  EXPECT_EQ(this->store_->Rename("targets", "other").error().code(), ErrorCode::kAlreadyExists);
  ASSERT_TRUE(this->store_->Rename("targets", "targets@1"));
  EXPECT_EQ(this->store_->Get("targets").error().code(), ErrorCode::kNotFound);
  auto moved = this->store_->Get("targets@1");
  ASSERT_TRUE(moved) << moved.error().ToString();
  EXPECT_EQ(moved->key_id, info.key_id);
  EXPECT_EQ(moved->purpose, KeyPurpose::kTargets);
  auto sig = this->store_->Sign("targets@1", AsBytes("m"));
  ASSERT_TRUE(sig);
  EXPECT_TRUE(crypto::Verify(*this->store_->PublicKey("targets@1"), AsBytes("m"), *sig));
  // The old name is free again.
  this->MustCreate("targets", KeyType::kEd25519, KeyPurpose::kTargets);

  ASSERT_TRUE(this->store_->Delete("targets@1"));
  EXPECT_EQ(this->store_->Get("targets@1").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(this->store_->Delete("targets@1").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(this->store_->List()->size(), 2u);
}

TYPED_TEST(KeyStoreBackendTest, PrivateKeysLeaveOnlyAsTheBackendAllows) {
  this->MustCreate("ed", KeyType::kEd25519, KeyPurpose::kRoot);
  this->MustCreate("ec", KeyType::kEcdsaP256, KeyPurpose::kTargets);
  const Bytes backup_key(32, 0x07);
  auto sealed = this->store_->ExportSealed("ed", backup_key);
  if (TypeParam::kKeysExtractable) {
    EXPECT_TRUE(sealed) << sealed.error().ToString();
  } else {
    ASSERT_FALSE(sealed);
    EXPECT_EQ(sealed.error().code(), ErrorCode::kUnsupported);
  }
  for (const char* name : {"ed", "ec"}) {
    auto protection = this->backend_.Protection(name);
    ASSERT_TRUE(protection) << protection.error().ToString();
    if (!*protection) continue;  // no token to ask
    EXPECT_TRUE((*protection)->sensitive) << name;
    EXPECT_FALSE((*protection)->extractable) << name;
    EXPECT_TRUE((*protection)->never_extractable) << name;
    EXPECT_FALSE((*protection)->value_readable) << name;  // C_GetAttributeValue(CKA_VALUE) fails
  }
}

// ---- importing an existing Capgo key (ImportPrivateKey) ----

TYPED_TEST(KeyStoreBackendTest, ImportedCapgoKeyServesTheAppsThatShipItsPublicKey) {
  auto original = crypto::PrivateKey::GenerateRsa(kCapgoRsaBits);  // as the Capgo CLI makes them
  ASSERT_TRUE(original) << original.error().ToString();
  const crypto::PublicKey shipped = original->Public();  // what the apps in the field hold
  auto info = this->store_->ImportPrivateKey("capgo", *original, KeyPurpose::kCapgo);
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->name, "capgo");
  EXPECT_EQ(info->key_id, shipped.KeyId());
  EXPECT_EQ(info->type, KeyType::kRsa);
  EXPECT_EQ(info->purpose, KeyPurpose::kCapgo);
  EXPECT_EQ(info->state, KeyState::kActive);
  EXPECT_EQ(info->origin, KeyOrigin::kImported);

  auto pub = this->store_->PublicKey("capgo");
  ASSERT_TRUE(pub) << pub.error().ToString();
  EXPECT_TRUE(pub->Equals(shipped));
  EXPECT_EQ(pub->ToPem(), shipped.ToPem());
  for (size_t size : {size_t{16}, size_t{32}, size_t{245}}) {
    Bytes data(size);
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<uint8_t>(i * 13 + 5);
    auto block = this->store_->PrivateEncryptPkcs1("capgo", data);
    ASSERT_TRUE(block) << size << ": " << block.error().ToString();
    EXPECT_EQ(block->size(), 256u);
    auto recovered = crypto::RsaPkcs1Type1Recover(shipped, *block);
    ASSERT_TRUE(recovered) << recovered.error().ToString();
    EXPECT_EQ(*recovered, data);
    // Type-1 padding is deterministic: byte for byte what the original key makes outside the store.
    auto outside = crypto::RsaPkcs1Type1Sign(*original, data);
    ASSERT_TRUE(outside) << outside.error().ToString();
    EXPECT_EQ(*block, *outside);
  }

  // The origin survives reopening, state changes and renames; a generated key stays generated.
  this->MustCreate("fresh", KeyType::kRsa, KeyPurpose::kCapgo);
  this->Reopen();
  ASSERT_TRUE(this->store_->SetState("capgo", KeyState::kSuspended));
  ASSERT_TRUE(this->store_->SetState("capgo", KeyState::kActive));
  ASSERT_TRUE(this->store_->Rename("capgo", "capgo@1"));
  auto got = this->store_->Get("capgo@1");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->origin, KeyOrigin::kImported);
  EXPECT_EQ(got->key_id, shipped.KeyId());
  EXPECT_EQ(this->store_->Get("fresh")->origin, KeyOrigin::kGenerated);
  auto again = this->store_->PrivateEncryptPkcs1("capgo@1", Bytes(32, 9));
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(*crypto::RsaPkcs1Type1Recover(shipped, *again), Bytes(32, 9));
}

TYPED_TEST(KeyStoreBackendTest, ImportTakesOnlyCapgoRsaKeysOntoFreeNames) {
  auto rsa = crypto::PrivateKey::GenerateRsa(kCapgoRsaBits);
  ASSERT_TRUE(rsa) << rsa.error().ToString();
  // TUF and content keys must be generated inside the store.
  for (KeyPurpose purpose :
       {KeyPurpose::kRoot, KeyPurpose::kTargets, KeyPurpose::kSnapshot, KeyPurpose::kTimestamp,
        KeyPurpose::kContentWrap, KeyPurpose::kAudit}) {
    auto r = this->store_->ImportPrivateKey("k", *rsa, purpose);
    ASSERT_FALSE(r) << KeyPurposeName(purpose);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << KeyPurposeName(purpose);
  }
  // Capgo keys are RSA of at least 2048 bits.
  auto ed = crypto::PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_TRUE(ed);
  EXPECT_EQ(this->store_->ImportPrivateKey("k", *ed, KeyPurpose::kCapgo).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(this->store_->ImportPrivateKey("k", *ed, KeyPurpose::kRoot).error().code(),
            ErrorCode::kInvalidArgument);
  crypto::PrivateKey small(crypto::EvpPkeyPtr(EVP_RSA_gen(1024)), KeyType::kRsa);
  ASSERT_NE(small.get(), nullptr);
  EXPECT_EQ(this->store_->ImportPrivateKey("k", small, KeyPurpose::kCapgo).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(this->store_->ImportPrivateKey("bad/name", *rsa, KeyPurpose::kCapgo).error().code(),
            ErrorCode::kInvalidArgument);
  // A taken name, whether by a generated or an imported key; the holder is unchanged.
  KeyInfo generated = this->MustCreate("capgo", KeyType::kRsa, KeyPurpose::kCapgo);
  EXPECT_EQ(this->store_->ImportPrivateKey("capgo", *rsa, KeyPurpose::kCapgo).error().code(),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(this->store_->Get("capgo")->key_id, generated.key_id);
  ASSERT_TRUE(this->store_->ImportPrivateKey("old", *rsa, KeyPurpose::kCapgo));
  auto other = crypto::PrivateKey::GenerateRsa(kCapgoRsaBits);
  ASSERT_TRUE(other);
  EXPECT_EQ(this->store_->ImportPrivateKey("old", *other, KeyPurpose::kCapgo).error().code(),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(this->store_->Get("old")->key_id, rsa->KeyId());
  auto all = this->store_->List();
  ASSERT_TRUE(all) << all.error().ToString();
  ASSERT_EQ(all->size(), 2u);  // nothing of the refused imports was stored
  EXPECT_EQ((*all)[0].name, "capgo");
  EXPECT_EQ((*all)[1].name, "old");
}

TYPED_TEST(KeyStoreBackendTest, ImportedKeysAreNoMoreExtractableThanGeneratedOnes) {
  auto rsa = crypto::PrivateKey::GenerateRsa(kCapgoRsaBits);
  ASSERT_TRUE(rsa);
  ASSERT_TRUE(this->store_->ImportPrivateKey("capgo", *rsa, KeyPurpose::kCapgo));
  auto sealed = this->store_->ExportSealed("capgo", Bytes(32, 0x07));
  EXPECT_EQ(static_cast<bool>(sealed), TypeParam::kKeysExtractable);
  auto protection = this->backend_.Protection("capgo");
  ASSERT_TRUE(protection) << protection.error().ToString();
  if (!*protection) return;  // no token to ask
  EXPECT_TRUE((*protection)->sensitive);
  EXPECT_FALSE((*protection)->extractable);
  // CKA_PRIVATE_EXPONENT / CKA_PRIME_1 / CKA_VALUE cannot be read back from the token.
  EXPECT_FALSE((*protection)->value_readable);
  // The token tells the truth about an imported key: it was not always sensitive.
  EXPECT_FALSE((*protection)->always_sensitive);
  EXPECT_FALSE((*protection)->never_extractable);
}

}  // namespace
}  // namespace airlock::keys
