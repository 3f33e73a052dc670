#include "repo/repository.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <set>
#include <system_error>

#include "bundle/bundle.h"
#include "common/bytes.h"
#include "common/file.h"
#include "common/json.h"
#include "crypto/keys.h"
#include "repo/repository_internal.h"

namespace airlock::repo {

namespace fs = std::filesystem;
using internal::Absolute;
using internal::IoError;
using internal::kDelegatedExpiryKey;
using internal::LoadSigningKey;
using internal::MetadataDir;
using internal::NowOr;
using internal::Pointers;
using internal::RecordedSpec;
using internal::SignerPtr;
using internal::StateDir;
using internal::StateFile;
using internal::TargetsDir;
using metadata::Delegations;
using metadata::Metadata;
using metadata::Root;
using metadata::TargetFile;
using metadata::Targets;

namespace {

constexpr std::string_view kStateFormat = "airlock-tuf-repository";
constexpr uint64_t kStateFormatVersion = 1;
constexpr std::string_view kTopLevelRoles[] = {"root", "targets", "snapshot", "timestamp"};

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

}  // namespace

// ---------------------------------------------------------------------------------------------------

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

}  // namespace airlock::repo
