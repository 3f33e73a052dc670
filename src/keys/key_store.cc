#include "keys/key_store.h"

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace airlock::keys {
namespace {

struct PurposeName {
  KeyPurpose purpose;
  std::string_view name;
};
constexpr std::array<PurposeName, 7> kPurposeNames{{
    {KeyPurpose::kRoot, "root"},
    {KeyPurpose::kTargets, "targets"},
    {KeyPurpose::kSnapshot, "snapshot"},
    {KeyPurpose::kTimestamp, "timestamp"},
    {KeyPurpose::kContentWrap, "content-wrap"},
    {KeyPurpose::kCapgo, "capgo"},
    {KeyPurpose::kAudit, "audit"},
}};

struct StateName {
  KeyState state;
  std::string_view name;
};
constexpr std::array<StateName, 5> kStateNames{{
    {KeyState::kActive, "active"},
    {KeyState::kSuspended, "suspended"},
    {KeyState::kRetired, "retired"},
    {KeyState::kRevoked, "revoked"},
    {KeyState::kCompromised, "compromised"},
}};

// The registry is a function-local static so backends may register from static initializers in any
// translation unit without an initialisation-order problem.
struct Registry {
  std::mutex mu;
  std::map<KeyUriScheme, KeyStoreFactory> factories;
};
Registry& GetRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

Result<std::unique_ptr<KeyStore>> Open(const KeyUri& uri, const KeyStoreOptions& options,
                                       bool create) {
  KeyStoreFactory factory;
  {
    Registry& r = GetRegistry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.factories.find(uri.scheme);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory) {
    return MakeError(ErrorCode::kUnsupported,
                     "no key store backend for " + uri.StoreUri() + " is built into this program");
  }
  return factory(uri, options, create);
}

}  // namespace

std::string_view KeyPurposeName(KeyPurpose purpose) {
  for (const auto& p : kPurposeNames) {
    if (p.purpose == purpose) return p.name;
  }
  return "unknown";
}

std::string_view KeyOriginName(KeyOrigin origin) {
  return origin == KeyOrigin::kImported ? "imported" : "generated";
}

Result<KeyOrigin> ParseKeyOrigin(std::string_view name) {
  if (name == "generated") return KeyOrigin::kGenerated;
  if (name == "imported") return KeyOrigin::kImported;
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown key origin '" + std::string(name) + "' (generated, imported)");
}

Result<void> CheckImportable(const crypto::PrivateKey& key, KeyPurpose purpose) {
  if (purpose != KeyPurpose::kCapgo) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "only capgo keys can be imported; " + std::string(KeyPurposeName(purpose)) +
                         " keys (TUF and content keys) must be generated inside the store");
  }
  if (key.type() != crypto::KeyType::kRsa) {
    return MakeError(ErrorCode::kInvalidArgument, "a capgo key must be RSA, not " +
                                                      std::string(crypto::KeyTypeName(key.type())));
  }
  const int bits = key.bits();
  if (bits < kCapgoRsaBits || bits > 16384) {
    return MakeError(ErrorCode::kInvalidArgument, "a capgo key must be RSA of " +
                                                      std::to_string(kCapgoRsaBits) +
                                                      "..16384 bits, not " + std::to_string(bits));
  }
  return {};
}

Result<KeyPurpose> ParseKeyPurpose(std::string_view name) {
  for (const auto& p : kPurposeNames) {
    if (p.name == name) return p.purpose;
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown key purpose '" + std::string(name) +
                       "' (root, targets, snapshot, timestamp, content-wrap, capgo, audit)");
}

bool IsTufRolePurpose(KeyPurpose purpose) {
  return purpose == KeyPurpose::kRoot || purpose == KeyPurpose::kTargets ||
         purpose == KeyPurpose::kSnapshot || purpose == KeyPurpose::kTimestamp;
}

