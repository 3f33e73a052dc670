#include "server/app_repo.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <system_error>
#include <utility>

#include "audit/audit_log.h"
#include "bundle/bundle.h"
#include "common/bytes.h"
#include "common/fd.h"
#include "common/file.h"
#include "crypto/hash.h"
#include "crypto/wrap.h"
#include "keys/key_uri.h"
#include "keys/lifecycle.h"
#include "keys/signer.h"
#include "keys/vault_paths.h"
#include "metadata/metadata.h"
#include "server/release_policy.h"

namespace airlock::server {
namespace {

namespace fs = std::filesystem;
using metadata::Metadata;
using metadata::Root;
using metadata::Snapshot;
using metadata::Targets;
using metadata::Timestamp;

constexpr std::string_view kActor = "airlockd";
constexpr size_t kMaxAppIdSize = 128;
// Root versions probed above root.json's (a crash between N.root.json and root.json leaves
// root.json one behind; more than that means someone edited the directory).
constexpr uint64_t kMaxRootProbe = 64;
// Parsed bundle headers kept for WrapForDevice / BundleHasRecipient (recipients only, not
// manifests).
constexpr size_t kMaxCachedHeaders = 256;

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<void> ValidateAppId(std::string_view app_id) {
  if (app_id.empty() || app_id.size() > kMaxAppIdSize) {
    return MakeError(ErrorCode::kInvalidArgument, "app id must be 1..128 bytes");
  }
  for (char c : app_id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok)
      return MakeError(ErrorCode::kInvalidArgument, "app id may hold only A-Z a-z 0-9 . _ -");
  }
  // A leading '.' would make DATA/tuf/<app> hidden (never served) and allows "." and "..".
  if (app_id.front() == '.') {
    return MakeError(ErrorCode::kInvalidArgument, "app id must not start with '.'");
  }
  return {};
}

// The prefix of the app's key names: the app id when `<app>.timestamp` is a valid key name, else a
// digest of it (key names are at most 64 bytes and may not start with '-').
std::string KeyPrefix(std::string_view app_id) {
  if (keys::IsValidKeyName(std::string(app_id) + ".timestamp")) return std::string(app_id);
  return "app-" + HexEncode(crypto::Sha256(AsBytes(app_id))).substr(0, 40);
}

struct KeyNames {
  std::string snapshot;
  std::string timestamp;
  std::string content;
};

KeyNames NamesFor(std::string_view app_id) {
  const std::string p = KeyPrefix(app_id);
  return {p + ".snapshot", p + ".timestamp", p + ".content"};
}

class AuditSink final : public keys::UsageSink {
 public:
  explicit AuditSink(audit::AuditLog log) : log_(std::move(log)) {}
  Result<void> Append(const audit::UsageRecord& record) override {
    AIRLOCK_TRY(log_.Append(record));
    return {};
  }

 private:
  audit::AuditLog log_;
};

// An exclusive flock(2) on DATA/tuf/<app>/.lock (made if missing), released when the descriptor
// closes.
Result<UniqueFd> LockAppDir(const fs::path& path) {
  return OpenLocked(path, O_RDWR | O_CREAT, LOCK_EX);
}

// What is published for an app, read from its directory (the files are the source of truth, so
// several processes sharing DATA agree).
struct RepoState {
  std::optional<Metadata<Root>> root;
  std::optional<Metadata<Timestamp>> timestamp;
  std::optional<Metadata<Snapshot>> snapshot;
  uint64_t targets_version = 0;

