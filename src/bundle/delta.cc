#include "bundle/delta.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "bundle/bundle_internal.h"
#include "common/bytes.h"
#include "common/fd.h"
#include "common/file.h"
#include "common/json.h"
#include "common/semver.h"
#include "crypto/aead_stream.h"
#include "crypto/hash.h"

namespace airlock::bundle {

namespace fs = std::filesystem;

namespace {

constexpr size_t kDeltaIoBlock = 256 * 1024;
constexpr uint32_t kMaxManifestText = kMaxHeaderSize;  // the same bound as a bundle header's
constexpr std::string_view kDeltaPayloadLabel = "airlock-delta/v1 payload";

struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

Bytes DeltaPayloadAad(const DeltaHeader& h) {
  Bytes aad = ToBytes(kDeltaPayloadLabel);
  for (const std::string* part : {&h.app_id, &h.version, &h.base_version}) {
    aad.push_back(0);
    aad.insert(aad.end(), part->begin(), part->end());
  }
  return aad;
}

tl::unexpected<Error> ErrnoError(const std::string& what) {
  return MakeError(ErrorCode::kIo, what + ": " + std::strerror(errno));
}

nlohmann::json DeltaHeaderToJson(const DeltaHeader& h) {
  return {{"format", "airlock-delta"},
          {"format_version", 1},
          {"app_id", h.app_id},
          {"version", h.version},
          {"created", h.created},
          {"base", {{"version", h.base_version}, {"manifest_sha256", h.base_manifest_sha256}}},
          {"method", std::string(DeltaMethodName(h.method))},
          {"chunk_size", h.chunk_size},
          {"payload",
           {{"length", h.payload_length},
            {"sha256", h.payload_sha256},
            {"plain_length", h.plain_length}}}};
}

Result<DeltaHeader> ParseDeltaHeader(ByteSpan text) {
  auto parsed = ParseSignedJson(AsString(text), kMaxHeaderSize);
  if (!parsed) return tl::unexpected(parsed.error().WithContext("delta header"));
  const nlohmann::json& j = *parsed;
  auto bad = [](const std::string& why) {
    return MakeError(ErrorCode::kMalformed, "delta header: " + why);
  };
  auto ctx = [](Error e) { return tl::unexpected(e.WithContext("delta header")); };
  if (!j.is_object()) return bad("not a JSON object");
  auto format = GetString(j, "format", 64);
  if (!format) return ctx(format.error());
  if (*format != "airlock-delta") {
    return MakeError(ErrorCode::kUnsupported, "delta header: unknown format '" + *format + "'");
  }
  auto format_version = GetUint(j, "format_version");
  if (!format_version) return ctx(format_version.error());
  if (*format_version != 1) {
    return MakeError(ErrorCode::kUnsupported, "delta format version " +
                                                  std::to_string(*format_version) +
                                                  " is not supported (this build reads version 1)");
  }
  DeltaHeader h;
  struct Field {
    const nlohmann::json* obj;
    const char* key;
    size_t max;
    std::string* out;
  };
  auto base = GetObject(j, "base");
  if (!base) return ctx(base.error());
  auto payload = GetObject(j, "payload");
  if (!payload) return ctx(payload.error());
  std::string method;
  for (const Field& f :
       {Field{&j, "app_id", 255, &h.app_id}, Field{&j, "version", kMaxSemverLength, &h.version},
        Field{&j, "created", 64, &h.created}, Field{&j, "method", 16, &method},
        Field{*base, "version", kMaxSemverLength, &h.base_version},
        Field{*base, "manifest_sha256", 64, &h.base_manifest_sha256},
        Field{*payload, "sha256", 64, &h.payload_sha256}}) {
    auto s = GetString(*f.obj, f.key, f.max);
    if (!s) return ctx(s.error());
    *f.out = std::move(*s);
  }
  if (auto r = ValidateAppId(h.app_id); !r) return bad(r.error().message());
  for (const std::string* v : {&h.version, &h.base_version}) {
    if (auto r = Semver::Parse(*v); !r) return bad(r.error().message());
  }
  if (!IsLowerHex(h.base_manifest_sha256, 64) || !IsLowerHex(h.payload_sha256, 64)) {
    return bad("a digest is not SHA-256 hex");
  }
  if (method == "patch") {
    h.method = DeltaMethod::kPatch;
  } else if (method == "files") {
    h.method = DeltaMethod::kFiles;
  } else {
    return MakeError(ErrorCode::kUnsupported, "delta header: unknown method '" + method + "'");
  }
  auto chunk = GetUint(j, "chunk_size");
  if (!chunk) return ctx(chunk.error());
  if (*chunk < kMinChunkSize || *chunk > crypto::kMaxChunkSize)
    return bad("chunk size out of range");
  h.chunk_size = static_cast<size_t>(*chunk);
  auto length = GetUint(**payload, "length");
  if (!length) return ctx(length.error());
  auto plain = GetUint(**payload, "plain_length");
  if (!plain) return ctx(plain.error());
  h.payload_length = *length;
  h.plain_length = *plain;
  if (h.plain_length > (uint64_t{1} << 48) ||
      crypto::StreamCiphertextSize(h.plain_length, h.chunk_size) != h.payload_length) {
    return bad("payload length does not match its plaintext length and chunk size");
  }
  return h;
}

// The files of `release` (checked against its manifest), in manifest order.
Result<void> ForEachReleaseFile(const ReleaseFiles& release,
                                const std::function<Result<void>(size_t, ByteSpan)>& fn) {
  for (size_t i = 0; i < release.manifest.size(); ++i) {
    const ManifestEntry& e = release.manifest[i];
    AIRLOCK_ASSIGN_OR_RETURN(Bytes data, ReadFile(release.dir / e.path, e.size));
    if (data.size() != e.size || HexEncode(crypto::Sha256(data)) != e.sha256) {
      return MakeError(ErrorCode::kHashMismatch, "file " + PrintablePath(e.path) + " of " +
                                                     release.version +
                                                     " differs from its signed hash");
    }
    AIRLOCK_TRY(fn(i, data));
  }
  return {};
}

// The files of `release` against its manifest, hashed in constant memory.
Result<void> CheckReleaseFiles(const ReleaseFiles& release) {
  for (const ManifestEntry& e : release.manifest) {
    uint64_t size = 0;
    auto digest = crypto::Sha256File(release.dir / e.path, &size);
    if (!digest || size != e.size || HexEncode(*digest) != e.sha256) {
      return MakeError(ErrorCode::kHashMismatch, "file " + PrintablePath(e.path) + " of " +
                                                     release.version +
                                                     " differs from its signed hash");
    }
  }
  return {};
}

// The zstd reference of a base: its manifest text, then its files in manifest order.
Result<Bytes> BuildReference(const ReleaseFiles& base) {
  const std::string text = ManifestToJson(base.manifest).dump();
  if (text.size() + ManifestTotalSize(base.manifest) > kMaxDeltaReference) {
    return MakeError(ErrorCode::kLimitExceeded, "base " + base.version + " is larger than " +
                                                    std::to_string(kMaxDeltaReference >> 20) +
                                                    " MiB, the most a delta refers to");
  }
  Bytes ref(text.begin(), text.end());
  ref.reserve(text.size() + ManifestTotalSize(base.manifest));
  AIRLOCK_TRY(ForEachReleaseFile(base, [&](size_t, ByteSpan data) -> Result<void> {
    ref.insert(ref.end(), data.begin(), data.end());
    return {};
  }));
  return ref;
}

// SHA-256 -> index of the first base file with that content.
std::unordered_map<std::string, size_t> IndexByHash(const Manifest& manifest) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < manifest.size(); ++i) index.emplace(manifest[i].sha256, i);
  return index;
}

