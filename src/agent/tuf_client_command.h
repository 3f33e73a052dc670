// `airlock-agent tuf-client`: the TUF conformance client command line (the contract of the TUF
// project's conformance suite, see issue 3):
//
//   airlock-agent tuf-client --metadata-dir MD init ROOT_JSON
//   airlock-agent tuf-client --metadata-url URL --metadata-dir MD refresh
//   airlock-agent tuf-client --metadata-url URL --metadata-dir MD --target-name T [--target-name T2
//   ...]
//       --target-dir TD --target-base-url TURL download
//
// Exit status 0 on success, 2 for a usage error (a missing required option) and 1 on any other
// failure. On success each operation prints one line on stdout; `download` names each target's file:
// TARGET_DIR/<target path URL-encoded> (e.g. releases%2F1.0.1%2Fbundle.alb), the name the
// conformance suite's contract fixes.
#ifndef AIRLOCK_AGENT_TUF_CLIENT_COMMAND_H_
#define AIRLOCK_AGENT_TUF_CLIENT_COMMAND_H_

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/result.h"

namespace airlock::agent {

struct TufClientArgs {
  std::string metadata_dir;
  std::string metadata_url;
  std::vector<std::string> target_names;
  std::string target_dir;
  std::string target_base_url;
  std::string trusted_root;  // init's ROOT_JSON
};

// Registers the sub-command; when the command line selects it, `action` is set to the work to run.
void AddTufClientCommand(CLI::App& app, TufClientArgs& args, std::function<Result<void>()>& action);

// The three operations (also usable without the CLI).
[[nodiscard]] Result<void> TufClientInit(const TufClientArgs& args);
[[nodiscard]] Result<void> TufClientRefresh(const TufClientArgs& args);
[[nodiscard]] Result<void> TufClientDownload(const TufClientArgs& args);

}  // namespace airlock::agent

#endif  // AIRLOCK_AGENT_TUF_CLIENT_COMMAND_H_