  uint64_t root_version() const { return root ? root->signed_data.version : 0; }
  uint64_t timestamp_version() const { return timestamp ? timestamp->signed_data.version : 0; }
  uint64_t snapshot_version() const { return snapshot ? snapshot->signed_data.version : 0; }
};

fs::path Versioned(const fs::path& dir, uint64_t version, std::string_view role) {
  return dir / (std::to_string(version) + "." + std::string(role) + ".json");
}

// Reads and parses a metadata file; std::nullopt when it does not exist.
template <typename T>
Result<std::optional<Metadata<T>>> ReadOptional(const fs::path& path) {
  auto text = ReadTextFile(path, T::kDefaultMaxSize);
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) return std::optional<Metadata<T>>();
    return tl::unexpected(text.error().WithContext(path.string()));
  }
  auto md = metadata::ParseMetadata<T>(*text);
  if (!md) return tl::unexpected(md.error().WithContext(path.string()));
  return std::optional<Metadata<T>>(std::move(*md));
}

Result<RepoState> ReadState(const fs::path& dir) {
  RepoState st;
  AIRLOCK_ASSIGN_OR_RETURN(st.root, ReadOptional<Root>(dir / "root.json"));
  // root.json may lag N.root.json by a crash between the two writes: the versioned files win.
  uint64_t version = st.root_version();
  for (uint64_t i = 0; i < kMaxRootProbe; ++i) {
    AIRLOCK_ASSIGN_OR_RETURN(auto next, ReadOptional<Root>(Versioned(dir, version + 1, "root")));
    if (!next) break;
    st.root = std::move(next);
    version = st.root_version();
  }
  AIRLOCK_ASSIGN_OR_RETURN(st.timestamp, ReadOptional<Timestamp>(dir / "timestamp.json"));
  if (st.timestamp) {
    const uint64_t sv = st.timestamp->signed_data.snapshot_meta.version;
    AIRLOCK_ASSIGN_OR_RETURN(st.snapshot, ReadOptional<Snapshot>(Versioned(dir, sv, "snapshot")));
    if (!st.snapshot) {
      return MakeError(
          ErrorCode::kInternal,
          dir.string() + ": timestamp.json names missing snapshot v" + std::to_string(sv));
    }
    auto it = st.snapshot->signed_data.meta.find("targets.json");
    if (it == st.snapshot->signed_data.meta.end()) {
      return MakeError(ErrorCode::kInternal, dir.string() + ": snapshot lists no targets.json");
    }
    st.targets_version = it->second.version;
  }
  return st;
}

TrustedTarget ToTrusted(const std::string& name, const metadata::TargetFile& file) {
  TrustedTarget t;
  t.name = name;
  t.length = file.length;
  if (auto it = file.hashes.find("sha256"); it != file.hashes.end()) t.sha256 = it->second;
  t.custom = file.custom.value_or(nlohmann::json::object());
  return t;
}

std::vector<TrustedTarget> ToTrustedList(const Targets& targets) {
  std::vector<TrustedTarget> out;
  out.reserve(targets.targets.size());
  for (const auto& [name, file] : targets.targets) out.push_back(ToTrusted(name, file));
  return out;
}

// The online-key checks of an uploaded root: `role` lists exactly `keyid` with threshold 1, and the
// root's key under that id is the online key (key ids in metadata are never recomputed, so the key
// itself is compared).
Result<void> CheckOnlineRole(const Root& root, std::string_view role,
                             const crypto::PublicKey& key) {
  const std::string keyid = key.KeyId();
  auto it = root.roles.find(std::string(role));
  if (it == root.roles.end() || it->second.keyids != std::vector<std::string>{keyid} ||
      it->second.threshold != 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(role) + " role must be exactly the app's online key " + keyid +
                         " with threshold 1");
  }
  auto k = root.keys.find(keyid);
  if (k == root.keys.end() || !k->second.public_key || !k->second.public_key->Equals(key)) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        "root's key " + keyid + " is not the app's online " + std::string(role) + " key");
  }
  return {};
}

}  // namespace

struct AppRepo::Impl {
  // A parsed bundle header (a member type, not one of the anonymous namespace: Impl has external
  // linkage, and a field of an internal type draws -Wsubobject-linkage in unity builds).
  struct CachedHeader {
    uintmax_t size = 0;
    int64_t mtime_ns = 0;
    std::string app_id;
    std::string version;
    std::vector<bundle::Recipient> recipients;
  };

