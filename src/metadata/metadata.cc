#include "metadata/metadata.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <set>

#include "common/canonical_json.h"
#include "common/json.h"
#include "crypto/sign.h"
#include "metadata/metadata_json.h"

namespace airlock::metadata {

using nlohmann::json;

namespace metadata_internal {

json Rest(const json& obj, std::initializer_list<std::string_view> known) {
  json rest = json::object();
  for (const auto& [key, value] : obj.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) rest[key] = value;
  }
  return rest;
}

json Base(const json& unrecognized) { return unrecognized.is_object() ? unrecognized : json::object(); }

Result<std::string> Str(const json& obj, std::string_view key) {
  return GetString(obj, key, kMaxStringLength);
}

bool ContainsFloat(const json& v) {
  switch (v.type()) {
    case json::value_t::number_float:
      return true;
    case json::value_t::array:
    case json::value_t::object:
      for (const auto& e : v) {
        if (ContainsFloat(e)) return true;
      }
      return false;
    default:
      return false;
  }
}

}  // namespace metadata_internal

using namespace metadata_internal;  // NOLINT(google-build-using-namespace): this module's own
                                    // helpers

namespace {

Result<bool> GetBool(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end()) return MakeError(ErrorCode::kMalformed, "missing field '" + std::string(key) + "'");
  if (!it->is_boolean()) {
    return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' is not a boolean");
  }
  return it->get<bool>();
}

Result<std::vector<std::string>> GetStringList(const json& obj, std::string_view key) {
  AIRLOCK_ASSIGN_OR_RETURN(const json* arr, GetArray(obj, key));
  std::vector<std::string> out;
  out.reserve(arr->size());
  for (const auto& e : *arr) {
    if (!e.is_string()) {
      return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' holds a non-string");
    }
    const auto& s = e.get_ref<const std::string&>();
    if (s.size() > kMaxStringLength) {
      return MakeError(ErrorCode::kLimitExceeded, "field '" + std::string(key) + "' holds a too long string");
    }
    out.push_back(s);
  }
  return out;
}

Result<std::vector<std::string>> GetUniqueKeyIds(const json& obj) {
  AIRLOCK_ASSIGN_OR_RETURN(auto keyids, GetStringList(obj, "keyids"));
  std::set<std::string> seen;
  for (const auto& id : keyids) {
    if (!seen.insert(id).second) {
      return MakeError(ErrorCode::kMalformed, "duplicate key id '" + id + "' in keyids");
    }
  }
  return keyids;
}

Result<uint64_t> GetThreshold(const json& obj) {
  AIRLOCK_ASSIGN_OR_RETURN(uint64_t threshold, GetUint(obj, "threshold"));
  if (threshold < 1) return MakeError(ErrorCode::kMalformed, "threshold must be at least 1");
  return threshold;
}

Result<uint64_t> GetVersion(const json& obj) {
  AIRLOCK_ASSIGN_OR_RETURN(uint64_t version, GetUint(obj, "version"));
  if (version < 1) return MakeError(ErrorCode::kMalformed, "version must be at least 1");
  return version;
}

Result<Hashes> ParseHashes(const json& obj) {
  AIRLOCK_ASSIGN_OR_RETURN(const json* h, GetObject(obj, "hashes"));
  if (h->empty()) return MakeError(ErrorCode::kMalformed, "hashes is empty");
  Hashes out;
  for (const auto& [alg, value] : h->items()) {
    if (!value.is_string()) return MakeError(ErrorCode::kMalformed, "hash '" + alg + "' is not a string");
    const auto& s = value.get_ref<const std::string&>();
    if (s.size() > kMaxStringLength) return MakeError(ErrorCode::kLimitExceeded, "hash too long");
    out[alg] = s;
  }
  return out;
}

Result<KeyMap> ParseKeyMap(const json& obj) {
  AIRLOCK_ASSIGN_OR_RETURN(const json* keys, GetObject(obj, "keys"));
  KeyMap out;
  for (const auto& [keyid, value] : keys->items()) {
    auto key = Key::FromJson(value);
    if (!key) return tl::unexpected(key.error().WithContext("key " + keyid));
    out.emplace(keyid, std::move(*key));
  }
  return out;
}

