// The monitor inside the server: real admin API, real device reports, the server's own vault and
// store. Each level's action is checked on the real state (key states in the vault, channels in
// the store), and after the critical action a device still gets an update once the operator has
// signed a root naming the new keys.
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "crypto/base64.h"
#include "keys/file_vault.h"
#include "keys/signer.h"
#include "metadata/metadata.h"
#include "monitor/monitor.h"
#include "server/corroboration.h"
#include "server/monitor_actions.h"

#include "server/server_api_test_fixture.h"

namespace airlock::server {
namespace {

using namespace testing_fixture;  // NOLINT(google-build-using-namespace): the shared fixture

class MonitorApiTest : public ServerApiTest {
 protected:
  void CustomizeDeps(ServerApiDeps* deps) override {
    deps->enroll_per_address = {1000, 1000};
    auto store = monitor::MonitorStore::Open("sqlite:" + (data_ / "airlock.db").string());
    ASSERT_TRUE(store) << store.error().ToString();
    responder_ = std::make_unique<ServerResponder>(store_.get(), repo_.get(), cache_.get());
    monitor::MonitorOptions options;
    options.clock = [this] { return now_; };
    options.usage_log = audit::AuditPathForVault(vault_);
    options.audit = [this](const audit::UsageRecord& r) -> Result<void> {
      AIRLOCK_ASSIGN_OR_RETURN(auto log, audit::AuditLog::Open(audit::AuditPathForVault(vault_)));
      AIRLOCK_TRY(log.Append(r));
      return {};
    };
    options.responder = responder_.get();
    options.corroboration =
        ServerCorroboration({repo_.get(), data_, audit::AuditPathForVault(vault_)});
    monitor_ = std::make_unique<monitor::Monitor>(std::move(*store), options);
    deps->monitor = monitor_.get();
  }

  void Tick() {
    auto report = monitor_->Tick();
    ASSERT_TRUE(report) << report.error().ToString();
  }

  std::map<std::string, keys::KeyInfo> Keys() {
    std::map<std::string, keys::KeyInfo> out;
    auto listed = repo_->WithKeyManager(
        [&](keys::KeyManager& m, const keys::OperationContext& ctx) -> Result<std::string> {
          AIRLOCK_ASSIGN_OR_RETURN(auto all, m.List(ctx));
          for (auto& k : all) out[k.name] = k;
          return std::string();
        });
    EXPECT_TRUE(listed) << listed.error().ToString();
    return out;
  }

  std::vector<audit::UsageRecord> UsageLog(const std::string& operation) {
    auto log = audit::AuditLog::Open(audit::AuditPathForVault(vault_));
    EXPECT_TRUE(log);
    audit::AuditFilter f;
    f.operation = operation;
    auto records = log->Query(f);
    EXPECT_TRUE(records);
    return records ? *records : std::vector<audit::UsageRecord>{};
  }

  Reply Report(const std::string& device, int seq, const std::string& version,
               const std::string& kind, const std::string& reason = "",
               const std::string& detail = "") {
    Json event = {{"seq", seq}, {"version", version}, {"kind", kind}, {"occurred_at", now_}};
    if (!reason.empty()) event["reason_code"] = reason;
    if (!detail.empty()) event["detail"] = detail;
    Json body = {{"app_id", kApp}, {"device_id", device}, {"events", Json::array({event})}};
    return DeviceCall("/v1/report", body.dump(), device);
  }

  std::string Key(const std::string& role) { return std::string(kApp) + "." + role; }

  // The blob DATA/blobs holds for the signed target of `version`.
  fs::path ReleaseBlob(const std::string& version) {
    auto targets = repo_->CurrentTargets(kApp);
    EXPECT_TRUE(targets) << targets.error().ToString();
    for (const TrustedTarget& t : targets ? *targets : std::vector<TrustedTarget>{}) {
      if (t.custom.value("version", "") == version) return api_internal::BlobPath(data_, t.sha256);
    }
    ADD_FAILURE() << "no target of " << version;
    return {};
  }

  // `md` signed with the vault's key `key_name` by one who stole the vault file and its
  // passphrase: straight from the key store, so nothing is written to the usage log.
  template <typename T>
  std::string SignedByThief(metadata::Metadata<T> md, const std::string& key_name,
                            const std::string& keyid) {
    auto thief = keys::OpenFileVault(vault_, VaultOptions(), /*create=*/false);
    EXPECT_TRUE(thief) << thief.error().ToString();
    auto canonical = md.CanonicalSigned();
    EXPECT_TRUE(canonical);
    if (!thief || !canonical) return {};
    auto sig = (*thief)->Sign(key_name, AsBytes(*canonical));
    EXPECT_TRUE(sig) << sig.error().ToString();
    if (!sig) return {};
    md.signatures.push_back({keyid, HexEncode(*sig)});
    return md.ToBytes().value_or("");
  }

