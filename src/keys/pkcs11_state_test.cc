// The PKCS#11 store's VaultState (pkcs11_store.h): a private data object on the token that holds
// the audit checkpoint key's name and the audit heads, only reachable after login.
#include <gtest/gtest.h>

#include "common/require_service.h"
#include "keys/key_store.h"
#include "keys/pkcs11.h"
#include "keys/pkcs11_objects.h"
#include "keys/pkcs11_store.h"
#include "keys/softhsm_fixture.h"
#include "keys/vault_state.h"

namespace airlock::keys {
namespace {

using testing::SoftHsmToken;

class Pkcs11StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AIRLOCK_REQUIRE_SERVICE(testing::SoftHsmAvailable(), "SoftHSM2 (softhsm2 package)");
    auto fixture = SoftHsmToken::Create();
    ASSERT_TRUE(fixture) << fixture.error().ToString();
    fixture_ = std::move(*fixture);
  }
  void TearDown() override { fixture_.reset(); }

  Result<std::unique_ptr<KeyStore>> OpenStore() {
    AIRLOCK_ASSIGN_OR_RETURN(KeyUri uri, ParseKeyUri(fixture_->StoreUri()));
    KeyStoreOptions options;
    options.pkcs11_module = testing::SoftHsmModulePath();
    options.secret = [] { return Result<std::string>(testing::kSoftHsmUserPin); };
    return OpenKeyStore(uri, options);
  }

  std::unique_ptr<SoftHsmToken> fixture_;
};

TEST_F(Pkcs11StateTest, FreshTokenHasEmptyStateAndUpdatesPersistAcrossReopening) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store) << store.error().ToString();
    VaultStateStore* state = AsVaultStateStore(store->get());
    ASSERT_NE(state, nullptr);
    auto empty = state->ReadState();
    ASSERT_TRUE(empty) << empty.error().ToString();
    EXPECT_TRUE(empty->checkpoint_key.empty());
    EXPECT_TRUE(empty->audit_heads.empty());
    auto written = state->UpdateState([](VaultState& s) -> Result<void> {
      s.checkpoint_key = "audit-checkpoint-01020304";
      AdvanceAnchor(s.audit_heads["log1"], AuditAnchor{7, std::string(64, 'a'), 3});
      return {};
    });
    ASSERT_TRUE(written) << written.error().ToString();
    // The state object is not a key: the store lists none.
    auto keys = (*store)->List();
    ASSERT_TRUE(keys) << keys.error().ToString();
    EXPECT_TRUE(keys->empty());
  }
  auto store = OpenStore();
  ASSERT_TRUE(store) << store.error().ToString();
  auto read = AsVaultStateStore(store->get())->ReadState();
  ASSERT_TRUE(read) << read.error().ToString();
  EXPECT_EQ(read->checkpoint_key, "audit-checkpoint-01020304");
  ASSERT_EQ(read->audit_heads.count("log1"), 1u);
  EXPECT_EQ(read->audit_heads["log1"].seq, 7);
  EXPECT_EQ(read->audit_heads["log1"].hash, std::string(64, 'a'));
  EXPECT_EQ(read->audit_heads["log1"].checkpoints, 3);
}

TEST_F(Pkcs11StateTest, FailedChangeWritesNothing) {
  auto store = OpenStore();
  ASSERT_TRUE(store) << store.error().ToString();
  VaultStateStore* state = AsVaultStateStore(store->get());
  ASSERT_TRUE(state->UpdateState([](VaultState& s) -> Result<void> {
    s.checkpoint_key = "kept";
    return {};
  }));
  auto refused = state->UpdateState([](VaultState& s) -> Result<void> {
    s.checkpoint_key = "not-written";
    return MakeError(ErrorCode::kInvalidArgument, "no");
  });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(state->ReadState()->checkpoint_key, "kept");
}

TEST_F(Pkcs11StateTest, StateObjectIsPrivateAndOnlyFoundAfterLogin) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store) << store.error().ToString();
    ASSERT_TRUE(AsVaultStateStore(store->get())->UpdateState([](VaultState& s) -> Result<void> {
      AdvanceAnchor(s.audit_heads["log1"], AuditAnchor{1, std::string(64, 'b'), 1});
      return {};
    }));
  }
  // A session that has not logged in (someone without the PIN) does not see the object at all.
  auto module = Pkcs11Module::Load(testing::SoftHsmModulePath());
  ASSERT_TRUE(module) << module.error().ToString();
  auto slot = (*module)->FindTokenSlot(fixture_->label());
  ASSERT_TRUE(slot) << slot.error().ToString();
  {
    auto session = Pkcs11Session::Open(*module, *slot);
    ASSERT_TRUE(session) << session.error().ToString();
    auto found = pkcs11_internal::FindOne(*session, CKO_DATA, "state", kPkcs11StateApplication);
    ASSERT_TRUE(found) << found.error().ToString();
    EXPECT_FALSE(found->has_value());
  }
  // After login it is there, CKA_PRIVATE and CKA_TOKEN.
  auto token = Pkcs11Token::Open(fixture_->Options());
  ASSERT_TRUE(token) << token.error().ToString();
  auto value = (*token)->ReadData("state", kPkcs11StateApplication);
  ASSERT_TRUE(value) << value.error().ToString();
  ASSERT_TRUE(value->has_value());
  auto session = Pkcs11Session::Open(*module, *slot);
  ASSERT_TRUE(session) << session.error().ToString();
  auto found = pkcs11_internal::FindOne(*session, CKO_DATA, "state", kPkcs11StateApplication);
  ASSERT_TRUE(found && found->has_value());
  auto is_private = pkcs11_internal::GetAttribute(*session, **found, CKA_PRIVATE);
  auto is_token = pkcs11_internal::GetAttribute(*session, **found, CKA_TOKEN);
  ASSERT_TRUE(is_private && is_token);
  EXPECT_EQ(*is_private, Bytes{CK_TRUE});
  EXPECT_EQ(*is_token, Bytes{CK_TRUE});
}

}  // namespace
}  // namespace airlock::keys
