#include "repo/repository.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <system_error>

#include "bundle/bundle.h"
#include "common/bytes.h"
#include "common/canonical_json.h"
#include "common/file.h"
#include "common/json.h"
#include "common/semver.h"
#include "crypto/hash.h"
#include "crypto/keys.h"

namespace airlock::repo {

namespace fs = std::filesystem;
using metadata::DelegatedRole;
using metadata::Delegations;
using metadata::Metadata;
using metadata::Root;
using metadata::Snapshot;
using metadata::TargetFile;
using metadata::Targets;
using metadata::Timestamp;

namespace {

constexpr std::string_view kStateFormat = "airlock-tuf-repository";
constexpr uint64_t kStateFormatVersion = 1;
constexpr std::string_view kTopLevelRoles[] = {"root", "targets", "snapshot", "timestamp"};
// The pseudo-role under which the default expiry of delegated roles is configured.
constexpr std::string_view kDelegatedExpiryKey = "delegated";

std::time_t NowOr(std::time_t now) { return now != 0 ? now : std::time(nullptr); }

fs::path StateDir(const fs::path& dir) { return dir / kStateDirName; }
fs::path StateFile(const fs::path& dir) { return StateDir(dir) / "repo.json"; }
fs::path MetadataDir(const fs::path& dir) { return dir / "metadata"; }
fs::path TargetsDir(const fs::path& dir) { return dir / "targets"; }

Error IoError(const std::string& what, const fs::path& path, int err) {
  return Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
               what + " " + path.string() + ": " + std::strerror(err));
}

std::map<std::string, int64_t> DefaultExpiries() {
  return {{"root", kDefaultRootExpiry},
          {"targets", kDefaultTargetsExpiry},
          {"snapshot", kDefaultSnapshotExpiry},
          {"timestamp", kDefaultTimestampExpiry},
          {std::string(kDelegatedExpiryKey), kDefaultTargetsExpiry}};
}

// Seconds -> the shortest exact duration string ("365d", "12h", "90s").
std::string FormatDuration(int64_t seconds) {
  if (seconds % kDay == 0) return std::to_string(seconds / kDay) + "d";
  if (seconds % 3600 == 0) return std::to_string(seconds / 3600) + "h";
  if (seconds % 60 == 0) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

// An exclusive, non-blocking lock on DIR/.airlock/lock; released when the fd closes.
Result<UniqueFd> LockRepository(const fs::path& dir) {
  fs::path path = StateDir(dir) / "lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return tl::unexpected(IoError("cannot open lock file", path, errno));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return MakeError(ErrorCode::kAlreadyExists, "repository " + dir.string() +
                                                      " is busy (another airlock process holds " +
                                                      path.string() + ")");
    }
    return tl::unexpected(IoError("cannot lock", path, errno));
  }
  return fd;
}

fs::path Absolute(const fs::path& p) {
  std::error_code ec;
  fs::path abs = fs::absolute(p, ec);
  return ec ? p : abs.lexically_normal();
}

using SignerPtr = std::unique_ptr<crypto::Signer>;

// Loads a signer (key file or key URI) that can sign TUF metadata.
Result<SignerPtr> LoadSigningKey(const SignerLoader& loader, const std::string& spec) {
  auto key = loader ? loader(spec) : LoadFileSigner(spec);
  if (!key) return tl::unexpected(key.error().WithContext("key " + spec));
  if (*key == nullptr) return MakeError(ErrorCode::kInternal, "key " + spec + ": no signer");
  if ((*key)->Public().type() == crypto::KeyType::kX25519) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key " + spec + " is an x25519 key, which cannot sign metadata");
  }
  return std::move(*key);
}

// How a key spec is recorded: files as absolute paths (the CLI may run elsewhere next time), URIs as
// given.
std::string RecordedSpec(const fs::path& spec) {
  return IsKeyUriSpec(spec.string()) ? spec.string() : Absolute(spec).string();
}

// True if `path` is DIR or inside it, after resolving symlinks and "..", for paths that may not
// exist yet.
bool IsWithin(const fs::path& path, const fs::path& dir) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(Absolute(path), ec);
  if (ec) p = Absolute(path);
  fs::path d = fs::weakly_canonical(Absolute(dir), ec);
  if (ec) d = Absolute(dir);
  auto pi = p.begin();
  for (auto di = d.begin(); di != d.end(); ++di, ++pi) {
    if (di->empty()) continue;  // a trailing separator
    if (pi == p.end() || *pi != *di) return false;
  }
  return true;
}

// Creates DIR (and missing parents) mode 0700, or checks that an existing DIR is a directory owned
// by this user that no one else can access: generated private keys go there.
Result<void> MakePrivateKeyDir(const fs::path& dir) {
  fs::path abs = Absolute(dir);
  if (abs.filename().empty()) abs = abs.parent_path();
  fs::path partial;
  for (const fs::path& part : abs) {
    partial /= part;
    struct stat st {};
    if (::stat(partial.c_str(), &st) == 0) continue;
    if (errno != ENOENT) return tl::unexpected(IoError("cannot stat", partial, errno));
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return tl::unexpected(IoError("cannot create", partial, errno));
    }
  }
  struct stat st {};
  if (::stat(abs.c_str(), &st) != 0) return tl::unexpected(IoError("cannot stat", abs, errno));
  if (!S_ISDIR(st.st_mode)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key directory " + abs.string() + " is not a directory");
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key directory " + abs.string() +
                         " must belong to you and be accessible by no one else (chmod 700)");
  }
  return {};
}

// Writes KEY as KEY_DIR/NAME.key (0600) and NAME.pub, or NAME.2.key, NAME.3.key, ... if the name is
// taken: an existing key is never overwritten. Returns the private key file.
Result<fs::path> WriteNewKeyPair(const crypto::PrivateKey& key, const fs::path& key_dir,
                                 const std::string& name) {
  constexpr int kMaxAttempts = 1000;
  for (int n = 1; n <= kMaxAttempts; ++n) {
    std::string candidate = n == 1 ? name : name + "." + std::to_string(n);
    auto wrote = crypto::WriteKeyPair(key, key_dir / candidate);
    if (wrote) return Absolute(key_dir / (candidate + ".key"));
    if (wrote.error().code() != ErrorCode::kAlreadyExists) return tl::unexpected(wrote.error());
  }
  return MakeError(ErrorCode::kAlreadyExists,
                   "no free name for a " + name + " key in " + key_dir.string());
}

Result<nlohmann::json> ReadJsonFile(const fs::path& path, uint64_t max_size) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, max_size));
  auto json = ParseJson(text, max_size);
  if (!json) return tl::unexpected(json.error().WithContext(path.string()));
  return std::move(*json);
}