  // The served timestamp's signed part at `version`, unsigned.
  metadata::Metadata<metadata::Timestamp> TimestampAt(uint64_t version) {
    auto served = metadata::ParseTimestamp(TufFiles()["timestamp.json"]);
    EXPECT_TRUE(served);
    metadata::Metadata<metadata::Timestamp> md(served ? served->signed_data
                                                      : metadata::Timestamp{});
    md.signed_data.version = version;
    md.Rebuild();
    return md;
  }

  // The served timestamp at `version`, signed by the thief with the app's timestamp key.
  std::string StolenKeyTimestamp(uint64_t version) {
    auto online = repo_->GetOnlineKeys(kApp);
    EXPECT_TRUE(online);
    return SignedByThief(TimestampAt(version), Key("timestamp"), online->timestamp_keyid);
  }

  // A timestamp of `version` signed through the server's own key manager (so in its usage log)
  // but never written: what a crash between signing and writing leaves a device able to hold.
  std::string LoggedTimestamp(uint64_t version) {
    metadata::Metadata<metadata::Timestamp> md = TimestampAt(version);
    auto bytes = repo_->WithKeyManager(
        [&](keys::KeyManager& m, const keys::OperationContext& ctx) -> Result<std::string> {
          AIRLOCK_ASSIGN_OR_RETURN(auto signer,
                                   keys::KeyStoreSigner::Create(m, ctx, Key("timestamp")));
          AIRLOCK_TRY(md.Sign(*signer));
          return md.ToBytes();
        });
    EXPECT_TRUE(bytes) << bytes.error().ToString();
    return bytes.value_or("");
  }

  static std::string Evidence(const std::string& document) {
    return "role=timestamp version=1 sha256=00 metadata=" +
           crypto::Base64Encode(ByteSpan(reinterpret_cast<const uint8_t*>(document.data()),
                                         document.size()));
  }

  // An enrolled device reports that it holds `document`, then the monitor ticks.
  void WitnessShows(const std::string& document) {
    ASSERT_EQ(Enroll("witness", NewKey(crypto::KeyType::kX25519)).status, 201);
    Reply r =
        Report("witness", 1, "1.0.0", "failed", "unknown_signed_metadata", Evidence(document));
    ASSERT_EQ(r.status, 200) << r.raw;
    ASSERT_NO_FATAL_FAILURE(Tick());
  }

  std::vector<std::string> KeyIds() {
    std::vector<std::string> out;
    for (const auto& [name, info] : Keys()) out.push_back(name + "=" + info.key_id);
    return out;
  }

  std::unique_ptr<ServerResponder> responder_;
  std::unique_ptr<monitor::Monitor> monitor_;
};

TEST_F(MonitorApiTest, RepeatedFailedOperationsOnAKeySuspendItInTheVault) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  // Someone with the vault's log at hand tries the timestamp key with wrong second factors.
  auto log = audit::AuditLog::Open(audit::AuditPathForVault(vault_));
  ASSERT_TRUE(log);
  for (int i = 0; i < 5; ++i) {
    audit::UsageRecord r;
    r.time = now_ + i;
    r.actor = "mallory";
    r.key_name = Key("timestamp");
    r.operation = "sign";
    r.purpose = "timestamp";
    r.result = audit::UsageResult::kDenied;
    r.result_reason = "bad TOTP code";
    r.source = "203.0.113.9";
    ASSERT_TRUE(log->Append(r));
  }
  EXPECT_EQ(Keys()[Key("timestamp")].state, keys::KeyState::kActive);
  ASSERT_NO_FATAL_FAILURE(Tick());
  EXPECT_EQ(Keys()[Key("timestamp")].state, keys::KeyState::kSuspended);
  EXPECT_EQ(Keys()[Key("snapshot")].state, keys::KeyState::kActive);
  auto suspends = UsageLog("suspend");
  ASSERT_EQ(suspends.size(), 1u);
  EXPECT_EQ(suspends[0].actor, "airlockd");
  EXPECT_EQ(suspends[0].reason, "alert 1 key_failures");

