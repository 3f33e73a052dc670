// Internal to the PKCS#11 backend (pkcs11.cc, pkcs11_token.cc): the curve OIDs, attribute
// templates, attribute reads and object search, key types and public-key export, one-shot sign and
// decrypt on the token, and the unwrap helpers. Not for use outside src/keys.
#ifndef AIRLOCK_KEYS_PKCS11_OBJECTS_H_
#define AIRLOCK_KEYS_PKCS11_OBJECTS_H_

#include <openssl/bn.h>

#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"
#include "crypto/secret_bytes.h"
#include "keys/pkcs11.h"

namespace airlock::keys::pkcs11_internal {

using crypto::KeyType;

// DER of the curve OIDs, and the PKCS#11 3.0 printable-string alternatives (some tokens only take
// one).
extern const Bytes kP256Oid;
extern const Bytes kEd25519Oid;
extern const Bytes kX25519Oid;
extern const Bytes kEd25519Name;
extern const Bytes kX25519Name;

inline constexpr size_t kMaxAttributeSize = 64 * 1024;
inline constexpr size_t kMaxWrappedSize = 1024;  // as crypto::UnwrapKey bounds it
inline constexpr size_t kX25519Size = 32;
inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;
inline constexpr std::string_view kX25519HkdfInfo = "airlock/v1/x25519-wrap";

// Secret bytes wiped when they go out of scope: the one secret-bytes type.
using crypto::SecretBytes;

// CK_ATTRIBUTE wants non-const pointers even for input templates.
template <typename T>
inline CK_ATTRIBUTE Attr(CK_ATTRIBUTE_TYPE type, T* value) {
  return CK_ATTRIBUTE{type, const_cast<std::remove_const_t<T>*>(value), sizeof(T)};
}

inline CK_ATTRIBUTE AttrBytes(CK_ATTRIBUTE_TYPE type, ByteSpan value) {
  return CK_ATTRIBUTE{type, const_cast<uint8_t*>(value.data()), value.size()};
}

inline CK_ATTRIBUTE AttrString(CK_ATTRIBUTE_TYPE type, std::string_view value) {
  return CK_ATTRIBUTE{type, const_cast<char*>(value.data()), value.size()};
}

inline CK_BBOOL kTrue = CK_TRUE;
inline CK_BBOOL kFalse = CK_FALSE;

// {} for CKR_OK, else Pkcs11Error(rv, what).
Result<void> Check(CK_RV rv, std::string_view what);

// kInvalidArgument unless 1..kMaxPkcs11NameSize bytes without control characters.
Result<void> ValidateName(std::string_view name);

// ---- attributes and object search ----

Result<Bytes> GetAttribute(const Pkcs11Session& s, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);

Result<CK_ULONG> GetUlong(const Pkcs11Session& s, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);

Result<bool> GetBool(const Pkcs11Session& s, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);

// C_FindObjectsInit .. C_FindObjectsFinal, the Final guaranteed.
Result<std::vector<CK_OBJECT_HANDLE>> FindObjects(const Pkcs11Session& s,
                                                  std::vector<CK_ATTRIBUTE> tmpl);

Result<std::optional<CK_OBJECT_HANDLE>> FindOne(const Pkcs11Session& s, CK_OBJECT_CLASS cls,
                                                std::string_view label,
                                                std::string_view application = {});

// kAlreadyExists when a private or public key object is labelled `name` (before making or importing
// one).
Result<void> CheckNameFree(const Pkcs11Session& s, std::string_view name, std::string_view token);

Result<CK_OBJECT_HANDLE> FindKey(const Pkcs11Session& s, CK_OBJECT_CLASS cls,
                                 std::string_view name);

// ---- key types, public keys, one-shot operations ----

// The type of a key object, from CKA_KEY_TYPE and (for EC kinds) CKA_EC_PARAMS.
Result<KeyType> KeyTypeOf(const Pkcs11Session& s, CK_OBJECT_HANDLE key);

// CKA_EC_POINT is a DER OCTET STRING per the standard; some tokens return the bare point.
Result<Bytes> EcPoint(const Pkcs11Session& s, CK_OBJECT_HANDLE pub, size_t raw_size);

struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

Result<crypto::PublicKey> ExportPublic(const Pkcs11Session& s, CK_OBJECT_HANDLE pub, KeyType type);

// r || s (each 32 bytes) -> DER ECDSA-Sig-Value, the TUF ecdsa-sha2-nistp256 format.
Result<Bytes> EcdsaRawToDer(ByteSpan raw);

// One-shot C_SignInit + C_Sign with the two-call length pattern.
Result<Bytes> SignOnToken(const Pkcs11Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM* mech,
                          ByteSpan data);

Result<SecretBytes> DecryptOnToken(const Pkcs11Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM* mech,
                                   ByteSpan data);

// The one message every failed RSA unwrap gives (wrong key, wrong aad, tampered ciphertext, bad
// padding), so the result does not become a padding oracle.
tl::unexpected<Error> RsaUnwrapFailed();

// EME-OAEP decoding with SHA-256 / MGF1-SHA-256 and `label` (RFC 8017 7.1.2 step 3) of `em`, the
// raw RSA output of k = em.size() bytes, for tokens whose CKM_RSA_PKCS_OAEP takes only SHA-1 and no
// label (SoftHSM2 2.6). OpenSSL does the decoding: RSA_padding_check_PKCS1_OAEP_mgf1 is the
// constant-time check its own RSA decryption uses. It is deprecated in OpenSSL 3 and has no
// replacement: the EVP interface decodes OAEP only inside EVP_PKEY_decrypt, which needs the
// private key, and ours never leaves the token. So the deprecation warning is silenced for this one
// call; every failure is the same RsaUnwrapFailed and the error queue is cleared.
Result<Bytes> OaepDecodeSha256(ByteSpan em, ByteSpan label);

// AES-256-GCM open, the second half of the x25519 wrap form (crypto/wrap.h).
Result<Bytes> GcmOpen(ByteSpan key, ByteSpan nonce, ByteSpan ciphertext, ByteSpan tag,
                      ByteSpan aad);

}  // namespace airlock::keys::pkcs11_internal

#endif  // AIRLOCK_KEYS_PKCS11_OBJECTS_H_
