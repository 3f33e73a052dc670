#include "audit/audit_log.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "common/file.h"
#include "crypto/hash.h"

namespace airlock::audit {
namespace {

constexpr int64_t kT0 = 1'700'000'000;  // 2023-11-14T22:13:20Z

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    path_ = dir_->path() / "keys.vault.audit";
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
    ASSERT_TRUE(key);
    audit_key_pem_ = key->ToPem();
  }

  AuditOptions Options(int64_t interval = 0, bool with_signer = true) {
    AuditOptions o;
    o.checkpoint_interval = interval;
    o.clock = [this] { return now_; };
    if (with_signer) o.signer = SignerFromPrivateKey(*crypto::PrivateKey::FromPem(audit_key_pem_));
    return o;
  }

  AuditLog OpenLog(int64_t interval = 0, bool with_signer = true) {
    auto log = AuditLog::Open(path_, Options(interval, with_signer));
    EXPECT_TRUE(log) << log.error().ToString();
    return std::move(*log);
  }

  static UsageRecord Record(std::string actor, std::string key, std::string op,
                            UsageResult result = UsageResult::kOk) {
    UsageRecord r;
    r.actor = std::move(actor);
    r.key_name = key;
    r.key_id = key.empty() ? "" : "id-" + key;
    r.operation = std::move(op);
    r.purpose = "targets";
    r.result = result;
    r.source = "local";
    return r;
  }

  // Appends n records (seq 1..n), advancing the clock a minute each.
  void Fill(AuditLog& log, int n) {
    for (int i = 0; i < n; ++i) {
      now_ += 60;
      auto seq = log.Append(Record(i % 2 ? "alice" : "bob", "release", "sign"));
      ASSERT_TRUE(seq) << seq.error().ToString();
    }
  }

  // The attacker's view: raw SQL on the file, with the append-only triggers dropped first.
  static void Tamper(AuditLog& log, const std::string& sql) {
    std::string all =
        "DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete; "
        "DROP TRIGGER IF EXISTS checkpoints_no_update; DROP TRIGGER IF EXISTS "
        "checkpoints_no_delete; " +
        sql;
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(log.db(), all.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << (err ? err : "");
  }

  // Rewrites every record from `from` on with hashes recomputed, as an attacker who knows the
  // (keyless) chain function can.
  static void RecomputeChain(AuditLog& log) {
    Tamper(log, "");
    auto records = log.Query(AuditFilter{});
    ASSERT_TRUE(records);
    Bytes prev(crypto::kSha256Size, 0);
    for (const UsageRecord& r : *records) {
      Bytes hash = ChainHash(prev, r);
      sqlite3_stmt* s = nullptr;
      ASSERT_EQ(
          sqlite3_prepare_v2(log.db(), "UPDATE records SET prev_hash = ?, hash = ? WHERE seq = ?",
                             -1, &s, nullptr),
          SQLITE_OK);
      sqlite3_bind_blob(s, 1, prev.data(), static_cast<int>(prev.size()), SQLITE_TRANSIENT);
      sqlite3_bind_blob(s, 2, hash.data(), static_cast<int>(hash.size()), SQLITE_TRANSIENT);
      sqlite3_bind_int64(s, 3, r.seq);
      ASSERT_EQ(sqlite3_step(s), SQLITE_DONE);
      sqlite3_finalize(s);
      prev = hash;
    }
  }

  static void ExpectBad(const AuditLog& log, ErrorCode code, int64_t seq, bool checkpoint = false,
                        const VerifyOptions& options = {}) {
    auto report = log.Verify(options);
    ASSERT_TRUE(report) << report.error().ToString();
    ASSERT_FALSE(report->ok) << "tampering not detected";
    ASSERT_TRUE(report->error);
    EXPECT_EQ(report->error->code(), code) << report->error->ToString();
    EXPECT_EQ(report->first_bad_seq, seq) << report->error->ToString();
    EXPECT_EQ(report->bad_checkpoint, checkpoint);
    auto r = report->ToResult();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), code);
  }

  static void ExpectGood(const AuditLog& log, const VerifyOptions& options = {}) {
    auto report = log.Verify(options);
    ASSERT_TRUE(report) << report.error().ToString();
    EXPECT_TRUE(report->ok) << report->error->ToString() << " at " << report->first_bad_seq;
  }

  std::optional<ScopedTempDir> dir_;
  std::filesystem::path path_;
  std::string audit_key_pem_;
  int64_t now_ = kT0;
};

