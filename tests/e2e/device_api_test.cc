// The device's network layer (src/client: DeviceIdentity, DeviceApiClient, DownloadFile,
// ReportQueue) against the real airlockd, started as a child process on 127.0.0.1 (SQLite store),
// with an app, a channel and a device-mode release made by the real `airlock` CLI:
//   enroll (201, then idempotent 200), a signed check answering key_pending with Retry-After and
//   then the release, whose wrapped key the device's X25519 key unwraps and whose blob downloads
//   (resumed with a Range on the real server), matches the signed TUF target and opens; reports
//   queued on disk, surviving a reopen, delivered in order, deleted once acknowledged; and the
//   server's refusals surfaced with their status and error code.
#include <sqlite3.h>
#include <time.h>

#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "client/device_api_client.h"
#include "client/device_identity.h"
#include "client/download.h"
#include "client/http_fetcher.h"
#include "client/report_queue.h"
#include "client/updater.h"
#include "common/file.h"
#include "crypto/wrap.h"
#include "e2e/airlockd_process.h"
#include "metadata/metadata.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;
using e2e::BinDir;
using e2e::Output;
using e2e::RunCommand;

constexpr const char* kApp = "com.example.device-api";

// One airlockd (and one published release) for the whole suite: starting a server and a vault
// costs seconds, and every test uses its own device identity.
class DeviceApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tmp = ScopedTempDir::Create({}, "airlock-device-api-");
    ASSERT_TRUE(tmp) << tmp.error().ToString();
    tmp_ = new ScopedTempDir(std::move(*tmp));
    const fs::path w = tmp_->path();
    const fs::path data = w / "data";
    Output init =
        RunCommand({(BinDir() / "airlockd").string(), "--data", data.string(), "init"}, w);
    ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
    const std::string marker = "Owner API token (shown once, store it now): ";
    const size_t at = init.out.find(marker);
    ASSERT_NE(at, std::string::npos) << init.out;
    admin_token_ = init.out.substr(at + marker.size());
    admin_token_ = admin_token_.substr(0, admin_token_.find('\n'));
    server_ = new e2e::Airlockd();
    ASSERT_TRUE(server_->Start(data, "", w / "airlockd.log"));

    env_ = {{"XDG_CONFIG_HOME", (w / "config").string()},
            {"AIRLOCK_VAULT_PASSPHRASE", "device api passphrase"},
            {"AIRLOCK_VAULT", ""},
            {"AIRLOCK_ACTOR", "device-api-test"},
            {"AIRLOCK_SERVER", server_->url()},
            {"AIRLOCK_TOKEN", admin_token_}};
    const std::string cli = (BinDir() / "airlock").string();
    fs::create_directories(w / "config" / "airlock");
    Output o = RunCommand(
        {cli, "vault", "init", "--vault", "file:" + (w / "config/airlock/vault.db").string(),
         "--kdf-memory-kib", "256", "--kdf-passes", "1"},
        w, env_);
    ASSERT_EQ(o.exit_code, 0) << o.err;
    o = RunCommand({cli, "app", "create", kApp, "--json"}, w, env_);
    ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
    enrollment_token_ = nlohmann::json::parse(o.out)["enrollment_token"];
    o = RunCommand({cli, "channel", "create", kApp, "production", "--default"}, w, env_);
    ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
    const fs::path sample = fs::path(AIRLOCK_SOURCE_DIR) / "examples" / "sample-app";
    o = RunCommand({cli, "release", "publish", kApp, "--version", "1.0.1", "--from",
                    sample.string(), "--channel", "production", "--encrypt", "device", "--json"},
                   w, env_);
    ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
    release_sha256_ = nlohmann::json::parse(o.out)["sha256"];
    o = RunCommand({cli, "app", "root", kApp, "--out", (w / "root.json").string()}, w, env_);
    ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  }

  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete tmp_;
    tmp_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_FALSE(enrollment_token_.empty()) << "suite setup failed";
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = tmp_->path() / name;
    fs::create_directories(dir_);
  }

  DeviceApiOptions Options() const { return DeviceApiOptions{server_->url(), kApp}; }

  // The app's events for `device` as the admin API lists them, by seq.
  static std::map<uint64_t, std::string> ServerEvents(const std::string& device) {
    e2e::HttpResult r =
        e2e::Http("GET", server_->url() + "/api/v1/apps/" + kApp + "/devices/" + device + "/events",
                  "", admin_token_);
    EXPECT_EQ(r.status, 200) << r.body;
    std::map<uint64_t, std::string> out;
    if (r.status != 200) return out;
    const nlohmann::json listed = nlohmann::json::parse(r.body);
    for (const auto& e : listed["events"]) {
      out[e["seq"].get<uint64_t>()] =
          e["kind"].get<std::string>() + "/" + e["reason_code"].get<std::string>();
    }
    return out;
  }

  static inline ScopedTempDir* tmp_ = nullptr;
  static inline e2e::Airlockd* server_ = nullptr;
  static inline std::map<std::string, std::string> env_;
  static inline std::string admin_token_;
  static inline std::string enrollment_token_;
  static inline std::string release_sha256_;
  fs::path dir_;
};

