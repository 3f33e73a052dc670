#include "bundle/bundle.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <set>

#include <openssl/crypto.h>

#include "bundle/background_hasher.h"
#include "bundle/bundle_internal.h"
#include "common/bytes.h"
#include "common/fd.h"
#include "common/file.h"
#include "common/json.h"
#include "common/semver.h"
#include "crypto/base64.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "crypto/sign.h"
#include "crypto/wrap.h"

namespace airlock::bundle {

namespace fs = std::filesystem;

namespace {

constexpr size_t kIoBlock = 1 << 20;  // 1 MiB reads: few syscalls, constant memory
// Payload reads while opening: small enough for the CPU cache, large enough for few syscalls.
constexpr size_t kPayloadBlock = 128 * 1024;
// Blocks in flight between the reader and the hashing thread: a few, so that a hashing thread
// descheduled for a moment (a busy device) does not stop the reader at once.
constexpr size_t kPayloadBuffers = 4;

Bytes Aad(std::string_view label, std::string_view app_id, std::string_view version) {
  Bytes aad = ToBytes(label);
  aad.push_back(0);
  aad.insert(aad.end(), app_id.begin(), app_id.end());
  aad.push_back(0);
  aad.insert(aad.end(), version.begin(), version.end());
  return aad;
}

}  // namespace

namespace internal {

std::string NowUtc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ShortId(std::string_view key_id) { return std::string(key_id.substr(0, 16)); }

Bytes SignedMessage(ByteSpan preamble_and_header, std::string_view prefix) {
  Bytes msg(prefix.size() + preamble_and_header.size());
  std::memcpy(msg.data(), prefix.data(), prefix.size());
  std::memcpy(msg.data() + prefix.size(), preamble_and_header.data(), preamble_and_header.size());
  return msg;
}

Result<RawBundle> ReadRawBundle(const fs::path& path, const uint8_t (&magic)[8]) {
  RawBundle raw;
  AIRLOCK_ASSIGN_OR_RETURN(raw.fd, OpenForRead(path, &raw.file_size));
  uint8_t preamble[kPreambleSize];
  AIRLOCK_ASSIGN_OR_RETURN(size_t got, PreadSome(raw.fd.get(), 0, preamble));
  size_t magic_seen = std::min(got, sizeof magic);
  if (std::memcmp(preamble, magic, magic_seen) != 0 || got == 0) {
    return MakeError(ErrorCode::kMalformed,
                     &magic == &kBundleMagic ? "not an Airlock sealed bundle (bad magic)"
                                             : "not an Airlock delta (bad magic)");
  }
  if (got < kPreambleSize) return MakeError(ErrorCode::kTruncated, "bundle is truncated inside its preamble");
  uint32_t header_len = ReadU32Be(preamble + 8);
  if (header_len == 0) return MakeError(ErrorCode::kMalformed, "bundle header is empty");
  if (header_len > kMaxHeaderSize) {
    return MakeError(ErrorCode::kLimitExceeded, "bundle header of " + std::to_string(header_len) +
                                                    " bytes exceeds the limit of " +
                                                    std::to_string(kMaxHeaderSize));
  }
  if (raw.file_size < kPreambleSize + uint64_t{header_len} + 4) {
    return MakeError(ErrorCode::kTruncated, "bundle is truncated inside its header");
  }
  raw.preamble_and_header.resize(kPreambleSize + header_len);
  std::memcpy(raw.preamble_and_header.data(), preamble, kPreambleSize);
  AIRLOCK_TRY_CTX(PreadExact(raw.fd.get(), kPreambleSize,
                             std::span(raw.preamble_and_header).subspan(kPreambleSize)),
                  "bundle header");
  uint8_t sig_len_bytes[4];
  AIRLOCK_TRY_CTX(PreadExact(raw.fd.get(), kPreambleSize + header_len, sig_len_bytes), "bundle");
  uint32_t sig_len = ReadU32Be(sig_len_bytes);
  if (sig_len == 0) return MakeError(ErrorCode::kMalformed, "bundle signature block is empty");
  if (sig_len > kMaxSignatureBlockSize) {
    return MakeError(ErrorCode::kLimitExceeded, "bundle signature block exceeds the limit of " +
                                                    std::to_string(kMaxSignatureBlockSize) + " bytes");
  }
  uint64_t sig_offset = kPreambleSize + uint64_t{header_len} + 4;
  if (raw.file_size < sig_offset + sig_len) {
    return MakeError(ErrorCode::kTruncated, "bundle is truncated inside its signature block");
  }
  raw.signature_block.resize(sig_len);
  AIRLOCK_TRY_CTX(PreadExact(raw.fd.get(), sig_offset, raw.signature_block), "bundle signature");
  raw.payload_offset = sig_offset + sig_len;
  return raw;
}

Result<void> VerifySignature(const RawBundle& raw, const SignatureBlock& sig,
                             const crypto::PublicKey& verify_key, std::string_view prefix) {
  std::string expected = verify_key.KeyId();
  if (sig.key_id != expected) {
    return MakeError(ErrorCode::kWrongKey, "bundle is signed by key " + ShortId(sig.key_id) +
                                               ", not by the given verification key " + ShortId(expected));
  }
  if (sig.scheme != verify_key.TufScheme()) {
    return MakeError(ErrorCode::kBadSignature, "signature scheme '" + sig.scheme +
                                                   "' does not match the verification key's scheme '" +
                                                   verify_key.TufScheme() + "'");
  }
  auto ok = crypto::Verify(verify_key, SignedMessage(raw.preamble_and_header, prefix), sig.signature);
  if (!ok) {
    return MakeError(ErrorCode::kBadSignature,
                     "bad signature: the bundle header was altered after signing");
  }
  return {};
}

Result<void> CheckPayloadExtent(const RawBundle& raw, const BundleHeader& header) {
  uint64_t end = raw.payload_offset + header.payload_length;
  if (end < raw.payload_offset) return MakeError(ErrorCode::kMalformed, "payload length overflows");
  if (raw.file_size < end) {
    return MakeError(ErrorCode::kTruncated, "bundle is truncated: payload has " +
                                                std::to_string(raw.file_size - raw.payload_offset) +
                                                " of " + std::to_string(header.payload_length) + " bytes");
  }
  if (raw.file_size > end) {
    return MakeError(ErrorCode::kTrailingData, "bundle has " + std::to_string(raw.file_size - end) +
                                                   " bytes of trailing data after the payload");
  }
  return {};
}

}  // namespace internal

namespace {

using internal::RawBundle;
using internal::NowUtc;
using internal::ShortId;
using internal::SignedMessage;


tl::unexpected<Error> PayloadAltered() {
  return MakeError(ErrorCode::kHashMismatch,
                   "payload does not match its signed SHA-256 (the header's payload digest): the "
                   "bundle was altered");
}

// Signature, header and extent: everything that must hold before the payload is read.
Result<BundleInfo> VerifyBundle(RawBundle& raw, const crypto::PublicKey& verify_key, const Limits& limits) {
  BundleInfo info;
  info.file_size = raw.file_size;
  AIRLOCK_ASSIGN_OR_RETURN(info.signature, ParseSignatureBlock(raw.signature_block));
  AIRLOCK_TRY(internal::VerifySignature(raw, info.signature, verify_key, kSignaturePrefix));
  info.signature_verified = true;
  AIRLOCK_ASSIGN_OR_RETURN(info.header,
                           ParseHeader(ByteSpan(raw.preamble_and_header).subspan(kPreambleSize), limits));
  AIRLOCK_TRY(CheckPayloadExtent(raw, info.header));
  return info;
}


}  // namespace

Result<void> ValidateAppId(std::string_view app_id) {
  if (app_id.empty() || app_id.size() > 255) {
    return MakeError(ErrorCode::kInvalidArgument, "app id must be 1 to 255 characters");
  }
  for (char c : app_id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "app id may contain only letters, digits, '.', '_' and '-'");
    }
  }
  return {};
}

