#include "bundle/manifest.h"

#include <cstdio>
#include <limits>
#include <unordered_set>
#include <utility>

#include "common/bytes.h"

namespace airlock::bundle {

namespace {

constexpr size_t kSha256HexLength = 64;

// Length of the UTF-8 sequence starting at s[i] if it is well formed (shortest form, no surrogates,
// at most U+10FFFF) and not a C1 control character (U+0080..U+009F); 0 otherwise. Paths end up as
// JSON strings, which must be valid UTF-8, so an invalid sequence is refused here rather than
// failing later when a manifest is serialised.
size_t ValidUtf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  size_t length = 0;
  uint32_t code_point = 0;
  uint32_t min_code_point = 0;
  if (b0 < 0x80) {
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    length = 2;
    code_point = b0 & 0x1F;
    min_code_point = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    length = 3;
    code_point = b0 & 0x0F;
    min_code_point = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    length = 4;
    code_point = b0 & 0x07;
    min_code_point = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < length) return 0;
  for (size_t k = 1; k < length; ++k) {
    const unsigned char b = byte(i + k);
    if ((b & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (b & 0x3F);
  }
  if (code_point < min_code_point || code_point > 0x10FFFF) return 0;
  if (code_point >= 0xD800 && code_point <= 0xDFFF) return 0;
  if (code_point >= 0x80 && code_point <= 0x9F) return 0;
  return length;
}

Error UnsafePath(std::string_view path, std::string_view why) {
  return Error(ErrorCode::kUnsafePath,
               "unsafe path " + PrintablePath(path) + ": " + std::string(why));
}

}  // namespace

std::string PrintablePath(std::string_view path) {
  constexpr size_t kMaxShown = 256;
  std::string out = "\"";
  for (size_t i = 0; i < path.size() && i < kMaxShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(path[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (path.size() > kMaxShown) out += "...";
  out += '"';
  return out;
}

Result<void> ValidateBundlePath(std::string_view path, const Limits& limits) {
  if (path.empty()) return tl::unexpected(UnsafePath(path, "empty"));
  if (path.size() > limits.max_path_length) {
    return tl::unexpected(
        UnsafePath(path, "longer than " + std::to_string(limits.max_path_length) + " bytes"));
  }
  if (path.front() == '/') return tl::unexpected(UnsafePath(path, "absolute"));
  // Characters first, so that a NUL or backslash is reported as such and not as a bad component.
  for (size_t i = 0; i < path.size();) {
    const unsigned char c = static_cast<unsigned char>(path[i]);
    if (c == '\\') return tl::unexpected(UnsafePath(path, "contains a backslash"));
    if (c == 0) return tl::unexpected(UnsafePath(path, "contains a NUL byte"));
    if (c < 0x20 || c == 0x7F)
      return tl::unexpected(UnsafePath(path, "contains a control character"));
    const size_t n = ValidUtf8SequenceLength(path, i);
    if (n == 0) {
      return tl::unexpected(UnsafePath(path, "not valid UTF-8 or contains a control character"));
    }
    i += n;
  }
  size_t depth = 0;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view component = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (component.empty()) return tl::unexpected(UnsafePath(path, "empty component"));
    if (component == "." || component == "..") {
      return tl::unexpected(UnsafePath(path, "'.' or '..' component"));
    }
    if (++depth > limits.max_path_depth) {
      return tl::unexpected(
          UnsafePath(path, "deeper than " + std::to_string(limits.max_path_depth) + " components"));
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return {};
}

nlohmann::json ManifestToJson(const Manifest& manifest) {
  nlohmann::json out = nlohmann::json::array();
  for (const ManifestEntry& e : manifest) {
    out.push_back({{"path", e.path}, {"size", e.size}, {"sha256", e.sha256}});
  }
  return out;
}

Result<Manifest> ManifestFromJson(const nlohmann::json& json, const Limits& limits) {
  if (!json.is_array()) return MakeError(ErrorCode::kMalformed, "manifest is not a JSON array");
  if (json.size() > limits.max_files) {
    return MakeError(ErrorCode::kLimitExceeded, "manifest lists " + std::to_string(json.size()) +
                                                    " files, more than the limit of " +
                                                    std::to_string(limits.max_files));
  }
  Manifest manifest;
  manifest.reserve(json.size());
  // Every path seen so far; since the array must be sorted, a path's directory prefixes come before
  // it, so checking each prefix against this set finds every file/directory clash.
  std::unordered_set<std::string> seen;
  seen.reserve(json.size());
  uint64_t total = 0;
  for (size_t i = 0; i < json.size(); ++i) {
    const std::string where = "manifest entry " + std::to_string(i);
    const nlohmann::json& item = json[i];
    if (!item.is_object()) return MakeError(ErrorCode::kMalformed, where + " is not an object");
    if (item.size() != 3 || !item.contains("path") || !item.contains("size") ||
        !item.contains("sha256")) {
      return MakeError(ErrorCode::kMalformed,
                       where + " must have exactly the fields path, size and sha256");
    }
    const nlohmann::json& path_json = item["path"];
    const nlohmann::json& size_json = item["size"];
    const nlohmann::json& digest_json = item["sha256"];
    if (!path_json.is_string())
      return MakeError(ErrorCode::kMalformed, where + ": path is not a string");
    ManifestEntry entry;
    entry.path = path_json.get<std::string>();
    AIRLOCK_TRY_CTX(ValidateBundlePath(entry.path, limits), where);

    // nlohmann keeps non-negative numbers parsed from text as unsigned, but a document built in
    // code may hold them as signed: both are accepted when non-negative. Floats (even 1.0) are
    // refused.
    if (size_json.is_number_unsigned()) {
      entry.size = size_json.get<uint64_t>();
    } else if (size_json.is_number_integer() && size_json.get<int64_t>() >= 0) {
      entry.size = static_cast<uint64_t>(size_json.get<int64_t>());
    } else {
      return MakeError(ErrorCode::kMalformed, where + ": size is not a non-negative integer");
    }

    if (!digest_json.is_string()) {
      return MakeError(ErrorCode::kMalformed, where + ": sha256 is not a string");
    }
    entry.sha256 = digest_json.get<std::string>();
    if (!IsLowerHex(entry.sha256, kSha256HexLength)) {
      return MakeError(ErrorCode::kMalformed,
                       where + ": sha256 is not 64 lower-case hex characters");
    }

    if (!manifest.empty()) {
      const std::string& previous = manifest.back().path;
      if (entry.path == previous) {
        return MakeError(ErrorCode::kMalformed,
                         where + ": duplicate path " + PrintablePath(entry.path));
      }
      if (entry.path < previous) {
        return MakeError(ErrorCode::kMalformed,
                         where + ": path " + PrintablePath(entry.path) + " is out of order");
      }
    }
    for (size_t slash = entry.path.find('/'); slash != std::string::npos;
         slash = entry.path.find('/', slash + 1)) {
      if (seen.count(entry.path.substr(0, slash)) != 0) {
        return MakeError(ErrorCode::kMalformed, where + ": path " + PrintablePath(entry.path) +
                                                    " is inside the file " +
                                                    PrintablePath(entry.path.substr(0, slash)));
      }
    }

    if (entry.size > limits.max_total_size - total || total > limits.max_total_size) {
      return MakeError(ErrorCode::kLimitExceeded, "manifest files total more than the limit of " +
                                                      std::to_string(limits.max_total_size) +
                                                      " bytes");
    }
    total += entry.size;
    seen.insert(entry.path);
    manifest.push_back(std::move(entry));
  }
  return manifest;
}

uint64_t ManifestTotalSize(const Manifest& manifest) {
  uint64_t total = 0;
  for (const ManifestEntry& e : manifest) {
    // Saturate rather than wrap: callers compare the result with a limit.
    if (e.size > std::numeric_limits<uint64_t>::max() - total) {
      return std::numeric_limits<uint64_t>::max();
    }
    total += e.size;
  }
  return total;
}

}  // namespace airlock::bundle
