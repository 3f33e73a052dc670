// Deltas (.ald): what a device needs to go from an installed release (the base) to a new one
// without downloading the whole bundle. The format is specified in docs/formats/delta.md; this
// header is its API.
//
// A delta is signed by the same key as the new release's bundle and encrypted under the same
// content key (SealOptions::content_key), with a fresh nonce prefix and its own associated data,
// so a device's one wrapped key opens either and a delta's chunks can never pass for a bundle's.
// Its payload is one zstd frame, compressed with the base as reference ("patch") or without it
// ("files"), which decompresses to the new release's signed manifest followed by the bytes of the
// files the base does not hold (by SHA-256); every other file is copied from the installed base.
// Applying checks every file of the result against the new manifest, and the base's files
// against the base's manifest, before anything is placed.
#ifndef AIRLOCK_BUNDLE_DELTA_H_
#define AIRLOCK_BUNDLE_DELTA_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "bundle/manifest.h"
#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"
#include "crypto/signer.h"

namespace airlock::bundle {

inline constexpr uint8_t kDeltaMagic[8] = {'A', 'L', 'D', '1', '\r', '\n', 0x1a, '\n'};
inline constexpr std::string_view kDeltaSignaturePrefix = "airlock-delta/v1\n";
// A base larger than this is not used as a zstd reference: the reference is held in memory while
// applying, so a patch costs the device about this much memory at most (kFiles deltas, which copy
// unchanged files and carry changed ones whole, need none).
inline constexpr uint64_t kMaxDeltaReference = 64ull << 20;

enum class DeltaMethod { kPatch, kFiles };
std::string_view DeltaMethodName(DeltaMethod method);  // "patch" / "files"

struct DeltaHeader {
  std::string app_id;
  std::string version;  // the new release's
  std::string created;
  std::string base_version;
  std::string base_manifest_sha256;  // DeltaManifestDigest of the base's signed manifest
  DeltaMethod method = DeltaMethod::kPatch;
  size_t chunk_size = 0;
  uint64_t payload_length = 0;
  std::string payload_sha256;
  uint64_t plain_length = 0;
};

// A delta's TUF target custom fields, {"format": "airlock-delta", "delta": {"app_id", "version",
// "base_version", "method"}}: written by `release publish`, read by /v1/check and the agent. No
// release-rule fields, so release policy never takes a delta for a release.
struct DeltaTargetCustom {
  std::string app_id, version, base_version, method;
};
nlohmann::json DeltaTargetCustomJson(const DeltaTargetCustom& custom);
// std::nullopt for any other target's custom (or a malformed one).
std::optional<DeltaTargetCustom> ReadDeltaTargetCustom(const nlohmann::json& custom);

// The SHA-256 (hex) of a manifest's JSON text as ManifestToJson(...).dump() writes it: what names
// a base.
std::string DeltaManifestDigest(const Manifest& manifest);

// An unpacked release: its signed manifest and the folder holding its files.
struct ReleaseFiles {
  std::string version;
  Manifest manifest;
  std::filesystem::path dir;
};

struct DeltaOptions {
  std::string app_id;
  DeltaMethod method = DeltaMethod::kPatch;
  int level = 19;  // zstd level
  size_t chunk_size = crypto::kDefaultChunkSize;
  Limits limits;
};

// Makes the delta from `base` to `target` (both folders on disk, checked against their
// manifests: kHashMismatch), signed by `signer`, encrypted under `content_key` (32 bytes), written
// atomically to `out` (never over an existing file). kLimitExceeded: a base above
// kMaxDeltaReference for kPatch.
[[nodiscard]] Result<DeltaHeader> MakeDelta(const ReleaseFiles& base, const ReleaseFiles& target,
                                            const DeltaOptions& options, crypto::Signer& signer,
                                            ByteSpan content_key, const std::filesystem::path& out);

struct AppliedDelta {
  DeltaHeader header;
  Manifest files;  // the new release's signed manifest
};

// Reads a delta's signature block without verifying anything (to pick the verification key).
[[nodiscard]] Result<SignatureBlock> ReadDeltaSignature(const std::filesystem::path& path);

// Applies the delta at `path` to the installed `base` into `out_dir` (which must not exist), in
// this order: the signature under `verify_key` (kWrongKey, kBadSignature), the header, the file's
// size (kTruncated, kTrailingData), the base (kHashMismatch: "made for another base" when the
// header names another base manifest, or a base file that differs from its signed hash), then the
// payload, each chunk authenticated before its plaintext goes on (kDecryptFailed), its digest
// (kHashMismatch), the decompressed stream (kMalformed), and every written file against the new
// manifest (kHashMismatch). Staged in a private folder beside `out_dir` and moved into place only
// when everything held; on any error nothing appears at `out_dir`.
[[nodiscard]] Result<AppliedDelta> ApplyDelta(const std::filesystem::path& path,
                                              const crypto::PublicKey& verify_key,
                                              ByteSpan content_key, const ReleaseFiles& base,
                                              const std::filesystem::path& out_dir,
                                              const Limits& limits = {});

}  // namespace airlock::bundle

#endif  // AIRLOCK_BUNDLE_DELTA_H_
