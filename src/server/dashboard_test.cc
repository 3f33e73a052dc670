// The dashboard's static routes (dashboard.h) and GET /api/v1/keys (admin_keys.h). The browser
// test of the pages themselves is tests/dashboard/ (dashboard.e2e).
#include "server/dashboard.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "server/server_api_test_fixture.h"

namespace airlock::server {
namespace {

using namespace testing_fixture;  // NOLINT(google-build-using-namespace): the shared fixture

// GET `path` on a router holding only the dashboard routes.
Response Get(const std::string& path) {
  Router router;
  AddDashboardRoutes(&router);
  Request req;
  req.method = "GET";
  req.path = path;
  size_t start = 1;
  while (start <= path.size()) {  // as HttpServer splits: "/dashboard/" -> {"dashboard", ""}
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    req.segments.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  auto match = router.Find(&req);
  if (match.kind != Router::Match::Kind::kFound) return JsonError(404, "not_found", "no route");
  return (*match.handler)(req);
}

std::string FileText(std::string_view name) {
  for (const DashboardFile& f : DashboardFiles()) {
    if (f.name == name)
      return std::string(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size());
  }
  return "";
}

void ExpectSecurityHeaders(const Response& r, const std::string& what) {
  EXPECT_EQ(r.GetHeader("Content-Security-Policy"), kDashboardCsp) << what;
  EXPECT_EQ(r.GetHeader("X-Content-Type-Options"), "nosniff") << what;
  EXPECT_EQ(r.GetHeader("Referrer-Policy"), "no-referrer") << what;
}

TEST(DashboardRoutesTest, TheFolderServesIndexHtmlNoStoreUnderTheStrictPolicy) {
  Response r = Get("/dashboard/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.GetHeader("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(r.GetHeader("Cache-Control"), "no-store");
  ExpectSecurityHeaders(r, "/dashboard/");
  EXPECT_EQ(r.body, FileText("index.html"));
  EXPECT_NE(r.body.find("<title>Airlock</title>"), std::string::npos);
  EXPECT_EQ(Get("/dashboard/index.html").body, r.body);
}

TEST(DashboardRoutesTest, EachFileHasItsContentType) {
  Response js = Get("/dashboard/app.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.GetHeader("Content-Type"), "text/javascript; charset=utf-8");
  ExpectSecurityHeaders(js, "app.js");
  Response css = Get("/dashboard/style.css");
  EXPECT_EQ(css.status, 200);
  EXPECT_EQ(css.GetHeader("Content-Type"), "text/css; charset=utf-8");
}

TEST(DashboardRoutesTest, UnknownDeepOrHiddenNamesAre404WithThePolicy) {
  for (const std::string path :
       {"/dashboard/nope.js", "/dashboard/a/app.js", "/dashboard/../index.html",
        "/dashboard/.index.html", "/dashboard/index.html/"}) {
    Response r = Get(path);
    EXPECT_EQ(r.status, 404) << path;
    ExpectSecurityHeaders(r, path);
  }
}

TEST(DashboardRoutesTest, TheBareNameRedirectsToTheFolder) {
  Response r = Get("/dashboard");
  EXPECT_EQ(r.status, 308);
  EXPECT_EQ(r.GetHeader("Location"), "/dashboard/");
}

// The policy forbids inline script and style; a page that used them would break in the browser.
// This also keeps anything from another origin out of the files (no CDN at run time).
TEST(DashboardRoutesTest, NoFileHasInlineScriptStyleHandlersOrRemoteUrls) {
  ASSERT_FALSE(DashboardFiles().empty());
  const std::regex inline_script(R"(<script(?![^>]*\bsrc=)[^>]*>)", std::regex::icase);
  const std::regex handler_attribute(R"(<[^>]*\son[a-z]+\s*=)", std::regex::icase);
  const std::regex style_attribute(R"(<[^>]*\sstyle\s*=)", std::regex::icase);
  const std::regex remote(R"((https?:)?//[a-z0-9.-]+\.[a-z]{2,})", std::regex::icase);
  for (const DashboardFile& f : DashboardFiles()) {
    std::string text(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size());
    if (f.name.ends_with(".html")) {
      EXPECT_FALSE(std::regex_search(text, inline_script)) << f.name;
      EXPECT_FALSE(std::regex_search(text, handler_attribute)) << f.name;
      EXPECT_FALSE(std::regex_search(text, style_attribute)) << f.name;
      EXPECT_EQ(text.find("<style"), std::string::npos) << f.name;
    }
    // The SVG namespace URI is a name, not a fetch.
    std::string without_ns = std::regex_replace(text, std::regex("http://www.w3.org/2000/svg"), "");
    EXPECT_FALSE(std::regex_search(without_ns, remote)) << f.name << " names another site";
  }
}

// The scripts put server text into the page as text only: no innerHTML, outerHTML,
// insertAdjacentHTML, document.write or eval anywhere (the browser test shows the effect).
TEST(DashboardRoutesTest, NoScriptUsesAnHtmlSinkOrEval) {
  const std::regex sink(
      R"(innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new Function)");
  for (const DashboardFile& f : DashboardFiles()) {
    if (!f.name.ends_with(".js")) continue;
    std::string text(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size());
    EXPECT_FALSE(std::regex_search(text, sink)) << f.name;
    EXPECT_EQ(text.find("localStorage"), std::string::npos) << f.name
                                                            << ": the token stays in "
                                                               "sessionStorage";
  }
}

class KeysApiTest : public ServerApiTest {};

TEST_F(KeysApiTest, ListsTheVaultsKeysWithStateAndLastUse) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  Reply reply = Admin("GET", "/api/v1/keys");
  ASSERT_EQ(reply.status, 200) << reply.raw;
  const std::string snapshot = std::string(kApp) + ".snapshot";
  const std::string content = std::string(kApp) + ".content";
  bool saw_snapshot = false;
  bool saw_content = false;
  for (const auto& key : reply.body["keys"]) {
    if (key["name"] == snapshot) {
      saw_snapshot = true;
      EXPECT_EQ(key["algorithm"], "ed25519");
      EXPECT_EQ(key["purpose"], "snapshot");
      EXPECT_EQ(key["state"], "active");
      ASSERT_TRUE(key["created"].is_number_integer()) << key.dump();
      // Publishing signed a new snapshot: that is the key's last use.
      ASSERT_TRUE(key["last_used"].is_number_integer()) << key.dump();
      EXPECT_GE(key["last_used"].get<int64_t>(), key["created"].get<int64_t>());
      EXPECT_EQ(key["last_used_by"], "airlockd");
      EXPECT_EQ(key["last_operation"], "sign");
    }
    if (key["name"] == content) {
      saw_content = true;
      EXPECT_EQ(key["algorithm"], "x25519");
      EXPECT_TRUE(key["last_used"].is_null()) << key.dump();  // nothing was unwrapped yet
    }
  }
  EXPECT_TRUE(saw_snapshot) << reply.raw;
  EXPECT_TRUE(saw_content) << reply.raw;
}

TEST_F(KeysApiTest, ListingIsNotAKeyOperationAndAppendsNothingToTheUsageLog) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  auto before = audit::AuditLog::OpenExisting(audit::AuditPathForVault(vault_))->Head();
  ASSERT_TRUE(before);
  ASSERT_EQ(Call("GET", "/api/v1/keys", "", reader_token_).status, 200);
  auto after = audit::AuditLog::OpenExisting(audit::AuditPathForVault(vault_))->Head();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->first, before->first);
}

}  // namespace
}  // namespace airlock::server
