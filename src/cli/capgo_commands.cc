#include "cli/commands.h"
namespace airlock::cli {
void AddCapgoCommands(CLI::App& app, Action& action) {}
}  // namespace airlock::cli
