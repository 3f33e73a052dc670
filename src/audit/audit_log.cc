#include "audit/audit_log.h"
#include "audit/audit_sqlite.h"
#include "sqlite/sqlite_util.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/sign.h"

namespace airlock::audit {

namespace {

constexpr std::string_view kRecordDomain = "airlock-audit-record-v1";
constexpr std::string_view kCheckpointDomain = "airlock-audit-checkpoint-v1";
constexpr std::string_view kNumberedCheckpointDomain = "airlock-audit-checkpoint-v2";
constexpr int kSchemaVersion = 1;

// The schema. The triggers make the log append-only for every honest writer (including a mistaken
// `sqlite3 file "DELETE ..."`); an attacker with write access can drop them, which is what the
// chain and the signed checkpoints are for.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  actor TEXT NOT NULL,
  key_id TEXT NOT NULL,
  key_name TEXT NOT NULL,
  operation TEXT NOT NULL,
  purpose TEXT NOT NULL,
  result INTEGER NOT NULL,
  result_reason TEXT NOT NULL,
  source TEXT NOT NULL,
  reason TEXT NOT NULL,
  details TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS records_time ON records (time);
CREATE INDEX IF NOT EXISTS records_key_name ON records (key_name);
CREATE INDEX IF NOT EXISTS records_key_id ON records (key_id);
CREATE INDEX IF NOT EXISTS records_actor ON records (actor);
CREATE TABLE IF NOT EXISTS checkpoints (
  id INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL,
  head_hash BLOB NOT NULL,
  time INTEGER NOT NULL,
  key_id TEXT NOT NULL,
  signature BLOB NOT NULL,
  number INTEGER);
CREATE TABLE IF NOT EXISTS audit_keys (
  key_id TEXT PRIMARY KEY,
  public_pem TEXT NOT NULL,
  added INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
)sql";

using sqlite::BindBlob;
using sqlite::BindText;
using sqlite::ColumnBlob;
using sqlite::ColumnText;
using sqlite::DbPtr;
using sqlite::StmtPtr;

using internal::kAuditDb;
using Transaction = sqlite::Transaction;  // BEGIN/COMMIT errors say "SQLite: ..."

int64_t SystemNow() { return static_cast<int64_t>(std::time(nullptr)); }

void AppendField(Bytes& out, std::string_view field) {
  AppendU32Be(out, static_cast<uint32_t>(field.size()));
  out.insert(out.end(), field.begin(), field.end());
}

Result<void> CheckField(std::string_view name, std::string_view value, size_t max) {
  if (value.size() > max) {
    return MakeError(ErrorCode::kLimitExceeded, "audit record field " + std::string(name) +
                                                    " over " + std::to_string(max) + " bytes");
  }
  return {};
}

const Bytes& ZeroHash() {
  static const Bytes zero(crypto::kSha256Size, 0);
  return zero;
}

constexpr const char* kRecordColumns =
    "seq, time, actor, key_id, key_name, operation, purpose, result, result_reason, source, "
    "reason, "
    "details, prev_hash, hash";

// Reads one row selected with kRecordColumns. `result_raw` gets the stored result integer (it may
// be out of range in a tampered file; the record then gets kFailed and the chain check catches it).
UsageRecord ReadRecord(sqlite3_stmt* s, int64_t* result_raw, Bytes* prev_hash, Bytes* hash) {
  UsageRecord r;
  r.seq = sqlite3_column_int64(s, 0);
  r.time = sqlite3_column_int64(s, 1);
  r.actor = ColumnText(s, 2);
  r.key_id = ColumnText(s, 3);
  r.key_name = ColumnText(s, 4);
  r.operation = ColumnText(s, 5);
  r.purpose = ColumnText(s, 6);
  int64_t raw = sqlite3_column_int64(s, 7);
  if (result_raw != nullptr) *result_raw = raw;
  r.result = raw == 0 ? UsageResult::kOk : raw == 1 ? UsageResult::kDenied : UsageResult::kFailed;
  r.result_reason = ColumnText(s, 8);
  r.source = ColumnText(s, 9);
  r.reason = ColumnText(s, 10);
  r.details = ColumnText(s, 11);
  Bytes prev = ColumnBlob(s, 12);
  Bytes h = ColumnBlob(s, 13);
  r.prev_hash = HexEncode(prev);
  r.hash = HexEncode(h);
  if (prev_hash != nullptr) *prev_hash = std::move(prev);
  if (hash != nullptr) *hash = std::move(h);
  return r;
}

}  // namespace

std::filesystem::path AuditPathForVault(const std::filesystem::path& vault_path) {
  std::filesystem::path p = vault_path;
  p += ".audit";
  return p;
}

std::string_view UsageResultName(UsageResult result) {
  switch (result) {
    case UsageResult::kOk:
      return "ok";
    case UsageResult::kDenied:
      return "denied";
    case UsageResult::kFailed:
      return "failed";
  }
  return "failed";
}

Result<UsageResult> ParseUsageResult(std::string_view name) {
  if (name == "ok") return UsageResult::kOk;
  if (name == "denied") return UsageResult::kDenied;
  if (name == "failed") return UsageResult::kFailed;
  return MakeError(ErrorCode::kInvalidArgument, "result must be ok, denied or failed, not '" +
                                                    std::string(name.substr(0, 32)) + "'");
}

Bytes CanonicalRecordBytes(const UsageRecord& r) {
  Bytes out(kRecordDomain.begin(), kRecordDomain.end());
  out.push_back(0);
  AppendU64Be(out, static_cast<uint64_t>(r.seq));
  AppendU64Be(out, static_cast<uint64_t>(r.time));
  out.push_back(static_cast<uint8_t>(r.result));
  for (const std::string* field : {&r.actor, &r.key_id, &r.key_name, &r.operation, &r.purpose,
                                   &r.result_reason, &r.source, &r.reason, &r.details}) {
    AppendField(out, *field);
  }
  return out;
}

Bytes ChainHash(ByteSpan prev_hash, const UsageRecord& record) {
  crypto::Hasher h = crypto::Hasher::Sha256();
  h.Update(prev_hash);
  h.Update(CanonicalRecordBytes(record));
  return h.Finish();
}

Result<Bytes> CanonicalCheckpointBytes(const Checkpoint& c) {
  AIRLOCK_ASSIGN_OR_RETURN(Bytes head, HexDecode(c.head_hash));
  if (head.size() != crypto::kSha256Size) {
    return MakeError(ErrorCode::kMalformed, "checkpoint head hash is not 32 bytes");
  }
  const std::string_view domain = c.number > 0 ? kNumberedCheckpointDomain : kCheckpointDomain;
  Bytes out(domain.begin(), domain.end());
  out.push_back(0);
  AppendU64Be(out, static_cast<uint64_t>(c.seq));
  out.insert(out.end(), head.begin(), head.end());
  AppendU64Be(out, static_cast<uint64_t>(c.time));
  AppendField(out, c.key_id);
  if (c.number > 0) AppendU64Be(out, static_cast<uint64_t>(c.number));
  return out;
}

CheckpointSigner SignerFromPrivateKey(crypto::PrivateKey key) {
  crypto::PublicKey pub = key.Public();
  auto shared = std::make_shared<crypto::PrivateKey>(std::move(key));
  return CheckpointSigner{std::move(pub),
                          [shared](ByteSpan message) { return crypto::Sign(*shared, message); }};
}

Result<void> VerifyReport::ToResult() const {
  if (ok || !error) return {};
  std::string where = bad_checkpoint ? "checkpoint at seq " : "record ";
  return tl::unexpected(error->WithContext(where + std::to_string(first_bad_seq)));
}

struct AuditLog::Impl {
  DbPtr db;
  AuditOptions options;
};

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditLog::AuditLog(AuditLog&& other) noexcept = default;
AuditLog& AuditLog::operator=(AuditLog&& other) noexcept = default;
AuditLog::~AuditLog() = default;

sqlite3* AuditLog::db() const { return impl_->db.get(); }

int64_t AuditLog::Now() const {
  return impl_->options.clock ? impl_->options.clock() : SystemNow();
}

namespace {

Result<DbPtr> OpenDatabase(const std::filesystem::path& path, bool create) {
  // A read-only copy (an auditor's) can still be verified and queried.
  AIRLOCK_ASSIGN_OR_RETURN(
      DbPtr db, sqlite::OpenPrivateDb(path, create, "audit log", /*read_only_fallback=*/true));
  sqlite3_extended_result_codes(db.get(), 0);
  return db;
}

Result<bool> HasNumberColumn(sqlite3* db) {
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s,
      kAuditDb.Prepare(
          db, "SELECT count(*) FROM pragma_table_info('checkpoints') WHERE name = 'number'"));
  if (sqlite3_step(s.get()) != SQLITE_ROW) {
    return tl::unexpected(kAuditDb.DbError(db, "read schema"));
  }
  return sqlite3_column_int64(s.get(), 0) > 0;
}

// A random id for the log, so the vault can tell which log a sealed head belongs to.
Result<void> AddLogId(sqlite3* db) {
  AIRLOCK_ASSIGN_OR_RETURN(Bytes id, crypto::RandomBytes(16));
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s,
      kAuditDb.Prepare(db, "INSERT OR IGNORE INTO meta (name, value) VALUES ('log_id', ?)"));
  BindText(s.get(), 1, HexEncode(id));
  if (sqlite3_step(s.get()) != SQLITE_DONE) return tl::unexpected(kAuditDb.DbError(db, "log id"));
  return {};
}

