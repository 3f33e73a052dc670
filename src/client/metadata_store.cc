#include "client/metadata_store.h"

#include <system_error>

#include "common/file.h"

namespace airlock::client {

std::string PercentEncode(std::string_view s, std::string_view keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        (c != 0 && keep.find(static_cast<char>(c)) != std::string_view::npos)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0F]);
    }
  }
  return out;
}

std::string UrlQuote(std::string_view s) { return PercentEncode(s, "-._~"); }

std::string TargetFileName(std::string_view target_path) {
  if (target_path == ".") return "%2E";
  if (target_path == "..") return "%2E%2E";
  return UrlQuote(target_path);
}

std::string MetadataStore::FileName(std::string_view role) { return UrlQuote(role) + ".json"; }

Result<Bytes> MetadataStore::Load(std::string_view role, uint64_t max_length) const {
  return ReadFile(dir_ / FileName(role), max_length);
}

Result<void> MetadataStore::Store(std::string_view role, ByteSpan data) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    return MakeError(ErrorCode::kIo,
                     "cannot create metadata directory " + dir_.string() + ": " + ec.message());
  }
  return WriteFileAtomic(dir_ / FileName(role), data);
}

Result<void> MetadataStore::Remove(std::string_view role) const {
  std::error_code ec;
  std::filesystem::remove(dir_ / FileName(role), ec);
  if (ec) {
    return MakeError(ErrorCode::kIo,
                     "cannot remove " + (dir_ / FileName(role)).string() + ": " + ec.message());
  }
  return {};
}

}  // namespace airlock::client