Result<void> CheckTypeForPurpose(crypto::KeyType type, KeyPurpose purpose) {
  const bool wraps = type == crypto::KeyType::kX25519 || type == crypto::KeyType::kRsa;
  const bool signs = type != crypto::KeyType::kX25519;
  bool ok = signs;
  std::string_view hint = " (use ed25519, ecdsa-p256 or rsa-4096)";
  if (purpose == KeyPurpose::kContentWrap) {
    ok = wraps;
    hint = " (use x25519 or rsa-4096)";
  } else if (purpose == KeyPurpose::kCapgo) {
    // Capgo encryption v2 is RSA PKCS#1 v1.5 only; the apps hold an RSA public key.
    ok = type == crypto::KeyType::kRsa;
    hint = " (use rsa: Capgo encryption needs an RSA key)";
  }
  if (ok) return {};
  return MakeError(ErrorCode::kInvalidArgument,
                   "a " + std::string(crypto::KeyTypeName(type)) + " key cannot serve purpose " +
                       std::string(KeyPurposeName(purpose)) + std::string(hint));
}

std::string_view KeyStateName(KeyState state) {
  for (const auto& s : kStateNames) {
    if (s.state == state) return s.name;
  }
  return "unknown";
}

Result<KeyState> ParseKeyState(std::string_view name) {
  for (const auto& s : kStateNames) {
    if (s.name == name) return s.state;
  }
  return MakeError(ErrorCode::kInvalidArgument, "unknown key state '" + std::string(name) + "'");
}

Result<void> CheckTransition(KeyState from, KeyState to) {
  bool ok = false;
  switch (from) {
    case KeyState::kActive:
      ok = to != KeyState::kActive;
      break;
    case KeyState::kSuspended:
      ok = to != KeyState::kSuspended;
      break;
    case KeyState::kRetired:
      ok = to == KeyState::kRevoked || to == KeyState::kCompromised;
      break;
    case KeyState::kRevoked:
      ok = to == KeyState::kCompromised;
      break;
    case KeyState::kCompromised:
      ok = false;
      break;
  }
  if (ok) return {};
  return MakeError(ErrorCode::kInvalidArgument, "a key cannot go from " +
                                                    std::string(KeyStateName(from)) + " to " +
                                                    std::string(KeyStateName(to)));
}

Result<void> CheckUsable(std::string_view name, KeyState state) {
  if (state == KeyState::kActive) return {};
  return MakeError(ErrorCode::kKeyUnusable, "key " + std::string(name) + " is " +
                                                std::string(KeyStateName(state)) +
                                                " and cannot be used");
}

Result<void> CheckPrivateEncrypt(const KeyInfo& info, size_t data_size, size_t modulus_bytes) {
  AIRLOCK_TRY(CheckUsable(info.name, info.state));
  if (info.purpose != KeyPurpose::kCapgo || info.type != crypto::KeyType::kRsa) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key " + info.name + " is a " + std::string(KeyPurposeName(info.purpose)) +
                         " " + std::string(crypto::KeyTypeName(info.type)) +
                         " key; only RSA keys of purpose capgo make PKCS#1 type-1 blocks");
  }
  if (modulus_bytes < 11 || data_size > modulus_bytes - 11) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::to_string(data_size) + " bytes do not fit a PKCS#1 type-1 block of key " +
                         info.name + " (at most " +
                         std::to_string(modulus_bytes < 11 ? 0 : modulus_bytes - 11) + ")");
  }
  return {};
}

void RegisterKeyStoreBackend(KeyUriScheme scheme, KeyStoreFactory factory) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.factories[scheme] = std::move(factory);
}

Result<std::unique_ptr<KeyStore>> OpenKeyStore(const KeyUri& uri, const KeyStoreOptions& options) {
  return Open(uri, options, /*create=*/false);
}

Result<std::unique_ptr<KeyStore>> OpenKeyStore(std::string_view uri,
                                               const KeyStoreOptions& options) {
  AIRLOCK_ASSIGN_OR_RETURN(KeyUri parsed, ParseKeyUri(uri));
  return Open(parsed, options, /*create=*/false);
}

Result<std::unique_ptr<KeyStore>> InitKeyStore(const KeyUri& uri, const KeyStoreOptions& options) {
  return Open(uri, options, /*create=*/true);
}

}  // namespace airlock::keys
