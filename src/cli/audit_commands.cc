// placeholder: being written (issue 4).
#include "cli/commands.h"
namespace airlock::cli {
void AddAuditCommands(CLI::App& app, Action& action) {}
}  // namespace airlock::cli
