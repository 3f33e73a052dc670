// TUF metadata (specification 1.0.x): the four top-level roles and delegated targets roles, their
// JSON form, signatures over canonical JSON, thresholds, expiry and length/hash checks.
//
// Parsing never verifies anything; verification is explicit (VerifyRole, Root::VerifyDelegate,
// Targets::VerifyDelegate, VerifyRootRotation, CheckExpiry, MetaFile/TargetFile::Verify). There is
// no "accept all" mode. The client workflow (which metadata to trust when) lives in src/client.
//
// Error codes (asserted by the tests):
//   kLimitExceeded  document larger than its size limit, or nested too deep
//   kMalformed      not JSON, wrong shape or type, a float anywhere, bad date, threshold 0,
//                   version 0, duplicate key ids in a role or in "signatures", paths and
//                   path_hash_prefixes both or neither set
//   kUnsupported    `_type` names another role; spec_version major is not 1; succinct_roles
//   kBadSignature   fewer than `threshold` distinct authorized keys signed ("root: 1 of 2 required
//                   signatures")
//   kExpired        expires <= now
//   kRollback       a version lower than the trusted one (and root rotation not exactly N+1)
//   kHashMismatch   length or a hash does not match; no hash of a known algorithm (sha256, sha512)
//
// Thread-safety: all types are plain values; const access from several threads is safe.
#ifndef AIRLOCK_METADATA_METADATA_H_
#define AIRLOCK_METADATA_METADATA_H_

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/signer.h"

namespace airlock::metadata {

// The spec_version we write; we read any "1.x[.y]".
inline constexpr std::string_view kSpecVersion = "1.0.31";

// Default download/parse bounds, as the reference clients (python-tuf ngclient, tuf-js) use them.
inline constexpr size_t kMaxRootSize = 512000;
inline constexpr size_t kMaxTimestampSize = 16384;
inline constexpr size_t kMaxSnapshotSize = 2000000;
inline constexpr size_t kMaxTargetsSize = 5000000;
// JSON nesting bound (targets' `custom` is free-form; this leaves it ~24 levels).
inline constexpr size_t kMaxMetadataDepth = 32;

enum class RoleType { kRoot, kTargets, kSnapshot, kTimestamp };
// "root", "targets", "snapshot", "timestamp".
std::string_view RoleTypeName(RoleType type);
// True for the four top-level role names.
bool IsTopLevelRoleName(std::string_view name);

// ISO 8601 "YYYY-MM-DDTHH:MM:SSZ" (UTC). Parsing also accepts fractional seconds ("...:SS.sssZ", as
// JavaScript's toISOString writes them; the fraction is dropped). kMalformed otherwise.
[[nodiscard]] Result<std::time_t> ParseTufTime(std::string_view text);
std::string FormatTufTime(std::time_t t);

// Hash algorithm name ("sha256", "sha512", ...) -> lower-case hex digest, as listed in metadata.
using Hashes = std::map<std::string, std::string>;

// ---------------------------------------------------------------------------------------------------
// Keys

// A public key as TUF JSON: {"keytype", "scheme", "keyval": {"public": ...}}.
// Supported (keytype, scheme): ("ed25519","ed25519") with hex raw key; ("ecdsa" or the legacy
// "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") with PEM; ("rsa","rsassa-pss-sha256") with PEM.
// Any other type or scheme, or a public value that does not load, still parses: `public_key` is then
// empty and the key never counts toward a threshold (specification behaviour).
struct Key {
  std::string keytype;
  std::string scheme;
  nlohmann::json keyval = nlohmann::json::object();              // as listed (holds "public")
  nlohmann::json unrecognized_fields = nlohmann::json::object();  // other members, kept for writing
  std::optional<crypto::PublicKey> public_key;                    // set when usable for verification