  Reply list = Admin("GET", "/api/v1/alerts");
  ASSERT_EQ(list.status, 200) << list.raw;
  ASSERT_EQ(list.body["alerts"].size(), 1u);
  EXPECT_EQ(list.body["alerts"][0]["rule"], "key_failures");
  EXPECT_EQ(list.body["alerts"][0]["action_state"], "done");
  EXPECT_EQ(list.body["alerts"][0]["action_result"], "suspended key " + Key("timestamp"));
  // A read-only token may not read alerts (auditors, admins and owners may).
  EXPECT_EQ(Call("GET", "/api/v1/alerts", "", reader_token_).status, 403);
}

TEST_F(MonitorApiTest, DeclaredCompromiseRotatesTheKeyAndRevokesTheOld) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  const std::string old_id = Keys()[Key("timestamp")].key_id;
  const std::string path = "/api/v1/keys/" + Key("timestamp") + "/compromise";
  // Refused: a read-only token (403), no reason (400); neither changes a key.
  Reply reader = Call("POST", path, Json{{"reason", "x"}}.dump(), reader_token_);
  EXPECT_EQ(reader.status, 403);
  Reply no_reason = Admin("POST", path, Json::object());
  EXPECT_EQ(no_reason.status, 400);
  EXPECT_EQ(no_reason.error(), "bad_request");
  ASSERT_NO_FATAL_FAILURE(Tick());
  EXPECT_EQ(Keys()[Key("timestamp")].key_id, old_id);
  EXPECT_EQ(Keys().count(Key("timestamp") + "@1"), 0u);

  Reply declared = Admin("POST", path, {{"reason", "CI runner image leaked"}});
  ASSERT_EQ(declared.status, 202) << declared.raw;
  ASSERT_NO_FATAL_FAILURE(Tick());
  auto keys = Keys();
  EXPECT_NE(keys[Key("timestamp")].key_id, old_id);
  EXPECT_EQ(keys[Key("timestamp")].state, keys::KeyState::kActive);
  ASSERT_EQ(keys.count(Key("timestamp") + "@1"), 1u);
  EXPECT_EQ(keys[Key("timestamp") + "@1"].key_id, old_id);
  EXPECT_EQ(keys[Key("timestamp") + "@1"].state, keys::KeyState::kRevoked);
  Reply alert = Admin("GET", "/api/v1/alerts/1");
  ASSERT_EQ(alert.status, 200);
  EXPECT_EQ(alert.body["rule"], "compromise_declared");
  EXPECT_EQ(alert.body["level"], "high");
  EXPECT_EQ(alert.body["action_state"], "done");
  // Ack and resolve, each once.
  EXPECT_EQ(Admin("POST", "/api/v1/alerts/1/ack", {{"note", "on it"}}).status, 200);
  Reply twice = Admin("POST", "/api/v1/alerts/1/ack");
  EXPECT_EQ(twice.status, 409);
  EXPECT_EQ(twice.error(), "conflict");
  EXPECT_EQ(Admin("POST", "/api/v1/alerts/1/resolve").body["status"], "resolved");
  EXPECT_EQ(Admin("POST", "/api/v1/alerts/99/resolve").status, 404);
  EXPECT_EQ(Admin("GET", "/api/v1/alerts/x").status, 400);
}

