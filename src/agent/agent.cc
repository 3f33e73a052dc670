#include "agent/agent.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bundle/bundle.h"
#include "bundle/delta.h"
#include "client/device_identity.h"
#include "client/download.h"
#include "client/http_fetcher.h"
#include "client/report_queue.h"
#include "client/updater.h"
#include "common/file.h"
#include "common/semver.h"
#include "crypto/wrap.h"
#include "metadata/metadata.h"
#include "metadata/release_rules.h"

namespace airlock::agent {

namespace fs = std::filesystem;
using client::CheckResult;
using client::InstallState;
using client::InstallStatus;

namespace {

constexpr int kMaxKeyPendingRetries = 5;

// The report reason code for an error of the TUF refresh or the target lookup.
std::string MetadataReason(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kExpired:
      return "metadata_expired";
    case ErrorCode::kRollback:
      return "downgrade_refused";
    case ErrorCode::kBadSignature:
    case ErrorCode::kWrongKey:
      return "signature_invalid";
    case ErrorCode::kHashMismatch:
      return "hash_mismatch";
    case ErrorCode::kNotFound:
      return "target_unknown";
    default:
      return "metadata_failed";
  }
}

std::string DownloadReason(const Error& e) {
  return e.code() == ErrorCode::kHashMismatch ? "hash_mismatch" : "download_failed";
}

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace

ErrorCode RefusalCode(std::string_view reason) {
  if (reason == "hash_mismatch") return ErrorCode::kHashMismatch;
  if (reason == "downgrade_refused") return ErrorCode::kRollback;
  if (reason == "metadata_expired") return ErrorCode::kExpired;
  if (reason == "decrypt_failed") return ErrorCode::kDecryptFailed;
  if (reason == "download_failed") return ErrorCode::kIo;
  if (reason == "unsupported") return ErrorCode::kUnsupported;
  if (reason == "target_unknown") return ErrorCode::kNotFound;
  if (reason == "signature_invalid") return ErrorCode::kBadSignature;
  if (reason == "wrong_release" || reason == "wrong_channel") return ErrorCode::kWrongKey;
  return ErrorCode::kAlreadyExists;  // a release that failed before (its reason) is not retried
}

std::string ReleaseId(const std::string& version, const std::string& sha256) {
  return version + "-" + sha256.substr(0, 16);
}

struct Agent::Impl {
  AgentConfig config;
  AgentOutput output;
  client::Installer installer;
  client::ReportQueue reports;
  std::optional<client::DeviceIdentity> identity;
  int64_t retry_after = 0;
  std::function<bool()> stop_requested;

