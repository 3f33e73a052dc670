#include "access/access_store.h"
#include "sqlite/sqlite_util.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <ctime>

#include "crypto/hash.h"
#include "crypto/random.h"

namespace airlock::access {

namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS principals (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  roles TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL,
  expires INTEGER,
  token_hash TEXT UNIQUE,
  totp_secret BLOB,
  totp_sealed INTEGER NOT NULL DEFAULT 0,
  totp_algorithm TEXT,
  totp_digits INTEGER,
  totp_period INTEGER,
  totp_last_step INTEGER);
)sql";

// The shared SQLite helpers (sqlite_util.h), with this store's name in their error messages.
using sqlite::BindBlob;
using sqlite::BindText;
using sqlite::ColumnBlob;
using sqlite::ColumnText;
using sqlite::DbPtr;
using sqlite::StmtPtr;

constexpr sqlite::Context kAccessDb{"access store"};
using Transaction = sqlite::Transaction;  // BEGIN/COMMIT errors say "SQLite: ..."

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxPrincipalNameSize) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<void> CheckRoles(const std::vector<Role>& roles) {
  if (roles.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "a principal needs at least one role");
  }
  return {};
}

constexpr const char* kPrincipalColumns =
    "name, kind, roles, disabled, created, expires, totp_secret IS NOT NULL, token_id, parent_id, "
    "apps, last_used";
// The column index of token_hash when selected after kPrincipalColumns.
constexpr int kTokenHashColumn = 11;

Result<Principal> ReadPrincipal(sqlite3_stmt* s) {
  Principal p;
  p.name = ColumnText(s, 0);
  p.kind = ColumnText(s, 1) == "token" ? PrincipalKind::kToken : PrincipalKind::kPerson;
  auto roles = ParseRolesText(ColumnText(s, 2));
  if (!roles) return MakeError(ErrorCode::kMalformed, "access store: bad roles for " + p.name);
  p.roles = std::move(*roles);
  p.disabled = sqlite3_column_int64(s, 3) != 0;
  p.created = sqlite3_column_int64(s, 4);
  if (sqlite3_column_type(s, 5) != SQLITE_NULL) p.expires = sqlite3_column_int64(s, 5);
  p.has_totp = sqlite3_column_int64(s, 6) != 0;
  p.token_id = ColumnText(s, 7);
  if (sqlite3_column_type(s, 8) != SQLITE_NULL) p.parent_token_id = ColumnText(s, 8);
  std::string apps = ColumnText(s, 9);
  for (std::string_view rest = apps; !rest.empty();) {
    size_t comma = rest.find(',');
    p.apps.emplace_back(rest.substr(0, comma));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (sqlite3_column_type(s, 10) != SQLITE_NULL) p.last_used = sqlite3_column_int64(s, 10);
  return p;
}

// Token columns added after schema version 1 (additive, so older binaries still read the file):
// the token id, the minting token, the app limit and the last use. Added on open when missing.
Result<void> EnsureTokenColumns(sqlite3* db) {
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr info,
                           kAccessDb.Prepare(db,
                                             "SELECT count(*) FROM pragma_table_info("
                                             "'principals') WHERE name = 'token_id'"));
  if (sqlite3_step(info.get()) != SQLITE_ROW) {
    return tl::unexpected(kAccessDb.DbError(db, "table info"));
  }
  const bool present = sqlite3_column_int64(info.get(), 0) != 0;
  info.reset();
  if (present) return {};
  AIRLOCK_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
  AIRLOCK_TRY(kAccessDb.Exec(
      db,
      "ALTER TABLE principals ADD COLUMN token_id TEXT;"
      "ALTER TABLE principals ADD COLUMN parent_id TEXT;"
      "ALTER TABLE principals ADD COLUMN apps TEXT;"
      "ALTER TABLE principals ADD COLUMN last_used INTEGER;"
      "UPDATE principals SET token_id = 'tok_' || substr(token_hash, 1, 16) "
      "  WHERE kind = 'token';"
      "CREATE UNIQUE INDEX IF NOT EXISTS principals_token_id ON principals(token_id);"));
  return tx.Commit();
}