Result<void> InitSchema(sqlite3* db, const std::filesystem::path& path) {
  // Is it ours? An empty database gets the schema; anything else must carry our meta row.
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr tables,
      kAuditDb.Prepare(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"));
  if (sqlite3_step(tables.get()) != SQLITE_ROW) {
    Error e = kAuditDb.DbError(db, "read schema");
    return MakeError(ErrorCode::kMalformed,
                     path.string() + " is not an audit log (" + e.message() + ")");
  }
  int64_t table_count = sqlite3_column_int64(tables.get(), 0);
  tables.reset();
  if (table_count == 0) {
    AIRLOCK_TRY(kAuditDb.Exec(db, "PRAGMA synchronous = FULL"));
    AIRLOCK_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
    AIRLOCK_TRY(kAuditDb.Exec(db, kSchema));
    AIRLOCK_TRY(kAuditDb.Exec(db, ("INSERT OR IGNORE INTO meta VALUES ('format', 'airlock-audit'), "
                                   "('version', '" +
                                   std::to_string(kSchemaVersion) + "')")
                                      .c_str()));
    AIRLOCK_TRY(AddLogId(db));
    AIRLOCK_TRY(tx.Commit());
    return {};
  }
  auto meta = kAuditDb.Prepare(db, "SELECT name, value FROM meta");
  if (!meta) return MakeError(ErrorCode::kMalformed, path.string() + " is not an audit log");
  std::string format, version;
  while (sqlite3_step(meta->get()) == SQLITE_ROW) {
    std::string name = ColumnText(meta->get(), 0);
    if (name == "format") format = ColumnText(meta->get(), 1);
    if (name == "version") version = ColumnText(meta->get(), 1);
  }
  if (format != "airlock-audit") {
    return MakeError(ErrorCode::kMalformed, path.string() + " is not an audit log");
  }
  if (version != std::to_string(kSchemaVersion)) {
    return MakeError(ErrorCode::kUnsupported,
                     "audit log " + path.string() + " has schema version " + version.substr(0, 16));
  }
  AIRLOCK_TRY(kAuditDb.Exec(db, "PRAGMA synchronous = FULL"));
  // Logs made before checkpoints were numbered, or before logs had an id, get them now; a read-only
  // copy cannot and is read as it is (unnumbered checkpoints, no id).
  AIRLOCK_ASSIGN_OR_RETURN(bool numbered, HasNumberColumn(db));
  if (!numbered) (void)kAuditDb.Exec(db, "ALTER TABLE checkpoints ADD COLUMN number INTEGER");
  (void)AddLogId(db);
  return {};
}

}  // namespace

