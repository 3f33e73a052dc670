// Benchmark helper for bench/delta_bench.sh (issue 15).
//   delta_bench BASE_DIR NEW_DIR WORK_DIR [patch|files]
// makes the Airlock delta from BASE_DIR to NEW_DIR into WORK_DIR/d.ald (and the new release's whole
// bundle, new.alb, for scale) and prints "delta_bytes=N bundle_bytes=N make_s=S method=M";
//   delta_bench --apply BASE_DIR WORK_DIR
// applies WORK_DIR/d.ald to BASE_DIR in a process of its own (so its peak RSS is the apply's),
// checks the result against the delta's manifest, and prints "apply_s=S apply_rss_kb=N".
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "bundle/archive.h"
#include "bundle/bundle.h"
#include "bundle/delta.h"
#include "crypto/random.h"
#include "common/file.h"
#include "crypto/sign.h"

namespace fs = std::filesystem;
using namespace airlock;

int Apply(const fs::path& base_dir, const fs::path& work) {
  auto base_m = bundle::CreateArchive(base_dir, bundle::ArchiveFormat::kZip, work / "base2.zip");
  if (!base_m) return 1;
  auto key = ReadFile(work / "key", 64);
  auto pub = crypto::PublicKey::FromFile(work / "signer.pem");
  if (!key || !pub) return 1;
  const bundle::ReleaseFiles base{"1.0.0", *base_m, base_dir};
  fs::remove_all(work / "out");
  auto t0 = std::chrono::steady_clock::now();
  auto applied = bundle::ApplyDelta(work / "d.ald", *pub, *key, base, work / "out");
  auto t1 = std::chrono::steady_clock::now();
  if (!applied) {
    std::fprintf(stderr, "delta_bench: apply: %s\n", applied.error().ToString().c_str());
    return 1;
  }
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("apply_s=%.3f apply_rss_kb=%ld\n", std::chrono::duration<double>(t1 - t0).count(),
              ru.ru_maxrss);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--apply") return Apply(argv[2], argv[3]);
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s BASE_DIR NEW_DIR WORK_DIR [patch|files]\n", argv[0]);
    return 2;
  }
  const fs::path base_dir = argv[1], new_dir = argv[2], work = argv[3];
  const bool files = argc > 4 && std::string(argv[4]) == "files";
  auto fail = [](const std::string& what, const Error& e) {
    std::fprintf(stderr, "delta_bench: %s: %s\n", what.c_str(), e.ToString().c_str());
    return 1;
  };
  fs::create_directories(work);
  auto base_m = bundle::CreateArchive(base_dir, bundle::ArchiveFormat::kZip, work / "base.zip");
  if (!base_m) return fail("base", base_m.error());
  auto new_m = bundle::CreateArchive(new_dir, bundle::ArchiveFormat::kZip, work / "new.zip");
  if (!new_m) return fail("new", new_m.error());
  auto signer_key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  auto recipient = crypto::PrivateKey::Generate(crypto::KeyType::kX25519);
  Bytes key = *crypto::RandomBytes(32);
  crypto::PrivateKeySigner signer(*signer_key);
  // The whole bundle of the new release, for scale.
  bundle::SealOptions seal;
  seal.app_id = "com.example.bench";
  seal.version = "1.0.1";
  seal.content_key = key;
  if (auto s = bundle::SealBundle(new_dir, seal, signer, {recipient->Public()}, work / "new.alb");
      !s) {
    return fail("seal", s.error());
  }
  bundle::DeltaOptions options;
  options.app_id = seal.app_id;
  options.method = files ? bundle::DeltaMethod::kFiles : bundle::DeltaMethod::kPatch;
  const bundle::ReleaseFiles base{"1.0.0", *base_m, base_dir};
  const bundle::ReleaseFiles target{"1.0.1", *new_m, new_dir};
  auto t0 = std::chrono::steady_clock::now();
  auto made = bundle::MakeDelta(base, target, options, signer, key, work / "d.ald");
  if (!made) return fail("make", made.error());
  auto t1 = std::chrono::steady_clock::now();
  if (!WriteFileAtomic(work / "key", key) ||
      !WriteFileAtomic(work / "signer.pem", ToBytes(signer_key->Public().ToPem()))) {
    return 1;
  }
  std::printf("delta_bytes=%ju bundle_bytes=%ju make_s=%.3f method=%s\n",
              static_cast<uintmax_t>(fs::file_size(work / "d.ald")),
              static_cast<uintmax_t>(fs::file_size(work / "new.alb")),
              std::chrono::duration<double>(t1 - t0).count(), files ? "files" : "patch");
  return 0;
}