  bool Stopping() const { return stop_requested && stop_requested(); }
  // Sleeps `seconds`, or less when a stop is requested meanwhile (then returns false).
  bool Pause(int64_t seconds) const {
    for (int64_t tenths = 0; tenths < seconds * 10; ++tenths) {
      if (Stopping()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return !Stopping();
  }

  void Say(const std::string& line) const {
    if (output.line) output.line(line);
  }

  Result<client::DeviceApiClient> Client() const {
    if (!identity) {
      return MakeError(ErrorCode::kNotFound,
                       "this device has no identity yet: run `airlock-agent enroll` first");
    }
    client::DeviceApiOptions options;
    options.server = config.server;
    options.app_id = config.app;
    return client::DeviceApiClient::Create(*identity, options);
  }

  // Queues a report event (never fails the cycle: a full or broken queue is said, not fatal).
  void Report(const std::string& version, const std::string& kind, const std::string& reason = "",
              const std::string& detail = "") {
    client::NewReportEvent e{version, kind, reason, detail, UnixNow()};
    if (auto queued = reports.Enqueue(e); !queued) {
      Say("cannot queue a report: " + queued.error().ToString());
    }
  }

  void Flush() {
    auto c = Client();
    if (!c) return;
    if (auto sent = reports.Flush(*c); !sent) Say("reports stay queued: " + sent.error().message());
  }

  // Reports the refusal and sends the queue at once (the server learns of an attack in this
  // cycle, not at the next poll); what cannot be sent stays queued.
  UpdateOutcome Refuse(const std::string& version, const std::string& reason,
                       const std::string& message) {
    Report(version, "failed", reason, message);
    Flush();
    return {UpdateOutcome::Kind::kRefused, "refused " + version + " (" + reason + "): " + message,
            reason};
  }
  // The same, for a check that transport can fail (UpdateOutcome::transient).
  UpdateOutcome RefuseTransient(const std::string& version, const std::string& reason,
                                const std::string& message) {
    UpdateOutcome refused = Refuse(version, reason, message);
    refused.transient = true;
    return refused;
  }

  // Runs the restart command (if any) with the release in its environment; its exit status is
  // reported, not fatal (the health confirmation decides). The child's environment is built here,
  // before it exists (between fork and exec only async-signal-safe calls are allowed, and setenv
  // is not), and posix_spawn starts it with an empty signal mask: the app must not inherit the
  // signals `run` holds (SIGTERM, SIGINT).
  void Restart(const InstallStatus& status) {
    if (config.restart_command.empty()) return;
    std::vector<std::string> entries;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view entry(*e);
      if (entry.starts_with("AIRLOCK_RELEASE=") || entry.starts_with("AIRLOCK_VERSION=")) continue;
      entries.emplace_back(entry);
    }
    entries.push_back("AIRLOCK_RELEASE=" + status.release);
    entries.push_back("AIRLOCK_VERSION=" +
                      (status.version.empty() ? config.builtin_version : status.version));
    std::vector<char*> envp;
    envp.reserve(entries.size() + 1);
    for (std::string& entry : entries) envp.push_back(entry.data());
    envp.push_back(nullptr);
    std::string shell = "sh", dash_c = "-c", command = config.restart_command;
    char* argv[] = {shell.data(), dash_c.data(), command.data(), nullptr};

    posix_spawnattr_t attr;
    ::posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    ::posix_spawnattr_setsigmask(&attr, &none);
    ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t pid = 0;
    const int spawned = ::posix_spawn(&pid, "/bin/sh", nullptr, &attr, argv, envp.data());
    ::posix_spawnattr_destroy(&attr);
    if (spawned != 0) {
      Say(std::string("cannot run the restart command: ") + std::strerror(spawned));
      return;
    }
    int wstatus = 0;
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
      Say(WIFEXITED(wstatus)
              ? "the restart command exited with status " + std::to_string(WEXITSTATUS(wstatus))
              : "the restart command was killed by signal " + std::to_string(WTERMSIG(wstatus)));
    }
  }

