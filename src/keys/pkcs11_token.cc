#include "keys/pkcs11.h"

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
#include "keys/pkcs11_objects.h"

// PKCS#11 3.0 names p11-kit 0.24's header lacks.
#ifndef CKK_EC_MONTGOMERY
#define CKK_EC_MONTGOMERY (0x41UL)
#endif
#ifndef CKM_EC_MONTGOMERY_KEY_PAIR_GEN
#define CKM_EC_MONTGOMERY_KEY_PAIR_GEN (0x1056UL)
#endif

namespace airlock::keys {

using namespace pkcs11_internal;  // NOLINT(google-build-using-namespace): the backend's own helpers

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

Result<std::optional<Bytes>> Pkcs11Token::ReadData(std::string_view label,
                                                   std::string_view application) {
  std::lock_guard<std::mutex> lock(mu_);
  AIRLOCK_ASSIGN_OR_RETURN(auto h, FindOne(session_, CKO_DATA, label, application));
  if (!h) return std::optional<Bytes>();
  AIRLOCK_ASSIGN_OR_RETURN(Bytes value, GetAttribute(session_, *h, CKA_VALUE));
  return std::optional<Bytes>(std::move(value));
}

Result<void> Pkcs11Token::WriteData(std::string_view label, ByteSpan value,
                                    std::string_view application) {
  AIRLOCK_TRY(ValidateName(label));
  if (value.size() > kMaxAttributeSize)
    return MakeError(ErrorCode::kLimitExceeded, "data too large");
  std::lock_guard<std::mutex> lock(mu_);
  AIRLOCK_ASSIGN_OR_RETURN(auto old, FindOne(session_, CKO_DATA, label, application));
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
      AttrString(CKA_LABEL, label), AttrString(CKA_APPLICATION, application),
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

Result<void> Pkcs11Token::DeleteData(std::string_view label, std::string_view application) {
  std::lock_guard<std::mutex> lock(mu_);
  AIRLOCK_ASSIGN_OR_RETURN(auto h, FindOne(session_, CKO_DATA, label, application));
  if (!h) return MakeError(ErrorCode::kNotFound, "no metadata for '" + std::string(label) + "'");
  return Check(session_.f()->C_DestroyObject(session_.get(), *h), "C_DestroyObject");
}

Result<std::vector<std::string>> Pkcs11Token::ListData(std::string_view application) {
  std::lock_guard<std::mutex> lock(mu_);
  CK_OBJECT_CLASS cls = CKO_DATA;
  AIRLOCK_ASSIGN_OR_RETURN(
      auto handles,
      FindObjects(session_, {Attr(CKA_CLASS, &cls), AttrString(CKA_APPLICATION, application)}));
  std::vector<std::string> out;
  for (CK_OBJECT_HANDLE h : handles) {
    AIRLOCK_ASSIGN_OR_RETURN(Bytes label, GetAttribute(session_, h, CKA_LABEL));
    out.emplace_back(AsString(label));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace airlock::keys
