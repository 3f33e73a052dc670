// Fuzzes the archive reader (libarchive behind src/bundle/archive.cc) on zip and tar bytes from disk
// (ScanArchive) and as a stream (ExtractArchiveStream, checked against the scanned manifest, as
// OpenBundle does), under small limits so bombs stop early. Nothing may be written outside the
// output folder.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <system_error>

#include "bundle/archive.h"
#include "fuzz_util.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace airlock;
  bundle::Limits limits;
  limits.max_files = 64;
  limits.max_total_size = 1 << 20;
  auto path = fuzz::WriteInput("input.archive", data, size);
  bundle::ArchiveFormat format;
  auto manifest = bundle::ScanArchive(path, limits, &format);
  if (!manifest) return 0;
  fs::path out = fuzz::ScratchDir() / "out";
  std::error_code ec;
  fs::remove_all(out, ec);
  fs::create_directory(out);
  bool sent = false;
  bundle::ArchiveSource source = [&]() -> Result<ByteSpan> {
    if (sent) return ByteSpan();
    sent = true;
    return ByteSpan(data, size);
  };
  (void)bundle::ExtractArchiveStream(source, *manifest, out, limits, format);
  // Only the scratch folder's own entries may exist: nothing escaped.
  for (const auto& entry : fs::directory_iterator(fuzz::ScratchDir())) {
    auto name = entry.path().filename();
    if (name != "input.archive" && name != "out") __builtin_trap();
  }
  fs::remove_all(out, ec);
  return 0;
}