TEST_F(DeviceApi, EnrollsChecksUnwrapsDownloadsWithResumeAndVerifiesWithTuf) {
  auto identity = LoadOrCreateDeviceIdentity(dir_ / "identity");
  ASSERT_TRUE(identity) << identity.error().ToString();
  auto client = DeviceApiClient::Create(*identity, Options());
  ASSERT_TRUE(client) << client.error().ToString();

  auto enrolled = client->Enroll(enrollment_token_, "android");
  ASSERT_TRUE(enrolled) << enrolled.error().ToString();
  EXPECT_TRUE(enrolled->created);
  EXPECT_EQ(enrolled->status, EnrollStatus::kActive);
  auto again = client->Enroll(enrollment_token_, "android");  // idempotent: 200, same status
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->status, EnrollStatus::kActive);

  const CheckRequest request{"1.0.0", "1.0.0", "android", ""};
  // A new device's first check of a device-mode release: its key is not wrapped yet.
  auto first = client->Check(request);
  ASSERT_TRUE(first) << first.error().ToString();
  ASSERT_TRUE(first->key_pending()) << first->reason;
  EXPECT_EQ(first->retry_after_seconds, 2);
  // Then as the agent does: wait Retry-After and ask again (bounded).
  Result<CheckResult> check = first;
  for (int i = 0; i < 20 && check && check->key_pending(); ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(check->retry_after_seconds));
    check = client->Check(request);
  }
  ASSERT_TRUE(check) << check.error().ToString();
  ASSERT_TRUE(check->update) << check->reason;
  EXPECT_EQ(check->version, "1.0.1");
  EXPECT_FALSE(check->rollback);
  EXPECT_EQ(check->encryption, "device");
  EXPECT_EQ(check->target.name, "releases/1.0.1/bundle.alb");
  EXPECT_EQ(check->target.sha256, release_sha256_);
  EXPECT_EQ(check->url, server_->url() + "/v1/blobs/" + release_sha256_);

  // The server's claims, verified: TUF names the same length and hash.
  const std::string root_bytes = ReadTextFile(tmp_->path() / "root.json", 1 << 20).value();
  ASSERT_TRUE(InitMetadataDir(dir_ / "tuf", AsBytes(root_bytes)));
  HttpFetcher fetcher;
  UpdaterOptions tuf;
  tuf.metadata_dir = dir_ / "tuf";
  tuf.metadata_base_url = check->tuf_url;
  tuf.fetcher = &fetcher;
  auto updater = Updater::Create(tuf);
  ASSERT_TRUE(updater) << updater.error().ToString();
  ASSERT_TRUE(updater->Refresh());
  auto info = updater->GetTargetInfo(check->target.name);
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->length, check->target.length);

  // Download with the signed length and hash, resumed on the real server: the first half is
  // already in the part (as after a lost connection), the rest comes with a Range.
  const fs::path bundle = dir_ / "bundle.alb";
  auto whole = e2e::Http("GET", check->url);
  ASSERT_EQ(whole.status, 200);
  ASSERT_EQ(whole.body.size(), info->length);
  const size_t half = whole.body.size() / 2;
  ASSERT_TRUE(WriteFileAtomic(PartPath(bundle), AsBytes(whole.body.substr(0, half)), 0600));
  std::vector<uint64_t> done;
  DownloadOptions download;
  download.progress = [&](uint64_t d, uint64_t) { done.push_back(d); };
  auto got = DownloadFile(check->url, bundle, info->length, info->hashes.at("sha256"), download);
  ASSERT_TRUE(got) << got.error().ToString();
  ASSERT_FALSE(done.empty());
  EXPECT_EQ(done.front(), half);
  EXPECT_EQ(ReadTextFile(bundle, 64 << 20).value(), whole.body);

  // The wrapped key opens with this device's X25519 key, and the bundle opens with it.
  auto content_key = crypto::UnwrapKey(identity->wrap_key, check->wrapped_key,
                                       bundle::ContentKeyAad(kApp, "1.0.1"));
  ASSERT_TRUE(content_key) << content_key.error().ToString();
  auto root = metadata::ParseRoot(root_bytes);
  ASSERT_TRUE(root);
  const std::string targets_keyid = root->signed_data.roles.at("targets").keyids.at(0);
  auto opened = bundle::OpenBundleWithContentKey(
      bundle, *root->signed_data.keys.at(targets_keyid).public_key, *content_key, dir_ / "opened");
  ASSERT_TRUE(opened) << opened.error().ToString();
  EXPECT_TRUE(fs::exists(dir_ / "opened"));
}

