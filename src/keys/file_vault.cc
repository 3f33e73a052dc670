#include "keys/file_vault.h"
#include "sqlite/sqlite_util.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <utility>

#include "crypto/random.h"
#include "crypto/rsa_raw.h"
#include "crypto/sign.h"
#include "crypto/wrap.h"
#include "keys/secret_box.h"

namespace airlock::keys {
namespace {

constexpr std::string_view kFormat = "airlock-vault-1";
constexpr std::string_view kCheckPlaintext = "airlock vault key check v1";
constexpr size_t kSaltSize = 16;
constexpr size_t kMaxPassphraseSize = 4096;

using sqlite::DbPtr;
using sqlite::StmtPtr;

Error DbError(sqlite3* db, std::string_view what) {
  return Error(ErrorCode::kIo, std::string(what) + ": " + sqlite3_errmsg(db));
}

// A prepared statement with positional binding. Not copyable.
class Stmt {
 public:
  static Result<Stmt> Prepare(sqlite3* db, std::string_view sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr) !=
        SQLITE_OK) {
      sqlite3_finalize(raw);
      return tl::unexpected(DbError(db, "cannot prepare SQL"));
    }
    return Stmt(db, StmtPtr(raw));
  }
  Stmt& Bind(std::string_view text) {
    sqlite3_bind_text(stmt_.get(), ++index_, text.data(), static_cast<int>(text.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(ByteSpan blob) {
    static const uint8_t kEmpty = 0;
    sqlite3_bind_blob(stmt_.get(), ++index_, blob.empty() ? &kEmpty : blob.data(),
                      static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int64_t v) {
    sqlite3_bind_int64(stmt_.get(), ++index_, v);
    return *this;
  }
  // true: a row is available; false: done.
  Result<bool> Step() {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    if (rc == SQLITE_CONSTRAINT) {
      return MakeError(ErrorCode::kAlreadyExists, std::string("constraint: ") + sqlite3_errmsg(db_));
    }
    return tl::unexpected(DbError(db_, "SQLite step failed"));
  }
  Result<void> Run() {
    AIRLOCK_ASSIGN_OR_RETURN(bool row, Step());
    (void)row;
    return {};
  }
  std::string Text(int col) const {
    const auto* p = sqlite3_column_text(stmt_.get(), col);
    return p == nullptr ? std::string()
                        : std::string(reinterpret_cast<const char*>(p),
                                      static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), col)));
  }
  Bytes Blob(int col) const {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_.get(), col));
    const int n = sqlite3_column_bytes(stmt_.get(), col);
    return p == nullptr ? Bytes() : Bytes(p, p + n);
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_.get(), col); }

 private:
  Stmt(sqlite3* db, StmtPtr s) : db_(db), stmt_(std::move(s)) {}
  sqlite3* db_;
  StmtPtr stmt_;
  int index_ = 0;
};

Result<void> Exec(sqlite3* db, const char* sql) { return sqlite::Exec(db, sql, "SQLite"); }
using Transaction = sqlite::Transaction;

void AppendField(Bytes& out, std::string_view field) {
  AppendU32Be(out, static_cast<uint32_t>(field.size()));
  out.insert(out.end(), field.begin(), field.end());
}

constexpr std::string_view kRecordDomain = "airlock/vault/v1/key";
constexpr std::string_view kExportDomain = "airlock/key-export/v1";

// Length-prefixed fields, so no two distinct rows share associated data.
Bytes RecordAad(std::string_view domain, const KeyInfo& info, std::string_view public_pem) {
  Bytes aad;
  AppendField(aad, domain);
  AppendField(aad, info.name);
  AppendField(aad, info.key_id);
  AppendField(aad, crypto::KeyTypeName(info.type));
  AppendField(aad, KeyPurposeName(info.purpose));
  AppendField(aad, KeyStateName(info.state));
  AppendU64Be(aad, static_cast<uint64_t>(info.created_at));
  AppendU64Be(aad, static_cast<uint64_t>(info.state_changed_at));
  AppendField(aad, public_pem);
  // The origin is bound only when it is "imported": records and exports of generated keys keep
  // exactly the associated data made before the origin existed (so older vaults open unchanged and
  // older backups restore), and an imported key's origin cannot be edited in a vault or a backup
  // without the entry failing to open. (Backups made before exports bound it restore an imported
  // key as generated.)
  if (info.origin == KeyOrigin::kImported) {
    AppendField(aad, "origin=imported");
  }
  return aad;
}