  // Waits for the confirmation of the release awaiting it, rolling back at its deadline.
  Result<UpdateOutcome> AwaitHealth(const std::string& release, const std::string& version) {
    for (;;) {
      AIRLOCK_ASSIGN_OR_RETURN(bool rolled_back, installer.CheckHealth());
      AIRLOCK_ASSIGN_OR_RETURN(InstallStatus s, installer.Status());
      if (rolled_back || (s.state != InstallState::kAwaitingHealth && s.release != release)) {
        const std::string reason =
            s.last_rollback_reason.empty() ? "health_timeout" : s.last_rollback_reason;
        // A rollback by another process was reported by it: `started` (crash_loop), `rollback`.
        if (rolled_back ||
            (reason != client::kReasonCrashLoop && reason != client::kReasonManual)) {
          Report(version, "rolled_back", reason);
        }
        Restart(s);
        Flush();
        return UpdateOutcome{UpdateOutcome::Kind::kRolledBack,
                             "rolled back " + version + " (" + reason + "); running " +
                                 (s.version.empty() ? "the built-in release" : s.version),
                             reason};
      }
      if (s.state != InstallState::kAwaitingHealth) {
        Report(version, "confirmed");
        Flush();
        return UpdateOutcome{UpdateOutcome::Kind::kInstalled,
                             "installed and confirmed " + version + " (release " + release + ")",
                             ""};
      }
      if (Stopping()) {
        return UpdateOutcome{UpdateOutcome::Kind::kAbandoned,
                             "stopped waiting for the confirmation of " + version + " (release " +
                                 release + "); the next start waits for it until its deadline",
                             ""};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // The trusted root's targets key that signed the bundle (its signature block names the key id;
  // the signature itself is checked by the installer).
  Result<crypto::PublicKey> BundleKey(const fs::path& bundle) {
    AIRLOCK_ASSIGN_OR_RETURN(bundle::BundleInfo info, bundle::InspectBundle(bundle, nullptr));
    return TargetsKey(info.signature.key_id, "bundle");
  }

  // The trusted root's targets key with this key id (what signed a bundle or a delta).
  Result<crypto::PublicKey> TargetsKey(const std::string& key_id, const std::string& what) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string root_text,
                             ReadTextFile(config.MetadataDir() / "root.json", 1 << 20));
    AIRLOCK_ASSIGN_OR_RETURN(auto root, metadata::ParseRoot(root_text));
    const auto role = root.signed_data.roles.find("targets");
    if (role != root.signed_data.roles.end()) {
      for (const std::string& id : role->second.keyids) {
        auto key = root.signed_data.keys.find(id);
        if (key != root.signed_data.keys.end() && key->second.public_key &&
            key->second.public_key->KeyId() == key_id) {
          return *key->second.public_key;
        }
      }
    }
    return MakeError(ErrorCode::kWrongKey, "the " + what + " is signed by key " + key_id +
                                               ", not by a targets key of the trusted root");
  }

  // A check, asked again (bounded) while the server answers key_pending: the device's content key
  // is being wrapped on the server's key-service threads and Retry-After says when to ask again.
  Result<CheckResult> CheckWaiting(client::DeviceApiClient& api, const std::string& installed) {
    client::CheckRequest request{installed, config.native_version, config.platform, config.channel};
    for (int attempt = 0;; ++attempt) {
      auto answer = api.Check(request);
      if (!answer) {
        if (api.last_error()) retry_after = api.last_error()->retry_after_seconds;
        return tl::unexpected(answer.error());
      }
      if (!answer->key_pending() || attempt >= kMaxKeyPendingRetries) return answer;
      Say("the server is still wrapping this device's key (key_pending): asking again in " +
          std::to_string(answer->retry_after_seconds) + " s (Retry-After)");
      if (!Pause(answer->retry_after_seconds)) return answer;
    }
  }

  // Stages `release` from the signed delta from the installed release, when the server names one
  // smaller than the bundle and the signed targets list it the same way. Returns whether it did;
  // any failure is reported (delta_refused, with why) and the caller installs the whole bundle.
  bool StageFromDelta(const CheckResult& check, client::Updater& updater,
                      const metadata::TargetFile& full, const std::string& release,
                      const std::string& installed, uint64_t floor, ByteSpan content_key);

  Result<UpdateOutcome> Update();
  Result<UpdateOutcome> UpdateOnce();
  // Switches to the staged `release`, restarts the app and waits for its confirmation.
  Result<UpdateOutcome> Activate(const std::string& release, const std::string& version);
};

bool Agent::Impl::StageFromDelta(const CheckResult& check, client::Updater& updater,
                                 const metadata::TargetFile& full, const std::string& release,
                                 const std::string& installed, uint64_t floor,
                                 ByteSpan content_key) {
  const std::string& version = check.version;
  const client::CheckDelta* delta = nullptr;
  for (const client::CheckDelta& d : check.deltas) {
    if (d.base_version == installed && d.target.length < full.length) delta = &d;
  }
  if (delta == nullptr || check.rollback) return false;
  auto refused = [&](const std::string& reason, const std::string& why) {
    Say("not using the delta from " + installed + " (" + reason + "): " + why +
        "; downloading the whole release");
    Report(version, "delta_refused", reason, why);
    return false;
  };
  // The delta as the targets role signed it, for this app, release and base.
  auto info = updater.GetTargetInfo(delta->target.name);
  if (!info) return refused("metadata_invalid", info.error().message());
  const auto signed_delta =
      bundle::ReadDeltaTargetCustom(info->custom.value_or(nlohmann::json::object()));
  auto sha = info->hashes.find("sha256");
  if (!signed_delta || signed_delta->app_id != config.app || signed_delta->version != version ||
      signed_delta->base_version != installed || sha == info->hashes.end() ||
      sha->second != delta->target.sha256 || info->length != delta->target.length) {
    return refused("metadata_invalid", "the server's delta " + delta->target.name +
                                           " is not signed as the delta from " + installed +
                                           " to " + version);
  }
  // A device whose installed files differ from their signed hashes never takes a delta.
  if (auto intact = installer.VerifyActive(); !intact) {
    return refused("installed_modified", intact.error().message());
  }
  std::error_code ec;
  const fs::path path = config.DownloadDir() / (sha->second + ".ald");
  client::DownloadOptions download;
  download.progress = output.progress;
  if (auto got = client::DownloadFile(delta->url, path, info->length, sha->second, download);
      !got) {
    return refused(DownloadReason(got.error()), got.error().message());
  }
  auto signature = bundle::ReadDeltaSignature(path);
  auto key = signature ? TargetsKey(signature->key_id, "delta")
                       : Result<crypto::PublicKey>(tl::unexpected(signature.error()));
  if (!key) {
    fs::remove(path, ec);
    return refused("signature_invalid", key.error().message());
  }
  auto staged = installer.StageDelta(release, version, floor, path, *key, content_key);
  fs::remove(path, ec);
  if (!staged) {
    return refused(std::string(client::StageFailureReason(staged.error())),
                   staged.error().message());
  }
  Say("patched " + installed + " to " + version + " with a " + std::to_string(info->length) +
      "-byte " + delta->method + " delta (the release is " + std::to_string(full.length) +
      " bytes)");
  return true;
}

// A transient refusal (a TUF file or the blob cut, reset, damaged or replayed on the way; the
// check's answer damaged) is tried again within the cycle: the whole cycle from the check, with
// every check as the first time, so nothing the failed attempt read is believed. A refusal of what
// verified (policy: wrong release or channel, downgrade, floor) or of a release marked failed is
// final at once. Over TLS a damaged record is a broken connection; over plain HTTP, or when an
// attacker sits in the path, the refusals are all reported, so the server still sees them.
Result<UpdateOutcome> Agent::Impl::Update() {
  for (int attempt = 1;; ++attempt) {
    AIRLOCK_ASSIGN_OR_RETURN(UpdateOutcome outcome, UpdateOnce());
    if (outcome.kind != UpdateOutcome::Kind::kRefused || !outcome.transient ||
        attempt >= kUpdateAttempts) {
      return outcome;
    }
    Say(outcome.message + "; trying again in " + std::to_string(attempt) + " s (attempt " +
        std::to_string(attempt + 1) + " of " + std::to_string(kUpdateAttempts) + ")");
    if (!Pause(attempt)) return outcome;
  }
}

Result<UpdateOutcome> Agent::Impl::UpdateOnce() {
  retry_after = 0;
  // A release left awaiting confirmation by an earlier run: keep waiting for it (or roll back).
  AIRLOCK_ASSIGN_OR_RETURN(InstallStatus status, installer.Status());
  if (status.state == InstallState::kAwaitingHealth) {
    Say("still waiting for the confirmation of " + status.version + " (release " + status.release +
        ")");
    return AwaitHealth(status.release, status.version);
  }
  Flush();
  const std::string installed = status.version.empty() ? config.builtin_version : status.version;
  AIRLOCK_ASSIGN_OR_RETURN(client::DeviceApiClient api, Client());
  AIRLOCK_ASSIGN_OR_RETURN(CheckResult check, CheckWaiting(api, installed));
  if (!check.update) {
    if (check.key_pending()) retry_after = check.retry_after_seconds;
    return UpdateOutcome{UpdateOutcome::Kind::kUpToDate,
                         "up to date on " + installed + " (" + check.reason + ")", ""};
  }
  const std::string& version = check.version;
  Say("offered " + version + " on channel " + check.channel);
  Report(version, "offered");

  // 1. The target as the pinned root's chain signed it.
  if (!fs::exists(config.MetadataDir() / "root.json")) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string root, ReadTextFile(config.trusted_root, 1 << 20));
    AIRLOCK_TRY(client::InitMetadataDir(config.MetadataDir(), AsBytes(root)));
  }
  client::HttpFetcher fetcher;
  client::UpdaterOptions tuf;
  tuf.metadata_dir = config.MetadataDir();
  tuf.metadata_base_url = config.server + "/tuf/" + config.app + "/";
  tuf.fetcher = &fetcher;
  AIRLOCK_ASSIGN_OR_RETURN(client::Updater updater, client::Updater::Create(tuf));
  if (auto refreshed = updater.Refresh(); !refreshed) {
    return RefuseTransient(version, MetadataReason(refreshed.error()),
                           "the update metadata did not verify: " + refreshed.error().message());
  }
  auto info = updater.GetTargetInfo(check.target.name);
  if (!info) {
    return RefuseTransient(version, MetadataReason(info.error()),
                           "target " + check.target.name + ": " + info.error().message());
  }
  auto sha = info->hashes.find("sha256");
  if (sha == info->hashes.end() || info->length != check.target.length ||
      sha->second != check.target.sha256) {
    return RefuseTransient(version, "hash_mismatch",
                           "the server's length or hash of " + check.target.name +
                               " differs from the signed metadata");
  }
  const std::string release = ReleaseId(version, sha->second);

