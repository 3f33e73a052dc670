#include "server/config.h"

#include <charconv>
#include <variant>

#include "common/toml_file.h"
#include "keys/key_uri.h"

namespace airlock::server {
namespace {

constexpr int64_t kMaxExpiry = int64_t{10} * 365 * 86400;

enum class Kind { kString, kInteger, kBool };

struct KeySpec {
  std::string_view name;
  Kind kind;
};

constexpr KeySpec kKeys[] = {
    {"data", Kind::kString},
    {"listen", Kind::kString},
    {"threads", Kind::kInteger},
    {"database", Kind::kString},
    {"public_url", Kind::kString},
    {"max_body", Kind::kInteger},
    {"max_upload", Kind::kInteger},
    {"max_uploads", Kind::kInteger},
    {"tls_cert", Kind::kString},
    {"tls_key", Kind::kString},
    {"access_log", Kind::kBool},
    {"cache_ttl_ms", Kind::kInteger},
    {"vault", Kind::kString},
    {"vault_passphrase_file", Kind::kString},
    {"timestamp_expiry", Kind::kInteger},
    {"snapshot_expiry", Kind::kInteger},
    {"gc_interval", Kind::kInteger},
    {"gc_grace", Kind::kInteger},
    {"monitor_interval", Kind::kInteger},
    {"stats_interval", Kind::kInteger},
    {"alert_webhook_url", Kind::kString},
    {"alert_webhook_secret_file", Kind::kString},
};

const KeySpec* FindKey(std::string_view name) {
  for (const KeySpec& spec : kKeys) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kString:
      return "a string";
    case Kind::kInteger:
      return "an integer";
    case Kind::kBool:
      return "a boolean";
  }
  return "?";
}

using Value = std::variant<std::string, int64_t, bool>;

Error Bad(std::string_view key, std::string_view why) {
  return Error(ErrorCode::kInvalidArgument, std::string(key) + ": " + std::string(why));
}

Result<int64_t> InRange(std::string_view key, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    return tl::unexpected(Bad(key, "must be between " + std::to_string(min) + " and " +
                                       std::to_string(max) + ", got " + std::to_string(value)));
  }
  return value;
}

// Assigns an already-typed value; range checks per key.
Result<void> Assign(ServerConfig* config, const KeySpec& spec, const Value& value) {
  const std::string_view key = spec.name;
  if (spec.kind == Kind::kString) {
    const std::string& text = std::get<std::string>(value);
    if (text.find('\0') != std::string::npos) return tl::unexpected(Bad(key, "contains NUL"));
    if (key == "data") {
      if (text.empty()) return tl::unexpected(Bad(key, "must not be empty"));
      config->data = text;
    } else if (key == "listen") {
      std::string host;
      uint16_t port = 0;
      if (!ParseListen(text, &host, &port)) {
        return tl::unexpected(Bad(key, "wants HOST:PORT, got \"" + text + "\""));
      }
      config->listen = text;
    } else if (key == "database") {
      config->database = text;
    } else if (key == "public_url") {
      std::string url = text;
      while (!url.empty() && url.back() == '/') url.pop_back();
      if (!url.empty() && url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
        return tl::unexpected(Bad(key, "must start with http:// or https://"));
      }
      config->public_url = url;
    } else if (key == "tls_cert") {
      config->tls_cert = text;
    } else if (key == "tls_key") {
      config->tls_key = text;
    } else if (key == "vault") {
      if (!text.empty()) {
        auto uri = keys::ParseKeyUri(text);
        if (!uri) return tl::unexpected(Bad(key, uri.error().message()));
      }
      config->vault = text;
    } else if (key == "vault_passphrase_file") {
      config->vault_passphrase_file = text;
    } else if (key == "alert_webhook_url") {
      if (!text.empty() && text.rfind("http://", 0) != 0 && text.rfind("https://", 0) != 0) {
        return tl::unexpected(Bad(key, "must start with http:// or https://"));
      }
      config->alert_webhook_url = text;
    } else if (key == "alert_webhook_secret_file") {
      config->alert_webhook_secret_file = text;
    }
    return {};
  }
  if (spec.kind == Kind::kBool) {
    config->access_log = std::get<bool>(value);
    return {};
  }
  const int64_t number = std::get<int64_t>(value);
  if (key == "threads") {
    AIRLOCK_ASSIGN_OR_RETURN(int64_t threads, InRange(key, number, 0, 1024));
    config->threads = static_cast<unsigned>(threads);
  } else if (key == "max_body") {
    AIRLOCK_ASSIGN_OR_RETURN(int64_t bytes, InRange(key, number, 1024, int64_t{1} << 30));
    config->max_body = static_cast<uint64_t>(bytes);
  } else if (key == "max_upload") {
    AIRLOCK_ASSIGN_OR_RETURN(int64_t bytes, InRange(key, number, 1, int64_t{1} << 40));
    config->max_upload = static_cast<uint64_t>(bytes);
  } else if (key == "max_uploads") {
    AIRLOCK_ASSIGN_OR_RETURN(int64_t count, InRange(key, number, 1, 1024));
    config->max_uploads = static_cast<uint32_t>(count);
  } else if (key == "cache_ttl_ms") {
    AIRLOCK_ASSIGN_OR_RETURN(config->cache_ttl_ms, InRange(key, number, 0, 3600 * 1000));
  } else if (key == "timestamp_expiry") {
    AIRLOCK_ASSIGN_OR_RETURN(config->timestamp_expiry, InRange(key, number, 60, kMaxExpiry));
  } else if (key == "gc_interval") {
    AIRLOCK_ASSIGN_OR_RETURN(config->gc_interval, InRange(key, number, 0, kMaxExpiry));
  } else if (key == "gc_grace") {
    AIRLOCK_ASSIGN_OR_RETURN(config->gc_grace, InRange(key, number, 60, kMaxExpiry));
  } else if (key == "monitor_interval") {
    AIRLOCK_ASSIGN_OR_RETURN(config->monitor_interval, InRange(key, number, 1, 3600));
  } else if (key == "stats_interval") {
    AIRLOCK_ASSIGN_OR_RETURN(config->stats_interval, InRange(key, number, 1, 3600));
  } else if (key == "snapshot_expiry") {
    AIRLOCK_ASSIGN_OR_RETURN(config->snapshot_expiry, InRange(key, number, 60, kMaxExpiry));
  }
  return {};
}

}  // namespace

