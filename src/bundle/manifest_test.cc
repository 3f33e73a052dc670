#include "bundle/manifest.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "common/json.h"

namespace airlock::bundle {
namespace {

const std::string kDigestA(64, 'a');
const std::string kDigestB = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct PathCase {
  std::string path;
  bool ok;
};

TEST(BundlePath, RulesTable) {
  const std::vector<PathCase> cases = {
      {"index.html", true},
      {"assets/app.js", true},
      {"a/b/c/d/e.txt", true},
      {".hidden", true},
      {"..dots", true},
      {"a..b/c", true},
      {"a b/c d.txt", true},
      {"ünïcødé/日本語.txt", true},
      {"emoji/\xF0\x9F\x98\x80.png", true},
      {"", false},
      {"../x", false},
      {"..", false},
      {".", false},
      {"a/../b", false},
      {"a/..", false},
      {"a/./b", false},
      {"./a", false},
      {"/abs", false},
      {"/", false},
      {"a\\b", false},
      {"\\a", false},
      {std::string("a\0b", 3), false},
      {std::string("\0", 1), false},
      {"a\nb", false},
      {"a\tb", false},
      {"a\rb", false},
      {"a\x1b[31m", false},
      {"a\x7f", false},
      {"a//b", false},
      {"a/", false},
      {"a/b/", false},
      {"\xff", false},              // not UTF-8
      {"\xc0\xaf", false},          // overlong '/'
      {"\xed\xa0\x80", false},      // surrogate
      {"\xf4\x90\x80\x80", false},  // above U+10FFFF
      {"\xe6\x97", false},          // truncated sequence
      {"a\xc2\x85"
       "b",
       false},  // C1 control NEL
  };
  for (const PathCase& c : cases) {
    Result<void> r = ValidateBundlePath(c.path);
    EXPECT_EQ(r.has_value(), c.ok) << PrintablePath(c.path);
    if (!c.ok && !r) {
      EXPECT_EQ(r.error().code(), ErrorCode::kUnsafePath) << PrintablePath(c.path);
    }
  }
}

TEST(BundlePath, LengthBound) {
  Limits limits;
  limits.max_path_length = 10;
  EXPECT_TRUE(ValidateBundlePath(std::string(10, 'x'), limits));
  Result<void> r = ValidateBundlePath(std::string(11, 'x'), limits);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsafePath);

  // The default bound is 1024 bytes.
  EXPECT_TRUE(ValidateBundlePath(std::string(1024, 'x')));
  r = ValidateBundlePath(std::string(1025, 'x'));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsafePath);
}

TEST(BundlePath, DepthBound) {
  auto path_of_depth = [](size_t depth) {
    std::string p = "d";
    for (size_t i = 1; i < depth; ++i) p += "/d";
    return p;
  };
  EXPECT_TRUE(ValidateBundlePath(path_of_depth(64)));
  Result<void> r = ValidateBundlePath(path_of_depth(65));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsafePath);

  Limits limits;
  limits.max_path_depth = 2;
  EXPECT_TRUE(ValidateBundlePath("a/b", limits));
  r = ValidateBundlePath("a/b/c", limits);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsafePath);
}

TEST(BundlePath, ErrorNamesThePathPrintably) {
  Result<void> r = ValidateBundlePath(std::string("evil\0/../x\n", 11));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("\"evil\\x00/../x\\x0a\""), std::string::npos)
      << r.error().message();
}

TEST(BundlePath, PrintablePathEscapesAndTruncates) {
  EXPECT_EQ(PrintablePath("a/b"), "\"a/b\"");
  EXPECT_EQ(PrintablePath("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(PrintablePath(std::string("\x01\x7f", 2)), "\"\\x01\\x7f\"");
  const std::string shown = PrintablePath(std::string(1000, 'x'));
  EXPECT_EQ(shown, "\"" + std::string(256, 'x') + "...\"");
}

Manifest SampleManifest() {
  return {
      {"assets/app.js", 136, kDigestA}, {"assets/style.css", 16411, kDigestB},
      {"empty", 0, kDigestB},           {"index.html", 170, kDigestA},
      {"ünïcødé.txt", 5, kDigestA},
  };
}

TEST(ManifestJson, RoundTripThroughText) {
  const Manifest manifest = SampleManifest();
  const std::string text = ManifestToJson(manifest).dump();
  Result<nlohmann::json> parsed = ParseJson(text, 1 << 20);
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  Result<Manifest> back = ManifestFromJson(*parsed);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(*back, manifest);
}

TEST(ManifestJson, ToJsonShape) {
  const nlohmann::json j = ManifestToJson({{"a", 3, kDigestA}});
  EXPECT_EQ(j, nlohmann::json::parse(R"([{"path":"a","size":3,"sha256":")" + kDigestA + R"("}])"));
  EXPECT_EQ(ManifestToJson({}), nlohmann::json::array());
}

TEST(ManifestJson, EmptyArrayIsAnEmptyManifest) {
  Result<Manifest> m = ManifestFromJson(nlohmann::json::array());
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->empty());
}

