// The raw PKCS#11 layer: load a module, open a logged-in session on a token found by label, and
// generate, use and inspect key pairs that never leave the token. The key store backend
// (pkcs11_store.h) is built on this; nothing outside src/keys should need it.
//
// Key objects made here (generated on the token, or for ImportRsaSigningKey created from a key made
// elsewhere):
//   private key: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE = true, CKA_EXTRACTABLE = false, CKA_LABEL
//   and
//                CKA_ID = the key name; CKA_SIGN for signing keys, CKA_DECRYPT (RSA) / CKA_DERIVE
//                (X25519) for unwrap keys, never both.
//   public key:  same label and id, CKA_TOKEN = true.
//   data object: CKO_DATA, CKA_APPLICATION = kPkcs11MetadataApplication, CKA_LABEL = the key name,
//                CKA_PRIVATE = true, CKA_VALUE = opaque bytes (the backend's JSON metadata).
//
// Signatures come out exactly in the TUF formats of crypto/sign.h (ed25519 raw 64 bytes, ECDSA
// P-256 DER over SHA-256, RSASSA-PSS SHA-256 / MGF1-SHA-256 / salt 32), so crypto::Verify accepts
// them. Unwrap accepts exactly what crypto::WrapKey produces.
//
// Error codes (besides those of the module's own CK_RV, which map to kCrypto):
//   kNotFound        module file, token label or key name does not exist
//   kWrongKey        login refused: wrong PIN (CKR_PIN_INCORRECT), or PIN locked / expired
//   kAlreadyExists   a key (or data object) with that name already exists on the token
//   kUnsupported     the token lacks the mechanism (e.g. X25519 on SoftHSM2 2.6) or the key type
//   cannot do
//                    the operation
//   kDecryptFailed   unwrap failed (not wrapped to this key, wrong aad, tampered)
//   kInvalidArgument bad name, PIN source, or a key used for what it was not made for
//
// Thread safety: a Pkcs11Token owns exactly one session; every method takes the token's mutex, so
// one Pkcs11Token may be shared between threads (operations are serialised). Open several tokens
// for parallelism. Modules are loaded once per process and path, reference counted, and
// C_Initialize'd with CKF_OS_LOCKING_OK.
#ifndef AIRLOCK_KEYS_PKCS11_H_
#define AIRLOCK_KEYS_PKCS11_H_

// airlock_keys links p11-kit's include directory privately; code that includes this header from
// another target (keys_test) finds the same file through its path under /usr/include.
#if __has_include(<p11-kit/pkcs11.h>)
#include <p11-kit/pkcs11.h>
#else
#include <p11-kit-1/p11-kit/pkcs11.h>
#endif

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"

namespace airlock::keys {

inline constexpr std::string_view kDefaultPkcs11Module = "/usr/lib/softhsm/libsofthsm2.so";
inline constexpr std::string_view kPkcs11ModuleEnv = "AIRLOCK_PKCS11_MODULE";
inline constexpr std::string_view kPkcs11PinEnv = "AIRLOCK_PKCS11_PIN";
inline constexpr std::string_view kPkcs11MetadataApplication = "airlock-key-metadata";
// The store's own state (keys/vault_state.h: checkpoint key, audit heads): one private data object
// of this application, apart from the key metadata so it is never taken for a key.
inline constexpr std::string_view kPkcs11StateApplication = "airlock-vault-state";
// Longest PIN file and key name we accept.
inline constexpr size_t kMaxPinSize = 256;
inline constexpr size_t kMaxPkcs11NameSize = 128;

// How to reach a token. Empty fields fall back as documented on ResolvePkcs11Module /
// ResolvePkcs11Pin.
struct Pkcs11Options {
  std::string module_path;         // --pkcs11-module
  std::string token_label;         // required
  std::optional<std::string> pin;  // given directly (tests, prompts)
  std::string pin_source;          // "file:PATH" or "PATH"
};

// `explicit_path`, else AIRLOCK_PKCS11_MODULE, else kDefaultPkcs11Module.
std::string ResolvePkcs11Module(std::string_view explicit_path);
// options.pin, else the file named by options.pin_source (one line; a trailing newline is dropped),
// else AIRLOCK_PKCS11_PIN. kInvalidArgument if none is set or the source is not a file: source;
// kNotFound / kIo for an unreadable file; kLimitExceeded if the file is over kMaxPinSize.
Result<std::string> ResolvePkcs11Pin(const Pkcs11Options& options);

class Pkcs11Session;

// A loaded, initialised PKCS#11 module. Shared: Load returns the same object for the same path
// while any holder keeps it; the last holder calls C_Finalize (if we initialised it) and dlclose.
class Pkcs11Module {
 public:
  // kNotFound if the file does not exist; kUnsupported if it is not a PKCS#11 module; kCrypto if
  // C_Initialize fails.
  static Result<std::shared_ptr<Pkcs11Module>> Load(const std::string& path);
  ~Pkcs11Module();
  Pkcs11Module(const Pkcs11Module&) = delete;
  Pkcs11Module& operator=(const Pkcs11Module&) = delete;

