// The monitor over a real database (SQLite, and PostgreSQL for two airlockd sharing one), with a
// recording Responder: each rule fires from a realistic event sequence and its action is asked
// for once; a replayed day of normal traffic raises nothing. The server test
// (server/monitor_api_test.cc) checks the actions themselves on a real vault and store.
#include "monitor/monitor.h"

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include "common/file.h"
#include "storage/pg_test_env.h"
#include "storage/store.h"

namespace airlock::monitor {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr int64_t kDay = 86400;
// 2026-03-02 00:00:00 UTC, a Monday.
constexpr int64_t kMidnight = 1772409600;
// Base64 text standing for a document that proves our timestamp key signed what we never wrote.
constexpr const char* kForgedTimestamp = "Rk9SR0VE";

struct Calls {
  std::mutex mu;
  std::vector<std::string> calls;  // "action:subject"
  void Add(const std::string& s) {
    std::lock_guard lock(mu);
    calls.push_back(s);
  }
  std::vector<std::string> Get() {
    std::lock_guard lock(mu);
    return calls;
  }
};

class RecordingResponder final : public Responder {
 public:
  explicit RecordingResponder(Calls* calls) : calls_(calls) {}
  Result<std::string> SuspendKey(const Alert& a) override {
    return Do("suspend_key:" + a.key_name);
  }
  Result<std::string> RotateKey(const Alert& a) override { return Do("rotate_key:" + a.key_name); }
  Result<std::string> ReplaceAppKeys(const Alert& a) override {
    return Do("replace_app_keys:" + a.app_id);
  }
  Result<std::string> PauseRollout(const Alert& a) override {
    return Do("pause_rollout:" + a.app_id + "/" + a.version);
  }

 private:
  Result<std::string> Do(const std::string& what) {
    calls_->Add(what);
    return what;
  }
  Calls* calls_;
};

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create({}, "monitor-");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    url_ = "sqlite:" + (dir_->path() / "airlock.db").string();
    usage_path_ = dir_->path() / "server.vault.audit";
    ASSERT_TRUE(storage::OpenStore(url_, now_));
    audit::AuditOptions options;
    options.clock = [this] { return now_; };
    auto log = audit::AuditLog::Open(usage_path_, options);
    ASSERT_TRUE(log);
    log_.emplace(std::move(*log));
    monitor_ = NewMonitor(url_);
  }

  std::unique_ptr<Monitor> NewMonitor(const std::string& url, Notifier* notifier = nullptr) {
    auto store = MonitorStore::Open(url);
    EXPECT_TRUE(store) << store.error().ToString();
    MonitorOptions options;
    options.clock = [this] { return now_; };
    options.usage_log = usage_path_;
    options.audit = [this](const audit::UsageRecord& r) -> Result<void> {
      std::lock_guard lock(audit_mu_);
      AIRLOCK_TRY(log_->Append(r));
      return {};
    };
    options.responder = &responder_;
    options.notifier = notifier;
    options.notify_base_delay = 10;
    options.notify_max_attempts = 3;
    options.scheduled_checks = scheduled_;
    // The server's checks, faked: the only document that proves anything is kForgedTimestamp (a
    // timestamp v9 "signed by app.timestamp"; the server produced versions 1..7), and a release's
    // copy on the server is damaged only when the test says so.
    options.corroboration.foreign_metadata =
        [](const std::string& app, const std::string& document) -> std::optional<ForeignMetadata> {
      if (document != kForgedTimestamp) return std::nullopt;
      return ForeignMetadata{app + ".timestamp", "timestamp", 9, "cd"};
    };
    options.corroboration.content = [this](const std::string& app, const std::string& version) {
      std::lock_guard lock(damaged_mu_);
      if (damaged_.count(app + "/" + version)) {
        return ContentCheck{ContentCheck::State::kDamaged, "a flipped byte"};
      }
      return ContentCheck{ContentCheck::State::kIntact, "its 1 target matches"};
    };
    return std::make_unique<Monitor>(std::move(*store), options);
  }

  // A key usage record as the vault writes it.
  void KeyOp(const std::string& key, const std::string& actor, const std::string& source,
             const std::string& op, audit::UsageResult result = audit::UsageResult::kOk,
             const std::string& why = "") {
    audit::UsageRecord r;
    r.time = now_;
    r.actor = actor;
    r.key_name = key;
    r.operation = op;
    r.purpose = key.substr(key.rfind('.') + 1);
    r.result = result;
    r.result_reason = why;
    r.source = source;
    std::lock_guard lock(audit_mu_);
    ASSERT_TRUE(log_->Append(r));
  }

  // A release-side event (a publish, rollout, channel or approval change) of "app" at now_.
  void ReleaseChange(const std::string& operation, const std::string& actor,
                     const std::string& address) {
    Event e;
    e.source = "release";
    e.operation = operation;
    e.app_id = "app";
    e.actor = actor;
    e.address = address;
    e.time = now_;
    ASSERT_TRUE(monitor_->Record(e));
  }

  void Device(const std::string& device, const std::string& version, const std::string& kind,
              const std::string& reason = "", const std::string& detail = "") {
    Event e;
    e.source = "device";
    e.source_ref = "app/" + device + "/" + std::to_string(++device_seq_);
    e.time = now_;
    e.app_id = "app";
    e.device_id = device;
    e.version = version;
    e.operation = kind;
    e.result = kind == "failed" || kind == "rolled_back" ? "failed" : "ok";
    e.reason = reason;
    e.detail = detail;
    ASSERT_TRUE(monitor_->Record(e));
  }

  // The whole funnel of one device installing `version`.
  void Update(const std::string& device, const std::string& version, bool ok = true) {
    for (const char* kind : {"offered", "downloaded", "verified", "installed"}) {
      Device(device, version, kind);
    }
    if (ok) {
      Device(device, version, "confirmed");
    } else {
      Device(device, version, "rolled_back", "health_timeout");
    }
  }

  TickReport Tick(Monitor* m = nullptr) {
    auto report = (m ? m : monitor_.get())->Tick();
    EXPECT_TRUE(report) << report.error().ToString();
    return report ? *report : TickReport{};
  }

  std::vector<Alert> Alerts() {
    auto alerts = monitor_->store().ListAlerts(std::nullopt, 1000);
    EXPECT_TRUE(alerts);
    return alerts ? *alerts : std::vector<Alert>{};
  }

  std::vector<audit::UsageRecord> MonitorRecords() {
    audit::AuditFilter f;
    std::lock_guard lock(audit_mu_);
    auto all = log_->Query(f);
    EXPECT_TRUE(all);
    std::vector<audit::UsageRecord> out;
    for (auto& r : *all) {
      if (r.purpose == "monitor") out.push_back(r);
    }
    return out;
  }

  std::optional<ScopedTempDir> dir_;
  std::string url_;
  fs::path usage_path_;
  int64_t now_ = kMidnight + 10 * 3600;
  std::mutex audit_mu_;
  std::optional<audit::AuditLog> log_;
  Calls calls_;
  RecordingResponder responder_{&calls_};
  std::unique_ptr<Monitor> monitor_;
  int device_seq_ = 0;
  std::mutex damaged_mu_;
  std::set<std::string> damaged_;  // "app/version" whose copy on the server fails its target
  bool scheduled_ = false;  // the rule tests run without the scheduled reports
};

