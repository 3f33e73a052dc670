// The raw PKCS#11 layer against a throwaway SoftHSM2 token.
#include "keys/pkcs11.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "common/require_service.h"
#include "crypto/sign.h"
#include "crypto/wrap.h"
#include "keys/key_store.h"
#include "keys/softhsm_fixture.h"

namespace airlock::keys {
namespace {

using crypto::KeyType;
using testing::SoftHsmToken;

class Pkcs11TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AIRLOCK_REQUIRE_SERVICE(testing::SoftHsmAvailable(), "SoftHSM2 (softhsm2 package)");
    auto fixture = SoftHsmToken::Create();
    ASSERT_TRUE(fixture) << fixture.error().ToString();
    fixture_ = std::move(*fixture);
    auto token = Pkcs11Token::Open(fixture_->Options());
    ASSERT_TRUE(token) << token.error().ToString();
    token_ = std::move(*token);
  }
  void TearDown() override {
    token_.reset();  // before the fixture: SoftHSM2 must be finalised before its directory goes
    fixture_.reset();
  }

  std::unique_ptr<SoftHsmToken> fixture_;
  std::unique_ptr<Pkcs11Token> token_;
};

TEST(Pkcs11Module, MissingModuleIsNotFound) {
  auto module = Pkcs11Module::Load("/nonexistent/libnothing.so");
  ASSERT_FALSE(module);
  EXPECT_EQ(module.error().code(), ErrorCode::kNotFound);
}

TEST(Pkcs11Module, LibraryWithoutFunctionListIsUnsupported) {
  // libdl / libc are shared objects but not PKCS#11 modules.
  for (const char* path :
       {"/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1"}) {
    if (!std::filesystem::exists(path)) continue;
    auto module = Pkcs11Module::Load(path);
    ASSERT_FALSE(module);
    EXPECT_EQ(module.error().code(), ErrorCode::kUnsupported);
    return;
  }
  GTEST_SKIP() << "no libz to try";
}

TEST(Pkcs11Pin, ResolvesExplicitThenFileThenEnvironment) {
  Pkcs11Options options;
  options.pin = "direct";
  EXPECT_EQ(*ResolvePkcs11Pin(options), "direct");

  auto dir = std::filesystem::temp_directory_path() / "airlock-pin-test";
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "pin") << "from-file\n"; }
  options.pin.reset();
  options.pin_source = "file:" + (dir / "pin").string();
  EXPECT_EQ(*ResolvePkcs11Pin(options), "from-file");
  options.pin_source = (dir / "pin").string();
  EXPECT_EQ(*ResolvePkcs11Pin(options), "from-file");
  options.pin_source = "file:" + (dir / "missing").string();
  EXPECT_EQ(ResolvePkcs11Pin(options).error().code(), ErrorCode::kNotFound);
  options.pin_source = "env:FOO";
  EXPECT_EQ(ResolvePkcs11Pin(options).error().code(), ErrorCode::kInvalidArgument);
  std::filesystem::remove_all(dir);

  options.pin_source.clear();
  setenv("AIRLOCK_PKCS11_PIN", "from-env", 1);
  EXPECT_EQ(*ResolvePkcs11Pin(options), "from-env");
  unsetenv("AIRLOCK_PKCS11_PIN");
  EXPECT_EQ(ResolvePkcs11Pin(options).error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(Pkcs11TokenTest, WrongPinIsWrongKey) {
  auto token = Pkcs11Token::Open(fixture_->Options("not-the-pin"));
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code(), ErrorCode::kWrongKey) << token.error().ToString();
  EXPECT_NE(token.error().message().find("CKR_PIN_INCORRECT"), std::string::npos);
}

TEST_F(Pkcs11TokenTest, UnknownTokenIsNotFound) {
  Pkcs11Options options = fixture_->Options();
  options.token_label = "no-such-token";
  auto token = Pkcs11Token::Open(options);
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code(), ErrorCode::kNotFound);
}

