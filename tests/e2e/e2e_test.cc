// End to end, on SQLite and on a real PostgreSQL: a release published with the `airlock` CLI is
// offered to a Capgo-style POST /updates and to POST /v1/check, downloads byte-exact, and opens:
//   Capgo: the downloaded zip decrypts with the plugin's algorithm (RSA verify-recover of the
//   session
//          key, AES-128-CBC, signed checksum) to exactly the published zip;
//   native: the blob verifies through the TUF client from the root `airlock app root` wrote, the
//          wrapped key unwraps with the device's X25519 key, and the bundle opens to exactly the
//          files of examples/sample-app.
// airlockd and airlock are the real binaries ($AIRLOCK_BIN_DIR), run as child processes.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bundle/archive.h"
#include "bundle/bundle.h"
#include "bundle/capgo.h"
#include "client/http_fetcher.h"
#include "client/updater.h"
#include "common/file.h"
#include "crypto/base64.h"
#include "crypto/device_request.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/wrap.h"
#include "e2e/airlockd_process.h"
#include "metadata/metadata.h"
#include "storage/pg_test_env.h"

namespace airlock {
namespace {

namespace fs = std::filesystem;

using e2e::Airlockd;
using e2e::BinDir;
using e2e::Http;
using e2e::HttpResult;
using e2e::Output;
using e2e::RunCommand;

// A device request signed with the device's Ed25519 key (docs/api/server-api.md, "Device
// authentication"), at the current time.
HttpResult DevicePost(const std::string& server, const std::string& path, const std::string& device,
                      const crypto::PrivateKey& signing_key, const std::string& body) {
  auto sig =
      crypto::SignDeviceRequest(signing_key, "POST", path, device, ::time(nullptr), AsBytes(body));
  if (!sig) return {};
  return Http("POST", server + path, body, "",
              {std::string(crypto::kDeviceIdHeader) + ": " + sig->device_id,
               std::string(crypto::kDeviceTimestampHeader) + ": " + sig->timestamp,
               std::string(crypto::kDeviceSignatureHeader) + ": " + sig->signature});
}

// A signed check; while the server answers key_pending (the device's key for this release is being
// wrapped on its key-service threads), asks again, a bounded number of times, as a device does
// after Retry-After.
HttpResult DeviceCheck(const std::string& server, const std::string& device,
                       const crypto::PrivateKey& signing_key, const std::string& body) {
  HttpResult r;
  for (int attempt = 0; attempt < 50; ++attempt) {
    r = DevicePost(server, "/v1/check", device, signing_key, body);
    if (r.status != 200 || nlohmann::json::parse(r.body).value("reason", "") != "key_pending")
      break;
    ::usleep(100 * 1000);
  }
  return r;
}

// path -> contents of every regular file under `dir`.
std::map<std::string, std::string> Tree(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) {
      files[fs::relative(e.path(), dir).string()] = ReadTextFile(e.path(), 64 << 20).value_or("?");
    }
  }
  return files;
}

std::string Sha256Hex(const std::string& data) { return HexEncode(crypto::Sha256(AsBytes(data))); }

class EndToEnd : public ::testing::TestWithParam<std::string> {};