TEST_F(MonitorTest, RepeatedWrongTotpOnAKeySuspendsItOnceAndRecordsAlertAndActionInTheChain) {
  for (int i = 0; i < 4; ++i) {
    KeyOp("app.targets", "mallory", "203.0.113.9", "sign", audit::UsageResult::kDenied,
          "bad TOTP code");
    now_ += 30;
  }
  Tick();
  EXPECT_TRUE(Alerts().empty()) << "four failures are below the threshold of five";
  KeyOp("app.targets", "mallory", "203.0.113.9", "sign", audit::UsageResult::kDenied,
        "bad TOTP code");
  KeyOp("app.targets", "mallory", "203.0.113.9", "sign", audit::UsageResult::kFailed,
        "key suspended");
  auto report = Tick();
  auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].rule, "key_failures");
  EXPECT_EQ(alerts[0].level, "medium");
  EXPECT_EQ(alerts[0].key_name, "app.targets");
  EXPECT_EQ(alerts[0].action_state, "done");
  EXPECT_EQ(report.raised.size(), 1u);
  EXPECT_EQ(calls_.Get(), std::vector<std::string>{"suspend_key:app.targets"});
  auto records = MonitorRecords();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].operation, "alert.raise");
  EXPECT_EQ(records[1].operation, "alert.action");
  EXPECT_EQ(records[1].key_name, "app.targets");
  EXPECT_NE(records[1].details.find("action=suspend_key"), std::string::npos);
  // The chain still verifies with the monitor's records in it.
  auto verified = log_->Verify();
  ASSERT_TRUE(verified);
  EXPECT_TRUE(verified->ok);
  Tick();
  EXPECT_EQ(Alerts().size(), 1u) << "evaluated events are not evaluated again";
}

TEST_F(MonitorTest, OperatorDeclarationRotatesTheKey) {
  Event e;
  e.source = "operator";
  e.operation = "compromise";
  e.key_name = "app.timestamp";
  e.app_id = "app";
  e.actor = "alice";
  e.address = "192.0.2.1";
  e.detail = "laptop stolen";
  ASSERT_TRUE(monitor_->Record(e));
  Tick();
  auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].rule, "compromise_declared");
  EXPECT_EQ(alerts[0].level, "high");
  EXPECT_EQ(calls_.Get(), std::vector<std::string>{"rotate_key:app.timestamp"});
}