  // kMalformed if `json` is not an object with string keytype/scheme and an object keyval holding a
  // string "public".
  [[nodiscard]] static Result<Key> FromJson(const nlohmann::json& json);
  // The TUF JSON of a key we hold (crypto::PublicKey::TufJson()); its key id is key.KeyId().
  static Key FromPublicKey(const crypto::PublicKey& key);
  nlohmann::json ToJson() const;
  bool usable() const { return public_key.has_value(); }
};

// Key id (as listed in the metadata; never recomputed) -> key.
using KeyMap = std::map<std::string, Key>;

// ---------------------------------------------------------------------------------------------------
// Signed parts of each role

// Fields every role's "signed" object has. `expires` is seconds since the epoch (UTC).
struct SignedCommon {
  std::string spec_version = std::string(kSpecVersion);
  uint64_t version = 1;
  std::time_t expires = 0;
  // Members of "signed" we do not know; written back by ToJson.
  nlohmann::json unrecognized_fields = nlohmann::json::object();

  bool IsExpired(std::time_t now) const { return now >= expires; }
};

// A top-level role's key ids and threshold in root.
struct Role {
  std::vector<std::string> keyids;  // unique
  uint64_t threshold = 1;           // >= 1
  nlohmann::json unrecognized_fields = nlohmann::json::object();
};

// An entry of snapshot's or timestamp's "meta".
struct MetaFile {
  uint64_t version = 1;
  std::optional<uint64_t> length;
  std::optional<Hashes> hashes;  // when present, non-empty
  nlohmann::json unrecognized_fields = nlohmann::json::object();

  // Checks `data` against length and hashes when they are given (nothing to check -> ok).
  // kHashMismatch on any mismatch, or if hashes are given but none is of a known algorithm.
  [[nodiscard]] Result<void> Verify(ByteSpan data) const;
};

// An entry of targets' "targets".
struct TargetFile {
  uint64_t length = 0;
  Hashes hashes;                         // non-empty
  std::optional<nlohmann::json> custom;  // free-form, signed
  nlohmann::json unrecognized_fields = nlohmann::json::object();

  // kHashMismatch if the length or any hash of a known algorithm (sha256, sha512) differs, or if no
  // listed hash is of a known algorithm. Unknown algorithms are skipped.
  [[nodiscard]] Result<void> Verify(ByteSpan data) const;
  // The same, from a file (streamed). kNotFound / kIo for the file; kHashMismatch as above.
  [[nodiscard]] Result<void> VerifyFile(const std::filesystem::path& path) const;
  // Builds the entry for `data`: its length and sha256 (and sha512 if `with_sha512`).
  static TargetFile FromData(ByteSpan data, bool with_sha512 = false);
};

// A delegated targets role.
struct DelegatedRole {
  std::string name;
  std::vector<std::string> keyids;  // unique
  uint64_t threshold = 1;           // >= 1
  bool terminating = false;
  // Exactly one of the two is set (either may be an empty list, matching nothing).
  std::optional<std::vector<std::string>> paths;
  std::optional<std::vector<std::string>> path_hash_prefixes;
  nlohmann::json unrecognized_fields = nlohmann::json::object();

  // True if `target_path` is delegated to this role: some `paths` pattern matches it (see
  // MatchesPathPattern), or the hex SHA-256 of the path starts with some `path_hash_prefixes` entry.
  bool IsDelegatedPath(std::string_view target_path) const;
};

// `pattern` matches `target_path` when both have the same number of '/'-separated parts and each
// part matches as Python's fnmatch.fnmatch (POSIX, so case-sensitive) would: '*', '?', '[seq]',
// '[!seq]', no escapes, '[^seq]' a set holding '^' (not a negation), a '[' without its ']' a
// literal; so '*' never matches '/'. Exactly python-tuf's DelegatedRole._is_target_in_pathpattern
// (path_pattern.cc lists the rules; tests/vectors/tuf_path_patterns/ holds Python's answers for a
// table of cases).
bool MatchesPathPattern(std::string_view pattern, std::string_view target_path);

struct Delegations {
  KeyMap keys;
  std::vector<DelegatedRole> roles;  // in order of priority; names unique and not top-level names
  nlohmann::json unrecognized_fields = nlohmann::json::object();

