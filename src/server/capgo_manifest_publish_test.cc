// A Capgo manifest (issue 15, "Capgo manifest mode") as a stolen publisher token would send it: the
// admin API stores a manifest entry only when the signed targets list its target as the Capgo file
// of that app, version, file name and file_hash. A swapped, unsigned, foreign or replayed entry, or
// a file_hash the developer did not sign, is refused with 422 and nothing is published, so the token
// cannot point a manifest-mode device at other bytes, or another expected hash, than were signed.
#include <gtest/gtest.h>

#include <cctype>
#include <optional>
#include <string>

#include "server/server_api_test_fixture.h"

namespace airlock::server {
namespace {

using namespace testing_fixture;  // NOLINT(google-build-using-namespace): the shared fixture

class CapgoManifestPublishTest : public ServerApiTest {
 protected:
  static std::string FileTarget(const std::string& version, const std::string& name) {
    return "releases/" + version + "/capgo/" + name;
  }

  // Uploads `content` and lists it in `t` as `target`, signed (with `format`) as the Capgo file
  // `name` of `app`'s `version` whose file_hash is Hash(content).
  void AddCapgoFile(metadata::Targets* t, const std::string& target, const std::string& app,
                    const std::string& version, const std::string& name,
                    const std::string& content, const std::string& format = "capgo-file") {
    Reply up = Upload(content);
    ASSERT_TRUE(up.status == 201 || up.status == 200) << up.raw;
    AddTarget(t, target, content,
              {{"format", format},
               {"capgo_file",
                {{"app_id", app},
                 {"version", version},
                 {"file_name", name},
                 {"file_hash", Hash(content)}}}});
  }

  // A stand-in for the file_hash the Capgo key makes of `content` (hex; the server only compares
  // it with the signed one).
  static std::string Hash(const std::string& content) {
    return HexEncode(crypto::Sha256(AsBytes("file_hash of " + content)));
  }

  static std::string Content(const std::string& version, const std::string& name) {
    return name + " of " + version;
  }

  // The honest entry for file `name` of 1.0.0 at `target` (file_hash: that of the honest file),
  // or with `file_hash` given.
  static Json Entry(const std::string& name, const std::string& target,
                    std::optional<std::string> file_hash = std::nullopt) {
    return {{"file_name", name},
            {"file_hash", file_hash ? *file_hash : Hash(Content("1.0.0", name))},
            {"target", target}};
  }

  // Release `version` with two signed Capgo files, index.html and app.js (targets `t`).
  void SignedRelease(metadata::Targets* t, const std::string& version) {
    ASSERT_NO_FATAL_FAILURE(AddRelease(t, version));
    for (const char* name : {"index.html", "app.js"}) {
      ASSERT_NO_FATAL_FAILURE(
          AddCapgoFile(t, FileTarget(version, name), kApp, version, name, Content(version, name)));
    }
  }

  Reply Publish(const std::string& version, const metadata::Targets& t, const Json& manifest) {
    Json body = PublishBody(version, SignTargets(t, targets_key_));
    body["capgo"]["manifest"] = manifest;
    return Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases", body);
  }

  void ExpectNothingPublished(const std::string& version) {
    auto release = store_->GetRelease(kApp, version);
    ASSERT_FALSE(release) << "release " << version << " was published";
    EXPECT_EQ(release.error().code(), ErrorCode::kNotFound);
    EXPECT_EQ(store_->GetChannel(kApp, "production")->current_version, std::nullopt);
  }
};

TEST_F(CapgoManifestPublishTest, EntriesNotSignedAsThatFileAreRefusedAndNothingIsPublished) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("production", true));
  metadata::Targets t;
  t.version = 1;
  t.expires = now_ + 90 * kDay;
  ASSERT_NO_FATAL_FAILURE(SignedRelease(&t, "1.0.0"));
  // A signed Capgo file of another version and one of another app, both in the same targets.
  const std::string old_index = FileTarget("0.9.0", "index.html");
  const std::string foreign = "other/releases/1.0.0/capgo/index.html";
  ASSERT_NO_FATAL_FAILURE(AddCapgoFile(&t, old_index, kApp, "0.9.0", "index.html", "old"));
  ASSERT_NO_FATAL_FAILURE(
      AddCapgoFile(&t, foreign, "com.example.other", "1.0.0", "index.html", "foreign"));
  // Right app, version and name, but signed as something else than a Capgo file.
  const std::string not_capgo = "releases/1.0.0/other/index.html";
  ASSERT_NO_FATAL_FAILURE(
      AddCapgoFile(&t, not_capgo, kApp, "1.0.0", "index.html", "not capgo", "bundle-file"));