// The attack: anyone holding the app has its enrollment token, so enrolled devices are not
// trusted witnesses. False reports of tampering, of failed signatures and of foreign metadata,
// from as many devices as the rules count, move no key and halt no channel.
TEST_F(MonitorApiTest, FalseReportsFromEnrolledDevicesMoveNoKeyAndHaltNothing) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  const auto before = KeyIds();
  // Documents that prove nothing: not base64, not metadata, the server's own served timestamp,
  // a timestamp "v999" signed by some other key, a snapshot the server did write.
  auto other = NewKey(crypto::KeyType::kEd25519);
  auto served = metadata::ParseTimestamp(TufFiles()["timestamp.json"]);
  ASSERT_TRUE(served);
  metadata::Metadata<metadata::Timestamp> by_other(served->signed_data);
  by_other.signed_data.version = 999;
  by_other.Rebuild();
  ASSERT_TRUE(by_other.Sign(other));
  // The server's own files re-formatted or padded: other bytes, the same signed part.
  Json compact = Json::parse(TufFiles()["timestamp.json"]);
  Json padded = Json::parse(TufFiles()["1.snapshot.json"]);
  padded["pad"] = std::string(200, ' ');
  const std::vector<std::string> claims = {
      "role=timestamp version=999 sha256=00",
      "role=timestamp version=999 sha256=00 metadata=%%%not-base64",
      Evidence("{\"signed\": 1}"),
      Evidence(TufFiles()["timestamp.json"]),
      Evidence(*by_other.ToBytes()),
      Evidence(TufFiles()["1.snapshot.json"]),
      Evidence(compact.dump()),
      Evidence(padded.dump()),
      Evidence(LoggedTimestamp(999)),
  };
  const auto before_keys = KeyIds();  // LoggedTimestamp signed, and changed nothing
  ASSERT_EQ(before_keys, before);
  for (int i = 0; i < 18; ++i) {
    std::string d = "liar" + std::to_string(i);
    ASSERT_EQ(Enroll(d, NewKey(crypto::KeyType::kX25519)).status, 201);
    ASSERT_EQ(Report(d, 1, "1.0.0", "failed", "hash_mismatch").status, 200);
    ASSERT_EQ(Report(d, 2, "1.0.0", "failed", "signature_invalid").status, 200);
    ASSERT_EQ(Report(d, 3, "9.9.9", "failed", "hash_mismatch").status, 200);
    Reply r = Report(d, 4, "1.0.0", "failed", "unknown_signed_metadata",
                     claims[static_cast<size_t>(i) % claims.size()]);
    ASSERT_EQ(r.status, 200) << r.raw;
  }
  ASSERT_NO_FATAL_FAILURE(Tick());
  EXPECT_EQ(KeyIds(), before) << "a device's word moved a key";
  for (const auto& [name, info] : Keys()) EXPECT_EQ(info.state, keys::KeyState::kActive) << name;
  auto channel = store_->GetChannel(kApp, "production");
  ASSERT_TRUE(channel);
  EXPECT_FALSE(channel->paused);
  // What is left are investigation items saying why nothing was done.
  Reply list = Admin("GET", "/api/v1/alerts?status=open");
  ASSERT_EQ(list.status, 200);
  std::map<std::string, std::string> by_rule;
  for (const Json& a : list.body["alerts"]) {
    EXPECT_EQ(a["level"], "low") << a.dump();
    EXPECT_EQ(a["action"], "none") << a.dump();
    EXPECT_EQ(a["subject"], std::string(kApp) + " unverified") << a.dump();
    by_rule[a["rule"]] = a["summary"];
  }
  ASSERT_EQ(by_rule.size(), 2u) << list.raw;
  // PublishFirstRelease signs two targets of 1.0.0 (the bundle and its Capgo zip): both compared.
  EXPECT_NE(by_rule["tampered_content"].find(
                "; no action: the server's copy of 1.0.0 matches its signed length and SHA-256 "
                "(2 targets), so the bytes changed between the server and the devices, or the "
                "reports are false"),
            std::string::npos)
      << by_rule["tampered_content"];
  EXPECT_NE(by_rule["mass_verification_failures"].find("matches its signed length"),
            std::string::npos);
}

// A timestamp signed by the server's own key that the server never wrote is proof that the key
// signs for someone else: then, and only then, the key is rotated and revoked.
TEST_F(MonitorApiTest, ATimestampSignedByTheServersKeyThatItNeverWroteRotatesThatKey) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  const auto before = Keys();
  const std::string forged = StolenKeyTimestamp(999);
  ASSERT_FALSE(forged.empty());
  ASSERT_NO_FATAL_FAILURE(WitnessShows(forged));
  auto after = Keys();
  EXPECT_NE(after[Key("timestamp")].key_id, before.at(Key("timestamp")).key_id);
  EXPECT_EQ(after[Key("timestamp") + "@1"].state, keys::KeyState::kRevoked);
  EXPECT_EQ(after[Key("snapshot")].key_id, before.at(Key("snapshot")).key_id);
  Reply list = Admin("GET", "/api/v1/alerts?status=open");
  ASSERT_EQ(list.body["alerts"].size(), 1u) << list.raw;
  EXPECT_EQ(list.body["alerts"][0]["rule"], "foreign_signature");
  EXPECT_EQ(list.body["alerts"][0]["subject"], Key("timestamp"));
  EXPECT_EQ(list.body["alerts"][0]["action_state"], "done");
  // The same document again, now that the key it was signed with is revoked: nothing more.
  ASSERT_EQ(Report("witness", 2, "1.0.0", "failed", "unknown_signed_metadata", Evidence(forged))
                .status,
            200);
  now_ += 7200;
  ASSERT_NO_FATAL_FAILURE(Tick());
  EXPECT_EQ(Keys()[Key("timestamp")].key_id, after[Key("timestamp")].key_id);
}

