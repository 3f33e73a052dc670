// The key usage log: an append-only, hash-chained record of every key operation, with checkpoints
// signed by an audit key (docs/design.md §5, issue 4).
//
// Storage. The log is its own SQLite file beside the vault: `AuditPathForVault("/v/keys.vault")` is
// "/v/keys.vault.audit". It is deliberately not a table of the vault file: restoring a vault backup
// must not roll the log back, an auditor can be given the log without the vault, and the vault's
// own schema and transactions stay independent of ours. Backends without a vault file (PKCS#11)
// name the log explicitly (the CLI's `--audit PATH` / `$AIRLOCK_AUDIT_LOG`).
//
// Chain. Record n (seq n, starting at 1) has
//     hash_n = SHA-256(hash_{n-1} || CanonicalRecordBytes(record_n))      hash_0 = 32 zero bytes
// where the canonical encoding covers every field including seq (see CanonicalRecordBytes). A
// checkpoint {seq, head hash, time, key id} is signed by the audit key over
// CanonicalCheckpointBytes; the audit public key is stored in the log (table audit_keys) so
// verification can check checkpoints, and can be pinned from outside (VerifyOptions::trusted_keys).
//
// What Verify() detects, and what it cannot (docs/operations/audit.md says the same):
//   * an edited field of any record, a deleted record, two records swapped or reordered, a record
//     inserted with a wrong hash: kHashMismatch at the first seq whose hash or link does not hold;
//   * a whole chain rewritten with recomputed hashes (the hash is keyless): kHashMismatch at the
//   first
//     record covered by the first checkpoint whose signed head no longer matches;
//   * a forged or altered checkpoint: kBadSignature at the checkpoint's seq; one signed by a key
//   that is
//     not recorded (or not pinned): kWrongKey;
//   * records deleted from the tail up to a checkpoint's seq: kTruncated at (last seq + 1);
//   * records appended or deleted AFTER the last checkpoint, by someone who recomputes hashes,
//   cannot be
//     told from honest ones by the log alone; pass an externally kept head
//     (VerifyOptions::expect_head, `airlock audit verify --expect-head SEQ:HASH`) to catch that.
//     Deleting every checkpoint too is likewise only caught by a pinned head or a pinned minimum
//     checkpoint count.
//
// Thread-safety: an AuditLog is not thread-safe; use one per thread. Several processes may append
// to the same file at once: each Append is one IMMEDIATE transaction (SQLite locks; busy timeout 5
// s).
#ifndef AIRLOCK_AUDIT_AUDIT_LOG_H_
#define AIRLOCK_AUDIT_AUDIT_LOG_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"

struct sqlite3;

