#include "common/semver.h"

#include <charconv>

namespace airlock {

namespace {

bool IsIdentChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}
bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return !s.empty();
}

Result<uint64_t> ParseNumber(std::string_view s, std::string_view what) {
  if (!AllDigits(s)) return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " is not a number");
  if (s.size() > 1 && s[0] == '0') {
    return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " has a leading zero");
  }
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " is out of range");
  }
  return v;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

Result<void> CheckIdentifiers(std::string_view s, bool numeric_no_leading_zero, std::string_view what) {
  for (std::string_view id : Split(s, '.')) {
    if (id.empty()) return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " has an empty identifier");
    for (char c : id) {
      if (!IsIdentChar(c)) {
        return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " has an invalid character");
      }
    }
    if (numeric_no_leading_zero && AllDigits(id) && id.size() > 1 && id[0] == '0') {
      return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " has a numeric identifier with a leading zero");
    }
  }
  return {};
}

}  // namespace

Result<Semver> Semver::Parse(std::string_view text) {
  auto fail = [&](const Error& e) {
    return MakeError(ErrorCode::kInvalidArgument, "invalid version '" + std::string(text.substr(0, 64)) +
                                                      "' (expected semver MAJOR.MINOR.PATCH): " + e.message());
  };
  if (text.empty() || text.size() > kMaxSemverLength) {
    return fail(Error(ErrorCode::kInvalidArgument, "length must be 1.." + std::to_string(kMaxSemverLength)));
  }
  Semver v;
  std::string_view rest = text;
  if (size_t plus = rest.find('+'); plus != std::string_view::npos) {
    std::string_view build = rest.substr(plus + 1);
    if (auto r = CheckIdentifiers(build, false, "build metadata"); !r) return fail(r.error());
    v.build = std::string(build);
    rest = rest.substr(0, plus);
  }
  if (size_t dash = rest.find('-'); dash != std::string_view::npos) {
    std::string_view pre = rest.substr(dash + 1);
    if (auto r = CheckIdentifiers(pre, true, "pre-release"); !r) return fail(r.error());
    for (std::string_view id : Split(pre, '.')) v.prerelease.emplace_back(id);
    rest = rest.substr(0, dash);
  }
  // MAJOR.MINOR.PATCH without a vector (this runs on every device check-in).
  std::string_view core[3];
  size_t parts = 0;
  for (size_t start = 0;;) {
    size_t dot = rest.find('.', start);
    if (parts < 3) core[parts] = rest.substr(start, dot == std::string_view::npos ? dot : dot - start);
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (parts != 3) return fail(Error(ErrorCode::kInvalidArgument, "needs exactly three numbers"));
  auto major = ParseNumber(core[0], "major");
  if (!major) return fail(major.error());
  auto minor = ParseNumber(core[1], "minor");
  if (!minor) return fail(minor.error());
  auto patch = ParseNumber(core[2], "patch");
  if (!patch) return fail(patch.error());
  v.major = *major;
  v.minor = *minor;
  v.patch = *patch;
  return v;
}

std::string Semver::ToString() const {
  std::string s = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  for (size_t i = 0; i < prerelease.size(); ++i) {
    s += i == 0 ? "-" : ".";
    s += prerelease[i];
  }
  if (!build.empty()) s += "+" + build;
  return s;
}

std::strong_ordering Compare(const Semver& a, const Semver& b) {
  if (auto c = a.major <=> b.major; c != 0) return c;
  if (auto c = a.minor <=> b.minor; c != 0) return c;
  if (auto c = a.patch <=> b.patch; c != 0) return c;
  // A version without pre-release identifiers has higher precedence.
  if (a.prerelease.empty() || b.prerelease.empty()) {
    return a.prerelease.empty() <=> b.prerelease.empty();
  }
  for (size_t i = 0; i < a.prerelease.size() && i < b.prerelease.size(); ++i) {
    const std::string& x = a.prerelease[i];
    const std::string& y = b.prerelease[i];
    bool xn = AllDigits(x), yn = AllDigits(y);
    if (xn && yn) {
      if (x.size() != y.size()) return x.size() <=> y.size();  // no leading zeros: longer is larger
      if (auto c = x.compare(y) <=> 0; c != 0) return c;
    } else if (xn != yn) {
      return xn ? std::strong_ordering::less : std::strong_ordering::greater;
    } else if (auto c = x.compare(y) <=> 0; c != 0) {
      return c;
    }
  }
  return a.prerelease.size() <=> b.prerelease.size();
}

}  // namespace airlock