Bytes ContentKeyAad(std::string_view app_id, std::string_view version) {
  return Aad("airlock-bundle/v1 content-key", app_id, version);
}
Bytes PayloadAad(std::string_view app_id, std::string_view version) {
  return Aad("airlock-bundle/v1 payload", app_id, version);
}

nlohmann::json HeaderToJson(const BundleHeader& h) {
  nlohmann::json recipients = nlohmann::json::array();
  for (const Recipient& r : h.recipients) {
    recipients.push_back({{"key_id", r.key_id}, {"alg", r.alg},
                          {"wrapped_key", crypto::Base64Encode(r.wrapped_key)}});
  }
  return {
      {"format", "airlock-bundle"},
      {"format_version", 1},
      {"app_id", h.app_id},
      {"version", h.version},
      {"created", h.created},
      {"archive", std::string(ArchiveFormatName(h.archive))},
      {"chunk_size", h.chunk_size},
      {"payload",
       {{"length", h.payload_length}, {"sha256", h.payload_sha256}, {"plain_length", h.plain_length}}},
      {"recipients", recipients},
      {"files", ManifestToJson(h.files)},
  };
}

Result<BundleHeader> ParseHeader(ByteSpan header_json, const Limits& limits) {
  auto parsed = ParseSignedJson(AsString(header_json), kMaxHeaderSize);
  if (!parsed) return tl::unexpected(parsed.error().WithContext("bundle header"));
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return MakeError(ErrorCode::kMalformed, "bundle header is not a JSON object");
  auto ctx = [](Error e) { return tl::unexpected(e.WithContext("bundle header")); };

  auto format = GetString(j, "format");
  if (!format) return ctx(format.error());
  if (*format != "airlock-bundle") {
    return MakeError(ErrorCode::kUnsupported, "bundle header: unknown format '" + *format + "'");
  }
  auto version_num = GetUint(j, "format_version");
  if (!version_num) return ctx(version_num.error());
  if (*version_num != 1) {
    return MakeError(ErrorCode::kUnsupported, "bundle format version " + std::to_string(*version_num) +
                                                  " is not supported (this build reads version 1)");
  }
  BundleHeader h;
  auto s = GetString(j, "app_id", 255);
  if (!s) return ctx(s.error());
  if (auto r = ValidateAppId(*s); !r) return MakeError(ErrorCode::kMalformed, "bundle header: " + r.error().message());
  h.app_id = *s;
  s = GetString(j, "version", kMaxSemverLength);
  if (!s) return ctx(s.error());
  if (auto r = Semver::Parse(*s); !r) return MakeError(ErrorCode::kMalformed, "bundle header: " + r.error().message());
  h.version = *s;
  s = GetString(j, "created", 64);
  if (!s) return ctx(s.error());
  h.created = *s;
  s = GetString(j, "archive", 16);
  if (!s) return ctx(s.error());
  auto archive = ParseArchiveFormat(*s);
  if (!archive) return MakeError(ErrorCode::kUnsupported, "bundle header: unknown archive format '" + *s + "'");
  h.archive = *archive;
  auto chunk = GetUint(j, "chunk_size");
  if (!chunk) return ctx(chunk.error());
  if (*chunk < kMinChunkSize || *chunk > crypto::kMaxChunkSize) {
    return MakeError(ErrorCode::kUnsupported, "bundle header: chunk size " + std::to_string(*chunk) +
                                                  " is outside " + std::to_string(kMinChunkSize) + ".." +
                                                  std::to_string(crypto::kMaxChunkSize));
  }
  h.chunk_size = static_cast<size_t>(*chunk);

  auto payload = GetObject(j, "payload");
  if (!payload) return ctx(payload.error());
  auto len = GetUint(**payload, "length");
  if (!len) return ctx(len.error().WithContext("payload"));
  auto plain = GetUint(**payload, "plain_length");
  if (!plain) return ctx(plain.error().WithContext("payload"));
  s = GetString(**payload, "sha256", 64);
  if (!s) return ctx(s.error().WithContext("payload"));
  if (!IsLowerHex(*s, 64)) return MakeError(ErrorCode::kMalformed, "bundle header: payload.sha256 is not a SHA-256 hex digest");
  h.payload_length = *len;
  h.plain_length = *plain;
  h.payload_sha256 = *s;
  if (h.plain_length > (uint64_t{1} << 48) ||
      crypto::StreamCiphertextSize(h.plain_length, h.chunk_size) != h.payload_length) {
    return MakeError(ErrorCode::kMalformed,
                     "bundle header: payload length does not match its plaintext length and chunk size");
  }

  auto recipients = GetArray(j, "recipients");
  if (!recipients) return ctx(recipients.error());
  if ((*recipients)->empty()) return MakeError(ErrorCode::kMalformed, "bundle header: no recipients");
  if ((*recipients)->size() > kMaxRecipients) {
    return MakeError(ErrorCode::kLimitExceeded, "bundle header: more than " + std::to_string(kMaxRecipients) + " recipients");
  }
  std::set<std::string> seen;
  for (const nlohmann::json& rj : **recipients) {
    Recipient r;
    auto id = GetString(rj, "key_id", 64);
    if (!id) return ctx(id.error().WithContext("recipient"));
    if (!IsLowerHex(*id, 64)) return MakeError(ErrorCode::kMalformed, "bundle header: recipient key_id is not a key id");
    if (!seen.insert(*id).second) return MakeError(ErrorCode::kMalformed, "bundle header: duplicate recipient " + ShortId(*id));
    auto alg = GetString(rj, "alg", 64);
    if (!alg) return ctx(alg.error().WithContext("recipient"));
    auto wrapped = GetString(rj, "wrapped_key", kMaxWrappedKeySize * 2);
    if (!wrapped) return ctx(wrapped.error().WithContext("recipient"));
    auto raw = crypto::Base64Decode(*wrapped);
    if (!raw) return MakeError(ErrorCode::kMalformed, "bundle header: recipient wrapped_key is not base64");
    if (raw->empty() || raw->size() > kMaxWrappedKeySize) {
      return MakeError(ErrorCode::kMalformed, "bundle header: recipient wrapped_key has a bad size");
    }
    r.key_id = *id;
    r.alg = *alg;
    r.wrapped_key = std::move(*raw);
    h.recipients.push_back(std::move(r));
  }
  auto files = j.find("files");
  if (files == j.end()) return MakeError(ErrorCode::kMalformed, "bundle header: missing field 'files'");
  auto manifest = ManifestFromJson(*files, limits);
  if (!manifest) return ctx(manifest.error().WithContext("manifest"));
  h.files = std::move(*manifest);
  return h;
}

