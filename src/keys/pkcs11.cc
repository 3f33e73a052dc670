#include "keys/pkcs11.h"

#include <dlfcn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <system_error>

#include "crypto/hash.h"
#include "crypto/ossl.h"
#include "crypto/secret_bytes.h"

// PKCS#11 3.0 names p11-kit 0.24's header lacks.
#ifndef CKK_EC_MONTGOMERY
#define CKK_EC_MONTGOMERY (0x41UL)
#endif
#ifndef CKM_EC_MONTGOMERY_KEY_PAIR_GEN
#define CKM_EC_MONTGOMERY_KEY_PAIR_GEN (0x1056UL)
#endif

namespace airlock::keys {

namespace {

using crypto::KeyType;

// DER of the curve OIDs, and the PKCS#11 3.0 printable-string alternatives (some tokens only take
// one).
const Bytes kP256Oid = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
const Bytes kEd25519Oid = {0x06, 0x03, 0x2b, 0x65, 0x70};
const Bytes kX25519Oid = {0x06, 0x03, 0x2b, 0x65, 0x6e};
Bytes PrintableString(std::string_view s) {
  Bytes out = {0x13, static_cast<uint8_t>(s.size())};
  out.insert(out.end(), s.begin(), s.end());
  return out;
}
const Bytes kEd25519Name = PrintableString("edwards25519");
const Bytes kX25519Name = PrintableString("curve25519");

constexpr size_t kMaxAttributeSize = 64 * 1024;
constexpr size_t kMaxWrappedSize = 1024;  // as crypto::UnwrapKey bounds it
constexpr size_t kX25519Size = 32;
constexpr size_t kGcmNonceSize = 12;
constexpr size_t kGcmTagSize = 16;
constexpr std::string_view kX25519HkdfInfo = "airlock/v1/x25519-wrap";

// Secret bytes wiped when they go out of scope: the one secret-bytes type.
using crypto::SecretBytes;

// CK_ATTRIBUTE wants non-const pointers even for input templates.
template <typename T>
CK_ATTRIBUTE Attr(CK_ATTRIBUTE_TYPE type, T* value) {
  return CK_ATTRIBUTE{type, const_cast<std::remove_const_t<T>*>(value), sizeof(T)};
}
CK_ATTRIBUTE AttrBytes(CK_ATTRIBUTE_TYPE type, ByteSpan value) {
  return CK_ATTRIBUTE{type, const_cast<uint8_t*>(value.data()), value.size()};
}
CK_ATTRIBUTE AttrString(CK_ATTRIBUTE_TYPE type, std::string_view value) {
  return CK_ATTRIBUTE{type, const_cast<char*>(value.data()), value.size()};
}

CK_BBOOL kTrue = CK_TRUE;
CK_BBOOL kFalse = CK_FALSE;

Result<void> Check(CK_RV rv, std::string_view what) {
  if (rv != CKR_OK) return tl::unexpected(Pkcs11Error(rv, what));
  return {};
}

Result<void> ValidateName(std::string_view name) {
  if (name.empty() || name.size() > kMaxPkcs11NameSize) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key name must be 1.." + std::to_string(kMaxPkcs11NameSize) + " bytes");
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return MakeError(ErrorCode::kInvalidArgument, "key name contains a control character");
    }
  }
  return {};
}

// ---- attributes and object search ----

Result<Bytes> GetAttribute(const Pkcs11Session& s, CK_OBJECT_HANDLE object,
                           CK_ATTRIBUTE_TYPE type) {
  CK_ATTRIBUTE attr{type, nullptr, 0};
  AIRLOCK_TRY(Check(s.f()->C_GetAttributeValue(s.get(), object, &attr, 1), "C_GetAttributeValue"));
  if (attr.ulValueLen == CK_UNAVAILABLE_INFORMATION || attr.ulValueLen > kMaxAttributeSize) {
    return MakeError(ErrorCode::kCrypto, "attribute unavailable or too large");
  }
  Bytes value(attr.ulValueLen);
  attr.pValue = value.data();
  AIRLOCK_TRY(Check(s.f()->C_GetAttributeValue(s.get(), object, &attr, 1), "C_GetAttributeValue"));
  value.resize(attr.ulValueLen);
  return value;
}

Result<CK_ULONG> GetUlong(const Pkcs11Session& s, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  CK_ULONG value = 0;
  CK_ATTRIBUTE attr = Attr(type, &value);
  AIRLOCK_TRY(Check(s.f()->C_GetAttributeValue(s.get(), object, &attr, 1), "C_GetAttributeValue"));
  return value;
}

Result<bool> GetBool(const Pkcs11Session& s, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  CK_BBOOL value = CK_FALSE;
  CK_ATTRIBUTE attr = Attr(type, &value);
  AIRLOCK_TRY(Check(s.f()->C_GetAttributeValue(s.get(), object, &attr, 1), "C_GetAttributeValue"));
  return value == CK_TRUE;
}

// C_FindObjectsInit .. C_FindObjectsFinal, the Final guaranteed.
Result<std::vector<CK_OBJECT_HANDLE>> FindObjects(const Pkcs11Session& s,
                                                  std::vector<CK_ATTRIBUTE> tmpl) {
  AIRLOCK_TRY(
      Check(s.f()->C_FindObjectsInit(s.get(), tmpl.data(), tmpl.size()), "C_FindObjectsInit"));
  struct Finaliser {
    const Pkcs11Session& s;
    ~Finaliser() { s.f()->C_FindObjectsFinal(s.get()); }
  } finaliser{s};
  std::vector<CK_OBJECT_HANDLE> out;
  constexpr size_t kMaxObjects = 100000;
  while (out.size() < kMaxObjects) {
    CK_OBJECT_HANDLE batch[64];
    CK_ULONG n = 0;
    AIRLOCK_TRY(Check(s.f()->C_FindObjects(s.get(), batch, 64, &n), "C_FindObjects"));
    if (n == 0) break;
    out.insert(out.end(), batch, batch + n);
  }
  return out;
}

Result<std::optional<CK_OBJECT_HANDLE>> FindOne(const Pkcs11Session& s, CK_OBJECT_CLASS cls,
                                                std::string_view label,
                                                std::string_view application = {}) {
  std::vector<CK_ATTRIBUTE> tmpl = {Attr(CKA_CLASS, &cls), AttrString(CKA_LABEL, label)};
  if (!application.empty()) tmpl.push_back(AttrString(CKA_APPLICATION, application));
  AIRLOCK_ASSIGN_OR_RETURN(auto found, FindObjects(s, tmpl));
  if (found.empty()) return std::optional<CK_OBJECT_HANDLE>();
  if (found.size() > 1) {
    return MakeError(ErrorCode::kInternal, "token holds " + std::to_string(found.size()) +
                                               " objects labelled '" + std::string(label) + "'");
  }
  return std::optional<CK_OBJECT_HANDLE>(found[0]);
}

// kAlreadyExists when a private or public key object is labelled `name` (before making or importing one).
Result<void> CheckNameFree(const Pkcs11Session& s, std::string_view name, std::string_view token) {
  for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY}) {
    AIRLOCK_ASSIGN_OR_RETURN(auto existing, FindOne(s, cls, name));
    if (existing) {
      return MakeError(ErrorCode::kAlreadyExists, "key '" + std::string(name) +
                                                      "' already exists on token '" +
                                                      std::string(token) + "'");
    }
  }
  return {};
}

Result<CK_OBJECT_HANDLE> FindKey(const Pkcs11Session& s, CK_OBJECT_CLASS cls,
                                 std::string_view name) {
  AIRLOCK_TRY(ValidateName(name));
  AIRLOCK_ASSIGN_OR_RETURN(auto found, FindOne(s, cls, name));
  if (!found) {
    return MakeError(ErrorCode::kNotFound,
                     std::string(cls == CKO_PRIVATE_KEY ? "private" : "public") + " key '" +
                         std::string(name) + "' not on the token");
  }
  return *found;
}

// ---- key types ----