TEST_F(AuditTest, AppendAssignsSequentialSeqsAndLinksHashes) {
  AuditLog log = OpenLog();
  Fill(log, 3);
  auto records = log.Query(AuditFilter{});
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 3u);
  EXPECT_EQ((*records)[0].seq, 1);
  EXPECT_EQ((*records)[0].prev_hash, std::string(64, '0'));
  EXPECT_EQ((*records)[1].prev_hash, (*records)[0].hash);
  EXPECT_EQ((*records)[2].prev_hash, (*records)[1].hash);
  EXPECT_EQ((*records)[0].time, kT0 + 60);  // time 0 on input = the log's clock
  Bytes first = ChainHash(Bytes(32, 0), (*records)[0]);
  EXPECT_EQ(HexEncode(first), (*records)[0].hash);
  auto head = log.Head();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->first, 3);
  EXPECT_EQ(head->second, (*records)[2].hash);
  ExpectGood(log);
}

TEST_F(AuditTest, CanonicalEncodingCoversEveryField) {
  UsageRecord base = Record("alice", "k", "sign");
  base.seq = 7;
  base.time = 5;
  Bytes h = ChainHash(Bytes(32, 0), base);
  std::vector<std::function<void(UsageRecord&)>> edits = {
      [](UsageRecord& r) { r.seq = 8; },
      [](UsageRecord& r) { r.time = 6; },
      [](UsageRecord& r) { r.actor = "alicf"; },
      [](UsageRecord& r) { r.key_id += "x"; },
      [](UsageRecord& r) { r.key_name += "x"; },
      [](UsageRecord& r) { r.operation = "unwrap"; },
      [](UsageRecord& r) { r.purpose = "root"; },
      [](UsageRecord& r) { r.result = UsageResult::kDenied; },
      [](UsageRecord& r) { r.result_reason = "x"; },
      [](UsageRecord& r) { r.source = "10.0.0.1"; },
      [](UsageRecord& r) { r.reason = "x"; },
      [](UsageRecord& r) { r.details = "x"; },
      // Moving bytes between adjacent fields changes the encoding too (length-prefixed).
      [](UsageRecord& r) {
        r.actor = "alic";
        r.key_id = "e" + r.key_id;
      },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    UsageRecord r = base;
    edits[i](r);
    EXPECT_NE(ChainHash(Bytes(32, 0), r), h) << "edit " << i;
  }
  EXPECT_NE(ChainHash(Bytes(32, 1), base), h);
}

TEST_F(AuditTest, AppendRejectsIncompleteAndOversizedRecords) {
  AuditLog log = OpenLog();
  UsageRecord r = Record("", "k", "sign");
  EXPECT_EQ(log.Append(r).error().code(), ErrorCode::kInvalidArgument);
  r = Record("alice", "k", "");
  EXPECT_EQ(log.Append(r).error().code(), ErrorCode::kInvalidArgument);
  r = Record("alice", "k", "sign");
  r.reason = std::string(kMaxAuditFieldSize + 1, 'x');
  EXPECT_EQ(log.Append(r).error().code(), ErrorCode::kLimitExceeded);
  r.reason.clear();
  r.details = std::string(kMaxAuditDetailsSize + 1, 'x');
  EXPECT_EQ(log.Append(r).error().code(), ErrorCode::kLimitExceeded);
  r.details = std::string(kMaxAuditDetailsSize, 'x');
  EXPECT_TRUE(log.Append(r));
}

TEST_F(AuditTest, FailedAndDeniedAttemptsAreRecorded) {
  AuditLog log = OpenLog();
  UsageRecord r = Record("mallory", "release", "sign", UsageResult::kDenied);
  r.result_reason = "role read-only may not key.sign";
  r.source = "203.0.113.9";
  ASSERT_TRUE(log.Append(r));
  ASSERT_TRUE(log.Append(Record("alice", "release", "sign", UsageResult::kFailed)));
  AuditFilter f;
  f.result = UsageResult::kDenied;
  auto denied = log.Query(f);
  ASSERT_TRUE(denied);
  ASSERT_EQ(denied->size(), 1u);
  EXPECT_EQ((*denied)[0].actor, "mallory");
  EXPECT_EQ((*denied)[0].result_reason, "role read-only may not key.sign");
  EXPECT_EQ((*denied)[0].source, "203.0.113.9");
  ExpectGood(log);
}