  Impl(std::unique_ptr<keys::KeyStore> s, AppRepoOptions o)
      : store(std::move(s)), options(std::move(o)) {
    if (!options.now) options.now = SystemNow;
    ctx.actor = std::string(kActor);
    ctx.source = std::string(kActor);
  }

  std::mutex mu;  // everything below but the header cache
  std::unique_ptr<keys::KeyStore> store;
  AppRepoOptions options;
  keys::OperationContext ctx;
  keys::OpenGate gate;  // authorization happens in the API layer (bearer tokens and roles)
  std::unique_ptr<keys::UsageSink> sink;
  std::unique_ptr<keys::KeyManager> manager;

  std::mutex cache_mu;
  std::map<std::string, CachedHeader> headers;  // by bundle path

  int64_t Now() const { return options.now(); }
  fs::path AppDir(std::string_view app_id) const { return options.data_dir / "tuf" / app_id; }

  // The manager, opening the usage log on first use (so a constructor needs no Result).
  Result<keys::KeyManager*> Manager() {
    if (manager) return manager.get();
    fs::path path = options.audit_log;
    if (path.empty()) {
      auto beside = keys::AuditPathForVaultUri(store->Uri());
      path = beside ? *beside : options.data_dir / "keys.audit";
    }
    audit::AuditOptions aopts;
    aopts.clock = options.now;
    auto log = audit::AuditLog::Open(path, std::move(aopts));
    if (!log) return tl::unexpected(log.error().WithContext("key usage log " + path.string()));
    sink = std::make_unique<AuditSink>(std::move(*log));
    keys::KeyManagerOptions mopts;
    mopts.now = options.now;
    manager = std::make_unique<keys::KeyManager>(*store, *sink, gate, mopts);
    return manager.get();
  }