template <typename T>
Result<Metadata<T>> ReadMetadataFile(const fs::path& path) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, T::kDefaultMaxSize));
  auto md = metadata::ParseMetadata<T>(text);
  if (!md) return tl::unexpected(md.error().WithContext(path.string()));
  return std::move(*md);
}

// The published versions of every role, read back from DIR/metadata (0 for a role not published).
struct Published {
  Metadata<Root> root;
  uint64_t timestamp_version = 0;
  uint64_t snapshot_version = 0;
  std::map<std::string, uint64_t> targets_versions;  // "targets" and delegated role names
};

Result<Published> ReadPublished(const fs::path& dir) {
  Published p;
  AIRLOCK_ASSIGN_OR_RETURN(p.root, ReadMetadataFile<Root>(MetadataDir(dir) / "root.json"));
  fs::path ts_path = MetadataDir(dir) / "timestamp.json";
  std::error_code ec;
  if (!fs::exists(ts_path, ec)) return p;
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Timestamp> ts, ReadMetadataFile<Timestamp>(ts_path));
  p.timestamp_version = ts.signed_data.version;
  p.snapshot_version = ts.signed_data.snapshot_meta.version;
  AIRLOCK_ASSIGN_OR_RETURN(
      Metadata<Snapshot> snap,
      ReadMetadataFile<Snapshot>(MetadataDir(dir) /
                                 (std::to_string(p.snapshot_version) + ".snapshot.json")));
  for (const auto& [name, meta] : snap.signed_data.meta) {
    if (name.size() > 5 && name.ends_with(".json")) {
      p.targets_versions[name.substr(0, name.size() - 5)] = meta.version;
    }
  }
  return p;
}

// Wraps a `targets` map (and delegations) in a signed-targets object so the metadata library parses
// and validates our staged state exactly as it would published metadata.
Result<Targets> ParseStagedTargets(const nlohmann::json& targets,
                                   const nlohmann::json* delegations) {
  nlohmann::json signed_json = {{"_type", "targets"},
                                {"spec_version", std::string(metadata::kSpecVersion)},
                                {"version", uint64_t{1}},
                                {"expires", "2100-01-01T00:00:00Z"},
                                {"targets", targets}};
  if (delegations != nullptr && !delegations->is_null()) signed_json["delegations"] = *delegations;
  auto parsed = Targets::FromJson(signed_json);
  if (!parsed) return tl::unexpected(parsed.error().WithContext("staged targets"));
  return std::move(*parsed);
}

nlohmann::json TargetsMapJson(const std::map<std::string, TargetFile>& targets) {
  Targets t;
  t.targets = targets;
  nlohmann::json j = t.ToJson();
  return j.contains("targets") ? j["targets"] : nlohmann::json::object();
}

nlohmann::json DelegationsJson(const Delegations& delegations) {
  Targets t;
  t.delegations = delegations;
  return t.ToJson().value("delegations", nlohmann::json());
}

// Signers for one role: the configured private keys the role's key list authorizes.
Result<std::vector<SignerPtr>> RoleSigners(const SignerLoader& loader, std::string_view role,
                                           const std::vector<std::string>& key_files,
                                           const std::vector<std::string>& keyids,
                                           uint64_t threshold) {
  std::vector<SignerPtr> signers;
  std::set<std::string> seen;
  for (const std::string& file : key_files) {
    AIRLOCK_ASSIGN_OR_RETURN(SignerPtr key, LoadSigningKey(loader, file));
    std::string id = key->KeyId();
    if (std::find(keyids.begin(), keyids.end(), id) == keyids.end()) {
      return MakeError(ErrorCode::kWrongKey, std::string(role) + ": key " + file + " (" + id +
                                                 ") is not one the metadata lists for this role");
    }
    if (seen.insert(id).second) signers.push_back(std::move(key));
  }
  if (signers.size() < threshold) {
    return MakeError(ErrorCode::kNotFound,
                     std::string(role) + ": " + std::to_string(signers.size()) + " of " +
                         std::to_string(threshold) + " required signing keys available");
  }
  return signers;
}

std::vector<crypto::Signer*> Pointers(const std::vector<SignerPtr>& keys) {
  std::vector<crypto::Signer*> out;
  for (const auto& k : keys) out.push_back(k.get());
  return out;
}

// Copies `src` to DIR/targets/<dirs>/<sha256>.<basename> (atomically, hashing on the way) and
// returns the target entry. The copy is hashed, not the source, so what is listed is exactly what
// is served.
Result<TargetFile> CopyTarget(const fs::path& dir, const fs::path& src, const std::string& name,
                              bool* created) {
  uint64_t size = 0;
  AIRLOCK_ASSIGN_OR_RETURN(UniqueFd in, OpenForRead(src, &size));
  fs::path incoming = StateDir(dir) / "incoming";
  AIRLOCK_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(incoming, 0644));
  crypto::Hasher hasher = crypto::Hasher::Sha256();
  Bytes buf(1 << 20);
  uint64_t offset = 0;
  while (true) {
    AIRLOCK_ASSIGN_OR_RETURN(size_t n, PreadSome(in.get(), offset, std::span<uint8_t>(buf)));
    if (n == 0) break;
    ByteSpan chunk(buf.data(), n);
    hasher.Update(chunk);
    AIRLOCK_TRY(out.Write(chunk));
    offset += n;
  }
  AIRLOCK_TRY(out.Commit());
  std::string sha256 = HexEncode(hasher.Finish());
  fs::path final_path = TargetsDir(dir) / metadata::ConsistentTargetPath(name, sha256);
  std::error_code ec;
  fs::create_directories(final_path.parent_path(), ec);
  if (ec) {
    fs::remove(incoming, ec);
    return MakeError(ErrorCode::kIo, "cannot create " + final_path.parent_path().string());
  }
  *created = !fs::exists(final_path, ec);
  if (::rename(incoming.c_str(), final_path.c_str()) != 0) {
    int err = errno;
    fs::remove(incoming, ec);
    return tl::unexpected(IoError("cannot rename into", final_path, err));
  }
  TargetFile file;
  file.length = offset;
  file.hashes["sha256"] = sha256;
  return file;
}