TEST_F(MonitorTest, MetadataTheServerNeverSignedRotatesThatKeyOnlyWithTheDocumentAsProof) {
  // A claim alone, a claim with a document that proves nothing (the check says so), and a
  // document in a report of another reason: nothing.
  Device("d1", "1.0.0", "failed", "unknown_signed_metadata", "role=timestamp version=9 sha256=cd");
  Device("d1", "1.0.0", "failed", "unknown_signed_metadata",
         "role=timestamp version=9 sha256=cd metadata=bm90IHNpZ25lZA==");
  Device("d1", "1.0.0", "failed", "hash_mismatch", std::string("metadata=") + kForgedTimestamp);
  Tick();
  EXPECT_TRUE(Alerts().empty());
  EXPECT_TRUE(calls_.Get().empty());
  Device("d1", "1.0.0", "failed", "unknown_signed_metadata",
         std::string("role=timestamp version=9 sha256=cd metadata=") + kForgedTimestamp);
  Tick();
  auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].rule, "foreign_signature");
  EXPECT_EQ(alerts[0].subject, "app.timestamp");
  EXPECT_EQ(alerts[0].summary,
            "device d1 of app holds timestamp v9 (sha256 cd) signed by key app.timestamp that the "
            "server never produced");
  EXPECT_EQ(calls_.Get(), std::vector<std::string>{"rotate_key:app.timestamp"});
}

TEST_F(MonitorTest, TamperReportsMoveNothingWhileTheServersOwnCopyIsIntact) {
  // Anyone holding the app can enroll devices: fifteen of them claim hash_mismatch and
  // signature_invalid for a release whose copy on the server matches its signed target. (From 20
  // failing devices on, release_failure_rate pauses the release: that action is meant to follow
  // device reports, and a channel resumes with one command.)
  for (int i = 0; i < 15; ++i) {
    Device("liar" + std::to_string(i), "1.1.0", "failed", "hash_mismatch");
    Device("liar" + std::to_string(i), "1.1.0", "failed", "signature_invalid");
  }
  Tick();
  auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 2u);
  for (const Alert& a : alerts) {
    SCOPED_TRACE(a.rule);
    EXPECT_EQ(a.subject, "app unverified");
    EXPECT_EQ(a.level, "low");
    EXPECT_EQ(a.action, "none");
    EXPECT_NE(a.summary.find("; no action: its 1 target matches, so the bytes changed between the "
                             "server and the devices, or the reports are false"),
              std::string::npos)
        << a.summary;
  }
  EXPECT_TRUE(calls_.Get().empty()) << "a device's word moved a key";
}

TEST_F(MonitorTest, TamperedContentOnSeveralDevicesReplacesTheAppKeysOnce) {
  {
    std::lock_guard lock(damaged_mu_);
    damaged_.insert("app/1.1.0");
  }
  Device("d1", "1.1.0", "failed", "hash_mismatch");
  Device("d1", "1.1.0", "failed", "hash_mismatch");  // one device twice is still one device
  Tick();
  EXPECT_TRUE(Alerts().empty());
  for (const char* d : {"d2", "d3", "d4", "d5"}) Device(d, "1.1.0", "failed", "hash_mismatch");
  Tick();
  auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].rule, "tampered_content");
  EXPECT_EQ(alerts[0].subject, "app");
  EXPECT_EQ(alerts[0].level, "critical");
  EXPECT_EQ(alerts[0].summary,
            "5 devices of app reported validly signed but tampered content (hash_mismatch) "
            "within 3600 s, the last for version 1.1.0; the server's own copy fails its "
            "signatures or hashes: a flipped byte");
  EXPECT_EQ(calls_.Get(), std::vector<std::string>{"replace_app_keys:app"});
}

TEST_F(MonitorTest, SignatureFailuresAcrossManyDevicesReplaceTheAppKeys) {
  {
    std::lock_guard lock(damaged_mu_);
    damaged_.insert("app/1.1.0");
  }
  for (int i = 0; i < 10; ++i) {
    Device("dev" + std::to_string(i), "1.1.0", "failed", "signature_invalid");
    now_ += 20;
  }
  Tick();
  auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].rule, "mass_verification_failures");
  EXPECT_EQ(calls_.Get(), std::vector<std::string>{"replace_app_keys:app"});
}

TEST_F(MonitorTest, FailureRateAboveNormalPausesTheRolloutButAHandfulOfDevicesCannot) {
  // Five devices, all failing: a 100 % rate, but below the minimum of 20 attempts.
  for (int i = 0; i < 5; ++i) Update("early" + std::to_string(i), "2.0.0", false);
  Tick();
  EXPECT_TRUE(Alerts().empty());
  // 40 devices with one failure (2.5 %): normal.
  for (int i = 0; i < 39; ++i) Update("ok" + std::to_string(i), "1.9.0");
  Update("bad", "1.9.0", false);
  Tick();
  EXPECT_TRUE(Alerts().empty());
  // 2.0.0 grows to 5 failures of 25: the 95 % lower bound (about 0.09) is above 0.05.
  for (int i = 0; i < 20; ++i) Update("late" + std::to_string(i), "2.0.0");
  Tick();
  EXPECT_TRUE(Alerts().empty()) << "successes alone raise nothing";
  Update("late-bad", "2.0.0", false);
  Tick();
  auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].rule, "release_failure_rate");
  EXPECT_EQ(alerts[0].subject, "app/2.0.0");
  EXPECT_EQ(calls_.Get(), std::vector<std::string>{"pause_rollout:app/2.0.0"});
  EXPECT_NEAR(WilsonLowerBound(6, 26), 0.1096, 0.001);
}