  // 2. The signed release rules.
  auto rules = metadata::ReadReleaseRules(info->custom.value_or(nlohmann::json::object()));
  if (!rules) return Refuse(version, "signature_invalid", rules.error().message());
  if (rules->app_id != config.app || rules->version != version) {
    return Refuse(version, "wrong_release",
                  "the target is signed for app " + rules->app_id + " version " + rules->version +
                      ", not " + config.app + " " + version);
  }
  if (!rules->NamesChannel(check.channel)) {
    return Refuse(version, "wrong_channel",
                  "the release is not signed for channel " + check.channel);
  }
  const auto order = Compare(*Semver::Parse(version), *Semver::Parse(installed));
  if (order <= 0 && !(check.rollback && rules->rollback_allowed && order < 0)) {
    return Refuse(version, "downgrade_refused",
                  version + " is not newer than the installed " + installed +
                      " and not signed as a rollback target");
  }
  if (rules->security_floor < status.highest_floor) {
    return Refuse(version, "downgrade_refused",
                  "security floor " + std::to_string(rules->security_floor) +
                      " is below the highest seen (" + std::to_string(status.highest_floor) + ")");
  }
  for (const auto& failed : status.failed) {
    if (failed.id == release) {
      return UpdateOutcome{UpdateOutcome::Kind::kRefused,
                           "release " + release + " failed before (" + failed.reason +
                               ") and is never retried; staying on " + installed,
                           failed.reason};
    }
  }
  // The channel was rolled back to the release this device kept in its last-good slot (a signed
  // rollback target, floor checked above): switch back to that slot, verified when it was
  // installed, rather than refusing it as installed or downloading it again. The release left is
  // remembered as failed (server_rollback), as the operator withdrew it, and never retried.
  if (check.rollback && release == status.last_good_release) {
    AIRLOCK_ASSIGN_OR_RETURN(InstallStatus after,
                             installer.Rollback(client::kReasonServerRollback));
    Report(installed, "rolled_back", std::string(client::kReasonServerRollback));
    Restart(after);
    Flush();
    return UpdateOutcome{UpdateOutcome::Kind::kInstalled,
                         "switched back to " + version + " (release " + release +
                             "), the channel's signed rollback target; " + installed +
                             " is not retried",
                         ""};
  }
  if (check.encryption != "device") {
    return Refuse(version, "unsupported",
                  "the agent installs device-mode releases (encryption " + check.encryption + ")");
  }