  // Signed custom fields of the wrong JSON types (a refusal, not an exception).
  const std::string odd = "releases/1.0.0/capgo/odd";
  ASSERT_TRUE(Upload("odd").status == 201);
  AddTarget(&t, odd, "odd",
            {{"format", "capgo-file"},
             {"capgo_file",
              {{"app_id", kApp}, {"version", "1.0.0"}, {"file_name", 7}, {"file_hash", {1}}}}});

  const std::string index = FileTarget("1.0.0", "index.html");
  const std::string app_js = FileTarget("1.0.0", "app.js");
  struct Attack {
    const char* what;
    Json manifest;
  };
  const Attack attacks[] = {
      {"swapped: index.html served from app.js's bytes",
       Json::array({Entry("index.html", app_js), Entry("app.js", index)})},
      {"a target the targets role never signed",
       Json::array({Entry("index.html", FileTarget("1.0.0", "evil.html"))})},
      {"the release's bundle, signed but not as a Capgo file",
       Json::array({Entry("index.html", BundleName("1.0.0"))})},
      {"an older version's signed file (a replay)",
       Json::array({Entry("index.html", old_index)})},
      {"another app's signed file", Json::array({Entry("index.html", foreign)})},
      {"a target signed in another format", Json::array({Entry("index.html", not_capgo)})},
      {"signed fields that are not strings", Json::array({Entry("index.html", odd)})},
      {"an honest entry, then a bad one",
       Json::array({Entry("app.js", app_js), Entry("index.html", old_index)})},
  };
  for (const Attack& a : attacks) {
    SCOPED_TRACE(a.what);
    Reply pub = Publish("1.0.0", t, a.manifest);
    EXPECT_EQ(pub.status, 422) << pub.raw;
    EXPECT_EQ(pub.error(), "verification_failed") << pub.raw;
    EXPECT_NE(pub.raw.find("targets metadata does not list"), std::string::npos) << pub.raw;
    ExpectNothingPublished("1.0.0");
  }

  // The right target with a file_hash the developer did not sign (the old index.html's, which the
  // plugin could match against a copy it holds): refused.
  std::string upper = Hash(Content("1.0.0", "index.html"));
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& file_hash : {Hash("old"), Hash(Content("1.0.0", "app.js")), upper}) {
    Reply pub = Publish("1.0.0", t, Json::array({Entry("index.html", index, file_hash)}));
    EXPECT_EQ(pub.status, 422) << pub.raw;
    EXPECT_EQ(pub.error(), "verification_failed") << pub.raw;
    EXPECT_NE(pub.raw.find("file_hash of index.html is not the one the targets metadata signed"),
              std::string::npos)
        << pub.raw;
    ExpectNothingPublished("1.0.0");
  }

  // The honest manifest is stored with each file's signed SHA-256.
  Reply pub = Publish("1.0.0", t, Json::array({Entry("index.html", index), Entry("app.js", app_js)}));
  ASSERT_EQ(pub.status, 201) << pub.raw;
  auto stored = store_->GetRelease(kApp, "1.0.0");
  ASSERT_TRUE(stored && stored->capgo_manifest);
  Json manifest = Json::parse(*stored->capgo_manifest);
  ASSERT_EQ(manifest.size(), 2u);
  EXPECT_EQ(manifest[0]["file_name"], "index.html");
  EXPECT_EQ(manifest[0]["file_hash"], Hash(Content("1.0.0", "index.html")));
  EXPECT_EQ(manifest[0]["sha256"],
            HexEncode(crypto::Sha256(AsBytes(Content("1.0.0", "index.html")))));
  EXPECT_EQ(manifest[1]["file_name"], "app.js");
  EXPECT_EQ(manifest[1]["file_hash"], Hash(Content("1.0.0", "app.js")));
  EXPECT_EQ(manifest[1]["sha256"], HexEncode(crypto::Sha256(AsBytes(Content("1.0.0", "app.js")))));
}

}  // namespace
}  // namespace airlock::server