TEST_F(MonitorTest, NewActorOnAKeyWithHistoryOpensAnInvestigationWithoutAction) {
  for (int i = 0; i < 25; ++i) {
    KeyOp("app.targets", "release-bot", "10.0.0.5", "sign");
    now_ += 600;
  }
  KeyOp("app.targets", "eve", "10.0.0.5", "sign");
  Tick();
  auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].rule, "new_actor");
  EXPECT_EQ(alerts[0].level, "low");
  EXPECT_TRUE(alerts[0].investigation);
  EXPECT_EQ(alerts[0].action_state, "none");
  EXPECT_TRUE(calls_.Get().empty());
}

// odd_hour against a fixed clock (the shell tests switch it off: they run at whatever hour CI
// starts them, and a run at 01:04 UTC once raised it in the middle of their alert counts). Each probe
// is one key use by an actor of its own at a second of the day, ticked at another hour (the event's
// time counts, not the tick's), then looked up by its subject.
TEST_F(MonitorTest, QuietHoursOpenAnInvestigationOnlyInsideTheirWindow) {
  int day = 1;
  auto raised = [&](int64_t second_of_day) {
    const std::string actor = "ci-" + std::to_string(day) + "-" + std::to_string(second_of_day);
    now_ = kMidnight + day * kDay + second_of_day;
    KeyOp("app.targets", actor, "10.0.0.5", "sign");
    now_ += 7 * 3600 + 780;  // the tick at another hour, before the next probe's day
    Tick();
    day += 2;
    for (const Alert& a : Alerts()) {
      if (a.rule == "odd_hour" && a.subject == "key app.targets|" + actor) {
        EXPECT_EQ(a.level, "low");
        EXPECT_TRUE(a.investigation);
        EXPECT_EQ(a.action_state, "none");
        return true;
      }
    }
    return false;
  };
  constexpr int64_t kH = 3600;
  // The default window, [0, 5) UTC.
  EXPECT_TRUE(raised(0));
  EXPECT_TRUE(raised(2 * kH + 5));
  EXPECT_TRUE(raised(5 * kH - 1));
  EXPECT_FALSE(raised(5 * kH));
  EXPECT_FALSE(raised(10 * kH));
  EXPECT_FALSE(raised(kDay - 1));
  // A window across midnight, [22, 3).
  ASSERT_TRUE(monitor_->SetRule("odd_hour", {{"quiet_start_hour", 22}, {"quiet_end_hour", 3}},
                                "alice", "127.0.0.1"));
  EXPECT_FALSE(raised(22 * kH - 1));
  EXPECT_TRUE(raised(22 * kH));
  EXPECT_TRUE(raised(kDay - 1));
  EXPECT_TRUE(raised(0));
  EXPECT_TRUE(raised(3 * kH - 1));
  EXPECT_FALSE(raised(3 * kH));
  EXPECT_FALSE(raised(4 * kH));  // inside the default window, no longer quiet
  // An empty window: start == end.
  ASSERT_TRUE(monitor_->SetRule("odd_hour", {{"quiet_start_hour", 7}, {"quiet_end_hour", 7}},
                                "alice", "127.0.0.1"));
  EXPECT_FALSE(raised(7 * kH));
  EXPECT_FALSE(raised(2 * kH));
  ASSERT_TRUE(monitor_->SetRule("odd_hour", {{"quiet_start_hour", 0}, {"quiet_end_hour", 5}},
                                "alice", "127.0.0.1"));
  EXPECT_TRUE(raised(2 * kH));

  // A release change by a person in quiet hours; the server's own signing is never counted.
  now_ = kMidnight + day * kDay + 1 * kH;
  KeyOp("app.timestamp", "airlockd", "airlockd", "sign");
  ReleaseChange("channel.create", "owner", "10.0.0.8");
  Tick();
  std::vector<std::string> subjects;
  for (const Alert& a : Alerts()) {
    if (a.rule == "odd_hour" && a.subject.find("|ci-") == std::string::npos) {
      subjects.push_back(a.subject);
      EXPECT_EQ(a.summary, "owner used channel.create app at 1 h UTC, inside the quiet hours");
    }
  }
  EXPECT_EQ(subjects, std::vector<std::string>{"channel.create app|owner"});

  ASSERT_TRUE(monitor_->SetRule("odd_hour", {{"enabled", false}}, "alice", "127.0.0.1"));
  day += 2;
  EXPECT_FALSE(raised(2 * kH));
  EXPECT_TRUE(calls_.Get().empty());
}

