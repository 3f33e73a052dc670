// Fuzzes the TUF client's update state machine (client/updater.cc over client/trusted_set.cc) on a
// fuzzed repository: the input is a list of files (repo_files.h); the one named "trusted-root.json"
// is installed as the trust anchor, the others are served by an in-memory fetcher under the
// metadata URL ("timestamp.json", "2.root.json", "1.snapshot.json", "1.targets.json", ...). The
// updater refreshes (root chain, timestamp, snapshot, targets) and looks up a target through the
// delegations, at a fixed time. Seeds are real repositories made by fuzz/make_seeds.cc (as the
// client tests build them), so mutations reach every step, not just the root's signature.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <system_error>

#include "client/fetcher.h"
#include "client/updater.h"
#include "fuzz_util.h"
#include "repo_files.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace airlock;
  auto files = fuzz::SplitRepoFiles(ByteSpan(data, size));
  const Bytes* root = nullptr;
  client::MemoryFetcher fetcher;
  for (const auto& [name, body] : files) {
    if (name == "trusted-root.json") {
      root = &body;
    } else {
      fetcher.Set("https://repo.test/metadata/" + name, body);
    }
  }
  if (root == nullptr) return 0;
  fs::path dir = fuzz::ScratchDir() / "tuf";
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!client::InitMetadataDir(dir, *root)) return 0;
  client::UpdaterOptions options;
  options.metadata_dir = dir;
  options.metadata_base_url = "https://repo.test/metadata/";
  options.target_base_url = "https://repo.test/targets/";
  options.fetcher = &fetcher;
  options.clock = [] { return std::time_t{1'800'000'000}; };
  options.config.max_root_rotations = 8;
  auto updater = client::Updater::Create(options);
  if (!updater) return 0;
  if (!updater->Refresh()) return 0;
  (void)updater->GetTargetInfo("app/bundle.airlock");
  (void)updater->GetTargetInfo("delegated/a.txt");
  // A second updater starts from what the first stored, as the agent's next poll does.
  auto again = client::Updater::Create(options);
  if (!again) __builtin_trap();  // the first one stored a root that does not load
  (void)again->Refresh();
  return 0;
}