  Result<OnlineKeys> Keys(std::string_view app_id) {
    AIRLOCK_ASSIGN_OR_RETURN(keys::KeyManager * m, Manager());
    const KeyNames names = NamesFor(app_id);
    OnlineKeys out;
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey snap, m->PublicKey(ctx, names.snapshot));
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey ts, m->PublicKey(ctx, names.timestamp));
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey content, m->PublicKey(ctx, names.content));
    out.snapshot_key = metadata::Key::FromPublicKey(snap).ToJson();
    out.timestamp_key = metadata::Key::FromPublicKey(ts).ToJson();
    out.snapshot_keyid = snap.KeyId();
    out.timestamp_keyid = ts.KeyId();
    out.content_key_pem = content.ToPem();
    return out;
  }

  Result<std::unique_ptr<keys::KeyStoreSigner>> Signer(const std::string& name) {
    AIRLOCK_ASSIGN_OR_RETURN(keys::KeyManager * m, Manager());
    return keys::KeyStoreSigner::Create(*m, ctx, name);
  }

  // Signs snapshot v(S+1) listing targets `targets_version` (when `new_snapshot`) and timestamp
  // v(T+1) naming it, checks both against `root` as a client would, and appends the files to
  // `writes` (snapshot first, timestamp.json last; the caller writes in order).
  Result<PublishedMetadata> SignOnline(std::string_view app_id, const Root& root,
                                       const RepoState& st, uint64_t targets_version,
                                       bool new_snapshot,
                                       std::vector<std::pair<fs::path, std::string>>* writes) {
    const KeyNames names = NamesFor(app_id);
    const fs::path dir = AppDir(app_id);
    const int64_t now = Now();
    PublishedMetadata published;
    published.targets_version = targets_version;

    metadata::MetaFile snapshot_meta;
    std::optional<std::pair<fs::path, std::string>> snapshot_write;
    if (new_snapshot) {
      Snapshot snapshot;
      snapshot.version = st.snapshot_version() + 1;
      snapshot.expires = now + options.snapshot_expiry;
      if (st.snapshot) snapshot.meta = st.snapshot->signed_data.meta;
      metadata::MetaFile targets_meta;
      targets_meta.version = targets_version;
      snapshot.meta["targets.json"] = targets_meta;
      AIRLOCK_ASSIGN_OR_RETURN(auto signer, Signer(names.snapshot));
      AIRLOCK_ASSIGN_OR_RETURN(
          Metadata<Snapshot> md,
          metadata::SignMetadata(snapshot, std::vector<crypto::Signer*>{signer.get()}));
      AIRLOCK_TRY_CTX(root.VerifyDelegate("snapshot", md),
                      "the online snapshot key is not the root's snapshot key");
      AIRLOCK_ASSIGN_OR_RETURN(std::string bytes, md.ToBytes());
      snapshot_meta.version = snapshot.version;
      snapshot_meta.length = bytes.size();
      snapshot_meta.hashes =
          metadata::Hashes{{"sha256", HexEncode(crypto::Sha256(AsBytes(bytes)))}};
      snapshot_write.emplace(Versioned(dir, snapshot.version, "snapshot"), std::move(bytes));
      published.snapshot_version = snapshot.version;
    } else {
      if (!st.timestamp) return MakeError(ErrorCode::kInternal, "no timestamp to refresh");
      snapshot_meta = st.timestamp->signed_data.snapshot_meta;
      published.snapshot_version = snapshot_meta.version;
    }

    Timestamp timestamp;
    timestamp.version = st.timestamp_version() + 1;
    timestamp.expires = now + options.timestamp_expiry;
    timestamp.snapshot_meta = snapshot_meta;
    AIRLOCK_ASSIGN_OR_RETURN(auto signer, Signer(names.timestamp));
    AIRLOCK_ASSIGN_OR_RETURN(
        Metadata<Timestamp> md,
        metadata::SignMetadata(timestamp, std::vector<crypto::Signer*>{signer.get()}));
    AIRLOCK_TRY_CTX(root.VerifyDelegate("timestamp", md),
                    "the online timestamp key is not the root's timestamp key");
    AIRLOCK_ASSIGN_OR_RETURN(std::string ts_bytes, md.ToBytes());
    published.timestamp_version = timestamp.version;

    if (snapshot_write) writes->push_back(std::move(*snapshot_write));
    writes->emplace_back(dir / "timestamp.json", std::move(ts_bytes));
    return published;
  }

  // Verifies targets metadata against the app's current state (the caller holds `mu`, and the app
  // lock when it will write).
  Result<Metadata<Targets>> CheckTargets(std::string_view app_id, const RepoState& st,
                                         std::string_view bytes, const BlobLookup& blobs) {
    if (!st.root) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "app " + std::string(app_id) + " has no root metadata yet");
    }
    AIRLOCK_ASSIGN_OR_RETURN(Metadata<Targets> md, metadata::ParseTargets(bytes));
    AIRLOCK_TRY(st.root->signed_data.VerifyDelegate("targets", md));
    const uint64_t expected = st.targets_version + 1;
    if (md.signed_data.version != expected) {
      return MakeError(ErrorCode::kRollback, "targets version " +
                                                 std::to_string(md.signed_data.version) +
                                                 " is not " + std::to_string(expected));
    }
    AIRLOCK_TRY(metadata::CheckExpiry(md.signed_data, Now(), "targets"));
    if (md.signed_data.delegations) {
      return MakeError(ErrorCode::kUnsupported, "the server does not support delegated targets");
    }
    for (const auto& [name, file] : md.signed_data.targets) {
      auto h = file.hashes.find("sha256");
      if (h == file.hashes.end()) {
        return MakeError(ErrorCode::kHashMismatch, "target " + name + " has no sha256 hash");
      }
      if (!IsLowerHex(h->second, 64)) {
        return MakeError(ErrorCode::kMalformed,
                         "target " + name + ": sha256 is not 64 lower-case hex digits");
      }
      if (!blobs) return MakeError(ErrorCode::kInternal, "no blob lookup");
      std::optional<uint64_t> held = blobs(h->second);
      if (!held) {
        return MakeError(ErrorCode::kNotFound,
                         "target " + name + ": blob " + h->second + " is not held by the server");
      }
      if (*held != file.length) {
        return MakeError(ErrorCode::kHashMismatch,
                         "target " + name + ": length " + std::to_string(file.length) +
                             " but the blob has " + std::to_string(*held) + " bytes");
      }
    }
    return md;
  }

  Result<std::vector<TrustedTarget>> Current(std::string_view app_id) {
    AIRLOCK_TRY(ValidateAppId(app_id));
    const fs::path dir = AppDir(app_id);
    AIRLOCK_ASSIGN_OR_RETURN(RepoState st, ReadState(dir));
    if (st.targets_version == 0) {
      return MakeError(ErrorCode::kNotFound,
                       "app " + std::string(app_id) + " has no targets metadata");
    }
    AIRLOCK_ASSIGN_OR_RETURN(auto md,
                             ReadOptional<Targets>(Versioned(dir, st.targets_version, "targets")));
    if (!md) {
      return MakeError(ErrorCode::kInternal,
                       "snapshot names missing targets v" + std::to_string(st.targets_version));
    }
    return ToTrustedList(md->signed_data);
  }

  // The recipients of the bundle at `path` (header only, cached by path, size and mtime).
  Result<CachedHeader> Header(const fs::path& path) {
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0) {
      if (errno == ENOENT) return MakeError(ErrorCode::kNotFound, "no bundle at " + path.string());
      return MakeError(ErrorCode::kIo,
                       "cannot stat " + path.string() + ": " + std::strerror(errno));
    }
    const int64_t mtime_ns = int64_t{sb.st_mtim.tv_sec} * 1000000000 + sb.st_mtim.tv_nsec;
    const uintmax_t size = static_cast<uintmax_t>(sb.st_size);
    {
      std::lock_guard<std::mutex> lock(cache_mu);
      auto it = headers.find(path.string());
      if (it != headers.end() && it->second.size == size && it->second.mtime_ns == mtime_ns) {
        return it->second;
      }
    }
    // Parsed outside the lock: a header may be megabytes (its manifest).
    AIRLOCK_ASSIGN_OR_RETURN(bundle::BundleInfo info, bundle::InspectBundle(path, nullptr));
    CachedHeader h;
    h.size = size;
    h.mtime_ns = mtime_ns;
    h.app_id = std::move(info.header.app_id);
    h.version = std::move(info.header.version);
    h.recipients = std::move(info.header.recipients);
    std::lock_guard<std::mutex> lock(cache_mu);
    if (headers.size() >= kMaxCachedHeaders) headers.clear();
    headers[path.string()] = h;
    return h;
  }
};