TEST_P(EndToEnd, ReleasePublishedWithCliIsOfferedDownloadedVerifiedAndDecrypted) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  auto tmp = ScopedTempDir::Create({}, "airlock-e2e-");
  ASSERT_TRUE(tmp) << tmp.error().ToString();
  const fs::path w = tmp->path();
  const fs::path sample = fs::path(AIRLOCK_SOURCE_DIR) / "examples" / "sample-app";
  const std::string app = "com.example.e2e";

  std::string database;
  if (GetParam() == "postgres") {
    auto url = storage::testing::CreateTestDatabase();
    ASSERT_TRUE(url) << url.error().ToString();
    database = *url;
  }

  // airlockd init + serve.
  const fs::path data = w / "data";
  Output init = RunCommand({(BinDir() / "airlockd").string(), "--data", data.string(), "init"}, w);
  ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
  const std::string marker = "Owner API token (shown once, store it now): ";
  const size_t at = init.out.find(marker);
  ASSERT_NE(at, std::string::npos) << init.out;
  std::string token = init.out.substr(at + marker.size());
  token = token.substr(0, token.find('\n'));
  Airlockd server;
  ASSERT_TRUE(server.Start(data, database, w / "airlockd.log"));
  const std::string s = server.url();

  // The developer's side: an isolated config folder and vault (fast KDF for the test).
  const std::map<std::string, std::string> env = {{"XDG_CONFIG_HOME", (w / "config").string()},
                                                  {"AIRLOCK_VAULT_PASSPHRASE", "e2e passphrase"},
                                                  {"AIRLOCK_VAULT", ""},
                                                  {"AIRLOCK_ACTOR", "e2e"},
                                                  {"AIRLOCK_SERVER", s},
                                                  {"AIRLOCK_TOKEN", token}};
  const std::string cli = (BinDir() / "airlock").string();
  fs::create_directories(w / "config" / "airlock");
  Output o = RunCommand(
      {cli, "vault", "init", "--vault", "file:" + (w / "config/airlock/vault.db").string(),
       "--kdf-memory-kib", "256", "--kdf-passes", "1"},
      w, env);
  ASSERT_EQ(o.exit_code, 0) << o.err;

  o = RunCommand({cli, "app", "create", app, "--json"}, w, env);
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  const nlohmann::json created = nlohmann::json::parse(o.out);
  const std::string enrollment_token = created["enrollment_token"];
  const std::string capgo_pub_file = created["capgo_public_key"];
  ASSERT_EQ(enrollment_token.rfind("enr_", 0), 0u);

  o = RunCommand({cli, "channel", "create", app, "production", "--default"}, w, env);
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  o = RunCommand({cli, "release", "publish", app, "--version", "1.0.1", "--from", sample.string(),
                  "--channel", "production", "--encrypt", "device", "--capgo", "--json"},
                 w, env);
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  const nlohmann::json release = nlohmann::json::parse(o.out);
  ASSERT_EQ(release["version"], "1.0.1");
  ASSERT_TRUE(release["capgo"].is_object()) << release.dump();

  o = RunCommand({cli, "app", "root", app, "--out", (w / "root.json").string()}, w, env);
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;

  // The zip the CLI made (archives are deterministic under one TZ, and this test runs in one).
  ASSERT_TRUE(bundle::CreateArchive(sample, bundle::ArchiveFormat::kZip, w / "expected.zip"));
  const std::string expected_zip = ReadTextFile(w / "expected.zip", 64 << 20).value();

  // ---- Capgo: POST /updates as the plugin does. ----
  const nlohmann::json capgo_request = {{"app_id", app},
                                        {"device_id", "e2e-capgo-0001"},
                                        {"version_name", "1.0.0"},
                                        {"version_build", "1.0.0"},
                                        {"version_code", "1"},
                                        {"version_os", "14"},
                                        {"platform", "android"},
                                        {"plugin_version", "6.14.0"},
                                        {"is_emulator", false},
                                        {"is_prod", true},
                                        {"defaultChannel", "production"}};
  HttpResult updates = Http("POST", s + "/updates", capgo_request.dump());
  ASSERT_EQ(updates.status, 200) << updates.body;
  const nlohmann::json offer = nlohmann::json::parse(updates.body);
  ASSERT_EQ(offer.value("version", ""), "1.0.1") << offer.dump();
  const std::string capgo_url = offer["url"];
  HttpResult capgo_blob = Http("GET", capgo_url);
  ASSERT_EQ(capgo_blob.status, 200);
  EXPECT_EQ(Sha256Hex(capgo_blob.body), release["capgo"]["sha256"]);
  HttpResult capgo_by_sha =
      Http("GET", s + "/v1/blobs/" + release["capgo"]["sha256"].get<std::string>());
  EXPECT_EQ(capgo_blob.body, capgo_by_sha.body);
  ASSERT_TRUE(WriteFileAtomic(w / "capgo.enc", AsBytes(capgo_blob.body)));
  auto capgo_pub = crypto::PublicKey::FromFile(capgo_pub_file);
  ASSERT_TRUE(capgo_pub) << capgo_pub.error().ToString();
  auto decrypted = bundle::capgo::DecryptFile(
      w / "capgo.enc", *capgo_pub, offer["session_key"].get<std::string>(),
      offer["checksum"].get<std::string>(), w / "capgo.zip");
  ASSERT_TRUE(decrypted) << decrypted.error().ToString();
  EXPECT_EQ(ReadTextFile(w / "capgo.zip", 64 << 20).value(), expected_zip);

  // ---- Native: enroll, check, download, verify with TUF, unwrap, open. ----
  auto device_key = crypto::PrivateKey::Generate(crypto::KeyType::kX25519);
  ASSERT_TRUE(device_key);
  const std::string device_pub = HexEncode(device_key->Public().RawPublic().value());
  auto signing_key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  ASSERT_TRUE(signing_key);
  const std::string device = "e2e-device-0001";
  HttpResult enroll = DevicePost(
      s, "/v1/enroll", device, *signing_key,
      nlohmann::json{{"app_id", app},
                     {"device_id", device},
                     {"public_key", device_pub},
                     {"signing_key", HexEncode(signing_key->Public().RawPublic().value())},
                     {"platform", "android"},
                     {"enrollment_token", enrollment_token}}
          .dump());
  ASSERT_EQ(enroll.status, 201) << enroll.body;
  // Without the device's signature: 401.
  const std::string unsigned_check = nlohmann::json{
      {"app_id", app},
      {"device_id", device},
      {"version", "1.0.0"},
      {"native_version", "1.0.0"},
      {"platform", "android"}}.dump();
  EXPECT_EQ(Http("POST", s + "/v1/check", unsigned_check).status, 401);
  HttpResult check = DeviceCheck(s, device, *signing_key,
                                 nlohmann::json{{"app_id", app},
                                                {"device_id", "e2e-device-0001"},
                                                {"version", "1.0.0"},
                                                {"native_version", "1.0.0"},
                                                {"platform", "android"}}
                                     .dump());
  ASSERT_EQ(check.status, 200) << check.body;
  const nlohmann::json update = nlohmann::json::parse(check.body);
  ASSERT_EQ(update.value("update", false), true) << update.dump();
  EXPECT_EQ(update["version"], "1.0.1");
  EXPECT_EQ(update["encryption"], "device");
  EXPECT_EQ(update["rollback"], false);
  const std::string target_name = update["target"]["name"];
  EXPECT_EQ(target_name, "releases/1.0.1/bundle.alb");
  EXPECT_EQ(update["target"]["sha256"], release["sha256"]);
  EXPECT_EQ(update["url"], s + "/v1/blobs/" + release["sha256"].get<std::string>());
  HttpResult blob = Http("GET", update["url"].get<std::string>());
  ASSERT_EQ(blob.status, 200);
  EXPECT_EQ(Sha256Hex(blob.body), release["sha256"]);
  EXPECT_EQ(blob.body.size(), update["target"]["length"].get<uint64_t>());

  // TUF: the client from the root `airlock app root` wrote, against tuf_url.
  const std::string root_bytes = ReadTextFile(w / "root.json", 1 << 20).value();
  ASSERT_TRUE(client::InitMetadataDir(w / "tuf", AsBytes(root_bytes)));
  client::HttpFetcher fetcher;
  client::UpdaterOptions options;
  options.metadata_dir = w / "tuf";
  options.metadata_base_url = update["tuf_url"].get<std::string>();
  options.fetcher = &fetcher;
  auto updater = client::Updater::Create(options);
  ASSERT_TRUE(updater) << updater.error().ToString();
  ASSERT_TRUE(updater->Refresh()) << "TUF refresh failed";
  auto info = updater->GetTargetInfo(target_name);
  ASSERT_TRUE(info) << info.error().ToString();
  ASSERT_TRUE(info->Verify(AsBytes(blob.body))) << "the blob does not match the signed targets";
  ASSERT_TRUE(info->custom.has_value());
  EXPECT_EQ((*info->custom)["app_id"], app);
  EXPECT_EQ((*info->custom)["version"], "1.0.1");
  EXPECT_EQ((*info->custom)["encryption"]["mode"], "device");

  // The bundle is signed by the app's targets key (the default --sign-key).
  auto root = metadata::ParseRoot(root_bytes);
  ASSERT_TRUE(root);
  const std::string targets_keyid = root->signed_data.roles.at("targets").keyids.at(0);
  const crypto::PublicKey targets_key = *root->signed_data.keys.at(targets_keyid).public_key;

  auto wrapped = crypto::Base64Decode(update["wrapped_key"].get<std::string>());
  ASSERT_TRUE(wrapped);
  auto content_key = crypto::UnwrapKey(*device_key, *wrapped, bundle::ContentKeyAad(app, "1.0.1"));
  ASSERT_TRUE(content_key) << content_key.error().ToString();
  ASSERT_TRUE(WriteFileAtomic(w / "bundle.alb", AsBytes(blob.body)));
  auto opened =
      bundle::OpenBundleWithContentKey(w / "bundle.alb", targets_key, *content_key, w / "opened");
  ASSERT_TRUE(opened) << opened.error().ToString();
  EXPECT_EQ(Tree(w / "opened"), Tree(sample));

  // Another device's key cannot use this device's wrapped key.
  auto other = crypto::PrivateKey::Generate(crypto::KeyType::kX25519);
  ASSERT_TRUE(other);
  auto refused = crypto::UnwrapKey(*other, *wrapped, bundle::ContentKeyAad(app, "1.0.1"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kDecryptFailed);

  // A newer release, then a rollback to 1.0.1: a device on 1.0.2 is offered 1.0.1 as a rollback.
  o = RunCommand({cli, "release", "publish", app, "--version", "1.0.2", "--from", sample.string(),
                  "--channel", "production"},
                 w, env);
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  o = RunCommand(
      {cli, "release", "rollback", app, "--channel", "production", "--to", "1.0.1", "--json"}, w,
      env);
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  EXPECT_EQ(nlohmann::json::parse(o.out)["current_version"], "1.0.1");
  HttpResult back = DeviceCheck(s, device, *signing_key,
                                nlohmann::json{{"app_id", app},
                                               {"device_id", "e2e-device-0001"},
                                               {"version", "1.0.2"},
                                               {"native_version", "1.0.0"},
                                               {"platform", "android"}}
                                    .dump());
  ASSERT_EQ(back.status, 200) << back.body;
  const nlohmann::json rollback = nlohmann::json::parse(back.body);
  EXPECT_EQ(rollback.value("update", false), true) << rollback.dump();
  EXPECT_EQ(rollback["version"], "1.0.1");
  EXPECT_EQ(rollback["rollback"], true);
  EXPECT_EQ(rollback["target"]["sha256"], release["sha256"]);

  // The device shows in `airlock device list`.
  o = RunCommand({cli, "device", "list", app, "--json"}, w, env);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const nlohmann::json devices = nlohmann::json::parse(o.out);
  ASSERT_EQ(devices["devices"].size(), 1u) << devices.dump();
  EXPECT_EQ(devices["devices"][0]["device_id"], "e2e-device-0001");
}

