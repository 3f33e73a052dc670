#include "keys/pkcs11_store.h"

#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "keys/pkcs11.h"
#include "keys/vault_state.h"

namespace airlock::keys {

namespace {

constexpr int kMetadataVersion = 1;
// The label of the one state data object (application kPkcs11StateApplication).
constexpr std::string_view kStateLabel = "state";

class Pkcs11Store final : public KeyStore, public VaultStateStore {
 public:
  Pkcs11Store(std::string uri, std::unique_ptr<Pkcs11Token> token, std::function<int64_t()> now)
      : uri_(std::move(uri)), token_(std::move(token)), now_(std::move(now)) {}

  std::string Uri() const override { return uri_; }

  Result<KeyInfo> Create(std::string_view name, crypto::KeyType type, KeyPurpose purpose) override {
    AIRLOCK_TRY(CheckName(name));
    AIRLOCK_TRY(CheckTypeForPurpose(type, purpose));
    AIRLOCK_ASSIGN_OR_RETURN(auto existing, token_->ReadData(name));
    if (existing) {
      return MakeError(ErrorCode::kAlreadyExists, "key " + std::string(name) + " already exists");
    }
    Pkcs11KeyUse use =
        purpose == KeyPurpose::kContentWrap ? Pkcs11KeyUse::kUnwrap : Pkcs11KeyUse::kSign;
    // Capgo keys are signing keys on the token (CKA_SIGN): their type-1 blocks are C_Sign with
    // CKM_RSA_PKCS.
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey pub,
                             token_->GenerateKeyPair(name, type, use, RsaBitsForPurpose(purpose)));
    KeyInfo info;
    info.name = std::string(name);
    info.key_id = pub.KeyId();
    info.type = type;
    info.purpose = purpose;
    info.state = KeyState::kActive;
    info.created_at = Now();
    info.state_changed_at = info.created_at;
    auto written = WriteMetadata(info);
    if (!written) {
      // No key without metadata: it would be invisible to the store yet occupy the name.
      (void)token_->DestroyKey(name);
      return tl::unexpected(written.error());
    }
    return info;
  }

  Result<KeyInfo> ImportPrivateKey(std::string_view name, const crypto::PrivateKey& key,
                                   KeyPurpose purpose) override {
    AIRLOCK_TRY(CheckName(name));
    AIRLOCK_TRY(CheckImportable(key, purpose));
    AIRLOCK_ASSIGN_OR_RETURN(auto existing, token_->ReadData(name));
    if (existing) {
      return MakeError(ErrorCode::kAlreadyExists, "key " + std::string(name) + " already exists");
    }
    // Capgo keys sign on the token (CKA_SIGN), exactly as generated ones do.
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey pub, token_->ImportRsaSigningKey(name, key));
    KeyInfo info;
    info.name = std::string(name);
    info.key_id = pub.KeyId();
    info.type = key.type();
    info.purpose = purpose;
    info.state = KeyState::kActive;
    info.created_at = Now();
    info.state_changed_at = info.created_at;
    info.origin = KeyOrigin::kImported;
    auto written = WriteMetadata(info);
    if (!written) {
      (void)token_->DestroyKey(name);
      return tl::unexpected(written.error());
    }
    return info;
  }

  Result<KeyInfo> Get(std::string_view name) override {
    AIRLOCK_TRY(CheckName(name));
    AIRLOCK_ASSIGN_OR_RETURN(auto meta, token_->ReadData(name));
    if (!meta)
      return MakeError(ErrorCode::kNotFound, "no key " + std::string(name) + " in " + uri_);
    AIRLOCK_ASSIGN_OR_RETURN(KeyInfo info, ParseMetadata(name, *meta));
    auto pub = token_->PublicKey(name);
    if (!pub) {
      if (pub.error().code() == ErrorCode::kNotFound) {
        return MakeError(ErrorCode::kNotFound,
                         "key " + std::string(name) + " has metadata but no key pair on the token");
      }
      return tl::unexpected(pub.error());
    }
    if (pub->type() != info.type) {
      return MakeError(ErrorCode::kMalformed, "metadata of key " + std::string(name) +
                                                  " does not match its token key type");
    }
    info.key_id = pub->KeyId();
    return info;
  }

  Result<std::vector<KeyInfo>> List() override {
    AIRLOCK_ASSIGN_OR_RETURN(std::vector<std::string> names, token_->ListData());
    std::vector<KeyInfo> out;
    for (const std::string& name : names) {
      AIRLOCK_ASSIGN_OR_RETURN(KeyInfo info, Get(name));
      out.push_back(std::move(info));
    }
    return out;  // ListData is sorted by name
  }

  Result<crypto::PublicKey> PublicKey(std::string_view name) override {
    AIRLOCK_TRY(Get(name));
    return token_->PublicKey(name);
  }