AppRepo::AppRepo(std::unique_ptr<keys::KeyStore> store, AppRepoOptions options)
    : impl_(std::make_unique<Impl>(std::move(store), std::move(options))) {}

AppRepo::~AppRepo() = default;

Result<OnlineKeys> AppRepo::CreateApp(std::string_view app_id) {
  AIRLOCK_TRY(ValidateAppId(app_id));
  std::lock_guard<std::mutex> lock(impl_->mu);
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyManager * m, impl_->Manager());
  const KeyNames names = NamesFor(app_id);
  for (const std::string* name : {&names.snapshot, &names.timestamp, &names.content}) {
    auto info = impl_->store->Get(*name);
    if (info) {
      return MakeError(ErrorCode::kAlreadyExists,
                       "app " + std::string(app_id) + ": key " + *name + " already exists");
    }
    if (info.error().code() != ErrorCode::kNotFound) return tl::unexpected(info.error());
  }
  const struct {
    const std::string* name;
    crypto::KeyType type;
    keys::KeyPurpose purpose;
  } specs[] = {{&names.snapshot, crypto::KeyType::kEd25519, keys::KeyPurpose::kSnapshot},
               {&names.timestamp, crypto::KeyType::kEd25519, keys::KeyPurpose::kTimestamp},
               {&names.content, crypto::KeyType::kX25519, keys::KeyPurpose::kContentWrap}};
  std::vector<std::string> made;
  auto undo = [&] {
    // Best effort: a half-created app would otherwise be stuck in kAlreadyExists.
    for (const std::string& name : made) (void)m->Delete(impl_->ctx, name);
  };
  for (const auto& spec : specs) {
    auto info = m->Create(impl_->ctx, *spec.name, spec.type, spec.purpose);
    if (!info) {
      undo();
      return tl::unexpected(info.error().WithContext("app " + std::string(app_id)));
    }
    made.push_back(*spec.name);
  }
  std::error_code ec;
  fs::create_directories(impl_->AppDir(app_id), ec);
  if (ec) {
    undo();
    return MakeError(ErrorCode::kIo,
                     "cannot create " + impl_->AppDir(app_id).string() + ": " + ec.message());
  }
  // The lock file exists from the start, so a refused upload leaves the directory as it was.
  if (auto made_lock = LockAppDir(impl_->AppDir(app_id) / ".lock"); !made_lock) {
    undo();
    return tl::unexpected(made_lock.error());
  }
  return impl_->Keys(app_id);
}