// Checks the fields of `custom` that docs/design.md §3 gives a meaning to.
Result<void> ValidateCustom(const nlohmann::json& custom) {
  if (custom.contains("version")) {
    if (!custom["version"].is_string()) {
      return MakeError(ErrorCode::kInvalidArgument, "custom.version must be a string");
    }
    auto v = Semver::Parse(custom["version"].get<std::string>());
    if (!v)
      return tl::unexpected(
          Error(ErrorCode::kInvalidArgument, "custom.version: " + v.error().message()));
  }
  if (custom.contains("channels")) {
    const auto& c = custom["channels"];
    bool ok = c.is_array() && std::all_of(c.begin(), c.end(), [](const nlohmann::json& e) {
                return e.is_string() && !e.get<std::string>().empty();
              });
    if (!ok) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "custom.channels must be an array of non-empty strings");
    }
  }
  if (custom.contains("security_floor") && !custom["security_floor"].is_number_unsigned()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "custom.security_floor must be a non-negative integer");
  }
  if (!CanonicalJson(custom)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "custom must not hold floating-point numbers (TUF canonical JSON has none)");
  }
  return {};
}

// Builds `custom` from --custom and, for a sealed bundle, its header.
Result<nlohmann::json> BuildCustom(const fs::path& file, const std::string& custom_json,
                                   const std::string& app_id) {
  nlohmann::json custom = nlohmann::json::object();
  if (!custom_json.empty()) {
    auto parsed = ParseJson(custom_json, kMaxCustomSize, kMaxCustomDepth);
    if (!parsed) {
      return tl::unexpected(
          Error(ErrorCode::kInvalidArgument, "--custom: " + parsed.error().message()));
    }
    if (!parsed->is_object()) {
      return MakeError(ErrorCode::kInvalidArgument, "--custom must be a JSON object");
    }
    custom = std::move(*parsed);
  }
  if (file.extension() == ".alb") {
    // Unverified read of the header: the repository signs what it lists, and the device verifies
    // the bundle's own signature anyway; this only fills in what the header already says.
    auto info = bundle::InspectBundle(file, nullptr);
    if (!info) return tl::unexpected(info.error().WithContext("bundle " + file.string()));
    const bundle::BundleHeader& h = info->header;
    if (h.app_id != app_id) {
      return MakeError(ErrorCode::kInvalidArgument, "bundle " + file.string() + " is for app " +
                                                        h.app_id + ", this repository is for " +
                                                        app_id);
    }
    for (const auto& [field, value] :
         {std::pair{"app_id", h.app_id}, std::pair{"version", h.version}}) {
      if (custom.contains(field) && custom[field] != value) {
        return MakeError(ErrorCode::kInvalidArgument, std::string("--custom ") + field +
                                                          " conflicts with the bundle's " + field +
                                                          " (" + value + ")");
      }
      custom[field] = value;
    }
    if (!custom.contains("format")) custom["format"] = "airlock-bundle";
  }
  AIRLOCK_TRY(ValidateCustom(custom));
  return custom;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------

Result<int64_t> ParseDuration(std::string_view text) {
  auto bad = [&] {
    return MakeError(ErrorCode::kInvalidArgument,
                     "bad duration '" + std::string(text) +
                         "' (want a positive number and a unit: s, m, h, d, w or y, e.g. 30d)");
  };
  if (text.size() < 2 || text.size() > 12) return bad();
  int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = kDay;
      break;
    case 'w':
      unit = 7 * kDay;
      break;
    case 'y':
      unit = 365 * kDay;
      break;
    default:
      return bad();
  }
  int64_t n = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return bad();
    n = n * 10 + (c - '0');
    if (n > 100 * 365 * kDay) return bad();
  }
  if (n == 0 || n * unit > 100 * 365 * kDay) return bad();
  return n * unit;
}

Result<void> ValidateTargetName(std::string_view name) {
  auto bad = [&](const std::string& why) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "bad target name '" + std::string(name) + "': " + why);
  };
  if (name.empty()) return bad("empty");
  if (name.size() > kMaxTargetNameLength)
    return bad("longer than " + std::to_string(kMaxTargetNameLength));
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    std::string_view part =
        name.substr(start, slash == std::string_view::npos ? name.npos : slash - start);
    if (part.empty()) return bad("empty path component (leading, trailing or double '/')");
    if (part.front() == '.') return bad("a path component starts with '.'");
    for (char c : part) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f || c == '\\') return bad("control character or backslash");
    }
    if (slash == std::string_view::npos) {
      if (part.size() > kMaxBasenameLength) {
        return bad("file name longer than " + std::to_string(kMaxBasenameLength));
      }
      break;
    }
    start = slash + 1;
  }
  return {};
}

Result<void> ValidateRoleName(std::string_view name) {
  auto bad = [&](const std::string& why) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "bad role name '" + std::string(name) + "': " + why);
  };
  if (name.empty() || name.size() > kMaxRoleNameLength) {
    return bad("1 to " + std::to_string(kMaxRoleNameLength) + " characters");
  }
  if (name.front() == '.') return bad("starts with '.'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return bad("only letters, digits, '.', '_' and '-'");
  }
  if (metadata::IsTopLevelRoleName(name) || name == kDelegatedExpiryKey) {
    return bad("reserved name");
  }
  return {};
}

// ---------------------------------------------------------------------------------------------------
// State

Result<void> Repository::LoadState() {
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j, ReadJsonFile(StateFile(dir_), kMaxStateSize));
  auto malformed = [&](const std::string& why) {
    return MakeError(ErrorCode::kMalformed, StateFile(dir_).string() + ": " + why);
  };
  if (!j.is_object() || j.value("format", "") != kStateFormat)
    return malformed("not an Airlock repository state file");
  if (j.value("format_version", uint64_t{0}) != kStateFormatVersion) {
    return MakeError(ErrorCode::kUnsupported,
                     StateFile(dir_).string() + ": unsupported format_version");
  }
  auto app = GetString(j, "app_id");
  if (!app) return malformed(app.error().message());
  app_id_ = *app;
  key_files_.clear();
  if (j.contains("keys")) {
    if (!j["keys"].is_object()) return malformed("keys must be an object");
    for (const auto& [role, files] : j["keys"].items()) {
      if (!files.is_array()) return malformed("keys." + role + " must be an array");
      for (const auto& f : files) {
        if (!f.is_string()) return malformed("keys." + role + " must hold file names");
        key_files_[role].push_back(f.get<std::string>());
      }
    }
  }
  expires_in_ = DefaultExpiries();
  if (j.contains("expires_in")) {
    if (!j["expires_in"].is_object()) return malformed("expires_in must be an object");
    for (const auto& [role, value] : j["expires_in"].items()) {
      if (!value.is_string()) return malformed("expires_in." + role + " must be a duration string");
      auto d = ParseDuration(value.get<std::string>());
      if (!d) return malformed("expires_in." + role + ": " + d.error().message());
      expires_in_[role] = *d;
    }
  }
  const nlohmann::json* delegations = j.contains("delegations") ? &j["delegations"] : nullptr;
  AIRLOCK_ASSIGN_OR_RETURN(
      Targets staged,
      ParseStagedTargets(j.value("targets", nlohmann::json::object()), delegations));
  targets_ = std::move(staged.targets);
  delegations_ = std::move(staged.delegations);
  delegated_targets_.clear();
  if (j.contains("delegated_targets")) {
    if (!j["delegated_targets"].is_object())
      return malformed("delegated_targets must be an object");
    for (const auto& [role, targets] : j["delegated_targets"].items()) {
      if (!delegations_ || delegations_->FindRole(role) == nullptr) {
        return malformed("delegated_targets." + role + ": no such delegated role");
      }
      AIRLOCK_ASSIGN_OR_RETURN(Targets t, ParseStagedTargets(targets, nullptr));
      delegated_targets_[role] = std::move(t.targets);
    }
  }
  return {};
}

