#include "cli/server_command_helpers.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "bundle/archive.h"
#include "bundle/bundle.h"
#include "bundle/capgo.h"
#include "cli/app_config.h"
#include "cli/app_trust.h"
#include "cli/commands.h"
#include "cli/http_client.h"
#include "cli/key_loading.h"
#include "common/file.h"
#include "common/json.h"
#include "common/semver.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "keys/key_store.h"
#include "keys/key_uri.h"
#include "metadata/metadata.h"
#include "metadata/release_rules.h"

namespace airlock::cli {
namespace {

namespace fs = std::filesystem;
using metadata::TargetFile;

constexpr size_t kMaxIdLength = 128;

}  // namespace

void AddServerOptions(CLI::App* c, ServerArgs& a, bool with_json) {
  c->add_option("--server", a.server, "airlockd base URL (default: $AIRLOCK_SERVER)")
      ->envname("AIRLOCK_SERVER");
  c->add_option("--token", a.token, "API token (default: $AIRLOCK_TOKEN)")
      ->envname("AIRLOCK_TOKEN");
  c->add_option("--cacert", a.cacert,
                "PEM file of the CA certificates to verify an https:// airlockd with (default: "
                "$CURL_CA_BUNDLE, then $SSL_CERT_FILE, then the system's)");
  if (with_json) c->add_flag("--json", a.json, "Print the result as JSON");
}

void AddTrustedRootOption(CLI::App* c, std::string& trusted_root) {
  c->add_option("--trusted-root", trusted_root,
                "Trusted root.json to start from (default: the one `app create` pinned)");
}

Result<HttpClient> Connect(const ServerArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, HttpClient::Create(a.server, a.token, a.cacert));
  if (a.token.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "--token (or $AIRLOCK_TOKEN) is required");
  }
  return client;
}

Result<void> ValidateId(std::string_view what, const std::string& id) {
  bool ok = !id.empty() && id.size() <= kMaxIdLength;
  for (char c : id) {
    ok = ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-');
  }
  if (!ok) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " '" + id +
                                                      "' must be 1 to 128 characters of "
                                                      "A-Z a-z 0-9 . _ -");
  }
  return {};
}

Result<void> ValidateVersion(std::string_view what, const std::string& version) {
  auto v = Semver::Parse(version);
  if (!v) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " '" + version +
                                                      "' is not a semver version (" +
                                                      v.error().message() + ")");
  }
  return {};
}

std::string Plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string FormatTime(int64_t t) {
  if (t <= 0) return "-";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string JsonString(const nlohmann::json& j, const char* field, std::string fallback) {
  if (j.is_object() && j.contains(field) && j[field].is_string())
    return j[field].get<std::string>();
  return fallback;
}

Result<std::string> EnsureVaultKey(KeySession& s, const std::string& name, crypto::KeyType type,
                                   keys::KeyPurpose purpose, bool* created) {
  *created = false;
  if (!keys::IsValidKeyName(name)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the default key name " + name +
                         " is not a valid key name (at most 64 characters); pass --root-key and "
                         "--targets-key URIs");
  }
  auto existing = s.store->Get(name);
  if (existing) {
    if (existing->purpose != purpose) {
      return MakeError(ErrorCode::kAlreadyExists,
                       "key " + s.uri.WithKey(name).ToString() + " exists with purpose " +
                           std::string(keys::KeyPurposeName(existing->purpose)) + ", not " +
                           std::string(keys::KeyPurposeName(purpose)));
    }
  } else if (existing.error().code() == ErrorCode::kNotFound) {
    AIRLOCK_TRY(s.manager->Create(s.ctx, name, type, purpose));
    *created = true;
  } else {
    return tl::unexpected(existing.error());
  }
  return CanonicalKeySpec(s.uri.WithKey(name).ToString());
}

Result<std::shared_ptr<KeySession>> OpenDefaultVault(const std::string& passphrase_file,
                                                     std::string* uri_out, bool* created) {
  bool is_default = false;
  AIRLOCK_ASSIGN_OR_RETURN(std::string uri, DefaultVaultUri(&is_default));
  *uri_out = uri;
  *created = false;
  KeyStoreArgs args;
  args.vault = uri;
  args.passphrase_file = passphrase_file;
  args.passphrase_flag = "--passphrase-file";
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyUri parsed, keys::ParseKeyUri(uri));
  bool create = false;
  if (parsed.scheme == keys::KeyUriScheme::kFile) {
    // OpenKeySession makes its missing folders (0700), and removes them if the create fails.
    std::error_code ec;
    create = !fs::exists(parsed.path, ec);
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::unique_ptr<KeySession> s, OpenKeySession(args, create));
  *created = create;
  return std::shared_ptr<KeySession>(std::move(s));
}