TEST_F(AuditTest, HonestWritersCannotUpdateOrDeleteRecords) {
  AuditLog log = OpenLog();
  Fill(log, 2);
  ASSERT_TRUE(log.WriteCheckpoint());
  EXPECT_NE(sqlite3_exec(log.db(), "UPDATE records SET actor = 'x' WHERE seq = 1", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  EXPECT_NE(sqlite3_exec(log.db(), "DELETE FROM records WHERE seq = 2", nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_NE(sqlite3_exec(log.db(), "DELETE FROM checkpoints", nullptr, nullptr, nullptr),
            SQLITE_OK);
  ExpectGood(log);
}

TEST_F(AuditTest, VerifyCatchesAnEditedField) {
  AuditLog log = OpenLog();
  Fill(log, 6);
  Tamper(log, "UPDATE records SET actor = 'mallory' WHERE seq = 4");
  ExpectBad(log, ErrorCode::kHashMismatch, 4);
}

TEST_F(AuditTest, VerifyCatchesAnEditedResult) {
  AuditLog log = OpenLog();
  Fill(log, 3);
  ASSERT_TRUE(log.Append(Record("alice", "release", "sign", UsageResult::kDenied)));
  Tamper(log, "UPDATE records SET result = 0 WHERE seq = 4");
  ExpectBad(log, ErrorCode::kHashMismatch, 4);
}

TEST_F(AuditTest, VerifyCatchesAnOutOfRangeResult) {
  AuditLog log = OpenLog();
  Fill(log, 3);
  Tamper(log, "UPDATE records SET result = 7 WHERE seq = 2");
  ExpectBad(log, ErrorCode::kHashMismatch, 2);
}

TEST_F(AuditTest, VerifyCatchesADeletedRecord) {
  AuditLog log = OpenLog();
  Fill(log, 6);
  Tamper(log, "DELETE FROM records WHERE seq = 3");
  ExpectBad(log, ErrorCode::kHashMismatch, 3);
}

TEST_F(AuditTest, VerifyCatchesADeletedFirstRecord) {
  AuditLog log = OpenLog();
  Fill(log, 3);
  Tamper(log, "DELETE FROM records WHERE seq = 1");
  ExpectBad(log, ErrorCode::kHashMismatch, 1);
}

TEST_F(AuditTest, VerifyCatchesADeletedAndRenumberedRecord) {
  // Delete seq 3 and close the gap: record 4 becomes 3. Its seq is hashed and its link is wrong.
  AuditLog log = OpenLog();
  Fill(log, 6);
  Tamper(log, "DELETE FROM records WHERE seq = 3; UPDATE records SET seq = seq - 1 WHERE seq > 3;");
  ExpectBad(log, ErrorCode::kHashMismatch, 3);
}

TEST_F(AuditTest, VerifyCatchesTwoSwappedRecords) {
  AuditLog log = OpenLog();
  Fill(log, 6);
  ASSERT_TRUE(log.Append(Record("carol", "root", "rotate")));  // seq 7 differs from the others
  // Swap the whole contents (hashes included) of rows 2 and 7, keeping their seqs.
  Tamper(log,
         "CREATE TEMP TABLE t AS SELECT * FROM records WHERE seq IN (2, 7);"
         "UPDATE records SET (time, actor, key_id, key_name, operation, purpose, result, "
         "result_reason,"
         " source, reason, details, prev_hash, hash) = (SELECT time, actor, key_id, key_name, "
         "operation,"
         " purpose, result, result_reason, source, reason, details, prev_hash, hash FROM t"
         " WHERE t.seq = 9 - records.seq) WHERE seq IN (2, 7);");
  ExpectBad(log, ErrorCode::kHashMismatch, 2);
}

TEST_F(AuditTest, VerifyCatchesSwappedContentsWithRecomputedHashesAtTheCheckpoint) {
  // The strongest attacker without the audit key: reorders records and recomputes every hash. The
  // chain is consistent again, but the signed checkpoint at seq 4 names the old head.
  AuditLog log = OpenLog();
  Fill(log, 2);
  ASSERT_TRUE(log.WriteCheckpoint());  // covers 1..2
  Fill(log, 1);
  ASSERT_TRUE(log.Append(Record("carol", "root", "rotate")));  // seq 4
  ASSERT_TRUE(log.WriteCheckpoint());                          // covers 1..4
  Fill(log, 2);
  Tamper(
      log,
      "CREATE TEMP TABLE t AS SELECT * FROM records WHERE seq IN (3, 4);"
      "UPDATE records SET (actor, operation, key_name) = (SELECT actor, operation, key_name FROM t"
      " WHERE t.seq = 7 - records.seq) WHERE seq IN (3, 4);");
  RecomputeChain(log);
  ExpectBad(log, ErrorCode::kHashMismatch, 3);
}

TEST_F(AuditTest, VerifyCatchesAForgedInsertedRecord) {
  // Make room at seq 4 and insert a row whose hash is made up.
  AuditLog log = OpenLog();
  Fill(log, 6);
  Tamper(
      log,
      "UPDATE records SET seq = seq + 100 WHERE seq >= 4; UPDATE records SET seq = seq - 99 WHERE "
      "seq >= 104; INSERT INTO records VALUES (4, 1, 'mallory', 'id', 'release', 'sign', "
      "'targets', 0, '', 'local', '', '', zeroblob(32), zeroblob(32));");
  ExpectBad(log, ErrorCode::kHashMismatch, 4);
}

TEST_F(AuditTest, VerifyCatchesAnInsertedRecordWithACorrectHashAtTheNextRecord) {
  // An attacker who computes the forged row's hash correctly makes it link; the record after it
  // does not.
  AuditLog log = OpenLog();
  Fill(log, 6);
  auto records = log.Query(AuditFilter{});
  ASSERT_TRUE(records);
  UsageRecord forged = Record("mallory", "release", "sign");
  forged.seq = 4;
  forged.time = (*records)[2].time + 1;
  auto prev = HexDecode((*records)[2].hash);
  ASSERT_TRUE(prev);
  Bytes hash = ChainHash(*prev, forged);
  Tamper(log,
         "UPDATE records SET seq = seq + 100 WHERE seq >= 4; UPDATE records SET seq = seq - 99 "
         "WHERE seq >= 104; INSERT INTO records VALUES (4, " +
             std::to_string(forged.time) +
             ", 'mallory', 'id-release', 'release', 'sign', 'targets', 0, '', 'local', '', '', X'" +
             (*records)[2].hash + "', X'" + HexEncode(hash) + "');");
  ExpectBad(log, ErrorCode::kHashMismatch, 5);
}

TEST_F(AuditTest, VerifyCatchesARewrittenChainAtTheFirstCheckpointItBreaks) {
  AuditLog log = OpenLog(/*interval=*/3);
  Fill(log, 8);  // checkpoints at 3 and 6
  Tamper(log, "UPDATE records SET reason = 'nothing to see' WHERE seq = 5");
  RecomputeChain(log);
  // Records 1..3 still match the checkpoint at 3; the one at 6 fails, so the fault is in 4..6.
  ExpectBad(log, ErrorCode::kHashMismatch, 4);
}

TEST_F(AuditTest, VerifyCatchesAForgedCheckpointSignature) {
  AuditLog log = OpenLog(/*interval=*/3);
  Fill(log, 7);
  Tamper(log, "UPDATE checkpoints SET signature = zeroblob(64) WHERE seq = 6");
  ExpectBad(log, ErrorCode::kBadSignature, 6, /*checkpoint=*/true);
}

TEST_F(AuditTest, VerifyCatchesACheckpointWhoseHeadWasChanged) {
  // Re-pointing a checkpoint at another head breaks its signature.
  AuditLog log = OpenLog(/*interval=*/3);
  Fill(log, 7);
  Tamper(log,
         "UPDATE checkpoints SET seq = 5, head_hash = (SELECT hash FROM records WHERE seq = 5) "
         "WHERE seq = 6");
  ExpectBad(log, ErrorCode::kBadSignature, 5, /*checkpoint=*/true);
}

TEST_F(AuditTest, VerifyRefusesCheckpointsByKeysThatAreNotRecordedOrPinned) {
  AuditLog log = OpenLog(/*interval=*/2);
  Fill(log, 3);
  // A checkpoint signed by an attacker's own key, which is then recorded, passes internal
  // consistency...
  auto other = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  ASSERT_TRUE(other);
  crypto::PublicKey other_pub = other->Public();
  ASSERT_TRUE(log.SetSigner(SignerFromPrivateKey(std::move(*other))));
  ASSERT_TRUE(log.WriteCheckpoint());
  ExpectGood(log);
  // ...but not a pinned audit key.
  VerifyOptions pinned;
  pinned.trusted_keys.push_back(crypto::PrivateKey::FromPem(audit_key_pem_)->Public());
  ExpectBad(log, ErrorCode::kWrongKey, 3, /*checkpoint=*/true, pinned);
  // And a checkpoint naming a key that is not recorded at all fails without pinning.
  Tamper(log, "DELETE FROM audit_keys WHERE key_id = '" + other_pub.KeyId() + "'");
  ExpectBad(log, ErrorCode::kWrongKey, 3, /*checkpoint=*/true);
}

TEST_F(AuditTest, VerifyCatchesATailTruncatedBeforeTheLastCheckpoint) {
  AuditLog log = OpenLog();
  Fill(log, 5);
  ASSERT_TRUE(log.WriteCheckpoint());  // covers 1..5
  Tamper(log, "DELETE FROM records WHERE seq >= 4");
  ExpectBad(log, ErrorCode::kTruncated, 4);
}

TEST_F(AuditTest, TailAfterTheLastCheckpointIsCaughtOnlyWithAnExpectedHead) {
  AuditLog log = OpenLog();
  Fill(log, 3);
  ASSERT_TRUE(log.WriteCheckpoint());
  Fill(log, 3);
  auto head = log.Head();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->first, 6);
  Tamper(log, "DELETE FROM records WHERE seq >= 5");
  ExpectGood(log);  // the honest limit: nothing in the file says records 5..6 existed
  VerifyOptions expect;
  expect.expect_head = *head;
  ExpectBad(log, ErrorCode::kTruncated, 5, false, expect);
}

TEST_F(AuditTest, ExpectedHeadAcceptsAGrownLogAndCatchesARewrittenOne) {
  AuditLog log = OpenLog();
  Fill(log, 3);
  auto head = log.Head();
  ASSERT_TRUE(head);
  Fill(log, 2);
  VerifyOptions expect;
  expect.expect_head = *head;
  ExpectGood(log, expect);
  // Seq 0 means "the current head".
  VerifyOptions current;
  current.expect_head = std::make_pair(int64_t{0}, log.Head()->second);
  ExpectGood(log, current);
  current.expect_head->second = head->second;
  ExpectBad(log, ErrorCode::kHashMismatch, 5, false, current);
  // Rewriting record 2 with recomputed hashes changes the hash at seq 3.
  Tamper(log, "UPDATE records SET actor = 'mallory' WHERE seq = 2");
  RecomputeChain(log);
  ExpectGood(log);
  ExpectBad(log, ErrorCode::kHashMismatch, 3, false, expect);
}

TEST_F(AuditTest, MinimumCheckpointCountCatchesDeletedCheckpoints) {
  AuditLog log = OpenLog(/*interval=*/2);
  Fill(log, 4);
  VerifyOptions opts;
  opts.min_checkpoints = 2;
  ExpectGood(log, opts);
  Tamper(log, "DELETE FROM checkpoints");
  ExpectBad(log, ErrorCode::kTruncated, 5, false, opts);
}

TEST_F(AuditTest, CheckpointsAreNumberedInsideTheirSignature) {
  AuditLog log = OpenLog(/*interval=*/2);
  Fill(log, 6);
  auto checkpoints = log.Checkpoints();
  ASSERT_TRUE(checkpoints);
  ASSERT_EQ(checkpoints->size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*checkpoints)[i].number, i + 1);
  EXPECT_EQ(*log.CheckpointNumber(), 3);
  // Renumbering one (to hide a deleted one) breaks its signature.
  Tamper(log, "UPDATE checkpoints SET number = 1 WHERE number = 2");
  ExpectBad(log, ErrorCode::kTruncated, 4, /*checkpoint=*/true);
  Tamper(log,
         "DELETE FROM checkpoints WHERE seq = 4; UPDATE checkpoints SET number = 2 WHERE seq = 6");
  ExpectBad(log, ErrorCode::kBadSignature, 6, /*checkpoint=*/true);
}

// Attack: delete a checkpoint in the middle (to hide a rewrite of the records it covered).
TEST_F(AuditTest, VerifyCatchesADeletedCheckpoint) {
  AuditLog log = OpenLog(/*interval=*/2);
  Fill(log, 6);
  ExpectGood(log);
  Tamper(log, "DELETE FROM checkpoints WHERE number = 2");
  ExpectBad(log, ErrorCode::kTruncated, 6, /*checkpoint=*/true);
  auto report = log.Verify();
  ASSERT_TRUE(report);
  EXPECT_NE(report->error->message().find("checkpoint 2 is missing"), std::string::npos)
      << report->error->message();
}

// The head the vault seals after every record (VerifyOptions::expect_head and
// min_checkpoint_number, as `airlock audit verify --vault` passes them) catches the newest records
// cut off the end, with or without the checkpoint that covered them, and the newest checkpoint
// deleted on its own.
TEST_F(AuditTest, AnchoredHeadCatchesATruncatedEndAndADeletedNewestCheckpoint) {
  AuditLog log = OpenLog(/*interval=*/3);
  Fill(log, 7);
  ASSERT_TRUE(log.WriteCheckpoint());  // number 3, at seq 7 (as a session's close writes it)
  auto head = log.Head();
  ASSERT_TRUE(head);
  VerifyOptions anchor;
  anchor.expect_head = *head;
  anchor.min_checkpoint_number = *log.CheckpointNumber();
  ASSERT_EQ(anchor.min_checkpoint_number, 3);
  ExpectGood(log, anchor);
  const std::string clean = dir_->path() / "clean.audit";
  ASSERT_TRUE(std::filesystem::copy_file(path_, clean));

  // The newest checkpoint alone.
  Tamper(log, "DELETE FROM checkpoints WHERE number = 3");
  ExpectBad(log, ErrorCode::kTruncated, 8, false, anchor);
  // The last two records and the checkpoint that covered them: nothing in the log shows it.
  Tamper(log, "DELETE FROM records WHERE seq >= 6; DELETE FROM checkpoints WHERE number = 2");
  ExpectGood(log);
  ExpectBad(log, ErrorCode::kTruncated, 6, false, anchor);
  auto report = log.Verify(anchor);
  ASSERT_TRUE(report);
  EXPECT_NE(report->error->message().find("records cut off its end"), std::string::npos);

  // The last record only, its checkpoint left in place.
  auto fresh = AuditLog::Open(clean, Options());
  ASSERT_TRUE(fresh);
  Tamper(*fresh, "DELETE FROM records WHERE seq = 7");
  ExpectBad(*fresh, ErrorCode::kTruncated, 7, false, anchor);
}

TEST_F(AuditTest, EachLogHasAStableRandomId) {
  std::string id;
  {
    AuditLog log = OpenLog();
    auto got = log.LogId();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->size(), 32u);
    id = *got;
  }
  AuditLog again = OpenLog();
  EXPECT_EQ(*again.LogId(), id);
  auto other = AuditLog::Open(dir_->path() / "other.audit", Options());
  ASSERT_TRUE(other);
  EXPECT_NE(*other->LogId(), id);
}

TEST_F(AuditTest, AutomaticCheckpointsEveryNRecords) {
  AuditLog log = OpenLog(/*interval=*/4);
  Fill(log, 9);
  auto checkpoints = log.Checkpoints();
  ASSERT_TRUE(checkpoints);
  ASSERT_EQ(checkpoints->size(), 2u);
  EXPECT_EQ((*checkpoints)[0].seq, 4);
  EXPECT_EQ((*checkpoints)[1].seq, 8);
  auto report = log.Verify();
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->ok);
  EXPECT_EQ(report->records, 9);
  EXPECT_EQ(report->checkpoints, 2);
  EXPECT_EQ(report->last_checkpoint_seq, 8);
}

