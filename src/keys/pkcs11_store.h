// The PKCS#11 key store backend: KeyStore (keys/key_store.h) over a token, registered for
// "pkcs11:token=LABEL" URIs.
//
// Where things live:
//   key pairs      on the token, generated there (see keys/pkcs11.h for the attributes: sensitive,
//                  never extractable, CKA_LABEL = CKA_ID = the key name, one use each)
//   metadata       one private CKO_DATA object per key (CKA_APPLICATION "airlock-key-metadata",
//                  CKA_LABEL = the key name) whose CKA_VALUE is JSON:
//                  {"v":1,"type":..,"purpose":..,"state":..,"created_at":..,"state_changed_at":..}
//                  plus "origin":"imported" for keys stored by ImportPrivateKey (absent: generated)
//                  Being private objects, they are only visible after login, and they travel with
//                  the token (backups, replication) together with the keys they describe.
//   state          one private CKO_DATA object (CKA_APPLICATION "airlock-vault-state", CKA_LABEL
//                  "state") whose CKA_VALUE is the store's VaultState (keys/vault_state.h: the
//                  audit checkpoint key's name and the newest head of each audit log, by log id).
//                  The store is a VaultStateStore: the audit sink signs checkpoints with an
//                  audit-purpose key made on the token and moves the head forward here after every
//                  record, so someone who can write the log file but has no PIN cannot cut records
//                  off its end unnoticed. A token has no transactions: UpdateState is read, change,
//                  write, so two processes appending to one log at the same instant may leave the
//                  older of their two heads (never one the log did not hold; the next record moves
//                  it on).
// Only keys with a metadata object belong to the store; other keys on the token are left alone.
//
// Configuration: the module is KeyStoreOptions::pkcs11_module, else the URI's module-path, else
// AIRLOCK_PKCS11_MODULE, else /usr/lib/softhsm/libsofthsm2.so. The PIN is read from the URI's
// pin-source (file:PATH) if it has one, else KeyStoreOptions::secret(), else AIRLOCK_PKCS11_PIN. A
// pin-value in the URI is refused (kInvalidArgument): URIs are logged and written into audit
// records.
//
// ImportPrivateKey (capgo RSA keys only) creates the key pair with C_CreateObject, with the
// attributes of a generated signing key (sensitive, never extractable again, CKA_SIGN), so from
// then on it is used like a generated one; the token reports CKA_ALWAYS_SENSITIVE and
// CKA_NEVER_EXTRACTABLE false for it, which is the truth.
//
// Errors are those of keys/key_store.h. Specific to this backend: ExportSealed and ImportSealed are
// kUnsupported (keys never leave the token, and a backup restored onto a token would not be
// "generated on the token"); x25519 is kUnsupported on tokens without
// CKM_EC_MONTGOMERY_KEY_PAIR_GEN (SoftHSM2 2.6); a wrong PIN is kWrongKey.
//
// Thread-safety: as KeyStore says, one object per thread; the underlying Pkcs11Token serialises its
// one session with a mutex, so sharing one is safe but not parallel.
#ifndef AIRLOCK_KEYS_PKCS11_STORE_H_
#define AIRLOCK_KEYS_PKCS11_STORE_H_

#include <memory>

#include "common/result.h"
#include "keys/key_store.h"
#include "keys/key_uri.h"

namespace airlock::keys {

[[nodiscard]] Result<std::unique_ptr<KeyStore>> OpenPkcs11KeyStore(const KeyUri& uri,
                                                                   const KeyStoreOptions& options);

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_PKCS11_STORE_H_
