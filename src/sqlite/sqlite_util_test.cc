#include "sqlite/sqlite_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/file.h"

namespace airlock::sqlite {
namespace {

class SqliteUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    path_ = dir_->path() / "private.db";
  }
  int64_t CountRows(sqlite3* db) {
    auto s = Prepare(db, "SELECT count(*) FROM t", "test");
    EXPECT_TRUE(s);
    EXPECT_EQ(sqlite3_step(s->get()), SQLITE_ROW);
    return sqlite3_column_int64(s->get(), 0);
  }
  std::optional<ScopedTempDir> dir_;
  std::filesystem::path path_;
};

TEST_F(SqliteUtilTest, CreatedDatabaseIsPrivateToItsOwner) {
  auto db = OpenPrivateDb(path_, /*create=*/true, "test db");
  ASSERT_TRUE(db) << db.error().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST_F(SqliteUtilTest, MissingDatabaseIsNotFoundWithoutCreate) {
  auto db = OpenPrivateDb(path_, /*create=*/false, "test db");
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(db.error().message().find("test db"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(SqliteUtilTest, FileThatIsNotADatabaseIsMalformed) {
  ASSERT_TRUE(WriteFileAtomic(path_, AsBytes(std::string(4096, 'x')), 0600));
  auto db = OpenPrivateDb(path_, /*create=*/false, "test db");
  ASSERT_TRUE(db);  // SQLite reads the header lazily
  auto r = Exec(db->get(), "CREATE TABLE t (v TEXT)", "test");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_EQ(r.error().message().rfind("test: ", 0), 0u);
}

// An attacker who can write the directory plants a link to a file of the victim's (or a database
// elsewhere): the private database is never opened through it, for writing or reading.
TEST_F(SqliteUtilTest, SymbolicLinkInPlaceOfTheDatabaseIsRefused) {
  const auto elsewhere = dir_->path() / "elsewhere.db";
  {
    auto real = OpenPrivateDb(elsewhere, /*create=*/true, "test db");
    ASSERT_TRUE(real) << real.error().ToString();
    ASSERT_TRUE(Exec(real->get(), "CREATE TABLE t (v TEXT)", "test"));
  }
  std::filesystem::create_symlink(elsewhere, path_);
  for (bool create : {true, false}) {
    auto db = OpenPrivateDb(path_, create, "test db", /*read_only_fallback=*/true);
    ASSERT_FALSE(db) << "create=" << create;
    EXPECT_EQ(db.error().code(), ErrorCode::kIo);
    EXPECT_NE(db.error().message().find("cannot open test db " + path_.string()),
              std::string::npos)
        << db.error().message();
  }
  EXPECT_TRUE(std::filesystem::is_symlink(path_));
}

TEST_F(SqliteUtilTest, TransactionNotCommittedIsRolledBack) {
  auto db = OpenPrivateDb(path_, /*create=*/true, "test db");
  ASSERT_TRUE(db);
  ASSERT_TRUE(Exec(db->get(), "CREATE TABLE t (v TEXT)", "test"));
  {
    auto tx = Transaction::Begin(db->get());
    ASSERT_TRUE(tx);
    ASSERT_TRUE(Exec(db->get(), "INSERT INTO t VALUES ('dropped')", "test"));
  }
  EXPECT_EQ(CountRows(db->get()), 0);
  {
    auto tx = Transaction::Begin(db->get());
    ASSERT_TRUE(tx);
    auto s = Prepare(db->get(), "INSERT INTO t VALUES (?)", "test");
    ASSERT_TRUE(s);
    BindText(s->get(), 1, "kept");
    ASSERT_EQ(sqlite3_step(s->get()), SQLITE_DONE);
    ASSERT_TRUE(tx->Commit());
  }
  EXPECT_EQ(CountRows(db->get()), 1);
}

}  // namespace
}  // namespace airlock::sqlite
