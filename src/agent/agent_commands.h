// airlock-agent --config FILE enroll | check | update | confirm --release ID | status [--json] |
// rollback | run: the device agent's commands (agent/agent.h does the work).
#ifndef AIRLOCK_AGENT_AGENT_COMMANDS_H_
#define AIRLOCK_AGENT_AGENT_COMMANDS_H_

#include <functional>

#include <CLI/CLI.hpp>

#include "common/result.h"

namespace airlock::agent {

void AddAgentCommands(CLI::App& app, std::function<Result<void>()>& action);

}  // namespace airlock::agent

#endif  // AIRLOCK_AGENT_AGENT_COMMANDS_H_