Result<void> Repository::SaveState() const {
  nlohmann::json keys = nlohmann::json::object();
  for (const auto& [role, files] : key_files_) keys[role] = files;
  nlohmann::json expires = nlohmann::json::object();
  for (const auto& [role, seconds] : expires_in_) expires[role] = FormatDuration(seconds);
  nlohmann::json delegated = nlohmann::json::object();
  for (const auto& [role, targets] : delegated_targets_) delegated[role] = TargetsMapJson(targets);
  nlohmann::json j = {{"format", kStateFormat},
                      {"format_version", kStateFormatVersion},
                      {"app_id", app_id_},
                      {"keys", keys},
                      {"expires_in", expires},
                      {"targets", TargetsMapJson(targets_)},
                      {"delegated_targets", delegated}};
  if (delegations_) j["delegations"] = DelegationsJson(*delegations_);
  std::string text = j.dump(2) + "\n";
  return WriteFileAtomic(StateFile(dir_), AsBytes(text), 0600);
}

// ---------------------------------------------------------------------------------------------------
// Key locations

bool IsKeyUriSpec(std::string_view spec) {
  return spec.starts_with("file:") || spec.starts_with("pkcs11:");
}

Result<std::unique_ptr<crypto::Signer>> LoadFileSigner(const std::string& spec) {
  if (IsKeyUriSpec(spec)) {
    return MakeError(ErrorCode::kUnsupported,
                     "key URIs need a key store; this caller can only load PEM key files");
  }
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::FromFile(spec));
  return std::unique_ptr<crypto::Signer>(
      std::make_unique<crypto::PrivateKeySigner>(std::move(key)));
}

Result<fs::path> DefaultKeyDir(std::string_view app_id) {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v != nullptr ? std::string(v) : std::string();
  };
  if (std::string dir = env("AIRLOCK_KEY_DIR"); !dir.empty()) return fs::path(dir);
  const fs::path suffix = fs::path("airlock") / "keys" / std::string(app_id);
  if (std::string xdg = env("XDG_CONFIG_HOME"); !xdg.empty() && fs::path(xdg).is_absolute()) {
    return fs::path(xdg) / suffix;
  }
  if (std::string home = env("HOME"); !home.empty()) return fs::path(home) / ".config" / suffix;
  return MakeError(ErrorCode::kNotFound,
                   "cannot tell where to put generated keys: set AIRLOCK_KEY_DIR (or HOME), or "
                   "pass every role's keys");
}

std::vector<fs::path> FindPrivateKeyFiles(const fs::path& dir) {
  constexpr size_t kSniffSize = 4096;
  std::vector<fs::path> found;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    const fs::path& p = it->path();
    bool key = p.extension() == ".key";
    if (!key) {
      std::ifstream in(p, std::ios::binary);
      std::string head(kSniffSize, '\0');
      in.read(head.data(), static_cast<std::streamsize>(head.size()));
      head.resize(static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0)));
      key = head.find("PRIVATE KEY-----") != std::string::npos;
    }
    if (key) found.push_back(p);
  }
  std::sort(found.begin(), found.end());
  return found;
}

// ---------------------------------------------------------------------------------------------------
// Init / Open