Result<SignerPtr> LoadTufSigner(KeyLoader& loader, const std::string& spec, const char* role) {
  auto signer = loader.LoadSigner(spec);
  if (!signer)
    return tl::unexpected(signer.error().WithContext(std::string(role) + " key " + spec));
  if ((*signer)->Public().type() == crypto::KeyType::kX25519) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(role) + " key " + spec + " is an x25519 key, which cannot sign");
  }
  return std::move(*signer);
}

Result<metadata::Key> OnlineKey(const nlohmann::json& online_keys, const std::string& role) {
  if (!online_keys.is_object() || !online_keys.contains(role) ||
      !online_keys.contains(role + "_keyid") || !online_keys[role + "_keyid"].is_string()) {
    return MakeError(ErrorCode::kMalformed, "the server's online_keys lack " + role);
  }
  AIRLOCK_ASSIGN_OR_RETURN(metadata::Key key, metadata::Key::FromJson(online_keys[role]));
  if (!key.usable()) {
    return MakeError(ErrorCode::kUnsupported,
                     "the server's " + role + " key is of an unsupported type");
  }
  const std::string keyid = online_keys[role + "_keyid"].get<std::string>();
  if (key.public_key->KeyId() != keyid) {
    return MakeError(ErrorCode::kMalformed, "the server's " + role + " key id " + keyid +
                                                " does not match its key (" +
                                                key.public_key->KeyId() + ")");
  }
  return key;
}

Result<TargetFile> TargetFor(const fs::path& file, nlohmann::json custom) {
  uint64_t size = 0;
  AIRLOCK_ASSIGN_OR_RETURN(Bytes digest, crypto::Sha256File(file, &size));
  TargetFile t;
  t.length = size;
  t.hashes["sha256"] = HexEncode(digest);
  t.custom = std::move(custom);
  return t;
}

Result<nlohmann::json> UploadBlob(HttpClient& client, const fs::path& file, const TargetFile& t,
                                  const std::string& label) {
  AIRLOCK_ASSIGN_OR_RETURN(
      HttpResponse r,
      client.Upload("/api/v1/blobs", file, {{"X-Airlock-Sha256", t.hashes.at("sha256")}}, label));
  if (r.status != 200 && r.status != 201) {
    return tl::unexpected(ServerError("POST", "/api/v1/blobs", r));
  }
  auto j = ParseJson(r.body, HttpClient::kMaxJsonBody);
  if (!j || !j->is_object()) {
    return MakeError(ErrorCode::kMalformed, "POST /api/v1/blobs: the answer is not a JSON object");
  }
  if (JsonString(*j, "sha256", "") != t.hashes.at("sha256")) {
    return MakeError(ErrorCode::kHashMismatch, "POST /api/v1/blobs: the server stored " +
                                                   JsonString(*j, "sha256") + ", not " +
                                                   t.hashes.at("sha256"));
  }
  return std::move(*j);
}

namespace {

std::string ChannelPlatforms(const nlohmann::json& c) {
  std::string platforms;
  for (const char* p : {"ios", "android", "electron"}) {
    if (c.value(p, true)) platforms += (platforms.empty() ? "" : ",") + std::string(p);
  }
  return platforms.empty() ? "none" : platforms;
}

const char* YesNo(const nlohmann::json& c, const char* field) {
  return c.value(field, false) ? "yes" : "no";
}

}  // namespace

void PrintChannel(const nlohmann::json& c) {
  std::cout << JsonString(c, "name") << ": current " << JsonString(c, "current_version")
            << (c.value("rolled_back", false) ? " (rolled back)" : "") << ", rollout "
            << c.value("rollout_percent", 0) << "%, paused " << YesNo(c, "paused") << ", default "
            << YesNo(c, "default") << ", self-assign " << YesNo(c, "allow_self_assign")
            << ", platforms " << ChannelPlatforms(c) << ", min native "
            << JsonString(c, "min_native_version");
  if (c.value("approval_required", false)) {
    std::cout << ", approval for publishes and rollouts above "
              << c.value("approval_rollout_above", 100) << "%";
  }
  std::cout << "\n";
}

const TableRow& ChannelTableHeader() {
  static const TableRow header = {"CHANNEL", "CURRENT",     "ROLLOUT",   "PAUSED",
                                  "DEFAULT", "SELF-ASSIGN", "PLATFORMS", "MIN NATIVE"};
  return header;
}

TableRow ChannelTableRow(const nlohmann::json& c) {
  return {
      JsonString(c, "name"),
      JsonString(c, "current_version") + (c.value("rolled_back", false) ? " (rolled back)" : ""),
      std::to_string(c.value("rollout_percent", 0)) + "%",
      YesNo(c, "paused"),
      YesNo(c, "default"),
      YesNo(c, "allow_self_assign"),
      ChannelPlatforms(c),
      JsonString(c, "min_native_version")};
}

}  // namespace airlock::cli