std::vector<std::string> AppRepo::OnlineKeyNames(std::string_view app_id) {
  const KeyNames names = NamesFor(app_id);
  return {names.snapshot, names.timestamp, names.content};
}

Result<std::string> AppRepo::WithKeyManager(const KeyAction& fn) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyManager * m, impl_->Manager());
  return fn(*m, impl_->ctx);
}

Result<OnlineKeys> AppRepo::GetOnlineKeys(std::string_view app_id) {
  AIRLOCK_TRY(ValidateAppId(app_id));
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Keys(app_id);
}

Result<RepoStatus> AppRepo::Status(std::string_view app_id) {
  AIRLOCK_TRY(ValidateAppId(app_id));
  std::lock_guard<std::mutex> lock(impl_->mu);
  AIRLOCK_ASSIGN_OR_RETURN(RepoState st, ReadState(impl_->AppDir(app_id)));
  RepoStatus out;
  if (st.root) out.root_version = st.root_version();
  if (st.timestamp) {
    out.targets_version = st.targets_version;
    out.snapshot_version = st.snapshot_version();
    out.timestamp_version = st.timestamp_version();
    out.timestamp_expires = metadata::FormatTufTime(st.timestamp->signed_data.expires);
  }
  return out;
}

Result<uint64_t> AppRepo::AcceptRoot(std::string_view app_id, std::string_view root_bytes) {
  AIRLOCK_TRY(ValidateAppId(app_id));
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Root> next, metadata::ParseRoot(root_bytes));
  std::lock_guard<std::mutex> lock(impl_->mu);
  const KeyNames names = NamesFor(app_id);
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyManager * m, impl_->Manager());
  auto snapshot_key = m->PublicKey(impl_->ctx, names.snapshot);
  if (!snapshot_key) {
    return tl::unexpected(snapshot_key.error().WithContext("app " + std::string(app_id)));
  }
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey timestamp_key,
                           m->PublicKey(impl_->ctx, names.timestamp));

  const fs::path dir = impl_->AppDir(app_id);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return MakeError(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
  AIRLOCK_ASSIGN_OR_RETURN(UniqueFd app_lock, LockAppDir(dir / ".lock"));
  AIRLOCK_ASSIGN_OR_RETURN(RepoState st, ReadState(dir));

  const Root& r = next.signed_data;
  const uint64_t expected = st.root_version() + 1;
  if (r.version != expected) {
    return MakeError(ErrorCode::kRollback, "root version " + std::to_string(r.version) +
                                               " is not " + std::to_string(expected));
  }
  if (st.root) {
    AIRLOCK_TRY(metadata::VerifyRootRotation(*st.root, next));
  } else {
    AIRLOCK_TRY_CTX(r.VerifyDelegate("root", next), "root v1 not signed by its own keys");
  }
  AIRLOCK_TRY(metadata::CheckExpiry(r, impl_->Now(), "root"));
  if (!r.consistent_snapshot) {
    return MakeError(ErrorCode::kInvalidArgument, "root must set consistent_snapshot to true");
  }
  AIRLOCK_TRY(CheckOnlineRole(r, "snapshot", *snapshot_key));
  AIRLOCK_TRY(CheckOnlineRole(r, "timestamp", timestamp_key));

  // Versioned root first, then root.json; with targets published, a new snapshot and timestamp so
  // clients see a fresh timestamp signed under the new root (timestamp.json last).
  std::vector<std::pair<fs::path, std::string>> writes;
  writes.emplace_back(Versioned(dir, r.version, "root"), std::string(root_bytes));
  writes.emplace_back(dir / "root.json", std::string(root_bytes));
  if (st.timestamp) {
    AIRLOCK_TRY(impl_->SignOnline(app_id, r, st, st.targets_version, /*new_snapshot=*/true, &writes)
                    .map([](const PublishedMetadata&) {}));
  }
  for (const auto& [path, bytes] : writes) AIRLOCK_TRY(WriteFileAtomic(path, AsBytes(bytes)));
  return r.version;
}