Result<SignatureBlock> ParseSignatureBlock(ByteSpan block) {
  auto parsed = ParseSignedJson(AsString(block), kMaxSignatureBlockSize, 4);
  if (!parsed) return tl::unexpected(parsed.error().WithContext("bundle signature block"));
  SignatureBlock sig;
  auto id = GetString(*parsed, "keyid", 64);
  if (!id) return tl::unexpected(id.error().WithContext("bundle signature block"));
  auto scheme = GetString(*parsed, "scheme", 64);
  if (!scheme) return tl::unexpected(scheme.error().WithContext("bundle signature block"));
  auto hex = GetString(*parsed, "sig", 2 * 2048);
  if (!hex) return tl::unexpected(hex.error().WithContext("bundle signature block"));
  auto bytes = HexDecode(*hex);
  if (!bytes || bytes->empty()) return MakeError(ErrorCode::kMalformed, "bundle signature block: sig is not hex");
  sig.key_id = *id;
  sig.scheme = *scheme;
  sig.signature = std::move(*bytes);
  return sig;
}

Result<BundleHeader> SealBundle(const fs::path& input, const SealOptions& options,
                                const crypto::PrivateKey& signer,
                                const std::vector<crypto::PublicKey>& recipients, const fs::path& out) {
  crypto::PrivateKeySigner key_signer(signer);
  return SealBundle(input, options, key_signer, recipients, out);
}

