// placeholder: being written (issue 4).
#include "cli/commands.h"
namespace airlock::cli {
void AddKeyCommands(CLI::App& app, Action& action) {}
}  // namespace airlock::cli
