// placeholder: `airlock repo` commands are being written (issue 3).
#include "cli/commands.h"
namespace airlock::cli {
void AddRepoCommands(CLI::App& app, Action& action) {}
}  // namespace airlock::cli