// v1: vaults made before the sealed state row; v2: vaults that have one (see file_vault.h).
Bytes CheckAad(const KdfParams& p, ByteSpan salt, int version = 2) {
  Bytes aad;
  AppendField(aad, version == 1 ? "airlock/vault/v1/check" : "airlock/vault/v2/check");
  AppendU32Be(aad, p.t_cost);
  AppendU32Be(aad, p.m_cost_kib);
  AppendU32Be(aad, p.parallelism);
  aad.insert(aad.end(), salt.begin(), salt.end());
  return aad;
}

Bytes StateAad(ByteSpan salt) {
  Bytes aad;
  AppendField(aad, "airlock/vault/v1/state");
  aad.insert(aad.end(), salt.begin(), salt.end());
  return aad;
}

Bytes SecretAad(std::string_view purpose) {
  Bytes aad;
  AppendField(aad, "airlock/vault/v1/secret");
  AppendField(aad, purpose);
  return aad;
}

Result<std::string> GetSecret(const KeyStoreOptions& options) {
  std::string secret;
  if (options.secret) {
    AIRLOCK_ASSIGN_OR_RETURN(secret, options.secret());
  } else if (const char* env = std::getenv(kVaultPassphraseEnv); env != nullptr) {
    secret = env;
  } else {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string("no vault passphrase: the caller gave none and $") +
                         kVaultPassphraseEnv + " is not set");
  }
  if (secret.empty() || secret.size() > kMaxPassphraseSize) {
    WipeString(secret);
    return MakeError(ErrorCode::kInvalidArgument, "the vault passphrase must be 1..4096 bytes");
  }
  return secret;
}

Result<bool> HasOriginColumn(sqlite3* db);

struct Row {
  KeyInfo info;
  std::string public_pem;
  Bytes sealed;
};

class FileVault final : public FileVaultStore {
 public:
  FileVault(std::filesystem::path path, DbPtr db, SecretBytes kek, std::function<int64_t()> now,
            bool has_origin, Bytes salt)
      : path_(std::move(path)),
        db_(std::move(db)),
        kek_(std::move(kek)),
        now_(std::move(now)),
        has_origin_(has_origin),
        salt_(std::move(salt)) {}

  sqlite3* db() const { return db_.get(); }
  Result<Bytes> SealCheck(const KdfParams& params) {
    return SealAesGcm(kek_.span(), AsBytes(kCheckPlaintext), CheckAad(params, salt_, 2));
  }

  Result<VaultState> ReadState() override {
    auto sealed = HeaderBlob("state");
    if (!sealed) {
      return MakeError(ErrorCode::kDecryptFailed,
                       "vault " + path_.string() + ": its sealed state record is missing");
    }
    auto plain = OpenAesGcm(kek_.span(), *sealed, StateAad(salt_));
    if (!plain) {
      return MakeError(
          ErrorCode::kDecryptFailed,
          "vault " + path_.string() + ": its sealed state record does not authenticate");
    }
    return DecodeVaultState(plain->span());
  }

