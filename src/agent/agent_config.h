// The agent's configuration: a TOML file (docs/operations/agent.md lists every key).
//
//   server = "http://127.0.0.1:8080"          # airlockd's base URL (http or https)
//   app = "io.example.app"
//   channel = "production"                    # the channel asked for (the server may override it)
//   install_dir = "/var/lib/airlock/io.example.app"   # slots, journal, identity, trusted metadata
//   trusted_root = "/etc/airlock/io.example.app/root.json"   # from `airlock app root`
//   enrollment_token = "enr_..."              # or enrollment_token_file = "..."
//   restart_command = "systemctl restart example-app"   # optional; gets AIRLOCK_RELEASE and
//                                             # AIRLOCK_VERSION in its environment
//   health_timeout = "30s"                    # s, m, h, d suffixes or plain seconds (max 30 days)
//   poll_interval = "1h"                      # `run`: between checks (jittered +-10 %)
//   crash_loop_limit = 3                      # starts of an unconfirmed release before rollback
//   platform = "linux"                        # sent to the server (ios, android, electron, linux)
//   native_version = "1.0.0"                  # the native shell's version (min_native_version)
//   builtin_version = "0.0.0"                 # the version of what ships without any update
//   builtin_dir = "/opt/example-app/builtin"  # optional: `current` points here before any install
//
// Unknown keys are refused (a typo must not silently change behaviour); relative paths are relative
// to the config file's directory.
#ifndef AIRLOCK_AGENT_AGENT_CONFIG_H_
#define AIRLOCK_AGENT_AGENT_CONFIG_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace airlock::agent {

struct AgentConfig {
  std::string server;
  std::string app;
  std::string channel;
  std::filesystem::path install_dir;
  std::filesystem::path trusted_root;
  std::string enrollment_token;  // from enrollment_token or enrollment_token_file; may be empty
  std::string restart_command;
  int64_t health_timeout_seconds = 30;
  int64_t poll_interval_seconds = 3600;
  int64_t crash_loop_limit = 3;
  std::string platform = "linux";
  std::string native_version = "1.0.0";
  std::string builtin_version = "0.0.0";
  std::filesystem::path builtin_dir;

  std::filesystem::path IdentityDir() const { return install_dir / "identity"; }
  std::filesystem::path MetadataDir() const { return install_dir / "tuf"; }
  std::filesystem::path DownloadDir() const { return install_dir / "downloads"; }
  std::filesystem::path ReportQueuePath() const { return install_dir / "reports.db"; }
};

// Reads and checks the file: kNotFound / kIo for the file, kMalformed for TOML errors (with line),
// kInvalidArgument naming the key for a missing required key, a wrong type or a bad value.
[[nodiscard]] Result<AgentConfig> LoadAgentConfig(const std::filesystem::path& path);

// The checks of a config's values, for LoadAgentConfig and for a config built in code (the
// library's Config): server an http(s) URL (its trailing '/' removed), app and channel ids,
// health_timeout 1 s to 30 days, crash_loop_limit 1 to 100, semver native and builtin versions.
// kInvalidArgument, the message starting with `where`.
[[nodiscard]] Result<void> CheckAgentConfig(AgentConfig& config, std::string_view where);

}  // namespace airlock::agent

#endif  // AIRLOCK_AGENT_AGENT_CONFIG_H_
