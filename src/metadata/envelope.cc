#include "metadata/metadata.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "common/canonical_json.h"
#include "common/json.h"
#include "crypto/sign.h"
#include "metadata/metadata_json.h"

namespace airlock::metadata {

using nlohmann::json;
using namespace metadata_internal;  // NOLINT(google-build-using-namespace): own helpers

// ---------------------------------------------------------------------------------------------------
// Envelope and signatures

Result<Envelope> Envelope::Parse(std::string_view bytes, size_t max_size) {
  AIRLOCK_ASSIGN_OR_RETURN(json doc, ParseSignedJson(bytes, max_size, kMaxMetadataDepth));
  if (!doc.is_object()) return MakeError(ErrorCode::kMalformed, "metadata is not a JSON object");
  Envelope env;
  AIRLOCK_ASSIGN_OR_RETURN(const json* sigs, GetArray(doc, "signatures"));
  for (const auto& sj : *sigs) {
    if (!sj.is_object()) return MakeError(ErrorCode::kMalformed, "signature is not an object");
    Signature sig;
    AIRLOCK_ASSIGN_OR_RETURN(sig.keyid, Str(sj, "keyid"));
    AIRLOCK_ASSIGN_OR_RETURN(sig.sig, Str(sj, "sig"));
    env.signatures.push_back(std::move(sig));
  }
  // The specification makes key ids in "signatures" unique; python-tuf and tuf-js refuse the whole
  // document otherwise, whether or not the threshold would be met without the repeat.
  AIRLOCK_TRY(CheckUniqueSignatureKeyIds(env.signatures));
  AIRLOCK_ASSIGN_OR_RETURN(const json* signed_obj, GetObject(doc, "signed"));
  // Canonical JSON has no floats, so signed content holding one could never be verified
  // consistently.
  if (ContainsFloat(*signed_obj)) {
    return MakeError(ErrorCode::kMalformed, "signed metadata holds a floating-point number");
  }
  env.signed_json = *signed_obj;
  env.unrecognized_fields = Rest(doc, {"signatures", "signed"});
  return env;
}

Result<std::string> Envelope::CanonicalSigned() const { return CanonicalJson(signed_json); }

Result<void> CheckUniqueSignatureKeyIds(const std::vector<Signature>& signatures) {
  std::set<std::string_view> seen;
  for (const auto& sig : signatures) {
    if (!seen.insert(sig.keyid).second) {
      return MakeError(ErrorCode::kMalformed,
                       "signatures list key id " + sig.keyid.substr(0, 128) + " more than once");
    }
  }
  return {};
}

namespace {

// Adds `s`, replacing an existing signature by the same key.
void PutSignature(std::vector<Signature>& signatures, Signature s) {
  for (auto& existing : signatures) {
    if (existing.keyid == s.keyid) {
      existing = std::move(s);
      return;
    }
  }
  signatures.push_back(std::move(s));
}

}  // namespace

Result<void> Envelope::Sign(crypto::Signer& signer) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string canonical, CanonicalSigned());
  AIRLOCK_ASSIGN_OR_RETURN(Bytes sig, signer.Sign(AsBytes(canonical)));
  PutSignature(signatures, Signature{signer.KeyId(), HexEncode(sig)});
  return {};
}

Result<void> Envelope::Sign(const crypto::PrivateKey& key) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string canonical, CanonicalSigned());
  AIRLOCK_ASSIGN_OR_RETURN(Bytes sig, crypto::Sign(key, AsBytes(canonical)));
  PutSignature(signatures, Signature{key.KeyId(), HexEncode(sig)});
  return {};
}

json Envelope::ToJson() const {
  json out = Base(unrecognized_fields);
  json sigs = json::array();
  for (const auto& s : signatures) sigs.push_back(json{{"keyid", s.keyid}, {"sig", s.sig}});
  out["signatures"] = std::move(sigs);
  out["signed"] = signed_json;
  return out;
}

Result<std::string> Envelope::ToBytes() const {
  try {
    return ToJson().dump(1);
  } catch (const json::exception& e) {
    // dump() throws only for strings that are not valid UTF-8 (never after ParseJson).
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string("cannot serialize metadata: ") + e.what());
  }
}