int WindowLogFor(uint64_t bytes) {
  int log = 10;  // ZSTD_WINDOWLOG_MIN
  while (log < 31 && (uint64_t{1} << log) < bytes) ++log;
  return log;
}

// Writes the new release's files into `root` from the decompressed stream, copying those the base
// holds; every file is checked against the new manifest as it is written.
class TreeWriter {
 public:
  TreeWriter(int root, const ReleaseFiles& base, const Limits& limits)
      : root_(root), base_(base), limits_(limits), by_hash_(IndexByHash(base.manifest)) {}

  // Takes the next decompressed bytes.
  Result<void> Feed(ByteSpan data) {
    while (!data.empty()) {
      if (!manifest_) {
        AIRLOCK_TRY(TakeManifest(data));
        continue;
      }
      AIRLOCK_TRY(SkipCopied());
      if (next_ >= manifest_->size()) {
        return MakeError(ErrorCode::kMalformed,
                         "delta decompresses to more than its manifest lists");
      }
      const ManifestEntry& e = (*manifest_)[next_];
      if (!out_.valid()) AIRLOCK_TRY(Create(e));
      const size_t n = static_cast<size_t>(std::min<uint64_t>(data.size(), e.size - written_));
      AIRLOCK_TRY(Write(data.first(n)));
      data = data.subspan(n);
      if (written_ == e.size) AIRLOCK_TRY(Close(e));
    }
    return {};
  }