// The type of a key object, from CKA_KEY_TYPE and (for EC kinds) CKA_EC_PARAMS.
Result<KeyType> KeyTypeOf(const Pkcs11Session& s, CK_OBJECT_HANDLE key) {
  AIRLOCK_ASSIGN_OR_RETURN(CK_ULONG kt, GetUlong(s, key, CKA_KEY_TYPE));
  if (kt == CKK_RSA) return KeyType::kRsa;
  if (kt == CKK_EC_MONTGOMERY) return KeyType::kX25519;
  if (kt == CKK_EC || kt == CKK_EC_EDWARDS) {
    AIRLOCK_ASSIGN_OR_RETURN(Bytes params, GetAttribute(s, key, CKA_EC_PARAMS));
    if (kt == CKK_EC && params == kP256Oid) return KeyType::kEcdsaP256;
    if (kt == CKK_EC_EDWARDS && (params == kEd25519Oid || params == kEd25519Name)) {
      return KeyType::kEd25519;
    }
  }
  return MakeError(ErrorCode::kUnsupported, "key type/curve Airlock does not use");
}

// CKA_EC_POINT is a DER OCTET STRING per the standard; some tokens return the bare point.
Result<Bytes> EcPoint(const Pkcs11Session& s, CK_OBJECT_HANDLE pub, size_t raw_size) {
  AIRLOCK_ASSIGN_OR_RETURN(Bytes point, GetAttribute(s, pub, CKA_EC_POINT));
  if (point.size() == raw_size) return point;
  if (point.size() == raw_size + 2 && point[0] == 0x04 && point[1] == raw_size) {
    return Bytes(point.begin() + 2, point.end());
  }
  return MakeError(ErrorCode::kMalformed, "CKA_EC_POINT has an unexpected encoding");
}

struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

Result<crypto::PublicKey> FromParams(const char* algorithm, OSSL_PARAM_BLD* bld, KeyType type) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  crypto::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, algorithm, nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "cannot set up EVP_PKEY_fromdata"));
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return tl::unexpected(
        crypto::OsslError(ErrorCode::kMalformed, "token public key does not form a key"));
  }
  crypto::EvpPkeyPtr pkey(raw);
  // Round-trip through SPKI so the key is checked exactly as any other public key we accept.
  crypto::PublicKey key(std::move(pkey), type);
  return crypto::PublicKey::FromPem(key.ToPem());
}

Result<crypto::PublicKey> ExportPublic(const Pkcs11Session& s, CK_OBJECT_HANDLE pub, KeyType type) {
  switch (type) {
    case KeyType::kEd25519:
    case KeyType::kX25519: {
      AIRLOCK_ASSIGN_OR_RETURN(Bytes raw, EcPoint(s, pub, kX25519Size));
      return crypto::PublicKey::FromRaw(type, raw);
    }
    case KeyType::kEcdsaP256: {
      AIRLOCK_ASSIGN_OR_RETURN(Bytes point, EcPoint(s, pub, 65));
      std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
      if (!bld ||
          OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
              1 ||
          OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                           point.size()) != 1) {
        return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "cannot build EC parameters"));
      }
      return FromParams("EC", bld.get(), type);
    }
    case KeyType::kRsa: {
      AIRLOCK_ASSIGN_OR_RETURN(Bytes n, GetAttribute(s, pub, CKA_MODULUS));
      AIRLOCK_ASSIGN_OR_RETURN(Bytes e, GetAttribute(s, pub, CKA_PUBLIC_EXPONENT));
      BnPtr bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
      BnPtr bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
      std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
      if (!bn_n || !bn_e || !bld ||
          OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
          OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
        return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "cannot build RSA parameters"));
      }
      return FromParams("RSA", bld.get(), type);
    }
  }
  return MakeError(ErrorCode::kInternal, "unknown key type");
}

// r || s (each 32 bytes) -> DER ECDSA-Sig-Value, the TUF ecdsa-sha2-nistp256 format.
Result<Bytes> EcdsaRawToDer(ByteSpan raw) {
  if (raw.size() != 64)
    return MakeError(ErrorCode::kCrypto, "token ECDSA signature is not 64 bytes");
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  BnPtr r(BN_bin2bn(raw.data(), 32, nullptr));
  BnPtr s(BN_bin2bn(raw.data() + 32, 32, nullptr));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "cannot build ECDSA signature"));
  }
  r.release();  // owned by sig now
  s.release();
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "cannot encode ECDSA"));
  Bytes der(static_cast<size_t>(len));
  uint8_t* p = der.data();
  if (i2d_ECDSA_SIG(sig.get(), &p) != len) {
    return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "cannot encode ECDSA"));
  }
  return der;
}

// One-shot C_SignInit + C_Sign with the two-call length pattern.
Result<Bytes> SignOnToken(const Pkcs11Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM* mech,
                          ByteSpan data) {
  AIRLOCK_TRY(Check(s.f()->C_SignInit(s.get(), mech, key), "C_SignInit"));
  CK_ULONG len = 0;
  CK_BYTE_PTR in = const_cast<CK_BYTE_PTR>(data.data());
  // A failed C_Sign ends the operation, so no cleanup is needed on the error paths.
  AIRLOCK_TRY(Check(s.f()->C_Sign(s.get(), in, data.size(), nullptr, &len), "C_Sign"));
  Bytes sig(len);
  AIRLOCK_TRY(Check(s.f()->C_Sign(s.get(), in, data.size(), sig.data(), &len), "C_Sign"));
  sig.resize(len);
  return sig;
}

Result<SecretBytes> DecryptOnToken(const Pkcs11Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM* mech,
                                   ByteSpan data) {
  AIRLOCK_TRY(Check(s.f()->C_DecryptInit(s.get(), mech, key), "C_DecryptInit"));
  CK_BYTE_PTR in = const_cast<CK_BYTE_PTR>(data.data());
  CK_ULONG len = 0;
  AIRLOCK_TRY(Check(s.f()->C_Decrypt(s.get(), in, data.size(), nullptr, &len), "C_Decrypt"));
  SecretBytes out{Bytes(len)};
  AIRLOCK_TRY(Check(s.f()->C_Decrypt(s.get(), in, data.size(), out.mutable_bytes().data(), &len),
                    "C_Decrypt"));
  out.mutable_bytes().resize(len);
  return out;
}

// The one message every failed RSA unwrap gives (wrong key, wrong aad, tampered ciphertext, bad
// padding), so the result does not become a padding oracle.
tl::unexpected<Error> RsaUnwrapFailed() {
  return MakeError(ErrorCode::kDecryptFailed, "wrapped key does not open with this key and aad");
}

// EME-OAEP decoding with SHA-256 / MGF1-SHA-256 and `label` (RFC 8017 7.1.2 step 3) of `em`, the
// raw RSA output of k = em.size() bytes, for tokens whose CKM_RSA_PKCS_OAEP takes only SHA-1 and no
// label (SoftHSM2 2.6). OpenSSL does the decoding: RSA_padding_check_PKCS1_OAEP_mgf1 is the
// constant-time check its own RSA decryption uses. It is deprecated in OpenSSL 3 and has no
// replacement: the EVP interface decodes OAEP only inside EVP_PKEY_decrypt, which needs the
// private key, and ours never leaves the token. So the deprecation warning is silenced for this one
// call; every failure is the same RsaUnwrapFailed and the error queue is cleared.
Result<Bytes> OaepDecodeSha256(ByteSpan em, ByteSpan label) {
  const int k = static_cast<int>(em.size());
  SecretBytes out{Bytes(em.size())};
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  const int n = RSA_padding_check_PKCS1_OAEP_mgf1(
      out.mutable_bytes().data(), k, em.data(), k, k, label.empty() ? nullptr : label.data(),
      static_cast<int>(label.size()), EVP_sha256(), EVP_sha256());
#pragma GCC diagnostic pop
  ERR_clear_error();
  if (n < 0) return RsaUnwrapFailed();
  out.mutable_bytes().resize(static_cast<size_t>(n));
  return out.get();
}

