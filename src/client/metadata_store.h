// MetadataStore: the client's trusted-metadata directory. It holds byte-exact copies of verified
// metadata as served, named root.json, timestamp.json, snapshot.json, targets.json and
// <url-quoted delegated role>.json, and nothing else.
#ifndef AIRLOCK_CLIENT_METADATA_STORE_H_
#define AIRLOCK_CLIENT_METADATA_STORE_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace airlock::client {

// Percent-encodes every byte except the unreserved characters A-Z a-z 0-9 - . _ ~ (RFC 3986), so
// '/' becomes %2F: the result is a single safe path segment (Python's urllib.parse.quote(s,
// safe="")).
std::string UrlQuote(std::string_view s);

// Percent-encodes (upper-case hex) every byte of `s` that is not an ASCII letter or digit and not in `keep`.
std::string PercentEncode(std::string_view s, std::string_view keep);

// The local file name of a downloaded target: UrlQuote(target_path), except that "." and ".."
// become
// "%2E" and "%2E%2E" so that the name never refers to a directory.
std::string TargetFileName(std::string_view target_path);

// File operations on one metadata directory. Writes are atomic (temporary file, fsync, rename), so
// a crash leaves either the old or the new copy. Not thread-safe; one process at a time.
class MetadataStore {
 public:
  explicit MetadataStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // The file name for a role: "<UrlQuote(role)>.json".
  static std::string FileName(std::string_view role);

  // kNotFound if there is no copy; kLimitExceeded if it is larger than max_length; kIo otherwise.
  [[nodiscard]] Result<Bytes> Load(std::string_view role, uint64_t max_length) const;
  // Creates the directory if needed.
  [[nodiscard]] Result<void> Store(std::string_view role, ByteSpan data) const;
  // Removing a file that does not exist succeeds.
  [[nodiscard]] Result<void> Remove(std::string_view role) const;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_METADATA_STORE_H_
