// Test helpers for the install engine: small sealed bundles made with bundle::SealBundle, their
// content keys unwrapped as a device would get them, and checks of an install directory.
#ifndef AIRLOCK_CLIENT_INSTALL_TEST_UTIL_H_
#define AIRLOCK_CLIENT_INSTALL_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "bundle/bundle.h"
#include "client/slots.h"
#include "common/file.h"
#include "crypto/keys.h"
#include "crypto/wrap.h"

namespace airlock::client::testing {

namespace fs = std::filesystem;

inline constexpr char kTestApp[] = "io.example.app";

struct SealedRelease {
  std::string version;
  fs::path bundle;
  Bytes content_key;
  bundle::Manifest manifest;
};

// Seals releases of one app under one signing key.
class BundleFactory {
 public:
  explicit BundleFactory(fs::path dir)
      : dir_(std::move(dir)),
        signer_(*crypto::PrivateKey::Generate(crypto::KeyType::kEd25519)),
        device_(*crypto::PrivateKey::Generate(crypto::KeyType::kX25519)) {}

  const crypto::PublicKey verify_key() const { return signer_.Public(); }

  // A release whose files depend on `version` (and `extra_kib` KiB of filler, to make the
  // staging take long enough to be interrupted).
  SealedRelease Make(const std::string& version, size_t extra_kib = 0,
                     const std::string& app_id = kTestApp) {
    fs::path input = dir_ / ("in-" + version);
    fs::create_directories(input / "assets");
    Write(input / "index.html", "<html>" + version + "</html>\n");
    Write(input / "assets/app.js", "console.log('" + version + "');\n");
    Write(input / "VERSION", version);
    if (extra_kib > 0) {
      std::string filler;
      for (size_t i = 0; i < extra_kib * 1024; ++i)
        filler += static_cast<char>('a' + (i * 7 + version.size()) % 26);
      Write(input / "assets/filler.bin", filler);
    }
    bundle::SealOptions o;
    o.app_id = app_id;
    o.version = version;
    SealedRelease r;
    r.version = version;
    r.bundle = dir_ / (app_id + "-" + version + ".alb");
    auto header = bundle::SealBundle(input, o, signer_, {device_.Public()}, r.bundle);
    EXPECT_TRUE(header) << header.error().ToString();
    if (!header) return r;
    r.manifest = header->files;
    auto ck = crypto::UnwrapKey(device_, header->recipients.at(0).wrapped_key,
                                bundle::ContentKeyAad(app_id, version));
    EXPECT_TRUE(ck) << ck.error().ToString();
    if (ck) r.content_key = *ck;
    return r;
  }

  static void Write(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  }

 private:
  fs::path dir_;
  crypto::PrivateKey signer_;
  crypto::PrivateKey device_;
};

// Names in `dir`, sorted.
inline std::vector<std::string> Entries(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The symlink text of `current`, or "" when absent.
inline std::string CurrentLink(const SlotLayout& layout) {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(layout.current(), ec))) return "";
  return fs::read_symlink(layout.current(), ec).string();
}

}  // namespace airlock::client::testing

#endif  // AIRLOCK_CLIENT_INSTALL_TEST_UTIL_H_