TEST_F(AuditTest, CheckpointWithoutSignerIsAUsageError) {
  AuditLog log = OpenLog(0, /*with_signer=*/false);
  Fill(log, 1);
  EXPECT_EQ(log.WriteCheckpoint().error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(AuditTest, EmptyLogVerifiesAndCanBeCheckpointed) {
  AuditLog log = OpenLog();
  ASSERT_TRUE(log.WriteCheckpoint());
  auto report = log.Verify();
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->ok);
  EXPECT_EQ(report->head_seq, 0);
  EXPECT_EQ(report->checkpoints, 1);
}

TEST_F(AuditTest, ReopensAndKeepsChaining) {
  {
    AuditLog log = OpenLog();
    Fill(log, 2);
  }
  auto again = AuditLog::OpenExisting(path_, Options());
  ASSERT_TRUE(again);
  Fill(*again, 2);
  auto report = again->Verify();
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->ok);
  EXPECT_EQ(report->head_seq, 4);
}

TEST_F(AuditTest, FileIsCreatedOwnerOnly) {
  AuditLog log = OpenLog();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AuditTest, OpenExistingOfAMissingFileIsNotFound) {
  EXPECT_EQ(AuditLog::OpenExisting(dir_->path() / "nope").error().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir_->path() / "nope"));
}