TEST_F(MonitorApiTest, ASnapshotSignedByTheServersKeyThatItNeverWroteRotatesThatKey) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  const auto before = Keys();
  auto served = metadata::ParseSnapshot(TufFiles()["1.snapshot.json"]);
  ASSERT_TRUE(served);
  metadata::Metadata<metadata::Snapshot> forged(served->signed_data);
  forged.signed_data.version = 77;
  forged.Rebuild();
  auto online = repo_->GetOnlineKeys(kApp);
  ASSERT_TRUE(online);
  const std::string doc = SignedByThief(forged, Key("snapshot"), online->snapshot_keyid);
  ASSERT_FALSE(doc.empty());
  ASSERT_NO_FATAL_FAILURE(WitnessShows(doc));
  auto after = Keys();
  EXPECT_NE(after[Key("snapshot")].key_id, before.at(Key("snapshot")).key_id);
  EXPECT_EQ(after[Key("snapshot") + "@1"].state, keys::KeyState::kRevoked);
  EXPECT_EQ(after[Key("timestamp")].key_id, before.at(Key("timestamp")).key_id);
}

// Devices that fail the served metadata's signatures, when the server's own served metadata fails
// them too (timestamp.json re-signed on its disk by a key the root does not name): acted on.
TEST_F(MonitorApiTest, SignatureFailuresTheServedMetadataConfirmsReplaceEveryKey) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  const auto before = Keys();
  // Ten reports while the served metadata verifies: an investigation item, nothing moved.
  for (int i = 0; i < 10; ++i) {
    std::string d = "dev" + std::to_string(i);
    ASSERT_EQ(Enroll(d, NewKey(crypto::KeyType::kX25519)).status, 201);
    ASSERT_EQ(Report(d, 1, "1.0.0", "failed", "signature_invalid").status, 200);
  }
  ASSERT_NO_FATAL_FAILURE(Tick());
  EXPECT_EQ(Keys()[Key("timestamp")].key_id, before.at(Key("timestamp")).key_id);
  // Then timestamp.json is re-signed on the server's disk by a key the root does not name, and
  // the next report is checked against the changed file, not the answer kept for the old one.
  auto served = metadata::ParseTimestamp(TufFiles()["timestamp.json"]);
  ASSERT_TRUE(served);
  metadata::Metadata<metadata::Timestamp> swapped(served->signed_data);
  swapped.Rebuild();
  ASSERT_TRUE(swapped.Sign(NewKey(crypto::KeyType::kEd25519)));
  ASSERT_TRUE(
      WriteFileAtomic(data_ / "tuf" / kApp / "timestamp.json", AsBytes(*swapped.ToBytes())));
  ASSERT_EQ(Enroll("dev10", NewKey(crypto::KeyType::kX25519)).status, 201);
  ASSERT_EQ(Report("dev10", 1, "1.0.0", "failed", "signature_invalid").status, 200);
  ASSERT_NO_FATAL_FAILURE(Tick());
  auto after = Keys();
  EXPECT_NE(after[Key("timestamp")].key_id, before.at(Key("timestamp")).key_id);
  Reply list = Admin("GET", "/api/v1/alerts?status=open");
  ASSERT_EQ(list.body["alerts"].size(), 2u) << list.raw;
  std::map<std::string, Json> by_subject;
  for (const Json& a : list.body["alerts"]) by_subject[a["subject"]] = a;
  EXPECT_EQ(by_subject[std::string(kApp) + " unverified"]["level"], "low");
  const Json& acted = by_subject[kApp];
  EXPECT_EQ(acted["rule"], "mass_verification_failures");
  EXPECT_EQ(acted["level"], "critical");
  EXPECT_EQ(acted["action_state"], "done");
  EXPECT_NE(acted["summary"].get<std::string>().find(
                "the served metadata does not verify: timestamp.json: "),
            std::string::npos)
      << list.raw;
}