TEST_F(MonitorTest, ADayOfNormalTrafficRaisesNothing) {
  scheduled_ = true;  // the daily analysis must stay quiet too
  monitor_ = NewMonitor(url_);
  // Two days replayed: the server's online keys sign every 10 minutes, the release manager's
  // CI signs and publishes two releases a day in office hours, 300 devices update with a 1 %
  // failure rate, an operator mistypes a token twice.
  int device = 0;
  for (int day = 0; day < 2; ++day) {
    for (int64_t t = 0; t < kDay; t += 600) {
      now_ = kMidnight + day * kDay + t;
      KeyOp("app.timestamp", "airlockd", "airlockd", "sign");
      if (t % 3600 == 0) KeyOp("app.snapshot", "airlockd", "airlockd", "sign");
      if (t == 10 * 3600 || t == 15 * 3600) {
        KeyOp("app.targets", "ci", "10.0.0.5", "sign");
        ReleaseChange("release.publish", "ci", "10.0.0.5");
      }
      if (t >= 9 * 3600 && t < 21 * 3600) {
        for (int i = 0; i < 3; ++i, ++device) {
          Update("dev" + std::to_string(device), "1." + std::to_string(day) + ".0",
                 device % 100 != 7);
        }
      }
      if (t == 11 * 3600) {
        Event bad;
        bad.source = "admin";
        bad.operation = "auth";
        bad.result = "denied";
        bad.address = "10.0.0.8";
        ASSERT_TRUE(monitor_->Record(bad));
        ASSERT_TRUE(monitor_->Record(bad));
      }
      if (t % 7200 == 0) Tick();
    }
  }
  now_ = kMidnight + 2 * kDay + 60;  // both days' reports are due
  Tick();
  auto daily = monitor_->store().ListReports("daily", 10);
  ASSERT_TRUE(daily);
  ASSERT_GE(daily->size(), 2u);
  EXPECT_GT(Json::parse(daily->at(0).report)["total"].get<int64_t>(), 100);
  auto replayed = monitor_->store().Count({});
  ASSERT_TRUE(replayed);
  EXPECT_GT(*replayed, 2400) << "the day was replayed into the stream";
  EXPECT_EQ(*monitor_->store().Cursor("rules"), *monitor_->store().MaxEventId());
  EXPECT_TRUE(Alerts().empty()) << AlertJson(Alerts().front()).dump();
  EXPECT_TRUE(calls_.Get().empty());
}

TEST_F(MonitorTest, ARestartLosesNoEventAndRaisesNothingTwice) {
  for (int i = 0; i < 5; ++i) {
    KeyOp("app.content", "bob", "198.51.100.4", "unwrap", audit::UsageResult::kFailed, "bad");
  }
  monitor_ = NewMonitor(url_);  // restarted before it ever ticked
  Tick();
  ASSERT_EQ(Alerts().size(), 1u);
  monitor_ = NewMonitor(url_);  // and again after
  Tick();
  EXPECT_EQ(Alerts().size(), 1u);
  EXPECT_EQ(calls_.Get(), std::vector<std::string>{"suspend_key:app.content"});
}

TEST_F(MonitorTest, AnActionLeftPendingByACrashIsTakenOnTheNextTick) {
  Alert a;
  a.rule = "key_failures";
  a.level = "medium";
  a.subject = "app.targets";
  a.key_name = "app.targets";
  a.created_at = now_;
  a.action = "suspend_key";
  a.action_state = "pending";
  a.notify_state = "none";
  auto id = monitor_->store().InsertAlert(a);
  ASSERT_TRUE(id && *id);
  Tick();
  EXPECT_EQ(calls_.Get(), std::vector<std::string>{"suspend_key:app.targets"});
  EXPECT_EQ(monitor_->store().GetAlert(**id)->action_state, "done");
}

TEST_F(MonitorTest, RuleSettingsAreValidatedStoredAndUsed) {
  auto bad = monitor_->SetRule("key_failures", {{"threshold", 0}}, "alice", "127.0.0.1");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  auto unknown = monitor_->SetRule("key_failures", {{"treshold", 2}}, "alice", "127.0.0.1");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kInvalidArgument);
  auto no_rule = monitor_->SetRule("no_such_rule", {{"threshold", 2}}, "alice", "127.0.0.1");
  ASSERT_FALSE(no_rule);
  EXPECT_EQ(no_rule.error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(monitor_->SetRule("key_failures", {{"threshold", 2}}, "alice", "127.0.0.1"));
  KeyOp("app.targets", "bob", "198.51.100.4", "sign", audit::UsageResult::kFailed, "bad");
  KeyOp("app.targets", "bob", "198.51.100.4", "sign", audit::UsageResult::kFailed, "bad");
  Tick();
  EXPECT_EQ(Alerts().size(), 1u);
  auto records = MonitorRecords();
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records[0].operation, "alert.rules.set");
  EXPECT_EQ(records[0].actor, "alice");
}

