#include "keys/backup.h"

#include <algorithm>
#include <charconv>
#include <set>

#include <nlohmann/json.hpp>

#include "common/file.h"
#include "common/json.h"
#include "crypto/base64.h"
#include "crypto/random.h"
#include "keys/secret_box.h"
#include "keys/shamir.h"

namespace airlock::keys {
namespace {

constexpr std::string_view kBackupFormat = "airlock-key-backup-1";
constexpr std::string_view kShareFormat = "airlock-key-share-1";
constexpr size_t kMaxBackupSize = 64 * 1024 * 1024;
constexpr size_t kMaxShareSize = 1024 * 1024;

Bytes DekAad(const KdfParams& p, ByteSpan salt) {
  Bytes aad(kBackupFormat.begin(), kBackupFormat.end());
  AppendU32Be(aad, p.t_cost);
  AppendU32Be(aad, p.m_cost_kib);
  AppendU32Be(aad, p.parallelism);
  aad.insert(aad.end(), salt.begin(), salt.end());
  return aad;
}

nlohmann::json InfoJson(const KeyInfo& k) {
  nlohmann::json j = {{"name", k.name},
                      {"key_id", k.key_id},
                      {"type", std::string(crypto::KeyTypeName(k.type))},
                      {"purpose", std::string(KeyPurposeName(k.purpose))},
                      {"state", std::string(KeyStateName(k.state))},
                      {"created_at", k.created_at},
                      {"state_changed_at", k.state_changed_at}};
  // Only for imported keys, so entries of generated keys keep their earlier form.
  if (k.origin != KeyOrigin::kGenerated) j["origin"] = std::string(KeyOriginName(k.origin));
  return j;
}

Result<KeyInfo> InfoFromJson(const nlohmann::json& j) {
  KeyInfo k;
  AIRLOCK_ASSIGN_OR_RETURN(k.name, GetString(j, "name", 128));
  AIRLOCK_ASSIGN_OR_RETURN(k.key_id, GetString(j, "key_id", 128));
  AIRLOCK_ASSIGN_OR_RETURN(std::string type, GetString(j, "type", 32));
  AIRLOCK_ASSIGN_OR_RETURN(std::string purpose, GetString(j, "purpose", 32));
  AIRLOCK_ASSIGN_OR_RETURN(std::string state, GetString(j, "state", 32));
  auto t = crypto::ParseKeyType(type);
  auto p = ParseKeyPurpose(purpose);
  auto s = ParseKeyState(state);
  if (!t || !p || !s || !IsValidStoredKeyName(k.name)) {
    return MakeError(ErrorCode::kMalformed, "backup entry " + k.name + " is malformed");
  }
  k.type = *t;
  k.purpose = *p;
  k.state = *s;
  AIRLOCK_ASSIGN_OR_RETURN(uint64_t created, GetUint(j, "created_at"));
  AIRLOCK_ASSIGN_OR_RETURN(uint64_t changed, GetUint(j, "state_changed_at"));
  k.created_at = static_cast<int64_t>(created);
  k.state_changed_at = static_cast<int64_t>(changed);
  if (j.contains("origin")) {  // absent: generated (and every backup made before imports)
    AIRLOCK_ASSIGN_OR_RETURN(std::string origin, GetString(j, "origin", 32));
    auto o = ParseKeyOrigin(origin);
    if (!o) return MakeError(ErrorCode::kMalformed, "backup entry " + k.name + " is malformed");
    k.origin = *o;
  }
  return k;
}

Result<Bytes> GetBase64(const nlohmann::json& j, std::string_view key) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string text, GetString(j, key, 1 << 20));
  auto b = crypto::Base64Decode(text);
  if (!b) return MakeError(ErrorCode::kMalformed, "field " + std::string(key) + " is not base64");
  return b;
}

