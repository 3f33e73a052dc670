// API tokens minted by other tokens (AccessStore::CreateToken with TokenLimits): they never outlive
// or reach beyond their parent, stop with it, can be revoked by id, and record their last use.
#include <sqlite3.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "access/access_store.h"
#include "common/file.h"

namespace airlock::access {
namespace {

constexpr int64_t kTokenT0 = 1'700'000'000;

class AccessTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    path_ = dir_->path() / "keys.vault.access";
    AccessOptions options;
    options.clock = [this] { return now_; };
    auto s = AccessStore::Open(path_, options);
    ASSERT_TRUE(s) << s.error().ToString();
    store_.emplace(std::move(*s));
  }
  size_t Rows() { return store_->List()->size(); }

  std::optional<ScopedTempDir> dir_;
  std::filesystem::path path_;
  int64_t now_ = kTokenT0;
  std::optional<AccessStore> store_;
};

TEST_F(AccessTokenTest, IdIsAPrefixOfTheHashAndFindsTheToken) {
  auto t = store_->CreateToken("ci", {Role::kReadOnly});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->principal.token_id, "tok_" + t->hash.substr(0, 16));
  auto found = store_->FindTokenById(t->principal.token_id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->name, "ci");
  EXPECT_FALSE(found->parent_token_id);
  EXPECT_EQ(store_->FindTokenById("tok_0000000000000000").error().code(), ErrorCode::kNotFound);
}

TEST_F(AccessTokenTest, AChildNeverOutlivesItsParent) {
  auto parent = store_->CreateToken("p", {Role::kAdmin}, 3600);
  ASSERT_TRUE(parent);
  TokenLimits limits;
  limits.parent_token_id = parent->principal.token_id;
  const size_t rows = Rows();
  auto longer = store_->CreateToken("c", {Role::kReadOnly}, 3601, limits);
  ASSERT_FALSE(longer);
  EXPECT_EQ(longer.error().code(), kDeniedCode);
  EXPECT_EQ(longer.error().message(),
            "access denied: a token may not outlive the token that mints it (p expires at " +
                std::to_string(kTokenT0 + 3600) + ", 3600 s from now)");
  EXPECT_EQ(Rows(), rows);
  auto inherits = store_->CreateToken("c", {Role::kReadOnly}, 0, limits);
  ASSERT_TRUE(inherits) << inherits.error().ToString();
  EXPECT_EQ(inherits->principal.expires, kTokenT0 + 3600);
  EXPECT_EQ(inherits->principal.parent_token_id, parent->principal.token_id);
  now_ += 3600;
  EXPECT_EQ(store_->CreateToken("d", {Role::kReadOnly}, 10, limits).error().code(), kDeniedCode);
}

TEST_F(AccessTokenTest, RevokingAParentStopsItsWholeLine) {
  auto parent = store_->CreateToken("p", {Role::kAdmin});
  ASSERT_TRUE(parent);
  TokenLimits from_parent;
  from_parent.parent_token_id = parent->principal.token_id;
  auto child = store_->CreateToken("c", {Role::kAdmin}, 0, from_parent);
  ASSERT_TRUE(child);
  TokenLimits from_child;
  from_child.parent_token_id = child->principal.token_id;
  auto grandchild = store_->CreateToken("g", {Role::kReadOnly}, 0, from_child);
  ASSERT_TRUE(grandchild);
  ASSERT_TRUE(store_->AuthenticateToken(grandchild->token));

  auto revoked = store_->RevokeToken(parent->principal.token_id);
  ASSERT_TRUE(revoked);
  EXPECT_TRUE(revoked->disabled);
  EXPECT_EQ(store_->AuthenticateToken(parent->token).error().code(), kDeniedCode);
  auto c = store_->AuthenticateToken(child->token);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), "access denied: API token c was minted by p, which is revoked");
  EXPECT_EQ(store_->AuthenticateToken(grandchild->token).error().code(), kDeniedCode);
  // A revoked parent mints nothing more.
  EXPECT_EQ(store_->CreateToken("x", {Role::kReadOnly}, 0, from_parent).error().code(),
            kDeniedCode);
  // A parent removed outright leaves its children dead too.
  ASSERT_TRUE(store_->Remove("p"));
  EXPECT_EQ(store_->AuthenticateToken(child->token).error().message(),
            "access denied: API token c was minted by a token that no longer exists");
  EXPECT_EQ(store_->RevokeToken("tok_0000000000000000").error().code(), ErrorCode::kNotFound);
}