  const DelegatedRole* FindRole(std::string_view name) const;
  // The roles `target_path` is delegated to, in order, as (name, terminating) pairs.
  std::vector<std::pair<std::string, bool>> RolesForTarget(std::string_view target_path) const;
  // Adds (or replaces) a key under its key id and lists it for role `role_name` (which must exist).
  // kNotFound if there is no such role.
  [[nodiscard]] Result<void> AddKey(std::string_view role_name, const crypto::PublicKey& key);
};

class Envelope;

struct Root : SignedCommon {
  static constexpr RoleType kRoleType = RoleType::kRoot;
  static constexpr std::string_view kTypeName = "root";
  static constexpr size_t kDefaultMaxSize = kMaxRootSize;

  bool consistent_snapshot = true;  // absent in the input -> false
  KeyMap keys;
  std::map<std::string, Role> roles;  // exactly root, targets, snapshot, timestamp

  // kMalformed for a wrong shape; kUnsupported for a wrong `_type` or spec_version.
  [[nodiscard]] static Result<Root> FromJson(const nlohmann::json& signed_json);
  nlohmann::json ToJson() const;

  // Verifies that `delegate` (the envelope of top-level role `role_name`, or of the next root) carries
  // a threshold of signatures by the keys this root assigns to `role_name`. kInvalidArgument for a name
  // that is not a top-level role; kBadSignature when short of the threshold.
  [[nodiscard]] Result<void> VerifyDelegate(std::string_view role_name,
                                            const Envelope& delegate) const;
  // Adds (or replaces) `key` under its key id and lists it for `role_name` (kInvalidArgument if not a
  // top-level role name). Creates the role entry with threshold 1 if missing.
  [[nodiscard]] Result<void> AddKey(std::string_view role_name, const crypto::PublicKey& key);
  // Removes `keyid` from `role_name`; drops it from `keys` when no role uses it any more.
  // kNotFound if the role does not list it.
  [[nodiscard]] Result<void> RevokeKey(std::string_view role_name, std::string_view keyid);
};

struct Targets : SignedCommon {
  static constexpr RoleType kRoleType = RoleType::kTargets;
  static constexpr std::string_view kTypeName = "targets";
  static constexpr size_t kDefaultMaxSize = kMaxTargetsSize;

  std::map<std::string, TargetFile> targets;  // target path -> file
  std::optional<Delegations> delegations;

  [[nodiscard]] static Result<Targets> FromJson(const nlohmann::json& signed_json);
  nlohmann::json ToJson() const;

  // Verifies `delegate` (the envelope of delegated role `role_name`) against this role's delegations.
  // kNotFound if no such delegated role; kBadSignature when short of the threshold.
  [[nodiscard]] Result<void> VerifyDelegate(std::string_view role_name,
                                            const Envelope& delegate) const;
};

struct Snapshot : SignedCommon {
  static constexpr RoleType kRoleType = RoleType::kSnapshot;
  static constexpr std::string_view kTypeName = "snapshot";
  static constexpr size_t kDefaultMaxSize = kMaxSnapshotSize;

  std::map<std::string, MetaFile> meta;  // "targets.json", "<role>.json" -> entry

  [[nodiscard]] static Result<Snapshot> FromJson(const nlohmann::json& signed_json);
  nlohmann::json ToJson() const;
};

struct Timestamp : SignedCommon {
  static constexpr RoleType kRoleType = RoleType::kTimestamp;
  static constexpr std::string_view kTypeName = "timestamp";
  static constexpr size_t kDefaultMaxSize = kMaxTimestampSize;

  MetaFile snapshot_meta;  // meta["snapshot.json"]; other meta entries are ignored