  // After the stream's end: copies what remains, checks that every file was written.
  Result<Manifest> Finish() {
    if (!manifest_) return MakeError(ErrorCode::kMalformed, "delta ends before its manifest");
    AIRLOCK_TRY(SkipCopied());
    if (next_ < manifest_->size()) {
      return MakeError(ErrorCode::kMalformed,
                       "delta ends before " + PrintablePath((*manifest_)[next_].path));
    }
    AIRLOCK_TRY(internal::FinishTree(root_, *manifest_));
    return *manifest_;
  }

 private:
  Result<void> TakeManifest(ByteSpan& data) {
    while (!data.empty() && (length_.size() < 4 || text_.size() < want_)) {
      if (length_.size() < 4) {
        length_.push_back(data[0]);
        data = data.subspan(1);
        if (length_.size() == 4) {
          want_ = ReadU32Be(length_.data());
          if (want_ == 0 || want_ > kMaxManifestText) {
            return MakeError(ErrorCode::kMalformed, "delta manifest length out of range");
          }
        }
        continue;
      }
      const size_t n = std::min<size_t>(data.size(), want_ - text_.size());
      text_.append(reinterpret_cast<const char*>(data.data()), n);
      data = data.subspan(n);
    }
    if (length_.size() < 4 || text_.size() < want_) return {};
    auto json = ParseSignedJson(text_, kMaxManifestText);
    if (!json) return tl::unexpected(json.error().WithContext("delta manifest"));
    AIRLOCK_ASSIGN_OR_RETURN(Manifest m, ManifestFromJson(*json, limits_));
    manifest_ = std::move(m);
    return {};
  }

  // Copies, from the base, every file at the cursor whose content the base holds, and writes the
  // empty files the stream has no bytes for.
  Result<void> SkipCopied() {
    while (!out_.valid() && next_ < manifest_->size()) {
      const ManifestEntry& e = (*manifest_)[next_];
      auto from = by_hash_.find(e.sha256);
      if (from == by_hash_.end()) {
        if (e.size != 0) return {};
        AIRLOCK_TRY(Create(e));
        AIRLOCK_TRY(Close(e));
        continue;
      }
      const ManifestEntry& b = base_.manifest[from->second];
      AIRLOCK_TRY(CheckInterrupt());
      // Streamed in blocks (constant memory); Close checks the copy against the new manifest,
      // whose hash for it is the base's.
      uint64_t size = 0;
      AIRLOCK_ASSIGN_OR_RETURN(UniqueFd in, OpenForRead(base_.dir / b.path, &size));
      AIRLOCK_TRY(Create(e));
      Bytes buf(kDeltaIoBlock);
      for (uint64_t done = 0; done < size;) {
        AIRLOCK_ASSIGN_OR_RETURN(size_t n, PreadSome(in.get(), done, buf));
        if (n == 0) break;
        AIRLOCK_TRY(Write(ByteSpan(buf.data(), n)));
        done += n;
      }
      AIRLOCK_TRY(Close(e));
    }
    return {};
  }

  Result<void> Create(const ManifestEntry& e) {
    const size_t slash = e.path.rfind('/');
    const std::string dir = slash == std::string::npos ? std::string() : e.path.substr(0, slash);
    const std::string name = slash == std::string::npos ? e.path : e.path.substr(slash + 1);
    AIRLOCK_ASSIGN_OR_RETURN(UniqueFd parent, internal::OpenDirectoryUnder(root_, dir));
    // Private while writing; FinishTree gives the final 0644.
    out_ = UniqueFd(::openat(parent.get(), name.c_str(),
                             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out_.valid()) return ErrnoError("cannot create " + PrintablePath(e.path));
    hasher_.emplace(crypto::Hasher::Sha256());
    written_ = 0;
    return {};
  }

  Result<void> Write(ByteSpan data) {
    const ManifestEntry& e = (*manifest_)[next_];
    if (data.size() > e.size - written_) {
      return MakeError(ErrorCode::kHashMismatch,
                       PrintablePath(e.path) + " larger than its manifest entry");
    }
    hasher_->Update(data);
    AIRLOCK_TRY_CTX(WriteAll(out_.get(), data), PrintablePath(e.path));
    written_ += data.size();
    return {};
  }

  Result<void> Close(const ManifestEntry& e) {
    if (written_ != e.size || HexEncode(hasher_->Finish()) != e.sha256) {
      return MakeError(ErrorCode::kHashMismatch,
                       PrintablePath(e.path) + " does not match its manifest sha256");
    }
    if (out_.Close() != 0) return ErrnoError("cannot write " + PrintablePath(e.path));
    ++next_;
    return {};
  }

  int root_;
  const ReleaseFiles& base_;
  const Limits& limits_;
  std::unordered_map<std::string, size_t> by_hash_;
  Bytes length_;
  uint32_t want_ = 0;
  std::string text_;
  std::optional<Manifest> manifest_;
  size_t next_ = 0;
  UniqueFd out_;
  std::optional<crypto::Hasher> hasher_;
  uint64_t written_ = 0;
};

}  // namespace

