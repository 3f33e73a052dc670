#include "keys/key_store.h"

#include <array>
#include <map>
#include <mutex>
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
  if (purpose == KeyPurpose::kContentWrap ? wraps : signs) return {};
  return MakeError(ErrorCode::kInvalidArgument,
                   "a " + std::string(crypto::KeyTypeName(type)) + " key cannot serve purpose " +
                       std::string(KeyPurposeName(purpose)) +
                       (purpose == KeyPurpose::kContentWrap ? " (use x25519 or rsa-4096)"
                                                            : " (use ed25519, ecdsa-p256 or rsa-4096)"));
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