// Imports `entries`, all or nothing: names are checked first; on a failure the keys imported so far
// are deleted again.
Result<std::vector<KeyInfo>> ImportAll(
    KeyStore& store, const std::vector<std::pair<KeyInfo, Bytes>>& entries, ByteSpan dek) {
  for (const auto& [info, sealed] : entries) {
    auto existing = store.Get(info.name);
    if (existing) {
      return MakeError(ErrorCode::kAlreadyExists,
                       "key " + info.name + " already exists in " + store.Uri());
    }
    if (existing.error().code() != ErrorCode::kNotFound) return tl::unexpected(existing.error());
  }
  std::vector<KeyInfo> done;
  for (const auto& [info, sealed] : entries) {
    auto imported = store.ImportSealed(info, sealed, dek);
    if (!imported) {
      for (const auto& k : done) (void)store.Delete(k.name);
      return tl::unexpected(imported.error().WithContext("key " + info.name));
    }
    done.push_back(*imported);
  }
  return done;
}

}  // namespace

Result<ShareSpec> ParseShareSpec(std::string_view text) {
  size_t sep = text.find('/');
  size_t sep_len = 1;
  if (sep == std::string_view::npos) {
    sep = text.find("-of-");
    sep_len = 4;
  }
  if (sep == std::string_view::npos) {
    sep = text.find("of");
    sep_len = 2;
  }
  ShareSpec spec;
  auto bad = [&] {
    return MakeError(ErrorCode::kInvalidArgument,
                     "bad share spec '" + std::string(text) + "' (K/N with 2 <= K <= N <= 255)");
  };
  if (sep == std::string_view::npos) return bad();
  const std::string_view ks = text.substr(0, sep), ns = text.substr(sep + sep_len);
  auto r1 = std::from_chars(ks.data(), ks.data() + ks.size(), spec.k);
  auto r2 = std::from_chars(ns.data(), ns.data() + ns.size(), spec.n);
  if (r1.ec != std::errc() || r1.ptr != ks.data() + ks.size() || r2.ec != std::errc() ||
      r2.ptr != ns.data() + ns.size() || spec.k < 2 || spec.k > spec.n || spec.n > 255) {
    return bad();
  }
  return spec;
}

Result<BackupResult> WriteBackup(KeyStore& store, std::string_view passphrase,
                                 const std::filesystem::path& out, std::optional<ShareSpec> shares,
                                 const KdfParams& kdf) {
  if (passphrase.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "the backup passphrase must not be empty");
  }
  std::error_code ec;
  if (std::filesystem::exists(out, ec)) {
    return MakeError(ErrorCode::kAlreadyExists, out.string() + " already exists");
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<KeyInfo> all, store.List());
  AIRLOCK_ASSIGN_OR_RETURN(Bytes salt, crypto::RandomBytes(16));
  AIRLOCK_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKeyArgon2id(passphrase, salt, kdf));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes dek_raw, crypto::RandomBytes(kSealKeySize));
  SecretBytes dek(std::move(dek_raw));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes sealed_dek, SealAesGcm(kek.span(), dek.span(), DekAad(kdf, salt)));
  nlohmann::json doc = {{"format", std::string(kBackupFormat)},
                        {"source", store.Uri()},
                        {"kdf",
                         {{"alg", "argon2id"},
                          {"t", kdf.t_cost},
                          {"m_kib", kdf.m_cost_kib},
                          {"p", kdf.parallelism},
                          {"salt", HexEncode(salt)}}},
                        {"dek", crypto::Base64Encode(sealed_dek)},
                        {"keys", nlohmann::json::array()}};
  BackupResult result;
  struct ShareOut {
    std::filesystem::path path;
    std::string text;
  };
  std::vector<ShareOut> share_out;
  for (const KeyInfo& k : all) {
    AIRLOCK_ASSIGN_OR_RETURN(Bytes sealed, store.ExportSealed(k.name, dek.span()));
    nlohmann::json e = InfoJson(k);
    e["sealed"] = crypto::Base64Encode(sealed);
    doc["keys"].push_back(std::move(e));
    ++result.keys;
    if (!shares || k.purpose != KeyPurpose::kRoot || k.name.find('@') != std::string::npos) continue;
    AIRLOCK_ASSIGN_OR_RETURN(Bytes share_key_raw, crypto::RandomBytes(kSealKeySize));
    SecretBytes share_key(std::move(share_key_raw));
    AIRLOCK_ASSIGN_OR_RETURN(Bytes root_sealed, store.ExportSealed(k.name, share_key.span()));
    AIRLOCK_ASSIGN_OR_RETURN(std::vector<ShamirShare> parts,
                             ShamirSplit(share_key.span(), shares->k, shares->n));
    AIRLOCK_ASSIGN_OR_RETURN(Bytes set_id, crypto::RandomBytes(16));
    for (const ShamirShare& part : parts) {
      nlohmann::json sj = {{"format", std::string(kShareFormat)},
                           {"set", HexEncode(set_id)},
                           {"key", InfoJson(k)},
                           {"sealed", crypto::Base64Encode(root_sealed)},
                           {"k", shares->k},
                           {"n", shares->n},
                           {"x", part.x},
                           {"y", HexEncode(part.y)}};
      std::filesystem::path p = out;
      p += "." + k.name + ".share-" + std::to_string(part.x) + "-of-" + std::to_string(shares->n) +
           ".json";
      share_out.push_back({p, sj.dump(2) + "\n"});
    }
  }
  for (const auto& s : share_out) {
    if (std::filesystem::exists(s.path, ec)) {
      return MakeError(ErrorCode::kAlreadyExists, s.path.string() + " already exists");
    }
  }
  AIRLOCK_TRY(WriteFileAtomic(out, AsBytes(doc.dump(2) + "\n"), 0600));
  for (const auto& s : share_out) {
    AIRLOCK_TRY(WriteFileAtomic(s.path, AsBytes(s.text), 0600));
    result.share_files.push_back(s.path.string());
  }
  return result;
}

