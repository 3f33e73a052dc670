// placeholder; the server commands (app, channel, release, rollout, device) come in a following commit.
#include "cli/commands.h"

namespace airlock::cli {

void AddServerCommands(CLI::App& app, Action& action) {}

}  // namespace airlock::cli