  // 3. The content key (the bundle's and any delta's).
  auto content_key = crypto::UnwrapKey(identity->wrap_key, check.wrapped_key,
                                       bundle::ContentKeyAad(config.app, version));
  if (!content_key) {
    return RefuseTransient(version, "decrypt_failed",
                           "the wrapped content key does not open with this device's key");
  }
  std::error_code ec;
  fs::create_directories(config.DownloadDir(), ec);
  AIRLOCK_TRY(installer.ObserveSecurityFloor(rules->security_floor));
  if (StageFromDelta(check, updater, *info, release, installed, rules->security_floor,
                     *content_key)) {
    Report(version, "downloaded");
    Report(version, "verified");
    return Activate(release, version);
  }

  // 4. The blob, bounded by the signed length and hashed while it streams.
  const fs::path blob = config.DownloadDir() / (sha->second + ".alb");
  client::DownloadOptions download;
  download.progress = output.progress;
  if (auto got = client::DownloadFile(check.url, blob, info->length, sha->second, download); !got) {
    return RefuseTransient(version, DownloadReason(got.error()), got.error().message());
  }
  Report(version, "downloaded");

  // 5. The bundle's signature and files, the inactive slot.
  auto key = BundleKey(blob);
  if (!key) {
    fs::remove(blob, ec);
    AIRLOCK_TRY(installer.MarkFailed(release, version, "signature_invalid", key.error().message()));
    return Refuse(version, "signature_invalid", key.error().message());
  }
  auto staged = installer.Stage(release, version, rules->security_floor, blob, *key, *content_key);
  fs::remove(blob, ec);
  if (!staged) {
    const std::string reason(client::StageFailureReason(staged.error()));
    if (staged.error().code() != ErrorCode::kIo &&
        staged.error().code() != ErrorCode::kAlreadyExists) {
      AIRLOCK_TRY(installer.MarkFailed(release, version, reason, staged.error().message()));
    }
    return Refuse(version, reason, staged.error().message());
  }
  Report(version, "verified");
  return Activate(release, version);
}