TEST_F(Pkcs11TokenTest, TwoHandlesOnOneTokenShareTheModule) {
  auto second = Pkcs11Token::Open(fixture_->Options());
  ASSERT_TRUE(second) << second.error().ToString();
  ASSERT_TRUE(token_->GenerateKeyPair("shared", KeyType::kEcdsaP256, Pkcs11KeyUse::kSign));
  second->reset();  // closing one session must not log the other out
  EXPECT_TRUE(token_->Sign("shared", AsBytes("m")));
}

TEST_F(Pkcs11TokenTest, Ed25519SignsOnTokenAndVerifiesWithCrypto) {
  ASSERT_TRUE(token_->Supports(KeyType::kEd25519, Pkcs11KeyUse::kSign));
  auto pub = token_->GenerateKeyPair("ed", KeyType::kEd25519, Pkcs11KeyUse::kSign);
  ASSERT_TRUE(pub) << pub.error().ToString();
  EXPECT_EQ(pub->type(), KeyType::kEd25519);
  auto sig = token_->Sign("ed", AsBytes("hello"));
  ASSERT_TRUE(sig) << sig.error().ToString();
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(crypto::Verify(*pub, AsBytes("hello"), *sig));
  EXPECT_EQ(crypto::Verify(*pub, AsBytes("hellO"), *sig).error().code(), ErrorCode::kBadSignature);
  EXPECT_TRUE(token_->PublicKey("ed")->Equals(*pub));
}

TEST_F(Pkcs11TokenTest, EcdsaP256SignatureIsDerAndVerifies) {
  auto pub = token_->GenerateKeyPair("ec", KeyType::kEcdsaP256, Pkcs11KeyUse::kSign);
  ASSERT_TRUE(pub) << pub.error().ToString();
  for (int i = 0; i < 8; ++i) {  // several, so short r/s (leading zero) encodings are exercised
    Bytes message = ToBytes("message " + std::to_string(i));
    auto sig = token_->Sign("ec", message);
    ASSERT_TRUE(sig) << sig.error().ToString();
    EXPECT_EQ((*sig)[0], 0x30);  // DER SEQUENCE, not raw r||s
    EXPECT_TRUE(crypto::Verify(*pub, message, *sig));
  }
  EXPECT_EQ(pub->TufScheme(), "ecdsa-sha2-nistp256");
}