TEST_F(MonitorApiTest, TamperedContentReplacesEveryKeyHaltsRolloutsAndDevicesUpdateAfterwards) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  const auto before = Keys();
  auto device_key = NewKey(crypto::KeyType::kX25519);
  ASSERT_EQ(Enroll("survivor", device_key).status, 201);
  ASSERT_EQ(Check("survivor", "0.9.0").body["update"], true);
  // Three false reports first: the server's copy is intact, so an investigation item only (and
  // the answer is kept for that blob as it is now).
  for (const char* d : {"l1", "l2", "l3"}) {
    ASSERT_EQ(Enroll(d, NewKey(crypto::KeyType::kX25519)).status, 201);
    ASSERT_EQ(Report(d, 1, "1.0.0", "failed", "hash_mismatch").status, 200);
  }
  ASSERT_NO_FATAL_FAILURE(Tick());
  EXPECT_EQ(Keys()[Key("timestamp")].key_id, before.at(Key("timestamp")).key_id);
  // Then 1.0.0's bytes are changed on the server's disk, and devices report that it verified
  // against signed metadata but its content did not: the server's own copy confirms it at once.
  const fs::path blob = ReleaseBlob("1.0.0");
  {
    std::error_code ec;
    fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add, ec);
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f);
    f.seekg(100);
    char c = 0;
    ASSERT_TRUE(f.get(c));
    f.seekp(100);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  for (const char* d : {"d1", "d2", "d3"}) {
    ASSERT_EQ(Enroll(d, NewKey(crypto::KeyType::kX25519)).status, 201);
    Reply r = Report(d, 1, "1.0.0", "failed", "hash_mismatch");
    ASSERT_EQ(r.status, 200) << r.raw;
  }
  ASSERT_NO_FATAL_FAILURE(Tick());
  auto after = Keys();
  for (const char* role : {"snapshot", "timestamp", "content"}) {
    SCOPED_TRACE(role);
    EXPECT_NE(after[Key(role)].key_id, before.at(Key(role)).key_id);
    EXPECT_EQ(after[Key(role)].state, keys::KeyState::kActive);
    EXPECT_EQ(after[Key(role) + "@1"].state, keys::KeyState::kRevoked);
  }
  auto channel = store_->GetChannel(kApp, "production");
  ASSERT_TRUE(channel);
  EXPECT_TRUE(channel->paused);
  Reply halted = Check("survivor", "0.9.0");
  EXPECT_EQ(halted.body["update"], false);
  EXPECT_EQ(halted.body["reason"], "paused");

  // The operator signs root v2 naming the new online keys, publishes a fixed 1.0.1 sealed to the
  // new content key, and resumes.
  Reply app = Admin("GET", std::string("/api/v1/apps/") + kApp);
  ASSERT_EQ(app.status, 200) << app.raw;
  metadata::Root root;
  root.version = 2;
  root.expires = now_ + 365 * kDay;
  root.consistent_snapshot = true;
  ASSERT_TRUE(root.AddKey("root", root_key_.Public()));
  ASSERT_TRUE(root.AddKey("targets", targets_key_.Public()));
  auto snap = metadata::Key::FromJson(app.body["online_keys"]["snapshot"]);
  auto ts = metadata::Key::FromJson(app.body["online_keys"]["timestamp"]);
  ASSERT_TRUE(snap && ts);
  EXPECT_EQ(snap->public_key->KeyId(), after[Key("snapshot")].key_id);
  ASSERT_TRUE(root.AddKey("snapshot", *snap->public_key));
  ASSERT_TRUE(root.AddKey("timestamp", *ts->public_key));
  auto root_md = metadata::SignMetadata(root, {&root_key_});
  ASSERT_TRUE(root_md);
  Reply put =
      Call("PUT", std::string("/api/v1/apps/") + kApp + "/root", *root_md->ToBytes(), owner_token_);
  ASSERT_EQ(put.status, 200) << put.raw;
  content_key_pem_ = app.body["content_key"];
  metadata::Targets t = targets_v1_;
  t.version = 2;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t, "1.0.1"));
  Reply pub = Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                    PublishBody("1.0.1", SignTargets(t, targets_key_)));
  ASSERT_EQ(pub.status, 201) << pub.raw;
  ASSERT_EQ(
      Admin("POST", std::string("/api/v1/apps/") + kApp + "/channels/production/resume").status,
      200);
  Reply check = Check("survivor", "0.9.0");
  ASSERT_EQ(check.status, 200) << check.raw;
  EXPECT_EQ(check.body["update"], true) << check.raw;
  EXPECT_EQ(check.body["version"], "1.0.1");
  // The device's key was wrapped with the new content key, and the served timestamp and snapshot
  // verify under root v2, as the device's TUF client checks them.
  auto wrapped = crypto::Base64Decode(check.body["wrapped_key"].get<std::string>());
  ASSERT_TRUE(wrapped);
  EXPECT_TRUE(crypto::UnwrapKey(device_key, *wrapped, bundle::ContentKeyAad(kApp, "1.0.1")));
  auto files = TufFiles();
  auto root2 = metadata::ParseRoot(files["2.root.json"]);
  auto timestamp = metadata::ParseTimestamp(files["timestamp.json"]);
  ASSERT_TRUE(root2 && timestamp);
  EXPECT_TRUE(root2->signed_data.VerifyDelegate("timestamp", *timestamp));
  auto old_root = metadata::ParseRoot(files["1.root.json"]);
  ASSERT_TRUE(old_root);
  EXPECT_FALSE(old_root->signed_data.VerifyDelegate("timestamp", *timestamp))
      << "the replaced key signs nothing any more";

  // After the rotation the server verifies its metadata along the root chain (1 -> 2): false
  // reports on the fixed release move nothing again.
  now_ += 7200;
  for (const char* d : {"l4", "l5", "l6"}) {
    ASSERT_EQ(Enroll(d, NewKey(crypto::KeyType::kX25519)).status, 201);
    ASSERT_EQ(Report(d, 1, "1.0.1", "failed", "hash_mismatch").status, 200);
  }
  ASSERT_NO_FATAL_FAILURE(Tick());
  auto later = Keys();
  for (const char* role : {"snapshot", "timestamp", "content"}) {
    EXPECT_EQ(later[Key(role)].key_id, after[Key(role)].key_id) << role;
  }
  Reply alerts = Admin("GET", "/api/v1/alerts?status=open");
  ASSERT_EQ(alerts.status, 200);
  const Json& newest = alerts.body["alerts"][0];
  EXPECT_EQ(newest["subject"], std::string(kApp) + " unverified") << alerts.raw;
  EXPECT_NE(newest["summary"].get<std::string>().find("the server's copy of 1.0.1 matches"),
            std::string::npos)
      << alerts.raw;
}