Result<AuditLog> AuditLog::Open(const std::filesystem::path& path, AuditOptions options) {
  return OpenImpl(path, std::move(options), /*create=*/true);
}

Result<AuditLog> AuditLog::OpenExisting(const std::filesystem::path& path, AuditOptions options) {
  return OpenImpl(path, std::move(options), /*create=*/false);
}

Result<AuditLog> AuditLog::OpenImpl(const std::filesystem::path& path, AuditOptions options,
                                    bool create) {
  AIRLOCK_ASSIGN_OR_RETURN(DbPtr db, OpenDatabase(path, create));
  AIRLOCK_TRY(InitSchema(db.get(), path));
  auto impl = std::make_unique<Impl>();
  impl->db = std::move(db);
  std::optional<CheckpointSigner> signer = std::move(options.signer);
  options.signer.reset();
  impl->options = std::move(options);
  AuditLog log(std::move(impl));
  if (signer) AIRLOCK_TRY(log.SetSigner(std::move(*signer)));
  return log;
}

Result<void> AuditLog::SetSigner(CheckpointSigner signer) {
  if (!signer.sign) {
    return MakeError(ErrorCode::kInvalidArgument, "checkpoint signer has no sign function");
  }
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr insert,
      kAuditDb.Prepare(
          db, "INSERT OR IGNORE INTO audit_keys (key_id, public_pem, added) VALUES (?, ?, ?)"));
  BindText(insert.get(), 1, signer.public_key.KeyId());
  BindText(insert.get(), 2, signer.public_key.ToPem());
  sqlite3_bind_int64(insert.get(), 3, Now());
  if (sqlite3_step(insert.get()) != SQLITE_DONE) {
    return tl::unexpected(kAuditDb.DbError(db, "record audit key"));
  }
  impl_->options.signer = std::move(signer);
  return {};
}