std::string_view DeltaMethodName(DeltaMethod method) {
  return method == DeltaMethod::kPatch ? "patch" : "files";
}

nlohmann::json DeltaTargetCustomJson(const DeltaTargetCustom& c) {
  return {{"format", "airlock-delta"},
          {"delta",
           {{"app_id", c.app_id},
            {"version", c.version},
            {"base_version", c.base_version},
            {"method", c.method}}}};
}

std::optional<DeltaTargetCustom> ReadDeltaTargetCustom(const nlohmann::json& custom) {
  if (!custom.is_object() || custom.value("format", nlohmann::json()) != "airlock-delta") {
    return std::nullopt;
  }
  auto delta = custom.find("delta");
  if (delta == custom.end() || !delta->is_object()) return std::nullopt;
  DeltaTargetCustom d;
  for (auto [key, out] :
       {std::pair{"app_id", &d.app_id}, std::pair{"version", &d.version},
        std::pair{"base_version", &d.base_version}, std::pair{"method", &d.method}}) {
    auto it = delta->find(key);
    if (it == delta->end() || !it->is_string()) return std::nullopt;
    *out = it->get<std::string>();
  }
  return d;
}

std::string DeltaManifestDigest(const Manifest& manifest) {
  return HexEncode(crypto::Sha256(ToBytes(ManifestToJson(manifest).dump())));
}