  Result<Bytes> Sign(std::string_view name, ByteSpan message) override {
    AIRLOCK_ASSIGN_OR_RETURN(KeyInfo info, Get(name));
    AIRLOCK_TRY(CheckUsable(info.name, info.state));
    if (info.type == crypto::KeyType::kX25519) {
      return MakeError(ErrorCode::kInvalidArgument, "key " + info.name + " (x25519) cannot sign");
    }
    return token_->Sign(name, message);
  }

  Result<Bytes> Unwrap(std::string_view name, ByteSpan wrapped, ByteSpan aad) override {
    AIRLOCK_ASSIGN_OR_RETURN(KeyInfo info, Get(name));
    AIRLOCK_TRY(CheckUsable(info.name, info.state));
    if (info.purpose != KeyPurpose::kContentWrap) {
      return MakeError(ErrorCode::kInvalidArgument, "key " + info.name + " is a " +
                                                        std::string(KeyPurposeName(info.purpose)) +
                                                        " key; only content-wrap keys unwrap");
    }
    return token_->Unwrap(name, wrapped, aad);
  }

  Result<Bytes> PrivateEncryptPkcs1(std::string_view name, ByteSpan data) override {
    AIRLOCK_ASSIGN_OR_RETURN(KeyInfo info, Get(name));
    AIRLOCK_TRY(CheckPrivateEncrypt(info, 0, 11));  // state, purpose and type
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey pub, token_->PublicKey(name));
    AIRLOCK_TRY(CheckPrivateEncrypt(info, data.size(), static_cast<size_t>(pub.bits() + 7) / 8));
    return token_->SignRawPkcs1(name, data);
  }

  Result<void> SetState(std::string_view name, KeyState state) override {
    AIRLOCK_ASSIGN_OR_RETURN(KeyInfo info, Get(name));
    AIRLOCK_TRY(CheckTransition(info.state, state));
    info.state = state;
    info.state_changed_at = Now();
    return WriteMetadata(info);
  }

  Result<void> Rename(std::string_view name, std::string_view new_name) override {
    AIRLOCK_TRY(CheckName(new_name));
    AIRLOCK_ASSIGN_OR_RETURN(KeyInfo info, Get(name));
    AIRLOCK_ASSIGN_OR_RETURN(auto taken, token_->ReadData(new_name));
    if (taken) {
      return MakeError(ErrorCode::kAlreadyExists,
                       "key " + std::string(new_name) + " already exists");
    }
    // Order matters for a crash part-way: key pair first, then new metadata, then the old metadata.
    // An interruption leaves either the old name intact or a stray old metadata object that Get
    // reports as "metadata but no key pair".
    AIRLOCK_TRY(token_->RenameKey(name, new_name));
    info.name = std::string(new_name);
    AIRLOCK_TRY(WriteMetadata(info));
    return token_->DeleteData(name);
  }

  Result<void> Delete(std::string_view name) override {
    AIRLOCK_TRY(CheckName(name));
    AIRLOCK_ASSIGN_OR_RETURN(auto meta, token_->ReadData(name));
    if (!meta)
      return MakeError(ErrorCode::kNotFound, "no key " + std::string(name) + " in " + uri_);
    auto destroyed = token_->DestroyKey(name);
    if (!destroyed && destroyed.error().code() != ErrorCode::kNotFound) {
      return tl::unexpected(destroyed.error());
    }
    return token_->DeleteData(name);
  }

  Result<Bytes> ExportSealed(std::string_view name, ByteSpan) override {
    AIRLOCK_TRY(Get(name));
    return MakeError(
        ErrorCode::kUnsupported,
        "key " + std::string(name) +
            " lives on a PKCS#11 token and is not extractable; back up the token itself");
  }

  Result<VaultState> ReadState() override {
    AIRLOCK_ASSIGN_OR_RETURN(auto raw, token_->ReadData(kStateLabel, kPkcs11StateApplication));
    if (!raw) return VaultState{};
    auto state = DecodeVaultState(*raw);
    if (!state)
      return tl::unexpected(state.error().WithContext("state object on token of " + uri_));
    return state;
  }

  Result<VaultState> UpdateState(const std::function<Result<void>(VaultState&)>& change) override {
    AIRLOCK_ASSIGN_OR_RETURN(VaultState state, ReadState());
    AIRLOCK_TRY(change(state));
    AIRLOCK_TRY(token_->WriteData(kStateLabel, EncodeVaultState(state), kPkcs11StateApplication));
    return state;
  }

  Result<KeyInfo> ImportSealed(const KeyInfo& info, ByteSpan, ByteSpan) override {
    return MakeError(
        ErrorCode::kUnsupported,
        "cannot import " + info.name +
            " onto a PKCS#11 token: keys there are generated on the token; restore file "
            "vault backups into a file vault");
  }

 private:
  static Result<void> CheckName(std::string_view name) {
    if (!IsValidStoredKeyName(name)) {
      return MakeError(ErrorCode::kInvalidArgument, "invalid key name '" + std::string(name) + "'");
    }
    return {};
  }

  int64_t Now() const {
    if (now_) return now_();
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  Result<void> WriteMetadata(const KeyInfo& info) {
    nlohmann::json j = {
        {"v", kMetadataVersion},
        {"type", std::string(crypto::KeyTypeName(info.type))},
        {"purpose", std::string(KeyPurposeName(info.purpose))},
        {"state", std::string(KeyStateName(info.state))},
        {"created_at", info.created_at},
        {"state_changed_at", info.state_changed_at},
    };
    // Only when imported, so generated keys' metadata is byte-for-byte what older versions wrote.
    if (info.origin != KeyOrigin::kGenerated) {
      j["origin"] = std::string(KeyOriginName(info.origin));
    }
    return token_->WriteData(info.name, AsBytes(j.dump()));
  }

  static Result<KeyInfo> ParseMetadata(std::string_view name, const Bytes& raw) {
    auto bad = [&](const std::string& why) {
      return MakeError(ErrorCode::kMalformed,
                       "metadata of key " + std::string(name) + " on the token: " + why);
    };
    nlohmann::json j =
        nlohmann::json::parse(raw.begin(), raw.end(), nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return bad("not a JSON object");
    for (const char* field : {"type", "purpose", "state"}) {
      if (!j.contains(field) || !j[field].is_string()) return bad(std::string("no ") + field);
    }
    for (const char* field : {"v", "created_at", "state_changed_at"}) {
      if (!j.contains(field) || !j[field].is_number_integer())
        return bad(std::string("no ") + field);
    }
    if (j["v"].get<int>() != kMetadataVersion) {
      return MakeError(ErrorCode::kUnsupported, "metadata version of key " + std::string(name));
    }
    KeyInfo info;
    info.name = std::string(name);
    auto type = crypto::ParseKeyType(j["type"].get<std::string>());
    auto purpose = ParseKeyPurpose(j["purpose"].get<std::string>());
    auto state = ParseKeyState(j["state"].get<std::string>());
    if (!type || !purpose || !state) return bad("unknown type, purpose or state");
    info.type = *type;
    info.purpose = *purpose;
    info.state = *state;
    info.created_at = j["created_at"].get<int64_t>();
    info.state_changed_at = j["state_changed_at"].get<int64_t>();
    if (j.contains("origin")) {
      if (!j["origin"].is_string()) return bad("origin is not a string");
      auto origin = ParseKeyOrigin(j["origin"].get<std::string>());
      if (!origin) return bad("unknown origin");
      info.origin = *origin;
    }
    return info;
  }

  std::string uri_;
  std::unique_ptr<Pkcs11Token> token_;
  std::function<int64_t()> now_;
};

std::string QueryValue(const KeyUri& uri, const std::string& name) {
  auto it = uri.query.find(name);
  return it == uri.query.end() ? std::string() : it->second;
}

const KeyStoreRegistrar kPkcs11Registrar(KeyUriScheme::kPkcs11,
                                         [](const KeyUri& uri, const KeyStoreOptions& options,
                                            bool) {
                                           // create: a token must be initialised with its own tools
                                           // (or C_InitToken by an SO); "init" therefore just opens
                                           // it.
                                           return OpenPkcs11KeyStore(uri, options);
                                         });

}  // namespace