  Result<VaultState> UpdateState(const std::function<Result<void>(VaultState&)>& change) override {
    AIRLOCK_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_.get()));
    AIRLOCK_ASSIGN_OR_RETURN(VaultState state, ReadState());
    AIRLOCK_TRY(change(state));
    AIRLOCK_TRY(WriteState(state));
    AIRLOCK_TRY(tx.Commit());
    return state;
  }

  Result<Bytes> SealSecret(ByteSpan plaintext, std::string_view purpose) override {
    return SealAesGcm(kek_.span(), plaintext, SecretAad(purpose));
  }

  Result<SecretBytes> OpenSecret(ByteSpan sealed, std::string_view purpose) override {
    return OpenAesGcm(kek_.span(), sealed, SecretAad(purpose));
  }

  // Inside the caller's transaction.
  Result<void> WriteState(const VaultState& state) {
    AIRLOCK_ASSIGN_OR_RETURN(Bytes sealed,
                             SealAesGcm(kek_.span(), EncodeVaultState(state), StateAad(salt_)));
    AIRLOCK_ASSIGN_OR_RETURN(
        Stmt s,
        Stmt::Prepare(db_.get(),
                      "INSERT OR REPLACE INTO vault_header (name, value) VALUES ('state', ?)"));
    s.BindBlob(sealed);
    return s.Run();
  }

  std::string Uri() const override { return "file:" + path_.string(); }

  Result<KeyInfo> Create(std::string_view name, crypto::KeyType type, KeyPurpose purpose) override {
    if (!IsValidStoredKeyName(name)) {
      return MakeError(ErrorCode::kInvalidArgument, "invalid key name '" + std::string(name) + "'");
    }
    AIRLOCK_TRY(CheckTypeForPurpose(type, purpose));
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey key,
                             type == crypto::KeyType::kRsa
                                 ? crypto::PrivateKey::GenerateRsa(RsaBitsForPurpose(purpose))
                                 : crypto::PrivateKey::Generate(type));
    AIRLOCK_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_.get()));
    AIRLOCK_ASSIGN_OR_RETURN(auto existing, Find(name));
    if (existing) {
      return MakeError(ErrorCode::kAlreadyExists, "key " + std::string(name) + " already exists");
    }
    Row row;
    row.info.name = std::string(name);
    row.info.key_id = key.KeyId();
    row.info.type = type;
    row.info.purpose = purpose;
    row.info.state = KeyState::kActive;
    row.info.created_at = Now();
    row.info.state_changed_at = row.info.created_at;
    row.public_pem = key.Public().ToPem();
    std::string pem = key.ToPem();
    auto sealed = SealAesGcm(kek_.span(), AsBytes(pem),
                             RecordAad(kRecordDomain, row.info, row.public_pem));
    WipeString(pem);
    if (!sealed) return tl::unexpected(sealed.error());
    row.sealed = std::move(*sealed);
    AIRLOCK_TRY(Insert(row));
    AIRLOCK_TRY(tx.Commit());
    return row.info;
  }

  Result<KeyInfo> ImportPrivateKey(std::string_view name, const crypto::PrivateKey& key,
                                   KeyPurpose purpose) override {
    if (!IsValidStoredKeyName(name)) {
      return MakeError(ErrorCode::kInvalidArgument, "invalid key name '" + std::string(name) + "'");
    }
    AIRLOCK_TRY(CheckImportable(key, purpose));
    AIRLOCK_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_.get()));
    AIRLOCK_ASSIGN_OR_RETURN(auto existing, Find(name));
    if (existing) {
      return MakeError(ErrorCode::kAlreadyExists, "key " + std::string(name) + " already exists");
    }
    AIRLOCK_TRY(EnsureOriginColumn());
    Row row;
    row.info.name = std::string(name);
    row.info.key_id = key.KeyId();
    row.info.type = key.type();
    row.info.purpose = purpose;
    row.info.state = KeyState::kActive;
    row.info.created_at = Now();
    row.info.state_changed_at = row.info.created_at;
    row.info.origin = KeyOrigin::kImported;
    row.public_pem = key.Public().ToPem();
    std::string pem = key.ToPem();
    auto sealed =
        SealAesGcm(kek_.span(), AsBytes(pem), RecordAad(kRecordDomain, row.info, row.public_pem));
    WipeString(pem);
    if (!sealed) return tl::unexpected(sealed.error());
    row.sealed = std::move(*sealed);
    AIRLOCK_TRY(Insert(row, /*with_origin=*/true));
    AIRLOCK_TRY(tx.Commit());
    has_origin_ = true;
    return row.info;
  }

  Result<KeyInfo> Get(std::string_view name) override {
    AIRLOCK_ASSIGN_OR_RETURN(Row row, Load(name));
    return row.info;
  }

  Result<std::vector<KeyInfo>> List() override {
    AIRLOCK_ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), Select() + " ORDER BY name"));
    std::vector<KeyInfo> out;
    while (true) {
      AIRLOCK_ASSIGN_OR_RETURN(bool more, s.Step());
      if (!more) break;
      AIRLOCK_ASSIGN_OR_RETURN(Row row, FromStmt(s));
      out.push_back(std::move(row.info));
    }
    return out;
  }

  Result<crypto::PublicKey> PublicKey(std::string_view name) override {
    AIRLOCK_ASSIGN_OR_RETURN(Row row, Load(name));
    // Authenticated: the public key is bound into the record's associated data, so opening the
    // record proves the stored public key (and key id) were not swapped in the file.
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey key, Decrypt(row));
    return key.Public();
  }

  Result<Bytes> Sign(std::string_view name, ByteSpan message) override {
    AIRLOCK_ASSIGN_OR_RETURN(Row row, Load(name));
    AIRLOCK_TRY(CheckUsable(row.info.name, row.info.state));
    if (row.info.type == crypto::KeyType::kX25519) {
      return MakeError(ErrorCode::kInvalidArgument, "key " + row.info.name + " (x25519) cannot sign");
    }
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey key, Decrypt(row));
    return crypto::Sign(key, message);
  }

  Result<Bytes> Unwrap(std::string_view name, ByteSpan wrapped, ByteSpan aad) override {
    AIRLOCK_ASSIGN_OR_RETURN(Row row, Load(name));
    AIRLOCK_TRY(CheckUsable(row.info.name, row.info.state));
    if (row.info.purpose != KeyPurpose::kContentWrap) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "key " + row.info.name + " is a " +
                           std::string(KeyPurposeName(row.info.purpose)) +
                           " key; only content-wrap keys unwrap");
    }
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey key, Decrypt(row));
    return crypto::UnwrapKey(key, wrapped, aad);
  }

  Result<Bytes> PrivateEncryptPkcs1(std::string_view name, ByteSpan data) override {
    AIRLOCK_ASSIGN_OR_RETURN(Row row, Load(name));
    // State and purpose before the record is opened; the size once the modulus is known.
    AIRLOCK_TRY(CheckPrivateEncrypt(row.info, 0, 11));
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey key, Decrypt(row));
    AIRLOCK_TRY(
        CheckPrivateEncrypt(row.info, data.size(), static_cast<size_t>(key.bits() + 7) / 8));
    return crypto::RsaPkcs1Type1Sign(key, data);
  }

  Result<void> SetState(std::string_view name, KeyState state) override {
    AIRLOCK_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_.get()));
    AIRLOCK_ASSIGN_OR_RETURN(Row row, Load(name));
    AIRLOCK_TRY(CheckTransition(row.info.state, state));
    const std::string old_name = row.info.name;
    KeyInfo next = row.info;
    next.state = state;
    next.state_changed_at = Now();
    AIRLOCK_TRY(Reseal(row, next));
    AIRLOCK_TRY(DeleteRow(old_name));
    AIRLOCK_TRY(Insert(row));
    return tx.Commit();
  }

  Result<void> Rename(std::string_view name, std::string_view new_name) override {
    if (!IsValidStoredKeyName(new_name)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "invalid key name '" + std::string(new_name) + "'");
    }
    AIRLOCK_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_.get()));
    AIRLOCK_ASSIGN_OR_RETURN(Row row, Load(name));
    AIRLOCK_ASSIGN_OR_RETURN(auto existing, Find(new_name));
    if (existing) {
      return MakeError(ErrorCode::kAlreadyExists, "key " + std::string(new_name) + " already exists");
    }
    KeyInfo next = row.info;
    next.name = std::string(new_name);
    AIRLOCK_TRY(Reseal(row, next));
    AIRLOCK_TRY(DeleteRow(name));
    AIRLOCK_TRY(Insert(row));
    return tx.Commit();
  }

  Result<void> Delete(std::string_view name) override {
    AIRLOCK_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_.get()));
    AIRLOCK_ASSIGN_OR_RETURN(Row row, Load(name));
    AIRLOCK_TRY(DeleteRow(row.info.name));
    return tx.Commit();
  }

  Result<Bytes> ExportSealed(std::string_view name, ByteSpan backup_key) override {
    AIRLOCK_ASSIGN_OR_RETURN(Row row, Load(name));
    AIRLOCK_ASSIGN_OR_RETURN(SecretBytes pem, OpenRecord(row));
    return SealAesGcm(backup_key, pem.span(), RecordAad(kExportDomain, row.info, ""));
  }

  Result<KeyInfo> ImportSealed(const KeyInfo& info, ByteSpan sealed, ByteSpan backup_key) override {
    if (!IsValidStoredKeyName(info.name)) {
      return MakeError(ErrorCode::kInvalidArgument, "invalid key name '" + info.name + "'");
    }
    AIRLOCK_ASSIGN_OR_RETURN(SecretBytes pem,
                             OpenAesGcm(backup_key, sealed, RecordAad(kExportDomain, info, "")));
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::FromPem(AsString(pem.span())));
    if (key.KeyId() != info.key_id || key.type() != info.type) {
      return MakeError(ErrorCode::kWrongKey, "the exported key is not key " + info.key_id);
    }
    AIRLOCK_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_.get()));
    AIRLOCK_ASSIGN_OR_RETURN(auto existing, Find(info.name));
    if (existing) {
      return MakeError(ErrorCode::kAlreadyExists, "key " + info.name + " already exists");
    }
    const bool imported = info.origin == KeyOrigin::kImported;  // bound by the export (RecordAad)
    if (imported) AIRLOCK_TRY(EnsureOriginColumn());
    Row row;
    row.info = info;
    row.public_pem = key.Public().ToPem();
    AIRLOCK_ASSIGN_OR_RETURN(row.sealed,
                             SealAesGcm(kek_.span(), pem.span(),
                                        RecordAad(kRecordDomain, row.info, row.public_pem)));
    AIRLOCK_TRY(Insert(row, /*with_origin=*/imported));
    AIRLOCK_TRY(tx.Commit());
    if (imported) has_origin_ = true;
    return row.info;
  }

 private:
  // Vaults without the origin column (made before imports existed) read as all generated.
  std::string Select() const {
    return std::string(
               "SELECT name, key_id, type, purpose, state, created_at, state_changed_at, "
               "public_pem, sealed, ") +
           (has_origin_ ? "origin" : "'generated'") + " FROM vault_keys";
  }

  int64_t Now() const { return now_ ? now_() : static_cast<int64_t>(std::time(nullptr)); }

  static Result<Row> FromStmt(const Stmt& s) {
    Row row;
    row.info.name = s.Text(0);
    row.info.key_id = s.Text(1);
    auto type = crypto::ParseKeyType(s.Text(2));
    auto purpose = ParseKeyPurpose(s.Text(3));
    auto state = ParseKeyState(s.Text(4));
    auto origin = ParseKeyOrigin(s.Text(9));
    if (!type || !purpose || !state || !origin) {
      return MakeError(ErrorCode::kMalformed, "vault record " + row.info.name + " is malformed");
    }
    row.info.type = *type;
    row.info.purpose = *purpose;
    row.info.state = *state;
    row.info.created_at = s.Int(5);
    row.info.state_changed_at = s.Int(6);
    row.info.origin = *origin;
    row.public_pem = s.Text(7);
    row.sealed = s.Blob(8);
    return row;
  }

  Result<std::optional<Row>> Find(std::string_view name) {
    AIRLOCK_ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), Select() + " WHERE name = ?"));
    s.Bind(name);
    AIRLOCK_ASSIGN_OR_RETURN(bool found, s.Step());
    if (!found) return std::optional<Row>();
    AIRLOCK_ASSIGN_OR_RETURN(Row row, FromStmt(s));
    return std::optional<Row>(std::move(row));
  }

  Result<Row> Load(std::string_view name) {
    AIRLOCK_ASSIGN_OR_RETURN(auto row, Find(name));
    if (!row) return MakeError(ErrorCode::kNotFound, "no key " + std::string(name) + " in " + Uri());
    return std::move(*row);
  }

  Result<SecretBytes> OpenRecord(const Row& row) {
    auto pem = OpenAesGcm(kek_.span(), row.sealed, RecordAad(kRecordDomain, row.info, row.public_pem));
    if (!pem) return tl::unexpected(pem.error().WithContext("vault record " + row.info.name));
    return pem;
  }

  Result<crypto::PrivateKey> Decrypt(const Row& row) {
    AIRLOCK_ASSIGN_OR_RETURN(SecretBytes pem, OpenRecord(row));
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::FromPem(AsString(pem.span())));
    if (key.KeyId() != row.info.key_id) {
      return MakeError(ErrorCode::kDecryptFailed, "vault record " + row.info.name +
                                                      " does not hold key " + row.info.key_id);
    }
    return key;
  }

  // Authenticates the record under its current metadata and seals it again under `next`.
  Result<void> Reseal(Row& row, const KeyInfo& next) {
    AIRLOCK_ASSIGN_OR_RETURN(SecretBytes pem, OpenRecord(row));
    AIRLOCK_ASSIGN_OR_RETURN(row.sealed, SealAesGcm(kek_.span(), pem.span(),
                                                    RecordAad(kRecordDomain, next, row.public_pem)));
    row.info = next;
    return {};
  }

  // Vaults made before imports existed have no origin column: add it (inside the caller's
  // transaction, so a failed import leaves the file as it was). Older programs still read such a
  // vault's generated keys; they cannot use imported ones (their records' associated data differs).
  Result<void> EnsureOriginColumn() {
    AIRLOCK_ASSIGN_OR_RETURN(bool has_origin, HasOriginColumn(db_.get()));
    if (!has_origin) {
      AIRLOCK_TRY(Exec(
          db_.get(), "ALTER TABLE vault_keys ADD COLUMN origin TEXT NOT NULL DEFAULT 'generated'"));
    }
    return {};
  }

  // with_origin: the table is known to have the origin column (EnsureOriginColumn just ran).
  Result<void> Insert(const Row& row, bool with_origin = false) {
    with_origin = with_origin || has_origin_;
    if (!with_origin && row.info.origin != KeyOrigin::kGenerated) {
      return MakeError(ErrorCode::kInternal, "vault has no origin column for key " + row.info.name);
    }
    AIRLOCK_ASSIGN_OR_RETURN(
        Stmt s,
        Stmt::Prepare(db_.get(),
                      std::string("INSERT INTO vault_keys (name, key_id, type, purpose, state, "
                                  "created_at, state_changed_at, public_pem, sealed") +
                          (with_origin ? ", origin) VALUES (?,?,?,?,?,?,?,?,?,?)"
                                       : ") VALUES (?,?,?,?,?,?,?,?,?)")));
    s.Bind(row.info.name)
        .Bind(row.info.key_id)
        .Bind(crypto::KeyTypeName(row.info.type))
        .Bind(KeyPurposeName(row.info.purpose))
        .Bind(KeyStateName(row.info.state))
        .Bind(row.info.created_at)
        .Bind(row.info.state_changed_at)
        .Bind(row.public_pem)
        .BindBlob(row.sealed);
    if (with_origin) s.Bind(KeyOriginName(row.info.origin));
    return s.Run();
  }

  Result<void> DeleteRow(std::string_view name) {
    AIRLOCK_ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), "DELETE FROM vault_keys WHERE name = ?"));
    s.Bind(name);
    return s.Run();
  }

  std::filesystem::path path_;
  DbPtr db_;
  SecretBytes kek_;
  std::function<int64_t()> now_;
  bool has_origin_;  // vault_keys has the origin column
  Bytes salt_;

  Result<Bytes> HeaderBlob(std::string_view name) {
    AIRLOCK_ASSIGN_OR_RETURN(
        Stmt s, Stmt::Prepare(db_.get(), "SELECT value FROM vault_header WHERE name = ?"));
    s.Bind(name);
    AIRLOCK_ASSIGN_OR_RETURN(bool found, s.Step());
    if (!found) return MakeError(ErrorCode::kNotFound, "no " + std::string(name));
    return s.Blob(0);
  }
};