TEST_F(AuditTest, OpenRefusesFilesThatAreNotAuditLogs) {
  ASSERT_TRUE(
      WriteFileAtomic(dir_->path() / "text", AsBytes("hello, this is not sqlite at all.......")));
  EXPECT_EQ(AuditLog::Open(dir_->path() / "text").error().code(), ErrorCode::kMalformed);
  // Another SQLite database.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_->path() / "other.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE x (a)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(AuditLog::Open(dir_->path() / "other.db").error().code(), ErrorCode::kMalformed);
}

TEST_F(AuditTest, QueryFilters) {
  AuditLog log = OpenLog();
  now_ = kT0;
  auto add = [&](int64_t t, std::string actor, std::string key, std::string op, UsageResult res) {
    UsageRecord r = Record(std::move(actor), std::move(key), std::move(op), res);
    r.time = t;
    ASSERT_TRUE(log.Append(r));
  };
  add(kT0 + 10, "alice", "release", "sign", UsageResult::kOk);
  add(kT0 + 20, "bob", "release", "sign", UsageResult::kFailed);
  add(kT0 + 30, "alice", "root", "rotate", UsageResult::kOk);
  add(kT0 + 40, "mallory", "root", "sign", UsageResult::kDenied);
  auto count = [&](AuditFilter f) {
    auto r = log.Query(f);
    EXPECT_TRUE(r);
    return r ? r->size() : 0u;
  };
  EXPECT_EQ(count({}), 4u);
  EXPECT_EQ(count({.key = "root"}), 2u);
  EXPECT_EQ(count({.key = "id-root"}), 2u);  // by key id as well
  EXPECT_EQ(count({.actor = "alice"}), 2u);
  EXPECT_EQ(count({.operation = "sign"}), 3u);
  EXPECT_EQ(count({.since = kT0 + 20}), 3u);
  EXPECT_EQ(count({.until = kT0 + 20}), 1u);
  EXPECT_EQ(count({.since = kT0 + 20, .until = kT0 + 40}), 2u);
  EXPECT_EQ(count({.result = UsageResult::kDenied}), 1u);
  EXPECT_EQ(count({.key = "release", .actor = "bob", .result = UsageResult::kFailed}), 1u);
  EXPECT_EQ(count({.after_seq = 3}), 1u);
  EXPECT_EQ(count({.limit = 2}), 2u);
  // SQL text in a filter is a value, not SQL.
  EXPECT_EQ(count({.actor = "' OR 1=1 --"}), 0u);
}