TEST_F(MonitorTest, AckAndResolveFollowTheirOrderAndLandInTheChain) {
  for (int i = 0; i < 5; ++i) {
    KeyOp("app.targets", "bob", "198.51.100.4", "sign", audit::UsageResult::kFailed, "bad");
  }
  Tick();
  int64_t id = Alerts().at(0).id;
  ASSERT_TRUE(monitor_->Acknowledge(id, "alice", "127.0.0.1", "looking"));
  auto again = monitor_->Acknowledge(id, "alice", "127.0.0.1", "");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  auto resolved = monitor_->Resolve(id, "carol", "127.0.0.1", "key rotated by hand");
  ASSERT_TRUE(resolved);
  EXPECT_EQ(resolved->status, AlertStatus::kResolved);
  EXPECT_EQ(resolved->resolved_by, "carol");
  auto missing = monitor_->Resolve(999, "carol", "127.0.0.1", "");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  auto records = MonitorRecords();
  ASSERT_GE(records.size(), 4u);
  EXPECT_EQ(records[records.size() - 2].operation, "alert.ack");
  EXPECT_EQ(records.back().operation, "alert.resolve");
  EXPECT_EQ(records.back().actor, "carol");
}

// ---- scheduled checks ----

TEST_F(MonitorTest, TheDailyAnalysisIsStoredOnceAndRaisesOnFailuresAndNewActors) {
  scheduled_ = true;
  monitor_ = NewMonitor(url_);
  auto second = NewMonitor(url_);  // another airlockd on the same database
  now_ = kMidnight + 9 * 3600;
  for (int i = 0; i < 5; ++i) KeyOp("app.targets", "ci", "10.0.0.5", "sign");
  now_ = kMidnight + kDay + 9 * 3600;
  KeyOp("app.targets", "ci", "10.0.0.5", "sign");
  Tick();
  Tick(second.get());
  EXPECT_TRUE(Alerts().empty()) << "the log's first day: every actor is new, nothing failed";
  KeyOp("app.targets", "eve", "10.0.0.9", "sign");
  KeyOp("app.targets", "mallory", "203.0.113.9", "sign", audit::UsageResult::kDenied, "bad TOTP");
  now_ = kMidnight + 2 * kDay + 5;
  Tick(second.get());
  Tick();
  auto daily = monitor_->store().ListReports("daily", 10);
  ASSERT_TRUE(daily);
  ASSERT_EQ(daily->size(), 2u) << "one report per day, whichever server made it";
  Json day = Json::parse(daily->at(0).report);
  EXPECT_EQ(day["start"], kMidnight + kDay);
  EXPECT_EQ(day["denied"], 1);
  EXPECT_EQ(day["failed"], 0);
  auto alerts = Alerts();
  std::vector<std::string> rules;
  for (const auto& a : alerts) rules.push_back(a.rule);
  EXPECT_EQ(std::count(rules.begin(), rules.end(), "daily_usage_anomaly"), 1);
  for (const auto& a : alerts) {
    if (a.rule != "daily_usage_anomaly") continue;
    EXPECT_NE(a.summary.find("new actors [eve,mallory]"), std::string::npos) << a.summary;
    EXPECT_TRUE(a.investigation);
  }
  auto records = MonitorRecords();
  EXPECT_EQ(std::count_if(records.begin(), records.end(),
                          [](const auto& r) { return r.operation == "report.daily"; }),
            2);
}

TEST_F(MonitorTest, AWeeklyReviewNotSignedOffInTimeRaisesAnAlertASignedOneDoesNot) {
  scheduled_ = true;
  monitor_ = NewMonitor(url_);
  const int64_t week = 7 * kDay;
  const int64_t boundary = (kMidnight / week + 1) * week;
  now_ = boundary - kDay + 10 * 3600;
  KeyOp("app.targets", "ci", "10.0.0.5", "sign");
  now_ = boundary + 60;
  Tick();
  auto weekly = monitor_->store().ListReports("weekly", 10);
  ASSERT_TRUE(weekly);
  ASSERT_EQ(weekly->size(), 1u);
  const int64_t first = weekly->at(0).id;
  now_ += 3 * kDay - 120;
  Tick();
  EXPECT_TRUE(Alerts().empty()) << "still within the three days: "
                                << AlertJson(Alerts().front()).dump();
  now_ += 120;
  Tick();
  auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].rule, "review_unsigned");
  // The next week's review is signed off in time: no alert for it.
  now_ = boundary + week + 60;
  Tick();
  weekly = monitor_->store().ListReports("weekly", 10);
  ASSERT_EQ(weekly->size(), 2u);
  auto signed_off = monitor_->SignOff(weekly->at(0).id, "audrey", "127.0.0.1", "read it");
  ASSERT_TRUE(signed_off) << signed_off.error().ToString();
  EXPECT_EQ(signed_off->signed_off_by, "audrey");
  auto again = monitor_->SignOff(weekly->at(0).id, "audrey", "127.0.0.1", "");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  auto unknown = monitor_->SignOff(999, "audrey", "127.0.0.1", "");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kNotFound);
  now_ += 4 * kDay;
  Tick();
  EXPECT_EQ(Alerts().size(), 1u) << "only the first week's review was late";
  EXPECT_NE(first, weekly->at(0).id);
  auto records = MonitorRecords();
  EXPECT_EQ(std::count_if(records.begin(), records.end(),
                          [](const auto& r) {
                            return r.operation == "report.signoff" && r.actor == "audrey";
                          }),
            1);
}