Result<DbPtr> OpenDb(const std::filesystem::path& path) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    return MakeError(ErrorCode::kIo, "cannot open vault " + path.string() + ": " +
                                         (raw != nullptr ? sqlite3_errmsg(raw) : "out of memory"));
  }
  sqlite3_busy_timeout(db.get(), 5000);
  AIRLOCK_TRY(Exec(db.get(), "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;"));
  return db;
}

Result<bool> HasOriginColumn(sqlite3* db) {
  AIRLOCK_ASSIGN_OR_RETURN(
      Stmt s,
      Stmt::Prepare(db,
                    "SELECT COUNT(*) FROM pragma_table_info('vault_keys') WHERE name = 'origin'"));
  AIRLOCK_ASSIGN_OR_RETURN(bool row, s.Step());
  return row && s.Int(0) > 0;
}

Result<std::string> HeaderText(sqlite3* db, std::string_view name) {
  AIRLOCK_ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db, "SELECT value FROM vault_header WHERE name = ?"));
  s.Bind(name);
  auto found = s.Step();
  if (!found || !*found) {
    return MakeError(ErrorCode::kMalformed, "not an airlock vault (no " + std::string(name) + ")");
  }
  Bytes b = s.Blob(0);
  return std::string(b.begin(), b.end());
}