Result<std::vector<KeyInfo>> RestoreBackup(KeyStore& store, std::string_view passphrase,
                                           const std::filesystem::path& in) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string text, ReadTextFile(in, kMaxBackupSize));
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJson(text, kMaxBackupSize));
  if (!doc.is_object()) return MakeError(ErrorCode::kMalformed, in.string() + " is not a key backup");
  auto format = GetString(doc, "format", 64);
  if (!format || *format != kBackupFormat) {
    return MakeError(ErrorCode::kMalformed, in.string() + " is not an airlock key backup");
  }
  AIRLOCK_ASSIGN_OR_RETURN(const nlohmann::json* kdf_json, GetObject(doc, "kdf"));
  KdfParams kdf;
  AIRLOCK_ASSIGN_OR_RETURN(uint64_t t, GetUint(*kdf_json, "t"));
  AIRLOCK_ASSIGN_OR_RETURN(uint64_t m, GetUint(*kdf_json, "m_kib"));
  AIRLOCK_ASSIGN_OR_RETURN(uint64_t p, GetUint(*kdf_json, "p"));
  if (t > 64 || m > 4u * 1024 * 1024 || p > 16) {
    return MakeError(ErrorCode::kMalformed, "backup KDF parameters are out of bounds");
  }
  kdf.t_cost = static_cast<uint32_t>(t);
  kdf.m_cost_kib = static_cast<uint32_t>(m);
  kdf.parallelism = static_cast<uint32_t>(p);
  AIRLOCK_ASSIGN_OR_RETURN(std::string salt_hex, GetString(*kdf_json, "salt", 128));
  auto salt = HexDecode(salt_hex);
  if (!salt) return MakeError(ErrorCode::kMalformed, "backup salt is not hex");
  AIRLOCK_ASSIGN_OR_RETURN(Bytes sealed_dek, GetBase64(doc, "dek"));
  auto kek = DeriveKeyArgon2id(passphrase, *salt, kdf);
  if (!kek) {
    if (kek.error().code() == ErrorCode::kInvalidArgument) {
      return MakeError(ErrorCode::kMalformed, "backup KDF parameters are out of bounds");
    }
    return tl::unexpected(kek.error());
  }
  auto dek = OpenAesGcm(kek->span(), sealed_dek, DekAad(kdf, *salt));
  if (!dek) return MakeError(ErrorCode::kWrongKey, "wrong backup passphrase for " + in.string());
  AIRLOCK_ASSIGN_OR_RETURN(const nlohmann::json* keys, GetArray(doc, "keys"));
  std::vector<std::pair<KeyInfo, Bytes>> entries;
  for (const auto& e : *keys) {
    if (!e.is_object()) return MakeError(ErrorCode::kMalformed, "backup entry is not an object");
    AIRLOCK_ASSIGN_OR_RETURN(KeyInfo info, InfoFromJson(e));
    AIRLOCK_ASSIGN_OR_RETURN(Bytes sealed, GetBase64(e, "sealed"));
    entries.emplace_back(std::move(info), std::move(sealed));
  }
  return ImportAll(store, entries, dek->span());
}