json KeyMapToJson(const KeyMap& keys) {
  json out = json::object();
  for (const auto& [keyid, key] : keys) out[keyid] = key.ToJson();
  return out;
}

// Parses `_type`, spec_version, version and expires; `_type` first so a wrong role is reported as such.
Result<void> ParseCommon(const json& j, std::string_view type_name, SignedCommon& common) {
  if (!j.is_object()) return MakeError(ErrorCode::kMalformed, "signed is not an object");
  AIRLOCK_ASSIGN_OR_RETURN(std::string type, Str(j, "_type"));
  if (type != type_name) {
    return MakeError(ErrorCode::kUnsupported,
                     "expected _type '" + std::string(type_name) + "', got '" + type + "'");
  }
  AIRLOCK_ASSIGN_OR_RETURN(common.spec_version, Str(j, "spec_version"));
  // As python-tuf: "MAJOR.MINOR" or "MAJOR.MINOR.PATCH", digits only; the major must be ours.
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = common.spec_version.find('.', start);
    parts.push_back(common.spec_version.substr(start, dot == std::string::npos ? dot : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  bool well_formed = parts.size() == 2 || parts.size() == 3;
  for (const auto& p : parts) {
    if (p.empty() || p.size() > 9 || !std::all_of(p.begin(), p.end(), [](char c) {
          return c >= '0' && c <= '9';
        })) {
      well_formed = false;
    }
  }
  if (!well_formed) {
    return MakeError(ErrorCode::kMalformed, "bad spec_version '" + common.spec_version + "'");
  }
  if (std::stoul(parts[0]) != 1) {
    return MakeError(ErrorCode::kUnsupported,
                     "unsupported spec_version '" + common.spec_version + "' (major must be 1)");
  }
  AIRLOCK_ASSIGN_OR_RETURN(common.version, GetVersion(j));
  AIRLOCK_ASSIGN_OR_RETURN(std::string expires, Str(j, "expires"));
  AIRLOCK_ASSIGN_OR_RETURN(common.expires, ParseTufTime(expires));
  return {};
}

void WriteCommon(json& out, std::string_view type_name, const SignedCommon& common) {
  out["_type"] = type_name;
  out["spec_version"] = common.spec_version;
  out["version"] = common.version;
  out["expires"] = FormatTufTime(common.expires);
}

Result<MetaFile> ParseMetaFile(const json& j) {
  if (!j.is_object()) return MakeError(ErrorCode::kMalformed, "meta entry is not an object");
  MetaFile m;
  AIRLOCK_ASSIGN_OR_RETURN(m.version, GetVersion(j));
  if (j.contains("length")) {
    AIRLOCK_ASSIGN_OR_RETURN(m.length, GetUint(j, "length"));
  }
  if (j.contains("hashes")) {
    AIRLOCK_ASSIGN_OR_RETURN(m.hashes, ParseHashes(j));
  }
  m.unrecognized_fields = Rest(j, {"version", "length", "hashes"});
  return m;
}

json MetaFileToJson(const MetaFile& m) {
  json out = Base(m.unrecognized_fields);
  out["version"] = m.version;
  if (m.length) out["length"] = *m.length;
  if (m.hashes) out["hashes"] = *m.hashes;
  return out;
}

Result<TargetFile> ParseTargetFile(const json& j) {
  if (!j.is_object()) return MakeError(ErrorCode::kMalformed, "target entry is not an object");
  TargetFile t;
  AIRLOCK_ASSIGN_OR_RETURN(t.length, GetUint(j, "length"));
  AIRLOCK_ASSIGN_OR_RETURN(t.hashes, ParseHashes(j));
  if (auto it = j.find("custom"); it != j.end()) t.custom = *it;
  t.unrecognized_fields = Rest(j, {"length", "hashes", "custom"});
  return t;
}

json TargetFileToJson(const TargetFile& t) {
  json out = Base(t.unrecognized_fields);
  out["length"] = t.length;
  out["hashes"] = t.hashes;
  if (t.custom) out["custom"] = *t.custom;
  return out;
}

Result<DelegatedRole> ParseDelegatedRole(const json& j) {
  if (!j.is_object()) return MakeError(ErrorCode::kMalformed, "delegated role is not an object");
  DelegatedRole r;
  AIRLOCK_ASSIGN_OR_RETURN(r.name, Str(j, "name"));
  AIRLOCK_ASSIGN_OR_RETURN(r.keyids, GetUniqueKeyIds(j));
  AIRLOCK_ASSIGN_OR_RETURN(r.threshold, GetThreshold(j));
  AIRLOCK_ASSIGN_OR_RETURN(r.terminating, GetBool(j, "terminating"));
  bool has_paths = j.contains("paths");
  bool has_prefixes = j.contains("path_hash_prefixes");
  if (has_paths == has_prefixes) {
    return MakeError(ErrorCode::kMalformed,
                     "delegated role '" + r.name + "' needs exactly one of paths and path_hash_prefixes");
  }
  if (has_paths) {
    AIRLOCK_ASSIGN_OR_RETURN(r.paths, GetStringList(j, "paths"));
  } else {
    AIRLOCK_ASSIGN_OR_RETURN(r.path_hash_prefixes, GetStringList(j, "path_hash_prefixes"));
  }
  r.unrecognized_fields =
      Rest(j, {"name", "keyids", "threshold", "terminating", "paths", "path_hash_prefixes"});
  return r;
}

json DelegatedRoleToJson(const DelegatedRole& r) {
  json out = Base(r.unrecognized_fields);
  out["name"] = r.name;
  out["keyids"] = r.keyids;
  out["threshold"] = r.threshold;
  out["terminating"] = r.terminating;
  if (r.paths) out["paths"] = *r.paths;
  if (r.path_hash_prefixes) out["path_hash_prefixes"] = *r.path_hash_prefixes;
  return out;
}

Result<Delegations> ParseDelegations(const json& j) {
  if (!j.is_object()) return MakeError(ErrorCode::kMalformed, "delegations is not an object");
  Delegations d;
  AIRLOCK_ASSIGN_OR_RETURN(d.keys, ParseKeyMap(j));
  if (j.contains("succinct_roles")) {
    return MakeError(ErrorCode::kUnsupported, "succinct_roles delegations are not supported");
  }
  AIRLOCK_ASSIGN_OR_RETURN(const json* roles, GetArray(j, "roles"));
  std::set<std::string> names;
  for (const auto& rj : *roles) {
    AIRLOCK_ASSIGN_OR_RETURN(DelegatedRole r, ParseDelegatedRole(rj));
    if (IsTopLevelRoleName(r.name)) {
      return MakeError(ErrorCode::kMalformed, "delegated role uses top-level name '" + r.name + "'");
    }
    if (!names.insert(r.name).second) {
      return MakeError(ErrorCode::kMalformed, "duplicate delegated role '" + r.name + "'");
    }
    d.roles.push_back(std::move(r));
  }
  d.unrecognized_fields = Rest(j, {"keys", "roles"});
  return d;
}

json DelegationsToJson(const Delegations& d) {
  json out = Base(d.unrecognized_fields);
  out["keys"] = KeyMapToJson(d.keys);
  json roles = json::array();
  for (const auto& r : d.roles) roles.push_back(DelegatedRoleToJson(r));
  out["roles"] = std::move(roles);
  return out;
}

std::optional<crypto::PublicKey> LoadPublicKey(const std::string& keytype, const std::string& scheme,
                                                const std::string& value) {
  if (keytype == "ed25519" && scheme == "ed25519") {
    auto raw = HexDecode(value);
    if (!raw || raw->size() != 32) return std::nullopt;
    auto key = crypto::PublicKey::FromRaw(crypto::KeyType::kEd25519, *raw);
    if (!key) return std::nullopt;
    return *key;
  }
  std::optional<crypto::KeyType> want;
  if ((keytype == "ecdsa" || keytype == "ecdsa-sha2-nistp256") && scheme == "ecdsa-sha2-nistp256") {
    want = crypto::KeyType::kEcdsaP256;
  } else if (keytype == "rsa" && scheme == "rsassa-pss-sha256") {
    want = crypto::KeyType::kRsa;
  }
  if (!want || value.size() > crypto::kMaxPemSize) return std::nullopt;
  auto key = crypto::PublicKey::FromPem(value);
  if (!key || key->type() != *want) return std::nullopt;
  return *key;
}

constexpr std::array<std::string_view, 4> kTopLevelRoles = {"root", "targets", "snapshot", "timestamp"};

}  // namespace

// ---------------------------------------------------------------------------------------------------

std::string_view RoleTypeName(RoleType type) {
  switch (type) {
    case RoleType::kRoot: return "root";
    case RoleType::kTargets: return "targets";
    case RoleType::kSnapshot: return "snapshot";
    case RoleType::kTimestamp: return "timestamp";
  }
  return "unknown";
}

bool IsTopLevelRoleName(std::string_view name) {
  return std::find(kTopLevelRoles.begin(), kTopLevelRoles.end(), name) != kTopLevelRoles.end();
}

Result<std::time_t> ParseTufTime(std::string_view text) {
  auto bad = [&] {
    return MakeError(ErrorCode::kMalformed,
                     "expires '" + std::string(text.substr(0, 64)) + "' is not YYYY-MM-DDTHH:MM:SSZ");
  };
  // YYYY-MM-DDTHH:MM:SS then optional .fraction, then Z.
  if (text.size() < 20 || text.size() > 40 || text.back() != 'Z') return bad();
  const char* p = text.data();
  auto digits = [&](size_t pos, size_t n, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (p[i] < '0' || p[i] > '9') return false;
      out = out * 10 + (p[i] - '0');
    }
    return true;
  };
  int year, month, day, hour, minute, second;
  if (!digits(0, 4, year) || p[4] != '-' || !digits(5, 2, month) || p[7] != '-' ||
      !digits(8, 2, day) || p[10] != 'T' || !digits(11, 2, hour) || p[13] != ':' ||
      !digits(14, 2, minute) || p[16] != ':' || !digits(17, 2, second)) {
    return bad();
  }
  if (text.size() > 20) {
    // Fractional seconds: '.' and at least one digit before 'Z'.
    if (p[19] != '.' || text.size() < 22) return bad();
    for (size_t i = 20; i + 1 < text.size(); ++i) {
      if (p[i] < '0' || p[i] > '9') return bad();
    }
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    return bad();
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  std::time_t t = timegm(&tm);
  // timegm normalizes (Feb 30 -> Mar 2); a round trip catches days the month does not have.
  std::tm back{};
  if (gmtime_r(&t, &back) == nullptr || back.tm_mday != day || back.tm_mon != month - 1) return bad();
  return t;
}

std::string FormatTufTime(std::time_t t) {
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "1970-01-01T00:00:00Z";
  char buf[64];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

// ---------------------------------------------------------------------------------------------------
// Key

Result<Key> Key::FromJson(const json& j) {
  if (!j.is_object()) return MakeError(ErrorCode::kMalformed, "key is not an object");
  Key key;
  AIRLOCK_ASSIGN_OR_RETURN(key.keytype, Str(j, "keytype"));
  AIRLOCK_ASSIGN_OR_RETURN(key.scheme, Str(j, "scheme"));
  AIRLOCK_ASSIGN_OR_RETURN(const json* keyval, GetObject(j, "keyval"));
  AIRLOCK_ASSIGN_OR_RETURN(std::string pub, Str(*keyval, "public"));
  key.keyval = *keyval;
  key.unrecognized_fields = Rest(j, {"keytype", "scheme", "keyval"});
  // An unsupported or unloadable key is kept, never counted (see the header).
  key.public_key = LoadPublicKey(key.keytype, key.scheme, pub);
  return key;
}

Key Key::FromPublicKey(const crypto::PublicKey& pub) {
  json j = pub.TufJson();
  Key key;
  key.keytype = j.value("keytype", "");
  key.scheme = j.value("scheme", "");
  key.keyval = j.value("keyval", json::object());
  key.public_key = pub;
  return key;
}

json Key::ToJson() const {
  json out = Base(unrecognized_fields);
  out["keytype"] = keytype;
  out["scheme"] = scheme;
  out["keyval"] = keyval;
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Hashes and lengths

Result<void> MetaFile::Verify(ByteSpan data) const {
  AIRLOCK_ASSIGN_OR_RETURN(auto verifier, LengthAndHashVerifier::Create(length, hashes));
  AIRLOCK_TRY(verifier.Update(data));
  return verifier.Finish();
}

Result<void> TargetFile::Verify(ByteSpan data) const {
  AIRLOCK_ASSIGN_OR_RETURN(auto verifier, LengthAndHashVerifier::Create(length, hashes));
  AIRLOCK_TRY(verifier.Update(data));
  return verifier.Finish();
}

Result<void> TargetFile::VerifyFile(const std::filesystem::path& path) const {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return MakeError(ErrorCode::kNotFound, "no file " + path.string());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(ErrorCode::kIo, "cannot open " + path.string());
  AIRLOCK_ASSIGN_OR_RETURN(auto verifier, LengthAndHashVerifier::Create(length, hashes));
  std::vector<char> buf(64 * 1024);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize n = in.gcount();
    if (n > 0) {
      AIRLOCK_TRY(verifier.Update(ByteSpan(reinterpret_cast<const uint8_t*>(buf.data()),
                                           static_cast<size_t>(n))));
    }
  }
  if (in.bad()) return MakeError(ErrorCode::kIo, "cannot read " + path.string());
  return verifier.Finish();
}

TargetFile TargetFile::FromData(ByteSpan data, bool with_sha512) {
  TargetFile t;
  t.length = data.size();
  t.hashes["sha256"] = HexEncode(crypto::Sha256(data));
  if (with_sha512) t.hashes["sha512"] = HexEncode(crypto::Sha512(data));
  return t;
}

Result<LengthAndHashVerifier> LengthAndHashVerifier::Create(std::optional<uint64_t> length,
                                                            const std::optional<Hashes>& hashes) {
  LengthAndHashVerifier v;
  v.length_ = length;
  if (hashes) {
    for (const auto& [alg, hex] : *hashes) {
      if (alg == "sha256") {
        v.hashers_.emplace_back(hex, crypto::Hasher::Sha256());
      } else if (alg == "sha512") {
        v.hashers_.emplace_back(hex, crypto::Hasher::Sha512());
      } else {
        continue;  // unknown algorithms are skipped; at least one known one is required below
      }
      v.names_.push_back(alg);
    }
    if (v.hashers_.empty()) {
      return MakeError(ErrorCode::kHashMismatch, "no hash of a known algorithm (sha256, sha512)");
    }
  }
  return v;
}

Result<void> LengthAndHashVerifier::Update(ByteSpan data) {
  seen_ += data.size();
  if (length_ && seen_ > *length_) {
    return MakeError(ErrorCode::kHashMismatch,
                     "more than the expected " + std::to_string(*length_) + " bytes");
  }
  for (auto& [hex, hasher] : hashers_) hasher.Update(data);
  return {};
}

Result<void> LengthAndHashVerifier::Finish() {
  if (length_ && seen_ != *length_) {
    return MakeError(ErrorCode::kHashMismatch, "length " + std::to_string(seen_) + " but expected " +
                                                   std::to_string(*length_));
  }
  for (size_t i = 0; i < hashers_.size(); ++i) {
    Bytes digest = hashers_[i].second.Finish();
    auto expected = HexDecode(hashers_[i].first);
    if (!expected || !ConstantTimeEqual(*expected, digest)) {
      return MakeError(ErrorCode::kHashMismatch, names_[i] + " does not match");
    }
  }
  return {};
}

std::string ConsistentTargetPath(std::string_view target_path, std::string_view hash_hex) {
  size_t slash = target_path.rfind('/');
  std::string out;
  if (slash != std::string_view::npos) out.append(target_path.substr(0, slash + 1));
  out.append(hash_hex);
  out.push_back('.');
  out.append(slash == std::string_view::npos ? target_path : target_path.substr(slash + 1));
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Delegations

bool DelegatedRole::IsDelegatedPath(std::string_view target_path) const {
  if (paths) {
    for (const auto& pattern : *paths) {
      if (MatchesPathPattern(pattern, target_path)) return true;
    }
    return false;
  }
  if (path_hash_prefixes) {
    std::string digest = HexEncode(crypto::Sha256(AsBytes(target_path)));
    for (const auto& prefix : *path_hash_prefixes) {
      if (digest.compare(0, prefix.size(), prefix) == 0 && prefix.size() <= digest.size()) return true;
    }
  }
  return false;
}

const DelegatedRole* Delegations::FindRole(std::string_view name) const {
  for (const auto& r : roles) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::vector<std::pair<std::string, bool>> Delegations::RolesForTarget(
    std::string_view target_path) const {
  std::vector<std::pair<std::string, bool>> out;
  for (const auto& r : roles) {
    if (r.IsDelegatedPath(target_path)) out.emplace_back(r.name, r.terminating);
  }
  return out;
}

Result<void> Delegations::AddKey(std::string_view role_name, const crypto::PublicKey& key) {
  for (auto& r : roles) {
    if (r.name != role_name) continue;
    std::string keyid = key.KeyId();
    keys[keyid] = Key::FromPublicKey(key);
    if (std::find(r.keyids.begin(), r.keyids.end(), keyid) == r.keyids.end()) r.keyids.push_back(keyid);
    return {};
  }
  return MakeError(ErrorCode::kNotFound, "no delegated role '" + std::string(role_name) + "'");
}

// ---------------------------------------------------------------------------------------------------
// Roles

Result<Root> Root::FromJson(const json& j) {
  Root root;
  AIRLOCK_TRY(ParseCommon(j, kTypeName, root));
  if (j.contains("consistent_snapshot")) {
    AIRLOCK_ASSIGN_OR_RETURN(root.consistent_snapshot, GetBool(j, "consistent_snapshot"));
  } else {
    root.consistent_snapshot = false;
  }
  AIRLOCK_ASSIGN_OR_RETURN(root.keys, ParseKeyMap(j));
  AIRLOCK_ASSIGN_OR_RETURN(const json* roles, GetObject(j, "roles"));
  for (const auto& [name, rj] : roles->items()) {
    if (!IsTopLevelRoleName(name)) {
      return MakeError(ErrorCode::kMalformed, "root lists unknown role '" + name + "'");
    }
    if (!rj.is_object()) return MakeError(ErrorCode::kMalformed, "role '" + name + "' is not an object");
    Role role;
    AIRLOCK_ASSIGN_OR_RETURN(role.keyids, GetUniqueKeyIds(rj));
    AIRLOCK_ASSIGN_OR_RETURN(role.threshold, GetThreshold(rj));
    role.unrecognized_fields = Rest(rj, {"keyids", "threshold"});
    root.roles.emplace(name, std::move(role));
  }
  if (root.roles.size() != kTopLevelRoles.size()) {
    return MakeError(ErrorCode::kMalformed, "root must list roles root, targets, snapshot and timestamp");
  }
  root.unrecognized_fields = Rest(j, {"_type", "spec_version", "version", "expires",
                                      "consistent_snapshot", "keys", "roles"});
  return root;
}

json Root::ToJson() const {
  json out = Base(unrecognized_fields);
  WriteCommon(out, kTypeName, *this);
  out["consistent_snapshot"] = consistent_snapshot;
  out["keys"] = KeyMapToJson(keys);
  json rj = json::object();
  for (const auto& [name, role] : roles) {
    json r = Base(role.unrecognized_fields);
    r["keyids"] = role.keyids;
    r["threshold"] = role.threshold;
    rj[name] = std::move(r);
  }
  out["roles"] = std::move(rj);
  return out;
}

Result<void> Root::VerifyDelegate(std::string_view role_name, const Envelope& delegate) const {
  if (!IsTopLevelRoleName(role_name)) {
    return MakeError(ErrorCode::kInvalidArgument, "'" + std::string(role_name) + "' is not a top-level role");
  }
  auto it = roles.find(std::string(role_name));
  if (it == roles.end()) {
    return MakeError(ErrorCode::kBadSignature, "root assigns no keys to " + std::string(role_name));
  }
  return VerifyRole(delegate, keys, it->second.keyids, it->second.threshold, role_name);
}

Result<void> Root::AddKey(std::string_view role_name, const crypto::PublicKey& key) {
  if (!IsTopLevelRoleName(role_name)) {
    return MakeError(ErrorCode::kInvalidArgument, "'" + std::string(role_name) + "' is not a top-level role");
  }
  std::string keyid = key.KeyId();
  keys[keyid] = Key::FromPublicKey(key);
  Role& role = roles[std::string(role_name)];
  if (std::find(role.keyids.begin(), role.keyids.end(), keyid) == role.keyids.end()) {
    role.keyids.push_back(keyid);
  }
  return {};
}

Result<void> Root::RevokeKey(std::string_view role_name, std::string_view keyid) {
  auto it = roles.find(std::string(role_name));
  if (it == roles.end()) {
    return MakeError(ErrorCode::kNotFound, "no role '" + std::string(role_name) + "'");
  }
  auto& ids = it->second.keyids;
  auto pos = std::find(ids.begin(), ids.end(), keyid);
  if (pos == ids.end()) {
    return MakeError(ErrorCode::kNotFound,
                     "role '" + std::string(role_name) + "' has no key " + std::string(keyid));
  }
  ids.erase(pos);
  bool used = false;
  for (const auto& [name, role] : roles) {
    if (std::find(role.keyids.begin(), role.keyids.end(), keyid) != role.keyids.end()) used = true;
  }
  if (!used) keys.erase(std::string(keyid));
  return {};
}

Result<Targets> Targets::FromJson(const json& j) {
  Targets t;
  AIRLOCK_TRY(ParseCommon(j, kTypeName, t));
  AIRLOCK_ASSIGN_OR_RETURN(const json* targets, GetObject(j, "targets"));
  for (const auto& [path, tj] : targets->items()) {
    auto file = ParseTargetFile(tj);
    if (!file) return tl::unexpected(file.error().WithContext("target '" + path.substr(0, 256) + "'"));
    t.targets.emplace(path, std::move(*file));
  }
  if (auto it = j.find("delegations"); it != j.end()) {
    AIRLOCK_ASSIGN_OR_RETURN(t.delegations, ParseDelegations(*it));
  }
  t.unrecognized_fields =
      Rest(j, {"_type", "spec_version", "version", "expires", "targets", "delegations"});
  return t;
}

json Targets::ToJson() const {
  json out = Base(unrecognized_fields);
  WriteCommon(out, kTypeName, *this);
  json tj = json::object();
  for (const auto& [path, file] : targets) tj[path] = TargetFileToJson(file);
  out["targets"] = std::move(tj);
  if (delegations) out["delegations"] = DelegationsToJson(*delegations);
  return out;
}

Result<void> Targets::VerifyDelegate(std::string_view role_name, const Envelope& delegate) const {
  const DelegatedRole* role = delegations ? delegations->FindRole(role_name) : nullptr;
  if (role == nullptr) {
    return MakeError(ErrorCode::kNotFound, "no delegated role '" + std::string(role_name) + "'");
  }
  return VerifyRole(delegate, delegations->keys, role->keyids, role->threshold, role_name);
}

Result<Snapshot> Snapshot::FromJson(const json& j) {
  Snapshot s;
  AIRLOCK_TRY(ParseCommon(j, kTypeName, s));
  AIRLOCK_ASSIGN_OR_RETURN(const json* meta, GetObject(j, "meta"));
  for (const auto& [name, mj] : meta->items()) {
    auto m = ParseMetaFile(mj);
    if (!m) return tl::unexpected(m.error().WithContext("meta '" + name.substr(0, 256) + "'"));
    s.meta.emplace(name, std::move(*m));
  }
  s.unrecognized_fields = Rest(j, {"_type", "spec_version", "version", "expires", "meta"});
  return s;
}

json Snapshot::ToJson() const {
  json out = Base(unrecognized_fields);
  WriteCommon(out, kTypeName, *this);
  json mj = json::object();
  for (const auto& [name, m] : meta) mj[name] = MetaFileToJson(m);
  out["meta"] = std::move(mj);
  return out;
}

Result<Timestamp> Timestamp::FromJson(const json& j) {
  Timestamp t;
  AIRLOCK_TRY(ParseCommon(j, kTypeName, t));
  AIRLOCK_ASSIGN_OR_RETURN(const json* meta, GetObject(j, "meta"));
  AIRLOCK_ASSIGN_OR_RETURN(const json* snap, GetObject(*meta, "snapshot.json"));
  AIRLOCK_ASSIGN_OR_RETURN(t.snapshot_meta, ParseMetaFile(*snap));
  t.unrecognized_fields = Rest(j, {"_type", "spec_version", "version", "expires", "meta"});
  return t;
}

json Timestamp::ToJson() const {
  json out = Base(unrecognized_fields);
  WriteCommon(out, kTypeName, *this);
  out["meta"] = json::object({{"snapshot.json", MetaFileToJson(snapshot_meta)}});
  return out;
}

}  // namespace airlock::metadata
