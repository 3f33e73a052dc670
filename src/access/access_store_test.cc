#include "access/access_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "common/file.h"
#include "crypto/random.h"
#include "keys/secret_box.h"

namespace airlock::access {
namespace {

constexpr int64_t kT0 = 1'700'000'000;

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    path_ = dir_->path() / "keys.vault.access";
  }
  // TOTP secrets sealed as the CLI seals them: AES-256-GCM (secret_box) under a vault-like key.
  AccessOptions Options() {
    AccessOptions o;
    o.clock = [this] { return now_; };
    Bytes key = vault_key_;
    o.sealer = SecretSealer{[key](ByteSpan plain, std::string_view aad) {
                              return keys::SealAesGcm(key, plain, AsBytes(aad));
                            },
                            [key](ByteSpan sealed, std::string_view aad) -> Result<Bytes> {
                              AIRLOCK_ASSIGN_OR_RETURN(crypto::SecretBytes plain,
                                                       keys::OpenAesGcm(key, sealed, AsBytes(aad)));
                              return plain.get();
                            }};
    return o;
  }
  AccessStore OpenStore() {
    auto s = AccessStore::Open(path_, Options());
    EXPECT_TRUE(s) << s.error().ToString();
    return std::move(*s);
  }
  std::string CodeAt(const Bytes& secret, int64_t t) {
    auto code = TotpCode(secret, t, TotpParams{});
    EXPECT_TRUE(code);
    return *code;
  }

  std::optional<ScopedTempDir> dir_;
  std::filesystem::path path_;
  int64_t now_ = kT0;
  Bytes vault_key_ = *crypto::RandomBytes(32);
};

TEST(AccessRoles, NamesRoundTrip) {
  for (Role r : {Role::kOwner, Role::kAdmin, Role::kReleaseManager, Role::kKeyCustodian,
                 Role::kAuditor, Role::kReadOnly, Role::kDevice}) {
    auto parsed = ParseRole(RoleName(r));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_EQ(ParseRole("root").error().code(), ErrorCode::kInvalidArgument);
  for (Action a : AllActions()) {
    auto parsed = ParseAction(ActionName(a));
    ASSERT_TRUE(parsed) << ActionName(a);
    EXPECT_EQ(*parsed, a);
  }
  EXPECT_EQ(AllActions().size(), 24u);
  EXPECT_EQ(ParseAction("key.steal").error().code(), ErrorCode::kInvalidArgument);
}

TEST(AccessRoles, CustodianActionsNeedCustodianOrOwnerAndASecondFactor) {
  for (Action a : AllActions()) {
    if (!RequiresSecondFactor(a)) continue;
    for (Role r :
         {Role::kAdmin, Role::kReleaseManager, Role::kAuditor, Role::kReadOnly, Role::kDevice}) {
      EXPECT_FALSE(RoleAllows(r, a)) << RoleName(r) << " " << ActionName(a);
    }
    EXPECT_TRUE(RoleAllows(Role::kKeyCustodian, a)) << ActionName(a);
    EXPECT_TRUE(RoleAllows(Role::kOwner, a)) << ActionName(a);
  }
  for (Action a :
       {Action::kKeyRotate, Action::kKeyCompromised, Action::kKeyResume, Action::kKeyDelete,
        Action::kVaultBackup, Action::kVaultRestore, Action::kKeySignRoot}) {
    EXPECT_TRUE(RequiresSecondFactor(a)) << ActionName(a);
  }
  EXPECT_FALSE(RequiresSecondFactor(Action::kKeySign));
  EXPECT_FALSE(RequiresSecondFactor(Action::kKeySuspend));
}

TEST(AccessRoles, TableMatchesTheJobs) {
  EXPECT_TRUE(RoleAllows(Role::kReleaseManager, Action::kKeySign));
  EXPECT_TRUE(RoleAllows(Role::kReleaseManager, Action::kReleasePublish));
  EXPECT_FALSE(RoleAllows(Role::kReleaseManager, Action::kKeySignRoot));
  EXPECT_TRUE(RoleAllows(Role::kKeyCustodian, Action::kKeySignRoot));
  EXPECT_FALSE(RoleAllows(Role::kReleaseManager, Action::kKeyCreate));
  EXPECT_FALSE(RoleAllows(Role::kReleaseManager, Action::kAuditRead));
  EXPECT_TRUE(RoleAllows(Role::kAuditor, Action::kAuditRead));
  EXPECT_TRUE(RoleAllows(Role::kAuditor, Action::kAuditVerify));
  EXPECT_FALSE(RoleAllows(Role::kAuditor, Action::kKeySign));
  EXPECT_TRUE(RoleAllows(Role::kAdmin, Action::kPrincipalManage));
  EXPECT_TRUE(RoleAllows(Role::kAdmin, Action::kKeySuspend));
  EXPECT_FALSE(RoleAllows(Role::kAdmin, Action::kKeySign));
  EXPECT_FALSE(RoleAllows(Role::kKeyCustodian, Action::kKeySign));
  EXPECT_FALSE(RoleAllows(Role::kKeyCustodian, Action::kPrincipalManage));
  EXPECT_TRUE(RoleAllows(Role::kReadOnly, Action::kKeyList));
  EXPECT_FALSE(RoleAllows(Role::kReadOnly, Action::kAuditRead));
  EXPECT_TRUE(RoleAllows(Role::kDevice, Action::kUpdateFetch));
  EXPECT_FALSE(RoleAllows(Role::kDevice, Action::kKeyList));
  for (Action a : AllActions()) EXPECT_TRUE(RoleAllows(Role::kOwner, a));
}

TEST(AccessRoles, AuthorizeUsesAnyRoleAndRefusesDisabledPrincipals) {
  Principal p{
      "alice", PrincipalKind::kPerson, {Role::kAuditor, Role::kReleaseManager}, false, 0, false,
      {}};
  EXPECT_TRUE(Authorize(p, Action::kKeySign));
  EXPECT_TRUE(Authorize(p, Action::kAuditVerify));
  auto r = Authorize(p, Action::kKeyRotate);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), kDeniedCode);
  EXPECT_NE(r.error().message().find("access denied"), std::string::npos);
  p.disabled = true;
  EXPECT_EQ(Authorize(p, Action::kKeySign).error().code(), kDeniedCode);
}