TEST_F(AuditTest, ReportSummarisesPerKeyWithinThePeriod) {
  AuditLog log = OpenLog();
  constexpr int64_t kDay = 86400;
  auto add = [&](int64_t t, std::string actor, std::string key, std::string op, UsageResult res,
                 std::string source = "local") {
    UsageRecord r = Record(std::move(actor), std::move(key), std::move(op), res);
    r.time = t;
    r.source = std::move(source);
    ASSERT_TRUE(log.Append(r));
  };
  add(kT0 - 10 * kDay, "alice", "release", "create", UsageResult::kOk);
  add(kT0 - 2 * kDay, "alice", "release", "sign", UsageResult::kOk);  // before the daily window
  add(kT0 - 3600, "alice", "release", "sign", UsageResult::kOk);
  add(kT0 - 1800, "bob", "release", "sign", UsageResult::kFailed);
  add(kT0 - 900, "mallory", "release", "sign", UsageResult::kDenied, "203.0.113.9");
  add(kT0 - 600, "alice", "release", "suspend", UsageResult::kOk);
  ReportOptions o;
  o.period = ReportPeriod::kDaily;
  o.end = kT0;
  auto report = log.Report(o);
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(report->start, kT0 - kDay);
  EXPECT_EQ(report->total, 4);
  EXPECT_EQ(report->ok, 2);
  EXPECT_EQ(report->failed, 1);
  EXPECT_EQ(report->denied, 1);
  ASSERT_EQ(report->keys.size(), 1u);
  const KeyUsageSummary& k = report->keys[0];
  EXPECT_EQ(k.key_name, "release");
  EXPECT_EQ(k.key_id, "id-release");
  EXPECT_EQ(k.operations.at("sign"), 3);
  EXPECT_EQ(k.operations.at("suspend"), 1);
  EXPECT_EQ(k.actors.at("alice"), 2);
  EXPECT_EQ(k.failures.size(), 2u);
  ASSERT_EQ(k.lifecycle_events.size(), 1u);
  EXPECT_EQ(k.lifecycle_events[0].operation, "suspend");
  EXPECT_EQ(report->new_actors, (std::vector<std::string>{"bob", "mallory"}));
  EXPECT_EQ(report->new_sources, (std::vector<std::string>{"203.0.113.9"}));
  // The weekly window takes in the sign two days back.
  o.period = ReportPeriod::kWeekly;
  report = log.Report(o);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->total, 5);
}