TEST_F(AccessTokenTest, AppsStayWithinTheParentsApps) {
  TokenLimits a_only;
  a_only.apps = {"com.a"};
  auto parent = store_->CreateToken("p", {Role::kAdmin}, 0, a_only);
  ASSERT_TRUE(parent);
  EXPECT_EQ(parent->principal.apps, std::vector<std::string>{"com.a"});
  EXPECT_TRUE(AllowsApp(parent->principal, "com.a"));
  EXPECT_FALSE(AllowsApp(parent->principal, "com.b"));

  TokenLimits wider;
  wider.parent_token_id = parent->principal.token_id;
  wider.apps = {"com.a", "com.b"};
  const size_t rows = Rows();
  auto refused = store_->CreateToken("c", {Role::kReadOnly}, 0, wider);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(), "access denied: app com.b is outside the apps of p");
  EXPECT_EQ(Rows(), rows);
  TokenLimits inherit;
  inherit.parent_token_id = parent->principal.token_id;
  auto child = store_->CreateToken("c", {Role::kReadOnly}, 0, inherit);
  ASSERT_TRUE(child);
  EXPECT_EQ(child->principal.apps, std::vector<std::string>{"com.a"});
  TokenLimits bad;
  bad.apps = {"com,b"};
  EXPECT_EQ(store_->CreateToken("d", {Role::kReadOnly}, 0, bad).error().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(AccessTokenTest, LastUseIsWrittenAtMostOnceAMinute) {
  auto t = store_->CreateToken("ci", {Role::kReadOnly});
  ASSERT_TRUE(t);
  auto seen = [&] { return store_->FindTokenById(t->principal.token_id)->last_used; };
  EXPECT_FALSE(seen());
  ASSERT_TRUE(store_->RecordTokenUse(*store_->AuthenticateToken(t->token)));
  EXPECT_EQ(seen(), kTokenT0);
  now_ += kTokenUseInterval - 1;
  ASSERT_TRUE(store_->RecordTokenUse(*store_->AuthenticateToken(t->token)));
  EXPECT_EQ(seen(), kTokenT0);
  now_ += 1;
  ASSERT_TRUE(store_->RecordTokenUse(*store_->AuthenticateToken(t->token)));
  EXPECT_EQ(seen(), kTokenT0 + kTokenUseInterval);
}

TEST_F(AccessTokenTest, AFileWithoutTheTokenColumnsGainsThemOnOpen) {
  // An access file as version 1 wrote it, holding a token.
  store_.reset();
  std::filesystem::path legacy = dir_->path() / "legacy.access";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(legacy.c_str(), &db), SQLITE_OK);
  const std::string hash(64, 'c');
  const std::string sql =
      "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "INSERT INTO meta VALUES ('format', 'airlock-access'), ('version', '1');"
      "CREATE TABLE principals (name TEXT PRIMARY KEY, kind TEXT NOT NULL, roles TEXT NOT NULL,"
      " disabled INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, expires INTEGER,"
      " token_hash TEXT UNIQUE, totp_secret BLOB, totp_sealed INTEGER NOT NULL DEFAULT 0,"
      " totp_algorithm TEXT, totp_digits INTEGER, totp_period INTEGER, totp_last_step INTEGER);"
      "INSERT INTO principals (name, kind, roles, created, token_hash) VALUES"
      " ('old', 'token', 'admin', 1, '" +
      hash + "');";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  ::chmod(legacy.c_str(), 0600);

  auto s = AccessStore::OpenExisting(legacy);
  ASSERT_TRUE(s) << s.error().ToString();
  auto old = s->FindTokenById("tok_" + hash.substr(0, 16));
  ASSERT_TRUE(old) << old.error().ToString();
  EXPECT_EQ(old->name, "old");
  EXPECT_TRUE(old->apps.empty());
  EXPECT_TRUE(s->CreateToken("new", {Role::kReadOnly}));
}

}  // namespace
}  // namespace airlock::access