// AES-256-GCM open, the second half of the x25519 wrap form (crypto/wrap.h).
Result<Bytes> GcmOpen(ByteSpan key, ByteSpan nonce, ByteSpan ciphertext, ByteSpan tag,
                      ByteSpan aad) {
  crypto::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  static const uint8_t kEmpty = 0;
  if (!ctx ||
      EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), key.data(), nonce.data(), nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.empty() ? &kEmpty : aad.data(),
                        static_cast<int>(aad.size())) != 1) {
    return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "cannot set up AES-256-GCM"));
  }
  SecretBytes plain{Bytes(ciphertext.size())};
  if (!ciphertext.empty() &&
      EVP_DecryptUpdate(ctx.get(), plain.mutable_bytes().data(), &len, ciphertext.data(),
                        static_cast<int>(ciphertext.size())) != 1) {
    return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "AES-256-GCM failed"));
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()),
                          const_cast<uint8_t*>(tag.data())) != 1) {
    return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "AES-256-GCM tag"));
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), nullptr, &final_len) != 1) {
    crypto::ClearOsslErrors();
    return MakeError(ErrorCode::kDecryptFailed, "wrapped key does not open with this key and aad");
  }
  return plain.get();
}

// ---- module registry ----

std::mutex g_modules_mu;
std::map<std::string, std::weak_ptr<Pkcs11Module>>& Modules() {
  static auto* modules = new std::map<std::string, std::weak_ptr<Pkcs11Module>>();
  return *modules;
}

std::string TrimLabel(const CK_UTF8CHAR* label, size_t size) {
  std::string s(reinterpret_cast<const char*>(label), size);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

// ---- errors ----

std::string_view Pkcs11RvName(CK_RV rv) {
  switch (rv) {
#define AIRLOCK_RV_(x) \
  case x:              \
    return #x;
    AIRLOCK_RV_(CKR_OK)
    AIRLOCK_RV_(CKR_CANCEL)
    AIRLOCK_RV_(CKR_HOST_MEMORY)
    AIRLOCK_RV_(CKR_SLOT_ID_INVALID)
    AIRLOCK_RV_(CKR_GENERAL_ERROR)
    AIRLOCK_RV_(CKR_FUNCTION_FAILED)
    AIRLOCK_RV_(CKR_ARGUMENTS_BAD)
    AIRLOCK_RV_(CKR_ATTRIBUTE_READ_ONLY)
    AIRLOCK_RV_(CKR_ATTRIBUTE_SENSITIVE)
    AIRLOCK_RV_(CKR_ATTRIBUTE_TYPE_INVALID)
    AIRLOCK_RV_(CKR_ATTRIBUTE_VALUE_INVALID)
    AIRLOCK_RV_(CKR_DATA_INVALID)
    AIRLOCK_RV_(CKR_DATA_LEN_RANGE)
    AIRLOCK_RV_(CKR_DEVICE_ERROR)
    AIRLOCK_RV_(CKR_DEVICE_MEMORY)
    AIRLOCK_RV_(CKR_DEVICE_REMOVED)
    AIRLOCK_RV_(CKR_ENCRYPTED_DATA_INVALID)
    AIRLOCK_RV_(CKR_ENCRYPTED_DATA_LEN_RANGE)
    AIRLOCK_RV_(CKR_FUNCTION_NOT_SUPPORTED)
    AIRLOCK_RV_(CKR_KEY_HANDLE_INVALID)
    AIRLOCK_RV_(CKR_KEY_SIZE_RANGE)
    AIRLOCK_RV_(CKR_KEY_TYPE_INCONSISTENT)
    AIRLOCK_RV_(CKR_KEY_FUNCTION_NOT_PERMITTED)
    AIRLOCK_RV_(CKR_MECHANISM_INVALID)
    AIRLOCK_RV_(CKR_MECHANISM_PARAM_INVALID)
    AIRLOCK_RV_(CKR_OBJECT_HANDLE_INVALID)
    AIRLOCK_RV_(CKR_OPERATION_ACTIVE)
    AIRLOCK_RV_(CKR_OPERATION_NOT_INITIALIZED)
    AIRLOCK_RV_(CKR_PIN_INCORRECT)
    AIRLOCK_RV_(CKR_PIN_INVALID)
    AIRLOCK_RV_(CKR_PIN_LEN_RANGE)
    AIRLOCK_RV_(CKR_PIN_EXPIRED)
    AIRLOCK_RV_(CKR_PIN_LOCKED)
    AIRLOCK_RV_(CKR_SESSION_CLOSED)
    AIRLOCK_RV_(CKR_SESSION_HANDLE_INVALID)
    AIRLOCK_RV_(CKR_SESSION_READ_ONLY)
    AIRLOCK_RV_(CKR_SIGNATURE_INVALID)
    AIRLOCK_RV_(CKR_TEMPLATE_INCOMPLETE)
    AIRLOCK_RV_(CKR_TEMPLATE_INCONSISTENT)
    AIRLOCK_RV_(CKR_TOKEN_NOT_PRESENT)
    AIRLOCK_RV_(CKR_TOKEN_NOT_RECOGNIZED)
    AIRLOCK_RV_(CKR_TOKEN_WRITE_PROTECTED)
    AIRLOCK_RV_(CKR_USER_ALREADY_LOGGED_IN)
    AIRLOCK_RV_(CKR_USER_NOT_LOGGED_IN)
    AIRLOCK_RV_(CKR_USER_PIN_NOT_INITIALIZED)
    AIRLOCK_RV_(CKR_USER_TYPE_INVALID)
    AIRLOCK_RV_(CKR_BUFFER_TOO_SMALL)
    AIRLOCK_RV_(CKR_CRYPTOKI_NOT_INITIALIZED)
    AIRLOCK_RV_(CKR_CRYPTOKI_ALREADY_INITIALIZED)
    AIRLOCK_RV_(CKR_CURVE_NOT_SUPPORTED)
#undef AIRLOCK_RV_
    default:
      return "CKR_(other)";
  }
}

Error Pkcs11Error(CK_RV rv, std::string_view what) {
  ErrorCode code = ErrorCode::kCrypto;
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_LOCKED:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
      code = ErrorCode::kWrongKey;
      break;
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_CURVE_NOT_SUPPORTED:
    case CKR_KEY_SIZE_RANGE:
    case CKR_FUNCTION_NOT_SUPPORTED:
      code = ErrorCode::kUnsupported;
      break;
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
      code = ErrorCode::kDecryptFailed;
      break;
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_KEY_TYPE_INCONSISTENT:
      code = ErrorCode::kInvalidArgument;
      break;
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SLOT_ID_INVALID:
      code = ErrorCode::kNotFound;
      break;
    default:
      break;
  }
  std::string message(what);
  message += ": ";
  message += Pkcs11RvName(rv);
  if (Pkcs11RvName(rv) == "CKR_(other)") {
    char hex[24];
    std::snprintf(hex, sizeof(hex), " 0x%lx", static_cast<unsigned long>(rv));
    message += hex;
  }
  return Error(code, std::move(message));
}

// ---- options ----

std::string ResolvePkcs11Module(std::string_view explicit_path) {
  if (!explicit_path.empty()) return std::string(explicit_path);
  if (const char* env = std::getenv(std::string(kPkcs11ModuleEnv).c_str()); env && *env) return env;
  return std::string(kDefaultPkcs11Module);
}

Result<std::string> ResolvePkcs11Pin(const Pkcs11Options& options) {
  if (options.pin) return *options.pin;
  if (!options.pin_source.empty()) {
    std::string_view source = options.pin_source;
    if (StartsWith(source, "file:")) source.remove_prefix(5);
    if (source.empty() || source.find(':') != std::string_view::npos) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "pin-source must be file:PATH, not '" + options.pin_source + "'");
    }
    std::error_code ec;
    std::filesystem::path path(source);
    if (!std::filesystem::exists(path, ec)) {
      return MakeError(ErrorCode::kNotFound, "PIN file " + path.string() + " does not exist");
    }
    if (std::filesystem::file_size(path, ec) > kMaxPinSize || ec) {
      return MakeError(ec ? ErrorCode::kIo : ErrorCode::kLimitExceeded,
                       "PIN file " + path.string() + " is unreadable or too large");
    }
    std::ifstream in(path, std::ios::binary);
    std::string pin((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return MakeError(ErrorCode::kIo, "cannot read " + path.string());
    while (!pin.empty() && (pin.back() == '\n' || pin.back() == '\r')) pin.pop_back();
    return pin;
  }
  if (const char* env = std::getenv(std::string(kPkcs11PinEnv).c_str()); env != nullptr) {
    return std::string(env);
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "no PKCS#11 PIN: set AIRLOCK_PKCS11_PIN or give pin-source=file:PATH");
}