TEST(ManifestJson, AcceptsSignedNonNegativeSizesBuiltInCode) {
  nlohmann::json j = nlohmann::json::array();
  j.push_back({{"path", "a"}, {"size", int64_t{7}}, {"sha256", kDigestA}});
  Result<Manifest> m = ManifestFromJson(j);
  ASSERT_TRUE(m) << m.error().ToString();
  EXPECT_EQ((*m)[0].size, 7u);
}

TEST(ManifestJson, AcceptsMaximumSize) {
  Limits limits;
  limits.max_total_size = std::numeric_limits<uint64_t>::max();
  nlohmann::json j = ManifestToJson({{"a", std::numeric_limits<uint64_t>::max(), kDigestA}});
  Result<Manifest> m = ManifestFromJson(j, limits);
  ASSERT_TRUE(m) << m.error().ToString();
}

struct RejectCase {
  std::string name;
  std::string json;
  ErrorCode code;
};

std::string Entry(const std::string& path, const std::string& size = "1",
                  const std::string& digest = std::string(64, 'a')) {
  return R"({"path":")" + path + R"(","size":)" + size + R"(,"sha256":")" + digest + R"("})";
}

TEST(ManifestJson, RejectionsTable) {
  const std::string d = kDigestA;
  const std::vector<RejectCase> cases = {
      {"object not array", R"({"path":"a"})", ErrorCode::kMalformed},
      {"string", R"("a")", ErrorCode::kMalformed},
      {"null", "null", ErrorCode::kMalformed},
      {"element not object", R"([["a",1,"x"]])", ErrorCode::kMalformed},
      {"element null", "[null]", ErrorCode::kMalformed},
      {"missing path", R"([{"size":1,"sha256":")" + d + R"("}])", ErrorCode::kMalformed},
      {"missing size", R"([{"path":"a","sha256":")" + d + R"("}])", ErrorCode::kMalformed},
      {"missing sha256", R"([{"path":"a","size":1}])", ErrorCode::kMalformed},
      {"extra field", R"([{"path":"a","size":1,"sha256":")" + d + R"(","mode":420}])",
       ErrorCode::kMalformed},
      {"path not string", R"([{"path":1,"size":1,"sha256":")" + d + R"("}])",
       ErrorCode::kMalformed},
      {"size negative", "[" + Entry("a", "-1") + "]", ErrorCode::kMalformed},
      {"size float", "[" + Entry("a", "1.0") + "]", ErrorCode::kMalformed},
      {"size exponent", "[" + Entry("a", "1e3") + "]", ErrorCode::kMalformed},
      {"size string", "[" + Entry("a", "\"1\"") + "]", ErrorCode::kMalformed},
      {"size bool", "[" + Entry("a", "true") + "]", ErrorCode::kMalformed},
      {"size null", "[" + Entry("a", "null") + "]", ErrorCode::kMalformed},
      {"digest upper case", "[" + Entry("a", "1", std::string(64, 'A')) + "]",
       ErrorCode::kMalformed},
      {"digest short", "[" + Entry("a", "1", std::string(63, 'a')) + "]", ErrorCode::kMalformed},
      {"digest long", "[" + Entry("a", "1", std::string(65, 'a')) + "]", ErrorCode::kMalformed},
      {"digest not hex", "[" + Entry("a", "1", std::string(63, 'a') + "g") + "]",
       ErrorCode::kMalformed},
      {"digest not string", R"([{"path":"a","size":1,"sha256":7}])", ErrorCode::kMalformed},
      {"unsorted", "[" + Entry("b") + "," + Entry("a") + "]", ErrorCode::kMalformed},
      {"duplicate", "[" + Entry("a") + "," + Entry("a") + "]", ErrorCode::kMalformed},
      {"file is prefix dir", "[" + Entry("a") + "," + Entry("a/b") + "]", ErrorCode::kMalformed},
      {"file is prefix dir, not adjacent",
       "[" + Entry("a") + "," + Entry("a-b") + "," + Entry("a.c") + "," + Entry("a/c") + "]",
       ErrorCode::kMalformed},
      {"deep prefix", "[" + Entry("x/a") + "," + Entry("x/a/b/c") + "]", ErrorCode::kMalformed},
      {"path traversal", "[" + Entry("../a") + "]", ErrorCode::kUnsafePath},
      {"absolute path", "[" + Entry("/etc/passwd") + "]", ErrorCode::kUnsafePath},
      {"backslash", "[" + Entry("a\\\\b") + "]", ErrorCode::kUnsafePath},
      {"NUL in path", "[" + Entry("a\\u0000b") + "]", ErrorCode::kUnsafePath},
      {"empty path", "[" + Entry("") + "]", ErrorCode::kUnsafePath},
      {"trailing slash", "[" + Entry("a/") + "]", ErrorCode::kUnsafePath},
      {"total overflows", "[" + Entry("a", "18446744073709551615") + "," + Entry("b", "1") + "]",
       ErrorCode::kLimitExceeded},
  };
  for (const RejectCase& c : cases) {
    SCOPED_TRACE(c.name);
    nlohmann::json j = nlohmann::json::parse(c.json);
    Result<Manifest> m = ManifestFromJson(j);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code(), c.code) << m.error().ToString();
  }
}