  [[nodiscard]] static Result<Timestamp> FromJson(const nlohmann::json& signed_json);
  nlohmann::json ToJson() const;
};

// ---------------------------------------------------------------------------------------------------
// Envelopes: {"signatures": [{"keyid", "sig"}], "signed": {...}}

struct Signature {
  std::string keyid;
  std::string sig;  // hex, as listed (an undecodable value simply never verifies)
};

class Envelope {
 public:
  std::vector<Signature> signatures;
  // The "signed" object exactly as received (or as built by ToJson). Signatures are over its canonical
  // JSON, so unknown fields are covered.
  nlohmann::json signed_json = nlohmann::json::object();
  // Envelope members other than "signatures" and "signed".
  nlohmann::json unrecognized_fields = nlohmann::json::object();

  // Parses the envelope only (any `_type`). kLimitExceeded if `bytes` exceed `max_size` or nest
  // deeper than kMaxMetadataDepth; kMalformed for a wrong shape, a float anywhere in "signed", or a
  // key id listed twice in "signatures" (the specification makes them unique; python-tuf and tuf-js
  // refuse such a document too, even when the remaining signatures would meet the threshold).
  [[nodiscard]] static Result<Envelope> Parse(std::string_view bytes, size_t max_size);

  // The bytes signatures are made over: canonical JSON of signed_json.
  [[nodiscard]] Result<std::string> CanonicalSigned() const;
  // Signs CanonicalSigned() with `key` and adds {"keyid": key.KeyId(), "sig": hex}, replacing an
  // existing signature by the same key id. kInvalidArgument for a key that cannot sign or a float in
  // signed_json.
  [[nodiscard]] Result<void> Sign(const crypto::PrivateKey& key);
  // The same through a signer (a key store or HSM key); the signature is identical in format.
  [[nodiscard]] Result<void> Sign(crypto::Signer& signer);
  // The whole envelope as JSON text (pretty, 1-space indent, keys sorted; valid for tuf-js/python-tuf).
  [[nodiscard]] Result<std::string> ToBytes() const;
  nlohmann::json ToJson() const;
};

// kMalformed ("signatures list key id <id> more than once") if two signatures name the same key id.
[[nodiscard]] Result<void> CheckUniqueSignatureKeyIds(const std::vector<Signature>& signatures);

// Number of distinct key ids in `role_keyids` that are in `keys`, usable, and have a signature in
// `envelope` that verifies over its canonical signed bytes. Duplicate signatures count once.
size_t CountValidSignatures(const Envelope& envelope, const KeyMap& keys,
                            const std::vector<std::string>& role_keyids);

// ok if CountValidSignatures() >= threshold; otherwise kBadSignature with the message
// "<role_name>: <n> of <threshold> required signatures". A threshold of 0 is refused
// (kBadSignature); an envelope whose signatures repeat a key id is refused (kMalformed, as
// Envelope::Parse).
[[nodiscard]] Result<void> VerifyRole(const Envelope& envelope, const KeyMap& keys,
                                      const std::vector<std::string>& role_keyids, uint64_t threshold,
                                      std::string_view role_name = "metadata");

// A parsed role: the envelope (signatures and signed_json as received) plus its typed signed part.
// After changing `signed_data`, call Rebuild() before signing.
template <typename T>
class Metadata : public Envelope {
 public:
  T signed_data;

  Metadata() = default;
  explicit Metadata(T data) : signed_data(std::move(data)) { Rebuild(); }