size_t CountValidSignatures(const Envelope& envelope, const KeyMap& keys,
                            const std::vector<std::string>& role_keyids) {
  auto canonical = envelope.CanonicalSigned();
  if (!canonical) return 0;
  std::set<std::string> counted_ids;
  // The same key listed under two key ids counts once: the threshold is of distinct keys.
  std::vector<const crypto::PublicKey*> counted_keys;
  for (const auto& keyid : role_keyids) {
    if (counted_ids.count(keyid) != 0) continue;
    auto it = keys.find(keyid);
    if (it == keys.end() || !it->second.public_key) continue;
    const crypto::PublicKey& pub = *it->second.public_key;
    bool duplicate_key = std::any_of(counted_keys.begin(), counted_keys.end(),
                                     [&](const crypto::PublicKey* k) { return k->Equals(pub); });
    if (duplicate_key) continue;
    for (const auto& sig : envelope.signatures) {
      if (sig.keyid != keyid) continue;
      auto raw = HexDecode(sig.sig);
      if (!raw) continue;
      if (crypto::Verify(pub, AsBytes(*canonical), *raw)) {
        counted_ids.insert(keyid);
        counted_keys.push_back(&pub);
        break;
      }
    }
  }
  return counted_ids.size();
}

Result<void> VerifyRole(const Envelope& envelope, const KeyMap& keys,
                        const std::vector<std::string>& role_keyids, uint64_t threshold,
                        std::string_view role_name) {
  if (threshold == 0) {
    return MakeError(ErrorCode::kBadSignature,
                     std::string(role_name) + ": threshold 0 is never met");
  }
  // Parse refuses repeated key ids; an envelope built in memory gets the same rule here.
  AIRLOCK_TRY_CTX(CheckUniqueSignatureKeyIds(envelope.signatures), role_name);
  size_t count = CountValidSignatures(envelope, keys, role_keyids);
  if (count < threshold) {
    return MakeError(ErrorCode::kBadSignature,
                     std::string(role_name) + ": " + std::to_string(count) + " of " +
                         std::to_string(threshold) + " required signatures");
  }
  return {};
}

template <typename T>
Result<Metadata<T>> ParseMetadata(std::string_view bytes, size_t max_size) {
  auto env = Envelope::Parse(bytes, max_size);
  if (!env) return tl::unexpected(env.error().WithContext(T::kTypeName));
  auto data = T::FromJson(env->signed_json);
  if (!data) return tl::unexpected(data.error().WithContext(T::kTypeName));
  Metadata<T> md;
  static_cast<Envelope&>(md) = std::move(*env);
  md.signed_data = std::move(*data);
  return md;
}

template Result<Metadata<Root>> ParseMetadata<Root>(std::string_view, size_t);
template Result<Metadata<Targets>> ParseMetadata<Targets>(std::string_view, size_t);
template Result<Metadata<Snapshot>> ParseMetadata<Snapshot>(std::string_view, size_t);
template Result<Metadata<Timestamp>> ParseMetadata<Timestamp>(std::string_view, size_t);

// ---------------------------------------------------------------------------------------------------
// Workflow checks

Result<void> CheckExpiry(const SignedCommon& common, std::time_t now, std::string_view role_name) {
  if (common.IsExpired(now)) {
    return MakeError(ErrorCode::kExpired,
                     std::string(role_name) + " expired at " + FormatTufTime(common.expires));
  }
  return {};
}

Result<void> CheckNoRollback(uint64_t trusted_version, uint64_t new_version,
                             std::string_view role_name) {
  if (new_version < trusted_version) {
    return MakeError(ErrorCode::kRollback,
                     std::string(role_name) + " version " + std::to_string(new_version) +
                         " is lower than trusted " + std::to_string(trusted_version));
  }
  return {};
}

Result<void> VerifyRootRotation(const Metadata<Root>& trusted, const Metadata<Root>& next) {
  // Same order as python-tuf's TrustedMetadataSet.update_root: old keys, version, new keys.
  AIRLOCK_TRY_CTX(
      trusted.signed_data.VerifyDelegate("root", next),
      "new root not signed by trusted root v" + std::to_string(trusted.signed_data.version));
  if (next.signed_data.version != trusted.signed_data.version + 1) {
    return MakeError(ErrorCode::kRollback,
                     "root version " + std::to_string(next.signed_data.version) + " is not " +
                         std::to_string(trusted.signed_data.version + 1));
  }
  AIRLOCK_TRY_CTX(next.signed_data.VerifyDelegate("root", next),
                  "new root not signed by its own keys");
  return {};
}

}  // namespace airlock::metadata