namespace airlock::audit {

// "<vault_path>.audit". (keys::AuditPathForVaultUri does the same for a key/vault URI.)
std::filesystem::path AuditPathForVault(const std::filesystem::path& vault_path);

enum class UsageResult { kOk, kDenied, kFailed };
std::string_view UsageResultName(UsageResult result);         // "ok", "denied", "failed"
Result<UsageResult> ParseUsageResult(std::string_view name);  // kInvalidArgument otherwise

// Bounds on every text field of a record (kLimitExceeded beyond them).
inline constexpr size_t kMaxAuditFieldSize = 1024;
inline constexpr size_t kMaxAuditDetailsSize = 4096;

// One key operation. Operations are lower-case words; the vault uses: create, sign, unwrap, derive,
// export, rotate, suspend, resume, retire, revoke, compromised, delete, backup, restore, init;
// access control adds auth (a token/TOTP check) and principal changes; the log itself adds
// checkpoint events only in the checkpoints table, never as records.
struct UsageRecord {
  int64_t seq = 0;        // assigned by Append (ignored on input)
  int64_t time = 0;       // unix seconds, UTC; 0 on input = "now" from the log's clock
  std::string actor;      // principal name or token name; required
  std::string key_id;     // TUF key id (hex) or backend id; may be empty (vault-wide operations)
  std::string key_name;   // vault name of the key
  std::string operation;  // required, see above
  std::string purpose;    // root, targets, snapshot, timestamp, content-wrap, capgo, audit, ...
  UsageResult result = UsageResult::kOk;
  std::string result_reason;  // why denied/failed (e.g. "key suspended", "bad TOTP"); empty when ok
  std::string source;         // "local" for the CLI; the peer address for the server
  std::string reason;         // why the actor did it (ticket, free text)
  std::string details;        // optional extra facts, e.g. "new_key_id=..."; free text
  // Filled when read back from the log (ignored on input): hex SHA-256 chain values.
  std::string prev_hash;
  std::string hash;
};

// The exact bytes hashed for a record: "airlock-audit-record-v1" 0x00, seq (u64 BE), time (u64 BE,
// two's complement), result (u8: 0 ok, 1 denied, 2 failed), then actor, key_id, key_name,
// operation, purpose, result_reason, source, reason, details each as u32 BE length + bytes.
Bytes CanonicalRecordBytes(const UsageRecord& record);
// SHA-256(prev_hash || CanonicalRecordBytes(record)), raw 32 bytes.
Bytes ChainHash(ByteSpan prev_hash, const UsageRecord& record);

struct Checkpoint {
  int64_t number = 0;     // 1, 2, 3, ... in the order written; 0 for checkpoints made before
  int64_t seq = 0;        // the last record covered (0 = empty log)
  std::string head_hash;  // hex hash of record `seq` (64 zeros for seq 0)
  int64_t time = 0;
  std::string key_id;  // TUF key id of the audit key
  Bytes signature;
};

// "airlock-audit-checkpoint-v2" 0x00, seq (u64 BE), raw head hash (32), time (u64 BE), key_id (u32
// BE length + bytes), number (u64 BE). Unnumbered checkpoints (number 0, made before numbering)
// sign the same without the number under "airlock-audit-checkpoint-v1".
Result<Bytes> CanonicalCheckpointBytes(const Checkpoint& checkpoint);

// Signs checkpoints. The key store will provide one for its "audit" purpose key; until then
// SignerFromPrivateKey wraps an in-memory key.
struct CheckpointSigner {
  crypto::PublicKey public_key;  // recorded in the log on first use
  std::function<Result<Bytes>(ByteSpan message)> sign;
};
CheckpointSigner SignerFromPrivateKey(crypto::PrivateKey key);

struct AuditOptions {
  // A signed checkpoint is written automatically after every `checkpoint_interval` records when a
  // signer is set (0: only on demand, by Checkpoint()).
  int64_t checkpoint_interval = 100;
  std::optional<CheckpointSigner> signer;
  // Unix seconds. Defaults to the system clock.
  std::function<int64_t()> clock;
};

struct AuditFilter {
  std::string key;               // matches key_name or key_id (exact); empty = any
  std::string actor;             // exact; empty = any
  std::string operation;         // exact; empty = any
  std::optional<int64_t> since;  // time >= since
  std::optional<int64_t> until;  // time < until
  std::optional<UsageResult> result;
  std::optional<int64_t> after_seq;  // seq > after_seq
  size_t limit = 100000;             // at most this many records, oldest first
};

struct VerifyOptions {
  // "expected head": record `seq` must exist and have hash `hash` (hex); a log shorter than that is
  // kTruncated, a different hash kHashMismatch. seq 0 means "the current head must be `hash`".
  std::optional<std::pair<int64_t, std::string>> expect_head;
  // When not empty, checkpoints must be signed by one of these keys (otherwise any key recorded in
  // the log's audit_keys table is accepted, which only proves internal consistency).
  std::vector<crypto::PublicKey> trusted_keys;
  // kTruncated when fewer checkpoints than this exist (catches deletion of every checkpoint).
  int64_t min_checkpoints = 0;
  // kTruncated when the highest numbered checkpoint is below this (the vault's anchored count:
  // catches deletion of the newest checkpoints).
  int64_t min_checkpoint_number = 0;
};

// The outcome of Verify(). `ok` false: `error` says why (kHashMismatch, kBadSignature, kWrongKey,
// kTruncated, kMalformed for an undecodable row) and `first_bad_seq` is the first record (or
// checkpoint) seq at fault.
struct VerifyReport {
  bool ok = true;
  std::optional<Error> error;
  int64_t first_bad_seq = 0;
  bool bad_checkpoint = false;  // the fault is in a checkpoint, not a record
  int64_t records = 0;          // records checked
  int64_t checkpoints = 0;      // checkpoints checked
  int64_t head_seq = 0;
  std::string head_hash;  // hex
  int64_t last_checkpoint_seq = 0;
  int64_t last_checkpoint_number = 0;
  // Returns {} when ok, else the error with "record N: " context.
  Result<void> ToResult() const;
};

enum class ReportPeriod { kDaily, kWeekly, kMonthly, kQuarterly };
std::string_view ReportPeriodName(ReportPeriod period);
Result<ReportPeriod> ParseReportPeriod(std::string_view name);  // kInvalidArgument otherwise
// 1, 7, 30, 91 days, in seconds.
int64_t ReportPeriodSeconds(ReportPeriod period);

// What the vault knows about a key's age, when it can tell (preferred over the log's records).
struct KeyAge {
  std::string key_id;
  std::string key_name;
  std::string purpose;
  int64_t created = 0;  // when the current key material was made (create or rotate)
  bool active = true;   // only active/suspended keys are considered for rotation
};

struct ReportOptions {
  ReportPeriod period = ReportPeriod::kDaily;
  std::optional<int64_t>
      end;  // the window is [end - period, end); default: now + 1 s (this second counts)
  // Maximum age per purpose in seconds; keys whose purpose is absent are never "due".
  std::map<std::string, int64_t> max_age;
  // Ages from the vault. When empty, ages are computed from the whole log: a key's age counts from
  // its latest successful create or rotate record, and keys whose latest successful lifecycle
  // record is retire, revoke, compromised or delete are not due.
  std::vector<KeyAge> key_ages;
};

struct KeyUsageSummary {
  std::string key_id;
  std::string key_name;
  std::string purpose;
  std::map<std::string, int64_t> operations;  // operation -> count (all results)
  std::map<std::string, int64_t> actors;      // actor -> count
  std::map<std::string, int64_t> sources;     // source -> count
  int64_t ok = 0, denied = 0, failed = 0;
  std::vector<UsageRecord> lifecycle_events;  // create/rotate/suspend/resume/retire/revoke/...
  std::vector<UsageRecord> failures;          // denied and failed records (at most 100)
};

struct RotationDue {
  std::string key_id;
  std::string key_name;
  std::string purpose;
  int64_t created = 0;
  int64_t age = 0;  // seconds at `end`
  int64_t max_age = 0;
};

struct UsageReport {
  ReportPeriod period = ReportPeriod::kDaily;
  int64_t start = 0, end = 0;
  int64_t total = 0, ok = 0, denied = 0, failed = 0;
  std::vector<KeyUsageSummary> keys;  // by key_name then key_id; vault-wide operations under key ""
  std::vector<RotationDue> rotation_due;
  std::vector<std::string> new_actors;   // actors first seen in this window
  std::vector<std::string> new_sources;  // sources first seen in this window
};

class AuditLog {
 public:
  // Opens `path`, creating the file and schema if missing (mode 0600). kIo if SQLite cannot open
  // it, kMalformed if it is not an audit log, kUnsupported for a newer schema version.
  static Result<AuditLog> Open(const std::filesystem::path& path, AuditOptions options = {});
  // Like Open but kNotFound when the file does not exist (readers: verify, log, report).
  static Result<AuditLog> OpenExisting(const std::filesystem::path& path,
                                       AuditOptions options = {});