bool ValidAppName(std::string_view app) {
  if (app.empty() || app.size() > 128) return false;
  return std::all_of(app.begin(), app.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string TokenIdForHash(std::string_view hash_hex) {
  return "tok_" + std::string(hash_hex.substr(0, 16));
}

}  // namespace

std::filesystem::path AccessPathForVault(const std::filesystem::path& vault_path) {
  std::filesystem::path p = vault_path;
  p += ".access";
  return p;
}

std::string TokenHash(std::string_view token) { return HexEncode(crypto::Sha256(AsBytes(token))); }

struct AccessStore::Impl {
  DbPtr db;
  AccessOptions options;
};

AccessStore::AccessStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AccessStore::AccessStore(AccessStore&& other) noexcept = default;
AccessStore& AccessStore::operator=(AccessStore&& other) noexcept = default;
AccessStore::~AccessStore() = default;

int64_t AccessStore::Now() const {
  return impl_->options.clock ? impl_->options.clock() : static_cast<int64_t>(std::time(nullptr));
}

namespace {

Result<DbPtr> OpenAccessDb(const std::filesystem::path& path, bool create) {
  AIRLOCK_ASSIGN_OR_RETURN(DbPtr db, sqlite::OpenPrivateDb(path, create, kAccessDb.name));
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr tables,
      kAccessDb.Prepare(db.get(), "SELECT count(*) FROM sqlite_master WHERE type = 'table'"));
  if (sqlite3_step(tables.get()) != SQLITE_ROW) {
    return MakeError(ErrorCode::kMalformed, path.string() + " is not an access store");
  }
  int64_t table_count = sqlite3_column_int64(tables.get(), 0);
  tables.reset();
  AIRLOCK_TRY(kAccessDb.Exec(db.get(), "PRAGMA synchronous = FULL"));
  if (table_count == 0) {
    AIRLOCK_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db.get()));
    AIRLOCK_TRY(kAccessDb.Exec(db.get(), kSchema));
    AIRLOCK_TRY(
        kAccessDb.Exec(db.get(), ("INSERT OR IGNORE INTO meta VALUES ('format', 'airlock-access'), "
                                  "('version', '" +
                                  std::to_string(kSchemaVersion) + "')")
                                     .c_str()));
    AIRLOCK_TRY(tx.Commit());
    AIRLOCK_TRY(EnsureTokenColumns(db.get()));
    return db;
  }
  auto meta = kAccessDb.Prepare(db.get(), "SELECT name, value FROM meta");
  if (!meta) return MakeError(ErrorCode::kMalformed, path.string() + " is not an access store");
  std::string format, version;
  while (sqlite3_step(meta->get()) == SQLITE_ROW) {
    std::string name = ColumnText(meta->get(), 0);
    if (name == "format") format = ColumnText(meta->get(), 1);
    if (name == "version") version = ColumnText(meta->get(), 1);
  }
  if (format != "airlock-access") {
    return MakeError(ErrorCode::kMalformed, path.string() + " is not an access store");
  }
  if (version != std::to_string(kSchemaVersion)) {
    return MakeError(ErrorCode::kUnsupported, "access store " + path.string() +
                                                  " has schema version " + version.substr(0, 16));
  }
  AIRLOCK_TRY(EnsureTokenColumns(db.get()));
  return db;
}

}  // namespace

Result<AccessStore> AccessStore::Open(const std::filesystem::path& path, AccessOptions options) {
  AIRLOCK_ASSIGN_OR_RETURN(DbPtr db, OpenAccessDb(path, /*create=*/true));
  auto impl = std::make_unique<Impl>();
  impl->db = std::move(db);
  impl->options = std::move(options);
  return AccessStore(std::move(impl));
}

Result<AccessStore> AccessStore::OpenExisting(const std::filesystem::path& path,
                                              AccessOptions options) {
  AIRLOCK_ASSIGN_OR_RETURN(DbPtr db, OpenAccessDb(path, /*create=*/false));
  auto impl = std::make_unique<Impl>();
  impl->db = std::move(db);
  impl->options = std::move(options);
  return AccessStore(std::move(impl));
}