Result<BundleHeader> SealBundle(const fs::path& input, const SealOptions& options, crypto::Signer& signer,
                                const std::vector<crypto::PublicKey>& recipients, const fs::path& out) {
  AIRLOCK_TRY(ValidateAppId(options.app_id));
  AIRLOCK_TRY(Semver::Parse(options.version));
  if (options.chunk_size < kMinChunkSize || options.chunk_size > crypto::kMaxChunkSize) {
    return MakeError(ErrorCode::kInvalidArgument, "chunk size out of range");
  }
  if (signer.Public().type() == crypto::KeyType::kX25519) {
    return MakeError(ErrorCode::kInvalidArgument, "the signing key is an x25519 key, which cannot sign");
  }
  if (recipients.empty()) return MakeError(ErrorCode::kInvalidArgument, "at least one recipient is needed");
  if (recipients.size() > kMaxRecipients) return MakeError(ErrorCode::kInvalidArgument, "too many recipients");
  std::set<std::string> seen;
  for (const crypto::PublicKey& r : recipients) {
    AIRLOCK_TRY_CTX(crypto::WrapAlgorithm(r.type()), "recipient " + ShortId(r.KeyId()));
    if (!seen.insert(r.KeyId()).second) {
      return MakeError(ErrorCode::kInvalidArgument, "recipient " + ShortId(r.KeyId()) + " given twice");
    }
  }
  std::error_code ec;
  // An early, friendly refusal; the guarantee is the final placement (Overwrite::kNever).
  if (fs::exists(fs::symlink_status(out, ec))) {
    return MakeError(ErrorCode::kAlreadyExists, out.string() + " already exists");
  }
  fs::path out_dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  RemoveStaleStaging(out_dir, kSealStagingPrefix, StagingKind::kDirectory);
  AIRLOCK_ASSIGN_OR_RETURN(ScopedTempDir staging,
                           ScopedTempDir::Create(out_dir, kSealStagingPrefix));

  BundleHeader h;
  h.app_id = options.app_id;
  h.version = options.version;
  h.created = NowUtc();
  h.chunk_size = options.chunk_size;
  fs::path archive_path;
  auto status = fs::status(input, ec);
  if (ec || !fs::exists(status)) {
    return MakeError(ErrorCode::kNotFound, "input " + input.string() + " does not exist");
  }
  if (fs::is_directory(status)) {
    h.archive = options.format;
    archive_path = staging.path() / "payload.archive";
    AIRLOCK_ASSIGN_OR_RETURN(h.files, CreateArchive(input, options.format, archive_path, options.limits));
  } else {
    archive_path = input;
    AIRLOCK_ASSIGN_OR_RETURN(h.files, ScanArchive(input, options.limits, &h.archive));
  }

  // Encrypt the archive into a staging file, hashing the ciphertext as it is written.
  Bytes key_bytes;
  if (options.content_key.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(key_bytes, crypto::RandomBytes(crypto::kStreamKeySize));
  } else if (options.content_key.size() != crypto::kStreamKeySize) {
    return MakeError(ErrorCode::kInvalidArgument, "a content key is 32 bytes");
  } else {
    key_bytes.assign(options.content_key.begin(), options.content_key.end());
  }
  crypto::SecretBytes content_key(std::move(key_bytes));  // wiped on every return path
  AIRLOCK_ASSIGN_OR_RETURN(auto encryptor,
                           crypto::StreamEncryptor::Create(
                               content_key.span(), PayloadAad(h.app_id, h.version), h.chunk_size));
  uint64_t plain_size = 0;
  AIRLOCK_ASSIGN_OR_RETURN(UniqueFd in, OpenForRead(archive_path, &plain_size));
  fs::path payload_path = staging.path() / "payload.enc";
  UniqueFd payload_fd(::open(payload_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!payload_fd.valid()) return MakeError(ErrorCode::kIo, "cannot create " + payload_path.string());
  crypto::Hasher hasher = crypto::Hasher::Sha256();
  Bytes buf(kIoBlock);
  Bytes cipher;
  cipher.reserve(kIoBlock + kIoBlock / kMinChunkSize * crypto::kStreamTagSize + 64);
  uint64_t written = 0;
  auto flush = [&]() -> Result<void> {
    hasher.Update(cipher);
    AIRLOCK_TRY(WriteAll(payload_fd.get(), cipher));
    written += cipher.size();
    cipher.clear();
    return {};
  };
  uint64_t read_total = 0;
  while (true) {
    AIRLOCK_TRY(CheckInterrupt());
    AIRLOCK_ASSIGN_OR_RETURN(size_t n, PreadSome(in.get(), read_total, buf));
    if (n == 0) break;
    read_total += n;
    AIRLOCK_TRY(encryptor.Update(ByteSpan(buf.data(), n), cipher));
    AIRLOCK_TRY(flush());
  }
  AIRLOCK_TRY(encryptor.Finish(cipher));
  AIRLOCK_TRY(flush());
  h.plain_length = read_total;
  h.payload_length = written;
  h.payload_sha256 = HexEncode(hasher.Finish());
  if (written != crypto::StreamCiphertextSize(read_total, h.chunk_size)) {
    return MakeError(ErrorCode::kInternal, "stream size disagrees with StreamCiphertextSize");
  }

  Bytes ck_aad = ContentKeyAad(h.app_id, h.version);
  for (const crypto::PublicKey& r : recipients) {
    Recipient rec;
    rec.key_id = r.KeyId();
    AIRLOCK_ASSIGN_OR_RETURN(rec.alg, crypto::WrapAlgorithm(r.type()));
    AIRLOCK_ASSIGN_OR_RETURN(rec.wrapped_key, crypto::WrapKey(r, content_key.span(), ck_aad));
    h.recipients.push_back(std::move(rec));
  }
  content_key.Wipe();

  std::string header_text;
  try {
    header_text = HeaderToJson(h).dump();
  } catch (const nlohmann::json::exception&) {
    return MakeError(ErrorCode::kUnsafePath, "a file name in the input is not valid UTF-8");
  }
  if (header_text.size() > kMaxHeaderSize) {
    return MakeError(ErrorCode::kLimitExceeded, "bundle header would exceed " +
                                                    std::to_string(kMaxHeaderSize) + " bytes (too many files)");
  }
  Bytes head(kBundleMagic, kBundleMagic + sizeof kBundleMagic);
  AppendU32Be(head, static_cast<uint32_t>(header_text.size()));
  head.insert(head.end(), header_text.begin(), header_text.end());
  AIRLOCK_ASSIGN_OR_RETURN(Bytes signature, signer.Sign(SignedMessage(head, kSignaturePrefix)));
  const crypto::PublicKey& signer_pub = signer.Public();
  std::string sig_text = nlohmann::json{{"keyid", signer_pub.KeyId()},
                                        {"scheme", signer_pub.TufScheme()},
                                        {"sig", HexEncode(signature)}}
                             .dump();
  AppendU32Be(head, static_cast<uint32_t>(sig_text.size()));
  head.insert(head.end(), sig_text.begin(), sig_text.end());

  AIRLOCK_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create(out, 0644, Overwrite::kNever));
  AIRLOCK_TRY(file.Write(head));
  AIRLOCK_TRY(internal::ForEachBlock(payload_fd.get(), 0, written, buf,
                           [&](ByteSpan block) { return file.Write(block); }));
  AIRLOCK_TRY(file.Commit());
  return h;
}

