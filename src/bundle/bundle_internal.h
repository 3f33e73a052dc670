// The container shared by sealed bundles (bundle.h) and deltas (delta.h): magic, header length,
// header, signature block length, signature block, payload. Internal to airlock_bundle.
#ifndef AIRLOCK_BUNDLE_BUNDLE_INTERNAL_H_
#define AIRLOCK_BUNDLE_BUNDLE_INTERNAL_H_

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "bundle/bundle.h"
#include "common/bytes.h"
#include "common/fd.h"
#include "common/file.h"
#include "common/result.h"
#include "crypto/keys.h"

namespace airlock::bundle::internal {

// The first part of a container file, read with bounds, before anything is trusted.
struct RawBundle {
  UniqueFd fd;
  uint64_t file_size = 0;
  Bytes preamble_and_header;  // magic, header length, header
  Bytes signature_block;
  uint64_t payload_offset = 0;
};

// Reads the preamble, header and signature block of the file at `path` (which must start with
// `magic`) within the bounds of bundle.h: kMalformed, kTruncated, kLimitExceeded, kIo.
[[nodiscard]] Result<RawBundle> ReadRawBundle(const std::filesystem::path& path,
                                              const uint8_t (&magic)[8]);
// `prefix` followed by the preamble and header: what the signature covers.
Bytes SignedMessage(ByteSpan preamble_and_header, std::string_view prefix);
// kWrongKey (another signer), kBadSignature.
[[nodiscard]] Result<void> VerifySignature(const RawBundle& raw, const SignatureBlock& sig,
                                           const crypto::PublicKey& verify_key,
                                           std::string_view prefix);
std::string ShortId(std::string_view key_id);
// The current time as RFC 3339 UTC (a header's `created`).
std::string NowUtc();

// Reads [offset, offset+length) in blocks and hands each to `fn`.
template <typename Fn>
Result<void> ForEachBlock(int fd, uint64_t offset, uint64_t length, Bytes& buf, Fn&& fn) {
  uint64_t done = 0;
  while (done < length) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), length - done));
    AIRLOCK_TRY(PreadExact(fd, offset + done, std::span(buf.data(), n)));
    AIRLOCK_TRY(fn(ByteSpan(buf.data(), n)));
    done += n;
  }
  return {};
}

// Opens (creating as needed, mode 0700) the directory `rel_dir` under `root`, one component at a
// time with O_NOFOLLOW: a symlink on the way is kUnsafePath, never followed.
[[nodiscard]] Result<UniqueFd> OpenDirectoryUnder(int root, std::string_view rel_dir);
// Every file of `manifest` under `root` gets mode 0644 and is fsynced, then every directory
// (deepest first, `root` last) 0755 and fsynced.
[[nodiscard]] Result<void> FinishTree(int root, const Manifest& manifest);

}  // namespace airlock::bundle::internal

#endif  // AIRLOCK_BUNDLE_BUNDLE_INTERNAL_H_