Result<std::pair<int64_t, std::string>> AuditLog::Head() const {
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s, kAuditDb.Prepare(db, "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"));
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return std::make_pair(int64_t{0}, HexEncode(ZeroHash()));
  if (rc != SQLITE_ROW) return tl::unexpected(kAuditDb.DbError(db, "read head"));
  return std::make_pair(sqlite3_column_int64(s.get(), 0), HexEncode(ColumnBlob(s.get(), 1)));
}

Result<int64_t> AuditLog::Append(UsageRecord record) {
  if (record.actor.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "audit record without actor");
  }
  if (record.operation.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "audit record without operation");
  }
  AIRLOCK_TRY(CheckField("actor", record.actor, kMaxAuditFieldSize));
  AIRLOCK_TRY(CheckField("key_id", record.key_id, kMaxAuditFieldSize));
  AIRLOCK_TRY(CheckField("key_name", record.key_name, kMaxAuditFieldSize));
  AIRLOCK_TRY(CheckField("operation", record.operation, kMaxAuditFieldSize));
  AIRLOCK_TRY(CheckField("purpose", record.purpose, kMaxAuditFieldSize));
  AIRLOCK_TRY(CheckField("result_reason", record.result_reason, kMaxAuditFieldSize));
  AIRLOCK_TRY(CheckField("source", record.source, kMaxAuditFieldSize));
  AIRLOCK_TRY(CheckField("reason", record.reason, kMaxAuditFieldSize));
  AIRLOCK_TRY(CheckField("details", record.details, kMaxAuditDetailsSize));
  if (record.time == 0) record.time = Now();

  sqlite3* db = impl_->db.get();
  int64_t seq = 0;
  {
    AIRLOCK_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
    AIRLOCK_ASSIGN_OR_RETURN(
        StmtPtr head,
        kAuditDb.Prepare(db, "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"));
    Bytes prev = ZeroHash();
    int rc = sqlite3_step(head.get());
    if (rc == SQLITE_ROW) {
      seq = sqlite3_column_int64(head.get(), 0);
      prev = ColumnBlob(head.get(), 1);
    } else if (rc != SQLITE_DONE) {
      return tl::unexpected(kAuditDb.DbError(db, "read head"));
    }
    head.reset();
    record.seq = ++seq;
    Bytes hash = ChainHash(prev, record);
    AIRLOCK_ASSIGN_OR_RETURN(
        StmtPtr insert,
        kAuditDb.Prepare(
            db,
            "INSERT INTO records (seq, time, actor, key_id, key_name, operation, purpose, "
            "result, result_reason, source, reason, details, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    sqlite3_bind_int64(insert.get(), 1, record.seq);
    sqlite3_bind_int64(insert.get(), 2, record.time);
    BindText(insert.get(), 3, record.actor);
    BindText(insert.get(), 4, record.key_id);
    BindText(insert.get(), 5, record.key_name);
    BindText(insert.get(), 6, record.operation);
    BindText(insert.get(), 7, record.purpose);
    sqlite3_bind_int64(insert.get(), 8, static_cast<int64_t>(record.result));
    BindText(insert.get(), 9, record.result_reason);
    BindText(insert.get(), 10, record.source);
    BindText(insert.get(), 11, record.reason);
    BindText(insert.get(), 12, record.details);
    BindBlob(insert.get(), 13, prev);
    BindBlob(insert.get(), 14, hash);
    if (sqlite3_step(insert.get()) != SQLITE_DONE) {
      return tl::unexpected(kAuditDb.DbError(db, "append"));
    }
    insert.reset();
    AIRLOCK_TRY(tx.Commit());
  }

  // Automatic checkpoint once `interval` records have accumulated since the last one. Counting from
  // the last checkpoint (not seq % interval) means a failed checkpoint is retried by the next
  // Append.
  const AuditOptions& o = impl_->options;
  if (o.signer && o.checkpoint_interval > 0) {
    AIRLOCK_ASSIGN_OR_RETURN(StmtPtr last,
                             kAuditDb.Prepare(db, "SELECT max(seq) FROM checkpoints"));
    int64_t last_seq = 0;
    if (sqlite3_step(last.get()) == SQLITE_ROW) last_seq = sqlite3_column_int64(last.get(), 0);
    last.reset();
    if (seq - last_seq >= o.checkpoint_interval) {
      AIRLOCK_TRY_CTX(WriteCheckpoint(), "record " + std::to_string(seq) +
                                             " appended, but the automatic checkpoint failed");
    }
  }
  return seq;
}

Result<Checkpoint> AuditLog::WriteCheckpoint() {
  if (!impl_->options.signer) {
    return MakeError(ErrorCode::kInvalidArgument, "no audit key to sign a checkpoint with");
  }
  const CheckpointSigner& signer = *impl_->options.signer;
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
  AIRLOCK_ASSIGN_OR_RETURN(auto head, Head());
  Checkpoint c;
  c.seq = head.first;
  c.head_hash = head.second;
  c.time = Now();
  c.key_id = signer.public_key.KeyId();
  AIRLOCK_ASSIGN_OR_RETURN(c.number, CheckpointNumber());
  ++c.number;
  AIRLOCK_ASSIGN_OR_RETURN(Bytes message, CanonicalCheckpointBytes(c));
  AIRLOCK_ASSIGN_OR_RETURN(c.signature, signer.sign(message));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes head_raw, HexDecode(c.head_hash));
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr insert,
      kAuditDb.Prepare(db,
                       "INSERT INTO checkpoints (seq, head_hash, time, key_id, signature, number) "
                       "VALUES (?, ?, ?, ?, ?, ?)"));
  sqlite3_bind_int64(insert.get(), 1, c.seq);
  BindBlob(insert.get(), 2, head_raw);
  sqlite3_bind_int64(insert.get(), 3, c.time);
  BindText(insert.get(), 4, c.key_id);
  BindBlob(insert.get(), 5, c.signature);
  sqlite3_bind_int64(insert.get(), 6, c.number);
  if (sqlite3_step(insert.get()) != SQLITE_DONE) {
    return tl::unexpected(kAuditDb.DbError(db, "checkpoint"));
  }
  insert.reset();
  AIRLOCK_TRY(tx.Commit());
  return c;
}