TEST_F(DeviceApi, UnderTheApprovePolicyADeviceIsPendingUntilApproved) {
  const std::string app = "com.example.approve";
  const std::string cli = (BinDir() / "airlock").string();
  Output o = RunCommand({cli, "app", "create", app, "--json"}, dir_, env_);
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  const std::string token = nlohmann::json::parse(o.out)["enrollment_token"];
  o = RunCommand({cli, "device", "policy", app, "approve"}, dir_, env_);
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;

  auto identity = LoadOrCreateDeviceIdentity(dir_ / "identity");
  ASSERT_TRUE(identity);
  auto client = DeviceApiClient::Create(*identity, DeviceApiOptions{server_->url(), app});
  ASSERT_TRUE(client);
  auto enrolled = client->Enroll(token, "android");
  ASSERT_TRUE(enrolled) << enrolled.error().ToString();
  EXPECT_TRUE(enrolled->created);
  EXPECT_EQ(enrolled->status, EnrollStatus::kPending);
  auto check = client->Check({"1.0.0", "1.0.0", "android", ""});
  ASSERT_FALSE(check);
  EXPECT_EQ(check.error().code(), ErrorCode::kKeyUnusable);
  EXPECT_EQ(client->last_error()->http_status, 403);
  EXPECT_EQ(client->last_error()->error_code, "device_pending");

  o = RunCommand({cli, "device", "approve", app, identity->device_id}, dir_, env_);
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  auto again = client->Enroll(token, "android");
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->status, EnrollStatus::kActive);
  auto served = client->Check({"1.0.0", "1.0.0", "android", ""});
  ASSERT_TRUE(served) << served.error().ToString();
  EXPECT_FALSE(served->update);
}

