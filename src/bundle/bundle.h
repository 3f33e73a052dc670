// Sealed bundles (.alb): an app's files, encrypted end to end under a fresh content key wrapped to each
// recipient, and signed. The format is specified in docs/formats/bundle.md; this header is its API.
#ifndef AIRLOCK_BUNDLE_BUNDLE_H_
#define AIRLOCK_BUNDLE_BUNDLE_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/archive.h"
#include "bundle/manifest.h"
#include "common/bytes.h"
#include "common/result.h"
#include "crypto/aead_stream.h"
#include "crypto/keys.h"
#include "crypto/signer.h"

namespace airlock::bundle {

inline constexpr uint8_t kBundleMagic[8] = {'A', 'L', 'B', '1', '\r', '\n', 0x1a, '\n'};
inline constexpr size_t kPreambleSize = 12;  // magic + header length
inline constexpr uint32_t kMaxHeaderSize = 16 * 1024 * 1024;
inline constexpr uint32_t kMaxSignatureBlockSize = 64 * 1024;
inline constexpr size_t kMaxRecipients = 1000;
inline constexpr size_t kMaxWrappedKeySize = 4096;
inline constexpr size_t kMinChunkSize = 1024;
inline constexpr std::string_view kSignaturePrefix = "airlock-bundle/v1\n";
// Staging directories beside the output (common/file.h, RemoveStaleStaging): ".airlock-open-XXXXXX"
// while opening (holds plaintext), ".airlock-seal-XXXXXX" while sealing.
inline constexpr char kOpenStagingPrefix[] = ".airlock-open-";
inline constexpr char kSealStagingPrefix[] = ".airlock-seal-";

struct Recipient {
  std::string key_id;
  std::string alg;
  Bytes wrapped_key;
};

struct BundleHeader {
  std::string app_id;
  std::string version;
  std::string created;
  ArchiveFormat archive = ArchiveFormat::kZip;
  size_t chunk_size = crypto::kDefaultChunkSize;
  uint64_t payload_length = 0;
  std::string payload_sha256;  // hex
  uint64_t plain_length = 0;
  std::vector<Recipient> recipients;
  Manifest files;
};

struct SignatureBlock {
  std::string key_id;
  std::string scheme;
  Bytes signature;
};

// kInvalidArgument unless 1..255 bytes of [A-Za-z0-9._-].
[[nodiscard]] Result<void> ValidateAppId(std::string_view app_id);

nlohmann::json HeaderToJson(const BundleHeader& header);
// Parses and validates header bytes (untrusted): kMalformed, kUnsupported, kLimitExceeded, kUnsafePath.
[[nodiscard]] Result<BundleHeader> ParseHeader(ByteSpan header_json, const Limits& limits = {});
[[nodiscard]] Result<SignatureBlock> ParseSignatureBlock(ByteSpan block);

// Associated data binding wrapped keys and payload chunks to the app and version.
Bytes ContentKeyAad(std::string_view app_id, std::string_view version);
Bytes PayloadAad(std::string_view app_id, std::string_view version);

struct SealOptions {
  std::string app_id;
  std::string version;
  ArchiveFormat format = ArchiveFormat::kZip;  // used when the input is a folder
  size_t chunk_size = crypto::kDefaultChunkSize;
  Limits limits;
  // The 32-byte content key to encrypt under; empty: a fresh one from the CSPRNG (the normal case).
  // Given when deltas of the same release are sealed under the same key (bundle/delta.h), so that
  // a device's one wrapped key opens either.
  ByteSpan content_key;
};

// Seals `input` (a folder, or an existing zip or tar used as the payload as it is) into `out`, written
// atomically: on any error no file appears at `out`. `signer` must be able to sign (not x25519); each
// recipient must be able to wrap (x25519 or RSA). Errors: kInvalidArgument (app id, version, keys,
// no recipients, duplicate recipients), kAlreadyExists (out exists), and those of CreateArchive /
// ScanArchive for bad input.
[[nodiscard]] Result<BundleHeader> SealBundle(const std::filesystem::path& input, const SealOptions& options,
                                              const crypto::PrivateKey& signer,
                                              const std::vector<crypto::PublicKey>& recipients,
                                              const std::filesystem::path& out);
// The same, signing through `signer` (a key file or a key store key, crypto/signer.h).
[[nodiscard]] Result<BundleHeader> SealBundle(const std::filesystem::path& input, const SealOptions& options,
                                              crypto::Signer& signer,
                                              const std::vector<crypto::PublicKey>& recipients,
                                              const std::filesystem::path& out);

struct BundleInfo {
  BundleHeader header;
  SignatureBlock signature;
  uint64_t file_size = 0;
  bool signature_verified = false;
  bool payload_verified = false;  // the payload's SHA-256 equals the signed header's
};

// Reads a bundle's header and signature block. With `verify_key`, the signature is checked first
// (kWrongKey / kBadSignature), the file size against the header (kTruncated / kTrailingData), then
// the whole payload is read and its SHA-256 compared with the signed one (kHashMismatch): nothing
// is decrypted. Without it nothing is verified and the result must be treated as untrusted (it is
// for display only).
[[nodiscard]] Result<BundleInfo> InspectBundle(const std::filesystem::path& path,
                                               const crypto::PublicKey* verify_key,
                                               const Limits& limits = {});

using PlaintextSink = std::function<Result<void>(ByteSpan)>;

// Verifies the signature (under `verify_key`) and the header before anything else, unwraps the content key
// with `decrypt_key`, then reads the payload once, hashing it and streaming the decrypted archive to
// `sink` chunk by chunk (each chunk authenticated first); the payload digest is compared at the end. Errors: kMalformed
// (not a bundle), kWrongKey (signed by another key, or not encrypted to this key), kBadSignature,
// kTruncated, kTrailingData, kHashMismatch (payload digest), kDecryptFailed. If it fails after the sink
// has been called, everything the sink received must be discarded.
[[nodiscard]] Result<BundleHeader> DecryptBundlePayload(const std::filesystem::path& path,
                                                        const crypto::PublicKey& verify_key,
                                                        const crypto::PrivateKey& decrypt_key,
                                                        const PlaintextSink& sink,
                                                        const Limits& limits = {});

// The same with the bundle's 32-byte content key given instead of a recipient key (device mode: the
// server unwraps the content key in its vault and re-wraps it to each device, which unwraps it and
// calls this). The signature and header are still verified first under `verify_key`. Errors as
// DecryptBundlePayload, plus kInvalidArgument if `content_key` is not 32 bytes; a wrong content key
// fails with kDecryptFailed on the first chunk, before the sink receives anything.
[[nodiscard]] Result<BundleHeader> DecryptBundlePayloadWithContentKey(
    const std::filesystem::path& path, const crypto::PublicKey& verify_key, ByteSpan content_key,
    const PlaintextSink& sink, const Limits& limits = {});

// Opens a bundle into `out_dir`, which must not exist or be an empty directory (kAlreadyExists
// otherwise). Everything is verified (see DecryptBundlePayload; then the archive's format against
// the header's `archive` (kMalformed) and every file against the manifest: kHashMismatch,
// kUnsafePath, kLimitExceeded) in a private staging folder beside `out_dir` (kOpenStagingPrefix,
// 0700), whose files and directories are fsynced before it is renamed into place with
// RenameNoReplace (so anything that appears at `out_dir` meanwhile is never replaced:
// kAlreadyExists), then the parent is fsynced. On failure or interruption (common/file.h
// RequestInterrupt) nothing appears at `out_dir` and the staging is removed; staging left by a
// killed run is removed by the next open into the same parent folder.
[[nodiscard]] Result<BundleHeader> OpenBundle(const std::filesystem::path& path,
                                              const crypto::PublicKey& verify_key,
                                              const crypto::PrivateKey& decrypt_key,
                                              const std::filesystem::path& out_dir,
                                              const Limits& limits = {});

// OpenBundle with the content key given (see DecryptBundlePayloadWithContentKey), with the same
// guarantees: everything verified in staging, nothing at `out_dir` on failure.
[[nodiscard]] Result<BundleHeader> OpenBundleWithContentKey(const std::filesystem::path& path,
                                                            const crypto::PublicKey& verify_key,
                                                            ByteSpan content_key,
                                                            const std::filesystem::path& out_dir,
                                                            const Limits& limits = {});

}  // namespace airlock::bundle

#endif  // AIRLOCK_BUNDLE_BUNDLE_H_