Result<BundleInfo> InspectBundle(const fs::path& path, const crypto::PublicKey* verify_key,
                                 const Limits& limits) {
  AIRLOCK_ASSIGN_OR_RETURN(RawBundle raw, internal::ReadRawBundle(path, kBundleMagic));
  if (verify_key != nullptr) {
    AIRLOCK_ASSIGN_OR_RETURN(BundleInfo info, VerifyBundle(raw, *verify_key, limits));
    // The signature covers the header; the header's digest covers the payload. Both are checked
    // here, so "verified" means the whole file is what the signer made.
    crypto::Hasher hasher = crypto::Hasher::Sha256();
    Bytes buf(kIoBlock);
    AIRLOCK_TRY_CTX(internal::ForEachBlock(raw.fd.get(), raw.payload_offset, info.header.payload_length, buf,
                                 [&](ByteSpan block) -> Result<void> {
                                   hasher.Update(block);
                                   return {};
                                 }),
                    "payload");
    if (HexEncode(hasher.Finish()) != info.header.payload_sha256) return PayloadAltered();
    info.payload_verified = true;
    return info;
  }
  BundleInfo info;
  info.file_size = raw.file_size;
  AIRLOCK_ASSIGN_OR_RETURN(info.signature, ParseSignatureBlock(raw.signature_block));
  AIRLOCK_ASSIGN_OR_RETURN(info.header,
                           ParseHeader(ByteSpan(raw.preamble_and_header).subspan(kPreambleSize), limits));
  return info;
}

