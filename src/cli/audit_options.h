// Options shared by `airlock audit` (audit_commands.cc) and `airlock access` (access_commands.cc).
#ifndef AIRLOCK_CLI_AUDIT_OPTIONS_H_
#define AIRLOCK_CLI_AUDIT_OPTIONS_H_

#include <cstdint>
#include <filesystem>
#include <string>

#include "cli/commands.h"

namespace airlock::cli {

// --vault / --audit (with their environment variables).
struct LogArgs {
  std::string vault, audit;
};
void AddLogOptions(CLI::App* c, LogArgs& a);
// --vault / --audit; with neither, --vault is set to the default vault (DefaultVaultUri) once the
// command line is parsed.
// --audit, else the log beside the vault (the default vault's when --vault is empty).
Result<std::filesystem::path> AuditPath(const LogArgs& a);
// `access`, else the access file beside the vault (the default vault's when --vault is empty).
Result<std::filesystem::path> AccessPath(const LogArgs& a, const std::string& access);
// YYYY-MM-DDTHH:MM:SSZ (UTC).
std::string FormatUtc(int64_t unix_seconds);

// airlock access ... (called by AddAuditCommands).
void AddAccessCommands(CLI::App& app, Action& action);

}  // namespace airlock::cli

#endif  // AIRLOCK_CLI_AUDIT_OPTIONS_H_