Result<DeltaHeader> MakeDelta(const ReleaseFiles& base, const ReleaseFiles& target,
                              const DeltaOptions& options, crypto::Signer& signer,
                              ByteSpan content_key, const fs::path& out) {
  AIRLOCK_TRY(ValidateAppId(options.app_id));
  AIRLOCK_TRY(Semver::Parse(target.version));
  AIRLOCK_TRY(Semver::Parse(base.version));
  if (content_key.size() != crypto::kStreamKeySize) {
    return MakeError(ErrorCode::kInvalidArgument, "a content key is 32 bytes");
  }
  DeltaHeader h;
  h.app_id = options.app_id;
  h.version = target.version;
  h.created = internal::NowUtc();
  h.base_version = base.version;
  h.base_manifest_sha256 = DeltaManifestDigest(base.manifest);
  h.method = options.method;
  h.chunk_size = options.chunk_size;

  // What the device decompresses: the new manifest, then the files the base does not hold.
  const std::string manifest_text = ManifestToJson(target.manifest).dump();
  Bytes plain;
  AppendU32Be(plain, static_cast<uint32_t>(manifest_text.size()));
  plain.insert(plain.end(), manifest_text.begin(), manifest_text.end());
  const auto held = IndexByHash(base.manifest);
  AIRLOCK_TRY(ForEachReleaseFile(target, [&](size_t i, ByteSpan data) -> Result<void> {
    if (!held.contains(target.manifest[i].sha256))
      plain.insert(plain.end(), data.begin(), data.end());
    return {};
  }));
  Bytes reference;
  if (h.method == DeltaMethod::kPatch) {
    AIRLOCK_ASSIGN_OR_RETURN(reference, BuildReference(base));
  } else {
    AIRLOCK_TRY(CheckReleaseFiles(base));
  }

  std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> cctx(ZSTD_createCCtx());
  if (!cctx) return MakeError(ErrorCode::kInternal, "ZSTD_createCCtx failed");
  auto zcheck = [](size_t r) -> Result<void> {
    if (ZSTD_isError(r))
      return MakeError(ErrorCode::kInternal, std::string("zstd: ") + ZSTD_getErrorName(r));
    return {};
  };
  AIRLOCK_TRY(zcheck(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, options.level)));
  AIRLOCK_TRY(zcheck(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 0)));
  if (!reference.empty()) {
    // As `zstd --patch-from`: a window that covers the reference and the new data.
    AIRLOCK_TRY(zcheck(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_windowLog,
                                              WindowLogFor(reference.size() + plain.size()))));
    AIRLOCK_TRY(zcheck(ZSTD_CCtx_refPrefix(cctx.get(), reference.data(), reference.size())));
  }
  Bytes compressed(ZSTD_compressBound(plain.size()));
  const size_t zsize =
      ZSTD_compress2(cctx.get(), compressed.data(), compressed.size(), plain.data(), plain.size());
  AIRLOCK_TRY(zcheck(zsize));
  compressed.resize(zsize);

  AIRLOCK_ASSIGN_OR_RETURN(auto encryptor, crypto::StreamEncryptor::Create(
                                               content_key, DeltaPayloadAad(h), h.chunk_size));
  Bytes payload;
  AIRLOCK_TRY(encryptor.Update(compressed, payload));
  AIRLOCK_TRY(encryptor.Finish(payload));
  h.plain_length = compressed.size();
  h.payload_length = payload.size();
  h.payload_sha256 = HexEncode(crypto::Sha256(payload));

  const std::string header_text = DeltaHeaderToJson(h).dump();
  Bytes head(kDeltaMagic, kDeltaMagic + sizeof kDeltaMagic);
  AppendU32Be(head, static_cast<uint32_t>(header_text.size()));
  head.insert(head.end(), header_text.begin(), header_text.end());
  AIRLOCK_ASSIGN_OR_RETURN(Bytes signature,
                           signer.Sign(internal::SignedMessage(head, kDeltaSignaturePrefix)));
  const std::string sig_text = nlohmann::json{
      {"keyid", signer.Public().KeyId()},
      {"scheme", signer.Public().TufScheme()},
      {"sig",
       HexEncode(signature)}}.dump();
  AppendU32Be(head, static_cast<uint32_t>(sig_text.size()));
  head.insert(head.end(), sig_text.begin(), sig_text.end());
  AIRLOCK_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create(out, 0644, Overwrite::kNever));
  AIRLOCK_TRY(file.Write(head));
  AIRLOCK_TRY(file.Write(payload));
  AIRLOCK_TRY(file.Commit());
  return h;
}

Result<SignatureBlock> ReadDeltaSignature(const fs::path& path) {
  AIRLOCK_ASSIGN_OR_RETURN(internal::RawBundle raw, internal::ReadRawBundle(path, kDeltaMagic));
  return ParseSignatureBlock(raw.signature_block);
}