TEST_F(MonitorApiTest, AFailureRateAboveNormalPausesTheRelease) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  for (int i = 0; i < 24; ++i) {
    std::string d = "dev" + std::to_string(i);
    ASSERT_EQ(Enroll(d, NewKey(crypto::KeyType::kX25519)).status, 201);
    bool fails = i % 4 == 0;  // 6 of 24
    Reply r =
        Report(d, 1, "1.0.0", fails ? "rolled_back" : "confirmed", fails ? "health_timeout" : "");
    ASSERT_EQ(r.status, 200) << r.raw;
  }
  ASSERT_NO_FATAL_FAILURE(Tick());
  auto channel = store_->GetChannel(kApp, "production");
  ASSERT_TRUE(channel);
  EXPECT_TRUE(channel->paused);
  Reply list = Admin("GET", "/api/v1/alerts?status=open");
  ASSERT_EQ(list.body["alerts"].size(), 1u);
  EXPECT_EQ(list.body["alerts"][0]["rule"], "release_failure_rate");
  EXPECT_EQ(list.body["alerts"][0]["action_result"], "paused channels [production] offering 1.0.0");
}

TEST_F(MonitorApiTest, RefusedAdminRequestsAreWatchedAndRulesCanBeTuned) {
  Reply rules = Admin("GET", "/api/v1/alert-rules");
  ASSERT_EQ(rules.status, 200);
  ASSERT_EQ(rules.body["rules"].size(), monitor::AllRules().size());
  // Only owners and admins may change a rule: a read-only token is refused.
  EXPECT_EQ(
      Call("PUT", "/api/v1/alert-rules/admin_auth_failures", R"({"threshold": 3})", reader_token_)
          .status,
      403);
  Reply bad = Admin("PUT", "/api/v1/alert-rules/admin_auth_failures", {{"threshold", -1}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Admin("PUT", "/api/v1/alert-rules/nope", {{"threshold", 3}}).status, 404);
  Reply set = Admin("PUT", "/api/v1/alert-rules/admin_auth_failures", {{"threshold", 3}});
  ASSERT_EQ(set.status, 200) << set.raw;
  EXPECT_EQ(set.body["settings"]["threshold"], 3);
  // Three requests with a made-up token (401; and the reader's 403 above counts too).
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Call("GET", "/api/v1/apps", "", "alk_" + std::string(64, 'a')).status, 401);
  }
  ASSERT_NO_FATAL_FAILURE(Tick());
  Reply list = Admin("GET", "/api/v1/alerts");
  ASSERT_EQ(list.body["alerts"].size(), 1u) << list.raw;
  EXPECT_EQ(list.body["alerts"][0]["rule"], "admin_auth_failures");
  EXPECT_EQ(list.body["alerts"][0]["subject"], "127.0.0.1");
  EXPECT_EQ(list.body["alerts"][0]["investigation"], true);
}