TEST_F(DeviceApi, AWrongEnrollmentTokenIsRefusedWithTheServersStatusAndCode) {
  auto identity = LoadOrCreateDeviceIdentity(dir_ / "identity");
  ASSERT_TRUE(identity);
  auto client = DeviceApiClient::Create(*identity, Options());
  ASSERT_TRUE(client);
  auto refused = client->Enroll("enr_wrong", "android");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kKeyUnusable);
  EXPECT_NE(refused.error().message().find("POST /v1/enroll: HTTP 401 unauthorized"),
            std::string::npos)
      << refused.error().message();
  ASSERT_TRUE(client->last_error().has_value());
  EXPECT_EQ(client->last_error()->http_status, 401);
  EXPECT_EQ(client->last_error()->error_code, "unauthorized");
  // Nothing was enrolled: a check is refused as from an unknown device.
  auto check = client->Check({"1.0.0", "1.0.0", "android", ""});
  ASSERT_FALSE(check);
  EXPECT_EQ(check.error().code(), ErrorCode::kKeyUnusable);
  EXPECT_EQ(client->last_error()->http_status, 403);
  EXPECT_EQ(client->last_error()->error_code, "device_not_enrolled");
}

TEST_F(DeviceApi, ASignatureFromASkewedClockIsRefusedAsClockSkew) {
  auto identity = LoadOrCreateDeviceIdentity(dir_ / "identity");
  ASSERT_TRUE(identity);
  auto good = DeviceApiClient::Create(*identity, Options());
  ASSERT_TRUE(good);
  ASSERT_TRUE(good->Enroll(enrollment_token_, "android"));
  DeviceApiOptions skewed = Options();
  skewed.clock = [] { return static_cast<int64_t>(::time(nullptr)) - 3600; };
  auto client = DeviceApiClient::Create(*identity, skewed);
  ASSERT_TRUE(client);
  auto check = client->Check({"1.0.0", "1.0.0", "android", ""});
  ASSERT_FALSE(check);
  EXPECT_EQ(check.error().code(), ErrorCode::kKeyUnusable);
  EXPECT_EQ(client->last_error()->http_status, 401);
  EXPECT_EQ(client->last_error()->error_code, "clock_skew");
}

TEST_F(DeviceApi, AnotherDevicesKeyCannotSignForThisDevice) {
  auto identity = LoadOrCreateDeviceIdentity(dir_ / "identity");
  ASSERT_TRUE(identity);
  auto client = DeviceApiClient::Create(*identity, Options());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Enroll(enrollment_token_, "android"));
  // An impostor with this device's id but its own signing key.
  auto other = LoadOrCreateDeviceIdentity(dir_ / "other");
  ASSERT_TRUE(other);
  DeviceIdentity impostor{identity->device_id, std::move(other->wrap_key),
                          std::move(other->signing_key)};
  auto forged = DeviceApiClient::Create(impostor, Options());
  ASSERT_TRUE(forged);
  auto report = forged->Report({ReportEvent{1, "1.0.0", "failed", "crash_loop", "", 1}});
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code(), ErrorCode::kKeyUnusable);
  EXPECT_EQ(forged->last_error()->http_status, 401);
  EXPECT_EQ(forged->last_error()->error_code, "unauthorized");
  EXPECT_TRUE(ServerEvents(identity->device_id).empty());  // nothing stored
}

