// The typed store fixture: each test runs against SQLite and a real PostgreSQL server
// (store_test.cc, release_store_test.cc).
#ifndef AIRLOCK_STORAGE_STORE_TEST_FIXTURE_H_
#define AIRLOCK_STORAGE_STORE_TEST_FIXTURE_H_

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <type_traits>

#include <gtest/gtest.h>

#include "storage/pg_test_env.h"
#include "storage/store.h"

namespace airlock::storage::store_testing {

namespace fs = std::filesystem;

constexpr int64_t kNow = 1'700'000'000;
const std::string kSha(64, 'a');
const std::string kKey(64, 'b');

struct SqliteBackend {
  static Result<std::string> NewUrl(const fs::path& dir) {
    return "sqlite:" + (dir / "state.db").string();
  }
};
struct PostgresBackend {
  static Result<std::string> NewUrl(const fs::path&) { return testing::CreateTestDatabase(); }
};

template <typename Backend>
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("airlock-store-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto url = Backend::NewUrl(dir_);
    ASSERT_TRUE(url) << url.error().ToString();
    url_ = *url;
    auto store = OpenStore(url_, kNow);
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    ASSERT_TRUE(store_->CreateApp({"com.example.app", "Example", kNow}));
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static Release MakeRelease(std::string version, int64_t created_at = kNow) {
    Release r;
    r.app_id = "com.example.app";
    r.version = std::move(version);
    r.target_name = "bundle-" + r.version + ".zip";
    r.sha256 = kSha;
    r.length = 12345;
    r.encryption = EncryptionMode::kDevice;
    r.created_at = created_at;
    return r;
  }
  static Channel MakeChannel(std::string name) {
    Channel c;
    c.app_id = "com.example.app";
    c.name = std::move(name);
    return c;
  }
  static Device MakeDevice(std::string id) {
    return Device{"com.example.app", std::move(id), kKey, "android", std::nullopt, kNow};
  }
  static DeviceEvent MakeEvent(std::string device, int64_t seq, std::string kind) {
    return DeviceEvent{
        "com.example.app", std::move(device), seq, "1.0.0", std::move(kind), "", "", kNow,
        kNow + 1};
  }

  static inline int counter_ = 0;
  fs::path dir_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, SqliteBackend> ? "Sqlite" : "Postgres";
  }
};
}  // namespace airlock::storage::store_testing

#endif  // AIRLOCK_STORAGE_STORE_TEST_FIXTURE_H_