Result<AppliedDelta> ApplyDelta(const fs::path& path, const crypto::PublicKey& verify_key,
                                ByteSpan content_key, const ReleaseFiles& base,
                                const fs::path& out_dir, const Limits& limits) {
  if (content_key.size() != crypto::kStreamKeySize) {
    return MakeError(ErrorCode::kInvalidArgument, "a content key is 32 bytes");
  }
  // 1. Signature, header, extent: nothing else is read before these hold.
  AIRLOCK_ASSIGN_OR_RETURN(internal::RawBundle raw, internal::ReadRawBundle(path, kDeltaMagic));
  AIRLOCK_ASSIGN_OR_RETURN(SignatureBlock sig, ParseSignatureBlock(raw.signature_block));
  AIRLOCK_TRY(internal::VerifySignature(raw, sig, verify_key, kDeltaSignaturePrefix));
  AIRLOCK_ASSIGN_OR_RETURN(
      DeltaHeader h, ParseDeltaHeader(ByteSpan(raw.preamble_and_header).subspan(kPreambleSize)));
  const uint64_t end = raw.payload_offset + h.payload_length;
  if (raw.file_size < end) return MakeError(ErrorCode::kTruncated, "delta is truncated");
  if (raw.file_size > end) {
    return MakeError(ErrorCode::kTrailingData, "delta has trailing data after its payload");
  }
  // 2. The base it was made for, and the base's files as signed.
  if (h.base_version != base.version ||
      h.base_manifest_sha256 != DeltaManifestDigest(base.manifest)) {
    return MakeError(ErrorCode::kHashMismatch, "the delta is made for another base (" +
                                                   h.base_version + "), not the installed " +
                                                   base.version);
  }
  Bytes reference;
  if (h.method == DeltaMethod::kPatch) {
    AIRLOCK_ASSIGN_OR_RETURN(reference, BuildReference(base));
  } else {
    AIRLOCK_TRY(CheckReleaseFiles(base));
  }

  // 3. A private staging folder beside the output.
  std::error_code ec;
  if (fs::exists(fs::symlink_status(out_dir, ec))) {
    return MakeError(ErrorCode::kAlreadyExists, out_dir.string() + " already exists");
  }
  const fs::path parent = out_dir.parent_path().empty() ? fs::path(".") : out_dir.parent_path();
  RemoveStaleStaging(parent, kOpenStagingPrefix, StagingKind::kDirectory);
  AIRLOCK_ASSIGN_OR_RETURN(ScopedTempDir staging,
                           ScopedTempDir::Create(parent, kOpenStagingPrefix));
  const fs::path files_dir = staging.path() / "files";
  if (::mkdir(files_dir.c_str(), 0700) != 0)
    return ErrnoError("cannot create " + files_dir.string());
  UniqueFd root(::open(files_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoError("cannot open " + files_dir.string());

  // 4. The payload: hashed, each chunk authenticated, decompressed, written and checked.
  AIRLOCK_ASSIGN_OR_RETURN(auto decryptor, crypto::StreamDecryptor::Create(
                                               content_key, DeltaPayloadAad(h), h.chunk_size));
  std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> dctx(ZSTD_createDCtx());
  if (!dctx) return MakeError(ErrorCode::kInternal, "ZSTD_createDCtx failed");
  ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, 31);  // kMaxDeltaReference and more
  if (!reference.empty()) ZSTD_DCtx_refPrefix(dctx.get(), reference.data(), reference.size());
  TreeWriter writer(root.get(), base, limits);
  crypto::Hasher hasher = crypto::Hasher::Sha256();
  Bytes buf(kDeltaIoBlock), plain, unpacked(ZSTD_DStreamOutSize());
  Result<void> decrypted = {};
  size_t zstd_left = 1;  // what ZSTD_decompressStream last said remains of the frame
  uint64_t plain_total = 0;
  auto decompress = [&](ByteSpan compressed) -> Result<void> {
    ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
    while (in.pos < in.size) {
      ZSTD_outBuffer outb{unpacked.data(), unpacked.size(), 0};
      zstd_left = ZSTD_decompressStream(dctx.get(), &outb, &in);
      if (ZSTD_isError(zstd_left)) {
        return MakeError(ErrorCode::kMalformed,
                         std::string("delta payload: zstd: ") + ZSTD_getErrorName(zstd_left));
      }
      AIRLOCK_TRY(writer.Feed(ByteSpan(unpacked.data(), outb.pos)));
      if (zstd_left == 0 && in.pos < in.size) {
        return MakeError(ErrorCode::kMalformed, "delta payload: data after the zstd frame");
      }
    }
    return {};
  };
  auto on_block = [&](ByteSpan block) -> Result<void> {
    AIRLOCK_TRY(CheckInterrupt());
    hasher.Update(block);
    if (!decrypted) return {};  // keep hashing: an altered payload is reported as such
    plain.clear();
    decrypted = decryptor.Update(block, plain);
    if (!decrypted) return {};
    plain_total += plain.size();
    return decompress(plain);
  };
  AIRLOCK_TRY(
      internal::ForEachBlock(raw.fd.get(), raw.payload_offset, h.payload_length, buf, on_block));
  if (HexEncode(hasher.Finish()) != h.payload_sha256) {
    return MakeError(ErrorCode::kHashMismatch,
                     "delta payload does not match its signed SHA-256: the delta was altered");
  }
  if (decrypted) {
    plain.clear();
    decrypted = decryptor.Finish(plain);
  }
  if (!decrypted) return tl::unexpected(decrypted.error().WithContext("delta payload"));
  plain_total += plain.size();
  AIRLOCK_TRY(decompress(plain));
  if (plain_total != h.plain_length || zstd_left != 0) {
    return MakeError(ErrorCode::kMalformed, "delta payload ends inside its zstd frame");
  }
  AIRLOCK_ASSIGN_OR_RETURN(Manifest files, writer.Finish());

  // 5. Into place.
  root = UniqueFd();
  AIRLOCK_TRY(CheckInterrupt());
  AIRLOCK_TRY_CTX(RenameNoReplace(files_dir, out_dir),
                  "cannot move the patched release into place");
  AIRLOCK_TRY_CTX(FsyncPath(parent), "patched release");
  return AppliedDelta{std::move(h), std::move(files)};
}

}  // namespace airlock::bundle