namespace {

// Yields the 32-byte content key of a verified bundle (unwrapped with a recipient key, or given).
using ContentKeySource = std::function<Result<crypto::SecretBytes>(const BundleHeader&)>;

// The payload of a bundle whose signature and header verified, read once: every block is hashed
// (on a second thread) and decrypted chunk by chunk; Next() hands out plaintext only from chunks
// that authenticated, and the payload digest, the last chunk and the plaintext length are checked
// before its last block is handed out (after it, Next() returns an empty block). Whoever reads it
// discards everything it was handed when an error comes. When decryption fails part-way, the rest
// is still hashed so that an altered payload is reported as such (kHashMismatch) rather than as
// whichever chunk happened to break first.
//
// The payload is read in blocks of whole sealed chunks (the first block also holds the stream's
// nonce prefix), about kPayloadBlock bytes: small enough to stay in the CPU cache, large enough for
// few reads. Two buffers take turns: while one block is decrypted, the second thread hashes it, and
// the next read into that buffer waits for that hash.
class PayloadStream {
 public:
  static Result<std::unique_ptr<PayloadStream>> Open(const fs::path& path,
                                                     const crypto::PublicKey& verify_key,
                                                     const ContentKeySource& content_key_source,
                                                     const Limits& limits) {
    AIRLOCK_ASSIGN_OR_RETURN(RawBundle raw, internal::ReadRawBundle(path, kBundleMagic));
    AIRLOCK_ASSIGN_OR_RETURN(BundleInfo info, VerifyBundle(raw, verify_key, limits));
    const BundleHeader& h = info.header;
    if (h.plain_length > limits.max_total_size + limits.max_total_size / 8 + (1 << 20)) {
      // The archive can exceed the files it holds only by its own metadata.
      return MakeError(ErrorCode::kLimitExceeded,
                       "payload is larger than the unpacked size limit allows");
    }
    auto content_key = content_key_source(h);
    if (!content_key) return tl::unexpected(content_key.error());
    auto decryptor = crypto::StreamDecryptor::Create(content_key->span(),
                                                     PayloadAad(h.app_id, h.version), h.chunk_size);
    content_key->Wipe();
    if (!decryptor) return tl::unexpected(decryptor.error());
    return std::unique_ptr<PayloadStream>(
        new PayloadStream(std::move(raw), std::move(info.header), std::move(*decryptor)));
  }

  const BundleHeader& header() const { return header_; }

  Result<ByteSpan> Next() {
    if (failed_) return tl::unexpected(*failed_);
    auto next = ReadNext();
    if (!next) failed_ = next.error();
    return next;
  }

 private:
  PayloadStream(RawBundle raw, BundleHeader header, crypto::StreamDecryptor decryptor)
      : raw_(std::move(raw)),
        header_(std::move(header)),
        decryptor_(std::move(decryptor)),
        unit_(header_.chunk_size + crypto::kStreamTagSize) {
    const size_t units = std::max<size_t>(1, kPayloadBlock / unit_);
    for (Bytes& buf : bufs_) buf.resize(crypto::kStreamNoncePrefixSize + units * unit_);
    // A block's plaintext plus the chunk the decryptor held back from the block before.
    plain_.reserve(bufs_[0].size() + 2 * unit_);
  }

