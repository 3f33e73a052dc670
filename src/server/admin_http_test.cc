// The admin API's guards attacked over real sockets: an HttpServer on 127.0.0.1 (port 0) serving
// AddAdminRoutes over a real SQLite store, a real AppRepo on a file vault and a real access store.
// Each attack asserts the HTTP status, the error body and that nothing changed (no upload file, no
// blob, no token row, no audit record).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "access/access_store.h"
#include "audit/audit_log.h"
#include "common/fd.h"
#include "common/file.h"
#include "keys/file_vault.h"
#include "server/channel_cache.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/server_api.h"
#include "server/static_files.h"
#include "storage/store.h"

namespace airlock::server {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;
using ::testing::HasSubstr;

constexpr int64_t kNow = 1'800'000'000;

struct Reply {
  int status = 0;
  Json body;
  bool keep_alive = true;
  std::string retry_after;
  std::string error() const {
    return body.is_object() && body.contains("error") ? body["error"].get<std::string>() : "";
  }
  std::string message() const {
    return body.is_object() && body.contains("message") ? body["message"].get<std::string>() : "";
  }
};

// One connection; requests written raw so a test controls exactly which bytes leave.
class Conn {
 public:
  explicit Conn(uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  void Write(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  // Writes and ignores a failure (the server may close once it has answered).
  void WriteIgnoringErrors(const std::string& bytes) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(bytes), ec);
  }
  Reply Read() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 << 20);
    http::read(socket_, buffer_, parser);
    auto res = parser.release();
    Reply reply;
    reply.status = res.result_int();
    reply.body = Json::parse(res.body(), nullptr, false);
    reply.keep_alive = res.keep_alive();
    reply.retry_after = std::string(res[http::field::retry_after]);
    return reply;
  }
  // True when the server closes the connection (EOF or reset) before sending anything more.
  bool ClosedByPeer() {
    char c;
    boost::system::error_code ec;
    socket_.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

std::string Head(const std::string& method, const std::string& target,
                 const std::vector<std::string>& fields, std::optional<uint64_t> length) {
  std::string head = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& field : fields) head += field + "\r\n";
  if (length) head += "Content-Length: " + std::to_string(*length) + "\r\n";
  return head + "\r\n";
}

std::string Bearer(const std::string& token) { return "Authorization: Bearer " + token; }

size_t CountFiles(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file()) ++n;
  }
  return n;
}

class AdminHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create({}, "admin-http-");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    data_ = dir_->path() / "data";
    uploads_ = data_ / "uploads";
    ASSERT_TRUE(EnsureDataLayout(data_));
    fs::create_directories(uploads_);
    auto store = storage::OpenStore("sqlite:" + (data_ / "airlock.db").string(), kNow);
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);

    vault_ = dir_->path() / "server.vault";
    keys::KeyStoreOptions vault_options;
    vault_options.kdf = keys::KdfParams::ForTests();
    vault_options.secret = [] { return Result<std::string>(std::string("test passphrase")); };
    vault_options.now = [this] { return now_.load(); };
    auto vault = keys::OpenFileVault(vault_, vault_options, /*create=*/true);
    ASSERT_TRUE(vault) << vault.error().ToString();
    AppRepoOptions repo_options;
    repo_options.data_dir = data_;
    repo_options.now = [this] { return now_.load(); };
    repo_ = std::make_unique<AppRepo>(std::move(*vault), repo_options);

    access::AccessOptions access_options;
    access_options.clock = [this] { return now_.load(); };
    auto access = access::AccessStore::Open(data_ / "access.db", access_options);
    ASSERT_TRUE(access) << access.error().ToString();
    access_.emplace(std::move(*access));
    owner_token_ = access_->CreateToken("owner", {access::Role::kOwner})->token;
    reader_token_ = access_->CreateToken("reader", {access::Role::kReadOnly})->token;

    cache_ = std::make_unique<ChannelCache>(store_.get(), ChannelCache::Options{});
    ServerApiDeps deps;
    deps.store = store_.get();
    deps.repo = repo_.get();
    deps.access = &*access_;
    deps.cache = cache_.get();
    deps.data_dir = data_;
    deps.public_url = "https://ota.example.com";
    deps.clock = [this] { return now_.load(); };
    deps.audit_log = audit::AuditPathForVault(vault_);
    admin_ = AddAdminRoutes(&router_, deps);
    StartServer();
  }

  void StartServer() {
    ServerOptions options;
    options.port = 0;
    options.threads = 2;
    options.access_log = false;
    options.upload_dir = uploads_;
    options.max_uploads = 1;
    options.log_sink = [](std::string_view) {};
    server_ = std::make_unique<HttpServer>(options, &router_, &metrics_);
    ASSERT_TRUE(server_->Start());
  }

  void TearDown() override { server_.reset(); }

  // One request on a fresh connection.
  Reply Send(const std::string& method, const std::string& target, std::optional<std::string> token,
             const std::string& body = "", std::vector<std::string> fields = {}) {
    if (token) fields.push_back(Bearer(*token));
    Conn conn(server_->port());
    const bool with_body = !body.empty() || method == "POST" || method == "PUT";
    conn.Write(Head(method, target, fields,
                    with_body ? std::optional<uint64_t>(body.size()) : std::nullopt) +
               body);
    return conn.Read();
  }
  Reply SendJson(const std::string& method, const std::string& target, const std::string& token,
                 const Json& body, std::vector<std::string> fields = {}) {
    fields.push_back("Content-Type: application/json");
    return Send(method, target, token, body.dump(), std::move(fields));
  }

  // Mints a token through the API as `creator`; returns the reply.
  Reply Mint(const std::string& creator, Json spec) {
    return SendJson("POST", "/api/v1/tokens", creator, spec);
  }

  std::vector<audit::UsageRecord> AuditRecords() {
    auto log = audit::AuditLog::OpenExisting(audit::AuditPathForVault(vault_));
    if (!log) return {};
    auto records = log->Query(audit::AuditFilter{});
    EXPECT_TRUE(records);
    return records ? *records : std::vector<audit::UsageRecord>();
  }
  size_t AdminRecordCount() {
    size_t n = 0;
    for (const auto& r : AuditRecords()) n += r.purpose == "admin" ? 1 : 0;
    return n;
  }
  size_t TokenRows() {
    auto list = access_->List();
    EXPECT_TRUE(list);
    return list ? list->size() : 0;
  }
  size_t BlobFiles() { return CountFiles(data_ / "blobs"); }

  void CreateApp(const std::string& app) {
    Reply created = SendJson("POST", "/api/v1/apps", owner_token_, {{"app_id", app}});
    ASSERT_EQ(created.status, 201) << created.body.dump();
  }

  std::optional<ScopedTempDir> dir_;
  fs::path data_;
  fs::path uploads_;
  fs::path vault_;
  std::atomic<int64_t> now_{kNow};
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<AppRepo> repo_;
  std::optional<access::AccessStore> access_;
  std::unique_ptr<ChannelCache> cache_;
  std::shared_ptr<AdminApi> admin_;
  Router router_;
  Metrics metrics_;
  std::unique_ptr<HttpServer> server_;
  std::string owner_token_;
  std::string reader_token_;
};

// ---- authentication before the body

TEST_F(AdminHttpTest, UploadWithoutTokenIs401WithoutContinueOrFile) {
  Conn conn(server_->port());
  conn.Write(Head("POST", "/api/v1/blobs", {"Expect: 100-continue"}, 10 << 20));
  Reply reply = conn.Read();  // a 100 Continue would be read here as status 100
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(reply.error(), "unauthorized");
  EXPECT_EQ(reply.message(), "missing bearer token");
  EXPECT_FALSE(reply.keep_alive);
  EXPECT_TRUE(conn.ClosedByPeer());
  EXPECT_TRUE(fs::is_empty(uploads_));
  EXPECT_EQ(BlobFiles(), 0u);
  EXPECT_EQ(AdminRecordCount(), 0u);  // anonymous requests never reach the chained log
}

