#include "server/router.h"

#include <gtest/gtest.h>

#include "server/http_server.h"
#include "server/static_files.h"

namespace airlock::server {
namespace {

Request MakeRequest(std::string method, std::vector<std::string> segments) {
  Request request;
  request.method = std::move(method);
  request.segments = std::move(segments);
  return request;
}

Router TestRouter() {
  Router router;
  auto ok = [](const Request&) { return Response{}; };
  router.Add("GET", "/healthz", ok);
  router.Add("GET", "/v1/blobs/{sha256}", ok);
  router.Add("GET", "/tuf/{app}/*", ok);
  router.Add("POST", "/v1/check", ok);
  return router;
}

TEST(Router, MatchesExactParamAndPrefix) {
  Router router = TestRouter();
  auto req = MakeRequest("GET", {"healthz"});
  EXPECT_EQ(router.Find(&req).route_index, 0);

  req = MakeRequest("GET", {"v1", "blobs", "abc"});
  auto match = router.Find(&req);
  EXPECT_EQ(match.kind, Router::Match::Kind::kFound);
  EXPECT_EQ(req.Param("sha256"), "abc");

  req = MakeRequest("GET", {"tuf", "app1", "targets", "x.json"});
  match = router.Find(&req);
  EXPECT_EQ(match.route_index, 2);
  EXPECT_EQ(req.Param("app"), "app1");
  EXPECT_EQ(req.rest, "targets/x.json");
}

TEST(Router, UnknownPathIsNotFound) {
  Router router = TestRouter();
  auto req = MakeRequest("GET", {"healthz", "extra"});
  EXPECT_EQ(router.Find(&req).kind, Router::Match::Kind::kNotFound);
  req = MakeRequest("GET", {"tuf", "app"});  // "*" needs at least one segment
  EXPECT_EQ(router.Find(&req).kind, Router::Match::Kind::kNotFound);
  req = MakeRequest("GET", {"v1", "blobs", ""});
  EXPECT_EQ(router.Find(&req).kind, Router::Match::Kind::kNotFound);
}

TEST(Router, WrongMethodListsAllowed) {
  Router router = TestRouter();
  auto req = MakeRequest("GET", {"v1", "check"});
  auto match = router.Find(&req);
  EXPECT_EQ(match.kind, Router::Match::Kind::kMethodNotAllowed);
  EXPECT_EQ(match.allow, "POST");
  req = MakeRequest("PUT", {"healthz"});
  EXPECT_EQ(router.Find(&req).allow, "GET, HEAD");
}

TEST(Router, HeadFallsBackToGet) {
  Router router = TestRouter();
  auto req = MakeRequest("HEAD", {"healthz"});
  EXPECT_EQ(router.Find(&req).kind, Router::Match::Kind::kFound);
}

TEST(Router, UploadRouteReportsItsLimit) {
  Router router = TestRouter();
  auto ok = [](const Request&) { return Response{}; };
  router.AddUpload("POST", "/api/v1/blobs", 4096, ok);
  router.AddUpload("POST", "/api/v1/blobs", 1, ok);  // the first registration wins
  auto req = MakeRequest("POST", {"api", "v1", "blobs"});
  auto match = router.Find(&req);
  ASSERT_EQ(match.kind, Router::Match::Kind::kFound);
  EXPECT_TRUE(match.upload);
  EXPECT_EQ(match.max_upload_bytes, 4096u);
  EXPECT_EQ(router.Labels().back(), "POST /api/v1/blobs");

  req = MakeRequest("POST", {"v1", "check"});
  match = router.Find(&req);
  ASSERT_EQ(match.kind, Router::Match::Kind::kFound);
  EXPECT_FALSE(match.upload);
}

TEST(DecodeSegment, DecodesAndRefusesSlashNulAndBadEscapes) {
  std::string out;
  EXPECT_TRUE(DecodeSegment("%2e%2E", &out));
  EXPECT_EQ(out, "..");
  EXPECT_TRUE(DecodeSegment("a%20b", &out));
  EXPECT_EQ(out, "a b");
  EXPECT_FALSE(DecodeSegment("a%2fb", &out));
  EXPECT_FALSE(DecodeSegment("a%00", &out));
  EXPECT_FALSE(DecodeSegment("a%2", &out));
  EXPECT_FALSE(DecodeSegment("%zz", &out));
}

TEST(ParseRange, Forms) {
  auto r = ParseRange("bytes=0-99", 1000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 0u);
  EXPECT_EQ(r->length, 100u);
  r = ParseRange("bytes=990-2000", 1000);  // clamped to the end
  ASSERT_TRUE(r);
  EXPECT_EQ(r->length, 10u);
  r = ParseRange("bytes=-10", 1000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 990u);
  r = ParseRange("bytes=-5000", 1000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 0u);
  EXPECT_EQ(r->length, 1000u);
  r = ParseRange("bytes=1000-", 1000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->length, 0u);  // unsatisfiable
  r = ParseRange("bytes=-0", 1000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->length, 0u);
  EXPECT_FALSE(ParseRange("bytes=0-1,5-6", 1000));  // several ranges: whole file
  EXPECT_FALSE(ParseRange("items=0-1", 1000));
  EXPECT_FALSE(ParseRange("bytes=5-1", 1000));
  EXPECT_FALSE(ParseRange("bytes=x-1", 1000));
  EXPECT_FALSE(ParseRange("bytes=18446744073709551616-", 1000));
}

TEST(TufCacheControl, UnversionedIsNoCacheVersionedIsImmutable) {
  EXPECT_EQ(TufCacheControl("timestamp.json"), "no-cache");
  EXPECT_EQ(TufCacheControl("root.json"), "no-cache");
  EXPECT_EQ(TufCacheControl("snapshot.json"), "no-cache");
  EXPECT_EQ(TufCacheControl("3.root.json"), "public, max-age=31536000, immutable");
  EXPECT_EQ(TufCacheControl(std::string(64, 'f') + ".bundle.zip"),
            "public, max-age=31536000, immutable");
}

}  // namespace
}  // namespace airlock::server