// ---- module ----

Result<std::shared_ptr<Pkcs11Module>> Pkcs11Module::Load(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_modules_mu);
  if (auto existing = Modules()[path].lock()) return existing;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return MakeError(ErrorCode::kNotFound, "PKCS#11 module " + path + " does not exist");
  }
  // RTLD_NODELETE: modules (SoftHSM2 among them) register OpenSSL and atexit state that must
  // outlive dlclose, so the image stays mapped; C_Finalize still releases the module's own state.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* why = dlerror();
    return MakeError(ErrorCode::kUnsupported,
                     "cannot load PKCS#11 module " + path + ": " + (why ? why : "dlopen failed"));
  }
  struct DlCloser {
    void* h;
    ~DlCloser() {
      if (h) dlclose(h);
    }
  } closer{handle};
  auto get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle, "C_GetFunctionList"));
  if (get_list == nullptr) {
    return MakeError(ErrorCode::kUnsupported,
                     path + " is not a PKCS#11 module (no C_GetFunctionList)");
  }
  CK_FUNCTION_LIST* functions = nullptr;
  AIRLOCK_TRY(Check(get_list(&functions), "C_GetFunctionList"));
  if (functions == nullptr || functions->version.major != 2) {
    return MakeError(ErrorCode::kUnsupported, path + ": unsupported Cryptoki version");
  }
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  CK_RV rv = functions->C_Initialize(&args);
  bool finalize = true;
  if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    finalize = false;  // someone else in this process owns the module's lifetime
  } else if (rv != CKR_OK) {
    return tl::unexpected(Pkcs11Error(rv, "C_Initialize " + path));
  }
  closer.h = nullptr;
  std::shared_ptr<Pkcs11Module> module(new Pkcs11Module(path, handle, functions, finalize));
  Modules()[path] = module;
  return module;
}

Pkcs11Module::~Pkcs11Module() {
  if (finalize_) functions_->C_Finalize(nullptr);
  dlclose(handle_);
}

Result<CK_SLOT_ID> Pkcs11Module::FindTokenSlot(std::string_view label) const {
  CK_ULONG count = 0;
  AIRLOCK_TRY(Check(functions_->C_GetSlotList(CK_TRUE, nullptr, &count), "C_GetSlotList"));
  std::vector<CK_SLOT_ID> slots(count);
  AIRLOCK_TRY(Check(functions_->C_GetSlotList(CK_TRUE, slots.data(), &count), "C_GetSlotList"));
  slots.resize(count);
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info;
    if (functions_->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
    if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
    if (TrimLabel(info.label, sizeof(info.label)) == label) return slot;
  }
  return MakeError(ErrorCode::kNotFound,
                   "no token labelled '" + std::string(label) + "' in " + path_);
}

// PKCS#11 login state belongs to the application, not the session: once one Pkcs11Token is logged
// in, C_Login on another session of the slot returns CKR_USER_ALREADY_LOGGED_IN without looking at
// the PIN. So the module remembers a digest of the PIN that logged the slot in (until its last
// session closes) and checks later logins against it; otherwise a wrong PIN would open a second
// handle.
Result<void> Pkcs11Module::Login(const Pkcs11Session& session, CK_SLOT_ID slot, ByteSpan pin) {
  std::lock_guard<std::mutex> lock(mu_);
  Bytes digest = crypto::Sha256(pin);
  SlotState& state = slots_[slot];
  if (!state.pin_digest.empty()) {
    if (!ConstantTimeEqual(state.pin_digest, digest)) {
      return tl::unexpected(Pkcs11Error(CKR_PIN_INCORRECT, "C_Login"));
    }
    return {};
  }
  CK_RV rv = functions_->C_Login(session.get(), CKU_USER, const_cast<CK_UTF8CHAR*>(pin.data()),
                                 pin.size());
  if (rv == CKR_USER_ALREADY_LOGGED_IN) {
    // Logged in by code outside Airlock in this process (the module was already initialised); the
    // PIN cannot be checked here.
    return {};
  }
  AIRLOCK_TRY(Check(rv, "C_Login"));
  state.pin_digest = std::move(digest);
  return {};
}

void Pkcs11Module::SessionOpened(CK_SLOT_ID slot) {
  std::lock_guard<std::mutex> lock(mu_);
  ++slots_[slot].sessions;
}

void Pkcs11Module::SessionClosed(CK_SLOT_ID slot) {
  std::lock_guard<std::mutex> lock(mu_);
  SlotState& state = slots_[slot];
  if (--state.sessions <= 0) slots_.erase(slot);  // the token logged us out with its last session
}

bool Pkcs11Module::HasMechanism(CK_SLOT_ID slot, CK_MECHANISM_TYPE mechanism) const {
  CK_MECHANISM_INFO info;
  return functions_->C_GetMechanismInfo(slot, mechanism, &info) == CKR_OK;
}

// ---- session ----

Result<Pkcs11Session> Pkcs11Session::Open(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot) {
  CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
  AIRLOCK_TRY(Check(module->functions()->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                                       nullptr, nullptr, &handle),
                    "C_OpenSession"));
  module->SessionOpened(slot);
  return Pkcs11Session(std::move(module), slot, handle);
}

void Pkcs11Session::Close() {
  if (module_ && handle_ != CK_INVALID_HANDLE) {
    module_->functions()->C_CloseSession(handle_);
    module_->SessionClosed(slot_);
  }
  handle_ = CK_INVALID_HANDLE;
}

Pkcs11Session::Pkcs11Session(Pkcs11Session&& other) noexcept
    : module_(std::move(other.module_)), slot_(other.slot_), handle_(other.handle_) {
  other.handle_ = CK_INVALID_HANDLE;
}

Pkcs11Session& Pkcs11Session::operator=(Pkcs11Session&& other) noexcept {
  if (this != &other) {
    Close();
    module_ = std::move(other.module_);
    slot_ = other.slot_;
    handle_ = other.handle_;
    other.handle_ = CK_INVALID_HANDLE;
  }
  return *this;
}

Pkcs11Session::~Pkcs11Session() {
  // Closing the application's last session on a token also ends its login (PKCS#11 5.6), which is
  // how login is released: an explicit C_Logout would log out other Pkcs11Tokens of this process
  // too.
  Close();
}

// ---- token ----

Result<std::unique_ptr<Pkcs11Token>> Pkcs11Token::Open(const Pkcs11Options& options) {
  if (options.token_label.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "no PKCS#11 token label");
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::string pin, ResolvePkcs11Pin(options));
  SecretBytes pin_bytes(ToBytes(pin));
  OPENSSL_cleanse(pin.data(), pin.size());
  AIRLOCK_ASSIGN_OR_RETURN(auto module,
                           Pkcs11Module::Load(ResolvePkcs11Module(options.module_path)));
  AIRLOCK_ASSIGN_OR_RETURN(CK_SLOT_ID slot, module->FindTokenSlot(options.token_label));
  AIRLOCK_ASSIGN_OR_RETURN(Pkcs11Session session, Pkcs11Session::Open(module, slot));
  AIRLOCK_TRY_CTX(module->Login(session, slot, pin_bytes.get()),
                  "login to PKCS#11 token '" + options.token_label + "' failed");
  return std::unique_ptr<Pkcs11Token>(
      new Pkcs11Token(std::move(module), slot, std::move(session), options.token_label));
}

Pkcs11Token::~Pkcs11Token() = default;

