#include "agent/tuf_client_command.h"

#include <iostream>

#include "client/http_fetcher.h"
#include "client/updater.h"
#include "common/file.h"
#include "metadata/metadata.h"

namespace airlock::agent {
namespace {

Result<void> Require(const std::string& value, const char* option) {
  if (value.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(option) + " is required");
  }
  return {};
}

client::UpdaterOptions MakeOptions(const TufClientArgs& args, client::Fetcher* fetcher) {
  client::UpdaterOptions options;
  options.metadata_dir = args.metadata_dir;
  options.metadata_base_url = args.metadata_url;
  options.target_base_url = args.target_base_url;
  options.fetcher = fetcher;
  options.clock = client::SystemTime;  // libc time(): faketime moves it
  return options;
}

// A required option missing from the command line: a usage error (CLI11 exits 2 for it), raised
// from the sub-command's callback while parsing.
void RequireOption(const std::string& value, const char* option) {
  if (value.empty()) throw CLI::RequiredError(option);
}

}  // namespace

Result<void> TufClientInit(const TufClientArgs& args) {
  AIRLOCK_TRY(Require(args.metadata_dir, "--metadata-dir"));
  AIRLOCK_TRY(Require(args.trusted_root, "ROOT_JSON"));
  // No checks beyond readability: the operator chose this root; it is verified on first use.
  AIRLOCK_ASSIGN_OR_RETURN(Bytes root, ReadFile(args.trusted_root, metadata::kMaxRootSize));
  AIRLOCK_TRY(client::InitMetadataDir(args.metadata_dir, root));
  std::cout << "trusted root " << args.trusted_root << " stored in " << args.metadata_dir << "\n";
  return {};
}

Result<void> TufClientRefresh(const TufClientArgs& args) {
  AIRLOCK_TRY(Require(args.metadata_dir, "--metadata-dir"));
  AIRLOCK_TRY(Require(args.metadata_url, "--metadata-url"));
  client::HttpFetcher fetcher;
  AIRLOCK_ASSIGN_OR_RETURN(client::Updater updater,
                           client::Updater::Create(MakeOptions(args, &fetcher)));
  AIRLOCK_TRY(updater.Refresh());
  std::cout << "metadata in " << args.metadata_dir << " is verified and up to date\n";
  return {};
}

Result<void> TufClientDownload(const TufClientArgs& args) {
  AIRLOCK_TRY(Require(args.metadata_dir, "--metadata-dir"));
  AIRLOCK_TRY(Require(args.metadata_url, "--metadata-url"));
  AIRLOCK_TRY(Require(args.target_dir, "--target-dir"));
  AIRLOCK_TRY(Require(args.target_base_url, "--target-base-url"));
  if (args.target_names.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "--target-name is required");
  }
  client::HttpFetcher fetcher;
  AIRLOCK_ASSIGN_OR_RETURN(client::Updater updater,
                           client::Updater::Create(MakeOptions(args, &fetcher)));
  AIRLOCK_TRY(updater.Refresh());
  std::string line;
  for (const std::string& name : args.target_names) {
    AIRLOCK_ASSIGN_OR_RETURN(metadata::TargetFile info, updater.GetTargetInfo(name));
    // Already downloaded with matching length and hashes: no request (the contract's caching rule).
    std::filesystem::path saved;
    bool cached = false;
    if (auto found = updater.FindCachedTarget(name, info, args.target_dir)) {
      saved = *found;
      cached = true;
    } else {
      auto downloaded = updater.DownloadTarget(name, info, args.target_dir);
      if (!downloaded) return tl::unexpected(downloaded.error().WithContext(name));
      saved = *downloaded;
    }
    line += (line.empty() ? "" : "; ") + name + " -> " + saved.string() + " (" +
            std::to_string(info.length) + " bytes, verified" + (cached ? ", already there" : "") +
            ")";
  }
  std::cout << line << "\n";
  return {};
}

void AddTufClientCommand(CLI::App& app, TufClientArgs& args,
                         std::function<Result<void>()>& action) {
  CLI::App* cmd = app.add_subcommand("tuf-client", "TUF client (conformance-suite command line)");
  cmd->add_option("--metadata-dir", args.metadata_dir, "trusted metadata directory");
  cmd->add_option("--metadata-url", args.metadata_url, "repository metadata base URL");
  cmd->add_option("--target-name", args.target_names, "target path to download (repeatable)")
      ->take_all()
      ->expected(1);
  cmd->add_option("--target-dir", args.target_dir, "directory for downloaded targets");
  cmd->add_option("--target-base-url", args.target_base_url, "repository targets base URL");
  cmd->require_subcommand(1);

  CLI::App* init = cmd->add_subcommand("init", "store ROOT_JSON as the trusted root (no network)");
  init->add_option("ROOT_JSON", args.trusted_root, "initial trusted root.json")->required();
  init->fallthrough();
  init->callback([&args, &action] {
    RequireOption(args.metadata_dir, "--metadata-dir");
    action = [&args] { return TufClientInit(args); };
  });

  CLI::App* refresh = cmd->add_subcommand("refresh", "update trusted metadata from the repository");
  refresh->fallthrough();
  refresh->callback([&args, &action] {
    RequireOption(args.metadata_dir, "--metadata-dir");
    RequireOption(args.metadata_url, "--metadata-url");
    action = [&args] { return TufClientRefresh(args); };
  });

  CLI::App* download = cmd->add_subcommand("download", "refresh, then download verified targets");
  download->fallthrough();
  download->callback([&args, &action] {
    RequireOption(args.metadata_dir, "--metadata-dir");
    RequireOption(args.metadata_url, "--metadata-url");
    RequireOption(args.target_dir, "--target-dir");
    RequireOption(args.target_base_url, "--target-base-url");
    if (args.target_names.empty()) throw CLI::RequiredError("--target-name");
    action = [&args] { return TufClientDownload(args); };
  });
}

}  // namespace airlock::agent
