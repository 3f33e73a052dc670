// The container format of tuf_client_fuzz inputs: a repository as a list of files, each
//   NAME '\n' LENGTH(2 bytes, big-endian) BODY
// (a record cut short ends the list). Shared by the target and fuzz/make_seeds.cc.
#ifndef AIRLOCK_FUZZ_REPO_FILES_H_
#define AIRLOCK_FUZZ_REPO_FILES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.h"

namespace airlock::fuzz {

using RepoFile = std::pair<std::string, Bytes>;

inline std::vector<RepoFile> SplitRepoFiles(ByteSpan in) {
  std::vector<RepoFile> files;
  size_t pos = 0;
  while (pos < in.size() && files.size() < 64) {
    size_t nl = pos;
    while (nl < in.size() && in[nl] != '\n' && nl - pos < 128) ++nl;
    if (nl >= in.size() || in[nl] != '\n' || nl + 3 > in.size()) break;
    std::string name(reinterpret_cast<const char*>(in.data() + pos), nl - pos);
    size_t len = (size_t{in[nl + 1]} << 8) | in[nl + 2];
    size_t body = nl + 3;
    if (body + len > in.size()) break;
    files.emplace_back(std::move(name), Bytes(in.begin() + body, in.begin() + body + len));
    pos = body + len;
  }
  return files;
}

inline void AppendRepoFile(Bytes& out, std::string_view name, ByteSpan body) {
  out.insert(out.end(), name.begin(), name.end());
  out.push_back('\n');
  out.push_back(static_cast<uint8_t>(body.size() >> 8));
  out.push_back(static_cast<uint8_t>(body.size() & 0xff));
  out.insert(out.end(), body.begin(), body.end());
}

}  // namespace airlock::fuzz

#endif  // AIRLOCK_FUZZ_REPO_FILES_H_