  // signed_json = signed_data.ToJson(), and drops all signatures (they no longer match).
  void Rebuild() {
    signed_json = signed_data.ToJson();
    signatures.clear();
  }
};

// Parses a role from the bytes of its file. Errors as listed at the top; in addition kUnsupported if
// `_type` is not T's. The default bound is T::kDefaultMaxSize.
template <typename T>
[[nodiscard]] Result<Metadata<T>> ParseMetadata(std::string_view bytes,
                                                size_t max_size = T::kDefaultMaxSize);

[[nodiscard]] inline Result<Metadata<Root>> ParseRoot(std::string_view bytes,
                                                      size_t max_size = kMaxRootSize) {
  return ParseMetadata<Root>(bytes, max_size);
}
[[nodiscard]] inline Result<Metadata<Targets>> ParseTargets(std::string_view bytes,
                                                            size_t max_size = kMaxTargetsSize) {
  return ParseMetadata<Targets>(bytes, max_size);
}
[[nodiscard]] inline Result<Metadata<Snapshot>> ParseSnapshot(std::string_view bytes,
                                                              size_t max_size = kMaxSnapshotSize) {
  return ParseMetadata<Snapshot>(bytes, max_size);
}
[[nodiscard]] inline Result<Metadata<Timestamp>> ParseTimestamp(
    std::string_view bytes, size_t max_size = kMaxTimestampSize) {
  return ParseMetadata<Timestamp>(bytes, max_size);
}

// Builds the envelope for `data` and signs it with each of `keys` (in order).
template <typename T>
[[nodiscard]] Result<Metadata<T>> SignMetadata(const T& data,
                                               const std::vector<const crypto::PrivateKey*>& keys) {
  Metadata<T> md(data);
  for (const crypto::PrivateKey* key : keys) {
    if (key == nullptr) return MakeError(ErrorCode::kInvalidArgument, "null signing key");
    AIRLOCK_TRY(md.Sign(*key));
  }
  return md;
}

// The same with signers (key store keys, see crypto/signer.h). A constrained template rather than a
// plain overload so that existing calls with a braced list of PrivateKey pointers stay unambiguous
// (a braced list cannot deduce `Signers`).
template <typename T, typename Signers>
  requires std::same_as<Signers, std::vector<crypto::Signer*>>
[[nodiscard]] Result<Metadata<T>> SignMetadata(const T& data, const Signers& signers) {
  Metadata<T> md(data);
  for (crypto::Signer* signer : signers) {
    if (signer == nullptr) return MakeError(ErrorCode::kInvalidArgument, "null signer");
    AIRLOCK_TRY(md.Sign(*signer));
  }
  return md;
}

// ---------------------------------------------------------------------------------------------------
// Checks the client workflow is made of

// kExpired ("<role_name> expired at <time>") if common.expires <= now.
[[nodiscard]] Result<void> CheckExpiry(const SignedCommon& common, std::time_t now,
                                       std::string_view role_name);

// kRollback if `new_version` < `trusted_version`.
[[nodiscard]] Result<void> CheckNoRollback(uint64_t trusted_version, uint64_t new_version,
                                           std::string_view role_name);

// Root rotation (specification 5.3.4-5.3.5): `next` must be signed by a threshold of `trusted`'s root
// keys AND a threshold of its own root keys (kBadSignature, the message says which), and its version
// must be exactly trusted's + 1 (kRollback otherwise). Expiry is not checked here (only the final
// root's expiry matters; use CheckExpiry).
[[nodiscard]] Result<void> VerifyRootRotation(const Metadata<Root>& trusted,
                                              const Metadata<Root>& next);

// Incremental length + hash check of a download. Update() fails early (kHashMismatch) once more bytes
// than `length` arrive; Finish() checks the exact length and every known hash.
class LengthAndHashVerifier {
 public:
  // kHashMismatch if `hashes` is given but holds no known algorithm (sha256, sha512).
  [[nodiscard]] static Result<LengthAndHashVerifier> Create(std::optional<uint64_t> length,
                                                            const std::optional<Hashes>& hashes);
  [[nodiscard]] Result<void> Update(ByteSpan data);
  // The verifier must not be used afterwards.
  [[nodiscard]] Result<void> Finish();

  uint64_t bytes_seen() const { return seen_; }

 private:
  LengthAndHashVerifier() = default;
  std::optional<uint64_t> length_;
  uint64_t seen_ = 0;
  std::vector<std::pair<std::string, crypto::Hasher>> hashers_;  // (expected hex, hasher)
  std::vector<std::string> names_;                               // algorithm per hasher
};

// The consistent-snapshot download path of target `target_path` given one of its hashes (hex):
// "a/b/c.txt" -> "a/b/<hash>.c.txt".
std::string ConsistentTargetPath(std::string_view target_path, std::string_view hash_hex);

}  // namespace airlock::metadata

#endif  // AIRLOCK_METADATA_METADATA_H_
