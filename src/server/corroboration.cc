#include "server/corroboration.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "audit/audit_log.h"
#include "common/bytes.h"
#include "common/fd.h"
#include "common/file.h"
#include "crypto/base64.h"
#include "crypto/hash.h"
#include "metadata/metadata.h"
#include "server/server_api.h"

namespace airlock::server {
namespace {

namespace fs = std::filesystem;
using State = monitor::ContentCheck::State;

constexpr uint64_t kMaxRoots = 1024;           // root versions walked from 1.root.json
constexpr uint64_t kMaxMetadataFile = 16 << 20;  // the served files the foreign check compares
// A blob found intact is hashed again after this long even if its stat did not move (a write
// through a shared mapping, or within the file system's time granularity, may not move it).
constexpr auto kRecheckIntact = std::chrono::minutes(10);

// What stat says of a file; `present` false when it does not exist.
struct Stamp {
  bool present = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool operator==(const Stamp&) const = default;
};

// The stamp of `path`, or the errno of a failed stat other than ENOENT.
std::pair<Stamp, int> StampOf(const fs::path& path) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0) {
    if (errno == ENOENT) return {Stamp{}, 0};
    return {Stamp{}, errno};
  }
  return {Stamp{true, sb.st_dev, sb.st_ino, sb.st_size,
                int64_t{sb.st_mtim.tv_sec} * 1000000000 + sb.st_mtim.tv_nsec,
                int64_t{sb.st_ctim.tv_sec} * 1000000000 + sb.st_ctim.tv_nsec},
          0};
}

fs::path Versioned(const fs::path& dir, uint64_t version, const char* role) {
  return dir / (std::to_string(version) + "." + role + ".json");
}

// The served metadata of one app as last read, and the stamps of the files it was read from.
struct Served {
  std::vector<std::pair<fs::path, Stamp>> files;
  std::string unknown;      // non-empty: it could not be read or judged (why)
  bool transient = false;   // `unknown` came from an I/O error, which may pass: never kept
  std::string chain_error;  // non-empty: a file the online keys sign does not verify (why)
  std::map<std::string, std::vector<TrustedTarget>> by_version;
};

// One blob's last comparison with its signed target.
struct BlobAnswer {
  Stamp stamp;
  uint64_t length = 0;
  std::string sha256;
  monitor::ContentCheck answer;
  std::chrono::steady_clock::time_point checked;
};

class Checker {
 public:
  explicit Checker(CorroborationOptions options) : options_(std::move(options)) {}

  monitor::ContentCheck Content(const std::string& app, const std::string& version) {
    if (!api_internal::IsValidId(app) || app[0] == '.') {
      return {State::kUnknown, "no app " + app.substr(0, 128)};
    }
    const fs::path dir = options_.data_dir / "tuf" / app;
    std::lock_guard<std::mutex> lock(mu_);
    auto found = served_.find(app);
    if (found == served_.end() || !Fresh(found->second)) {
      std::error_code ec;
      if (!fs::is_directory(dir, ec)) return {State::kUnknown, "no app " + app};
      found = served_.insert_or_assign(app, Load(app, dir)).first;
    }
    const Served& s = found->second;
    if (!s.unknown.empty()) return {State::kUnknown, s.unknown};
    if (!s.chain_error.empty()) {
      return {State::kDamaged, "the served metadata does not verify: " + s.chain_error};
    }
    auto targets = s.by_version.find(version);
    if (targets == s.by_version.end()) {
      return {State::kUnknown, "no signed target of " + app + " has version " + version};
    }
    for (const TrustedTarget& t : targets->second) {
      monitor::ContentCheck one = Blob(t);
      if (one.state != State::kIntact) return one;
    }
    const size_t n = targets->second.size();
    return {State::kIntact, "the server's copy of " + version +
                                " matches its signed length and SHA-256 (" + std::to_string(n) +
                                (n == 1 ? " target)" : " targets)")};
  }