TEST_F(AdminHttpTest, UploadWithUnknownTokenIs401WithoutContinueOrFile) {
  Conn conn(server_->port());
  conn.Write(Head("POST", "/api/v1/blobs",
                  {"Expect: 100-continue", Bearer("alk_" + std::string(64, '0'))}, 1 << 20));
  Reply reply = conn.Read();
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(reply.error(), "unauthorized");
  EXPECT_EQ(reply.message(), "unknown, revoked or expired token");
  EXPECT_TRUE(conn.ClosedByPeer());
  EXPECT_TRUE(fs::is_empty(uploads_));
  EXPECT_EQ(BlobFiles(), 0u);
  EXPECT_EQ(AdminRecordCount(), 0u);
}

TEST_F(AdminHttpTest, UploadWithReadOnlyTokenIs403WithoutContinueOrFile) {
  Conn conn(server_->port());
  conn.Write(
      Head("POST", "/api/v1/blobs", {"Expect: 100-continue", Bearer(reader_token_)}, 1 << 20));
  Reply reply = conn.Read();
  EXPECT_EQ(reply.status, 403);
  EXPECT_EQ(reply.error(), "forbidden");
  EXPECT_EQ(reply.message(), "token may not release.publish");
  EXPECT_TRUE(conn.ClosedByPeer());
  EXPECT_TRUE(fs::is_empty(uploads_));
  EXPECT_EQ(BlobFiles(), 0u);
  // The refusal of an authenticated principal is audited, naming it.
  auto records = AuditRecords();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].actor, "reader");
  EXPECT_EQ(records[0].operation, "blob.upload");
  EXPECT_EQ(records[0].result, audit::UsageResult::kDenied);
  EXPECT_EQ(records[0].source, "127.0.0.1");
}

TEST_F(AdminHttpTest, LargeBodyWithoutTokenIsAnsweredFromTheHeaderAndWrittenNowhere) {
  Conn conn(server_->port());
  const std::string body(8 << 20, 'x');
  // The header alone is answered: the server never waits for (or stores) the body.
  conn.Write(Head("POST", "/api/v1/blobs", {}, body.size()));
  Reply reply = conn.Read();
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(reply.error(), "unauthorized");
  EXPECT_FALSE(reply.keep_alive);
  conn.WriteIgnoringErrors(body);  // sent anyway: dropped, never stored
  EXPECT_TRUE(conn.ClosedByPeer());
  EXPECT_TRUE(fs::is_empty(uploads_));
  EXPECT_EQ(BlobFiles(), 0u);
}

TEST_F(AdminHttpTest, JsonRouteWithoutTokenIsRefusedBeforeItsBody) {
  Conn conn(server_->port());
  conn.Write(Head("POST", "/api/v1/apps", {"Expect: 100-continue"}, 100));
  Reply reply = conn.Read();
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(reply.error(), "unauthorized");
  EXPECT_TRUE(conn.ClosedByPeer());
  auto apps = store_->ListApps();
  ASSERT_TRUE(apps);
  EXPECT_TRUE(apps->empty());
}

TEST_F(AdminHttpTest, AuthorisedUploadGetsContinueThenIsStored) {
  Conn conn(server_->port());
  const std::string body = "release bytes";
  conn.Write(
      Head("POST", "/api/v1/blobs", {"Expect: 100-continue", Bearer(owner_token_)}, body.size()));
  EXPECT_EQ(conn.Read().status, 100);
  conn.Write(body);
  Reply reply = conn.Read();
  ASSERT_EQ(reply.status, 201) << reply.body.dump();
  EXPECT_EQ(BlobFiles(), 1u);
  EXPECT_TRUE(fs::is_empty(uploads_));
}

// ---- upload cap and crash leftovers

