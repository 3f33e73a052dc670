#include "agent/agent_config.h"

#include <charconv>

#include "common/duration.h"
#include "common/file.h"
#include "common/semver.h"
#include "common/toml_file.h"

namespace airlock::agent {
namespace {

constexpr DurationRule kDurationRule{30 * kSecondsPerDay, /*bare_seconds=*/true};

Result<std::string> StringKey(const toml::table& t, std::string_view key, bool required,
                              const std::string& where) {
  const toml::node* node = t.get(key);
  if (node == nullptr) {
    if (required) {
      return MakeError(ErrorCode::kInvalidArgument,
                       where + "missing key \"" + std::string(key) + "\"");
    }
    return std::string();
  }
  if (!node->is_string()) {
    return MakeError(ErrorCode::kInvalidArgument, where + std::string(key) + " must be a string");
  }
  std::string value(*node->value<std::string_view>());
  if (required && value.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, where + std::string(key) + " must not be empty");
  }
  return value;
}

// A duration key: a string with a suffix or an integer of seconds.
Result<std::optional<int64_t>> DurationKey(const toml::table& t, std::string_view key,
                                           const std::string& where) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return std::optional<int64_t>();
  Result<int64_t> parsed =
      node->is_integer()  ? ParseDuration(std::to_string(node->as_integer()->get()), kDurationRule)
      : node->is_string() ? ParseDuration(*node->value<std::string_view>(), kDurationRule)
                          : MakeError(ErrorCode::kInvalidArgument, "not a duration");
  if (!parsed) {
    return MakeError(ErrorCode::kInvalidArgument,
                     where + std::string(key) +
                         " must be a duration such as \"30s\", \"5m\" or \"1h\" " +
                         "(1 s to 30 days)");
  }
  return std::optional<int64_t>(*parsed);
}

std::filesystem::path Resolve(const std::filesystem::path& base, const std::string& value) {
  if (value.empty()) return {};
  std::filesystem::path p(value);
  return p.is_absolute() ? p : base / p;
}

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<AgentConfig> LoadAgentConfig(const std::filesystem::path& path) {
  AIRLOCK_ASSIGN_OR_RETURN(toml::table table, ReadTomlFile(path));
  const std::string where = path.string() + ": ";
  static constexpr std::string_view kKeys[] = {"server",
                                               "app",
                                               "channel",
                                               "install_dir",
                                               "trusted_root",
                                               "enrollment_token",
                                               "enrollment_token_file",
                                               "restart_command",
                                               "health_timeout",
                                               "poll_interval",
                                               "crash_loop_limit",
                                               "platform",
                                               "native_version",
                                               "builtin_version",
                                               "builtin_dir"};
  for (auto&& [key, node] : table) {
    bool known = false;
    for (std::string_view k : kKeys) known = known || key.str() == k;
    if (!known) {
      return MakeError(ErrorCode::kInvalidArgument,
                       where + "line " + std::to_string(key.source().begin.line) +
                           ": unknown key \"" + std::string(key.str()) + "\"");
    }
  }
  const std::filesystem::path base = path.parent_path();
  AgentConfig c;
  AIRLOCK_ASSIGN_OR_RETURN(c.server, StringKey(table, "server", true, where));
  AIRLOCK_ASSIGN_OR_RETURN(c.app, StringKey(table, "app", true, where));
  AIRLOCK_ASSIGN_OR_RETURN(c.channel, StringKey(table, "channel", true, where));
  AIRLOCK_ASSIGN_OR_RETURN(std::string install_dir, StringKey(table, "install_dir", true, where));
  c.install_dir = Resolve(base, install_dir);
  AIRLOCK_ASSIGN_OR_RETURN(std::string root, StringKey(table, "trusted_root", true, where));
  c.trusted_root = Resolve(base, root);
  AIRLOCK_ASSIGN_OR_RETURN(c.enrollment_token, StringKey(table, "enrollment_token", false, where));
  AIRLOCK_ASSIGN_OR_RETURN(std::string token_file,
                           StringKey(table, "enrollment_token_file", false, where));
  if (!token_file.empty()) {
    if (!c.enrollment_token.empty()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       where + "give enrollment_token or enrollment_token_file, not both");
    }
    AIRLOCK_ASSIGN_OR_RETURN(c.enrollment_token, ReadTextFile(Resolve(base, token_file), 4096));
    while (!c.enrollment_token.empty() &&
           (c.enrollment_token.back() == '\n' || c.enrollment_token.back() == '\r')) {
      c.enrollment_token.pop_back();
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(c.restart_command, StringKey(table, "restart_command", false, where));
  AIRLOCK_ASSIGN_OR_RETURN(auto health, DurationKey(table, "health_timeout", where));
  if (health) c.health_timeout_seconds = *health;
  AIRLOCK_ASSIGN_OR_RETURN(auto poll, DurationKey(table, "poll_interval", where));
  if (poll) c.poll_interval_seconds = *poll;
  if (const toml::node* n = table.get("crash_loop_limit")) {
    if (!n->is_integer()) {
      return MakeError(ErrorCode::kInvalidArgument, where + "crash_loop_limit must be 1 to 100");
    }
    c.crash_loop_limit = n->as_integer()->get();
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::string platform, StringKey(table, "platform", false, where));
  if (!platform.empty()) c.platform = platform;
  AIRLOCK_ASSIGN_OR_RETURN(std::string native, StringKey(table, "native_version", false, where));
  if (!native.empty()) c.native_version = native;
  AIRLOCK_ASSIGN_OR_RETURN(std::string builtin, StringKey(table, "builtin_version", false, where));
  if (!builtin.empty()) c.builtin_version = builtin;
  AIRLOCK_ASSIGN_OR_RETURN(std::string builtin_dir, StringKey(table, "builtin_dir", false, where));
  c.builtin_dir = Resolve(base, builtin_dir);
  AIRLOCK_TRY(CheckAgentConfig(c, where));
  return c;
}

Result<void> CheckAgentConfig(AgentConfig& c, std::string_view where) {
  const auto bad = [&](const char* what) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(where) + what);
  };
  if (c.server.rfind("http://", 0) != 0 && c.server.rfind("https://", 0) != 0) {
    return bad("server must be an http:// or https:// URL");
  }
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  if (!IsValidId(c.app) || !IsValidId(c.channel)) {
    return bad("app and channel must be 1 to 128 characters of A-Z a-z 0-9 . _ -");
  }
  if (c.health_timeout_seconds < 1 || c.health_timeout_seconds > kDurationRule.max_seconds) {
    return bad("health_timeout_seconds must be 1 s to 30 days");
  }
  if (c.crash_loop_limit < 1 || c.crash_loop_limit > 100) {
    return bad("crash_loop_limit must be 1 to 100");
  }
  if (!Semver::Parse(c.native_version) || !Semver::Parse(c.builtin_version)) {
    return bad("native_version and builtin_version must be semver versions");
  }
  return {};
}

}  // namespace airlock::agent