  CK_FUNCTION_LIST* functions() const { return functions_; }
  const std::string& path() const { return path_; }
  // The slot holding an initialised token with this label (trailing blanks ignored). kNotFound
  // otherwise.
  Result<CK_SLOT_ID> FindTokenSlot(std::string_view label) const;
  bool HasMechanism(CK_SLOT_ID slot, CK_MECHANISM_TYPE mechanism) const;
  // C_Login as the user, or, if this process is already logged in to the slot, a check that `pin`
  // is the PIN that did it (kWrongKey otherwise).
  Result<void> Login(const Pkcs11Session& session, CK_SLOT_ID slot, ByteSpan pin);
  // Session bookkeeping (login state ends with a slot's last session); called by Pkcs11Session.
  void SessionOpened(CK_SLOT_ID slot);
  void SessionClosed(CK_SLOT_ID slot);

 private:
  struct SlotState {
    int sessions = 0;
    Bytes pin_digest;  // SHA-256 of the PIN that logged in; empty if not logged in by us
  };
  Pkcs11Module(std::string path, void* handle, CK_FUNCTION_LIST* functions, bool finalize)
      : path_(std::move(path)), handle_(handle), functions_(functions), finalize_(finalize) {}
  std::string path_;
  void* handle_;
  CK_FUNCTION_LIST* functions_;
  bool finalize_;
  std::mutex mu_;
  std::map<CK_SLOT_ID, SlotState> slots_;  // GUARDED_BY(mu_)
};

// Maps a CK_RV to an Error ("what: CKR_NAME").
Error Pkcs11Error(CK_RV rv, std::string_view what);
std::string_view Pkcs11RvName(CK_RV rv);

// An open read-write session, closed on destruction.
class Pkcs11Session {
 public:
  static Result<Pkcs11Session> Open(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot);
  Pkcs11Session(Pkcs11Session&& other) noexcept;
  Pkcs11Session& operator=(Pkcs11Session&& other) noexcept;
  Pkcs11Session(const Pkcs11Session&) = delete;
  Pkcs11Session& operator=(const Pkcs11Session&) = delete;
  ~Pkcs11Session();

  CK_SESSION_HANDLE get() const { return handle_; }
  CK_FUNCTION_LIST* f() const { return module_->functions(); }

 private:
  Pkcs11Session(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot, CK_SESSION_HANDLE handle)
      : module_(std::move(module)), slot_(slot), handle_(handle) {}
  void Close();
  std::shared_ptr<Pkcs11Module> module_;
  CK_SLOT_ID slot_;
  CK_SESSION_HANDLE handle_;
};

// What a key is for; a key pair is made for exactly one.
enum class Pkcs11KeyUse { kSign, kUnwrap };

struct Pkcs11KeyInfo {
  std::string name;
  crypto::KeyType type;
  Pkcs11KeyUse use;
};

// What the token says about a private key (the non-extractability check).
struct Pkcs11KeyProtection {
  bool sensitive = false;
  bool extractable = true;
  bool always_sensitive = false;
  bool never_extractable = false;
  bool value_readable = true;  // C_GetAttributeValue(CKA_VALUE) succeeded
};

class Pkcs11Token {
 public:
  // Loads the module, finds the token by label, opens a session and logs in as the user.
  static Result<std::unique_ptr<Pkcs11Token>> Open(const Pkcs11Options& options);
  ~Pkcs11Token();
  Pkcs11Token(const Pkcs11Token&) = delete;
  Pkcs11Token& operator=(const Pkcs11Token&) = delete;