bool ParseListen(std::string_view listen, std::string* host, uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view host_part = listen.substr(0, colon);
  if (host_part.size() >= 2 && host_part.front() == '[' && host_part.back() == ']') {
    host_part = host_part.substr(1, host_part.size() - 2);
  }
  std::string_view port_text = listen.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5) return false;
  unsigned long value = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned long>(c - '0');
  }
  if (value > 65535 || host_part.empty()) return false;
  *host = std::string(host_part);
  *port = static_cast<uint16_t>(value);
  return true;
}

const std::vector<std::string_view>& ConfigKeys() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> names;
    for (const KeySpec& spec : kKeys) names.push_back(spec.name);
    return names;
  }();
  return keys;
}

Result<void> SetConfigValue(ServerConfig* config, std::string_view key, std::string_view text) {
  const KeySpec* spec = FindKey(key);
  if (spec == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "unknown setting " + std::string(key));
  }
  switch (spec->kind) {
    case Kind::kString:
      return Assign(config, *spec, Value(std::string(text)));
    case Kind::kBool:
      if (text == "on" || text == "true" || text == "1") return Assign(config, *spec, Value(true));
      if (text == "off" || text == "false" || text == "0") {
        return Assign(config, *spec, Value(false));
      }
      return tl::unexpected(Bad(key, "wants on or off, got \"" + std::string(text) + "\""));
    case Kind::kInteger: {
      int64_t number = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
      if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
        return tl::unexpected(Bad(key, "wants an integer, got \"" + std::string(text) + "\""));
      }
      return Assign(config, *spec, Value(number));
    }
  }
  return {};
}

Result<ServerConfig> LoadConfig(const std::filesystem::path& path) {
  AIRLOCK_ASSIGN_OR_RETURN(toml::table table, ReadTomlFile(path));
  ServerConfig config;
  for (auto&& [key, node] : table) {
    const std::string name(key.str());
    const std::string where = path.string() + ":" + std::to_string(key.source().begin.line) + ": ";
    const KeySpec* spec = FindKey(name);
    if (spec == nullptr) {
      return MakeError(ErrorCode::kInvalidArgument, where + "unknown key \"" + name + "\"");
    }
    Value value;
    if (spec->kind == Kind::kString && node.is_string()) {
      value = std::string(*node.value<std::string_view>());
    } else if (spec->kind == Kind::kInteger && node.is_integer()) {
      value = node.as_integer()->get();
    } else if (spec->kind == Kind::kBool && node.is_boolean()) {
      value = node.as_boolean()->get();
    } else {
      return MakeError(ErrorCode::kInvalidArgument,
                       where + name + " must be " + std::string(KindName(spec->kind)));
    }
    if (auto ok = Assign(&config, *spec, value); !ok) {
      return MakeError(ErrorCode::kInvalidArgument, where + ok.error().message());
    }
  }
  return config;
}

Result<void> ValidateConfig(const ServerConfig& config) {
  if (config.data.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "data: the data folder is required (--data)");
  }
  std::string host;
  uint16_t port = 0;
  if (!ParseListen(config.listen, &host, &port)) {
    return MakeError(ErrorCode::kInvalidArgument, "listen: wants HOST:PORT, got " + config.listen);
  }
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "tls_cert and tls_key: give both (HTTPS) or neither (HTTP)");
  }
  if (config.alert_webhook_url.empty() != config.alert_webhook_secret_file.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "alert_webhook_url and alert_webhook_secret_file go together");
  }
  if (config.snapshot_expiry < config.timestamp_expiry) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "snapshot_expiry must not be shorter than timestamp_expiry");
  }
  return {};
}

}  // namespace airlock::server
