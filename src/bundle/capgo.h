// Capgo encryption v2 compatibility: open and produce bundles that unmodified
// @capgo/capacitor-updater apps accept (see docs/formats/capgo.md).
//
// The format, as made by the Capgo CLI (`capgo bundle encrypt`) and read by the plugin:
//   payload      AES-128-CBC with PKCS#7 padding over the plain zip; no header, IV or MAC in the file.
//   session key  base64(16-byte IV) ":" base64(RSA block), the block a PKCS#1 v1.5 type-1 block
//                (00 01 FF..FF 00 || payload, no DigestInfo) made with the developer's RSA private key
//                over the 16-byte AES key; the app recovers it with the public key.
//   checksum     lower-case hex of an RSA type-1 block over the raw 32-byte SHA-256 of the plain zip
//                (Capgo's current, "v3", form). The legacy form (base64 of a block) is refused.
//   manifest     delta updates: each file encrypted alone with the bundle's key and IV; `file_hash` is a
//                checksum-form block over SHA-256 of the plain file; a name ending ".br" holds the file
//                brotli-compressed before encryption (the hash still covers the uncompressed file).
//
// This mode is weaker than Airlock's sealed bundles (no authenticated encryption, no real signature);
// it exists only so Capgo apps can update from Airlock. Nothing else in Airlock should use it.
//
// All functions are thread-compatible (no shared state) and never throw. Files are streamed in
// constant memory; outputs are written through AtomicFile (common/file.h): private (0600) and
// locked under a temporary name beside the output until they are complete and checked, then placed
// with RenameNoReplace, so a failed or interrupted call leaves no file at the output path, an
// existing output is never replaced (kAlreadyExists), and a temporary file left by a killed run is
// removed by the next call writing the same output. Key material (the AES key, recovered blocks) is
// held in crypto::SecretBytes, wiped on every path.
#ifndef AIRLOCK_BUNDLE_CAPGO_H_
#define AIRLOCK_BUNDLE_CAPGO_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"
#include "crypto/secret_bytes.h"