  std::optional<monitor::ForeignMetadata> Foreign(const std::string& app,
                                                  const std::string& document_base64) {
    if (!api_internal::IsValidId(app) || app[0] == '.') return std::nullopt;
    if (document_base64.size() > (kMaxForeignDocument + 2) / 3 * 4) return std::nullopt;
    auto bytes = crypto::Base64Decode(document_base64);
    if (!bytes || bytes->empty() || bytes->size() > kMaxForeignDocument) return std::nullopt;
    const std::string document(bytes->begin(), bytes->end());
    auto envelope = metadata::Envelope::Parse(document, kMaxForeignDocument);
    if (!envelope) return std::nullopt;
    const auto type = envelope->signed_json.find("_type");
    if (type == envelope->signed_json.end() || !type->is_string()) return std::nullopt;
    const std::string role = type->get<std::string>();
    uint64_t version = 0;
    if (role == "snapshot") {
      auto parsed = metadata::ParseSnapshot(document, kMaxForeignDocument);
      if (!parsed) return std::nullopt;
      version = parsed->signed_data.version;
    } else if (role == "timestamp") {
      auto parsed = metadata::ParseTimestamp(document, kMaxForeignDocument);
      if (!parsed) return std::nullopt;
      version = parsed->signed_data.version;
    } else {
      return std::nullopt;
    }
    // Signed by the key the vault holds now for that role, or it says nothing about that key.
    auto online = options_.repo->GetOnlineKeys(app);
    if (!online) return std::nullopt;
    const bool snapshot = role == "snapshot";
    auto key = metadata::Key::FromJson(snapshot ? online->snapshot_key : online->timestamp_key);
    if (!key || !key->usable()) return std::nullopt;
    const std::string keyid = snapshot ? online->snapshot_keyid : online->timestamp_keyid;
    if (metadata::CountValidSignatures(*envelope, {{keyid, *key}}, {keyid}) == 0) {
      return std::nullopt;
    }
    auto canonical = envelope->CanonicalSigned();
    if (!canonical) return std::nullopt;
    const std::string digest = HexEncode(crypto::Sha256(AsBytes(*canonical)));
    const fs::path dir = options_.data_dir / "tuf" / app;
    auto ours = snapshot ? SnapshotIsOurs(dir, version, *canonical)
                         : TimestampIsOurs(dir, version, *canonical);
    if (!ours || *ours) return std::nullopt;
    auto logged = SignedByUs(keyid, digest);
    if (!logged || *logged) return std::nullopt;
    const auto names = AppRepo::OnlineKeyNames(app);
    return monitor::ForeignMetadata{snapshot ? names[0] : names[1], role, version, digest};
  }

 private:
  // Every file the answer was read from still has the stamp it had (an answer that came from an
  // I/O error is never kept: it may pass).
  static bool Fresh(const Served& s) {
    if (s.transient) return false;
    for (const auto& [path, stamp] : s.files) {
      auto [now, err] = StampOf(path);
      if (err != 0 || !(now == stamp)) return false;
    }
    return !s.files.empty();
  }

  // Reads a metadata file (at most the size a device accepts), noting its stamp; nullopt when it
  // does not exist, or (with `s->unknown` or `s->chain_error` set) cannot be read or parsed.
  template <typename T>
  static std::optional<metadata::Metadata<T>> Read(const fs::path& path, Served* s,
                                                   std::string* raw = nullptr) {
    auto [stamp, err] = StampOf(path);
    s->files.emplace_back(path, stamp);
    if (err != 0) {
      s->unknown = "cannot stat " + path.string() + ": " + std::strerror(err);
      s->transient = true;
      return std::nullopt;
    }
    if (!stamp.present) return std::nullopt;
    auto text = ReadTextFile(path, T::kDefaultMaxSize);
    if (!text) {
      if (text.error().code() == ErrorCode::kLimitExceeded) {
        s->chain_error = path.filename().string() + ": " + text.error().ToString();
      } else {
        s->unknown = text.error().ToString();
        s->transient = true;
      }
      return std::nullopt;
    }
    auto md = metadata::ParseMetadata<T>(*text, T::kDefaultMaxSize);
    if (!md) {
      s->chain_error = path.filename().string() + ": " + md.error().ToString();
      return std::nullopt;
    }
    if (raw != nullptr) *raw = std::move(*text);
    return std::move(*md);
  }

