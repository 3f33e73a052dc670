#include "cli/app_config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/file.h"
#include "common/json.h"

namespace airlock::cli {

namespace fs = std::filesystem;

Result<fs::path> ConfigDir() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME");
      xdg != nullptr && fs::path(xdg).is_absolute()) {
    return fs::path(xdg) / "airlock";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return fs::path(home) / ".config" / "airlock";
  }
  return MakeError(ErrorCode::kNotFound,
                   "no configuration directory: set XDG_CONFIG_HOME or HOME (or AIRLOCK_VAULT and "
                   "key options)");
}

Result<void> MakePrivateDirs(const fs::path& dir) {
  fs::path partial;
  for (const fs::path& part : dir) {
    partial /= part;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return MakeError(ErrorCode::kIo,
                       "cannot create " + partial.string() + ": " + std::strerror(errno));
    }
  }
  return {};
}

Result<std::string> DefaultVaultUri(bool* is_default) {
  *is_default = false;
  if (const char* v = std::getenv("AIRLOCK_VAULT"); v != nullptr && *v != '\0')
    return std::string(v);
  AIRLOCK_ASSIGN_OR_RETURN(fs::path dir, ConfigDir());
  *is_default = true;
  return "file:" + (dir / "vault.db").string();
}

nlohmann::json AppConfig::ToJson() const {
  return {{"app_id", app_id},           {"root_keys", root_keys},
          {"root_keyids", root_keyids}, {"root_threshold", root_threshold},
          {"targets_key", targets_key}, {"targets_keyid", targets_keyid},
          {"capgo_key", capgo_key},     {"capgo_public_key", capgo_public_key},
          {"app_key_pem", app_key_pem}, {"content_key_pem", content_key_pem}};
}

Result<fs::path> AppFilePath(const std::string& app_id, const std::string& suffix) {
  AIRLOCK_ASSIGN_OR_RETURN(fs::path dir, ConfigDir());
  return dir / "apps" / (app_id + suffix);
}

Result<std::optional<AppConfig>> LoadAppConfig(const std::string& app_id) {
  AIRLOCK_ASSIGN_OR_RETURN(fs::path path, AppFilePath(app_id, ".json"));
  auto text = ReadTextFile(path, kMaxConfigFile);
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) return std::optional<AppConfig>();
    return tl::unexpected(text.error());
  }
  auto j = ParseJson(*text, kMaxConfigFile);
  if (!j || !j->is_object()) {
    return MakeError(ErrorCode::kMalformed, path.string() + " is not a JSON object");
  }
  AppConfig c;
  try {
    c.app_id = j->value("app_id", "");
    c.root_keys = j->value("root_keys", std::vector<std::string>{});
    c.root_keyids = j->value("root_keyids", std::vector<std::string>{});
    c.root_threshold = j->value("root_threshold", uint64_t{1});
    c.targets_key = j->value("targets_key", "");
    c.targets_keyid = j->value("targets_keyid", "");
    c.capgo_key = j->value("capgo_key", "");
    c.capgo_public_key = j->value("capgo_public_key", "");
    c.app_key_pem = j->value("app_key_pem", "");
    c.content_key_pem = j->value("content_key_pem", "");
  } catch (const nlohmann::json::exception& e) {
    return MakeError(ErrorCode::kMalformed, path.string() + ": " + e.what());
  }
  return std::optional<AppConfig>(std::move(c));
}

Result<fs::path> SaveAppConfig(const AppConfig& c) {
  AIRLOCK_ASSIGN_OR_RETURN(fs::path path, AppFilePath(c.app_id, ".json"));
  AIRLOCK_TRY(MakePrivateDirs(path.parent_path()));
  AIRLOCK_TRY(WriteFileAtomic(path, AsBytes(c.ToJson().dump(2) + "\n"), 0600));
  return path;
}

}  // namespace airlock::cli
