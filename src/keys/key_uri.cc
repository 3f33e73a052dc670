#include "keys/key_uri.h"

#include <cctype>
#include <optional>

namespace airlock::keys {
namespace {

constexpr std::string_view kFilePrefix = "file:";
constexpr std::string_view kPkcs11Prefix = "pkcs11:";
constexpr size_t kMaxUriSize = 4096;

Error Bad(std::string_view uri, std::string_view why) {
  return Error(ErrorCode::kInvalidArgument,
               "bad key URI '" + std::string(uri) + "': " + std::string(why));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view uri, std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return tl::unexpected(Bad(uri, "truncated percent-encoding"));
    }
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return tl::unexpected(Bad(uri, "bad percent-encoding"));
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// RFC 7512 pk11-pchar (unreserved / pk11-res-avail) minus the characters we use as separators, plus
// '/' in query values (pk11-qchar).
std::string PercentEncode(std::string_view in, bool query) {
  static constexpr std::string_view kSafe = "-._~:[]@!$'()*+,";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : in) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || kSafe.find(c) != std::string_view::npos || (query && c == '/')) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

template <typename F>
void SplitOn(std::string_view s, char sep, F&& f) {
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    f(s.substr(start, end - start));
    start = end + 1;
  }
}

Result<KeyUri> ParsePkcs11(std::string_view text) {
  KeyUri uri;
  uri.scheme = KeyUriScheme::kPkcs11;
  std::string_view rest = text.substr(kPkcs11Prefix.size());
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::optional<Error> error;
  auto parse_attrs = [&](std::string_view part, char sep, std::map<std::string, std::string>& out) {
    if (part.empty()) return;
    SplitOn(part, sep, [&](std::string_view attr) {
      if (error) return;
      const size_t eq = attr.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        error = Bad(text, "attribute '" + std::string(attr) + "' is not name=value");
        return;
      }
      std::string name(attr.substr(0, eq));
      auto value = PercentDecode(text, attr.substr(eq + 1));
      if (!value) {
        error = value.error();
        return;
      }
      if (!out.emplace(name, std::move(*value)).second) {
        error = Bad(text, "duplicate attribute '" + name + "'");
      }
    });
  };
  parse_attrs(rest, ';', uri.attributes);
  parse_attrs(query, '&', uri.query);
  if (error) return tl::unexpected(*error);
  auto token = uri.attributes.find("token");
  if (token == uri.attributes.end() || token->second.empty()) {
    return tl::unexpected(Bad(text, "a pkcs11 URI needs token=LABEL"));
  }
  uri.token = token->second;
  uri.attributes.erase(token);
  if (auto object = uri.attributes.find("object"); object != uri.attributes.end()) {
    uri.key_name = object->second;
    uri.attributes.erase(object);
    if (!IsValidStoredKeyName(uri.key_name)) {
      return tl::unexpected(Bad(text, "invalid key name '" + uri.key_name + "'"));
    }
  }
  return uri;
}

Result<KeyUri> ParseFile(std::string_view text) {
  KeyUri uri;
  uri.scheme = KeyUriScheme::kFile;
  std::string_view rest = text.substr(kFilePrefix.size());
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) {
    uri.key_name = std::string(rest.substr(hash + 1));
    rest = rest.substr(0, hash);
    if (!IsValidStoredKeyName(uri.key_name)) {
      return tl::unexpected(Bad(text, "invalid key name '" + uri.key_name + "'"));
    }
  }
  if (rest.starts_with("//")) {
    // file://HOST/PATH: only an empty host (or localhost) names this machine.
    rest.remove_prefix(2);
    const size_t slash = rest.find('/');
    const std::string_view host = rest.substr(0, slash);
    if (slash == std::string_view::npos || (!host.empty() && host != "localhost")) {
      return tl::unexpected(Bad(text, "only local file: URIs (file:PATH or file:///PATH)"));
    }
    rest = rest.substr(slash);
  }
  if (rest.empty()) return tl::unexpected(Bad(text, "empty vault path"));
  uri.path = std::string(rest);
  return uri;
}

}  // namespace

bool IsValidKeyName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-') return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

bool IsValidStoredKeyName(std::string_view name) {
  const size_t at = name.find('@');
  if (at == std::string_view::npos) return IsValidKeyName(name);
  std::string_view version = name.substr(at + 1);
  if (!IsValidKeyName(name.substr(0, at)) || version.empty() || version.size() > 9 ||
      version[0] == '0') {
    return false;
  }
  for (char c : version) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool LooksLikeKeyUri(std::string_view text) {
  return text.starts_with(kFilePrefix) || text.starts_with(kPkcs11Prefix);
}

Result<KeyUri> ParseKeyUri(std::string_view text) {
  if (text.size() > kMaxUriSize) return tl::unexpected(Bad(text.substr(0, 64), "too long"));
  if (text.starts_with(kFilePrefix)) return ParseFile(text);
  if (text.starts_with(kPkcs11Prefix)) return ParsePkcs11(text);
  return tl::unexpected(Bad(text, "expected file:PATH[#NAME] or pkcs11:token=LABEL[;object=NAME]"));
}

std::string KeyUri::StoreUri() const {
  if (scheme == KeyUriScheme::kFile) {
    // A path that starts with "//" is printed with the empty authority ("file://" + path): printed
    // as "file:" + path it would read back as file://HOST/..., another file or a refusal.
    if (path.starts_with("//")) return std::string(kFilePrefix) + "//" + path;
    return std::string(kFilePrefix) + path;
  }
  std::string s(kPkcs11Prefix);
  s += "token=" + PercentEncode(token, false);
  for (const auto& [k, v] : attributes) s += ";" + k + "=" + PercentEncode(v, false);
  return s;
}

std::string KeyUri::ToString() const {
  std::string s = StoreUri();
  if (scheme == KeyUriScheme::kFile) {
    if (has_key()) s += "#" + key_name;
    return s;
  }
  if (has_key()) s += ";object=" + PercentEncode(key_name, false);
  char sep = '?';
  for (const auto& [k, v] : query) {
    s += sep;
    s += k + "=" + PercentEncode(v, true);
    sep = '&';
  }
  return s;
}

KeyUri KeyUri::WithKey(std::string_view name) const {
  KeyUri copy = *this;
  copy.key_name = std::string(name);
  return copy;
}

}  // namespace airlock::keys