TEST_F(AccessTest, PrincipalsAddGetListUpdateRemove) {
  AccessStore s = OpenStore();
  EXPECT_TRUE(*s.Empty());
  auto alice = s.AddPerson("alice@example.com", {Role::kKeyCustodian});
  ASSERT_TRUE(alice) << alice.error().ToString();
  EXPECT_EQ(alice->created, kT0);
  EXPECT_FALSE(alice->has_totp);
  EXPECT_FALSE(*s.Empty());
  EXPECT_EQ(s.AddPerson("alice@example.com", {Role::kOwner}).error().code(),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(s.AddPerson("bad name", {Role::kOwner}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.AddPerson("", {Role::kOwner}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.AddPerson(std::string(129, 'a'), {Role::kOwner}).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.AddPerson("bob", {}).error().code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(s.AddPerson("bob", {Role::kAuditor, Role::kReadOnly}));
  auto list = s.List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].name, "bob");
  EXPECT_EQ((*list)[1].roles, (std::vector<Role>{Role::kAuditor, Role::kReadOnly}));
  ASSERT_TRUE(s.SetRoles("bob", {Role::kAdmin}));
  EXPECT_EQ(s.Get("bob")->roles, std::vector<Role>{Role::kAdmin});
  ASSERT_TRUE(s.SetDisabled("bob", true));
  EXPECT_TRUE(s.Get("bob")->disabled);
  EXPECT_EQ(s.SetRoles("carol", {Role::kAdmin}).error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(s.Remove("bob"));
  EXPECT_EQ(s.Get("bob").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(s.Remove("bob").error().code(), ErrorCode::kNotFound);
}

TEST_F(AccessTest, StoreFileIsOwnerOnlyAndReopens) {
  {
    AccessStore s = OpenStore();
    ASSERT_TRUE(s.AddPerson("alice", {Role::kOwner}));
  }
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = AccessStore::OpenExisting(path_, Options());
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->Get("alice"));
  EXPECT_EQ(AccessStore::OpenExisting(dir_->path() / "none").error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(
      WriteFileAtomic(dir_->path() / "junk", AsBytes("not a database, not at all, nope.....")));
  EXPECT_EQ(AccessStore::Open(dir_->path() / "junk").error().code(), ErrorCode::kMalformed);
}

TEST_F(AccessTest, TotpEnrolmentAndCheckWithReplayProtection) {
  AccessStore s = OpenStore();
  ASSERT_TRUE(s.AddPerson("alice", {Role::kKeyCustodian}));
  auto e = s.EnrollTotp("alice");
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->secret.size(), 20u);
  EXPECT_EQ(*Base32Decode(e->base32), e->secret);
  EXPECT_EQ(e->uri.rfind("otpauth://totp/Airlock:alice?secret=" + e->base32, 0), 0u) << e->uri;
  EXPECT_TRUE(s.Get("alice")->has_totp);

  std::string code = CodeAt(e->secret, now_);
  ASSERT_TRUE(s.CheckTotp("alice", code));
  // The same code again (same step) is a replay.
  auto replay = s.CheckTotp("alice", code);
  ASSERT_FALSE(replay);
  EXPECT_EQ(replay.error().code(), ErrorCode::kRollback);
  // The replay protection survives reopening the store (it is in the file).
  {
    auto other = AccessStore::OpenExisting(path_, Options());
    ASSERT_TRUE(other);
    EXPECT_EQ(other->CheckTotp("alice", code).error().code(), ErrorCode::kRollback);
  }
  // The next step's code works once the clock moves on.
  now_ += 30;
  ASSERT_TRUE(s.CheckTotp("alice", CodeAt(e->secret, now_)));
  // A wrong code.
  now_ += 30;
  std::string wrong = CodeAt(e->secret, now_);
  wrong[5] = wrong[5] == '0' ? '1' : '0';
  EXPECT_EQ(s.CheckTotp("alice", wrong).error().code(), ErrorCode::kBadSignature);
  EXPECT_EQ(s.CheckTotp("alice", "12ab56").error().code(), ErrorCode::kMalformed);
}

TEST_F(AccessTest, ReEnrolmentInvalidatesTheOldSecret) {
  AccessStore s = OpenStore();
  ASSERT_TRUE(s.AddPerson("alice", {Role::kKeyCustodian}));
  auto first = s.EnrollTotp("alice");
  ASSERT_TRUE(first);
  auto second = s.EnrollTotp("alice", TotpAuthority{CodeAt(first->secret, now_), {}});
  ASSERT_TRUE(second) << second.error().ToString();
  ASSERT_NE(first->secret, second->secret);
  now_ += 30;
  EXPECT_EQ(s.CheckTotp("alice", CodeAt(first->secret, now_)).error().code(),
            ErrorCode::kBadSignature);
  EXPECT_TRUE(s.CheckTotp("alice", CodeAt(second->secret, now_)));
}

TEST_F(AccessTest, TotpCheckDeniesUnknownDisabledOrUnenrolledPrincipals) {
  AccessStore s = OpenStore();
  EXPECT_EQ(s.CheckTotp("ghost", "123456").error().code(), kDeniedCode);
  ASSERT_TRUE(s.AddPerson("alice", {Role::kKeyCustodian}));
  EXPECT_EQ(s.CheckTotp("alice", "123456").error().code(), kDeniedCode);  // not enrolled
  auto e = s.EnrollTotp("alice");
  ASSERT_TRUE(e);
  ASSERT_TRUE(s.SetDisabled("alice", true));
  EXPECT_EQ(s.CheckTotp("alice", CodeAt(e->secret, now_)).error().code(), kDeniedCode);
  EXPECT_EQ(s.EnrollTotp("ghost").error().code(), ErrorCode::kNotFound);
}

// Attack: read the access file for the TOTP secret. It is sealed under the vault key, so neither
// its raw bytes nor its base32 form appear in the file, and without the vault key it cannot be
// used.
TEST_F(AccessTest, TotpSecretsAreSealedUnderTheVaultKeyNeverStoredPlain) {
  AccessStore s = OpenStore();
  ASSERT_TRUE(s.AddPerson("alice", {Role::kOwner}));
  auto e = s.EnrollTotp("alice");
  ASSERT_TRUE(e) << e.error().ToString();
  auto file = ReadFile(path_, 1 << 20);
  ASSERT_TRUE(file);
  std::string contents(AsString(*file));
  EXPECT_EQ(contents.find(AsString(e->secret)), std::string::npos);
  EXPECT_EQ(contents.find(e->base32), std::string::npos);
  EXPECT_TRUE(s.CheckTotp("alice", CodeAt(e->secret, now_)));
  // Opened without the vault's sealer, or with another vault's key: the secret is unusable.
  now_ += 30;
  AccessOptions plain;
  plain.clock = [this] { return now_; };
  auto unsealed = AccessStore::OpenExisting(path_, plain);
  ASSERT_TRUE(unsealed);
  EXPECT_EQ(unsealed->CheckTotp("alice", CodeAt(e->secret, now_)).error().code(),
            ErrorCode::kInvalidArgument);
  vault_key_ = *crypto::RandomBytes(32);
  auto other = AccessStore::OpenExisting(path_, Options());
  ASSERT_TRUE(other);
  EXPECT_EQ(other->CheckTotp("alice", CodeAt(e->secret, now_)).error().code(),
            ErrorCode::kDecryptFailed);
}

TEST_F(AccessTest, EnrolmentWithoutTheVaultsSealerIsRefused) {
  AccessOptions plain;
  auto s = AccessStore::Open(path_, plain);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->AddPerson("alice", {Role::kOwner}));
  auto e = s->EnrollTotp("alice");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(e.error().message().find("sealed under the vault key"), std::string::npos);
  EXPECT_FALSE(s->Get("alice")->has_totp);
}

// Attack: replace (or remove) a custodian's TOTP secret without their current code, to enrol one
// the attacker holds. Refused; the old secret keeps working.
TEST_F(AccessTest, ReplacingOrRemovingATotpNeedsTheCurrentCodeOrTwoCustodians) {
  AccessStore s = OpenStore();
  ASSERT_TRUE(s.AddPerson("carol", {Role::kKeyCustodian}));
  ASSERT_TRUE(s.AddPerson("dave", {Role::kKeyCustodian}));
  ASSERT_TRUE(s.AddPerson("erin", {Role::kOwner}));
  ASSERT_TRUE(s.AddPerson("rita", {Role::kReleaseManager}));
  auto carol = s.EnrollTotp("carol");
  auto dave = s.EnrollTotp("dave");
  auto erin = s.EnrollTotp("erin");
  auto rita = s.EnrollTotp("rita");
  ASSERT_TRUE(carol && dave && erin && rita);

  auto bare = s.EnrollTotp("carol");
  ASSERT_FALSE(bare);
  EXPECT_EQ(bare.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bare.error().message().find("current code"), std::string::npos);
  std::string wrong = CodeAt(carol->secret, now_);
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  EXPECT_EQ(s.EnrollTotp("carol", TotpAuthority{wrong, {}}).error().code(),
            ErrorCode::kBadSignature);
  EXPECT_EQ(s.RemoveTotp("carol", {}).error().code(), ErrorCode::kInvalidArgument);
  // One custodian, a non-custodian, or the person vouching for themselves: denied.
  EXPECT_EQ(s.EnrollTotp("carol", TotpAuthority{{}, {{"dave", CodeAt(dave->secret, now_)}}})
                .error()
                .code(),
            kDeniedCode);
  EXPECT_EQ(s.EnrollTotp("carol", TotpAuthority{{},
                                                {{"dave", CodeAt(dave->secret, now_)},
                                                 {"rita", CodeAt(rita->secret, now_)}}})
                .error()
                .code(),
            kDeniedCode);
  EXPECT_EQ(s.EnrollTotp("carol", TotpAuthority{{},
                                                {{"carol", CodeAt(carol->secret, now_)},
                                                 {"dave", CodeAt(dave->secret, now_)}}})
                .error()
                .code(),
            kDeniedCode);
  // Nothing changed: carol's secret still works.
  ASSERT_TRUE(s.CheckTotp("carol", CodeAt(carol->secret, now_)));

  // Two custodians (a lost device).
  now_ += 30;
  auto replaced = s.EnrollTotp("carol", TotpAuthority{{},
                                                      {{"dave", CodeAt(dave->secret, now_)},
                                                       {"erin", CodeAt(erin->secret, now_)}}});
  ASSERT_TRUE(replaced) << replaced.error().ToString();
  now_ += 30;
  EXPECT_EQ(s.CheckTotp("carol", CodeAt(carol->secret, now_)).error().code(),
            ErrorCode::kBadSignature);
  // Removal with the current code.
  ASSERT_TRUE(s.RemoveTotp("carol", TotpAuthority{CodeAt(replaced->secret, now_), {}}));
  EXPECT_FALSE(s.Get("carol")->has_totp);
  EXPECT_EQ(s.RemoveTotp("carol", {}).error().code(), ErrorCode::kNotFound);
}

TEST_F(AccessTest, OneCodeServesOneSessionForCustodianActions) {
  AccessStore s = OpenStore();
  ASSERT_TRUE(s.AddPerson("carol", {Role::kKeyCustodian}));
  ASSERT_TRUE(s.AddPerson("rita", {Role::kReleaseManager}));
  auto e = s.EnrollTotp("carol");
  ASSERT_TRUE(e);
  std::optional<std::string> verified;
  ASSERT_TRUE(s.AuthorizeActor("carol", Action::kKeyRotate, CodeAt(e->secret, now_), &verified));
  EXPECT_EQ(verified, "carol");
  EXPECT_TRUE(s.AuthorizeActor("carol", Action::kKeySignRoot, std::nullopt, &verified));
  // The role check still applies, and another session needs its own code.
  EXPECT_EQ(s.AuthorizeActor("rita", Action::kKeySignRoot, std::nullopt, &verified).error().code(),
            kDeniedCode);
  EXPECT_EQ(s.AuthorizeActor("carol", Action::kKeySignRoot, std::nullopt).error().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(AccessTest, TokensAreShownOnceAndStoredOnlyAsHashes) {
  AccessStore s = OpenStore();
  auto t = s.CreateToken("ci-release", {Role::kReleaseManager});
  ASSERT_TRUE(t) << t.error().ToString();
  EXPECT_EQ(t->token.size(), 4u + 64u);
  EXPECT_EQ(t->token.rfind("alk_", 0), 0u);
  EXPECT_EQ(t->hash, TokenHash(t->token));
  EXPECT_EQ(t->principal.kind, PrincipalKind::kToken);
  // The file holds the hash, never the token.
  auto file = ReadFile(path_, 1 << 20);
  ASSERT_TRUE(file);
  std::string contents(AsString(*file));
  EXPECT_EQ(contents.find(t->token.substr(4)), std::string::npos);
  EXPECT_NE(contents.find(t->hash), std::string::npos);

  auto p = s.AuthenticateToken(t->token);
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ(p->name, "ci-release");
  EXPECT_TRUE(Authorize(*p, Action::kKeySign));
  EXPECT_EQ(Authorize(*p, Action::kKeyRotate).error().code(), kDeniedCode);
  auto by_hash = s.FindTokenByHash(t->hash);
  ASSERT_TRUE(by_hash);
  EXPECT_EQ(by_hash->name, "ci-release");

  std::string other = t->token;
  other.back() = other.back() == 'a' ? 'b' : 'a';
  EXPECT_EQ(s.AuthenticateToken(other).error().code(), kDeniedCode);
  EXPECT_EQ(s.AuthenticateToken("alk_short").error().code(), ErrorCode::kMalformed);
  EXPECT_EQ(s.AuthenticateToken("xyz_" + t->token.substr(4)).error().code(), ErrorCode::kMalformed);
  EXPECT_EQ(s.AuthenticateToken(std::string(100000, 'a')).error().code(), ErrorCode::kMalformed);
  EXPECT_EQ(s.FindTokenByHash("00").error().code(), ErrorCode::kNotFound);
  // Revoked tokens stop working.
  ASSERT_TRUE(s.SetDisabled("ci-release", true));
  EXPECT_EQ(s.AuthenticateToken(t->token).error().code(), kDeniedCode);
  // Tokens cannot enrol TOTP.
  EXPECT_EQ(s.EnrollTotp("ci-release").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.CreateToken("ci-release", {Role::kReadOnly}).error().code(),
            ErrorCode::kAlreadyExists);
}

TEST_F(AccessTest, TokensExpire) {
  AccessStore s = OpenStore();
  auto t = s.CreateToken("short", {Role::kReadOnly}, 3600);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t->principal.expires, kT0 + 3600);
  EXPECT_TRUE(s.AuthenticateToken(t->token));
  now_ += 3600;
  EXPECT_EQ(s.AuthenticateToken(t->token).error().code(), kDeniedCode);
  EXPECT_EQ(s.AuthorizeActor("short", Action::kKeyList, std::nullopt).error().code(), kDeniedCode);
}

TEST_F(AccessTest, TwoTokensDiffer) {
  AccessStore s = OpenStore();
  auto a = s.CreateToken("a", {Role::kReadOnly});
  auto b = s.CreateToken("b", {Role::kReadOnly});
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->token, b->token);
}

TEST_F(AccessTest, AuthorizeActorGatesCustodianOperationsOnTotp) {
  AccessStore s = OpenStore();
  ASSERT_TRUE(s.AddPerson("carol", {Role::kKeyCustodian}));
  ASSERT_TRUE(s.AddPerson("rita", {Role::kReleaseManager}));
  auto e = s.EnrollTotp("carol");
  ASSERT_TRUE(e);
  // Not a custodian action: no code needed.
  EXPECT_TRUE(s.AuthorizeActor("carol", Action::kKeySuspend, std::nullopt));
  // Custodian action without a code: a usage error.
  EXPECT_EQ(s.AuthorizeActor("carol", Action::kKeyRotate, std::nullopt).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.AuthorizeActor("carol", Action::kKeyRotate, "").error().code(),
            ErrorCode::kInvalidArgument);
  // A wrong code, then the right one, then its replay.
  std::string code = CodeAt(e->secret, now_);
  std::string wrong = code;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  EXPECT_EQ(s.AuthorizeActor("carol", Action::kKeyRotate, wrong).error().code(),
            ErrorCode::kBadSignature);
  auto ok = s.AuthorizeActor("carol", Action::kKeyRotate, code);
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->name, "carol");
  EXPECT_EQ(s.AuthorizeActor("carol", Action::kVaultBackup, code).error().code(),
            ErrorCode::kRollback);
  // Wrong role: denied before any TOTP is looked at.
  EXPECT_EQ(s.AuthorizeActor("rita", Action::kKeyRotate, code).error().code(), kDeniedCode);
  EXPECT_TRUE(s.AuthorizeActor("rita", Action::kKeySign, std::nullopt));
  // Unknown actor.
  EXPECT_EQ(s.AuthorizeActor("ghost", Action::kKeyList, std::nullopt).error().code(), kDeniedCode);
  // Tokens cannot do custodian operations even with an owner role (no second factor).
  ASSERT_TRUE(s.CreateToken("robot", {Role::kOwner}));
  EXPECT_EQ(s.AuthorizeActor("robot", Action::kKeyRotate, "123456").error().code(), kDeniedCode);
  EXPECT_TRUE(s.AuthorizeActor("robot", Action::kKeySign, std::nullopt));
}

TEST(AccessPaths, VaultPathMapsToASiblingFile) {
  EXPECT_EQ(AccessPathForVault("/srv/keys.vault"), std::filesystem::path("/srv/keys.vault.access"));
}

}  // namespace
}  // namespace airlock::access