TEST_F(DeviceApi, QueuedReportsSurviveARestartAndAreDeliveredInOrder) {
  auto identity = LoadOrCreateDeviceIdentity(dir_ / "identity");
  ASSERT_TRUE(identity);
  const fs::path db = dir_ / "reports.db";
  {
    // Offline: nothing listens on 127.0.0.1:1, so the events stay queued.
    auto offline = DeviceApiClient::Create(*identity, {"http://127.0.0.1:1", kApp});
    ASSERT_TRUE(offline);
    auto queue = ReportQueue::Open(db, ReportQueueOptions{100, 2});
    ASSERT_TRUE(queue);
    ASSERT_EQ(queue->Enqueue({"1.0.1", "offered", "", "", 1700000001}).value(), 1u);
    ASSERT_EQ(queue->Enqueue({"1.0.1", "downloaded", "", "", 1700000002}).value(), 2u);
    ASSERT_EQ(queue->Enqueue({"1.0.1", "failed", "hash_mismatch", "bytes", 1700000003}).value(),
              3u);
    auto flushed = queue->Flush(*offline);
    ASSERT_FALSE(flushed);
    EXPECT_EQ(flushed.error().code(), ErrorCode::kIo);
  }  // the process "restarts"
  auto client = DeviceApiClient::Create(*identity, Options());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Enroll(enrollment_token_, "android"));
  auto queue = ReportQueue::Open(db, ReportQueueOptions{100, 2});
  ASSERT_TRUE(queue);
  EXPECT_EQ(queue->PendingCount().value(), 3u);
  ASSERT_EQ(queue->Enqueue({"1.0.0", "rolled_back", "health_timeout", "", 1700000004}).value(), 4u);
  auto flushed = queue->Flush(*client);  // two batches of two
  ASSERT_TRUE(flushed) << flushed.error().ToString();
  EXPECT_EQ(*flushed, 4u);
  EXPECT_EQ(queue->PendingCount().value(), 0u);
  const std::map<uint64_t, std::string> expected = {{1, "offered/"},
                                                    {2, "downloaded/"},
                                                    {3, "failed/hash_mismatch"},
                                                    {4, "rolled_back/health_timeout"}};
  EXPECT_EQ(ServerEvents(identity->device_id), expected);

  // The counter goes on after the deletion: a new event never reuses an acknowledged seq (the
  // server would drop it as a duplicate).
  ASSERT_EQ(queue->Enqueue({"1.0.0", "confirmed", "", "", 1700000005}).value(), 5u);
  ASSERT_TRUE(queue->Flush(*client));
  EXPECT_EQ(ServerEvents(identity->device_id).at(5), "confirmed/");
  // A batch sent again (a crash between the answer and the delete) stores nothing twice.
  auto resent = client->Report({ReportEvent{5, "1.0.0", "confirmed", "", "", 1700000005}});
  ASSERT_TRUE(resent) << resent.error().ToString();
  EXPECT_EQ(*resent, 0u);
  EXPECT_EQ(ServerEvents(identity->device_id).size(), 5u);
}

TEST_F(DeviceApi, AnEventTheServerRefusesIsDroppedAndCountedWithoutBlockingTheRest) {
  auto identity = LoadOrCreateDeviceIdentity(dir_ / "identity");
  ASSERT_TRUE(identity);
  auto client = DeviceApiClient::Create(*identity, Options());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Enroll(enrollment_token_, "android"));
  const fs::path db = dir_ / "reports.db";
  {
    auto queue = ReportQueue::Open(db, ReportQueueOptions{100, 10});
    ASSERT_TRUE(queue);
    ASSERT_TRUE(queue->Enqueue({"1.0.1", "offered", "", "", 1700000001}));
    ASSERT_TRUE(queue->Enqueue({"1.0.1", "downloaded", "", "", 1700000002}));
    ASSERT_TRUE(queue->Enqueue({"1.0.1", "verified", "", "", 1700000003}));
  }
  // An event this server refuses (400: not semver), as a queue written by another agent version
  // could hold: put straight into the file, as seq 2.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "UPDATE events SET version = 'not-a-version' WHERE seq = 2", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);

  auto queue = ReportQueue::Open(db, ReportQueueOptions{100, 10});
  ASSERT_TRUE(queue);
  auto flushed = queue->Flush(*client);
  ASSERT_TRUE(flushed) << flushed.error().ToString();
  EXPECT_EQ(*flushed, 2u);
  EXPECT_EQ(queue->PendingCount().value(), 0u);
  EXPECT_EQ(queue->RejectedCount().value(), 1u);
  const std::map<uint64_t, std::string> expected = {{1, "offered/"}, {3, "verified/"}};
  EXPECT_EQ(ServerEvents(identity->device_id), expected);
}

}  // namespace
}  // namespace airlock::client