TEST_F(MonitorTest, TheMonthlyRotationReviewFlagsOverdueKeys) {
  scheduled_ = true;
  auto store = MonitorStore::Open(url_);
  ASSERT_TRUE(store);
  KeyOp("app.timestamp", "airlockd", "airlockd", "sign");
  MonitorOptions options;
  options.clock = [this] { return now_; };
  options.usage_log = usage_path_;
  options.audit = [this](const audit::UsageRecord& r) -> Result<void> {
    AIRLOCK_TRY(log_->Append(r));
    return {};
  };
  options.responder = &responder_;
  options.key_inventory = [this]() -> Result<KeyInventory> {
    KeyInventory inv;
    inv.ages.push_back({"k1", "app.timestamp", "timestamp", now_ - 90 * kDay, true});
    inv.ages.push_back({"k2", "app.snapshot", "snapshot", now_ - 10 * kDay, true});
    inv.max_age = {{"timestamp", 30 * kDay}, {"snapshot", 90 * kDay}};
    return inv;
  };
  Monitor monitor(std::move(*store), options);
  ASSERT_TRUE(monitor.Tick());
  auto monthly = monitor.store().ListReports("monthly", 10);
  ASSERT_TRUE(monthly);
  ASSERT_EQ(monthly->size(), 1u);
  Json report = Json::parse(monthly->at(0).report);
  ASSERT_EQ(report["rotation_due"].size(), 1u);
  EXPECT_EQ(report["rotation_due"][0]["key_name"], "app.timestamp");
  auto alerts = monitor.store().ListAlerts(std::nullopt, 10);
  ASSERT_TRUE(alerts);
  ASSERT_EQ(alerts->size(), 1u);
  EXPECT_EQ(alerts->at(0).rule, "rotation_overdue");
  EXPECT_NE(alerts->at(0).summary.find("app.timestamp"), std::string::npos);
}

TEST_F(MonitorTest, TheQuarterlyAuditVerifiesTheChainAndRaisesWhenItIsBroken) {
  scheduled_ = true;
  monitor_ = NewMonitor(url_);
  for (int i = 0; i < 3; ++i) KeyOp("app.timestamp", "airlockd", "airlockd", "sign");
  // Someone with write access to the file drops the append-only triggers and edits a record.
  ASSERT_EQ(sqlite3_exec(log_->db(),
                         "DROP TRIGGER IF EXISTS records_no_update; "
                         "UPDATE records SET actor = 'nobody' WHERE seq = 2",
                         nullptr, nullptr, nullptr),
            0);
  Tick();
  auto quarterly = monitor_->store().ListReports("quarterly", 10);
  ASSERT_TRUE(quarterly);
  ASSERT_EQ(quarterly->size(), 1u);
  Json report = Json::parse(quarterly->at(0).report);
  EXPECT_EQ(report["chain"]["ok"], false);
  EXPECT_EQ(report["chain"]["first_bad_seq"], 2);
  auto alerts = Alerts();
  ASSERT_EQ(alerts.size(), 1u) << AlertJson(alerts.front()).dump()
                               << AlertJson(alerts.back()).dump();
  EXPECT_EQ(alerts[0].rule, "audit_chain_broken");
  EXPECT_EQ(alerts[0].level, "high");
}

// A webhook receiver on 127.0.0.1 (Boost.Beast): answers 503 to the first `failures` requests,
// then 200, and keeps every request.
class Receiver {
 public:
  explicit Receiver(int failures)
      : failures_(failures), acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Receiver() {
    stop_ = true;
    boost::system::error_code ec;
    // Wake the blocking accept with one last connection.
    boost::asio::ip::tcp::socket s(io_);
    s.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  std::string Url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/hook";
  }
  struct Got {
    std::string timestamp, signature, body;
    int status = 0;
  };
  std::vector<Got> Requests() {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  void Run() {
    namespace http = boost::beast::http;
    while (!stop_) {
      boost::asio::ip::tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(socket, buffer, req, ec);
      if (ec) continue;
      Got g;
      g.timestamp = std::string(req[kTimestampHeader]);
      g.signature = std::string(req[kSignatureHeader]);
      g.body = req.body();
      g.status = failures_-- > 0 ? 503 : 200;
      {
        std::lock_guard lock(mu_);
        got_.push_back(g);
      }
      http::response<http::string_body> res{static_cast<http::status>(g.status), 11};
      res.body() = "ok";
      res.prepare_payload();
      http::write(socket, res, ec);
    }
  }
  int failures_;
  std::atomic<bool> stop_{false};
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Got> got_;
};

TEST_F(MonitorTest, WebhookIsSignedOverTimestampAndBodyAndRetriedWithBackOff) {
  Receiver receiver(/*failures=*/1);
  auto hook = WebhookNotifier::Create({receiver.Url(), "0123456789abcdef-secret"});
  ASSERT_TRUE(hook);
  monitor_ = NewMonitor(url_, &*hook);
  for (int i = 0; i < 5; ++i) {
    KeyOp("app.targets", "bob", "198.51.100.4", "sign", audit::UsageResult::kFailed, "bad");
  }
  Tick();  // raised; the first delivery gets 503
  ASSERT_EQ(receiver.Requests().size(), 1u);
  auto alert = Alerts().at(0);
  EXPECT_EQ(alert.notify_state, "pending");
  EXPECT_EQ(alert.notify_attempts, 1);
  EXPECT_EQ(alert.notify_next_at, now_ + 10);
  Tick();  // not due yet
  EXPECT_EQ(receiver.Requests().size(), 1u);
  now_ += 10;
  Tick();
  auto got = receiver.Requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].status, 200);
  EXPECT_EQ(Alerts().at(0).notify_state, "sent");
  // The receiver checks the signature with the shared secret over "<timestamp>.<body>".
  auto expected =
      WebhookSignature("0123456789abcdef-secret", std::stoll(got[1].timestamp), got[1].body);
  ASSERT_TRUE(expected);
  EXPECT_EQ(got[1].signature, *expected);
  EXPECT_EQ(Json::parse(got[1].body)["alert"]["rule"], "key_failures");
  EXPECT_EQ(Json::parse(got[1].body)["alert"]["action_state"], "done");
  // A body changed in transit no longer matches.
  auto forged =
      WebhookSignature("0123456789abcdef-secret", std::stoll(got[1].timestamp), got[1].body + " ");
  EXPECT_NE(got[1].signature, *forged);
}