Result<std::unique_ptr<KeyStore>> OpenPkcs11KeyStore(const KeyUri& uri,
                                                     const KeyStoreOptions& options) {
  if (uri.scheme != KeyUriScheme::kPkcs11) {
    return MakeError(ErrorCode::kInvalidArgument, "not a pkcs11: URI: " + uri.ToString());
  }
  if (uri.query.count("pin-value") != 0) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        "a PKCS#11 URI must not carry pin-value (URIs are logged); use AIRLOCK_PKCS11_PIN "
        "or pin-source=file:PATH");
  }
  Pkcs11Options p11;
  p11.token_label = uri.token;
  p11.module_path =
      options.pkcs11_module.empty() ? QueryValue(uri, "module-path") : options.pkcs11_module;
  p11.pin_source = QueryValue(uri, "pin-source");
  // A pin-source written into the URI names this token's PIN specifically, so it wins over the
  // caller's generic secret (which the CLI may bind to a prompt).
  if (p11.pin_source.empty() && options.secret) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string pin, options.secret());
    p11.pin = std::move(pin);
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::unique_ptr<Pkcs11Token> token, Pkcs11Token::Open(p11));
  return std::unique_ptr<KeyStore>(new Pkcs11Store(uri.StoreUri(), std::move(token), options.now));
}

}  // namespace airlock::keys
