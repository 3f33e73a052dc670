// Key URIs: which backend holds a key, and which key.
//
//   file:PATH            a file vault (PATH relative or absolute; "file:///abs/path" also accepted)
//   file:PATH#NAME       the key NAME in that vault
//   pkcs11:token=LABEL                       a PKCS#11 token (RFC 7512 path attributes, ';'-separated)
//   pkcs11:token=LABEL;object=NAME           the key NAME on that token
//   pkcs11:token=LABEL;object=NAME?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin
//
// RFC 7512 percent-encoding is decoded in every attribute value. Unknown path attributes (manufacturer,
// serial, model, library-*, slot-*, id, type) are kept in `attributes` for the backend to match or ignore.
// Key names (the fragment or `object`) are 1..64 characters of [A-Za-z0-9._-], or a retired rotation
// version NAME@N (see lifecycle.h); anything else is kInvalidArgument.
#ifndef AIRLOCK_KEYS_KEY_URI_H_
#define AIRLOCK_KEYS_KEY_URI_H_

#include <map>
#include <string>
#include <string_view>

#include "common/result.h"

namespace airlock::keys {

enum class KeyUriScheme { kFile, kPkcs11 };

struct KeyUri {
  KeyUriScheme scheme = KeyUriScheme::kFile;
  std::string path;      // kFile: the vault file
  std::string token;     // kPkcs11: the token label
  std::string key_name;  // the fragment (file) or object= (pkcs11); empty when the URI names a store
  // kPkcs11 only: other path attributes (e.g. "serial") and query attributes ("module-path",
  // "pin-source", "pin-value"), decoded.
  std::map<std::string, std::string> attributes;
  std::map<std::string, std::string> query;

  bool has_key() const { return !key_name.empty(); }
  // The URI of the store alone (no key name), canonical: "file:PATH" or "pkcs11:token=LABEL[;...]".
  std::string StoreUri() const;
  // The full URI, canonical (re-encoded).
  std::string ToString() const;
  // The same store with key `name`.
  KeyUri WithKey(std::string_view name) const;
};

// kInvalidArgument (with a message naming the problem) if `text` is not a file: or pkcs11: URI, has an
// empty path/token, bad percent-encoding, a duplicate attribute or an invalid key name.
[[nodiscard]] Result<KeyUri> ParseKeyUri(std::string_view text);

// True if `text` starts with "file:" or "pkcs11:" (so a CLI option holds a URI rather than a key file).
bool LooksLikeKeyUri(std::string_view text);

// True for a name a user may give a key: 1..64 of [A-Za-z0-9._-], not starting with '.' or '-'.
bool IsValidKeyName(std::string_view name);
// IsValidKeyName, or NAME@N (N a decimal version >= 1): the names rotation gives retired keys.
bool IsValidStoredKeyName(std::string_view name);

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_KEY_URI_H_