Result<uint32_t> HeaderU32(sqlite3* db, std::string_view name) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string text, HeaderText(db, name));
  char* end = nullptr;
  errno = 0;
  const unsigned long v = std::strtoul(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v > 0xffffffffUL) {
    return MakeError(ErrorCode::kMalformed, "vault header " + std::string(name) + " is malformed");
  }
  return static_cast<uint32_t>(v);
}

Result<void> PutHeader(sqlite3* db, std::string_view name, ByteSpan value) {
  AIRLOCK_ASSIGN_OR_RETURN(Stmt s,
                           Stmt::Prepare(db, "INSERT INTO vault_header (name, value) VALUES (?, ?)"));
  s.Bind(name).BindBlob(value);
  return s.Run();
}

Result<std::unique_ptr<KeyStore>> CreateVault(const std::filesystem::path& path,
                                              const KeyStoreOptions& options) {
  // O_EXCL with mode 0600: never clobber an existing vault, never world-readable, even briefly.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return MakeError(ErrorCode::kAlreadyExists, "vault " + path.string() + " already exists");
    }
    return MakeError(ErrorCode::kIo, "cannot create vault " + path.string() + ": " +
                                         std::strerror(errno));
  }
  ::close(fd);
  // Removes the half-made file on any error below.
  struct Cleanup {
    const std::filesystem::path& p;
    bool keep = false;
    ~Cleanup() {
      if (!keep) {
        std::error_code ec;
        std::filesystem::remove(p, ec);
        std::filesystem::remove(p.string() + "-journal", ec);
      }
    }
  } cleanup{path};

  AIRLOCK_ASSIGN_OR_RETURN(std::string secret, GetSecret(options));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes salt, crypto::RandomBytes(kSaltSize));
  auto kek = DeriveKeyArgon2id(secret, salt, options.kdf);
  WipeString(secret);
  if (!kek) return tl::unexpected(kek.error());
  AIRLOCK_ASSIGN_OR_RETURN(Bytes check, SealAesGcm(kek->span(), AsBytes(kCheckPlaintext),
                                                   CheckAad(options.kdf, salt, /*version=*/2)));
  AIRLOCK_ASSIGN_OR_RETURN(DbPtr db, OpenDb(path));
  AIRLOCK_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db.get()));
  AIRLOCK_TRY(Exec(db.get(),
                   "CREATE TABLE vault_header (name TEXT PRIMARY KEY, value BLOB NOT NULL);"
                   "CREATE TABLE vault_keys (name TEXT PRIMARY KEY, key_id TEXT NOT NULL, "
                   "type TEXT NOT NULL, purpose TEXT NOT NULL, state TEXT NOT NULL, "
                   "created_at INTEGER NOT NULL, state_changed_at INTEGER NOT NULL, "
                   "public_pem TEXT NOT NULL, sealed BLOB NOT NULL, "
                   "origin TEXT NOT NULL DEFAULT 'generated');"));
  AIRLOCK_TRY(PutHeader(db.get(), "format", AsBytes(kFormat)));
  AIRLOCK_TRY(PutHeader(db.get(), "kdf", AsBytes("argon2id")));
  AIRLOCK_TRY(PutHeader(db.get(), "kdf_t", AsBytes(std::to_string(options.kdf.t_cost))));
  AIRLOCK_TRY(PutHeader(db.get(), "kdf_m_kib", AsBytes(std::to_string(options.kdf.m_cost_kib))));
  AIRLOCK_TRY(PutHeader(db.get(), "kdf_p", AsBytes(std::to_string(options.kdf.parallelism))));
  AIRLOCK_TRY(PutHeader(db.get(), "salt", salt));
  AIRLOCK_TRY(PutHeader(db.get(), "check", check));
  auto vault = std::make_unique<FileVault>(path, std::move(db), std::move(*kek), options.now,
                                           /*has_origin=*/true, salt);
  AIRLOCK_TRY(vault->WriteState(VaultState{}));
  AIRLOCK_TRY(tx.Commit());
  cleanup.keep = true;
  return std::unique_ptr<KeyStore>(std::move(vault));
}

