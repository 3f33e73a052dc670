// Fuzzes the key custody files read from disk (src/keys): key backups (RestoreBackup), Shamir share
// files (RestoreFromShares; the input is cut into files at each "\n--8<--\n"), the vault's sealed
// state record (DecodeVaultState) and Shamir recombination (ShamirCombine over shares cut from the
// bytes). Byte 0 picks the mode; the rest is the file. Restores go into a file vault made once
// (cheap test KDF); a successful restore is deleted again so the next input starts equal. The seeds
// are real files made by WriteBackup (fuzz/make_seeds.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "keys/backup.h"
#include "keys/file_vault.h"
#include "keys/shamir.h"
#include "keys/vault_state.h"

namespace {

using namespace airlock;

constexpr char kPassphrase[] = "fuzz backup passphrase";

keys::KeyStore& Store() {
  static keys::KeyStore* store = [] {
    keys::KeyStoreOptions options;
    options.kdf = keys::KdfParams::ForTests();
    options.secret = [] { return Result<std::string>(std::string("fuzz vault passphrase")); };
    options.now = [] { return int64_t{1'800'000'000}; };
    auto opened = keys::OpenFileVault(fuzz::ScratchDir() / "restore.vault", options, true);
    if (!opened) std::abort();
    return opened->release();
  }();
  return *store;
}

// Argon2id costs up to the documented bound (4 GiB, 64 passes) are valid but would only measure
// the KDF; larger than the test parameters are skipped (the bound itself is unit-tested).
bool CheapKdf(std::string_view text) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object() || !doc.contains("kdf") || !doc["kdf"].is_object()) return true;
  const auto& kdf = doc["kdf"];
  for (const char* name : {"t", "m_kib", "p"}) {
    if (kdf.contains(name) && kdf[name].is_number_unsigned() &&
        kdf[name].get<uint64_t>() > (std::string_view(name) == "m_kib" ? 1024u : 4u))
      return false;
  }
  return true;
}

void Cleanup(const Result<std::vector<keys::KeyInfo>>& restored) {
  if (!restored) return;
  for (const auto& info : *restored) {
    if (!Store().Delete(info.name)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0: {
      if (!CheapKdf(text)) return 0;
      auto path = fuzz::WriteInput("backup.json", data + 1, size - 1);
      Cleanup(keys::RestoreBackup(Store(), kPassphrase, path));
      break;
    }
    case 1: {
      std::vector<std::filesystem::path> files;
      size_t start = 0;
      constexpr std::string_view kCut = "\n--8<--\n";
      while (files.size() < 8) {
        size_t end = text.find(kCut, start);
        std::string_view part = text.substr(start, end == std::string_view::npos ? end : end - start);
        files.push_back(fuzz::WriteInput("share" + std::to_string(files.size()) + ".json",
                                         reinterpret_cast<const uint8_t*>(part.data()), part.size()));
        if (end == std::string_view::npos) break;
        start = end + kCut.size();
      }
      Cleanup(keys::RestoreFromShares(Store(), files));
      break;
    }
    case 2: {
      auto state = keys::DecodeVaultState(AsBytes(text));
      if (state) {
        auto again = keys::DecodeVaultState(keys::EncodeVaultState(*state));
        if (!again || again->checkpoint_key != state->checkpoint_key ||
            again->access_control != state->access_control ||
            again->audit_heads.size() != state->audit_heads.size())
          __builtin_trap();
      }
      break;
    }
    case 3: {
      // Shares: [x][len][len bytes]..., all of the first share's length.
      std::vector<keys::ShamirShare> shares;
      size_t pos = 1;
      while (pos + 2 <= size && shares.size() < 16) {
        keys::ShamirShare share;
        share.x = data[pos];
        size_t len = data[pos + 1];
        pos += 2;
        if (pos + len > size) break;
        share.y.assign(data + pos, data + pos + len);
        pos += len;
        shares.push_back(std::move(share));
      }
      auto secret = keys::ShamirCombine(shares);
      if (secret && !shares.empty() && secret->size() != shares[0].y.size()) __builtin_trap();
      break;
    }
  }
  return 0;
}
