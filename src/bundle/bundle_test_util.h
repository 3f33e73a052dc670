// Helpers shared by the bundle module's tests: write a text file, read a directory tree, count
// staging left behind.
#ifndef AIRLOCK_BUNDLE_BUNDLE_TEST_UTIL_H_
#define AIRLOCK_BUNDLE_BUNDLE_TEST_UTIL_H_

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/file.h"

namespace airlock::bundle::test_util {

// Writes `text` to `p`, making its parent directories.
inline void WriteText(const std::filesystem::path& p, std::string_view text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

// Every file under `dir`, relative path -> contents.
inline std::map<std::string, Bytes> Tree(const std::filesystem::path& dir) {
  std::map<std::string, Bytes> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) {
      out[std::filesystem::relative(e.path(), dir).generic_string()] = *ReadFile(e.path(), 1 << 30);
    }
  }
  return out;
}

// Entries of `dir` (not below it) whose names start with `prefix`: staging left behind.
inline int Leftovers(const std::filesystem::path& dir, std::string_view prefix) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) ++n;
  }
  return n;
}

}  // namespace airlock::bundle::test_util

#endif  // AIRLOCK_BUNDLE_BUNDLE_TEST_UTIL_H_
