// The device agent: one object over the client library (src/client) for the commands of
// `airlock-agent --config FILE ...` (docs/operations/agent.md).
//
// An update cycle trusts nothing the server says until it verified it itself:
//   1. the check's answer names a target; the target's length, hashes and signed custom come from
//      TUF metadata verified from the pinned trusted root (the server's claim must match them);
//   2. the signed custom must name this app, the offered version and the channel it is served on;
//      the version must be newer than the installed one unless the targets key signed it as a
//      rollback target and the server offers it as a rollback; its security floor must not be
//      below the highest floor this device has seen;
//   3. the blob is downloaded (resumable, bounded by the signed length, hashed while streaming);
//   4. the content key is unwrapped with this device's X25519 key (a key wrapped for another device
//      fails here); the bundle's signature is checked under the trusted root's targets key and
//      every file hash while it is unpacked into an inactive slot (client/installer.h);
//   5. `current` is switched, the restart command runs, and the release must be confirmed
//      (`airlock-agent confirm --release ID`) before health_timeout, else it is rolled back and
//      never retried.
// Every step and refusal is reported to the server with a reason code, queued on disk while
// offline (client/report_queue.h).
#ifndef AIRLOCK_AGENT_AGENT_H_
#define AIRLOCK_AGENT_AGENT_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agent/agent_config.h"
#include "client/device_api_client.h"
#include "client/installer.h"
#include "common/result.h"

namespace airlock::agent {

struct UpdateOutcome {
  enum class Kind {
    kUpToDate,    // nothing newer for this device (or key_pending)
    kInstalled,   // a newer release installed and confirmed
    kRefused,     // an offered release failed a check; nothing installed
    kRolledBack,  // installed but not confirmed in time (or crash loop): back on the last good one
    kAbandoned,   // a wait given up at a stop request (SetStopRequested); the journal goes on
  };
  Kind kind = Kind::kUpToDate;
  std::string message;      // one line for the user
  std::string reason_code;  // kRefused / kRolledBack: the reported reason
  // kRefused only: the check that failed is one a broken connection or a damaged or replayed
  // reply can fail (metadata refresh, the check's target or wrapped key, the download), and
  // nothing was marked failed, so Update tries the cycle again (kUpdateAttempts).
  bool transient = false;
};

// Attempts of one Update when a refusal is transient (UpdateOutcome::transient): the first, then
// retries after 1 s and 2 s. Every refusal is reported, retried or not.
inline constexpr int kUpdateAttempts = 3;

// What `airlock-agent started` did (Agent::RecordStart).
struct StartOutcome {
  enum class Kind {
    kNothingAwaits,  // no release awaits confirmation: nothing counted, nothing changed
    kCounted,        // a start of the release awaiting confirmation was counted
    kRolledBack,     // its crash_loop_limit-th start: rolled back (crash_loop), report queued
  };
  Kind kind = Kind::kNothingAwaits;
  std::string message;  // one line for the user
};

// Output for the user: progress lines, and a download progress callback (bytes, total).
struct AgentOutput {
  std::function<void(const std::string&)> line;
  std::function<void(uint64_t, uint64_t)> progress;
};

class Agent {
 public:
  // Opens the installer (which recovers what a killed run left) and the report queue; loads the
  // device identity when one exists (Enroll creates it). kNoWait: does not wait while another
  // process (the daemon) holds the install directory's lock; that process recovers (for
  // RecordStart, on the app's start path).
  enum class OpenMode { kWait, kNoWait };
  [[nodiscard]] static Result<Agent> Open(AgentConfig config, AgentOutput output = {},
                                          OpenMode mode = OpenMode::kWait);
  Agent(Agent&&) noexcept;
  Agent& operator=(Agent&&) noexcept;
  ~Agent();

  // Creates the identity if needed and enrolls it (the enrollment token from the config).
  [[nodiscard]] Result<client::EnrollResult> Enroll();
  // The server's answer for the installed release (a claim: nothing verified).
  [[nodiscard]] Result<client::CheckResult> Check();
  // One whole cycle (see the top of this file). Errors are failures of the agent itself (no
  // identity, the journal); a refused or rolled-back release is an outcome, not an error.
  [[nodiscard]] Result<UpdateOutcome> Update();
  [[nodiscard]] Result<client::InstallStatus> Confirm(const std::string& release_id);
  [[nodiscard]] Result<client::InstallStatus> Rollback();
  // The app starts (its supervisor runs `airlock-agent started` first): counts a start of the
  // release awaiting confirmation; the crash_loop_limit-th rolls it back (crash_loop, remembered as
  // failed) so that the supervisor starts the last good release from `current`. The report is
  // queued, not sent: no network on the app's start path (a daemon waiting for the confirmation
  // sends it at once, else the next cycle). The restart command is not run: the caller is the
  // supervisor starting the app.
  [[nodiscard]] Result<StartOutcome> RecordStart();
  [[nodiscard]] Result<client::InstallStatus> Status();
  // Sends what the report queue holds (best effort; kIo when the server is unreachable).
  [[nodiscard]] Result<uint64_t> FlushReports();
  // Seconds the server asked to wait (429, key_pending) in the last cycle; 0 if none.
  int64_t retry_after_seconds() const;
  // For `run`: while stop_requested() is true, a cycle gives up its waits at once (for the
  // confirmation of a switched release, for the server's Retry-After on key_pending) instead of
  // finishing them; the steps that change the disk always finish. What was given up stays in the
  // journal: the next cycle (or start) waits for that confirmation again, until its deadline.
  void SetStopRequested(std::function<bool()> stop_requested);

  const AgentConfig& config() const;

 private:
  struct Impl;
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The error code that names what a refusal's reason code says failed (`airlock-agent update`'s error
// line and the library's outcome code): hash_mismatch -> kHashMismatch, downgrade_refused ->
// kRollback, metadata_expired -> kExpired, ...; a release that failed before -> kAlreadyExists.
ErrorCode RefusalCode(std::string_view reason);

// The release id the agent gives a release: "<version>-<first 16 hex digits of its sha256>".
std::string ReleaseId(const std::string& version, const std::string& sha256);

}  // namespace airlock::agent

#endif  // AIRLOCK_AGENT_AGENT_H_
