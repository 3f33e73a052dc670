// Delegation path patterns, matched exactly as python-tuf's
// DelegatedRole._is_target_in_pathpattern: split both on '/', require the same number of parts, and
// match each part with Python's fnmatch.fnmatch (on POSIX: fnmatchcase, case-sensitive). The glob
// is interpreted here, over Unicode code points as Python does, rather than translated into a
// regular expression or handed to fnmatch(3), whose bracket rules differ (glibc negates "[^...]";
// Python treats '^' as a member).
//
// Python's fnmatch (3.11, fnmatch.translate) rules reproduced:
//   *        any run of characters (never '/', since parts are split first)
//   ?        any one character
//   [seq]    one character in seq; "[!seq]" one character not in seq. The set ends at the first ']'
//            after the opening '[', an optional '!', and an optional leading ']' (which is a
//            member). Without such a ']' the '[' is a literal character and matching goes on after
//            it. Inside: "a-z" is a range, a '-' first, last, or right after a range is a member, a
//            range whose ends are reversed ("z-a") is empty; '^', '\\', '[' and every other
//            character are plain members. A set left with no members matches nothing, "[!...]" with
//            no members any character.
//   \        a plain character (Python's fnmatch has no escapes)
//   other    itself
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metadata/metadata.h"

namespace airlock::metadata {
namespace {

// Decodes strict UTF-8 (no overlong forms, surrogates or values past U+10FFFF). nullopt if invalid:
// metadata strings are valid UTF-8 (the JSON parser checks), so this only refuses caller input.
std::optional<std::u32string> DecodeUtf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    size_t len;
    char32_t cp;
    char32_t min;
    if ((b0 & 0xE0) == 0xC0) {
      len = 2, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
      return std::nullopt;
    }
    if (i + len > s.size()) return std::nullopt;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    out.push_back(cp);
    i += len;
  }
  return out;
}

// One element of a compiled part pattern.
struct GlobToken {
  enum class Kind { kLiteral, kAnyOne, kStar, kSet } kind = Kind::kLiteral;
  char32_t literal = 0;
  bool negated = false;
  std::vector<std::pair<char32_t, char32_t>> ranges;  // inclusive; single members are (c, c)

  bool MatchesOne(char32_t c) const {
    switch (kind) {
      case Kind::kLiteral:
        return c == literal;
      case Kind::kAnyOne:
        return true;
      case Kind::kStar:
        return false;  // never asked
      case Kind::kSet: {
        bool member = false;
        for (const auto& [lo, hi] : ranges) {
          if (lo <= c && c <= hi) {
            member = true;
            break;
          }
        }
        return member != negated;
      }
    }
    return false;
  }
};

std::vector<GlobToken> CompileGlob(const std::u32string& p) {
  std::vector<GlobToken> tokens;
  const size_t n = p.size();
  size_t i = 0;
  while (i < n) {
    const char32_t c = p[i++];
    GlobToken t;
    if (c == U'*') {
      // Consecutive stars are one.
      if (tokens.empty() || tokens.back().kind != GlobToken::Kind::kStar) {
        t.kind = GlobToken::Kind::kStar;
        tokens.push_back(std::move(t));
      }
      continue;
    }
    if (c == U'?') {
      t.kind = GlobToken::Kind::kAnyOne;
      tokens.push_back(std::move(t));
      continue;
    }
    if (c == U'[') {
      size_t j = i;
      if (j < n && p[j] == U'!') ++j;
      if (j < n && p[j] == U']') ++j;
      while (j < n && p[j] != U']') ++j;
      if (j < n) {
        // Members are p[i, j).
        t.kind = GlobToken::Kind::kSet;
        size_t k = i;
        if (p[k] == U'!') {
          t.negated = true;
          ++k;
        }
        while (k < j) {
          if (k + 2 < j && p[k + 1] == U'-') {
            // A reversed range is empty (Python drops it).
            if (p[k] <= p[k + 2]) t.ranges.emplace_back(p[k], p[k + 2]);
            k += 3;
          } else {
            t.ranges.emplace_back(p[k], p[k]);
            ++k;
          }
        }
        tokens.push_back(std::move(t));
        i = j + 1;
        continue;
      }
      // No closing ']': a literal '['; the rest is read as usual.
    }
    t.kind = GlobToken::Kind::kLiteral;
    t.literal = c;
    tokens.push_back(std::move(t));
  }
  return tokens;
}

// Whole-string glob match. Stars are matched by the usual backtracking to the most recent star
// (sufficient for globs: an earlier star never needs to give back what a later one can take).
bool GlobMatch(const std::vector<GlobToken>& tokens, const std::u32string& s) {
  size_t t = 0;
  size_t i = 0;
  std::optional<std::pair<size_t, size_t>>
      star;  // (token after the star, input position it took up to)
  while (i < s.size()) {
    if (t < tokens.size() && tokens[t].kind == GlobToken::Kind::kStar) {
      star = std::make_pair(t + 1, i);
      ++t;
      continue;
    }
    if (t < tokens.size() && tokens[t].MatchesOne(s[i])) {
      ++t;
      ++i;
      continue;
    }
    if (!star) return false;
    // The last star takes one more character.
    t = star->first;
    i = ++star->second;
  }
  while (t < tokens.size() && tokens[t].kind == GlobToken::Kind::kStar) ++t;
  return t == tokens.size();
}

std::vector<std::string_view> SplitOnSlash(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    parts.push_back(s.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

}  // namespace

bool MatchesPathPattern(std::string_view pattern, std::string_view target_path) {
  std::vector<std::string_view> pattern_parts = SplitOnSlash(pattern);
  std::vector<std::string_view> target_parts = SplitOnSlash(target_path);
  if (pattern_parts.size() != target_parts.size()) return false;
  for (size_t i = 0; i < pattern_parts.size(); ++i) {
    std::optional<std::u32string> p = DecodeUtf8(pattern_parts[i]);
    std::optional<std::u32string> s = DecodeUtf8(target_parts[i]);
    if (!p || !s) return false;  // not text: nothing Python could have matched
    if (!GlobMatch(CompileGlob(*p), *s)) return false;
  }
  return true;
}

}  // namespace airlock::metadata
