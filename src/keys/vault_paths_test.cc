#include "keys/vault_paths.h"

#include <gtest/gtest.h>

namespace airlock::keys {
namespace {

TEST(VaultPaths, AuditLogOfAFileVaultIsItsSiblingFile) {
  auto p = AuditPathForVaultUri("file:/srv/keys.vault#release");
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ(*p, std::filesystem::path("/srv/keys.vault.audit"));
  p = AuditPathForVaultUri("file:rel/v.db");
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, std::filesystem::path("rel/v.db.audit"));
}

TEST(VaultPaths, AuditLogOfAStoreWithoutVaultFileIsRefused) {
  EXPECT_EQ(AuditPathForVaultUri("pkcs11:token=t").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(AuditPathForVaultUri("/just/a/path").error().code(), ErrorCode::kInvalidArgument);
}

TEST(VaultPaths, AccessStoreOfAFileVaultIsItsSiblingFile) {
  auto p = AccessPathForVaultUri("file:/srv/keys.vault#k");
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ(*p, std::filesystem::path("/srv/keys.vault.access"));
}

TEST(VaultPaths, AccessStoreOfAStoreWithoutVaultFileIsRefused) {
  auto p = AccessPathForVaultUri("pkcs11:token=t");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(p.error().message().find("--access PATH"), std::string::npos);
}

}  // namespace
}  // namespace airlock::keys
