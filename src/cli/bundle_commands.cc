#include "cli/commands.h"
namespace airlock::cli {
void AddBundleCommands(CLI::App& app, Action& action) {}
}  // namespace airlock::cli
