// airlock: the developer and operator CLI. Thin: parsing and dispatch only; the work lives in the modules.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"

namespace airlock::cli {

void PrintJson(const nlohmann::json& value) { std::cout << value.dump(2) << "\n"; }

int ExitCodeFor(const Error& error) {
  return error.code() == ErrorCode::kInvalidArgument ? 2 : 1;
}

}  // namespace airlock::cli

int main(int argc, char** argv) {
  CLI::App app{"airlock: sign, encrypt and ship over-the-air updates", "airlock"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "airlock 0.1.0");
  airlock::cli::Action action;
  airlock::cli::AddKeygenCommand(app, action);
  airlock::cli::AddBundleCommands(app, action);
  airlock::cli::AddCapgoCommands(app, action);
  airlock::cli::AddRepoCommands(app, action);
  airlock::cli::AddKeyCommands(app, action);
  airlock::cli::AddAuditCommands(app, action);
  airlock::cli::AddServerCommands(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (!action) {
    std::cerr << "airlock: nothing to do (see --help)\n";
    return 2;
  }
  airlock::Result<void> r = action();
  if (!r) {
    std::cerr << "airlock: error: " << r.error().message() << "\n";
    return airlock::cli::ExitCodeFor(r.error());
  }
  return 0;
}