Result<InitResult> Repository::Init(const fs::path& dir, const InitOptions& options) {
  AIRLOCK_TRY(bundle::ValidateAppId(options.app_id));
  // Validate and load everything before touching the disk.
  std::map<std::string, std::vector<SignerPtr>> keys;
  std::map<std::string, std::vector<std::string>> key_files;
  for (const auto& [role, files] : options.key_files) {
    if (!metadata::IsTopLevelRoleName(role)) {
      return MakeError(ErrorCode::kInvalidArgument, "not a top-level role: " + role);
    }
    std::set<std::string> ids;
    for (const fs::path& f : files) {
      AIRLOCK_ASSIGN_OR_RETURN(SignerPtr key, LoadSigningKey(options.signer_loader, f.string()));
      if (!ids.insert(key->KeyId()).second) {
        return MakeError(
            ErrorCode::kInvalidArgument,
            role + ": key " + f.string() + " is given twice (thresholds count distinct keys)");
      }
      keys[role].push_back(std::move(key));
      key_files[role].push_back(RecordedSpec(f));
    }
  }
  if (keys.size() > 4 || std::any_of(keys.begin(), keys.end(), [](const auto& kv) {
        return kv.second.size() > kMaxKeysPerRole;
      })) {
    return MakeError(ErrorCode::kInvalidArgument, "too many keys for a role");
  }
  const size_t given_root = keys.count("root") ? keys["root"].size() : 0;
  if (options.root_threshold < 1 || options.root_threshold > kMaxKeysPerRole ||
      (given_root > 0 && options.root_threshold > given_root)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "root threshold " + std::to_string(options.root_threshold) + " needs 1.." +
                         std::to_string(given_root > 0 ? given_root : kMaxKeysPerRole) +
                         " root keys");
  }
  // Generated keys go to a per-user key directory, never inside DIR (which is served).
  const bool generates =
      std::any_of(std::begin(kTopLevelRoles), std::end(kTopLevelRoles),
                  [&](std::string_view role) { return keys.count(std::string(role)) == 0; });
  fs::path key_dir;
  if (generates) {
    if (!options.key_dir.empty()) {
      key_dir = options.key_dir;
    } else {
      AIRLOCK_ASSIGN_OR_RETURN(key_dir, DefaultKeyDir(options.app_id));
    }
    key_dir = Absolute(key_dir);
    if (IsWithin(key_dir, dir)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "key directory " + key_dir.string() + " is inside the repository " +
                           dir.string() + ", which is meant to be served; choose another");
    }
  }
  std::error_code ec;
  const bool dir_existed = fs::exists(dir, ec);
  if (dir_existed) {
    if (!fs::is_directory(dir, ec)) {
      return MakeError(ErrorCode::kAlreadyExists, dir.string() + " exists and is not a directory");
    }
    if (fs::exists(StateFile(dir), ec)) {
      return MakeError(ErrorCode::kAlreadyExists, dir.string() + " already holds a repository");
    }
    if (!fs::is_empty(dir, ec)) {
      return MakeError(ErrorCode::kAlreadyExists, dir.string() + " is not empty");
    }
  }

  // From here on, undo everything on failure.
  struct Cleanup {
    fs::path dir;
    bool dir_existed;
    bool armed = true;
    std::vector<fs::path> generated;  // key files written, removed with their .pub
    ~Cleanup() {
      if (!armed) return;
      std::error_code ec;
      for (const fs::path& key : generated) {
        fs::remove(key, ec);
        fs::remove(fs::path(key).replace_extension(".pub"), ec);
      }
      if (dir_existed) {
        for (const char* sub : {".airlock", "metadata", "targets"}) fs::remove_all(dir / sub, ec);
      } else {
        fs::remove_all(dir, ec);
      }
    }
  } cleanup{dir, dir_existed};

  fs::create_directories(dir, ec);
  if (ec) return MakeError(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
  if (::mkdir(StateDir(dir).c_str(), 0700) != 0) {
    return tl::unexpected(IoError("cannot create", StateDir(dir), errno));
  }
  for (const fs::path& sub : {MetadataDir(dir), TargetsDir(dir)}) {
    fs::create_directories(sub, ec);
    if (ec) return MakeError(ErrorCode::kIo, "cannot create " + sub.string() + ": " + ec.message());
  }

  Repository repo;
  repo.dir_ = dir;
  AIRLOCK_ASSIGN_OR_RETURN(repo.lock_, LockRepository(dir));
  repo.app_id_ = options.app_id;
  repo.expires_in_ = DefaultExpiries();
  repo.signer_loader_ = options.signer_loader;

  InitResult result;
  for (std::string_view role_view : kTopLevelRoles) {
    std::string role(role_view);
    if (!keys[role].empty()) continue;
    if (result.key_dir.empty()) {
      AIRLOCK_TRY(MakePrivateKeyDir(key_dir));
      result.key_dir = key_dir;
    }
    const uint64_t count = role == "root" ? options.root_threshold : 1;
    for (uint64_t i = 1; i <= count; ++i) {
      std::string name = count == 1 ? role : role + "-" + std::to_string(i);
      AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey key,
                               crypto::PrivateKey::Generate(crypto::KeyType::kEd25519));
      AIRLOCK_ASSIGN_OR_RETURN(fs::path file, WriteNewKeyPair(key, key_dir, name));
      cleanup.generated.push_back(file);
      result.generated_keys.push_back(file);
      key_files[role].push_back(file.string());
      keys[role].push_back(std::make_unique<crypto::PrivateKeySigner>(std::move(key)));
    }
  }
  repo.key_files_ = key_files;

  Root root;
  root.version = 1;
  root.expires = NowOr(options.now) + repo.expires_in_["root"];
  root.consistent_snapshot = true;
  for (std::string_view role : kTopLevelRoles) {
    for (const SignerPtr& key : keys[std::string(role)]) {
      AIRLOCK_TRY(root.AddKey(role, key->Public()));
      result.key_ids[std::string(role)].push_back(key->KeyId());
    }
    root.roles[std::string(role)].threshold = role == "root" ? options.root_threshold : 1;
  }
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Root> root_md,
                           metadata::SignMetadata(root, Pointers(keys["root"])));
  AIRLOCK_TRY(root.VerifyDelegate("root", root_md));
  AIRLOCK_ASSIGN_OR_RETURN(std::string root_bytes, root_md.ToBytes());
  AIRLOCK_TRY(WriteFileAtomic(MetadataDir(dir) / "1.root.json", AsBytes(root_bytes)));
  AIRLOCK_TRY(WriteFileAtomic(MetadataDir(dir) / "root.json", AsBytes(root_bytes)));

  PublishOptions publish;
  publish.now = options.now;
  AIRLOCK_TRY(repo.PublishInternal(publish, std::nullopt));
  AIRLOCK_TRY(repo.SaveState());
  cleanup.armed = false;
  return result;
}

Result<Repository> Repository::Open(const fs::path& dir, SignerLoader signer_loader) {
  std::error_code ec;
  if (!fs::exists(StateFile(dir), ec)) {
    return MakeError(ErrorCode::kNotFound, "no Airlock repository in " + dir.string() + " (no " +
                                               StateFile(dir).string() +
                                               "; see `airlock repo init`)");
  }
  Repository repo;
  repo.dir_ = dir;
  repo.signer_loader_ = std::move(signer_loader);
  AIRLOCK_ASSIGN_OR_RETURN(repo.lock_, LockRepository(dir));
  AIRLOCK_TRY(repo.LoadState());
  return repo;
}

std::vector<std::string> Repository::KeySpecs(const std::string& role) const {
  auto it = key_files_.find(role);
  return it != key_files_.end() ? it->second : std::vector<std::string>{};
}

Result<SignerPtr> Repository::LoadSigner(const std::string& spec) const {
  return LoadSigningKey(signer_loader_, spec);
}

std::vector<TargetInfo> Repository::StagedTargets() const {
  std::vector<TargetInfo> out;
  for (const auto& [name, file] : targets_) out.push_back({name, "targets", file});
  for (const auto& [role, targets] : delegated_targets_) {
    for (const auto& [name, file] : targets) out.push_back({name, role, file});
  }
  std::sort(out.begin(), out.end(), [](const TargetInfo& a, const TargetInfo& b) {
    return std::tie(a.name, a.role) < std::tie(b.name, b.role);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Targets

Result<AddTargetResult> Repository::AddTarget(const fs::path& file,
                                              const AddTargetOptions& options) {
  AddTargetResult result;
  result.name = options.name.empty() ? file.filename().string() : options.name;
  AIRLOCK_TRY(ValidateTargetName(result.name));
  std::map<std::string, TargetFile>* staged = &targets_;
  result.role = "targets";
  if (!options.role.empty() && options.role != "targets") {
    const DelegatedRole* role = delegations_ ? delegations_->FindRole(options.role) : nullptr;
    if (role == nullptr) {
      return MakeError(ErrorCode::kNotFound,
                       "no delegated role " + options.role + " (see `airlock repo delegate`)");
    }
    if (!role->IsDelegatedPath(result.name)) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          "target " + result.name + " is outside the paths delegated to " + options.role);
    }
    staged = &delegated_targets_[options.role];
    result.role = options.role;
  }
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json custom, BuildCustom(file, options.custom_json, app_id_));
  bool created = false;
  AIRLOCK_ASSIGN_OR_RETURN(result.file, CopyTarget(dir_, file, result.name, &created));
  if (!custom.empty()) result.file.custom = custom;
  result.replaced = staged->count(result.name) > 0;
  std::optional<TargetFile> previous;
  if (result.replaced) previous = (*staged)[result.name];
  (*staged)[result.name] = result.file;
  if (auto saved = SaveState(); !saved) {
    // Undo: the in-memory state and the copied file (if it is new and nothing else lists it).
    if (previous) {
      (*staged)[result.name] = *previous;
    } else {
      staged->erase(result.name);
    }
    if (created) {
      std::error_code ec;
      fs::remove(TargetsDir(dir_) /
                     metadata::ConsistentTargetPath(result.name, result.file.hashes["sha256"]),
                 ec);
    }
    return tl::unexpected(saved.error());
  }
  return result;
}