  // The served metadata, verified as a device verifies it except for expiry (a stale timestamp is
  // not tampering): the root chain from 1.root.json, each file's version and size, the online
  // roles' and the targets' signatures under the newest root, snapshot and targets against the
  // meta their parent lists. What the developer signs (roots, targets) failing is kUnknown, since
  // replacing the server's keys cannot mend it; what the online keys sign failing is kDamaged.
  static Served Load(const std::string& app, const fs::path& dir) {
    Served s;
    // A shared flock of the lock AppRepo holds exclusively while it writes: what is read under it
    // is never a publish or a root upload half done.
    auto lock = OpenLocked(dir / ".lock", O_RDONLY, LOCK_SH);
    if (!lock) {
      s.unknown = lock.error().ToString();
      s.transient = true;
      return s;
    }
    auto failed = [&s] { return !s.unknown.empty() || !s.chain_error.empty(); };
    auto root = Read<metadata::Root>(Versioned(dir, 1, "root"), &s);
    if (failed()) return s;
    if (!root) {
      s.unknown = "app " + app + " has no root yet";
      return s;
    }
    auto self_signed = root->signed_data.VerifyDelegate("root", *root);
    if (root->signed_data.version != 1 || !self_signed) {
      s.unknown = "1.root.json is not a self-signed root version 1";
      return s;
    }
    for (uint64_t v = 2;; ++v) {
      if (v > kMaxRoots) {
        s.unknown = "more than " + std::to_string(kMaxRoots) + " root versions to walk";
        break;
      }
      auto next = Read<metadata::Root>(Versioned(dir, v, "root"), &s);
      if (failed()) break;
      if (!next) break;
      if (auto ok = metadata::VerifyRootRotation(*root, *next); !ok) {
        s.unknown = "the root chain does not verify at " + std::to_string(v) +
                    ".root.json: " + ok.error().ToString();
        break;
      }
      root = std::move(next);
    }
    if (!s.chain_error.empty()) {  // a root too large or not a root: the developer's file
      s.unknown = "the root chain does not verify: " + s.chain_error;
      s.chain_error.clear();
    }
    if (!s.unknown.empty()) return s;
    const metadata::Root& trusted = root->signed_data;
    auto timestamp = Read<metadata::Timestamp>(dir / "timestamp.json", &s);
    if (failed()) return s;
    if (!timestamp) {
      s.unknown = "app " + app + " has no timestamp yet";
      return s;
    }
    if (auto ok = trusted.VerifyDelegate("timestamp", *timestamp); !ok) {
      s.chain_error = "timestamp.json: " + ok.error().ToString();
      return s;
    }
    const metadata::MetaFile& snap_meta = timestamp->signed_data.snapshot_meta;
    std::string snap_raw;
    auto snap = Read<metadata::Snapshot>(Versioned(dir, snap_meta.version, "snapshot"), &s,
                                         &snap_raw);
    if (failed()) return s;
    if (!snap) {
      s.chain_error = "timestamp.json names missing snapshot v" + std::to_string(snap_meta.version);
      return s;
    }
    if (snap->signed_data.version != snap_meta.version) {
      s.chain_error = std::to_string(snap_meta.version) + ".snapshot.json holds version " +
                      std::to_string(snap->signed_data.version);
      return s;
    }
    if (auto ok = snap_meta.Verify(AsBytes(snap_raw)); !ok) {
      s.chain_error = "snapshot: " + ok.error().ToString();
      return s;
    }
    if (auto ok = trusted.VerifyDelegate("snapshot", *snap); !ok) {
      s.chain_error = "snapshot: " + ok.error().ToString();
      return s;
    }
    auto meta = snap->signed_data.meta.find("targets.json");
    if (meta == snap->signed_data.meta.end()) {
      s.chain_error = "the snapshot lists no targets.json";
      return s;
    }
    std::string targets_raw;
    auto targets = Read<metadata::Targets>(Versioned(dir, meta->second.version, "targets"), &s,
                                           &targets_raw);
    if (!s.chain_error.empty()) {  // too large or not targets: the developer's file
      s.unknown = "the targets do not parse: " + s.chain_error;
      s.chain_error.clear();
    }
    if (failed()) return s;
    if (!targets) {
      s.chain_error = "the snapshot names missing targets v" + std::to_string(meta->second.version);
      return s;
    }
    if (targets->signed_data.version != meta->second.version) {
      s.chain_error = std::to_string(meta->second.version) + ".targets.json holds version " +
                      std::to_string(targets->signed_data.version);
      return s;
    }
    if (auto ok = meta->second.Verify(AsBytes(targets_raw)); !ok) {
      s.chain_error = "targets: " + ok.error().ToString();
      return s;
    }
    if (auto ok = trusted.VerifyDelegate("targets", *targets); !ok) {
      s.unknown = "targets v" + std::to_string(meta->second.version) +
                  " do not verify under root v" + std::to_string(trusted.version) + ": " +
                  ok.error().ToString();
      return s;
    }
    for (const auto& [name, file] : targets->signed_data.targets) {
      if (!file.custom || !file.custom->is_object()) continue;
      auto v = file.custom->find("version");
      if (v == file.custom->end() || !v->is_string()) continue;
      TrustedTarget t;
      t.name = name;
      t.length = file.length;
      if (auto sha = file.hashes.find("sha256"); sha != file.hashes.end()) t.sha256 = sha->second;
      s.by_version[v->get<std::string>()].push_back(std::move(t));
    }
    return s;
  }