  const std::string& token_label() const { return label_; }
  // Whether the token can make and use keys of this type for this use.
  bool Supports(crypto::KeyType type, Pkcs11KeyUse use) const;

  // Generates a key pair on the token. kAlreadyExists if `name` is taken; kUnsupported if the token
  // cannot (or the type cannot be used that way: ed25519/ECDSA unwrap, X25519 sign);
  // kInvalidArgument for a bad name. RSA keys are `rsa_bits` (default 4096) bits.
  Result<crypto::PublicKey> GenerateKeyPair(std::string_view name, crypto::KeyType type,
                                            Pkcs11KeyUse use, int rsa_bits = 4096);
  // Creates an RSA signing key pair (C_CreateObject) from a private key made elsewhere: the private
  // key object with GenerateKeyPair's attributes for a signing key (sensitive, not extractable,
  // CKA_SIGN only; CKA_ALWAYS_SENSITIVE / CKA_NEVER_EXTRACTABLE stay false, as the token sets them
  // for imported keys) and the public key object. kAlreadyExists if `name` is taken;
  // kInvalidArgument for a bad name or a key that is not RSA 2048..16384; kUnsupported for an RSA
  // key without CRT parameters. Returns the public key as the token now holds it (equal to
  // key.Public(), else nothing is left on the token and the error is kCrypto).
  Result<crypto::PublicKey> ImportRsaSigningKey(std::string_view name,
                                                const crypto::PrivateKey& key);
  Result<crypto::PublicKey> PublicKey(std::string_view name);
  Result<Pkcs11KeyInfo> Describe(std::string_view name);
  // Key pairs on the token (private keys with a label), sorted by name. Keys of types Airlock does
  // not use are skipped.
  Result<std::vector<Pkcs11KeyInfo>> ListKeys();
  // TUF-format signature made on the token. kInvalidArgument if the key was made for unwrap.
  Result<Bytes> Sign(std::string_view name, ByteSpan message);
  // An RSA PKCS#1 v1.5 type-1 block over `data` itself (C_Sign with CKM_RSA_PKCS: no hashing, no
  // DigestInfo), i.e. crypto::RsaPkcs1Type1Sign on the token. kInvalidArgument if the key is not an
  // RSA signing key or `data` is longer than modulus bytes - 11.
  Result<Bytes> SignRawPkcs1(std::string_view name, ByteSpan data);
  // Reverses crypto::WrapKey(public, key, aad) with the private key on the token.
  Result<Bytes> Unwrap(std::string_view name, ByteSpan wrapped, ByteSpan aad);
  // Relabels (CKA_LABEL and CKA_ID) the private and public key objects. kAlreadyExists if
  // `new_name` is taken, kNotFound if `name` is absent.
  Result<void> RenameKey(std::string_view name, std::string_view new_name);
  // Destroys the private and public key objects. kNotFound if neither exists.
  Result<void> DestroyKey(std::string_view name);
  Result<Pkcs11KeyProtection> InspectPrivateKey(std::string_view name);

  // Private data objects (CKA_TOKEN, CKA_PRIVATE: readable and writable only after login) of
  // `application`, by label.
  Result<std::optional<Bytes>> ReadData(std::string_view label,
                                        std::string_view application = kPkcs11MetadataApplication);
  // Creates or replaces.
  Result<void> WriteData(std::string_view label, ByteSpan value,
                         std::string_view application = kPkcs11MetadataApplication);
  Result<void> DeleteData(std::string_view label,
                          std::string_view application = kPkcs11MetadataApplication);
  Result<std::vector<std::string>> ListData(
      std::string_view application = kPkcs11MetadataApplication);

 private:
  Pkcs11Token(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot, Pkcs11Session session,
              std::string label)
      : module_(std::move(module)),
        slot_(slot),
        session_(std::move(session)),
        label_(std::move(label)) {}

  std::shared_ptr<Pkcs11Module> module_;
  CK_SLOT_ID slot_;
  std::mutex mu_;
  Pkcs11Session session_;  // GUARDED_BY(mu_); logged in while this object lives
  std::string label_;
};

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_PKCS11_H_
