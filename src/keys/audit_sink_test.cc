// StateAuditSink on a SoftHSM2 token: the checkpoint key is made on the token and the log's head is
// kept there, so a log cut off at its end fails verification against that head.
#include "keys/audit_sink.h"

#include <sqlite3.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "common/require_service.h"
#include "keys/pkcs11.h"
#include "keys/softhsm_fixture.h"

namespace airlock::keys {
namespace {

using testing::SoftHsmToken;

class StateAuditSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AIRLOCK_REQUIRE_SERVICE(testing::SoftHsmAvailable(), "SoftHSM2 (softhsm2 package)");
    auto fixture = SoftHsmToken::Create();
    ASSERT_TRUE(fixture) << fixture.error().ToString();
    fixture_ = std::move(*fixture);
    log_path_ = fixture_->dir() / "token.audit";
    auto uri = ParseKeyUri(fixture_->StoreUri());
    ASSERT_TRUE(uri);
    KeyStoreOptions options;
    options.pkcs11_module = testing::SoftHsmModulePath();
    options.secret = [] { return Result<std::string>(testing::kSoftHsmUserPin); };
    auto store = OpenKeyStore(*uri, options);
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    state_ = AsVaultStateStore(store_.get());
    ASSERT_NE(state_, nullptr);
  }
  void TearDown() override {
    store_.reset();  // before the fixture: SoftHSM2 must be finalised before its directory goes
    fixture_.reset();
  }

  // Appends `n` records through a sink, as one session, and closes it.
  void Session(int n) {
    auto log = audit::AuditLog::Open(log_path_);
    ASSERT_TRUE(log) << log.error().ToString();
    StateAuditSink sink(std::move(*log), store_.get(), state_);
    for (int i = 0; i < n; ++i) {
      audit::UsageRecord r;
      r.actor = "alice";
      r.operation = "sign";
      r.key_name = "k" + std::to_string(i);
      auto appended = sink.Append(r);
      ASSERT_TRUE(appended) << appended.error().ToString();
    }
    auto closed = sink.Close();
    ASSERT_TRUE(closed) << closed.error().ToString();
  }

  // What `airlock audit verify --vault pkcs11:...` checks: the head the token keeps for this log.
  audit::VerifyOptions KeptHead(const audit::AuditLog& log) {
    audit::VerifyOptions options;
    auto state = state_->ReadState();
    EXPECT_TRUE(state) << state.error().ToString();
    auto id = log.LogId();
    EXPECT_TRUE(id);
    auto it = state->audit_heads.find(*id);
    EXPECT_NE(it, state->audit_heads.end());
    if (it == state->audit_heads.end()) return options;
    options.expect_head = std::make_pair(it->second.seq, it->second.hash);
    options.min_checkpoint_number = it->second.checkpoints;
    auto pub = store_->PublicKey(state->checkpoint_key);
    EXPECT_TRUE(pub);
    if (pub) options.trusted_keys.push_back(*pub);
    return options;
  }

  std::unique_ptr<SoftHsmToken> fixture_;
  std::filesystem::path log_path_;
  std::unique_ptr<KeyStore> store_;
  VaultStateStore* state_ = nullptr;
};

TEST_F(StateAuditSinkTest, CheckpointKeyIsMadeOnTheTokenAndNotExtractable) {
  Session(2);
  auto state = state_->ReadState();
  ASSERT_TRUE(state) << state.error().ToString();
  ASSERT_EQ(state->checkpoint_key.rfind("audit-checkpoint-", 0), 0u) << state->checkpoint_key;
  auto info = store_->Get(state->checkpoint_key);
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->purpose, KeyPurpose::kAudit);
  EXPECT_EQ(info->type, crypto::KeyType::kEd25519);
  auto token = Pkcs11Token::Open(fixture_->Options());
  ASSERT_TRUE(token) << token.error().ToString();
  auto protection = (*token)->InspectPrivateKey(state->checkpoint_key);
  ASSERT_TRUE(protection) << protection.error().ToString();
  EXPECT_TRUE(protection->sensitive);
  EXPECT_FALSE(protection->extractable);
  EXPECT_TRUE(protection->never_extractable);
  EXPECT_FALSE(protection->value_readable);
  // Its creation is the first record; its public key is recorded in the log.
  auto log = audit::AuditLog::OpenExisting(log_path_);
  ASSERT_TRUE(log);
  auto records = log->Query({});
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 3u);
  EXPECT_EQ((*records)[0].operation, "create");
  EXPECT_EQ((*records)[0].key_name, state->checkpoint_key);
  auto report = log->Verify(KeptHead(*log));
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->ok) << report->ToResult().error().ToString();
  EXPECT_EQ(report->checkpoints, 1);
}

TEST_F(StateAuditSinkTest, HeadMovesForwardAfterEveryRecordAndSession) {
  Session(1);
  Session(2);
  auto log = audit::AuditLog::OpenExisting(log_path_);
  ASSERT_TRUE(log);
  auto head = log->Head();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->first, 4);  // create + 1 + 2
  auto state = state_->ReadState();
  ASSERT_TRUE(state);
  const AuditAnchor& kept = state->audit_heads.at(*log->LogId());
  EXPECT_EQ(kept.seq, head->first);
  EXPECT_EQ(kept.hash, head->second);
  EXPECT_EQ(kept.checkpoints, 2);  // one per session
}

TEST_F(StateAuditSinkTest, TailCutOffWithItsCheckpointFailsAgainstTheTokensHead) {
  Session(3);
  Session(2);
  auto log = audit::AuditLog::OpenExisting(log_path_);
  ASSERT_TRUE(log);
  const audit::VerifyOptions kept = KeptHead(*log);
  ASSERT_EQ(kept.expect_head->first, 6);
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(log->db(),
                         "DROP TRIGGER records_no_delete; DROP TRIGGER checkpoints_no_delete; "
                         "DELETE FROM records WHERE seq > 4; DELETE FROM checkpoints WHERE seq > 4",
                         nullptr, nullptr, &err),
            SQLITE_OK)
      << (err ? err : "");
  // The log alone is consistent: only the kept head shows the cut.
  auto alone = log->Verify();
  ASSERT_TRUE(alone);
  EXPECT_TRUE(alone->ok);
  auto report = log->Verify(kept);
  ASSERT_TRUE(report);
  ASSERT_FALSE(report->ok);
  EXPECT_EQ(report->error->code(), ErrorCode::kTruncated);
  EXPECT_EQ(report->first_bad_seq, 5);
}

TEST_F(StateAuditSinkTest, DeletedNewestCheckpointFailsAgainstTheTokensCount) {
  Session(1);
  Session(1);
  auto log = audit::AuditLog::OpenExisting(log_path_);
  ASSERT_TRUE(log);
  const audit::VerifyOptions kept = KeptHead(*log);
  ASSERT_EQ(kept.min_checkpoint_number, 2);
  ASSERT_EQ(
      sqlite3_exec(log->db(),
                   "DROP TRIGGER checkpoints_no_delete; DELETE FROM checkpoints WHERE number = 2",
                   nullptr, nullptr, nullptr),
      SQLITE_OK);
  auto report = log->Verify(kept);
  ASSERT_TRUE(report);
  ASSERT_FALSE(report->ok);
  EXPECT_EQ(report->error->code(), ErrorCode::kTruncated);
  EXPECT_NE(report->error->message().find("checkpoint 2 was written"), std::string::npos)
      << report->error->message();
}

}  // namespace
}  // namespace airlock::keys