TEST_F(Pkcs11TokenTest, RsaPssSignAndOaepUnwrap) {
  auto sign_pub = token_->GenerateKeyPair("rsa-sign", KeyType::kRsa, Pkcs11KeyUse::kSign);
  ASSERT_TRUE(sign_pub) << sign_pub.error().ToString();
  EXPECT_EQ(sign_pub->bits(), 4096);
  auto sig = token_->Sign("rsa-sign", AsBytes("payload"));
  ASSERT_TRUE(sig) << sig.error().ToString();
  EXPECT_EQ(sig->size(), 512u);
  EXPECT_TRUE(crypto::Verify(*sign_pub, AsBytes("payload"), *sig));
  // A signing key does not unwrap.
  EXPECT_EQ(token_->Unwrap("rsa-sign", *sig, {}).error().code(), ErrorCode::kInvalidArgument);

  auto wrap_pub = token_->GenerateKeyPair("rsa-wrap", KeyType::kRsa, Pkcs11KeyUse::kUnwrap);
  ASSERT_TRUE(wrap_pub) << wrap_pub.error().ToString();
  Bytes content_key(32, 0x5a);
  Bytes aad = ToBytes("bundle-context");
  auto wrapped = crypto::WrapKey(*wrap_pub, content_key, aad);
  ASSERT_TRUE(wrapped);
  auto unwrapped = token_->Unwrap("rsa-wrap", *wrapped, aad);
  ASSERT_TRUE(unwrapped) << unwrapped.error().ToString();
  EXPECT_EQ(*unwrapped, content_key);
  // The aad is the OAEP label: another aad does not open it.
  auto wrong = token_->Unwrap("rsa-wrap", *wrapped, AsBytes("other-context"));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kDecryptFailed) << wrong.error().ToString();
  // An empty aad works too.
  auto wrapped_no_aad = crypto::WrapKey(*wrap_pub, content_key, {});
  ASSERT_TRUE(wrapped_no_aad);
  EXPECT_EQ(*token_->Unwrap("rsa-wrap", *wrapped_no_aad, {}), content_key);
  // An unwrap key does not sign.
  EXPECT_EQ(token_->Sign("rsa-wrap", AsBytes("x")).error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(Pkcs11TokenTest, X25519UnwrapOnlyWhereTheTokenSupportsIt) {
  if (!token_->Supports(KeyType::kX25519, Pkcs11KeyUse::kUnwrap)) {
    // SoftHSM2 2.6.1 has no CKM_EC_MONTGOMERY_KEY_PAIR_GEN: say so, do not fake it.
    auto pub = token_->GenerateKeyPair("x", KeyType::kX25519, Pkcs11KeyUse::kUnwrap);
    ASSERT_FALSE(pub);
    EXPECT_EQ(pub.error().code(), ErrorCode::kUnsupported);
    return;
  }
  auto pub = token_->GenerateKeyPair("x", KeyType::kX25519, Pkcs11KeyUse::kUnwrap);
  ASSERT_TRUE(pub) << pub.error().ToString();
  Bytes content_key(32, 0x11);
  auto wrapped = crypto::WrapKey(*pub, content_key, AsBytes("aad"));
  ASSERT_TRUE(wrapped);
  EXPECT_EQ(*token_->Unwrap("x", *wrapped, AsBytes("aad")), content_key);
  EXPECT_EQ(token_->Unwrap("x", *wrapped, AsBytes("bad")).error().code(),
            ErrorCode::kDecryptFailed);
}

TEST_F(Pkcs11TokenTest, TypesThatCannotDoTheUseAreRefused) {
  EXPECT_EQ(token_->GenerateKeyPair("a", KeyType::kEd25519, Pkcs11KeyUse::kUnwrap).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(token_->GenerateKeyPair("b", KeyType::kX25519, Pkcs11KeyUse::kSign).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(token_->GenerateKeyPair("", KeyType::kEd25519, Pkcs11KeyUse::kSign).error().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(Pkcs11TokenTest, PrivateKeysAreSensitiveAndNeverExtractable) {
  ASSERT_TRUE(token_->GenerateKeyPair("ed", KeyType::kEd25519, Pkcs11KeyUse::kSign));
  ASSERT_TRUE(token_->GenerateKeyPair("ec", KeyType::kEcdsaP256, Pkcs11KeyUse::kSign));
  for (const char* name : {"ed", "ec"}) {
    auto p = token_->InspectPrivateKey(name);
    ASSERT_TRUE(p) << p.error().ToString();
    EXPECT_TRUE(p->sensitive) << name;
    EXPECT_FALSE(p->extractable) << name;
    EXPECT_TRUE(p->always_sensitive) << name;
    EXPECT_TRUE(p->never_extractable) << name;
    EXPECT_FALSE(p->value_readable) << name;
  }
}

TEST_F(Pkcs11TokenTest, DuplicateNameIsAlreadyExistsAndListDestroyWork) {
  ASSERT_TRUE(token_->GenerateKeyPair("k2", KeyType::kEcdsaP256, Pkcs11KeyUse::kSign));
  ASSERT_TRUE(token_->GenerateKeyPair("k1", KeyType::kEd25519, Pkcs11KeyUse::kSign));
  EXPECT_EQ(token_->GenerateKeyPair("k1", KeyType::kEcdsaP256, Pkcs11KeyUse::kSign).error().code(),
            ErrorCode::kAlreadyExists);
  auto list = token_->ListKeys();
  ASSERT_TRUE(list) << list.error().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "k1");
  EXPECT_EQ((*list)[0].type, KeyType::kEd25519);
  EXPECT_EQ((*list)[1].name, "k2");
  EXPECT_EQ((*list)[1].type, KeyType::kEcdsaP256);
  EXPECT_EQ((*list)[1].use, Pkcs11KeyUse::kSign);
  ASSERT_TRUE(token_->DestroyKey("k1"));
  EXPECT_EQ(token_->DestroyKey("k1").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(token_->Sign("k1", AsBytes("x")).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(token_->PublicKey("k1").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(token_->ListKeys()->size(), 1u);
}

TEST_F(Pkcs11TokenTest, RenameMovesKeyAndKeepsIt) {
  auto pub = token_->GenerateKeyPair("old", KeyType::kEd25519, Pkcs11KeyUse::kSign);
  ASSERT_TRUE(pub);
  ASSERT_TRUE(token_->RenameKey("old", "new"));
  EXPECT_EQ(token_->PublicKey("old").error().code(), ErrorCode::kNotFound);
  auto sig = token_->Sign("new", AsBytes("m"));
  ASSERT_TRUE(sig) << sig.error().ToString();
  EXPECT_TRUE(crypto::Verify(*pub, AsBytes("m"), *sig));
  ASSERT_TRUE(token_->GenerateKeyPair("other", KeyType::kEd25519, Pkcs11KeyUse::kSign));
  EXPECT_EQ(token_->RenameKey("other", "new").error().code(), ErrorCode::kAlreadyExists);
}

TEST_F(Pkcs11TokenTest, DataObjectsAreWrittenReplacedAndDeleted) {
  EXPECT_FALSE(*token_->ReadData("meta"));
  ASSERT_TRUE(token_->WriteData("meta", AsBytes("{\"v\":1}")));
  EXPECT_EQ(**token_->ReadData("meta"), ToBytes("{\"v\":1}"));
  ASSERT_TRUE(token_->WriteData("meta", AsBytes("{\"v\":2,\"longer\":true}")));
  EXPECT_EQ(**token_->ReadData("meta"), ToBytes("{\"v\":2,\"longer\":true}"));
  EXPECT_EQ(*token_->ListData(), std::vector<std::string>{"meta"});
  ASSERT_TRUE(token_->DeleteData("meta"));
  EXPECT_FALSE(*token_->ReadData("meta"));
  EXPECT_EQ(token_->DeleteData("meta").error().code(), ErrorCode::kNotFound);
}

TEST_F(Pkcs11TokenTest, KeysPersistAcrossReopening) {
  auto pub = token_->GenerateKeyPair("persist", KeyType::kEcdsaP256, Pkcs11KeyUse::kSign);
  ASSERT_TRUE(pub);
  ASSERT_TRUE(token_->WriteData("persist", AsBytes("state")));
  token_.reset();  // finalises the module
  auto reopened = Pkcs11Token::Open(fixture_->Options());
  ASSERT_TRUE(reopened) << reopened.error().ToString();
  token_ = std::move(*reopened);
  EXPECT_TRUE(token_->PublicKey("persist")->Equals(*pub));
  auto sig = token_->Sign("persist", AsBytes("after"));
  ASSERT_TRUE(sig);
  EXPECT_TRUE(crypto::Verify(*pub, AsBytes("after"), *sig));
  EXPECT_EQ(**token_->ReadData("persist"), ToBytes("state"));
}

TEST_F(Pkcs11TokenTest, StoreUriPinSourceIsReadAndPinValueRefused) {
  auto pin_file = fixture_->dir() / "pin";
  std::ofstream(pin_file) << testing::kSoftHsmUserPin << "\n";
  KeyStoreOptions options;
  options.pkcs11_module = testing::SoftHsmModulePath();
  options.secret = [] { return Result<std::string>(std::string("wrong-generic-secret")); };
  auto store =
      OpenKeyStore(fixture_->StoreUri() + "?pin-source=file:" + pin_file.string(), options);
  ASSERT_TRUE(store) << store.error().ToString();
  EXPECT_TRUE((*store)->List());
  auto refused = OpenKeyStore(fixture_->StoreUri() + "?pin-value=1234", options);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  auto missing = OpenKeyStore("pkcs11:token=nope", options);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace airlock::keys