Result<int64_t> AuditLog::CheckpointNumber() const {
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(bool numbered, HasNumberColumn(db));
  if (!numbered) return int64_t{0};
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s, kAuditDb.Prepare(db, "SELECT max(number) FROM checkpoints"));
  if (sqlite3_step(s.get()) != SQLITE_ROW) {
    return tl::unexpected(kAuditDb.DbError(db, "checkpoint number"));
  }
  return sqlite3_column_int64(s.get(), 0);  // NULL (none) reads as 0
}

Result<std::string> AuditLog::LogId() const {
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s,
                           kAuditDb.Prepare(db, "SELECT value FROM meta WHERE name = 'log_id'"));
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return std::string();
  if (rc != SQLITE_ROW) return tl::unexpected(kAuditDb.DbError(db, "log id"));
  return ColumnText(s.get(), 0);
}

Result<std::vector<Checkpoint>> AuditLog::Checkpoints() const {
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(bool numbered, HasNumberColumn(db));
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s,
      kAuditDb.Prepare(db, std::string("SELECT seq, head_hash, time, key_id, signature, ") +
                               (numbered ? "coalesce(number, 0)" : "0") +
                               " FROM checkpoints ORDER BY id"));
  std::vector<Checkpoint> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    Checkpoint c;
    c.seq = sqlite3_column_int64(s.get(), 0);
    c.head_hash = HexEncode(ColumnBlob(s.get(), 1));
    c.time = sqlite3_column_int64(s.get(), 2);
    c.key_id = ColumnText(s.get(), 3);
    c.signature = ColumnBlob(s.get(), 4);
    c.number = sqlite3_column_int64(s.get(), 5);
    out.push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(kAuditDb.DbError(db, "read checkpoints"));
  return out;
}

