#include "keys/key_uri.h"

#include <gtest/gtest.h>

namespace airlock::keys {
namespace {

// Parses `text`, prints it canonically and parses that again: both parses must name the same vault
// and key.
void ExpectRoundTrip(const std::string& text, const std::string& path, const std::string& canonical) {
  auto uri = ParseKeyUri(text);
  ASSERT_TRUE(uri) << text << ": " << uri.error().ToString();
  EXPECT_EQ(uri->path, path);
  EXPECT_EQ(uri->ToString(), canonical);
  auto again = ParseKeyUri(uri->ToString());
  ASSERT_TRUE(again) << uri->ToString() << ": " << again.error().ToString();
  EXPECT_EQ(again->path, uri->path);
  EXPECT_EQ(again->key_name, uri->key_name);
  EXPECT_EQ(again->ToString(), canonical);
}

TEST(KeyUri, FileUrisPrintCanonicallyAndReadBackTheSameVault) {
  ExpectRoundTrip("file:keys.vault#release", "keys.vault", "file:keys.vault#release");
  ExpectRoundTrip("file:/etc/airlock/keys.vault", "/etc/airlock/keys.vault",
                  "file:/etc/airlock/keys.vault");
  ExpectRoundTrip("file:///etc/airlock/keys.vault", "/etc/airlock/keys.vault",
                  "file:/etc/airlock/keys.vault");
  ExpectRoundTrip("file://localhost/srv/k.vault#a", "/srv/k.vault", "file:/srv/k.vault#a");
}

// Found by fuzz/key_uri_fuzz (corpus crash-0b19... and crash-50a5...): a vault path starting with
// "//" was printed as "file://...", which reads back as a host: "file:////localhost/x" named the
// vault "//localhost/x" but printed as "file://localhost/x", the vault "/x".
TEST(KeyUri, APathStartingWithTwoSlashesKeepsItsVaultWhenPrinted) {
  ExpectRoundTrip("file:////localhost/x.vault", "//localhost/x.vault", "file:////localhost/x.vault");
  ExpectRoundTrip("file:////", "//", "file:////");
  ExpectRoundTrip("file:////srv/k.vault#name", "//srv/k.vault", "file:////srv/k.vault#name");
  auto uri = ParseKeyUri("file:////localhost/x.vault");
  ASSERT_TRUE(uri);
  EXPECT_EQ(uri->StoreUri(), "file:////localhost/x.vault");
}

TEST(KeyUri, RemoteHostsAndEmptyPathsAreRefused) {
  for (const char* bad : {"file://", "file://example.com/k.vault", "file:", "file:#name"}) {
    auto uri = ParseKeyUri(bad);
    ASSERT_FALSE(uri) << bad;
    EXPECT_EQ(uri.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace airlock::keys