Result<std::vector<KeyInfo>> RestoreFromShares(KeyStore& store,
                                               const std::vector<std::filesystem::path>& files) {
  if (files.empty()) return MakeError(ErrorCode::kInvalidArgument, "no share files given");
  std::vector<ShamirShare> parts;
  std::string set, sealed_b64, key_json;
  int k = 0;
  std::optional<KeyInfo> info;
  for (const auto& f : files) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string text, ReadTextFile(f, kMaxShareSize));
    AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(text, kMaxShareSize));
    auto format = j.is_object() ? GetString(j, "format", 64) : Result<std::string>("");
    if (!format || *format != kShareFormat) {
      return MakeError(ErrorCode::kMalformed, f.string() + " is not an airlock key share");
    }
    AIRLOCK_ASSIGN_OR_RETURN(std::string this_set, GetString(j, "set", 64));
    AIRLOCK_ASSIGN_OR_RETURN(std::string this_sealed, GetString(j, "sealed", 1 << 19));
    AIRLOCK_ASSIGN_OR_RETURN(const nlohmann::json* key, GetObject(j, "key"));
    AIRLOCK_ASSIGN_OR_RETURN(uint64_t this_k, GetUint(j, "k"));
    AIRLOCK_ASSIGN_OR_RETURN(uint64_t x, GetUint(j, "x"));
    AIRLOCK_ASSIGN_OR_RETURN(std::string y_hex, GetString(j, "y", 256));
    auto y = HexDecode(y_hex);
    if (!y || x == 0 || x > 255 || this_k < 2 || this_k > 255) {
      return MakeError(ErrorCode::kMalformed, f.string() + ": bad share");
    }
    if (set.empty()) {
      set = this_set;
      sealed_b64 = this_sealed;
      key_json = key->dump();
      k = static_cast<int>(this_k);
      AIRLOCK_ASSIGN_OR_RETURN(info, InfoFromJson(*key));
    } else if (this_set != set || this_sealed != sealed_b64 || key->dump() != key_json ||
               static_cast<int>(this_k) != k) {
      return MakeError(ErrorCode::kInvalidArgument,
                       f.string() + " belongs to a different share set");
    }
    parts.push_back({static_cast<uint8_t>(x), std::move(*y)});
  }
  if (static_cast<int>(parts.size()) < k) {
    return MakeError(ErrorCode::kInvalidArgument, "key " + info->name + " needs " +
                                                      std::to_string(k) + " shares, " +
                                                      std::to_string(parts.size()) + " given");
  }
  AIRLOCK_ASSIGN_OR_RETURN(Bytes share_key_raw, ShamirCombine(parts));
  SecretBytes share_key(std::move(share_key_raw));
  auto sealed = crypto::Base64Decode(sealed_b64);
  if (!sealed) return MakeError(ErrorCode::kMalformed, "share's sealed key is not base64");
  return ImportAll(store, {{*info, *sealed}}, share_key.span());
}

}  // namespace airlock::keys