Result<PublishedMetadata> AppRepo::AcceptTargets(std::string_view app_id,
                                                 std::string_view targets_bytes,
                                                 const BlobLookup& blobs) {
  AIRLOCK_TRY(ValidateAppId(app_id));
  std::lock_guard<std::mutex> lock(impl_->mu);
  const fs::path dir = impl_->AppDir(app_id);
  if (!fs::is_directory(dir)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "app " + std::string(app_id) + " has no root metadata yet");
  }
  AIRLOCK_ASSIGN_OR_RETURN(UniqueFd app_lock, LockAppDir(dir / ".lock"));
  AIRLOCK_ASSIGN_OR_RETURN(RepoState st, ReadState(dir));
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Targets> md,
                           impl_->CheckTargets(app_id, st, targets_bytes, blobs));
  const uint64_t version = md.signed_data.version;
  std::vector<std::pair<fs::path, std::string>> writes;
  writes.emplace_back(Versioned(dir, version, "targets"), std::string(targets_bytes));
  AIRLOCK_ASSIGN_OR_RETURN(
      PublishedMetadata published,
      impl_->SignOnline(app_id, st.root->signed_data, st, version, /*new_snapshot=*/true, &writes));
  for (const auto& [path, bytes] : writes) AIRLOCK_TRY(WriteFileAtomic(path, AsBytes(bytes)));
  return published;
}

Result<std::vector<TrustedTarget>> AppRepo::VerifyTargets(std::string_view app_id,
                                                          std::string_view targets_bytes,
                                                          const BlobLookup& blobs) {
  AIRLOCK_TRY(ValidateAppId(app_id));
  std::lock_guard<std::mutex> lock(impl_->mu);
  AIRLOCK_ASSIGN_OR_RETURN(RepoState st, ReadState(impl_->AppDir(app_id)));
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Targets> md,
                           impl_->CheckTargets(app_id, st, targets_bytes, blobs));
  return ToTrustedList(md.signed_data);
}

Result<std::vector<TrustedTarget>> AppRepo::CurrentTargets(std::string_view app_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Current(app_id);
}

