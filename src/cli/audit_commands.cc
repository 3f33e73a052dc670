// airlock audit verify|log|report|checkpoint: the usage log (audit/audit_log.h;
// docs/operations/audit.md). The access commands are in access_commands.cc.
#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "access/access_store.h"
#include "audit/audit_log.h"
#include "cli/app_config.h"
#include "cli/audit_options.h"
#include "cli/commands.h"
#include "cli/key_loading.h"
#include "common/file.h"
#include "crypto/keys.h"
#include "keys/file_vault.h"
#include "keys/key_store.h"
#include "keys/lifecycle.h"
#include "keys/vault_paths.h"

namespace airlock::cli {

void AddLogOptions(CLI::App* c, LogArgs& a) {
  c->add_option("--vault", a.vault,
                "Key store URI (file:PATH: the log is PATH.audit; pkcs11:token=LABEL: name the log "
                "with --audit)")
      ->envname("AIRLOCK_VAULT");
  c->add_option("--audit", a.audit, "The audit log file (overrides the vault's)")
      ->envname("AIRLOCK_AUDIT_LOG");
  // Neither given: the default vault, as for every other command (cli/app_config.h). Without HOME
  // the vault stays empty and AuditPath says why.
  c->parse_complete_callback([&a] {
    bool is_default = false;
    if (a.vault.empty() && a.audit.empty()) {
      if (auto uri = DefaultVaultUri(&is_default)) a.vault = *uri;
    }
  });
}

Result<std::filesystem::path> AuditPath(const LogArgs& a) {
  if (!a.audit.empty()) return std::filesystem::path(a.audit);
  if (a.vault.empty()) {
    bool is_default = false;
    AIRLOCK_ASSIGN_OR_RETURN(std::string uri, DefaultVaultUri(&is_default));
    return keys::AuditPathForVaultUri(uri);
  }
  return keys::AuditPathForVaultUri(a.vault);
}

Result<std::filesystem::path> AccessPath(const LogArgs& a, const std::string& access) {
  if (!access.empty()) return std::filesystem::path(access);
  if (a.vault.empty()) {
    bool is_default = false;
    AIRLOCK_ASSIGN_OR_RETURN(std::string uri, DefaultVaultUri(&is_default));
    return keys::AccessPathForVaultUri(uri);
  }
  return keys::AccessPathForVaultUri(a.vault);
}

std::string FormatUtc(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  if (gmtime_r(&tt, &tm) == nullptr) return std::to_string(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

constexpr int64_t kDay = 86400;

// Unix seconds; YYYY-MM-DD; YYYY-MM-DDTHH:MM:SSZ; or an age back from now: 90s, 30m, 24h, 7d.
Result<int64_t> ParseTime(const std::string& text, int64_t now) {
  auto bad = [&text] {
    return MakeError(ErrorCode::kInvalidArgument,
                     "time '" + text.substr(0, 40) +
                         "' is not unix seconds, YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or an age like 24h/7d");
  };
  if (text.empty() || text.size() > 32) return bad();
  bool digits = text.find_first_not_of("0123456789") == std::string::npos;
  if (digits && text.size() <= 12) return std::stoll(text);
  char unit = text.back();
  std::string number = text.substr(0, text.size() - 1);
  if ((unit == 's' || unit == 'm' || unit == 'h' || unit == 'd') && !number.empty() &&
      number.size() <= 9 && number.find_first_not_of("0123456789") == std::string::npos) {
    int64_t n = std::stoll(number);
    int64_t scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : kDay;
    return now - n * scale;
  }
  std::tm tm{};
  const char* end = nullptr;
  if (text.size() == 10) {
    end = strptime(text.c_str(), "%Y-%m-%d", &tm);
  } else {
    end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  if (end == nullptr || *end != '\0') return bad();
  return static_cast<int64_t>(timegm(&tm));
}

nlohmann::json RecordJson(const audit::UsageRecord& r) {
  return {{"seq", r.seq},
          {"time", FormatUtc(r.time)},
          {"unix_time", r.time},
          {"actor", r.actor},
          {"key_id", r.key_id},
          {"key_name", r.key_name},
          {"operation", r.operation},
          {"purpose", r.purpose},
          {"result", std::string(audit::UsageResultName(r.result))},
          {"result_reason", r.result_reason},
          {"source", r.source},
          {"reason", r.reason},
          {"details", r.details},
          {"hash", r.hash}};
}

void PrintRecordLine(const audit::UsageRecord& r) {
  std::cout << r.seq << "  " << FormatUtc(r.time) << "  " << r.actor << "  "
            << audit::UsageResultName(r.result) << "  " << r.operation << "  "
            << (r.key_name.empty() ? "-" : r.key_name) << "  "
            << (r.purpose.empty() ? "-" : r.purpose) << "  " << (r.source.empty() ? "-" : r.source);
  if (!r.result_reason.empty()) std::cout << "  [" << r.result_reason << "]";
  if (!r.reason.empty()) std::cout << "  reason: " << r.reason;
  if (!r.details.empty()) std::cout << "  (" << r.details << ")";
  std::cout << "\n";
}

// ---- audit verify ------------------------------------------------------------------------------------

struct VerifyArgs {
  LogArgs log;
  std::string passphrase_file;
  std::string expect_head;
  std::vector<std::string> audit_pubs;
  int64_t min_checkpoints = 0;
  bool json = false;
};

Result<void> RunVerify(const VerifyArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(std::filesystem::path path, AuditPath(a.log));
  audit::VerifyOptions options;
  options.min_checkpoints = a.min_checkpoints;
  if (!a.expect_head.empty()) {
    // SEQ:HASH (record SEQ must have HASH; the log may have grown) or HASH (the current head).
    std::string text = a.expect_head;
    int64_t seq = 0;
    size_t colon = text.find(':');
    if (colon != std::string::npos) {
      std::string number = text.substr(0, colon);
      if (number.empty() || number.size() > 18 ||
          number.find_first_not_of("0123456789") != std::string::npos) {
        return MakeError(ErrorCode::kInvalidArgument, "--expect-head is SEQ:HASH or HASH");
      }
      seq = std::stoll(number);
      text = text.substr(colon + 1);
    }
    auto raw = HexDecode(text);
    if (!raw || raw->size() != 32) {
      return MakeError(ErrorCode::kInvalidArgument, "--expect-head hash must be 64 hex digits");
    }
    options.expect_head = std::make_pair(seq, HexEncode(*raw));
  }
  for (const std::string& file : a.audit_pubs) {
    auto key = crypto::PublicKey::FromFile(file);
    if (!key) return tl::unexpected(key.error().WithContext("audit key " + file));
    options.trusted_keys.push_back(std::move(*key));
  }
  AIRLOCK_ASSIGN_OR_RETURN(audit::AuditLog log, audit::AuditLog::OpenExisting(path));
  // With a store that keeps a head (a file vault, a PKCS#11 token): the head it holds for this log,
  // its checkpoint count, and its audit keys.
  std::string anchor_note;
  std::string sealed_where;
  bool anchored = false;
  if (!a.log.vault.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(keys::KeyUri uri, keys::ParseKeyUri(a.log.vault));
    const bool file = uri.scheme == keys::KeyUriScheme::kFile;
    sealed_where = file ? "sealed in the vault" : "held on the token";
    const std::string where = file ? "vault " + uri.path : "token " + uri.StoreUri();
    keys::KeyStoreOptions so;
    so.secret =
        SecretSource(a.passphrase_file, "--passphrase-file",
                     file ? keys::kVaultPassphraseEnv : "AIRLOCK_PKCS11_PIN",
                     file ? "vault passphrase" : "PKCS#11 user PIN");
    AIRLOCK_ASSIGN_OR_RETURN(std::unique_ptr<keys::KeyStore> store, keys::OpenKeyStore(uri, so));
    keys::VaultStateStore* holder = keys::AsVaultStateStore(store.get());
    if (holder == nullptr) {
      return MakeError(ErrorCode::kUnsupported, "store " + uri.StoreUri() + " keeps no audit head");
    }
    AIRLOCK_ASSIGN_OR_RETURN(keys::VaultState state, holder->ReadState());
    AIRLOCK_ASSIGN_OR_RETURN(std::string id, log.LogId());
    if (auto it = state.audit_heads.find(id); !id.empty() && it != state.audit_heads.end()) {
      if (!options.expect_head)
        options.expect_head = std::make_pair(it->second.seq, it->second.hash);
      options.min_checkpoint_number = it->second.checkpoints;
      anchored = true;
    } else if (!state.audit_heads.empty()) {
      return MakeError(ErrorCode::kHashMismatch,
                       "audit log " + path.string() + " is not the log " + where + " keeps (the " +
                           (file ? "vault sealed" : "token holds") + " no head for it: replaced?)");
    } else {
      anchor_note = where + (file ? " has sealed no head yet" : " holds no head yet");
    }
    AIRLOCK_ASSIGN_OR_RETURN(std::vector<keys::KeyInfo> all, store->List());
    for (const keys::KeyInfo& k : all) {
      if (k.purpose != keys::KeyPurpose::kAudit) continue;
      AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey pub, store->PublicKey(k.name));
      options.trusted_keys.push_back(std::move(pub));
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(audit::VerifyReport report, log.Verify(options));
  if (a.json) {
    nlohmann::json j = {{"log", path.string()},
                        {"ok", report.ok},
                        {"records", report.records},
                        {"checkpoints", report.checkpoints},
                        {"last_checkpoint_seq", report.last_checkpoint_seq},
                        {"anchored", anchored}};
    if (report.ok) {
      j["head"] = std::to_string(report.head_seq) + ":" + report.head_hash;
      j["unchecked_tail"] = report.head_seq - report.last_checkpoint_seq;
    } else {
      j["first_bad_seq"] = report.first_bad_seq;
      j["bad_checkpoint"] = report.bad_checkpoint;
      j["error"] = std::string(ErrorCodeName(report.error->code()));
      j["message"] = report.error->message();
    }
    PrintJson(j);
  } else if (report.ok) {
    std::cout << "audit log " << path.string() << ": OK\n"
              << "records: " << report.records << ", checkpoints: " << report.checkpoints
              << " (last covers seq " << report.last_checkpoint_seq << ")\n"
              << "head: " << report.head_seq << ":" << report.head_hash << "\n";
    if (anchored) {
      std::cout << "the head " << sealed_where << " (seq " << options.expect_head->first
                << ", at least " << options.min_checkpoint_number << " checkpoints) is present\n";
    } else if (report.head_seq > report.last_checkpoint_seq) {
      if (!anchor_note.empty()) std::cout << "note: " << anchor_note << "\n";
      std::cout << "note: records " << report.last_checkpoint_seq + 1 << ".." << report.head_seq
                << " are not yet covered by a signed checkpoint; keep the head above and pass it as "
                   "--expect-head next time to detect their removal\n";
    }
    if (a.audit_pubs.empty() && !anchored && report.checkpoints > 0) {
      std::cout << "note: checkpoints were checked against the audit keys recorded in the log; pass "
                   "--audit-pub to pin the key\n";
    }
  }
  return report.ToResult();
}

// ---- audit log ---------------------------------------------------------------------------------------

struct QueryArgs {
  LogArgs log;
  std::string key, actor, operation, since, until, result;
  size_t limit = 100000;
  bool json = false;
};

Result<void> RunLog(const QueryArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(std::filesystem::path path, AuditPath(a.log));
  AIRLOCK_ASSIGN_OR_RETURN(audit::AuditLog log, audit::AuditLog::OpenExisting(path));
  audit::AuditFilter f;
  f.key = a.key;
  f.actor = a.actor;
  f.operation = a.operation;
  f.limit = a.limit;
  int64_t now = log.Now();
  if (!a.since.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(f.since, ParseTime(a.since, now));
  }
  if (!a.until.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(f.until, ParseTime(a.until, now));
  }
  if (!a.result.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(f.result, audit::ParseUsageResult(a.result));
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<audit::UsageRecord> records, log.Query(f));
  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : records) j.push_back(RecordJson(r));
    PrintJson(j);
    return {};
  }
  for (const auto& r : records) PrintRecordLine(r);
  if (records.empty()) std::cerr << "no matching records\n";
  return {};
}

// ---- audit report ------------------------------------------------------------------------------------

struct ReportArgs {
  LogArgs log;
  std::string period = "daily";
  std::string end;
  std::vector<std::string> max_ages;
  bool json = false;
};

Result<void> RunReport(const ReportArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(std::filesystem::path path, AuditPath(a.log));
  audit::ReportOptions o;
  AIRLOCK_ASSIGN_OR_RETURN(o.period, audit::ParseReportPeriod(a.period));
  // Maximum ages: the key manager's defaults per purpose, overridden by --max-age PURPOSE=DAYS.
  for (keys::KeyPurpose p : {keys::KeyPurpose::kRoot, keys::KeyPurpose::kTargets,
                             keys::KeyPurpose::kSnapshot, keys::KeyPurpose::kTimestamp,
                             keys::KeyPurpose::kContentWrap, keys::KeyPurpose::kCapgo,
                             keys::KeyPurpose::kAudit}) {
    o.max_age[std::string(keys::KeyPurposeName(p))] = keys::DefaultMaxAge(p);
  }
  for (const std::string& item : a.max_ages) {
    size_t eq = item.find('=');
    std::string days = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (eq == std::string::npos || days.empty() || days.size() > 6 ||
        days.find_first_not_of("0123456789") != std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument, "--max-age is PURPOSE=DAYS");
    }
    AIRLOCK_TRY(keys::ParseKeyPurpose(item.substr(0, eq)));
    o.max_age[item.substr(0, eq)] = std::stoll(days) * kDay;
  }
  AIRLOCK_ASSIGN_OR_RETURN(audit::AuditLog log, audit::AuditLog::OpenExisting(path));
  if (!a.end.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(o.end, ParseTime(a.end, log.Now()));
  }
  AIRLOCK_ASSIGN_OR_RETURN(audit::UsageReport r, log.Report(o));
  if (a.json) {
    nlohmann::json keys_json = nlohmann::json::array();
    for (const auto& k : r.keys) {
      nlohmann::json lifecycle = nlohmann::json::array(), failures = nlohmann::json::array();
      for (const auto& e : k.lifecycle_events) lifecycle.push_back(RecordJson(e));
      for (const auto& e : k.failures) failures.push_back(RecordJson(e));
      keys_json.push_back({{"key_name", k.key_name},
                           {"key_id", k.key_id},
                           {"purpose", k.purpose},
                           {"operations", k.operations},
                           {"actors", k.actors},
                           {"sources", k.sources},
                           {"ok", k.ok},
                           {"denied", k.denied},
                           {"failed", k.failed},
                           {"lifecycle_events", lifecycle},
                           {"failures", failures}});
    }
    nlohmann::json due = nlohmann::json::array();
    for (const auto& d : r.rotation_due) {
      due.push_back({{"key_name", d.key_name},
                     {"key_id", d.key_id},
                     {"purpose", d.purpose},
                     {"created", FormatUtc(d.created)},
                     {"age_days", d.age / kDay},
                     {"max_age_days", d.max_age / kDay}});
    }
    PrintJson({{"period", std::string(audit::ReportPeriodName(r.period))},
               {"start", FormatUtc(r.start)},
               {"end", FormatUtc(r.end)},
               {"total", r.total},
               {"ok", r.ok},
               {"denied", r.denied},
               {"failed", r.failed},
               {"new_actors", r.new_actors},
               {"new_sources", r.new_sources},
               {"keys", keys_json},
               {"rotation_due", due}});
    return {};
  }
  std::cout << audit::ReportPeriodName(r.period) << " key-usage report " << FormatUtc(r.start)
            << " .. " << FormatUtc(r.end) << "\n"
            << "operations: " << r.total << " (ok " << r.ok << ", denied " << r.denied
            << ", failed " << r.failed << ")\n";
  if (!r.new_actors.empty()) {
    std::cout << "new actors:";
    for (const auto& x : r.new_actors) std::cout << " " << x;
    std::cout << "\n";
  }
  if (!r.new_sources.empty()) {
    std::cout << "new sources:";
    for (const auto& x : r.new_sources) std::cout << " " << x;
    std::cout << "\n";
  }
  for (const auto& k : r.keys) {
    std::cout << "\nkey " << (k.key_name.empty() ? "(vault-wide)" : k.key_name);
    if (!k.purpose.empty()) std::cout << " [" << k.purpose << "]";
    if (!k.key_id.empty()) std::cout << " " << k.key_id.substr(0, 16);
    std::cout << ": ok " << k.ok << ", denied " << k.denied << ", failed " << k.failed << "\n  operations:";
    for (const auto& [op, n] : k.operations) std::cout << " " << op << "=" << n;
    std::cout << "\n  actors:";
    for (const auto& [actor, n] : k.actors) std::cout << " " << actor << "=" << n;
    std::cout << "\n";
    for (const auto& e : k.lifecycle_events) {
      std::cout << "  lifecycle: " << FormatUtc(e.time) << " " << e.operation << " by " << e.actor
                << " (" << audit::UsageResultName(e.result) << ")\n";
    }
    for (const auto& e : k.failures) {
      std::cout << "  " << audit::UsageResultName(e.result) << ": " << FormatUtc(e.time) << " "
                << e.operation << " by " << e.actor << " from " << e.source;
      if (!e.result_reason.empty()) std::cout << ": " << e.result_reason;
      std::cout << "\n";
    }
  }
  std::cout << "\nkeys due for rotation: " << (r.rotation_due.empty() ? "none" : "") << "\n";
  for (const auto& d : r.rotation_due) {
    std::cout << "  " << d.key_name << " [" << d.purpose << "] " << d.age / kDay << " days old (max "
              << d.max_age / kDay << ")\n";
  }
  return {};
}

// ---- audit checkpoint --------------------------------------------------------------------------------

struct CheckpointArgs {
  LogArgs log;
  std::string sign_key;
  bool json = false;
};

Result<void> RunCheckpoint(const CheckpointArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(std::filesystem::path path, AuditPath(a.log));
  auto key = crypto::PrivateKey::FromFile(a.sign_key);
  if (!key) return tl::unexpected(key.error().WithContext("audit key " + a.sign_key));
  AIRLOCK_ASSIGN_OR_RETURN(audit::AuditLog log, audit::AuditLog::OpenExisting(path));
  AIRLOCK_TRY(log.SetSigner(audit::SignerFromPrivateKey(std::move(*key))));
  AIRLOCK_ASSIGN_OR_RETURN(audit::Checkpoint c, log.WriteCheckpoint());
  if (a.json) {
    PrintJson(
        {{"seq", c.seq}, {"head", c.head_hash}, {"time", FormatUtc(c.time)}, {"key_id", c.key_id}});
  } else {
    std::cout << "checkpoint at seq " << c.seq << " head " << c.head_hash << " signed by " << c.key_id
              << "\n";
  }
  return {};
}

}  // namespace

void AddAuditCommands(CLI::App& app, Action& action) {
  CLI::App* audit = app.add_subcommand("audit", "Key usage log: verify the chain, list, report");
  audit->require_subcommand(1);

  auto verify_args = std::make_shared<VerifyArgs>();
  CLI::App* verify = audit->add_subcommand("verify", "Check the hash chain and signed checkpoints");
  AddLogOptions(verify, verify_args->log);
  verify->add_option("--expect-head", verify_args->expect_head,
                     "A head kept elsewhere (SEQ:HASH from an earlier verify, or HASH of the current head)");
  verify->add_option("--audit-pub", verify_args->audit_pubs,
                     "Pin the audit public key(s) checkpoints must be signed by (PEM file)");
  verify->add_option("--min-checkpoints", verify_args->min_checkpoints,
                     "Fail when fewer signed checkpoints exist");
  verify->add_option(
      "--passphrase-file", verify_args->passphrase_file,
      "File holding the vault passphrase or token PIN (first line), to read the head the "
      "store holds");
  verify->add_flag("--json", verify_args->json, "Print the result as JSON");
  verify->callback([verify_args, &action] { action = [verify_args] { return RunVerify(*verify_args); }; });

  auto log_args = std::make_shared<QueryArgs>();
  CLI::App* log = audit->add_subcommand("log", "List usage records, oldest first");
  AddLogOptions(log, log_args->log);
  log->add_option("--key", log_args->key, "Key name or key id");
  log->add_option("--actor", log_args->actor, "Who acted");
  log->add_option("--operation", log_args->operation, "sign, rotate, ...");
  log->add_option("--since", log_args->since, "From (unix seconds, YYYY-MM-DD[THH:MM:SSZ], or 24h/7d ago)");
  log->add_option("--until", log_args->until, "Before (same forms)");
  log->add_option("--result", log_args->result, "ok, denied or failed");
  log->add_option("--limit", log_args->limit, "At most this many records");
  log->add_flag("--json", log_args->json, "Print the records as JSON");
  log->callback([log_args, &action] { action = [log_args] { return RunLog(*log_args); }; });

  auto report_args = std::make_shared<ReportArgs>();
  CLI::App* report = audit->add_subcommand("report", "Summarise key usage over a period");
  AddLogOptions(report, report_args->log);
  report->add_option("--period", report_args->period, "daily, weekly, monthly (30 d) or quarterly (91 d)")
      ->required();
  report->add_option("--end", report_args->end, "End of the period (default: now)");
  report->add_option("--max-age", report_args->max_ages,
                     "PURPOSE=DAYS, overriding the default maximum key age for rotation");
  report->add_flag("--json", report_args->json, "Print the report as JSON");
  report->callback([report_args, &action] { action = [report_args] { return RunReport(*report_args); }; });

  auto cp_args = std::make_shared<CheckpointArgs>();
  CLI::App* cp = audit->add_subcommand("checkpoint", "Sign a checkpoint over the current head now");
  AddLogOptions(cp, cp_args->log);
  cp->add_option("--sign-key", cp_args->sign_key, "Audit private key (PEM)")->required();
  cp->add_flag("--json", cp_args->json, "Print the checkpoint as JSON");
  cp->callback([cp_args, &action] { action = [cp_args] { return RunCheckpoint(*cp_args); }; });

  AddAccessCommands(app, action);
}

}  // namespace airlock::cli
