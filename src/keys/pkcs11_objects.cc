#include "keys/pkcs11_objects.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "crypto/ossl.h"

// PKCS#11 3.0 names p11-kit 0.24's header lacks.
#ifndef CKK_EC_MONTGOMERY
#define CKK_EC_MONTGOMERY (0x41UL)
#endif

namespace airlock::keys::pkcs11_internal {

namespace {

Bytes PrintableString(std::string_view s) {
  Bytes out = {0x13, static_cast<uint8_t>(s.size())};
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};

struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};

struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};

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

}  // namespace

const Bytes kP256Oid = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
const Bytes kEd25519Oid = {0x06, 0x03, 0x2b, 0x65, 0x70};
const Bytes kX25519Oid = {0x06, 0x03, 0x2b, 0x65, 0x6e};
const Bytes kEd25519Name = PrintableString("edwards25519");
const Bytes kX25519Name = PrintableString("curve25519");

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
                                                std::string_view application) {
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

Result<void> CheckNameFree(const Pkcs11Session& s, std::string_view name, std::string_view token) {
  for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY}) {
    AIRLOCK_ASSIGN_OR_RETURN(auto existing, FindOne(s, cls, name));
    if (existing) {
      return MakeError(
          ErrorCode::kAlreadyExists,
          "key '" + std::string(name) + "' already exists on token '" + std::string(token) + "'");
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

Result<Bytes> EcPoint(const Pkcs11Session& s, CK_OBJECT_HANDLE pub, size_t raw_size) {
  AIRLOCK_ASSIGN_OR_RETURN(Bytes point, GetAttribute(s, pub, CKA_EC_POINT));
  if (point.size() == raw_size) return point;
  if (point.size() == raw_size + 2 && point[0] == 0x04 && point[1] == raw_size) {
    return Bytes(point.begin() + 2, point.end());
  }
  return MakeError(ErrorCode::kMalformed, "CKA_EC_POINT has an unexpected encoding");
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

tl::unexpected<Error> RsaUnwrapFailed() {
  return MakeError(ErrorCode::kDecryptFailed, "wrapped key does not open with this key and aad");
}

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

}  // namespace airlock::keys::pkcs11_internal
