#include "cli/commands.h"
namespace airlock::cli {
void AddKeygenCommand(CLI::App& app, Action& action) {}
}  // namespace airlock::cli
