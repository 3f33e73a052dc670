// The `airlock` command line: each Add*Commands function registers its sub-commands on the root CLI11 app.
// A sub-command's callback stores the work to do in `action`; main() runs it once parsing succeeded, so
// usage errors (exit 2) are told apart from failures (exit 1) in one place.
#ifndef AIRLOCK_CLI_COMMANDS_H_
#define AIRLOCK_CLI_COMMANDS_H_

#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/result.h"

namespace airlock::cli {

using Action = std::function<Result<void>()>;

void AddKeygenCommand(CLI::App& app, Action& action);
void AddBundleCommands(CLI::App& app, Action& action);
void AddCapgoCommands(CLI::App& app, Action& action);
void AddRepoCommands(CLI::App& app, Action& action);
void AddKeyCommands(CLI::App& app, Action& action);    // airlock vault ..., airlock key ...
void AddAuditCommands(CLI::App& app, Action& action);  // airlock audit ...
// app, channel, release, rollout and device commands: talk to airlockd (--server, --token).
void AddServerCommands(CLI::App& app, Action& action);

// Prints `value` as pretty JSON on stdout.
void PrintJson(const nlohmann::json& value);

// kInvalidArgument -> exit 2 (usage); every other error -> exit 1.
int ExitCodeFor(const Error& error);

}  // namespace airlock::cli

#endif  // AIRLOCK_CLI_COMMANDS_H_