TEST_F(MonitorTest, WebhookGivesUpAfterTheLastAttemptAndSaysSoInTheChain) {
  Receiver receiver(/*failures=*/100);
  auto hook = WebhookNotifier::Create({receiver.Url(), "0123456789abcdef-secret"});
  ASSERT_TRUE(hook);
  monitor_ = NewMonitor(url_, &*hook);
  for (int i = 0; i < 5; ++i) {
    KeyOp("app.targets", "bob", "198.51.100.4", "sign", audit::UsageResult::kFailed, "bad");
  }
  Tick();
  now_ += 10;
  Tick();
  now_ += 20;
  Tick();
  now_ += 1000;
  Tick();
  EXPECT_EQ(receiver.Requests().size(), 3u);
  EXPECT_EQ(Alerts().at(0).notify_state, "failed");
  auto records = MonitorRecords();
  EXPECT_EQ(records.back().operation, "alert.notify");
  EXPECT_EQ(records.back().result, audit::UsageResult::kFailed);
}

TEST(Webhook, RefusesNonHttpUrlsAndShortSecrets) {
  auto file = WebhookNotifier::Create({"file:///etc/passwd", "0123456789abcdef"});
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().code(), ErrorCode::kInvalidArgument);
  auto weak = WebhookNotifier::Create({"http://127.0.0.1:1/", "short"});
  ASSERT_FALSE(weak);
  EXPECT_EQ(weak.error().code(), ErrorCode::kInvalidArgument);
}

// Two airlockd on one PostgreSQL: both ingest the same usage log and the same device reports and
// tick at the same time; each alert exists once and each action is taken once.
TEST_F(MonitorTest, TwoServersOnOnePostgresRaiseEachAlertOnce) {
  auto pg = storage::testing::CreateTestDatabase();
  ASSERT_TRUE(pg) << pg.error().ToString();
  ASSERT_TRUE(storage::OpenStore(*pg, now_));
  auto a = NewMonitor(*pg);
  auto b = NewMonitor(*pg);
  {
    std::lock_guard lock(damaged_mu_);
    for (int round = 0; round < 5; ++round) {
      damaged_.insert("app" + std::to_string(round) + "/1.0.0");
    }
  }
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 6; ++i) {
      KeyOp("app" + std::to_string(round) + ".targets", "bob", "198.51.100.4", "sign",
            audit::UsageResult::kFailed, "bad");
    }
    for (int i = 0; i < 12; ++i) {
      Event e;
      e.source = "device";
      e.source_ref = "app" + std::to_string(round) + "/d" + std::to_string(i) + "/1";
      e.time = now_;
      e.app_id = "app" + std::to_string(round);
      e.device_id = "d" + std::to_string(i);
      e.operation = "failed";
      e.result = "failed";
      e.reason = "signature_invalid";
      e.version = "1.0.0";
      // Both servers receive (a retry of) the same report.
      ASSERT_TRUE(a->Record(e));
      ASSERT_TRUE(b->Record(e));
    }
    std::thread ta([&] { Tick(a.get()); });
    std::thread tb([&] { Tick(b.get()); });
    ta.join();
    tb.join();
    now_ += 3600;
  }
  auto alerts = a->store().ListAlerts(std::nullopt, 100);
  ASSERT_TRUE(alerts);
  EXPECT_EQ(alerts->size(), 10u);  // per round: key_failures and mass_verification_failures
  auto calls = calls_.Get();
  std::sort(calls.begin(), calls.end());
  EXPECT_EQ(calls.size(), 10u);
  EXPECT_EQ(std::unique(calls.begin(), calls.end()), calls.end()) << "an action was taken twice";
  auto events = a->store().Count({});
  ASSERT_TRUE(events);
  EXPECT_EQ(*events, 5 * 6 + 5 * 12) << "each event is stored once";
}

}  // namespace
}  // namespace airlock::monitor
