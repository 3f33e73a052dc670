// airlock-agent: the device-side executable. Thin: argument parsing and dispatch; the work lives in
// src/client. Exit status is 0 on success, 2 for a usage error (no sub-command, an unknown or a
// missing required option) and 1 on any other failure (the tuf-client contract), and nothing
// escapes main as an exception.
#include <exception>
#include <functional>
#include <iostream>

#include <CLI/CLI.hpp>

#include "agent/agent_commands.h"
#include "agent/tuf_client_command.h"

namespace {

int Run(int argc, char** argv) {
  CLI::App app{"airlock-agent: verifying update agent", "airlock-agent"};
  app.require_subcommand(1);
  airlock::agent::TufClientArgs args;
  std::function<airlock::Result<void>()> action;
  airlock::agent::AddTufClientCommand(app, args, action);
  airlock::agent::AddAgentCommands(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (!action) {
    std::cerr << "airlock-agent: nothing to do (see --help)\n";
    return 2;
  }
  airlock::Result<void> result = action();
  if (!result) {
    std::cerr << "airlock-agent: error: " << result.error().ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "airlock-agent: internal error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "airlock-agent: internal error\n";
  }
  return 1;
}