TEST(ManifestJson, RejectsTooManyFiles) {
  Limits limits;
  limits.max_files = 2;
  nlohmann::json j = ManifestToJson({{"a", 1, kDigestA}, {"b", 1, kDigestA}});
  EXPECT_TRUE(ManifestFromJson(j, limits));
  j = ManifestToJson({{"a", 1, kDigestA}, {"b", 1, kDigestA}, {"c", 1, kDigestA}});
  Result<Manifest> m = ManifestFromJson(j, limits);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kLimitExceeded);
}

TEST(ManifestJson, RejectsTotalSizeOverLimit) {
  Limits limits;
  limits.max_total_size = 100;
  nlohmann::json j = ManifestToJson({{"a", 60, kDigestA}, {"b", 40, kDigestA}});
  EXPECT_TRUE(ManifestFromJson(j, limits));
  j = ManifestToJson({{"a", 60, kDigestA}, {"b", 41, kDigestA}});
  Result<Manifest> m = ManifestFromJson(j, limits);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kLimitExceeded);
}

TEST(ManifestJson, PathRulesFollowLimits) {
  Limits limits;
  limits.max_path_depth = 1;
  Result<Manifest> m = ManifestFromJson(ManifestToJson({{"a/b", 1, kDigestA}}), limits);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kUnsafePath);
}

TEST(ManifestJson, ComparesPathsByteWise) {
  // 'Z' (0x5a) < 'a' (0x61) < 'é' (0xc3 0xa9): byte order, not locale order.
  nlohmann::json j = ManifestToJson({{"Z", 1, kDigestA}, {"a", 1, kDigestA}, {"é", 1, kDigestA}});
  EXPECT_TRUE(ManifestFromJson(j));
  j = ManifestToJson({{"a", 1, kDigestA}, {"é", 1, kDigestA}, {"Z", 1, kDigestA}});
  Result<Manifest> m = ManifestFromJson(j);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kMalformed);
}

TEST(ManifestTotalSize, SumsAndSaturates) {
  EXPECT_EQ(ManifestTotalSize({}), 0u);
  EXPECT_EQ(ManifestTotalSize(SampleManifest()), 136u + 16411u + 0u + 170u + 5u);
  EXPECT_EQ(ManifestTotalSize(
                {{"a", std::numeric_limits<uint64_t>::max(), kDigestA}, {"b", 2, kDigestA}}),
            std::numeric_limits<uint64_t>::max());
}

}  // namespace
}  // namespace airlock::bundle