Result<std::string> Repository::RemoveTarget(std::string_view name) {
  std::string key(name);
  std::string role;
  std::map<std::string, TargetFile>* holder = nullptr;
  if (targets_.count(key)) {
    holder = &targets_;
    role = "targets";
  } else {
    for (auto& [r, targets] : delegated_targets_) {
      if (targets.count(key)) {
        holder = &targets;
        role = r;
        break;
      }
    }
  }
  if (holder == nullptr) return MakeError(ErrorCode::kNotFound, "no target named " + key);
  TargetFile previous = (*holder)[key];
  holder->erase(key);
  if (auto saved = SaveState(); !saved) {
    (*holder)[key] = previous;
    return tl::unexpected(saved.error());
  }
  return role;
}

// ---------------------------------------------------------------------------------------------------
// Delegations

Result<DelegateResult> Repository::Delegate(const DelegateOptions& options) {
  AIRLOCK_TRY(ValidateRoleName(options.role));
  if (options.paths.empty() || options.paths.size() > 1000) {
    return MakeError(ErrorCode::kInvalidArgument, "a delegation needs 1 to 1000 --paths patterns");
  }
  for (const std::string& p : options.paths) {
    if (p.empty() || p.size() > kMaxTargetNameLength) {
      return MakeError(ErrorCode::kInvalidArgument, "bad --paths pattern '" + p + "'");
    }
  }
  if (options.public_keys.empty() || options.public_keys.size() > kMaxKeysPerRole) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a delegation needs 1 to " + std::to_string(kMaxKeysPerRole) + " keys");
  }
  // Public keys, and the private key for each (an explicit --signing-key, a K.key given directly,
  // or K.key beside K.pub).
  std::map<std::string, fs::path> explicit_signers;  // key id -> file
  for (const fs::path& f : options.signing_keys) {
    AIRLOCK_ASSIGN_OR_RETURN(SignerPtr key, LoadSigner(f.string()));
    explicit_signers.emplace(key->KeyId(), f);
  }
  std::vector<crypto::PublicKey> publics;
  std::vector<std::string> signer_files;
  std::set<std::string> ids;
  for (const fs::path& f : options.public_keys) {
    std::optional<crypto::PublicKey> pub;
    fs::path private_file;
    if (f.extension() == ".key" || IsKeyUriSpec(f.string())) {
      AIRLOCK_ASSIGN_OR_RETURN(SignerPtr key, LoadSigner(f.string()));
      pub = key->Public();
      private_file = f;
    } else {
      auto loaded = crypto::PublicKey::FromFile(f);
      if (!loaded) return tl::unexpected(loaded.error().WithContext("key " + f.string()));
      pub = std::move(*loaded);
    }
    if (pub->type() == crypto::KeyType::kX25519) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "key " + f.string() + " is an x25519 key, which cannot sign");
    }
    std::string id = pub->KeyId();
    if (!ids.insert(id).second) {
      return MakeError(ErrorCode::kInvalidArgument, "key " + f.string() + " is given twice");
    }
    if (private_file.empty()) {
      auto k = explicit_signers.find(id);
      if (k != explicit_signers.end()) private_file = k->second;
    }
    if (private_file.empty()) {
      fs::path sibling = f;
      sibling.replace_extension(".key");
      std::error_code ec;
      if (fs::exists(sibling, ec)) {
        AIRLOCK_ASSIGN_OR_RETURN(SignerPtr key, LoadSigner(sibling.string()));
        if (key->KeyId() != id) {
          return MakeError(ErrorCode::kWrongKey,
                           sibling.string() + " is not the private key of " + f.string());
        }
        private_file = sibling;
      }
    }
    if (!private_file.empty()) signer_files.push_back(RecordedSpec(private_file));
    publics.push_back(std::move(*pub));
  }
  for (const auto& [id, file] : explicit_signers) {
    if (!ids.count(id)) {
      return MakeError(ErrorCode::kWrongKey,
                       "--signing-key " + file.string() + " is not one of the delegation's keys");
    }
  }
  if (options.threshold < 1 || options.threshold > publics.size()) {
    return MakeError(ErrorCode::kInvalidArgument, "threshold " + std::to_string(options.threshold) +
                                                      " needs 1.." +
                                                      std::to_string(publics.size()) + " keys");
  }
  if (signer_files.size() < options.threshold) {
    return MakeError(
        ErrorCode::kNotFound,
        options.role + ": " + std::to_string(signer_files.size()) + " of " +
            std::to_string(options.threshold) +
            " private keys found; the repository signs delegated roles itself, so keep "
            "K.key beside K.pub or pass --signing-key");
  }

  Delegations delegations = delegations_.value_or(Delegations{});
  DelegatedRole role;
  role.name = options.role;
  role.threshold = options.threshold;
  role.terminating = options.terminating;
  role.paths = options.paths;
  DelegateResult result;
  auto it = std::find_if(delegations.roles.begin(), delegations.roles.end(),
                         [&](const DelegatedRole& r) { return r.name == options.role; });
  if (it != delegations.roles.end()) {
    *it = role;
    result.replaced = true;
  } else {
    delegations.roles.push_back(role);
  }
  for (const crypto::PublicKey& pub : publics) {
    AIRLOCK_TRY(delegations.AddKey(options.role, pub));
    result.key_ids.push_back(pub.KeyId());
  }
  // Drop keys no role lists any more.
  std::set<std::string> used;
  for (const DelegatedRole& r : delegations.roles) used.insert(r.keyids.begin(), r.keyids.end());
  for (auto k = delegations.keys.begin(); k != delegations.keys.end();) {
    k = used.count(k->first) ? std::next(k) : delegations.keys.erase(k);
  }

  auto saved_delegations = delegations_;
  auto saved_files = key_files_;
  delegations_ = std::move(delegations);
  key_files_[options.role] = signer_files;
  if (auto saved = SaveState(); !saved) {
    delegations_ = std::move(saved_delegations);
    key_files_ = std::move(saved_files);
    return tl::unexpected(saved.error());
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Publish

Result<PublishResult> Repository::Publish(const PublishOptions& options) {
  return PublishInternal(options, std::nullopt);
}

Result<PublishResult> Repository::PublishInternal(const PublishOptions& options,
                                                  const std::optional<Metadata<Root>>& new_root) {
  const std::time_t now = NowOr(options.now);
  std::map<std::string, int64_t> expiry = expires_in_;
  for (const auto& [role, seconds] : options.expires_in) {
    bool known = metadata::IsTopLevelRoleName(role) ||
                 (delegations_ && delegations_->FindRole(role) != nullptr);
    if (!known)
      return MakeError(ErrorCode::kInvalidArgument, "--expires-in: no role named " + role);
    if (seconds <= 0)
      return MakeError(ErrorCode::kInvalidArgument, "--expires-in: duration must be positive");
    expiry[role] = seconds;
  }
  auto expiry_for = [&](const std::string& role) {
    auto it = expiry.find(role);
    if (it != expiry.end()) return it->second;
    return expiry[std::string(kDelegatedExpiryKey)];
  };
  AIRLOCK_ASSIGN_OR_RETURN(Published published, ReadPublished(dir_));

  // Every staged target must still be in DIR/targets/ (someone may have cleaned up by hand).
  for (const TargetInfo& t : StagedTargets()) {
    fs::path p =
        TargetsDir(dir_) / metadata::ConsistentTargetPath(t.name, t.file.hashes.at("sha256"));
    std::error_code ec;
    auto size = fs::file_size(p, ec);
    if (ec || size != t.file.length) {
      return MakeError(
          ErrorCode::kNotFound,
          "target file " + p.string() + " is missing or has the wrong size; add the target again");
    }
  }

  PublishResult result;
  // Files to write, in order: versioned metadata first, then the root, then timestamp.json.
  std::vector<std::pair<fs::path, std::string>> writes;

  // Root: the rotated one, a re-signed one (new expiry), or the current one.
  std::optional<Metadata<Root>> root_md = new_root;
  if (!root_md && options.expires_in.count("root")) {
    Root next = published.root.signed_data;
    next.version += 1;
    next.expires = now + expiry_for("root");
    const metadata::Role& role = next.roles.at("root");
    AIRLOCK_ASSIGN_OR_RETURN(auto signers, RoleSigners(signer_loader_, "root", key_files_["root"],
                                                       role.keyids, role.threshold));
    AIRLOCK_ASSIGN_OR_RETURN(Metadata<Root> md, metadata::SignMetadata(next, Pointers(signers)));
    root_md = std::move(md);
  }
  if (root_md) AIRLOCK_TRY_CTX(metadata::VerifyRootRotation(published.root, *root_md), "new root");
  const Metadata<Root>& root = root_md ? *root_md : published.root;
  const Root& r = root.signed_data;
  result.versions["root"] = r.version;
  result.expires["root"] = r.expires;

  auto top_signers = [&](const std::string& role) -> Result<std::vector<SignerPtr>> {
    auto it = r.roles.find(role);
    if (it == r.roles.end())
      return MakeError(ErrorCode::kMalformed, "root lists no " + role + " role");
    return RoleSigners(signer_loader_, role, key_files_[role], it->second.keyids,
                       it->second.threshold);
  };

  // Delegated roles.
  Snapshot snapshot;
  std::map<std::string, Metadata<Targets>> delegated_md;
  if (delegations_) {
    for (const DelegatedRole& role : delegations_->roles) {
      Targets t;
      t.version =
          (published.targets_versions.count(role.name) ? published.targets_versions[role.name]
                                                       : 0) +
          1;
      t.expires = now + expiry_for(role.name);
      auto staged = delegated_targets_.find(role.name);
      if (staged != delegated_targets_.end()) t.targets = staged->second;
      AIRLOCK_ASSIGN_OR_RETURN(
          auto signers, RoleSigners(signer_loader_, role.name, key_files_[role.name], role.keyids,
                                    role.threshold));
      AIRLOCK_ASSIGN_OR_RETURN(Metadata<Targets> md, metadata::SignMetadata(t, Pointers(signers)));
      AIRLOCK_ASSIGN_OR_RETURN(std::string bytes, md.ToBytes());
      writes.emplace_back(
          MetadataDir(dir_) / (std::to_string(t.version) + "." + role.name + ".json"), bytes);
      snapshot.meta[role.name + ".json"].version = t.version;
      result.versions[role.name] = t.version;
      result.expires[role.name] = t.expires;
      delegated_md.emplace(role.name, std::move(md));
    }
  }

  // Top-level targets.
  Targets targets;
  targets.version =
      (published.targets_versions.count("targets") ? published.targets_versions["targets"] : 0) + 1;
  targets.expires = now + expiry_for("targets");
  targets.targets = targets_;
  if (delegations_ && !delegations_->roles.empty()) targets.delegations = delegations_;
  AIRLOCK_ASSIGN_OR_RETURN(auto targets_signers, top_signers("targets"));
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Targets> targets_md,
                           metadata::SignMetadata(targets, Pointers(targets_signers)));
  AIRLOCK_ASSIGN_OR_RETURN(std::string targets_bytes, targets_md.ToBytes());
  writes.emplace_back(MetadataDir(dir_) / (std::to_string(targets.version) + ".targets.json"),
                      targets_bytes);
  snapshot.meta["targets.json"].version = targets.version;
  result.versions["targets"] = targets.version;
  result.expires["targets"] = targets.expires;

  // Snapshot.
  snapshot.version = published.snapshot_version + 1;
  snapshot.expires = now + expiry_for("snapshot");
  AIRLOCK_ASSIGN_OR_RETURN(auto snapshot_signers, top_signers("snapshot"));
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Snapshot> snapshot_md,
                           metadata::SignMetadata(snapshot, Pointers(snapshot_signers)));
  AIRLOCK_ASSIGN_OR_RETURN(std::string snapshot_bytes, snapshot_md.ToBytes());
  writes.emplace_back(MetadataDir(dir_) / (std::to_string(snapshot.version) + ".snapshot.json"),
                      snapshot_bytes);
  result.versions["snapshot"] = snapshot.version;
  result.expires["snapshot"] = snapshot.expires;

  // Timestamp, listing the snapshot's length and hash too (python-tuf lists only the version; the
  // hash pins the exact snapshot bytes for clients that check it).
  Timestamp timestamp;
  timestamp.version = published.timestamp_version + 1;
  timestamp.expires = now + expiry_for("timestamp");
  timestamp.snapshot_meta.version = snapshot.version;
  timestamp.snapshot_meta.length = snapshot_bytes.size();
  timestamp.snapshot_meta.hashes =
      metadata::Hashes{{"sha256", HexEncode(crypto::Sha256(AsBytes(snapshot_bytes)))}};
  AIRLOCK_ASSIGN_OR_RETURN(auto timestamp_signers, top_signers("timestamp"));
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Timestamp> timestamp_md,
                           metadata::SignMetadata(timestamp, Pointers(timestamp_signers)));
  AIRLOCK_ASSIGN_OR_RETURN(std::string timestamp_bytes, timestamp_md.ToBytes());
  result.versions["timestamp"] = timestamp.version;
  result.expires["timestamp"] = timestamp.expires;

  // Check what we are about to publish as a client would, before writing anything.
  AIRLOCK_TRY_CTX(r.VerifyDelegate("timestamp", timestamp_md), "publish");
  AIRLOCK_TRY_CTX(r.VerifyDelegate("snapshot", snapshot_md), "publish");
  AIRLOCK_TRY_CTX(r.VerifyDelegate("targets", targets_md), "publish");
  for (const auto& [name, md] : delegated_md) {
    AIRLOCK_TRY_CTX(targets.VerifyDelegate(name, md), "publish");
  }

  if (root_md) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string root_bytes, root_md->ToBytes());
    writes.emplace_back(MetadataDir(dir_) / (std::to_string(r.version) + ".root.json"), root_bytes);
    writes.emplace_back(MetadataDir(dir_) / "root.json", root_bytes);
  }
  writes.emplace_back(MetadataDir(dir_) / "timestamp.json", timestamp_bytes);
  for (const auto& [path, bytes] : writes) AIRLOCK_TRY(WriteFileAtomic(path, AsBytes(bytes)));
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Rotate