TEST_F(AdminHttpTest, UploadBeyondTheCapIs503WithRetryAfterAndNoFile) {
  const std::string body_a(1000, 'a');
  Conn a(server_->port());
  a.Write(
      Head("POST", "/api/v1/blobs", {"Expect: 100-continue", Bearer(owner_token_)}, body_a.size()));
  ASSERT_EQ(a.Read().status, 100);  // a holds the only slot (max_uploads = 1) and its file
  ASSERT_EQ(CountFiles(uploads_), 1u);

  Conn b(server_->port());
  b.Write(Head("POST", "/api/v1/blobs", {"Expect: 100-continue", Bearer(owner_token_)}, 500));
  Reply busy = b.Read();
  EXPECT_EQ(busy.status, 503);
  EXPECT_EQ(busy.error(), "busy");
  EXPECT_THAT(busy.message(), HasSubstr("too many uploads in progress"));
  EXPECT_EQ(busy.retry_after, "5");
  EXPECT_TRUE(b.ClosedByPeer());
  EXPECT_EQ(CountFiles(uploads_), 1u);  // only a's

  a.Write(body_a);
  EXPECT_EQ(a.Read().status, 201);
  // The slot is free again.
  Reply retried = Send("POST", "/api/v1/blobs", owner_token_, std::string(500, 'b'));
  EXPECT_EQ(retried.status, 201) << retried.body.dump();
  EXPECT_EQ(BlobFiles(), 2u);
}