TEST_F(AuditTest, ReportListsKeysDueForRotationFromTheLog) {
  AuditLog log = OpenLog();
  constexpr int64_t kDay = 86400;
  auto add = [&](int64_t t, std::string key, std::string purpose, std::string op) {
    UsageRecord r = Record("alice", std::move(key), std::move(op));
    r.purpose = std::move(purpose);
    r.time = t;
    ASSERT_TRUE(log.Append(r));
  };
  add(kT0 - 400 * kDay, "root1", "root", "create");  // 400 days old, max 365: due
  add(kT0 - 100 * kDay, "targets1", "targets", "create");
  add(kT0 - 10 * kDay, "targets1", "targets", "rotate");  // rotated 10 days ago: not due
  add(kT0 - 40 * kDay, "ts1", "timestamp", "create");     // 40 days old, max 30: due
  add(kT0 - 400 * kDay, "old", "root", "create");
  add(kT0 - 300 * kDay, "old", "root", "revoke");           // revoked: not due
  add(kT0 - 400 * kDay, "wrap", "content-wrap", "create");  // no max age for the purpose: never due
  ReportOptions o;
  o.end = kT0;
  o.max_age = {{"root", 365 * kDay}, {"targets", 90 * kDay}, {"timestamp", 30 * kDay}};
  auto report = log.Report(o);
  ASSERT_TRUE(report) << report.error().ToString();
  ASSERT_EQ(report->rotation_due.size(), 2u);
  EXPECT_EQ(report->rotation_due[0].key_name, "root1");
  EXPECT_EQ(report->rotation_due[0].age, 400 * kDay);
  EXPECT_EQ(report->rotation_due[0].max_age, 365 * kDay);
  EXPECT_EQ(report->rotation_due[1].key_name, "ts1");
  // Ages from the vault take precedence over the log.
  o.key_ages = {{"id-x", "x", "targets", kT0 - 91 * kDay, true},
                {"id-y", "y", "targets", kT0, true}};
  report = log.Report(o);
  ASSERT_TRUE(report);
  ASSERT_EQ(report->rotation_due.size(), 1u);
  EXPECT_EQ(report->rotation_due[0].key_name, "x");
}

TEST(AuditPaths, VaultPathMapsToASiblingFile) {
  EXPECT_EQ(AuditPathForVault("/srv/keys.vault"), std::filesystem::path("/srv/keys.vault.audit"));
}

TEST(AuditNames, ResultsAndPeriodsRoundTrip) {
  for (UsageResult r : {UsageResult::kOk, UsageResult::kDenied, UsageResult::kFailed}) {
    EXPECT_EQ(*ParseUsageResult(UsageResultName(r)), r);
  }
  EXPECT_EQ(ParseUsageResult("okay").error().code(), ErrorCode::kInvalidArgument);
  for (ReportPeriod p : {ReportPeriod::kDaily, ReportPeriod::kWeekly, ReportPeriod::kMonthly,
                         ReportPeriod::kQuarterly}) {
    EXPECT_EQ(*ParseReportPeriod(ReportPeriodName(p)), p);
  }
  EXPECT_EQ(ParseReportPeriod("yearly").error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace airlock::audit