Result<RotateResult> Repository::Rotate(const RotateOptions& options) {
  if (!metadata::IsTopLevelRoleName(options.role)) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        "--role must be root, targets, snapshot or timestamp (re-run `repo delegate` to "
        "change a delegated role's keys)");
  }
  if (options.new_keys.empty() || options.new_keys.size() > kMaxKeysPerRole) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "rotate needs 1 to " + std::to_string(kMaxKeysPerRole) + " --new-key files");
  }
  std::vector<SignerPtr> new_keys;
  std::vector<std::string> new_files;
  std::set<std::string> new_ids;
  for (const fs::path& f : options.new_keys) {
    AIRLOCK_ASSIGN_OR_RETURN(SignerPtr key, LoadSigner(f.string()));
    if (!new_ids.insert(key->KeyId()).second) {
      return MakeError(ErrorCode::kInvalidArgument, "key " + f.string() + " is given twice");
    }
    new_keys.push_back(std::move(key));
    new_files.push_back(RecordedSpec(f));
  }
  AIRLOCK_ASSIGN_OR_RETURN(Published published, ReadPublished(dir_));
  const Metadata<Root>& current = published.root;
  const metadata::Role& old_role = current.signed_data.roles.at(options.role);
  const uint64_t threshold = options.threshold.value_or(old_role.threshold);
  if (threshold < 1 || threshold > new_keys.size()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "threshold " + std::to_string(threshold) + " needs 1.." +
                         std::to_string(new_keys.size()) + " new keys");
  }

  RotateResult result;
  Root next = current.signed_data;
  next.version += 1;
  next.expires = NowOr(options.now) + expires_in_["root"];
  for (const std::string& id : old_role.keyids) {
    AIRLOCK_TRY(next.RevokeKey(options.role, id));
    if (!new_ids.count(id)) result.removed_key_ids.push_back(id);
  }
  for (const SignerPtr& key : new_keys) {
    AIRLOCK_TRY(next.AddKey(options.role, key->Public()));
    if (std::find(old_role.keyids.begin(), old_role.keyids.end(), key->KeyId()) ==
        old_role.keyids.end()) {
      result.added_key_ids.push_back(key->KeyId());
    }
  }
  next.roles[options.role].threshold = threshold;

  // Old root keys: --old-key, or the configured root keys. New root keys: the new keys when
  // rotating root, else the same configured root keys.
  std::vector<std::string> old_files;
  for (const fs::path& f : options.old_keys) old_files.push_back(RecordedSpec(f));
  if (old_files.empty()) old_files = key_files_["root"];
  const metadata::Role& old_root_role = current.signed_data.roles.at("root");
  auto old_signers =
      RoleSigners(signer_loader_, "old root", old_files, old_root_role.keyids,
                  old_root_role.threshold);
  if (!old_signers) {
    return tl::unexpected(
        old_signers.error().WithContext("rotate (pass the old root keys with --old-key)"));
  }
  std::vector<crypto::Signer*> signing = Pointers(*old_signers);
  std::set<std::string> signing_ids;
  for (const auto* k : signing) signing_ids.insert(k->KeyId());
  std::vector<SignerPtr> new_root_signers;
  if (options.role == "root") {
    for (const SignerPtr& k : new_keys) {
      if (!signing_ids.count(k->KeyId())) signing.push_back(k.get());
    }
  } else {
    const metadata::Role& root_role = next.roles.at("root");
    AIRLOCK_ASSIGN_OR_RETURN(new_root_signers,
                             RoleSigners(signer_loader_, "root", key_files_["root"],
                                         root_role.keyids, root_role.threshold));
    for (const SignerPtr& k : new_root_signers) {
      if (!signing_ids.count(k->KeyId())) signing.push_back(k.get());
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Root> next_md, metadata::SignMetadata(next, signing));
  AIRLOCK_TRY_CTX(metadata::VerifyRootRotation(current, next_md), "rotate");
  result.root_version = next.version;

  auto saved_files = key_files_;
  key_files_[options.role] = new_files;
  PublishOptions publish;
  publish.now = options.now;
  auto published_result = PublishInternal(publish, next_md);
  if (!published_result) {
    key_files_ = std::move(saved_files);
    return tl::unexpected(published_result.error());
  }
  result.published = std::move(*published_result);
  if (auto saved = SaveState(); !saved) {
    return tl::unexpected(saved.error().WithContext(
        "rotate: root " + std::to_string(next.version) +
        " is published but the repository state could not be saved; fix the state file's keys." +
        options.role + " by hand"));
  }
  return result;
}

}  // namespace airlock::repo
