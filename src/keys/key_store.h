// The key store interface: one API over every place keys live (the encrypted file vault, a PKCS#11
// HSM).
//
// A KeyStore holds named keys. Keys are generated inside the store (the OS CSPRNG for the file
// vault, the token's generator for PKCS#11); callers get public keys, signatures and unwrapped
// content keys, never private key bytes. The one exception coming in is ImportPrivateKey: an
// existing Capgo RSA key (apps in the field already ship its public key) may be moved into a store;
// TUF and content keys cannot be imported. The only way private material leaves a store is
// ExportSealed(), encrypted under a caller-supplied backup key (a backend that cannot export, e.g.
// a non-extractable HSM key, returns kUnsupported).
//
// Every key has exactly one purpose and a lifecycle state. Backends enforce the state themselves
// (defence in depth, so a forgotten policy check above cannot use a suspended key):
//   Sign/Unwrap on a key that is not kActive  -> kKeyUnusable (message names the state)
//   SetState with an illegal transition       -> kInvalidArgument (message names both states)
// Policy (usage records, TOTP for custodian operations, rotation, maximum age) lives one layer up,
// in KeyManager (lifecycle.h); backends do storage and cryptography only.
//
// Error codes shared by all backends (the shared backend test suite asserts them):
//   kNotFound        no key with that name (or no store at the URI, when not creating)
//   kAlreadyExists   Create/Rename/Import onto an existing name; InitKeyStore on an existing store
//   kInvalidArgument bad name, a type that cannot serve the purpose, Sign with an x25519 key,
//                    Unwrap with a signing-only key, an illegal state transition, ImportPrivateKey
//                    of a purpose other than capgo or of a key that is not RSA >= 2048 bits
//   kKeyUnusable     the key's state forbids the operation
//   kWrongKey        the store's secret (vault passphrase, PKCS#11 PIN) is wrong; nothing was
//   changed kDecryptFailed   a stored key record, or a sealed export, fails authentication
//   (tampered); other keys
//                    stay usable. Also an Unwrap whose ciphertext was not made for this key.
//   kUnsupported     the backend cannot do this (type not on the token, export of non-extractable
//   keys)
//
// Thread-safety: a KeyStore object is not thread-safe; use one per thread. Two processes may open
// the same store; each operation is atomic (file vault: one SQLite transaction).
#ifndef AIRLOCK_KEYS_KEY_STORE_H_
#define AIRLOCK_KEYS_KEY_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"
#include "keys/key_uri.h"