Result<bool> AccessStore::Empty() const {
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s, kAccessDb.Prepare(db, "SELECT count(*) FROM principals"));
  if (sqlite3_step(s.get()) != SQLITE_ROW) return tl::unexpected(kAccessDb.DbError(db, "count"));
  return sqlite3_column_int64(s.get(), 0) == 0;
}

Result<Principal> AccessStore::AddPerson(std::string_view name, const std::vector<Role>& roles) {
  if (!ValidName(name)) {
    return MakeError(ErrorCode::kInvalidArgument, "principal names are 1..128 of [A-Za-z0-9._@+-]");
  }
  AIRLOCK_TRY(CheckRoles(roles));
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s,
      kAccessDb.Prepare(
          db, "INSERT INTO principals (name, kind, roles, created) VALUES (?, 'person', ?, ?)"));
  BindText(s.get(), 1, name);
  BindText(s.get(), 2, RolesText(roles));
  sqlite3_bind_int64(s.get(), 3, Now());
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_CONSTRAINT) {
    return MakeError(ErrorCode::kAlreadyExists,
                     "principal " + std::string(name) + " already exists");
  }
  if (rc != SQLITE_DONE) return tl::unexpected(kAccessDb.DbError(db, "add principal"));
  return Get(name);
}

Result<Principal> AccessStore::Get(std::string_view name) const {
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s,
                           kAccessDb.Prepare(db, std::string("SELECT ") + kPrincipalColumns +
                                                     " FROM principals WHERE name = ?"));
  BindText(s.get(), 1, name);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) {
    return MakeError(ErrorCode::kNotFound,
                     "no principal named " + std::string(name.substr(0, kMaxPrincipalNameSize)));
  }
  if (rc != SQLITE_ROW) return tl::unexpected(kAccessDb.DbError(db, "get principal"));
  return ReadPrincipal(s.get());
}

Result<std::vector<Principal>> AccessStore::List() const {
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s,
                           kAccessDb.Prepare(db, std::string("SELECT ") + kPrincipalColumns +
                                                     " FROM principals ORDER BY name"));
  std::vector<Principal> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    AIRLOCK_ASSIGN_OR_RETURN(Principal p, ReadPrincipal(s.get()));
    out.push_back(std::move(p));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(kAccessDb.DbError(db, "list principals"));
  return out;
}

namespace {

// Runs an UPDATE/DELETE on one principal; kNotFound when no row changed.
Result<void> ChangeOne(sqlite3* db, StmtPtr s, std::string_view name) {
  if (sqlite3_step(s.get()) != SQLITE_DONE) {
    return tl::unexpected(kAccessDb.DbError(db, "update principal"));
  }
  if (sqlite3_changes(db) == 0) {
    return MakeError(ErrorCode::kNotFound,
                     "no principal named " + std::string(name.substr(0, kMaxPrincipalNameSize)));
  }
  return {};
}

}  // namespace

Result<void> AccessStore::SetRoles(std::string_view name, const std::vector<Role>& roles) {
  AIRLOCK_TRY(CheckRoles(roles));
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s,
                           kAccessDb.Prepare(db, "UPDATE principals SET roles = ? WHERE name = ?"));
  BindText(s.get(), 1, RolesText(roles));
  BindText(s.get(), 2, name);
  return ChangeOne(db, std::move(s), name);
}

Result<void> AccessStore::SetDisabled(std::string_view name, bool disabled) {
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s, kAccessDb.Prepare(db, "UPDATE principals SET disabled = ? WHERE name = ?"));
  sqlite3_bind_int64(s.get(), 1, disabled ? 1 : 0);
  BindText(s.get(), 2, name);
  return ChangeOne(db, std::move(s), name);
}

Result<void> AccessStore::Remove(std::string_view name) {
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s,
                           kAccessDb.Prepare(db, "DELETE FROM principals WHERE name = ?"));
  BindText(s.get(), 1, name);
  return ChangeOne(db, std::move(s), name);
}

namespace {

bool IsCustodian(const Principal& p) {
  return p.kind == PrincipalKind::kPerson && !p.disabled &&
         std::any_of(p.roles.begin(), p.roles.end(),
                     [](Role r) { return r == Role::kKeyCustodian || r == Role::kOwner; });
}

}  // namespace