bool Pkcs11Token::Supports(KeyType type, Pkcs11KeyUse use) const {
  switch (type) {
    case KeyType::kEd25519:
      return use == Pkcs11KeyUse::kSign &&
             module_->HasMechanism(slot_, CKM_EC_EDWARDS_KEY_PAIR_GEN) &&
             module_->HasMechanism(slot_, CKM_EDDSA);
    case KeyType::kEcdsaP256:
      return use == Pkcs11KeyUse::kSign && module_->HasMechanism(slot_, CKM_EC_KEY_PAIR_GEN) &&
             module_->HasMechanism(slot_, CKM_ECDSA);
    case KeyType::kRsa:
      return module_->HasMechanism(slot_, CKM_RSA_PKCS_KEY_PAIR_GEN) &&
             module_->HasMechanism(
                 slot_, use == Pkcs11KeyUse::kSign ? CKM_SHA256_RSA_PKCS_PSS : CKM_RSA_PKCS_OAEP);
    case KeyType::kX25519:
      return use == Pkcs11KeyUse::kUnwrap &&
             module_->HasMechanism(slot_, CKM_EC_MONTGOMERY_KEY_PAIR_GEN) &&
             module_->HasMechanism(slot_, CKM_ECDH1_DERIVE);
  }
  return false;
}

Result<crypto::PublicKey> Pkcs11Token::GenerateKeyPair(std::string_view name, KeyType type,
                                                       Pkcs11KeyUse use, int rsa_bits) {
  if (type == KeyType::kRsa && (rsa_bits < 2048 || rsa_bits > 16384)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "RSA key size " + std::to_string(rsa_bits) + " is outside 2048..16384");
  }
  AIRLOCK_TRY(ValidateName(name));
  if ((use == Pkcs11KeyUse::kUnwrap &&
       (type == KeyType::kEd25519 || type == KeyType::kEcdsaP256)) ||
      (use == Pkcs11KeyUse::kSign && type == KeyType::kX25519)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(crypto::KeyTypeName(type)) + " keys cannot " +
                         (use == Pkcs11KeyUse::kSign ? "sign" : "unwrap"));
  }
  if (!Supports(type, use)) {
    return MakeError(ErrorCode::kUnsupported,
                     "token '" + label_ + "' cannot make " +
                         std::string(crypto::KeyTypeName(type)) +
                         (use == Pkcs11KeyUse::kSign ? " signing" : " unwrap") + " keys");
  }
  std::lock_guard<std::mutex> lock(mu_);
  const Pkcs11Session& s = session_;
  AIRLOCK_TRY(CheckNameFree(s, name, label_));

  CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY;
  CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY;
  CK_ULONG modulus_bits = static_cast<CK_ULONG>(rsa_bits);
  static const uint8_t kF4[] = {0x01, 0x00, 0x01};
  CK_ATTRIBUTE_TYPE use_attr = CKA_SIGN;
  CK_ATTRIBUTE_TYPE verify_attr = CKA_VERIFY;
  if (use == Pkcs11KeyUse::kUnwrap) {
    use_attr = type == KeyType::kX25519 ? CKA_DERIVE : CKA_DECRYPT;
    verify_attr = type == KeyType::kX25519 ? CKA_DERIVE : CKA_ENCRYPT;
  }
  CK_MECHANISM mech{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  CK_KEY_TYPE key_type = CKK_EC;
  std::vector<Bytes> param_choices;
  switch (type) {
    case KeyType::kEd25519:
      mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
      key_type = CKK_EC_EDWARDS;
      param_choices = {kEd25519Oid, kEd25519Name};
      break;
    case KeyType::kEcdsaP256:
      param_choices = {kP256Oid};
      break;
    case KeyType::kX25519:
      mech.mechanism = CKM_EC_MONTGOMERY_KEY_PAIR_GEN;
      key_type = CKK_EC_MONTGOMERY;
      param_choices = {kX25519Oid, kX25519Name};
      break;
    case KeyType::kRsa:
      mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
      key_type = CKK_RSA;
      param_choices = {Bytes()};
      break;
  }

  CK_RV rv = CKR_GENERAL_ERROR;
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
  // Tokens differ in which curve spelling they take (PKCS#11 3.0 allows the OID or a printable
  // string), so try each in turn.
  for (const Bytes& params : param_choices) {
    std::vector<CK_ATTRIBUTE> pub_tmpl = {
        Attr(CKA_CLASS, &pub_class), Attr(CKA_KEY_TYPE, &key_type), Attr(CKA_TOKEN, &kTrue),
        Attr(CKA_PRIVATE, &kFalse),  AttrString(CKA_LABEL, name),   AttrString(CKA_ID, name),
    };
    if (verify_attr != CKA_DERIVE) pub_tmpl.push_back(Attr(verify_attr, &kTrue));
    std::vector<CK_ATTRIBUTE> priv_tmpl = {
        Attr(CKA_CLASS, &priv_class), Attr(CKA_KEY_TYPE, &key_type), Attr(CKA_TOKEN, &kTrue),
        Attr(CKA_PRIVATE, &kTrue),    Attr(CKA_SENSITIVE, &kTrue),   Attr(CKA_EXTRACTABLE, &kFalse),
        AttrString(CKA_LABEL, name),  AttrString(CKA_ID, name),
    };
    // Every capability spelled out: tokens default some to true (SoftHSM2: CKA_DECRYPT on RSA
    // keys), and a key has exactly one use.
    for (CK_ATTRIBUTE_TYPE t : {CKA_SIGN, CKA_SIGN_RECOVER, CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE}) {
      priv_tmpl.push_back(Attr(t, t == use_attr ? &kTrue : &kFalse));
    }
    for (CK_ATTRIBUTE_TYPE t : {CKA_VERIFY, CKA_VERIFY_RECOVER, CKA_ENCRYPT, CKA_WRAP}) {
      if (t != verify_attr) pub_tmpl.push_back(Attr(t, &kFalse));
    }
    if (type == KeyType::kRsa) {
      pub_tmpl.push_back(Attr(CKA_MODULUS_BITS, &modulus_bits));
      pub_tmpl.push_back(CK_ATTRIBUTE{CKA_PUBLIC_EXPONENT, const_cast<uint8_t*>(kF4), sizeof(kF4)});
    } else {
      pub_tmpl.push_back(AttrBytes(CKA_EC_PARAMS, params));
    }
    rv = s.f()->C_GenerateKeyPair(s.get(), &mech, pub_tmpl.data(), pub_tmpl.size(),
                                  priv_tmpl.data(), priv_tmpl.size(), &pub, &priv);
    if (rv != CKR_ATTRIBUTE_VALUE_INVALID && rv != CKR_CURVE_NOT_SUPPORTED &&
        rv != CKR_DOMAIN_PARAMS_INVALID) {
      break;
    }
  }
  AIRLOCK_TRY(Check(rv, "C_GenerateKeyPair (" + std::string(crypto::KeyTypeName(type)) + ")"));
  auto exported = ExportPublic(s, pub, type);
  if (!exported) {
    // Do not leave a key behind that Airlock cannot use.
    s.f()->C_DestroyObject(s.get(), priv);
    s.f()->C_DestroyObject(s.get(), pub);
    return tl::unexpected(exported.error().WithContext("generated key"));
  }
  return *exported;
}

namespace {

// One RSA component of `key` as a big-endian unsigned integer (CK_BIG_INTEGER), wiped on
// destruction.
Result<SecretBytes> RsaComponent(const crypto::PrivateKey& key, const char* param) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key.get(), param, &raw) != 1 || raw == nullptr) {
    return MakeError(ErrorCode::kUnsupported,
                     std::string("the RSA key has no ") + param +
                         " (only two-prime keys with CRT parameters can be imported)");
  }
  std::unique_ptr<BIGNUM, decltype(&BN_clear_free)> bn(raw, &BN_clear_free);
  SecretBytes out{Bytes(static_cast<size_t>(BN_num_bytes(bn.get())))};
  BN_bn2bin(bn.get(), out.mutable_bytes().data());
  return out;
}

}  // namespace