namespace airlock::keys {

enum class KeyPurpose { kRoot, kTargets, kSnapshot, kTimestamp, kContentWrap, kCapgo, kAudit };

// "root", "targets", "snapshot", "timestamp", "content-wrap", "capgo", "audit".
std::string_view KeyPurposeName(KeyPurpose purpose);
// kInvalidArgument for anything else.
Result<KeyPurpose> ParseKeyPurpose(std::string_view name);
// True for the four TUF role purposes (root, targets, snapshot, timestamp).
bool IsTufRolePurpose(KeyPurpose purpose);
// Whether a key of `type` can serve `purpose`: content-wrap needs x25519 or rsa (unwrap); capgo
// needs rsa (Capgo encryption v2 is RSA only); every other purpose needs a signing type (ed25519,
// ecdsa-p256, rsa). kInvalidArgument with a message otherwise.
[[nodiscard]] Result<void> CheckTypeForPurpose(crypto::KeyType type, KeyPurpose purpose);

// Size of the RSA keys backends generate for purpose capgo: the Capgo CLI's size, and the only one
// that older @capgo/capacitor-updater iOS versions decode (they assume a 256-byte block). Keys of
// every other purpose are RSA-4096.
inline constexpr int kCapgoRsaBits = 2048;
// Bits of an RSA key a backend generates for `purpose`.
inline int RsaBitsForPurpose(KeyPurpose purpose) {
  return purpose == KeyPurpose::kCapgo ? kCapgoRsaBits : 4096;
}

enum class KeyState { kActive, kSuspended, kRetired, kRevoked, kCompromised };

// "active", "suspended", "retired", "revoked", "compromised".
std::string_view KeyStateName(KeyState state);
Result<KeyState> ParseKeyState(std::string_view name);

// The legal transitions (anything else, including X -> X, is kInvalidArgument):
//   active    -> suspended, retired, revoked, compromised
//   suspended -> active (resume), retired, revoked, compromised
//   retired   -> revoked, compromised
//   revoked   -> compromised
//   compromised is final.
[[nodiscard]] Result<void> CheckTransition(KeyState from, KeyState to);
// Only kActive keys sign or unwrap. kKeyUnusable naming the key and state otherwise.
[[nodiscard]] Result<void> CheckUsable(std::string_view name, KeyState state);

// How a key's private half came into the store.
enum class KeyOrigin {
  kGenerated,  // made inside the store (Create, or a backup of such a key)
  kImported,   // ImportPrivateKey: made elsewhere (e.g. by the Capgo CLI), so it once existed in
               // clear
};
// "generated", "imported".
std::string_view KeyOriginName(KeyOrigin origin);
Result<KeyOrigin> ParseKeyOrigin(std::string_view name);

// What a store knows about a key (no secret material).
struct KeyInfo {
  std::string name;
  std::string key_id;  // TUF key id of the public key (crypto::PublicKey::KeyId)
  crypto::KeyType type = crypto::KeyType::kEd25519;
  KeyPurpose purpose = KeyPurpose::kTargets;
  KeyState state = KeyState::kActive;
  int64_t created_at = 0;        // unix seconds
  int64_t state_changed_at = 0;  // unix seconds; == created_at until the first transition
  // kImported for keys stored by ImportPrivateKey; kept across SetState and Rename, and carried by
  // backups (ExportSealed binds it, ImportSealed restores it). Backups made before that restore an
  // imported key as kGenerated.
  KeyOrigin origin = KeyOrigin::kGenerated;
};

// The checks before KeyStore::ImportPrivateKey, all kInvalidArgument: only purpose capgo is
// importable (TUF and content keys must be generated inside the store), and the key must be RSA of
// kCapgoRsaBits..16384 bits (the Capgo CLI makes 2048).
[[nodiscard]] Result<void> CheckImportable(const crypto::PrivateKey& key, KeyPurpose purpose);

// The checks before KeyStore::PrivateEncryptPkcs1, in this order: CheckUsable (kKeyUnusable), then
// the key must be an RSA key of purpose capgo (kInvalidArgument), then `data_size` at most
// `modulus_bytes` - 11 (kInvalidArgument).
[[nodiscard]] Result<void> CheckPrivateEncrypt(const KeyInfo& info, size_t data_size,
                                               size_t modulus_bytes);

// Parameters of the file vault's Argon2id key derivation (stored in the vault; used at init).
struct KdfParams {
  uint32_t t_cost = 3;          // passes
  uint32_t m_cost_kib = 65536;  // 64 MiB
  uint32_t parallelism = 1;
  // Cheap parameters for unit tests only (t=1, 64 KiB). Never the default.
  static KdfParams ForTests() { return KdfParams{1, 64, 1}; }
};

struct KeyStoreOptions {
  // The store's secret: the vault passphrase (file) or the user PIN (pkcs11). Called lazily, at most
  // once per open. Empty function: the backend's environment default (AIRLOCK_VAULT_PASSPHRASE /
  // AIRLOCK_PKCS11_PIN), else kInvalidArgument.
  std::function<Result<std::string>()> secret;
  // PKCS#11 module (.so). Empty: the URI's module-path, then AIRLOCK_PKCS11_MODULE.
  std::string pkcs11_module;
  // File vault KDF parameters, used by InitKeyStore (an existing vault keeps its stored parameters).
  KdfParams kdf;
  // Seconds since the epoch; tests inject a fake clock. Empty: the system clock.
  std::function<int64_t()> now;
};

class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // The canonical URI of this store (no key name).
  virtual std::string Uri() const = 0;

  // Generates a key inside the store. kAlreadyExists if `name` is taken; kInvalidArgument if the name is
  // not IsValidStoredKeyName or the type cannot serve the purpose (CheckTypeForPurpose); kUnsupported if
  // the backend cannot make that type. The key starts kActive.
  [[nodiscard]] virtual Result<KeyInfo> Create(std::string_view name, crypto::KeyType type,
                                               KeyPurpose purpose) = 0;
  [[nodiscard]] virtual Result<KeyInfo> Get(std::string_view name) = 0;
  // Every key, sorted by name.
  [[nodiscard]] virtual Result<std::vector<KeyInfo>> List() = 0;
  // Works in every state (retired keys stay verifiable).
  [[nodiscard]] virtual Result<crypto::PublicKey> PublicKey(std::string_view name) = 0;