Result<std::unique_ptr<KeyStore>> OpenExistingVault(const std::filesystem::path& path,
                                                    const KeyStoreOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return MakeError(ErrorCode::kNotFound, "no vault at " + path.string());
  }
  AIRLOCK_ASSIGN_OR_RETURN(DbPtr db, OpenDb(path));
  auto format = HeaderText(db.get(), "format");
  if (!format) {
    return MakeError(ErrorCode::kMalformed, path.string() + " is not an airlock vault");
  }
  if (*format != kFormat) {
    return MakeError(ErrorCode::kUnsupported, "vault format '" + *format + "' is not supported");
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::string kdf, HeaderText(db.get(), "kdf"));
  if (kdf != "argon2id") {
    return MakeError(ErrorCode::kUnsupported, "vault KDF '" + kdf + "' is not supported");
  }
  KdfParams params;
  AIRLOCK_ASSIGN_OR_RETURN(params.t_cost, HeaderU32(db.get(), "kdf_t"));
  AIRLOCK_ASSIGN_OR_RETURN(params.m_cost_kib, HeaderU32(db.get(), "kdf_m_kib"));
  AIRLOCK_ASSIGN_OR_RETURN(params.parallelism, HeaderU32(db.get(), "kdf_p"));
  AIRLOCK_ASSIGN_OR_RETURN(std::string salt, HeaderText(db.get(), "salt"));
  AIRLOCK_ASSIGN_OR_RETURN(std::string check, HeaderText(db.get(), "check"));
  AIRLOCK_ASSIGN_OR_RETURN(std::string secret, GetSecret(options));
  auto kek = DeriveKeyArgon2id(secret, AsBytes(salt), params);
  WipeString(secret);
  if (!kek) {
    if (kek.error().code() == ErrorCode::kInvalidArgument) {
      return MakeError(ErrorCode::kMalformed, "vault KDF parameters are out of bounds");
    }
    return tl::unexpected(kek.error());
  }
  // The check value says which kind of vault this is: v2 (with a sealed state row) or v1 (made
  // before it). It authenticates under exactly one of the two, so neither can pass for the other.
  int version = 2;
  if (!OpenAesGcm(kek->span(), AsBytes(check), CheckAad(params, AsBytes(salt), 2))) {
    version = 1;
    if (!OpenAesGcm(kek->span(), AsBytes(check), CheckAad(params, AsBytes(salt), 1))) {
      return MakeError(ErrorCode::kWrongKey,
                       "wrong vault passphrase for " + path.string() + " (nothing was changed)");
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(bool has_origin, HasOriginColumn(db.get()));
  Bytes salt_bytes(salt.begin(), salt.end());
  auto vault = std::make_unique<FileVault>(path, std::move(db), std::move(*kek), options.now,
                                           has_origin, salt_bytes);
  if (version == 1) {
    // Upgrade: a state row (access control off, as the vault had none recorded) and the v2 check.
    AIRLOCK_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(vault->db()));
    AIRLOCK_TRY(vault->WriteState(VaultState{}));
    AIRLOCK_ASSIGN_OR_RETURN(Bytes check2, vault->SealCheck(params));
    AIRLOCK_ASSIGN_OR_RETURN(
        Stmt s,
        Stmt::Prepare(vault->db(), "UPDATE vault_header SET value = ? WHERE name = 'check'"));
    s.BindBlob(check2);
    AIRLOCK_TRY(s.Run());
    AIRLOCK_TRY(tx.Commit());
  } else {
    AIRLOCK_TRY(vault->ReadState());  // a v2 vault without its state does not open
  }
  return std::unique_ptr<KeyStore>(std::move(vault));
}

const KeyStoreRegistrar kFileRegistrar(
    KeyUriScheme::kFile,
    [](const KeyUri& uri, const KeyStoreOptions& options, bool create) {
      return OpenFileVault(uri.path, options, create);
    });

}  // namespace

FileVaultStore* AsFileVault(KeyStore* store) { return dynamic_cast<FileVaultStore*>(store); }

Bytes SealedExportAad(const KeyInfo& info) { return RecordAad(kExportDomain, info, ""); }

Result<std::unique_ptr<KeyStore>> OpenFileVault(const std::filesystem::path& path,
                                                const KeyStoreOptions& options, bool create) {
  return create ? CreateVault(path, options) : OpenExistingVault(path, options);
}

}  // namespace airlock::keys