Result<crypto::PublicKey> Pkcs11Token::ImportRsaSigningKey(std::string_view name,
                                                           const crypto::PrivateKey& key) {
  AIRLOCK_TRY(ValidateName(name));
  if (key.type() != KeyType::kRsa || key.bits() < 2048 || key.bits() > 16384) {
    return MakeError(ErrorCode::kInvalidArgument, "only RSA keys of 2048..16384 bits are imported");
  }
  std::vector<SecretBytes> parts;
  for (const char* param :
       {OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E, OSSL_PKEY_PARAM_RSA_D,
        OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2, OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1}) {
    AIRLOCK_ASSIGN_OR_RETURN(SecretBytes part, RsaComponent(key, param));
    parts.push_back(std::move(part));
  }
  std::lock_guard<std::mutex> lock(mu_);
  const Pkcs11Session& s = session_;
  AIRLOCK_TRY(CheckNameFree(s, name, label_));
  CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY;
  CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY;
  CK_KEY_TYPE key_type = CKK_RSA;
  // The same attributes GenerateKeyPair gives an RSA signing key, except that an imported key is
  // (truthfully) neither CKA_ALWAYS_SENSITIVE nor CKA_NEVER_EXTRACTABLE: the token sets those.
  std::vector<CK_ATTRIBUTE> priv_tmpl = {
      Attr(CKA_CLASS, &priv_class),
      Attr(CKA_KEY_TYPE, &key_type),
      Attr(CKA_TOKEN, &kTrue),
      Attr(CKA_PRIVATE, &kTrue),
      Attr(CKA_SENSITIVE, &kTrue),
      Attr(CKA_EXTRACTABLE, &kFalse),
      AttrString(CKA_LABEL, name),
      AttrString(CKA_ID, name),
      AttrBytes(CKA_MODULUS, parts[0].get()),
      AttrBytes(CKA_PUBLIC_EXPONENT, parts[1].get()),
      AttrBytes(CKA_PRIVATE_EXPONENT, parts[2].get()),
      AttrBytes(CKA_PRIME_1, parts[3].get()),
      AttrBytes(CKA_PRIME_2, parts[4].get()),
      AttrBytes(CKA_EXPONENT_1, parts[5].get()),
      AttrBytes(CKA_EXPONENT_2, parts[6].get()),
      AttrBytes(CKA_COEFFICIENT, parts[7].get()),
  };
  for (CK_ATTRIBUTE_TYPE t : {CKA_SIGN, CKA_SIGN_RECOVER, CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE}) {
    priv_tmpl.push_back(Attr(t, t == CKA_SIGN ? &kTrue : &kFalse));
  }
  std::vector<CK_ATTRIBUTE> pub_tmpl = {
      Attr(CKA_CLASS, &pub_class),
      Attr(CKA_KEY_TYPE, &key_type),
      Attr(CKA_TOKEN, &kTrue),
      Attr(CKA_PRIVATE, &kFalse),
      AttrString(CKA_LABEL, name),
      AttrString(CKA_ID, name),
      AttrBytes(CKA_MODULUS, parts[0].get()),
      AttrBytes(CKA_PUBLIC_EXPONENT, parts[1].get()),
  };
  for (CK_ATTRIBUTE_TYPE t : {CKA_VERIFY, CKA_VERIFY_RECOVER, CKA_ENCRYPT, CKA_WRAP}) {
    pub_tmpl.push_back(Attr(t, t == CKA_VERIFY ? &kTrue : &kFalse));
  }
  CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
  AIRLOCK_TRY(Check(s.f()->C_CreateObject(s.get(), priv_tmpl.data(), priv_tmpl.size(), &priv),
                    "C_CreateObject (RSA private key)"));
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
  CK_RV rv = s.f()->C_CreateObject(s.get(), pub_tmpl.data(), pub_tmpl.size(), &pub);
  if (rv != CKR_OK) {
    s.f()->C_DestroyObject(s.get(), priv);
    return tl::unexpected(Pkcs11Error(rv, "C_CreateObject (RSA public key)"));
  }
  auto exported = ExportPublic(s, pub, KeyType::kRsa);
  if (!exported || !exported->Equals(key.Public())) {
    // Do not leave a key behind whose public half is not the one imported.
    s.f()->C_DestroyObject(s.get(), priv);
    s.f()->C_DestroyObject(s.get(), pub);
    if (!exported) return tl::unexpected(exported.error().WithContext("imported key"));
    return MakeError(ErrorCode::kCrypto, "the token's copy of the imported key differs from it");
  }
  return *exported;
}

Result<crypto::PublicKey> Pkcs11Token::PublicKey(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  AIRLOCK_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE pub, FindKey(session_, CKO_PUBLIC_KEY, name));
  AIRLOCK_ASSIGN_OR_RETURN(KeyType type, KeyTypeOf(session_, pub));
  return ExportPublic(session_, pub, type);
}

Result<Pkcs11KeyInfo> Pkcs11Token::Describe(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  AIRLOCK_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE priv, FindKey(session_, CKO_PRIVATE_KEY, name));
  AIRLOCK_ASSIGN_OR_RETURN(KeyType type, KeyTypeOf(session_, priv));
  AIRLOCK_ASSIGN_OR_RETURN(bool can_sign, GetBool(session_, priv, CKA_SIGN));
  return Pkcs11KeyInfo{std::string(name), type,
                       can_sign ? Pkcs11KeyUse::kSign : Pkcs11KeyUse::kUnwrap};
}

Result<std::vector<Pkcs11KeyInfo>> Pkcs11Token::ListKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  AIRLOCK_ASSIGN_OR_RETURN(auto handles, FindObjects(session_, {Attr(CKA_CLASS, &cls)}));
  std::vector<Pkcs11KeyInfo> out;
  for (CK_OBJECT_HANDLE h : handles) {
    auto type = KeyTypeOf(session_, h);
    if (!type) continue;  // not a kind of key Airlock uses
    AIRLOCK_ASSIGN_OR_RETURN(Bytes label, GetAttribute(session_, h, CKA_LABEL));
    if (label.empty()) continue;
    AIRLOCK_ASSIGN_OR_RETURN(bool can_sign, GetBool(session_, h, CKA_SIGN));
    out.push_back(Pkcs11KeyInfo{std::string(AsString(label)), *type,
                                can_sign ? Pkcs11KeyUse::kSign : Pkcs11KeyUse::kUnwrap});
  }
  std::sort(out.begin(), out.end(),
            [](const Pkcs11KeyInfo& a, const Pkcs11KeyInfo& b) { return a.name < b.name; });
  return out;
}

Result<Bytes> Pkcs11Token::Sign(std::string_view name, ByteSpan message) {
  std::lock_guard<std::mutex> lock(mu_);
  const Pkcs11Session& s = session_;
  AIRLOCK_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE priv, FindKey(s, CKO_PRIVATE_KEY, name));
  AIRLOCK_ASSIGN_OR_RETURN(KeyType type, KeyTypeOf(s, priv));
  AIRLOCK_ASSIGN_OR_RETURN(bool can_sign, GetBool(s, priv, CKA_SIGN));
  if (!can_sign || type == KeyType::kX25519) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key '" + std::string(name) + "' was made for unwrapping, not signing");
  }
  switch (type) {
    case KeyType::kEd25519: {
      CK_MECHANISM mech{CKM_EDDSA, nullptr, 0};  // no parameters: pure Ed25519 (RFC 8032)
      AIRLOCK_ASSIGN_OR_RETURN(Bytes sig, SignOnToken(s, priv, &mech, message));
      if (sig.size() != 64)
        return MakeError(ErrorCode::kCrypto, "token ed25519 signature not 64 bytes");
      return sig;
    }
    case KeyType::kEcdsaP256: {
      // CKM_ECDSA signs a digest we compute; CKM_ECDSA_SHA256 is rarer on tokens.
      Bytes digest = crypto::Sha256(message);
      CK_MECHANISM mech{CKM_ECDSA, nullptr, 0};
      AIRLOCK_ASSIGN_OR_RETURN(Bytes raw, SignOnToken(s, priv, &mech, digest));
      return EcdsaRawToDer(raw);
    }
    case KeyType::kRsa: {
      CK_RSA_PKCS_PSS_PARAMS pss{CKM_SHA256, CKG_MGF1_SHA256, 32};
      CK_MECHANISM mech{CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof(pss)};
      return SignOnToken(s, priv, &mech, message);
    }
    case KeyType::kX25519:
      break;
  }
  return MakeError(ErrorCode::kInternal, "unreachable");
}