TEST_F(AdminHttpTest, StartRemovesUploadsACrashLeftButNotLiveOnes) {
  server_.reset();
  ASSERT_TRUE(WriteFileAtomic(uploads_ / "upload-AbC123", AsBytes(std::string("partial"))));
  ASSERT_TRUE(WriteFileAtomic(uploads_ / "upload-zzzzzz", AsBytes(std::string("other"))));
  ASSERT_TRUE(WriteFileAtomic(uploads_ / "notes.txt", AsBytes(std::string("not ours"))));
  // An upload in progress in another airlockd sharing DATA holds its file locked.
  ASSERT_TRUE(WriteFileAtomic(uploads_ / "upload-live01", AsBytes(std::string("live"))));
  UniqueFd live(::open((uploads_ / "upload-live01").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(live.valid());
  ASSERT_EQ(::flock(live.get(), LOCK_EX | LOCK_NB), 0);

  ASSERT_NO_FATAL_FAILURE(StartServer());
  EXPECT_FALSE(fs::exists(uploads_ / "upload-AbC123"));
  EXPECT_FALSE(fs::exists(uploads_ / "upload-zzzzzz"));
  EXPECT_TRUE(fs::exists(uploads_ / "notes.txt"));
  EXPECT_TRUE(fs::exists(uploads_ / "upload-live01"));
}

// ---- tokens: never outlive or out-rank the parent, revocation, listing, app limits

TEST_F(AdminHttpTest, AChildTokenMayNotOutliveItsParent) {
  Reply parent = Mint(owner_token_, {{"name", "p"}, {"roles", {"admin"}}, {"expires_in", 3600}});
  ASSERT_EQ(parent.status, 201) << parent.body.dump();
  const std::string p = parent.body["token"];
  const size_t rows = TokenRows();

  Reply longer = Mint(p, {{"name", "c"}, {"roles", {"read-only"}}, {"expires_in", 7200}});
  EXPECT_EQ(longer.status, 403);
  EXPECT_EQ(longer.error(), "forbidden");
  EXPECT_THAT(longer.message(), HasSubstr("may not outlive the token that mints it"));
  EXPECT_EQ(TokenRows(), rows);

  // Without expires_in the child gets the parent's expiry.
  Reply child = Mint(p, {{"name", "c"}, {"roles", {"read-only"}}});
  ASSERT_EQ(child.status, 201) << child.body.dump();
  EXPECT_EQ(child.body["expires"], kNow + 3600);
  EXPECT_EQ(child.body["parent"], parent.body["id"]);
  Reply shorter = Mint(p, {{"name", "d"}, {"roles", {"read-only"}}, {"expires_in", 60}});
  ASSERT_EQ(shorter.status, 201);
  EXPECT_EQ(shorter.body["expires"], kNow + 60);
}

TEST_F(AdminHttpTest, AChildTokenMayNotOutRankItsParent) {
  Reply admin = Mint(owner_token_, {{"name", "adm"}, {"roles", {"admin"}}});
  ASSERT_EQ(admin.status, 201);
  const size_t rows = TokenRows();
  Reply owner = Mint(admin.body["token"], {{"name", "own"}, {"roles", {"owner"}}});
  EXPECT_EQ(owner.status, 403);
  EXPECT_EQ(owner.error(), "forbidden");
  EXPECT_EQ(owner.message(), "role owner allows key.sign, which this token may not");
  Reply release = Mint(admin.body["token"], {{"name", "rm"}, {"roles", {"release-manager"}}});
  EXPECT_EQ(release.status, 403);
  EXPECT_EQ(TokenRows(), rows);
}

TEST_F(AdminHttpTest, ARevokedTokenGets401AndSoDoTheTokensItMinted) {
  Reply parent = Mint(owner_token_, {{"name", "p"}, {"roles", {"admin"}}});
  ASSERT_EQ(parent.status, 201);
  const std::string p = parent.body["token"];
  Reply child = Mint(p, {{"name", "c"}, {"roles", {"read-only"}}});
  ASSERT_EQ(child.status, 201);
  const std::string c = child.body["token"];
  ASSERT_EQ(Send("GET", "/api/v1/apps", p).status, 200);
  ASSERT_EQ(Send("GET", "/api/v1/apps", c).status, 200);

  Reply revoked =
      Send("DELETE", "/api/v1/tokens/" + parent.body["id"].get<std::string>(), owner_token_);
  ASSERT_EQ(revoked.status, 200) << revoked.body.dump();
  EXPECT_EQ(revoked.body["disabled"], true);

  Reply p_after = Send("GET", "/api/v1/apps", p);
  EXPECT_EQ(p_after.status, 401);
  EXPECT_EQ(p_after.error(), "unauthorized");
  EXPECT_EQ(p_after.message(), "unknown, revoked or expired token");
  EXPECT_EQ(Send("GET", "/api/v1/apps", c).status, 401);
  // Nor can the revoked parent's child mint anything.
  EXPECT_EQ(Mint(c, {{"name", "x"}, {"roles", {"read-only"}}}).status, 401);

  Reply unknown = Send("DELETE", "/api/v1/tokens/tok_0000000000000000", owner_token_);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.error(), "not_found");
  EXPECT_EQ(
      Send("DELETE", "/api/v1/tokens/" + child.body["id"].get<std::string>(), reader_token_).status,
      403);
}

TEST_F(AdminHttpTest, TokenListShowsIdExpiryAndLastUseWrittenAtMostOnceAMinute) {
  Reply minted =
      Mint(owner_token_, {{"name", "ci"}, {"roles", {"read-only"}}, {"expires_in", 900}});
  ASSERT_EQ(minted.status, 201);
  const std::string ci = minted.body["token"];
  auto find = [&](const Json& list) {
    for (const auto& p : list["principals"]) {
      if (p["name"] == "ci") return p;
    }
    return Json();
  };
  Json before = find(Send("GET", "/api/v1/tokens", owner_token_).body);
  EXPECT_EQ(before["id"], minted.body["id"]);
  EXPECT_THAT(before["id"].get<std::string>(), ::testing::StartsWith("tok_"));
  EXPECT_EQ(before["roles"], Json::array({"read-only"}));
  EXPECT_EQ(before["created"], kNow);
  EXPECT_EQ(before["expires"], kNow + 900);
  EXPECT_TRUE(before["last_used"].is_null());
  EXPECT_EQ(before.count("token"), 0u);  // the secret is shown once, at creation

  ASSERT_EQ(Send("GET", "/api/v1/apps", ci).status, 200);
  EXPECT_EQ(find(Send("GET", "/api/v1/tokens", owner_token_).body)["last_used"], kNow);
  now_ += 30;
  ASSERT_EQ(Send("GET", "/api/v1/apps", ci).status, 200);
  EXPECT_EQ(find(Send("GET", "/api/v1/tokens", owner_token_).body)["last_used"], kNow);
  now_ += 31;
  ASSERT_EQ(Send("GET", "/api/v1/apps", ci).status, 200);
  EXPECT_EQ(find(Send("GET", "/api/v1/tokens", owner_token_).body)["last_used"], kNow + 61);
}

TEST_F(AdminHttpTest, ATokenLimitedToAnAppCannotReachAnother) {
  ASSERT_NO_FATAL_FAILURE(CreateApp("com.a"));
  ASSERT_NO_FATAL_FAILURE(CreateApp("com.b"));
  Reply limited =
      Mint(owner_token_, {{"name", "a-only"}, {"roles", {"admin"}}, {"apps", {"com.a"}}});
  ASSERT_EQ(limited.status, 201) << limited.body.dump();
  EXPECT_EQ(limited.body["apps"], Json::array({"com.a"}));
  const std::string t = limited.body["token"];

  EXPECT_EQ(Send("GET", "/api/v1/apps/com.a", t).status, 200);
  Reply other = Send("GET", "/api/v1/apps/com.b", t);
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(other.error(), "forbidden");
  EXPECT_EQ(other.message(), "token is limited to apps com.a");
  EXPECT_EQ(Send("GET", "/api/v1/apps/com.b/channels", t).status, 403);
  Reply channel = SendJson("POST", "/api/v1/apps/com.b/channels", t, {{"name", "beta"}});
  EXPECT_EQ(channel.status, 403);
  auto channels = store_->ListChannels("com.b");
  ASSERT_TRUE(channels);
  EXPECT_TRUE(channels->empty());

  Reply list = Send("GET", "/api/v1/apps", t);
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body["apps"].size(), 1u);
  EXPECT_EQ(list.body["apps"][0]["app_id"], "com.a");

  // Server-wide routes are closed to it; so are apps outside its own for the tokens it mints.
  Reply create = SendJson("POST", "/api/v1/apps", t, {{"app_id", "com.c"}});
  EXPECT_EQ(create.status, 403);
  EXPECT_THAT(create.message(), HasSubstr("may not use server-wide routes"));
  EXPECT_EQ(Send("GET", "/api/v1/audit", t).status, 403);
  const size_t rows = TokenRows();
  Reply wider = Mint(t, {{"name", "b"}, {"roles", {"read-only"}}, {"apps", {"com.b"}}});
  EXPECT_EQ(wider.status, 403);
  EXPECT_EQ(wider.message(), "access denied: app com.b is outside the apps of a-only");
  EXPECT_EQ(TokenRows(), rows);
  Reply inherited = Mint(t, {{"name", "a2"}, {"roles", {"read-only"}}});
  ASSERT_EQ(inherited.status, 201);
  EXPECT_EQ(inherited.body["apps"], Json::array({"com.a"}));
  // Its token list shows only tokens within its apps.
  Reply tokens = Send("GET", "/api/v1/tokens", t);
  ASSERT_EQ(tokens.status, 200);
  std::vector<std::string> names;
  for (const auto& p : tokens.body["principals"]) names.push_back(p["name"]);
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("a-only", "a2"));
}