Result<void> AccessStore::CheckTotpAuthority(const Principal& subject,
                                             const TotpAuthority& authority) {
  if (!subject.has_totp) return {};  // a first enrolment
  const std::string& name = subject.name;
  if (authority.own_code && !authority.own_code->empty()) {
    AIRLOCK_TRY_CTX(CheckTotp(name, *authority.own_code), "current TOTP code of " + name);
    return {};
  }
  if (authority.custodians.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     name + " already has a TOTP second factor: replacing or removing it needs " +
                         name + "'s current code (--totp), or two key custodians with theirs");
  }
  if (authority.custodians.size() != 2 ||
      authority.custodians[0].first == authority.custodians[1].first) {
    return Denied("replacing the TOTP of " + name + " needs two different key custodians");
  }
  for (const auto& [custodian, code] : authority.custodians) {
    if (custodian == name) {
      return Denied(custodian + " cannot vouch for their own TOTP; use the current code instead");
    }
    auto c = Get(custodian);
    if (!c || !IsCustodian(*c)) {
      return Denied(custodian.substr(0, kMaxPrincipalNameSize) +
                    " is not an enabled key custodian or owner");
    }
    AIRLOCK_TRY_CTX(CheckTotp(custodian, code), "second factor for " + custodian);
  }
  return {};
}

Result<TotpEnrollment> AccessStore::EnrollTotp(std::string_view name,
                                               const TotpAuthority& authority) {
  AIRLOCK_ASSIGN_OR_RETURN(Principal p, Get(name));
  if (p.kind != PrincipalKind::kPerson) {
    return MakeError(ErrorCode::kInvalidArgument, "API tokens have no TOTP second factor");
  }
  if (!impl_->options.sealer) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "TOTP secrets are sealed under the vault key: open the access store with its "
                     "vault (--vault file:PATH)");
  }
  AIRLOCK_TRY(CheckTotpAuthority(p, authority));
  const TotpParams& params = impl_->options.totp;
  AIRLOCK_ASSIGN_OR_RETURN(Bytes secret, GenerateTotpSecret(params.algorithm));
  AIRLOCK_TRY(ValidateTotpParams(params, secret));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes stored,
                           impl_->options.sealer->seal(secret, "airlock-totp:" + p.name));
  const bool sealed = true;
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s, kAccessDb.Prepare(
                     db,
                     "UPDATE principals SET totp_secret = ?, totp_sealed = ?, totp_algorithm = ?, "
                     "totp_digits = ?, totp_period = ?, totp_last_step = NULL WHERE name = ?"));
  sqlite3_bind_blob(s.get(), 1, stored.data(), static_cast<int>(stored.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(s.get(), 2, sealed ? 1 : 0);
  BindText(s.get(), 3, TotpAlgorithmName(params.algorithm));
  sqlite3_bind_int64(s.get(), 4, params.digits);
  sqlite3_bind_int64(s.get(), 5, params.period);
  BindText(s.get(), 6, name);
  AIRLOCK_TRY(ChangeOne(db, std::move(s), name));
  TotpEnrollment e;
  e.base32 = Base32Encode(secret);
  e.uri = OtpauthUri(impl_->options.issuer, p.name, secret, params);
  e.secret = std::move(secret);
  return e;
}

Result<void> AccessStore::RemoveTotp(std::string_view name, const TotpAuthority& authority) {
  AIRLOCK_ASSIGN_OR_RETURN(Principal p, Get(name));
  if (!p.has_totp) {
    return MakeError(ErrorCode::kNotFound, p.name + " has no TOTP second factor enrolled");
  }
  AIRLOCK_TRY(CheckTotpAuthority(p, authority));
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s, kAccessDb.Prepare(db,
                                   "UPDATE principals SET totp_secret = NULL, totp_sealed = 0, "
                                   "totp_last_step = NULL WHERE name = ?"));
  BindText(s.get(), 1, name);
  return ChangeOne(db, std::move(s), name);
}