Result<VerifyReport> AuditLog::Verify(const VerifyOptions& options) const {
  sqlite3* db = impl_->db.get();
  VerifyReport report;
  auto fail = [&report](int64_t seq, ErrorCode code, std::string message, bool checkpoint = false) {
    report.ok = false;
    report.first_bad_seq = seq;
    report.bad_checkpoint = checkpoint;
    report.error = Error(code, std::move(message));
    return report;
  };

  // The audit keys: pinned ones, or else those recorded in the log.
  std::map<std::string, crypto::PublicKey> keys;
  if (!options.trusted_keys.empty()) {
    for (const crypto::PublicKey& k : options.trusted_keys) keys.emplace(k.KeyId(), k);
  } else {
    AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s,
                             kAuditDb.Prepare(db, "SELECT key_id, public_pem FROM audit_keys"));
    while (sqlite3_step(s.get()) == SQLITE_ROW) {
      auto key = crypto::PublicKey::FromPem(ColumnText(s.get(), 1));
      // An unparsable or mislabelled recorded key is simply not trusted; checkpoints naming it
      // fail.
      if (key && key->KeyId() == ColumnText(s.get(), 0))
        keys.emplace(key->KeyId(), std::move(*key));
    }
  }

  AIRLOCK_ASSIGN_OR_RETURN(std::vector<Checkpoint> checkpoints, Checkpoints());
  // Checkpoints are checked in seq order, as the walk reaches them, so the reported fault is the
  // earliest one. Each checkpoint's signature is checked before the records it covers are compared.
  std::stable_sort(checkpoints.begin(), checkpoints.end(),
                   [](const Checkpoint& a, const Checkpoint& b) { return a.seq < b.seq; });
  size_t next_checkpoint = 0;
  int64_t prev_checkpoint_seq = 0;
  int64_t next_number = 1;  // numbered checkpoints run 1, 2, 3, ... in seq order

  Bytes running = ZeroHash();
  int64_t expected_seq = 1;
  std::optional<std::string> hash_at_expected_head;

  // Checks every checkpoint with seq == `seq` against the running head `head` (hex).
  auto check_checkpoints_at = [&](int64_t seq,
                                  const std::string& head) -> std::optional<VerifyReport> {
    while (next_checkpoint < checkpoints.size() && checkpoints[next_checkpoint].seq <= seq) {
      const Checkpoint& c = checkpoints[next_checkpoint];
      if (c.seq < seq) {
        return fail(c.seq, ErrorCode::kMalformed, "checkpoint with an impossible seq", true);
      }
      if (c.number > 0 && c.number != next_number) {
        return fail(c.seq, ErrorCode::kTruncated,
                    "checkpoint " + std::to_string(next_number) + " is missing (the next one is " +
                        std::to_string(c.number) + ", checkpoints deleted)",
                    true);
      }
      auto key = keys.find(c.key_id);
      if (key == keys.end()) {
        return fail(c.seq, ErrorCode::kWrongKey,
                    "checkpoint signed by key " + c.key_id.substr(0, 64) +
                        (options.trusted_keys.empty() ? ", which is not a recorded audit key"
                                                      : ", which is not a trusted audit key"),
                    true);
      }
      auto message = CanonicalCheckpointBytes(c);
      if (!message || !crypto::Verify(key->second, *message, c.signature)) {
        return fail(c.seq, ErrorCode::kBadSignature, "checkpoint signature does not verify", true);
      }
      if (c.head_hash != head) {
        // The records themselves chain correctly (or we would have stopped earlier), so the chain
        // was rewritten with recomputed hashes somewhere after the previous good checkpoint.
        return fail(
            prev_checkpoint_seq + 1, ErrorCode::kHashMismatch,
            "records " + std::to_string(prev_checkpoint_seq + 1) + ".." + std::to_string(c.seq) +
                " do not match the head signed by the checkpoint at seq " + std::to_string(c.seq));
      }
      ++report.checkpoints;
      if (c.number > 0) report.last_checkpoint_number = next_number++;
      report.last_checkpoint_seq = c.seq;
      prev_checkpoint_seq = c.seq;
      ++next_checkpoint;
    }
    return std::nullopt;
  };

  if (auto bad = check_checkpoints_at(0, HexEncode(ZeroHash()))) return *bad;

  std::string sql = std::string("SELECT ") + kRecordColumns + " FROM records ORDER BY seq";
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s, kAuditDb.Prepare(db, sql));
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    int64_t result_raw = 0;
    Bytes stored_prev, stored_hash;
    UsageRecord r = ReadRecord(s.get(), &result_raw, &stored_prev, &stored_hash);
    if (r.seq != expected_seq) {
      if (r.seq > expected_seq) {
        return fail(expected_seq, ErrorCode::kHashMismatch,
                    "record " + std::to_string(expected_seq) + " is missing (next is " +
                        std::to_string(r.seq) + ")");
      }
      return fail(r.seq, ErrorCode::kHashMismatch, "record seq out of order");
    }
    if (!ConstantTimeEqual(stored_prev, running)) {
      return fail(
          r.seq, ErrorCode::kHashMismatch,
          "record does not link to the previous record's hash (deleted, inserted or reordered)");
    }
    if (result_raw < 0 || result_raw > 2) {
      return fail(r.seq, ErrorCode::kHashMismatch, "record has an invalid result value");
    }
    Bytes computed = ChainHash(running, r);
    if (!ConstantTimeEqual(computed, stored_hash)) {
      return fail(r.seq, ErrorCode::kHashMismatch,
                  "record content does not match its hash (edited)");
    }
    running = std::move(computed);
    ++report.records;
    report.head_seq = r.seq;
    std::string head_hex = HexEncode(running);
    if (options.expect_head && options.expect_head->first == r.seq)
      hash_at_expected_head = head_hex;
    // Checkpoints for seqs we skipped cannot exist (seqs are contiguous here); check those at
    // r.seq.
    if (auto bad = check_checkpoints_at(r.seq, head_hex)) return *bad;
    ++expected_seq;
  }
  if (rc != SQLITE_DONE) return tl::unexpected(kAuditDb.DbError(db, "read records"));
  report.head_hash = HexEncode(running);

  if (next_checkpoint < checkpoints.size()) {
    // A checkpoint covers records that are no longer there: the tail was cut.
    const Checkpoint& c = checkpoints[next_checkpoint];
    return fail(report.head_seq + 1, ErrorCode::kTruncated,
                "the log ends at seq " + std::to_string(report.head_seq) +
                    " but a checkpoint covers seq " + std::to_string(c.seq) + " (records deleted)");
  }
  if (options.expect_head) {
    int64_t want_seq =
        options.expect_head->first == 0 ? report.head_seq : options.expect_head->first;
    std::string want = options.expect_head->second;
    std::transform(want.begin(), want.end(), want.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string got = options.expect_head->first == 0
                          ? report.head_hash
                          : hash_at_expected_head.value_or(std::string());
    if (want_seq > report.head_seq) {
      return fail(report.head_seq + 1, ErrorCode::kTruncated,
                  "the log ends at seq " + std::to_string(report.head_seq) +
                      " before the expected head " + std::to_string(want_seq) +
                      " (records cut off its end)");
    }
    if (got != want) {
      return fail(want_seq, ErrorCode::kHashMismatch,
                  "the hash at seq " + std::to_string(want_seq) + " is not the expected head");
    }
  }
  if (report.checkpoints < options.min_checkpoints) {
    return fail(report.head_seq + 1, ErrorCode::kTruncated,
                "only " + std::to_string(report.checkpoints) + " checkpoints, expected at least " +
                    std::to_string(options.min_checkpoints));
  }
  if (report.last_checkpoint_number < options.min_checkpoint_number) {
    return fail(report.head_seq + 1, ErrorCode::kTruncated,
                "the last checkpoint is number " + std::to_string(report.last_checkpoint_number) +
                    " but checkpoint " + std::to_string(options.min_checkpoint_number) +
                    " was written (checkpoints deleted)");
  }
  return report;
}