Result<std::vector<std::string>> AppRepo::RefreshTimestamps() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const fs::path tuf = impl_->options.data_dir / "tuf";
  std::vector<std::string> apps;
  std::error_code ec;
  fs::directory_iterator it(tuf, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return std::vector<std::string>{};
    return MakeError(ErrorCode::kIo, "cannot list " + tuf.string() + ": " + ec.message());
  }
  for (const fs::directory_entry& e : it) {
    std::error_code dir_ec;
    if (!e.is_directory(dir_ec)) continue;
    std::string name = e.path().filename().string();
    if (!ValidateAppId(name)) continue;
    if (!fs::exists(e.path() / "timestamp.json", dir_ec)) continue;
    apps.push_back(std::move(name));
  }
  std::sort(apps.begin(), apps.end());

  std::vector<std::string> refreshed;
  std::optional<Error> first_error;
  for (const std::string& app : apps) {
    auto one = [&]() -> Result<bool> {
      const fs::path dir = impl_->AppDir(app);
      AIRLOCK_ASSIGN_OR_RETURN(UniqueFd app_lock, LockAppDir(dir / ".lock"));
      AIRLOCK_ASSIGN_OR_RETURN(RepoState st, ReadState(dir));
      if (!st.timestamp || !st.root) return false;
      const int64_t now = impl_->Now();
      const double fraction = impl_->options.refresh_fraction;
      auto due = [&](int64_t expires, int64_t validity) {
        return static_cast<double>(expires - now) < fraction * static_cast<double>(validity);
      };
      const bool snapshot_due =
          due(st.snapshot->signed_data.expires, impl_->options.snapshot_expiry);
      const bool timestamp_due =
          due(st.timestamp->signed_data.expires, impl_->options.timestamp_expiry);
      if (!snapshot_due && !timestamp_due) return false;
      std::vector<std::pair<fs::path, std::string>> writes;
      AIRLOCK_TRY(
          impl_
              ->SignOnline(app, st.root->signed_data, st, st.targets_version, snapshot_due, &writes)
              .map([](const PublishedMetadata&) {}));
      for (const auto& [path, bytes] : writes) AIRLOCK_TRY(WriteFileAtomic(path, AsBytes(bytes)));
      return true;
    }();
    if (!one) {
      if (!first_error) first_error = one.error().WithContext("app " + app);
    } else if (*one) {
      refreshed.push_back(app);
    }
  }
  if (first_error) return tl::unexpected(*first_error);
  return refreshed;
}

Result<Bytes> AppRepo::WrapForDevice(std::string_view app_id, const fs::path& bundle_path,
                                     const crypto::PublicKey& device_public_key) {
  AIRLOCK_TRY(ValidateAppId(app_id));
  if (device_public_key.type() != crypto::KeyType::kX25519) {
    return MakeError(ErrorCode::kInvalidArgument, "device key must be X25519");
  }
  AIRLOCK_ASSIGN_OR_RETURN(Impl::CachedHeader header, impl_->Header(bundle_path));
  if (header.app_id != app_id) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "bundle is for app " + header.app_id + ", not " + std::string(app_id));
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyManager * m, impl_->Manager());
  const std::string content_name = NamesFor(app_id).content;
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey content, m->PublicKey(impl_->ctx, content_name));
  const std::string content_id = content.KeyId();
  auto rec = std::find_if(header.recipients.begin(), header.recipients.end(),
                          [&](const bundle::Recipient& r) { return r.key_id == content_id; });
  if (rec == header.recipients.end()) {
    return MakeError(ErrorCode::kNotFound,
                     "bundle has no recipient for the app's content key " + content_id);
  }
  const Bytes aad = bundle::ContentKeyAad(header.app_id, header.version);
  AIRLOCK_ASSIGN_OR_RETURN(Bytes key, m->Unwrap(impl_->ctx, content_name, rec->wrapped_key, aad));
  auto wrapped = crypto::WrapKey(device_public_key, key, aad);
  OPENSSL_cleanse(key.data(), key.size());
  return wrapped;
}

Result<bool> AppRepo::BundleHasRecipient(const fs::path& bundle_path,
                                         const crypto::PublicKey& recipient) {
  AIRLOCK_ASSIGN_OR_RETURN(Impl::CachedHeader header, impl_->Header(bundle_path));
  const std::string id = recipient.KeyId();
  return std::any_of(header.recipients.begin(), header.recipients.end(),
                     [&](const bundle::Recipient& r) { return r.key_id == id; });
}

}  // namespace airlock::server