Result<UpdateOutcome> Agent::Impl::Activate(const std::string& release,
                                            const std::string& version) {
  // 6. Switch, restart, wait for the confirmation.
  AIRLOCK_ASSIGN_OR_RETURN(InstallStatus active, installer.Activate(release));
  Report(version, "installed");
  Say("installed " + version + " as release " + release + "; waiting up to " +
      std::to_string(config.health_timeout_seconds) + " s for its confirmation");
  Restart(active);
  return AwaitHealth(release, version);
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::Agent(Agent&&) noexcept = default;
Agent& Agent::operator=(Agent&&) noexcept = default;
Agent::~Agent() = default;

Result<Agent> Agent::Open(AgentConfig config, AgentOutput output, OpenMode mode) {
  client::InstallerOptions options;
  options.wait_on_open = mode == OpenMode::kWait;
  options.health_timeout_seconds = config.health_timeout_seconds;
  options.crash_loop_limit = config.crash_loop_limit;
  options.builtin_dir = config.builtin_dir;
  options.app_id = config.app;
  AIRLOCK_ASSIGN_OR_RETURN(client::Installer installer,
                           client::Installer::Open(config.install_dir, options));
  AIRLOCK_ASSIGN_OR_RETURN(client::ReportQueue reports,
                           client::ReportQueue::Open(config.ReportQueuePath()));
  std::optional<client::DeviceIdentity> identity;
  auto loaded = client::LoadDeviceIdentity(config.IdentityDir());
  if (loaded) {
    identity = std::move(*loaded);
  } else if (loaded.error().code() != ErrorCode::kNotFound) {
    return tl::unexpected(loaded.error());
  }
  return Agent(
      std::make_unique<Impl>(Impl{std::move(config), std::move(output), std::move(installer),
                                  std::move(reports), std::move(identity), 0}));
}

Result<client::EnrollResult> Agent::Enroll() {
  if (!impl_->identity) {
    AIRLOCK_ASSIGN_OR_RETURN(auto created,
                             client::LoadOrCreateDeviceIdentity(impl_->config.IdentityDir()));
    impl_->identity = std::move(created);
  }
  AIRLOCK_ASSIGN_OR_RETURN(client::DeviceApiClient api, impl_->Client());
  return api.Enroll(impl_->config.enrollment_token, impl_->config.platform);
}

Result<CheckResult> Agent::Check() {
  AIRLOCK_ASSIGN_OR_RETURN(InstallStatus status, impl_->installer.Status());
  AIRLOCK_ASSIGN_OR_RETURN(client::DeviceApiClient api, impl_->Client());
  return impl_->CheckWaiting(
      api, status.version.empty() ? impl_->config.builtin_version : status.version);
}

Result<UpdateOutcome> Agent::Update() { return impl_->Update(); }

Result<InstallStatus> Agent::Confirm(const std::string& release_id) {
  return impl_->installer.Confirm(release_id);
}

Result<InstallStatus> Agent::Rollback() {
  AIRLOCK_ASSIGN_OR_RETURN(InstallStatus before, impl_->installer.Status());
  AIRLOCK_ASSIGN_OR_RETURN(InstallStatus after, impl_->installer.Rollback(client::kReasonManual));
  impl_->Report(before.version.empty() ? impl_->config.builtin_version : before.version,
                "rolled_back", std::string(client::kReasonManual));
  impl_->Restart(after);
  impl_->Flush();
  return after;
}

Result<StartOutcome> Agent::RecordStart() {
  AIRLOCK_ASSIGN_OR_RETURN(InstallStatus before, impl_->installer.Status());
  AIRLOCK_ASSIGN_OR_RETURN(bool rolled_back, impl_->installer.RecordStart());
  AIRLOCK_ASSIGN_OR_RETURN(InstallStatus after, impl_->installer.Status());
  const std::string running = after.version.empty()
                                  ? "the built-in release"
                                  : after.version + " (release " + after.release + ")";
  if (rolled_back) {
    const std::string starts = std::to_string(impl_->config.crash_loop_limit);
    impl_->Report(before.version, "rolled_back", std::string(client::kReasonCrashLoop),
                  "release " + after.last_rollback_from + ": " + starts +
                      " starts without a health confirmation");
    return StartOutcome{StartOutcome::Kind::kRolledBack,
                        "rolled back " + before.version + " (crash_loop): started " + starts +
                            " times without a confirmation; running " + running};
  }
  if (after.state == InstallState::kAwaitingHealth) {
    return StartOutcome{StartOutcome::Kind::kCounted,
                        "counted start " + std::to_string(after.start_count) + " of " +
                            std::to_string(impl_->config.crash_loop_limit) + " of release " +
                            after.release + " (" + after.version + "), awaiting its confirmation"};
  }
  return StartOutcome{StartOutcome::Kind::kNothingAwaits,
                      "nothing awaits confirmation; running " + running};
}

Result<InstallStatus> Agent::Status() { return impl_->installer.Status(); }

Result<uint64_t> Agent::FlushReports() {
  AIRLOCK_ASSIGN_OR_RETURN(client::DeviceApiClient api, impl_->Client());
  return impl_->reports.Flush(api);
}

int64_t Agent::retry_after_seconds() const { return impl_->retry_after; }

void Agent::SetStopRequested(std::function<bool()> stop_requested) {
  impl_->stop_requested = std::move(stop_requested);
}

const AgentConfig& Agent::config() const { return impl_->config; }

}  // namespace airlock::agent