Result<Bytes> Pkcs11Token::SignRawPkcs1(std::string_view name, ByteSpan data) {
  std::lock_guard<std::mutex> lock(mu_);
  const Pkcs11Session& s = session_;
  AIRLOCK_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE priv, FindKey(s, CKO_PRIVATE_KEY, name));
  AIRLOCK_ASSIGN_OR_RETURN(KeyType type, KeyTypeOf(s, priv));
  AIRLOCK_ASSIGN_OR_RETURN(bool can_sign, GetBool(s, priv, CKA_SIGN));
  if (type != KeyType::kRsa || !can_sign) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key '" + std::string(name) + "' is not an RSA signing key");
  }
  // The token enforces the k - 11 bound too (CKR_DATA_LEN_RANGE), but checking here gives the same
  // error code as the file vault.
  AIRLOCK_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE pub, FindKey(s, CKO_PUBLIC_KEY, name));
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey public_key, ExportPublic(s, pub, type));
  const size_t k = static_cast<size_t>(public_key.bits() + 7) / 8;
  if (data.size() + 11 > k) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::to_string(data.size()) + " bytes do not fit a PKCS#1 type-1 block of " +
                         std::to_string(k) + " bytes");
  }
  // CKM_RSA_PKCS with C_Sign pads the input as a type-1 block (PKCS#11 2.40 2.1.6) and applies the
  // private key: exactly the "private encrypt" of RFC 8017's RSASSA-PKCS1-v1_5 without DigestInfo.
  CK_MECHANISM mech{CKM_RSA_PKCS, nullptr, 0};
  AIRLOCK_ASSIGN_OR_RETURN(Bytes block, SignOnToken(s, priv, &mech, data));
  if (block.size() != k) return MakeError(ErrorCode::kCrypto, "token RSA block has the wrong size");
  return block;
}

Result<Bytes> Pkcs11Token::Unwrap(std::string_view name, ByteSpan wrapped, ByteSpan aad) {
  if (wrapped.size() > kMaxWrappedSize) {
    return MakeError(ErrorCode::kLimitExceeded, "wrapped key too large");
  }
  std::lock_guard<std::mutex> lock(mu_);
  const Pkcs11Session& s = session_;
  AIRLOCK_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE priv, FindKey(s, CKO_PRIVATE_KEY, name));
  AIRLOCK_ASSIGN_OR_RETURN(KeyType type, KeyTypeOf(s, priv));
  if (type == KeyType::kRsa) {
    AIRLOCK_ASSIGN_OR_RETURN(bool can_decrypt, GetBool(s, priv, CKA_DECRYPT));
    if (!can_decrypt) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "key '" + std::string(name) + "' was made for signing, not unwrapping");
    }
    CK_RSA_PKCS_OAEP_PARAMS oaep{CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED,
                                 aad.empty() ? nullptr : const_cast<uint8_t*>(aad.data()),
                                 aad.size()};
    CK_MECHANISM mech{CKM_RSA_PKCS_OAEP, &oaep, sizeof(oaep)};
    CK_RV init = s.f()->C_DecryptInit(s.get(), &mech, priv);
    if (init == CKR_OK) {
      CK_BYTE_PTR in = const_cast<CK_BYTE_PTR>(wrapped.data());
      CK_ULONG len = 0;
      CK_RV rv = s.f()->C_Decrypt(s.get(), in, wrapped.size(), nullptr, &len);
      SecretBytes out{Bytes(rv == CKR_OK ? len : 0)};
      if (rv == CKR_OK)
        rv = s.f()->C_Decrypt(s.get(), in, wrapped.size(), out.mutable_bytes().data(), &len);
      if (rv != CKR_OK) {
        // Tokens report a bad OAEP block in several ways; to the caller they all mean "not for this
        // key and aad".
        return RsaUnwrapFailed();
      }
      out.mutable_bytes().resize(len);
      return out.get();
    }
    if (init != CKR_MECHANISM_INVALID && init != CKR_MECHANISM_PARAM_INVALID &&
        init != CKR_ARGUMENTS_BAD) {
      return tl::unexpected(Pkcs11Error(init, "C_DecryptInit (RSA-OAEP)"));
    }
    // The token cannot do OAEP with SHA-256 and a label (SoftHSM2 2.6 takes SHA-1 and no label
    // only): raw RSA on the token, OAEP decoding here. The private key still never leaves the
    // token.
    AIRLOCK_ASSIGN_OR_RETURN(Bytes n, GetAttribute(s, priv, CKA_MODULUS));
    if (wrapped.size() != n.size()) {
      return RsaUnwrapFailed();
    }
    // A ciphertext not below the modulus (tampered) is not an RSA block at all; tokens refuse it in
    // their own ways (SoftHSM2: CKR_GENERAL_ERROR), so refuse it here with the common answer. Both
    // values are public: the comparison leaks nothing.
    if (!std::lexicographical_compare(wrapped.begin(), wrapped.end(), n.begin(), n.end())) {
      return RsaUnwrapFailed();
    }
    CK_MECHANISM raw{CKM_RSA_X_509, nullptr, 0};
    auto block = DecryptOnToken(s, priv, &raw, wrapped);
    if (!block) {
      // A ciphertext that is not below the modulus (tampered) is refused by the token itself: the
      // same answer as a block that does not decode.
      if (block.error().code() == ErrorCode::kDecryptFailed) return RsaUnwrapFailed();
      return tl::unexpected(block.error().WithContext("raw RSA on the token"));
    }
    Bytes em = block->get();
    if (em.size() < n.size())
      em.insert(em.begin(), n.size() - em.size(), 0);  // tokens may strip zeros
    auto decoded = OaepDecodeSha256(em, aad);
    OPENSSL_cleanse(em.data(), em.size());
    return decoded;
  }
  if (type != KeyType::kX25519) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(crypto::KeyTypeName(type)) + " keys cannot unwrap");
  }
  // X25519: eph_pub (32) || nonce (12) || ciphertext || tag (16), see crypto/wrap.h. The token does
  // the X25519 with the private key; the per-message shared secret comes out as a session-only
  // secret (so HKDF and AES-GCM can run here, most tokens lacking CKM_HKDF_DERIVE) and is wiped
  // after use.
  if (wrapped.size() < kX25519Size + kGcmNonceSize + kGcmTagSize) {
    return MakeError(ErrorCode::kMalformed, "x25519 wrapped key too short");
  }
  ByteSpan eph = wrapped.subspan(0, kX25519Size);
  ByteSpan nonce = wrapped.subspan(kX25519Size, kGcmNonceSize);
  ByteSpan ct = wrapped.subspan(kX25519Size + kGcmNonceSize,
                                wrapped.size() - kX25519Size - kGcmNonceSize - kGcmTagSize);
  ByteSpan tag = wrapped.subspan(wrapped.size() - kGcmTagSize);
  CK_ECDH1_DERIVE_PARAMS ecdh{CKD_NULL, 0, nullptr, kX25519Size, const_cast<uint8_t*>(eph.data())};
  CK_MECHANISM mech{CKM_ECDH1_DERIVE, &ecdh, sizeof(ecdh)};
  CK_OBJECT_CLASS secret_class = CKO_SECRET_KEY;
  CK_KEY_TYPE secret_type = CKK_GENERIC_SECRET;
  CK_ULONG secret_len = kX25519Size;
  std::vector<CK_ATTRIBUTE> tmpl = {
      Attr(CKA_CLASS, &secret_class), Attr(CKA_KEY_TYPE, &secret_type),
      Attr(CKA_TOKEN, &kFalse),       Attr(CKA_SENSITIVE, &kFalse),
      Attr(CKA_EXTRACTABLE, &kTrue),  Attr(CKA_VALUE_LEN, &secret_len),
  };
  CK_OBJECT_HANDLE derived = CK_INVALID_HANDLE;
  AIRLOCK_TRY(Check(s.f()->C_DeriveKey(s.get(), &mech, priv, tmpl.data(), tmpl.size(), &derived),
                    "C_DeriveKey (X25519)"));
  struct Destroyer {
    const Pkcs11Session& s;
    CK_OBJECT_HANDLE h;
    ~Destroyer() { s.f()->C_DestroyObject(s.get(), h); }
  } destroyer{s, derived};
  AIRLOCK_ASSIGN_OR_RETURN(Bytes shared_raw, GetAttribute(s, derived, CKA_VALUE));
  SecretBytes shared(std::move(shared_raw));
  if (shared.get().size() != kX25519Size ||
      ConstantTimeEqual(shared.get(), Bytes(kX25519Size, 0))) {
    return MakeError(ErrorCode::kDecryptFailed, "X25519 shared secret rejected");
  }
  AIRLOCK_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE pub, FindKey(s, CKO_PUBLIC_KEY, name));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes recipient_pub, EcPoint(s, pub, kX25519Size));
  Bytes salt(eph.begin(), eph.end());
  salt.insert(salt.end(), recipient_pub.begin(), recipient_pub.end());
  AIRLOCK_ASSIGN_OR_RETURN(Bytes kek_raw,
                           crypto::HkdfSha256(shared.get(), salt, AsBytes(kX25519HkdfInfo), 32));
  SecretBytes kek(std::move(kek_raw));
  return GcmOpen(kek.get(), nonce, ct, tag, aad);
}