  AuditLog(AuditLog&& other) noexcept;
  AuditLog& operator=(AuditLog&& other) noexcept;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  ~AuditLog();

  // Sets (or replaces) the checkpoint signer; its public key is recorded in the log.
  Result<void> SetSigner(CheckpointSigner signer);

  // Appends one record in a single durable transaction and returns its seq. kInvalidArgument if
  // actor or operation is empty, kLimitExceeded for an oversized field, kIo on a database failure.
  // Failed and denied attempts are appended like any other. Writes a checkpoint once
  // `checkpoint_interval` records have accumulated since the last one; if that fails the record
  // stays appended, the error is returned (with context), and the next Append tries the checkpoint
  // again.
  Result<int64_t> Append(UsageRecord record);

  // Signs and stores a checkpoint over the current head. kInvalidArgument without a signer.
  Result<Checkpoint> WriteCheckpoint();

  // Recomputes the whole chain and checks every checkpoint. An Error only for I/O problems;
  // tampering is reported in the VerifyReport.
  Result<VerifyReport> Verify(const VerifyOptions& options = {}) const;

  Result<std::vector<UsageRecord>> Query(const AuditFilter& filter) const;
  Result<std::vector<Checkpoint>> Checkpoints() const;
  // The highest checkpoint number (0 when none is numbered).
  Result<int64_t> CheckpointNumber() const;
  // The log's random id (hex), made with the log (or on the first writable open of an older log);
  // "" for an older log opened read-only. The vault keys the heads it seals by it.
  Result<std::string> LogId() const;
  // The last record's seq and hex hash ({0, 64 zeros} when empty).
  Result<std::pair<int64_t, std::string>> Head() const;

  Result<UsageReport> Report(const ReportOptions& options) const;

  int64_t Now() const;
  sqlite3* db() const;  // for tests that tamper with the file

 private:
  static Result<AuditLog> OpenImpl(const std::filesystem::path& path, AuditOptions options,
                                   bool create);
  struct Impl;
  explicit AuditLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock::audit

#endif  // AIRLOCK_AUDIT_AUDIT_LOG_H_