  // A target's blob against its signed length and SHA-256, hashed again only when its stamp moved.
  monitor::ContentCheck Blob(const TrustedTarget& t) {
    if (!IsLowerHex(t.sha256, 64)) {
      return {State::kUnknown, "target " + t.name + " has no SHA-256 to compare with"};
    }
    const fs::path path = api_internal::BlobPath(options_.data_dir, t.sha256);
    auto [stamp, err] = StampOf(path);
    if (err != 0) {
      return {State::kUnknown,
              "target " + t.name + ": cannot stat its blob: " + std::strerror(err)};
    }
    if (!stamp.present) return {State::kDamaged, "target " + t.name + ": its blob is missing"};
    const auto now = std::chrono::steady_clock::now();
    BlobAnswer& cached = blobs_[t.sha256];
    if (cached.stamp == stamp && cached.length == t.length && cached.sha256 == t.sha256 &&
        (cached.answer.state != State::kIntact || now - cached.checked < kRecheckIntact)) {
      return cached.answer;
    }
    monitor::ContentCheck answer;
    if (static_cast<uint64_t>(stamp.size) != t.length) {
      answer = {State::kDamaged, "target " + t.name + ": " + std::to_string(stamp.size) +
                                     " bytes on disk, " + std::to_string(t.length) + " signed"};
    } else if (auto sha = crypto::Sha256File(path); !sha) {
      // Not cached: a read error says nothing about the bytes, and may pass.
      return {State::kUnknown, "target " + t.name + ": " + sha.error().ToString()};
    } else if (HexEncode(*sha) != t.sha256) {
      answer = {State::kDamaged, "target " + t.name + ": SHA-256 on disk " + HexEncode(*sha) +
                                     ", signed " + t.sha256};
    } else {
      answer = {State::kIntact, ""};
    }
    cached = {stamp, t.length, t.sha256, answer, now};
    return answer;
  }

  // Is the snapshot of `version` with signed part `canonical` the served file's? nullopt: unknown.
  static std::optional<bool> SnapshotIsOurs(const fs::path& dir, uint64_t version,
                                            const std::string& canonical) {
    auto text = ReadTextFile(Versioned(dir, version, "snapshot"), kMaxMetadataFile);
    if (!text) {
      if (text.error().code() == ErrorCode::kNotFound) return false;  // never written
      return std::nullopt;
    }
    auto ours = metadata::Envelope::Parse(*text, kMaxMetadataFile);
    if (!ours) return std::nullopt;
    auto ours_canonical = ours->CanonicalSigned();
    if (!ours_canonical) return std::nullopt;
    return *ours_canonical == canonical;
  }

  static std::optional<bool> TimestampIsOurs(const fs::path& dir, uint64_t version,
                                             const std::string& canonical) {
    auto text = ReadTextFile(dir / "timestamp.json", kMaxMetadataFile);
    if (!text) return std::nullopt;
    auto served = metadata::ParseTimestamp(*text, kMaxMetadataFile);
    if (!served) return std::nullopt;
    const uint64_t served_version = served->signed_data.version;
    if (version > served_version) return false;
    if (version < served_version) return std::nullopt;  // older ones are not kept
    auto ours_canonical = served->CanonicalSigned();
    if (!ours_canonical) return std::nullopt;
    return *ours_canonical == canonical;
  }

  // Does the usage log hold a successful `sign` by key `keyid` of the message with `digest`?
  std::optional<bool> SignedByUs(const std::string& keyid, const std::string& digest) const {
    if (options_.usage_log.empty()) return std::nullopt;
    auto log = audit::AuditLog::OpenExisting(options_.usage_log);
    if (!log) return std::nullopt;
    audit::AuditFilter f;
    f.key = keyid;
    f.operation = "sign";
    f.result = audit::UsageResult::kOk;
    f.limit = 10000;
    // "sha256=<hex>", or followed by "; ..." (e.g. "; access-control=off" from a local vault).
    const std::string needle = "sha256=" + digest;
    for (;;) {  // every sign record of the key, a page at a time
      auto records = log->Query(f);
      if (!records) return std::nullopt;
      for (const audit::UsageRecord& r : *records) {
        if (r.details == needle || r.details.rfind(needle + ";", 0) == 0) return true;
      }
      if (records->size() < f.limit) return false;
      f.after_seq = records->back().seq;
    }
  }

  CorroborationOptions options_;
  std::mutex mu_;
  std::map<std::string, Served> served_;       // app -> its served metadata as last read
  std::map<std::string, BlobAnswer> blobs_;    // sha256 -> the last comparison of that blob
};

}  // namespace

monitor::Corroboration ServerCorroboration(CorroborationOptions options) {
  auto checker = std::make_shared<Checker>(std::move(options));
  monitor::Corroboration out;
  out.foreign_metadata = [checker](const std::string& app, const std::string& document) {
    return checker->Foreign(app, document);
  };
  out.content = [checker](const std::string& app, const std::string& version) {
    return checker->Content(app, version);
  };
  return out;
}

}  // namespace airlock::server