Result<void> AccessStore::CheckTotp(std::string_view name, std::string_view code) {
  sqlite3* db = impl_->db.get();
  // One IMMEDIATE transaction from read to the step update, so two processes cannot both accept a
  // code.
  AIRLOCK_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s,
      kAccessDb.Prepare(db,
                        "SELECT disabled, totp_secret, totp_sealed, totp_algorithm, totp_digits, "
                        "totp_period, totp_last_step, kind FROM principals WHERE name = ?"));
  BindText(s.get(), 1, name);
  int rc = sqlite3_step(s.get());
  std::string shown(name.substr(0, kMaxPrincipalNameSize));
  if (rc == SQLITE_DONE) return Denied("unknown principal " + shown);
  if (rc != SQLITE_ROW) return tl::unexpected(kAccessDb.DbError(db, "read TOTP"));
  if (sqlite3_column_int64(s.get(), 0) != 0) return Denied(shown + " is disabled");
  if (sqlite3_column_type(s.get(), 1) == SQLITE_NULL) {
    return Denied(shown + " has no TOTP second factor enrolled");
  }
  Bytes secret = ColumnBlob(s.get(), 1);
  bool sealed = sqlite3_column_int64(s.get(), 2) != 0;
  TotpParams params = impl_->options.totp;
  AIRLOCK_ASSIGN_OR_RETURN(params.algorithm, ParseTotpAlgorithm(ColumnText(s.get(), 3)));
  params.digits = static_cast<int>(sqlite3_column_int64(s.get(), 4));
  params.period = sqlite3_column_int64(s.get(), 5);
  std::optional<int64_t> last_step;
  if (sqlite3_column_type(s.get(), 6) != SQLITE_NULL) last_step = sqlite3_column_int64(s.get(), 6);
  s.reset();
  if (sealed) {
    if (!impl_->options.sealer) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          "the TOTP secret of " + shown + " is sealed by the vault; open the vault first");
    }
    AIRLOCK_ASSIGN_OR_RETURN(secret, impl_->options.sealer->open(secret, "airlock-totp:" + shown));
  }
  AIRLOCK_ASSIGN_OR_RETURN(int64_t step, TotpVerify(secret, code, Now(), params, last_step));
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr u, kAccessDb.Prepare(db, "UPDATE principals SET totp_last_step = ? WHERE name = ?"));
  sqlite3_bind_int64(u.get(), 1, step);
  BindText(u.get(), 2, name);
  if (sqlite3_step(u.get()) != SQLITE_DONE) {
    return tl::unexpected(kAccessDb.DbError(db, "record TOTP step"));
  }
  u.reset();
  return tx.Commit();
}

Result<CreatedToken> AccessStore::CreateToken(std::string_view name, const std::vector<Role>& roles,
                                              int64_t ttl_seconds) {
  return CreateToken(name, roles, ttl_seconds, TokenLimits{});
}