// ---- audit records name the principal and the TCP peer

TEST_F(AdminHttpTest, AuditRecordsNameTheTokenAndTheTcpPeerNotXForwardedFor) {
  Reply minted =
      SendJson("POST", "/api/v1/tokens", owner_token_, {{"name", "ci"}, {"roles", {"read-only"}}},
               {"X-Forwarded-For: 203.0.113.7"});
  ASSERT_EQ(minted.status, 201);
  auto owner = access_->AuthenticateToken(owner_token_);
  ASSERT_TRUE(owner);

  auto records = AuditRecords();
  ASSERT_EQ(records.size(), 1u);
  const audit::UsageRecord& r = records[0];
  EXPECT_EQ(r.actor, "owner");
  EXPECT_EQ(r.operation, "token.create");
  EXPECT_EQ(r.purpose, "admin");
  EXPECT_EQ(r.result, audit::UsageResult::kOk);
  EXPECT_EQ(r.source, "127.0.0.1");
  EXPECT_EQ(r.details,
            "token_id=" + owner->token_id + " request=POST /api/v1/tokens app= status=201");

  // The same record through the API.
  Reply audit = Send("GET", "/api/v1/audit", owner_token_);
  ASSERT_EQ(audit.status, 200);
  ASSERT_EQ(audit.body["records"].size(), 1u);
  EXPECT_EQ(audit.body["records"][0]["actor"], "owner");
  EXPECT_EQ(audit.body["records"][0]["source"], "127.0.0.1");
  EXPECT_THAT(audit.body["records"][0]["details"].get<std::string>(),
              HasSubstr("token_id=" + owner->token_id));
}

}  // namespace
}  // namespace airlock::server
