// airlockd's settings: defaults, the TOML config file (`airlockd --config FILE`) and flag
// overrides.
//
// The file is flat TOML, one key per setting (names as below, e.g. `listen = "0.0.0.0:8443"`,
// `threads = 4`, `access_log = false`). Unknown keys, tables, and values of the wrong type are
// errors that name the key and its line; the file is at most 1 MiB. Flags given on the command line
// override the file: main turns every given flag into SetConfigValue(key, text), then calls
// ValidateConfig.
//
// Error codes: kNotFound (no such file), kIo (unreadable), kLimitExceeded (file too large),
// kMalformed (not TOML; the message has the line), kInvalidArgument (unknown key, wrong type, value
// out of range; the message names the key, and the line for the file).
#ifndef AIRLOCK_SERVER_CONFIG_H_
#define AIRLOCK_SERVER_CONFIG_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace airlock::server {

struct ServerConfig {
  std::string data;                         // DATA folder (required)
  std::string listen = "127.0.0.1:8080";    // HOST:PORT ([v6]:PORT)
  unsigned threads = 0;                     // 0 = one per core; at most 1024
  std::string database;                     // sqlite:PATH | postgresql://...; "" = DATA/airlock.db
  std::string public_url;                   // "" = http(s)://LISTEN; no trailing '/'
  uint64_t max_body = uint64_t{1} << 20;    // JSON request bodies
  uint64_t max_upload = uint64_t{2} << 30;  // POST /api/v1/blobs
  uint32_t max_uploads = 4;                 // upload bodies received at once; beyond: 503 busy
  std::string tls_cert;                     // PEM; with tls_key: HTTPS
  std::string tls_key;
  bool access_log = true;
  int64_t cache_ttl_ms = 2000;          // channel cache entries (0 = no caching)
  std::string vault;                    // key store URI; "" = file:DATA/vault.db
  std::string vault_passphrase_file;    // "" = $AIRLOCKD_VAULT_PASSPHRASE or DATA/vault.pass
  int64_t timestamp_expiry = 86400;     // seconds a signed timestamp is valid
  int64_t snapshot_expiry = 7 * 86400;  // seconds a signed snapshot is valid
  int64_t gc_interval = 86400;          // seconds between blob collections (0 = only `airlockd gc`)
  int64_t gc_grace = 86400;             // an unreferenced blob is collected once this old (mtime)
  int64_t monitor_interval = 10;        // seconds between monitor ticks (docs/operations/alerts.md)
  int64_t stats_interval = 60;  // seconds between /metrics release statistics (statistics.md)
  std::string alert_webhook_url;        // "" = alerts only in the log and the admin API
  std::string alert_webhook_secret_file;  // the webhook's HMAC key (required with the URL)
};

// Every key the file and SetConfigValue accept, in declaration order.
const std::vector<std::string_view>& ConfigKeys();

// Reads `path` onto the defaults (keys absent from the file keep their defaults). Values are
// range-checked as in SetConfigValue; cross-field checks are ValidateConfig's.
[[nodiscard]] Result<ServerConfig> LoadConfig(const std::filesystem::path& path);

// Sets one key from its text form (a flag): numbers in decimal, booleans as on/off/true/false.
// kInvalidArgument for an unknown key or a bad value (the message names the key).
[[nodiscard]] Result<void> SetConfigValue(ServerConfig* config, std::string_view key,
                                          std::string_view value);

// Cross-field checks after merging: data set, listen parses, tls_cert and tls_key both or neither,
// public_url http(s)://, vault a key URI, snapshot_expiry >= timestamp_expiry. kInvalidArgument.
[[nodiscard]] Result<void> ValidateConfig(const ServerConfig& config);

// Splits "HOST:PORT" or "[V6]:PORT". False if malformed.
bool ParseListen(std::string_view listen, std::string* host, uint16_t* port);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_CONFIG_H_