Result<CreatedToken> AccessStore::CreateToken(std::string_view name, const std::vector<Role>& roles,
                                              int64_t ttl_seconds, const TokenLimits& limits) {
  if (!ValidName(name)) {
    return MakeError(ErrorCode::kInvalidArgument, "token names are 1..128 of [A-Za-z0-9._@+-]");
  }
  AIRLOCK_TRY(CheckRoles(roles));
  if (ttl_seconds < 0) return MakeError(ErrorCode::kInvalidArgument, "token lifetime must be >= 0");
  for (const std::string& app : limits.apps) {
    if (!ValidAppName(app)) {
      return MakeError(ErrorCode::kInvalidArgument, "app names are 1..128 of [A-Za-z0-9._-]");
    }
  }
  const int64_t now = Now();
  std::optional<int64_t> expires;
  if (ttl_seconds > 0) expires = now + ttl_seconds;
  std::vector<std::string> apps = limits.apps;
  if (limits.parent_token_id) {
    auto parent = FindTokenById(*limits.parent_token_id);
    if (!parent) {
      if (parent.error().code() == ErrorCode::kNotFound) return Denied("unknown parent token");
      return tl::unexpected(parent.error());
    }
    if (parent->disabled) return Denied("API token " + parent->name + " is revoked");
    if (parent->expires) {
      if (now >= *parent->expires) return Denied("API token " + parent->name + " has expired");
      if (!expires) {
        expires = parent->expires;  // never outlives its parent
      } else if (*expires > *parent->expires) {
        return Denied("a token may not outlive the token that mints it (" + parent->name +
                      " expires at " + std::to_string(*parent->expires) + ", " +
                      std::to_string(*parent->expires - now) + " s from now)");
      }
    }
    if (!parent->apps.empty()) {
      if (apps.empty()) apps = parent->apps;
      for (const std::string& app : apps) {
        if (!AllowsApp(*parent, app)) {
          return Denied("app " + app + " is outside the apps of " + parent->name);
        }
      }
    }
  }
  std::string apps_text;
  for (const std::string& app : apps) {
    if (!apps_text.empty()) apps_text += ',';
    apps_text += app;
  }
  AIRLOCK_ASSIGN_OR_RETURN(Bytes random, crypto::RandomBytes(32));
  CreatedToken out;
  out.token = std::string(kTokenPrefix) + HexEncode(random);
  out.hash = TokenHash(out.token);
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s,
      kAccessDb.Prepare(db,
                        "INSERT INTO principals (name, kind, roles, created, expires, token_hash, "
                        "token_id, parent_id, apps) VALUES (?, 'token', ?, ?, ?, ?, ?, ?, ?)"));
  BindText(s.get(), 1, name);
  BindText(s.get(), 2, RolesText(roles));
  sqlite3_bind_int64(s.get(), 3, now);
  if (expires) sqlite3_bind_int64(s.get(), 4, *expires);
  BindText(s.get(), 5, out.hash);
  BindText(s.get(), 6, TokenIdForHash(out.hash));
  if (limits.parent_token_id) BindText(s.get(), 7, *limits.parent_token_id);
  if (!apps_text.empty()) BindText(s.get(), 8, apps_text);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_CONSTRAINT) {
    return MakeError(ErrorCode::kAlreadyExists,
                     "principal " + std::string(name) + " already exists");
  }
  if (rc != SQLITE_DONE) return tl::unexpected(kAccessDb.DbError(db, "create token"));
  AIRLOCK_ASSIGN_OR_RETURN(out.principal, Get(name));
  return out;
}

Result<Principal> AccessStore::FindTokenById(std::string_view token_id) const {
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s,
      kAccessDb.Prepare(db, std::string("SELECT ") + kPrincipalColumns +
                                " FROM principals WHERE kind = 'token' AND token_id = ?"));
  BindText(s.get(), 1, token_id);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) {
    return MakeError(ErrorCode::kNotFound,
                     "no token with id " + std::string(token_id.substr(0, 64)));
  }
  if (rc != SQLITE_ROW) return tl::unexpected(kAccessDb.DbError(db, "find token"));
  return ReadPrincipal(s.get());
}

Result<Principal> AccessStore::RevokeToken(std::string_view token_id) {
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s,
      kAccessDb.Prepare(
          db, "UPDATE principals SET disabled = 1 WHERE kind = 'token' AND token_id = ?"));
  BindText(s.get(), 1, token_id);
  if (sqlite3_step(s.get()) != SQLITE_DONE) {
    return tl::unexpected(kAccessDb.DbError(db, "revoke token"));
  }
  return FindTokenById(token_id);
}

Result<void> AccessStore::RecordTokenUse(const Principal& token) {
  const int64_t now = Now();
  if (token.token_id.empty()) return {};
  if (token.last_used && now - *token.last_used < kTokenUseInterval && now >= *token.last_used) {
    return {};
  }
  sqlite3* db = impl_->db.get();
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s,
      kAccessDb.Prepare(
          db, "UPDATE principals SET last_used = ? WHERE kind = 'token' AND token_id = ?"));
  sqlite3_bind_int64(s.get(), 1, now);
  BindText(s.get(), 2, token.token_id);
  if (sqlite3_step(s.get()) != SQLITE_DONE) {
    return tl::unexpected(kAccessDb.DbError(db, "record token use"));
  }
  return {};
}