namespace airlock::bundle::capgo {

inline constexpr size_t kAesKeySize = 16;  // AES-128
inline constexpr size_t kIvSize = 16;
inline constexpr size_t kDigestSize = 32;  // SHA-256
// Longest session key or checksum text parsed (a 4096-bit block is 684 base64 / 1024 hex characters).
inline constexpr size_t kMaxFieldText = 4 * 1024;
// Largest encrypted or plain bundle handled.
inline constexpr uint64_t kMaxPayloadSize = uint64_t{2} << 30;  // 2 GiB
// The Capgo CLI makes RSA-2048 keys; larger RSA keys work the same way and are accepted, smaller refused.
inline constexpr int kMinRsaBits = 2048;

// A recovered session key. `key` (kAesKeySize bytes) is secret: do not log it; it is wiped when the
// SessionKey is destroyed, on every path.
struct SessionKey {
  std::array<uint8_t, kIvSize> iv{};
  crypto::SecretBytes key;
};

// Parses "base64(IV):base64(block)" and recovers the AES key from the block with `public_key`.
// Errors:
//   kMalformed      empty, longer than kMaxFieldText, not exactly one ':', invalid (or non-strict)
//                   base64, IV not 16 bytes, or the recovered key not 16 bytes;
//   kBadSignature   the block does not recover under this key (the wrong public key, or tampered);
//   kUnsupported    `public_key` is not RSA.
[[nodiscard]] Result<SessionKey> ParseSessionKey(std::string_view text,
                                                 const crypto::PublicKey& public_key);

// Parses a checksum (or a manifest `file_hash`) and returns the 32-byte SHA-256 it vouches for.
// Accepted: hex (either case) of exactly one RSA block for `public_key`'s modulus.
// Errors:
//   kUnsupported    the legacy base64 form (current plugins reject it: re-encrypt with a current
//                   Capgo CLI), a bare 64-hex SHA-256 (an unsigned checksum proves nothing), or a
//                   non-RSA `public_key`;
//   kBadSignature   hex that does not recover under this key (wrong key, tampered, or a block of
//                   another key size);
//   kMalformed      empty, too long, neither hex nor base64, or a block not holding 32 bytes.
[[nodiscard]] Result<Bytes> ParseChecksum(std::string_view text, const crypto::PublicKey& public_key);

struct EncryptResult {
  std::string session_key;  // "base64(IV):base64(block)", Capgo's `ivSessionKey` / `session_key`
  std::string checksum;     // hex of the signed SHA-256, Capgo's `checksum`
  Bytes sha256;             // SHA-256 of the plain zip
  uint64_t plain_size = 0;
  uint64_t encrypted_size = 0;
};

// Encrypts `zip_path` for Capgo with a fresh random AES-128 key and IV, writes the ciphertext to
// `out_path` atomically, and returns the session key and checksum to publish with it.
// Errors: kUnsupported (key not RSA, or under kMinRsaBits), kNotFound (no input), kLimitExceeded (input
// over kMaxPayloadSize), kIo, kCrypto.
[[nodiscard]] Result<EncryptResult> EncryptFile(const std::filesystem::path& zip_path,
                                                const crypto::PrivateKey& private_key,
                                                const std::filesystem::path& out_path);

// The developer's Capgo key wherever it lives: `private_encrypt` makes an RSA PKCS#1 v1.5 type-1
// block over its input with the private key (crypto::RsaPkcs1Type1Sign for a key file, KeyStore::
// PrivateEncryptPkcs1 for a vault or HSM key); `public_key` is the matching RSA public key (the one
// the app holds). `private_encrypt` is called twice per EncryptFile: over the 16-byte AES key, then
// over the 32-byte SHA-256.
struct CapgoSigner {
  std::function<Result<Bytes>(ByteSpan data)> private_encrypt;
  crypto::PublicKey public_key;
};

// A CapgoSigner over a key in memory, which must outlive it. kUnsupported if the key is not RSA.
[[nodiscard]] Result<CapgoSigner> SignerFromPrivateKey(const crypto::PrivateKey& private_key);

// EncryptFile with the private key behind `signer`. The session key block is made first, so an
// unusable key fails before the payload is read; each block is checked to recover under
// signer.public_key (kWrongKey otherwise: the private half does not match) before anything is
// written. Errors as above, plus those of signer.private_encrypt, which are returned as they are.
[[nodiscard]] Result<EncryptResult> EncryptFile(const std::filesystem::path& zip_path,
                                                const CapgoSigner& signer,
                                                const std::filesystem::path& out_path);

struct DecryptResult {
  uint64_t size = 0;  // plain bytes written
  Bytes sha256;       // their SHA-256 (equal to the checksum's)
};

// Decrypts a Capgo bundle as the plugin does, but checks everything before anything becomes visible:
// the session key and then the checksum are parsed first, then the payload is decrypted into a temporary file
// beside `out_path`, which is renamed onto `out_path` only when the padding is valid and the SHA-256 of
// the plaintext equals the checksum's. Errors:
//   those of ParseSessionKey, then of ParseChecksum (so a wrong public key is reported by the former);
//   kNotFound (no input), kLimitExceeded (over kMaxPayloadSize),
//   kMalformed (ciphertext empty or not a multiple of 16 bytes),
//   kDecryptFailed (bad PKCS#7 padding: tampered, truncated, or another bundle's session key),
//   kHashMismatch (plaintext is not what the checksum vouches for), kIo, kCrypto.
[[nodiscard]] Result<DecryptResult> DecryptFile(const std::filesystem::path& encrypted_path,
                                                const crypto::PublicKey& public_key,
                                                std::string_view session_key,
                                                std::string_view checksum,
                                                const std::filesystem::path& out_path);

// Decrypts one file of a manifest (delta) update as the plugin does, encrypted with the bundle's
// `session` key and IV, and checks it against `file_hash` (ParseChecksum form) before writing
// `out_path` atomically. `file_name` is the manifest entry's name; a name ending ".br" holds the
// file brotli-compressed before encryption, and is decompressed (at most kMaxManifestFileSize
// bytes: kLimitExceeded) before the hash, which covers the uncompressed file, is checked
// (kMalformed for a broken brotli stream). Other errors as DecryptFile. (capgo_manifest.cc)
[[nodiscard]] Result<DecryptResult> DecryptManifestFile(const std::filesystem::path& encrypted_path,
                                                        const crypto::PublicKey& public_key,
                                                        const SessionKey& session,
                                                        std::string_view file_name,
                                                        std::string_view file_hash,
                                                        const std::filesystem::path& out_path);

// The largest file a manifest entry holds (compressed or not).
inline constexpr uint64_t kMaxManifestFileSize = uint64_t{256} << 20;
// Files of at least this size are brotli-compressed when that makes them smaller (as the Capgo CLI).
inline constexpr uint64_t kBrotliMinSize = 8 * 1024;

struct ManifestFile {
  std::string file_name;  // the release path, plus ".br" when brotli-compressed before encryption
  std::string file_hash;  // hex of a type-1 block over the SHA-256 of the plain file
  uint64_t encrypted_size = 0;
};

// Encrypts one file of a release for a Capgo manifest update, as the Capgo CLI does: brotli first
// when the file is kBrotliMinSize or more and brotli makes it smaller, then AES-128-CBC (PKCS#7)
// with the bundle's `session` key and IV (the plugin decrypts every file with the bundle's session
// key), written to `out_path` atomically; `file_hash` is signed by `signer`. `name` is the file's
// path in the release. Errors: kLimitExceeded (over kMaxManifestFileSize), kUnsafePath (a bad
// name), those of the signer, kIo.
[[nodiscard]] Result<ManifestFile> EncryptManifestFile(const std::filesystem::path& plain_path,
                                                       std::string_view name,
                                                       const SessionKey& session,
                                                       const CapgoSigner& signer,
                                                       const std::filesystem::path& out_path);

// The key id the plugin sends as `key_id` (CapgoUpdater.java -> CryptoCipher.calcKeyId): the first
// 20 characters of the base64 body of the app's public key as a PKCS#1 PEM ("BEGIN RSA PUBLIC
// KEY"), headers and whitespace removed. Empty for a key that is not RSA.
std::string KeyId(const crypto::PublicKey& public_key);

}  // namespace airlock::bundle::capgo

#endif  // AIRLOCK_BUNDLE_CAPGO_H_