  Result<ByteSpan> ReadNext() {
    plain_.clear();
    while (plain_.empty() && !finished_) {
      if (done_ < header_.payload_length) {
        Bytes& buf = bufs_[blocks_ % kPayloadBuffers];
        if (blocks_ >= kPayloadBuffers) {
          hasher_.WaitHashed(blocks_ - kPayloadBuffers + 1);  // what was read into `buf` last time
        }
        const size_t want = done_ == 0 ? buf.size() : buf.size() - crypto::kStreamNoncePrefixSize;
        const size_t n =
            static_cast<size_t>(std::min<uint64_t>(want, header_.payload_length - done_));
        AIRLOCK_TRY_CTX(
            PreadExact(raw_.fd.get(), raw_.payload_offset + done_, std::span(buf.data(), n)),
            "payload");
        done_ += n;
        const ByteSpan block(buf.data(), n);
        blocks_ = hasher_.Submit(block);
        if (decrypted_) decrypted_ = decryptor_.Update(block, plain_);
        if (!decrypted_) plain_.clear();  // nothing more is handed out
      } else {
        finished_ = true;
        if (decrypted_) decrypted_ = decryptor_.Finish(plain_);
        if (HexEncode(hasher_.Finish()) != header_.payload_sha256) return PayloadAltered();
        if (!decrypted_) return tl::unexpected(decrypted_.error().WithContext("payload"));
        if (plain_total_ + plain_.size() < header_.plain_length) {
          return MakeError(ErrorCode::kHashMismatch,
                           "payload decrypts to fewer bytes than the header states");
        }
      }
      plain_total_ += plain_.size();
      if (plain_total_ > header_.plain_length) {
        return MakeError(ErrorCode::kHashMismatch,
                         "payload decrypts to more bytes than the header states");
      }
    }
    return ByteSpan(plain_);
  }

  RawBundle raw_;
  BundleHeader header_;
  crypto::StreamDecryptor decryptor_;
  size_t unit_;
  Bytes bufs_[kPayloadBuffers];
  Bytes plain_;
  BackgroundHasher hasher_;  // after the buffers: stopped before they go
  uint64_t done_ = 0;
  uint64_t blocks_ = 0;
  uint64_t plain_total_ = 0;
  Result<void> decrypted_ = {};
  bool finished_ = false;
  std::optional<Error> failed_;
};

// Verifies, gets the content key and streams the payload to `sink` (the body shared by both
// DecryptBundlePayload overloads).
Result<BundleHeader> DecryptPayload(const fs::path& path, const crypto::PublicKey& verify_key,
                                    const ContentKeySource& content_key_source,
                                    const PlaintextSink& sink, const Limits& limits) {
  AIRLOCK_ASSIGN_OR_RETURN(auto stream,
                           PayloadStream::Open(path, verify_key, content_key_source, limits));
  while (true) {
    AIRLOCK_ASSIGN_OR_RETURN(ByteSpan block, stream->Next());
    if (block.empty()) return stream->header();
    AIRLOCK_TRY(sink(block));
  }
}

// Opens the payload (`open`) and extracts it into a private staging folder beside `out_dir` as it
// is decrypted, checks every file against the manifest, reads the rest of the payload (so that its
// digest, every chunk and its length have been checked), and renames the folder into place only at
// the end (the body shared by both OpenBundle overloads).
//
// libarchive parses the plaintext as it comes, each chunk only after its tag authenticated, but
// before the payload's digest is compared at the end; nothing it wrote leaves the staging folder
// unless every check passed. (The agent hands OpenBundle only a download whose length and SHA-256
// matched the signed TUF target, so there every byte of the file is checked before this starts.)
//
// Staging: a directory ".airlock-open-XXXXXX" beside the output, 0700 from mkdtemp and locked while
// this run lives; inside, the extracted tree (files 0600, directories 0700 until
// ExtractArchiveStream gives them their final modes and fsyncs them). Staging left by a killed run
// is removed first (RemoveStaleStaging: only unlocked, private, own entries with that exact name).
// A SIGTERM/SIGINT (RequestInterrupt) stops the loops at the next block and the staging goes with
// the ScopedTempDir, as on any error.
using PayloadOpen = std::function<Result<std::unique_ptr<PayloadStream>>()>;

Result<BundleHeader> OpenInto(const fs::path& out_dir, const Limits& limits,
                              const PayloadOpen& open) {
  std::error_code ec;
  fs::path target = out_dir;
  if (target.has_filename() == false) target = target.parent_path();  // "dir/" -> "dir"
  auto st = fs::symlink_status(target, ec);
  bool replace_empty = false;
  if (fs::exists(st)) {
    if (!fs::is_directory(st) || !fs::is_empty(target, ec)) {
      return MakeError(ErrorCode::kAlreadyExists,
                       target.string() + " already exists and is not an empty directory");
    }
    replace_empty = true;
  }
  fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  RemoveStaleStaging(parent, kOpenStagingPrefix, StagingKind::kDirectory);
  AIRLOCK_ASSIGN_OR_RETURN(ScopedTempDir staging,
                           ScopedTempDir::Create(parent, kOpenStagingPrefix));
  fs::path files_dir = staging.path() / "files";
  AIRLOCK_ASSIGN_OR_RETURN(auto stream, open());
  const BundleHeader& h = stream->header();
  if (::mkdir(files_dir.c_str(), 0700) != 0) {
    return MakeError(ErrorCode::kIo,
                     "cannot create " + files_dir.string() + ": " + std::strerror(errno));
  }
  const ArchiveSource source = [&]() -> Result<ByteSpan> {
    AIRLOCK_TRY(CheckInterrupt());
    return stream->Next();
  };
  // Extracts, checks every file, then fsyncs every file and directory (with their final modes).
  AIRLOCK_TRY(ExtractArchiveStream(source, h.files, files_dir, limits, h.archive));
  // The archive may end before the payload does (libarchive does not read a zip's central
  // directory when streaming): the rest is read, hashed and authenticated all the same.
  while (true) {
    AIRLOCK_ASSIGN_OR_RETURN(ByteSpan rest, source());
    if (rest.empty()) break;
  }
  AIRLOCK_TRY(CheckInterrupt());
  if (replace_empty && ::rmdir(target.c_str()) != 0) {
    return MakeError(ErrorCode::kIo, "cannot replace empty directory " + target.string() + ": " +
                                         std::strerror(errno));
  }
  // No check-then-rename race: whatever appeared at `target` meanwhile is left as it is.
  AIRLOCK_TRY_CTX(RenameNoReplace(files_dir, target), "cannot move the opened bundle into place");
  AIRLOCK_TRY_CTX(FsyncPath(parent), "opened bundle");
  return h;
}

// The content key from the recipient entry for `decrypt_key`.
ContentKeySource UnwrapWith(const crypto::PrivateKey& decrypt_key) {
  return [&decrypt_key](const BundleHeader& h) -> Result<crypto::SecretBytes> {
    std::string my_id = decrypt_key.KeyId();
    auto rec = std::find_if(h.recipients.begin(), h.recipients.end(),
                            [&](const Recipient& r) { return r.key_id == my_id; });
    if (rec == h.recipients.end()) {
      return MakeError(ErrorCode::kWrongKey,
                       "bundle is not encrypted to the given decryption key " + ShortId(my_id) +
                           " (" + std::to_string(h.recipients.size()) +
                           " recipient(s), none match)");
    }
    auto expected_alg = crypto::WrapAlgorithm(decrypt_key.type());
    if (!expected_alg || *expected_alg != rec->alg) {
      return MakeError(ErrorCode::kWrongKey, "recipient entry uses '" + rec->alg +
                                                 "', which the decryption key cannot unwrap");
    }
    auto content_key =
        crypto::UnwrapKey(decrypt_key, rec->wrapped_key, ContentKeyAad(h.app_id, h.version));
    if (!content_key)
      return tl::unexpected(content_key.error().WithContext("cannot unwrap the content key"));
    return crypto::SecretBytes(std::move(*content_key));
  };
}

// The given content key (checked to be 32 bytes by the caller).
ContentKeySource Given(ByteSpan content_key) {
  return [content_key](const BundleHeader&) -> Result<crypto::SecretBytes> {
    return crypto::SecretBytes(Bytes(content_key.begin(), content_key.end()));
  };
}

Result<void> CheckContentKeySize(ByteSpan content_key) {
  if (content_key.size() != crypto::kStreamKeySize) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a content key is " + std::to_string(crypto::kStreamKeySize) + " bytes, got " +
                         std::to_string(content_key.size()));
  }
  return {};
}

}  // namespace