Result<Principal> AccessStore::FindTokenByHash(std::string_view hash_hex) const {
  sqlite3* db = impl_->db.get();
  if (hash_hex.size() != 2 * crypto::kSha256Size) {
    return MakeError(ErrorCode::kNotFound, "no token with that hash");
  }
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s,
      kAccessDb.Prepare(
          db, std::string("SELECT ") + kPrincipalColumns +
                  ", token_hash FROM principals WHERE kind = 'token' AND token_hash = ?"));
  BindText(s.get(), 1, hash_hex);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return MakeError(ErrorCode::kNotFound, "no token with that hash");
  if (rc != SQLITE_ROW) return tl::unexpected(kAccessDb.DbError(db, "find token"));
  // The index lookup is on a hash of 256 random bits, so its timing says nothing useful about a
  // token; the final comparison is constant-time all the same.
  if (!ConstantTimeEqual(AsBytes(ColumnText(s.get(), kTokenHashColumn)), AsBytes(hash_hex))) {
    return MakeError(ErrorCode::kNotFound, "no token with that hash");
  }
  return ReadPrincipal(s.get());
}

Result<Principal> AccessStore::AuthenticateToken(std::string_view token) const {
  bool well_formed = token.size() == kTokenPrefix.size() + 64 && token.substr(0, 4) == kTokenPrefix;
  if (well_formed) {
    for (char c : token.substr(kTokenPrefix.size())) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) well_formed = false;
    }
  }
  if (!well_formed) {
    return MakeError(ErrorCode::kMalformed, "an API token is \"alk_\" and 64 hex digits");
  }
  auto p = FindTokenByHash(TokenHash(token));
  if (!p) {
    if (p.error().code() == ErrorCode::kNotFound) return Denied("unknown API token");
    return tl::unexpected(p.error());
  }
  if (p->disabled) return Denied("API token " + p->name + " is revoked");
  if (p->expires && Now() >= *p->expires) return Denied("API token " + p->name + " has expired");
  // A token works only while every token up its minting chain does (revoking a parent stops its
  // children). Chains are short; the bound only guards against a hand-edited loop.
  std::optional<std::string> parent_id = p->parent_token_id;
  for (int depth = 0; parent_id; ++depth) {
    if (depth >= 64) return Denied("API token " + p->name + " has too long a parent chain");
    auto parent = FindTokenById(*parent_id);
    if (!parent) {
      if (parent.error().code() == ErrorCode::kNotFound) {
        return Denied("API token " + p->name + " was minted by a token that no longer exists");
      }
      return tl::unexpected(parent.error());
    }
    if (parent->disabled) {
      return Denied("API token " + p->name + " was minted by " + parent->name +
                    ", which is revoked");
    }
    if (parent->expires && Now() >= *parent->expires) {
      return Denied("API token " + p->name + " was minted by " + parent->name +
                    ", which has expired");
    }
    parent_id = parent->parent_token_id;
  }
  return p;
}

Result<Principal> AccessStore::AuthorizeActor(std::string_view actor, Action action,
                                              std::optional<std::string_view> totp_code,
                                              std::optional<std::string>* verified) {
  auto p = Get(actor);
  if (!p) {
    if (p.error().code() == ErrorCode::kNotFound) {
      return Denied("unknown principal " + std::string(actor.substr(0, kMaxPrincipalNameSize)));
    }
    return tl::unexpected(p.error());
  }
  if (p->kind == PrincipalKind::kToken && p->expires && Now() >= *p->expires) {
    return Denied("API token " + p->name + " has expired");
  }
  AIRLOCK_TRY(Authorize(*p, action));
  if (RequiresSecondFactor(action)) {
    if (p->kind != PrincipalKind::kPerson) {
      return Denied(std::string(ActionName(action)) + " needs a person with a TOTP second factor");
    }
    if (verified != nullptr && *verified == p->name) return p;  // checked once this session
    if (!totp_code || totp_code->empty()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       std::string(ActionName(action)) + " requires a TOTP code (--totp CODE)");
    }
    AIRLOCK_TRY_CTX(CheckTotp(p->name, *totp_code), "second factor for " + p->name);
    if (verified != nullptr) *verified = p->name;
  }
  return p;
}

}  // namespace airlock::access