Result<std::vector<UsageRecord>> AuditLog::Query(const AuditFilter& filter) const {
  sqlite3* db = impl_->db.get();
  std::string sql = std::string("SELECT ") + kRecordColumns + " FROM records WHERE 1";
  if (!filter.key.empty()) sql += " AND (key_name = ?1 OR key_id = ?1)";
  if (!filter.actor.empty()) sql += " AND actor = ?2";
  if (!filter.operation.empty()) sql += " AND operation = ?3";
  if (filter.since) sql += " AND time >= ?4";
  if (filter.until) sql += " AND time < ?5";
  if (filter.result) sql += " AND result = ?6";
  if (filter.after_seq) sql += " AND seq > ?7";
  sql += " ORDER BY seq LIMIT ?8";
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s, kAuditDb.Prepare(db, sql));
  if (!filter.key.empty()) BindText(s.get(), 1, filter.key);
  if (!filter.actor.empty()) BindText(s.get(), 2, filter.actor);
  if (!filter.operation.empty()) BindText(s.get(), 3, filter.operation);
  if (filter.since) sqlite3_bind_int64(s.get(), 4, *filter.since);
  if (filter.until) sqlite3_bind_int64(s.get(), 5, *filter.until);
  if (filter.result) sqlite3_bind_int64(s.get(), 6, static_cast<int64_t>(*filter.result));
  if (filter.after_seq) sqlite3_bind_int64(s.get(), 7, *filter.after_seq);
  sqlite3_bind_int64(s.get(), 8, static_cast<int64_t>(std::min<size_t>(filter.limit, INT64_MAX)));
  std::vector<UsageRecord> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    out.push_back(ReadRecord(s.get(), nullptr, nullptr, nullptr));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(kAuditDb.DbError(db, "query"));
  return out;
}

}  // namespace airlock::audit