Result<BundleHeader> DecryptBundlePayload(const fs::path& path, const crypto::PublicKey& verify_key,
                                          const crypto::PrivateKey& decrypt_key,
                                          const PlaintextSink& sink, const Limits& limits) {
  return DecryptPayload(path, verify_key, UnwrapWith(decrypt_key), sink, limits);
}

Result<BundleHeader> DecryptBundlePayloadWithContentKey(const fs::path& path,
                                                        const crypto::PublicKey& verify_key,
                                                        ByteSpan content_key,
                                                        const PlaintextSink& sink,
                                                        const Limits& limits) {
  AIRLOCK_TRY(CheckContentKeySize(content_key));
  return DecryptPayload(path, verify_key, Given(content_key), sink, limits);
}

Result<BundleHeader> OpenBundle(const fs::path& path, const crypto::PublicKey& verify_key,
                                const crypto::PrivateKey& decrypt_key, const fs::path& out_dir,
                                const Limits& limits) {
  return OpenInto(out_dir, limits, [&] {
    return PayloadStream::Open(path, verify_key, UnwrapWith(decrypt_key), limits);
  });
}

Result<BundleHeader> OpenBundleWithContentKey(const fs::path& path,
                                              const crypto::PublicKey& verify_key,
                                              ByteSpan content_key, const fs::path& out_dir,
                                              const Limits& limits) {
  AIRLOCK_TRY(CheckContentKeySize(content_key));
  return OpenInto(out_dir, limits, [&] {
    return PayloadStream::Open(path, verify_key, Given(content_key), limits);
  });
}

}  // namespace airlock::bundle