// DATA/airlockd.lock (server/data_dir.h): airlockd on one PostgreSQL database may share a data
// folder (shared lock); one on the SQLite store may not join them, nor they it.
TEST(DataFolderLock, PostgresProcessesShareDataButASqliteOneIsRefused) {
  auto tmp = ScopedTempDir::Create({}, "e2e-lock-");
  ASSERT_TRUE(tmp) << tmp.error().ToString();
  const fs::path w = tmp->path();
  auto url = storage::testing::CreateTestDatabase();
  ASSERT_TRUE(url) << url.error().ToString();
  const fs::path data = w / "data";
  const std::string airlockd = (BinDir() / "airlockd").string();
  Output init = RunCommand({airlockd, "--data", data.string(), "init"}, w);
  ASSERT_EQ(init.exit_code, 0) << init.out << init.err;

  Airlockd first, second;
  ASSERT_TRUE(first.Start(data, *url, w / "first.log"));
  ASSERT_TRUE(second.Start(data, *url, w / "second.log"));
  EXPECT_EQ(Http("GET", first.url() + "/healthz").status, 200);
  EXPECT_EQ(Http("GET", second.url() + "/healthz").status, 200);

  Output sqlite = RunCommand({airlockd, "--data", data.string(), "--listen", "127.0.0.1:0"}, w);
  EXPECT_EQ(sqlite.exit_code, 1) << sqlite.out << sqlite.err;
  EXPECT_EQ(sqlite.err, "airlockd: the data directory " + data.string() +
                            " is in use by another airlockd (it holds " +
                            (data / "airlockd.lock").string() +
                            "); the SQLite store is for one process: stop the other airlockd, or "
                            "give this one another --data\n");
  first.Stop();
  second.Stop();

  // The other way round: a SQLite airlockd holds DATA; one on PostgreSQL is refused.
  Airlockd only;
  ASSERT_TRUE(only.Start(data, "", w / "sqlite.log"));
  Output postgres = RunCommand(
      {airlockd, "--data", data.string(), "--listen", "127.0.0.1:0", "--database", *url}, w);
  EXPECT_EQ(postgres.exit_code, 1) << postgres.out << postgres.err;
  EXPECT_NE(postgres.err.find("it uses the SQLite store, which is for one process"),
            std::string::npos)
      << postgres.err;
}

INSTANTIATE_TEST_SUITE_P(Stores, EndToEnd, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace airlock