Result<void> Pkcs11Token::RenameKey(std::string_view name, std::string_view new_name) {
  AIRLOCK_TRY(ValidateName(new_name));
  std::lock_guard<std::mutex> lock(mu_);
  for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY}) {
    AIRLOCK_ASSIGN_OR_RETURN(auto taken, FindOne(session_, cls, new_name));
    if (taken) {
      return MakeError(ErrorCode::kAlreadyExists, "key '" + std::string(new_name) +
                                                      "' already exists on token '" + label_ + "'");
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE priv, FindKey(session_, CKO_PRIVATE_KEY, name));
  AIRLOCK_ASSIGN_OR_RETURN(auto pub, FindOne(session_, CKO_PUBLIC_KEY, name));
  std::vector<CK_ATTRIBUTE> tmpl = {AttrString(CKA_LABEL, new_name), AttrString(CKA_ID, new_name)};
  // Public first: if the private relabel then fails, the pair is still found under the old name by
  // its private key, and a retry completes it.
  if (pub) {
    AIRLOCK_TRY(
        Check(session_.f()->C_SetAttributeValue(session_.get(), *pub, tmpl.data(), tmpl.size()),
              "C_SetAttributeValue (rename public key)"));
  }
  return Check(session_.f()->C_SetAttributeValue(session_.get(), priv, tmpl.data(), tmpl.size()),
               "C_SetAttributeValue (rename private key)");
}

Result<void> Pkcs11Token::DestroyKey(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  AIRLOCK_TRY(ValidateName(name));
  bool any = false;
  for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY}) {
    AIRLOCK_ASSIGN_OR_RETURN(auto h, FindOne(session_, cls, name));
    if (!h) continue;
    any = true;
    AIRLOCK_TRY(Check(session_.f()->C_DestroyObject(session_.get(), *h), "C_DestroyObject"));
  }
  if (!any)
    return MakeError(ErrorCode::kNotFound, "key '" + std::string(name) + "' not on the token");
  return {};
}

Result<Pkcs11KeyProtection> Pkcs11Token::InspectPrivateKey(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  AIRLOCK_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE priv, FindKey(session_, CKO_PRIVATE_KEY, name));
  Pkcs11KeyProtection p;
  AIRLOCK_ASSIGN_OR_RETURN(p.sensitive, GetBool(session_, priv, CKA_SENSITIVE));
  AIRLOCK_ASSIGN_OR_RETURN(p.extractable, GetBool(session_, priv, CKA_EXTRACTABLE));
  AIRLOCK_ASSIGN_OR_RETURN(p.always_sensitive, GetBool(session_, priv, CKA_ALWAYS_SENSITIVE));
  AIRLOCK_ASSIGN_OR_RETURN(p.never_extractable, GetBool(session_, priv, CKA_NEVER_EXTRACTABLE));
  // The secret value differs by type (CKA_VALUE for EC kinds, CKA_PRIVATE_EXPONENT for RSA); any
  // readable secret part counts.
  p.value_readable = false;
  for (CK_ATTRIBUTE_TYPE t : {CKA_VALUE, CKA_PRIVATE_EXPONENT, CKA_PRIME_1}) {
    CK_ATTRIBUTE attr{t, nullptr, 0};
    CK_RV rv = session_.f()->C_GetAttributeValue(session_.get(), priv, &attr, 1);
    if (rv == CKR_OK && attr.ulValueLen != CK_UNAVAILABLE_INFORMATION && attr.ulValueLen > 0) {
      p.value_readable = true;
    }
  }
  return p;
}

Result<std::optional<Bytes>> Pkcs11Token::ReadData(std::string_view label) {
  std::lock_guard<std::mutex> lock(mu_);
  AIRLOCK_ASSIGN_OR_RETURN(auto h, FindOne(session_, CKO_DATA, label, kPkcs11MetadataApplication));
  if (!h) return std::optional<Bytes>();
  AIRLOCK_ASSIGN_OR_RETURN(Bytes value, GetAttribute(session_, *h, CKA_VALUE));
  return std::optional<Bytes>(std::move(value));
}

Result<void> Pkcs11Token::WriteData(std::string_view label, ByteSpan value) {
  AIRLOCK_TRY(ValidateName(label));
  if (value.size() > kMaxAttributeSize)
    return MakeError(ErrorCode::kLimitExceeded, "data too large");
  std::lock_guard<std::mutex> lock(mu_);
  AIRLOCK_ASSIGN_OR_RETURN(auto old,
                           FindOne(session_, CKO_DATA, label, kPkcs11MetadataApplication));
  if (old) {
    CK_ATTRIBUTE attr = AttrBytes(CKA_VALUE, value);
    CK_RV rv = session_.f()->C_SetAttributeValue(session_.get(), *old, &attr, 1);
    if (rv == CKR_OK) return {};
    // Tokens that refuse to modify CKA_VALUE: replace the object (create first, so a failure loses
    // nothing).
  }
  CK_OBJECT_CLASS cls = CKO_DATA;
  std::vector<CK_ATTRIBUTE> tmpl = {
      Attr(CKA_CLASS, &cls),        Attr(CKA_TOKEN, &kTrue),
      Attr(CKA_PRIVATE, &kTrue),    Attr(CKA_MODIFIABLE, &kTrue),
      AttrString(CKA_LABEL, label), AttrString(CKA_APPLICATION, kPkcs11MetadataApplication),
      AttrBytes(CKA_VALUE, value),
  };
  CK_OBJECT_HANDLE created = CK_INVALID_HANDLE;
  AIRLOCK_TRY(
      Check(session_.f()->C_CreateObject(session_.get(), tmpl.data(), tmpl.size(), &created),
            "C_CreateObject (metadata)"));
  if (old) {
    AIRLOCK_TRY(Check(session_.f()->C_DestroyObject(session_.get(), *old), "C_DestroyObject"));
  }
  return {};
}

Result<void> Pkcs11Token::DeleteData(std::string_view label) {
  std::lock_guard<std::mutex> lock(mu_);
  AIRLOCK_ASSIGN_OR_RETURN(auto h, FindOne(session_, CKO_DATA, label, kPkcs11MetadataApplication));
  if (!h) return MakeError(ErrorCode::kNotFound, "no metadata for '" + std::string(label) + "'");
  return Check(session_.f()->C_DestroyObject(session_.get(), *h), "C_DestroyObject");
}

Result<std::vector<std::string>> Pkcs11Token::ListData() {
  std::lock_guard<std::mutex> lock(mu_);
  CK_OBJECT_CLASS cls = CKO_DATA;
  AIRLOCK_ASSIGN_OR_RETURN(
      auto handles,
      FindObjects(session_, {Attr(CKA_CLASS, &cls),
                             AttrString(CKA_APPLICATION, kPkcs11MetadataApplication)}));
  std::vector<std::string> out;
  for (CK_OBJECT_HANDLE h : handles) {
    AIRLOCK_ASSIGN_OR_RETURN(Bytes label, GetAttribute(session_, h, CKA_LABEL));
    out.emplace_back(AsString(label));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace airlock::keys