TEST_F(MonitorApiTest, IrregularDeploymentsOpenInvestigationsAndAStagedRolloutDoesNot) {
  ASSERT_EQ(Admin("PUT", "/api/v1/alert-rules/deploy_burst", {{"threshold", 3}}).status, 200);
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  const std::string channel = std::string("/api/v1/apps/") + kApp + "/channels/production";
  // A staged rollout: 50 % then 100 % raises nothing.
  ASSERT_EQ(Admin("PUT", channel + "/rollout", {{"percent", 50}}).status, 200);
  now_ += 600;
  ASSERT_EQ(Admin("PUT", channel + "/rollout", {{"percent", 100}}).status, 200);
  ASSERT_NO_FATAL_FAILURE(Tick());
  Reply quiet = Admin("GET", "/api/v1/alerts");
  ASSERT_EQ(quiet.status, 200);
  EXPECT_TRUE(quiet.body["alerts"].empty()) << quiet.raw;

  // Down to 10 % and straight back to 100 % within the hour.
  ASSERT_EQ(Admin("PUT", channel + "/rollout", {{"percent", 10}}).status, 200);
  now_ += 60;
  ASSERT_EQ(Admin("PUT", channel + "/rollout", {{"percent", 100}}).status, 200);
  // Three publishes within the hour.
  metadata::Targets t2, t3;
  ASSERT_NO_FATAL_FAILURE(PublishNext(targets_v1_, 2, "1.1.0", &t2));
  ASSERT_NO_FATAL_FAILURE(PublishNext(t2, 3, "1.2.0", &t3));
  // Someone who never deployed this app pauses and resumes it.
  auto bob = access_->CreateToken("bob", {access::Role::kReleaseManager});
  ASSERT_TRUE(bob);
  ASSERT_EQ(Call("POST", channel + "/pause", "", bob->token).status, 200);
  ASSERT_NO_FATAL_FAILURE(Tick());

  Reply list = Admin("GET", "/api/v1/alerts");
  ASSERT_EQ(list.status, 200);
  std::map<std::string, Json> by_rule;
  for (const Json& a : list.body["alerts"]) {
    EXPECT_EQ(by_rule.count(a["rule"]), 0u) << "raised twice: " << a.dump();
    by_rule[a["rule"]] = a;
  }
  ASSERT_EQ(by_rule.size(), 3u) << list.raw;
  EXPECT_EQ(by_rule["rollout_jump"]["summary"],
            std::string("the rollout of ") + kApp +
                " channel production went from 10 % to 100 % within 86400 s (by owner)");
  EXPECT_EQ(by_rule["deploy_burst"]["subject"], kApp);
  EXPECT_EQ(by_rule["deploy_new_actor"]["subject"], std::string(kApp) + "|bob");
  for (const auto& [rule, a] : by_rule) {
    EXPECT_EQ(a["level"], "low") << rule;
    EXPECT_EQ(a["investigation"], true) << rule;
    EXPECT_EQ(a["action"], "none") << rule;
  }
}

TEST_F(MonitorApiTest, ScheduledReportsAreServedAndAnAuditorSignsTheWeeklyReviewOffOnce) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());  // key use for the reports to count
  now_ += 8 * kDay;  // a whole week since: every period's report is due
  ASSERT_NO_FATAL_FAILURE(Tick());
  Reply weekly = Admin("GET", "/api/v1/reports?period=weekly");
  ASSERT_EQ(weekly.status, 200) << weekly.raw;
  ASSERT_EQ(weekly.body["reports"].size(), 1u) << weekly.raw;
  const int64_t id = weekly.body["reports"][0]["id"];
  EXPECT_TRUE(weekly.body["reports"][0]["signed_off_by"].is_null());
  Reply all = Admin("GET", "/api/v1/reports");
  std::set<std::string> periods;
  for (const Json& r : all.body["reports"]) periods.insert(r["period"]);
  EXPECT_EQ(periods, (std::set<std::string>{"daily", "weekly", "monthly", "quarterly"}));
  EXPECT_EQ(Admin("GET", "/api/v1/reports?period=hourly").status, 400);
  Reply full = Admin("GET", "/api/v1/reports/" + std::to_string(id));
  ASSERT_EQ(full.status, 200);
  EXPECT_TRUE(full.body["report"].contains("total")) << full.raw;

  auto auditor = access_->CreateToken("audrey", {access::Role::kAuditor});
  ASSERT_TRUE(auditor);
  const std::string signoff = "/api/v1/reports/" + std::to_string(id) + "/signoff";
  EXPECT_EQ(Call("POST", signoff, R"({"note": "x"})", reader_token_).status, 403);
  Reply done = Call("POST", signoff, R"({"note": "read every record"})", auditor->token);
  ASSERT_EQ(done.status, 200) << done.raw;
  EXPECT_EQ(done.body["signed_off_by"], "audrey");
  Reply again = Call("POST", signoff, "{}", auditor->token);
  EXPECT_EQ(again.status, 409) << again.raw;
  EXPECT_EQ(Admin("POST", "/api/v1/reports/999/signoff").status, 404);
  EXPECT_EQ(Admin("POST", "/api/v1/reports/x/signoff").status, 400);
  // The monitor's record of the sign-off (the admin API also logs every request, refused ones too).
  size_t monitor_records = 0;
  for (const auto& r : UsageLog("report.signoff")) {
    if (r.purpose != "monitor") continue;
    ++monitor_records;
    EXPECT_EQ(r.actor, "audrey");
  }
  EXPECT_EQ(monitor_records, 1u);
}

}  // namespace
}  // namespace airlock::server