  // A signature in exactly crypto::Sign's format for the key's type (see crypto/sign.h).
  [[nodiscard]] virtual Result<Bytes> Sign(std::string_view name, ByteSpan message) = 0;
  // crypto::UnwrapKey's inverse of crypto::WrapKey(PublicKey(name), key, aad).
  [[nodiscard]] virtual Result<Bytes> Unwrap(std::string_view name, ByteSpan wrapped, ByteSpan aad) = 0;
  // An RSA PKCS#1 v1.5 type-1 block (00 01 FF..FF 00 || data, no DigestInfo) made with the private
  // key: the "private encrypt" Capgo encryption v2 uses for its session key and checksum, which the
  // holder of the public key reverses (crypto::RsaPkcs1Type1Recover). The output is modulus-sized.
  // Only for RSA keys of purpose capgo; the errors are CheckPrivateEncrypt's (kKeyUnusable unless
  // active; kInvalidArgument for another purpose or type, or data longer than modulus bytes - 11).
  [[nodiscard]] virtual Result<Bytes> PrivateEncryptPkcs1(std::string_view name, ByteSpan data) = 0;

  // Moves the key to `state` if CheckTransition allows it; records the time.
  [[nodiscard]] virtual Result<void> SetState(std::string_view name, KeyState state) = 0;
  // Renames a key (rotation keeps the old key as NAME@N). kAlreadyExists if `new_name` is taken.
  [[nodiscard]] virtual Result<void> Rename(std::string_view name, std::string_view new_name) = 0;
  // Destroys the key. kNotFound if absent.
  [[nodiscard]] virtual Result<void> Delete(std::string_view name) = 0;

  // The private key as PKCS#8 DER, AES-256-GCM-encrypted under `backup_key` (32 bytes) with the key's
  // metadata as associated data: nonce (12) || ciphertext || tag (16). kUnsupported if not extractable.
  [[nodiscard]] virtual Result<Bytes> ExportSealed(std::string_view name, ByteSpan backup_key) = 0;
  // The inverse: stores the key under info.name with info's purpose, state and times. kDecryptFailed if
  // `sealed` does not authenticate under `backup_key` with `info`; kWrongKey if the decrypted key's id
  // is not info.key_id; kAlreadyExists if the name is taken.
  [[nodiscard]] virtual Result<KeyInfo> ImportSealed(const KeyInfo& info, ByteSpan sealed,
                                                     ByteSpan backup_key) = 0;

  // Stores a private key made outside the store (a Capgo user's existing RSA key) under `name`, so
  // it is used from then on only through the store. kInvalidArgument for a bad name or what
  // CheckImportable refuses (checked before anything is written); kAlreadyExists if `name` is
  // taken. The key starts kActive with origin kImported. The caller still holds `key` and should
  // destroy its copy (the PEM file it came from).
  [[nodiscard]] virtual Result<KeyInfo> ImportPrivateKey(std::string_view name,
                                                         const crypto::PrivateKey& key,
                                                         KeyPurpose purpose) = 0;
};

// Opens the store a URI names (a key name in the URI is ignored here). kNotFound if it does not exist,
// kWrongKey if the secret is wrong, kUnsupported for a scheme with no registered backend.
[[nodiscard]] Result<std::unique_ptr<KeyStore>> OpenKeyStore(const KeyUri& uri,
                                                             const KeyStoreOptions& options);
[[nodiscard]] Result<std::unique_ptr<KeyStore>> OpenKeyStore(std::string_view uri,
                                                             const KeyStoreOptions& options);
// Creates a new, empty store (file vault: a new file with a fresh salt and key-check value; pkcs11: the
// token must already be initialised, so this just opens it). kAlreadyExists for an existing vault file.
[[nodiscard]] Result<std::unique_ptr<KeyStore>> InitKeyStore(const KeyUri& uri,
                                                             const KeyStoreOptions& options);

// Backends register themselves (a static registrar in their .cc; see KeyStoreRegistrar). `open` is
// called with create=false by OpenKeyStore and create=true by InitKeyStore.
using KeyStoreFactory = std::function<Result<std::unique_ptr<KeyStore>>(
    const KeyUri& uri, const KeyStoreOptions& options, bool create)>;
void RegisterKeyStoreBackend(KeyUriScheme scheme, KeyStoreFactory factory);

struct KeyStoreRegistrar {
  KeyStoreRegistrar(KeyUriScheme scheme, KeyStoreFactory factory) {
    RegisterKeyStoreBackend(scheme, std::move(factory));
  }
};

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_KEY_STORE_H_
