// Delegation paths: python-tuf's path pattern rules (path_pattern.cc), hash prefixes, and the order
// of delegated roles for a target.
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/file.h"
#include "crypto/hash.h"
#include "metadata/metadata.h"

namespace airlock::metadata {
namespace {

using nlohmann::json;

struct PathCase {
  const char* target;
  const char* pattern;
  bool match;
};

// python-tuf tests/test_api.py test_is_target_in_pathpattern (supported and invalid use cases), plus
// a few of ours.
const PathCase kPathCases[] = {
    {"foo.tgz", "foo.tgz", true},
    {"foo.tgz", "*", true},
    {"foo.tgz", "*.tgz", true},
    {"foo-version-a.tgz", "foo-version-?.tgz", true},
    {"targets/foo.tgz", "targets/*.tgz", true},
    {"foo/bar/zoo/k.tgz", "foo/bar/zoo/*", true},
    {"foo/bar/zoo/k.tgz", "foo/*/zoo/*", true},
    {"foo/bar/zoo/k.tgz", "*/*/*/*", true},
    {"foo/bar", "f?o/bar", true},
    {"foo/bar", "*o/bar", true},
    {"targets/foo.tgz", "*", false},
    {"/foo.tgz", "*.tgz", false},
    {"targets/foo.tgz", "*.tgz", false},
    {"foo-version-alpha.tgz", "foo-version-?.tgz", false},
    {"foo//bar", "*/bar", false},
    {"foo/bar", "f?/bar", false},
    {"a/b", "a/[bc]", true},
    {"a/d", "a/[!bc]", true},
    {"a/b", "a/[!bc]", false},
    {"a\\b", "a\\b", true},  // no backslash escapes, as in Python's fnmatch
    {"ab", "a\\b", false},
    {".hidden", "*", true},
    {"", "", true},
    {"a/", "a/*", true},
};

TEST(DelegatedPath, PatternTable) {
  for (const auto& c : kPathCases) {
    EXPECT_EQ(MatchesPathPattern(c.pattern, c.target), c.match) << c.pattern << " vs " << c.target;
  }
}

// Expected answers computed by python3 (fnmatch, as python-tuf calls it): see
// tests/vectors/tuf_path_patterns/README.md for how cases.json was made.
TEST(DelegatedPath, MatchesPythonFnmatchOnEveryVector) {
  auto text = ReadTextFile(
      std::string(AIRLOCK_SOURCE_DIR) + "/tests/vectors/tuf_path_patterns/cases.json", 1 << 20);
  ASSERT_TRUE(text) << text.error().ToString();
  json doc = json::parse(*text);
  const json& cases = doc.at("cases");
  ASSERT_GT(cases.size(), 1000u);
  size_t matches = 0;
  for (const json& c : cases) {
    const std::string pattern = c.at("pattern").get<std::string>();
    const std::string target = c.at("target").get<std::string>();
    const bool expected = c.at("match").get<bool>();
    if (expected) ++matches;
    EXPECT_EQ(MatchesPathPattern(pattern, target), expected)
        << "pattern " << json(pattern).dump() << " target " << json(target).dump();
  }
  // Both answers are well represented (a matcher that always says no cannot pass).
  EXPECT_GT(matches, 200u);
}

TEST(DelegatedPath, CaretIsAMemberNotANegationAsInPython) {
  // glibc's fnmatch(3) negates "[^a]"; Python's does not: a delegation to "[^a]*" must not be read
  // as "everything not starting with a".
  EXPECT_TRUE(MatchesPathPattern("[^a]", "^"));
  EXPECT_TRUE(MatchesPathPattern("[^a]", "a"));
  EXPECT_FALSE(MatchesPathPattern("[^a]", "b"));
  EXPECT_FALSE(MatchesPathPattern("[^a]*", "bin/x"));
  EXPECT_FALSE(MatchesPathPattern("[!a]*", "a.bin"));
  EXPECT_TRUE(MatchesPathPattern("[!a]*", "b.bin"));
  // Invalid UTF-8 (only possible from a caller, never from parsed metadata) matches nothing.
  EXPECT_FALSE(MatchesPathPattern("*", "\xff"));
  EXPECT_FALSE(MatchesPathPattern("*", std::string("\xc3")));
}

TEST(DelegatedPath, RoleMatchesAnyOfItsPatterns) {
  DelegatedRole role;
  role.paths = std::vector<std::string>{"otherpath", "a/path"};
  EXPECT_TRUE(role.IsDelegatedPath("a/path"));
  EXPECT_FALSE(role.IsDelegatedPath("a/path2"));
  role.paths = std::vector<std::string>{"*/path", "*"};
  EXPECT_TRUE(role.IsDelegatedPath("a/path"));
  EXPECT_TRUE(role.IsDelegatedPath("x"));
  EXPECT_FALSE(role.IsDelegatedPath("a/b/path"));
}

TEST(DelegatedPath, HashPrefixes) {
  std::string target = "targets/file.txt";
  std::string digest = HexEncode(crypto::Sha256(AsBytes(target)));
  DelegatedRole role;
  role.path_hash_prefixes = std::vector<std::string>{digest.substr(0, 2)};
  EXPECT_TRUE(role.IsDelegatedPath(target));
  role.path_hash_prefixes = std::vector<std::string>{"zz", digest.substr(0, 6)};
  EXPECT_TRUE(role.IsDelegatedPath(target));
  std::string other = digest.substr(0, 1) + (digest[1] == '0' ? "1" : "0");
  role.path_hash_prefixes = std::vector<std::string>{other};
  EXPECT_FALSE(role.IsDelegatedPath(target));
  role.path_hash_prefixes = std::vector<std::string>{digest + "0"};  // longer than the digest
  EXPECT_FALSE(role.IsDelegatedPath(target));
  role.path_hash_prefixes = std::vector<std::string>{};
  EXPECT_FALSE(role.IsDelegatedPath(target));
  // The empty prefix matches every path (as Python's str.startswith).
  role.path_hash_prefixes = std::vector<std::string>{""};
  EXPECT_TRUE(role.IsDelegatedPath(target));
}

TEST(DelegatedPath, RolesForTargetKeepsOrderAndTerminating) {
  Delegations d;
  DelegatedRole a;
  a.name = "a";
  a.paths = std::vector<std::string>{"app/*"};
  a.terminating = true;
  DelegatedRole b;
  b.name = "b";
  b.paths = std::vector<std::string>{"*/*"};
  DelegatedRole c;
  c.name = "c";
  c.paths = std::vector<std::string>{"other/*"};
  d.roles = {a, b, c};
  EXPECT_EQ(d.RolesForTarget("app/x"),
            (std::vector<std::pair<std::string, bool>>{{"a", true}, {"b", false}}));
  EXPECT_EQ(d.FindRole("c")->name, "c");
  EXPECT_EQ(d.FindRole("d"), nullptr);
}

}  // namespace
}  // namespace airlock::metadata
