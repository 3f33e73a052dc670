// The same migrations must produce the same tables and columns on SQLite and PostgreSQL.
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <gtest/gtest.h>

#include "storage/connection.h"
#include "storage/migrations.h"
#include "storage/pg_test_env.h"

namespace airlock::storage {
namespace {

using Columns = std::vector<Connection::Column>;

Columns Sorted(Columns columns) {
  // The two databases may order table names by different collations; column order within a table is
  // the declared order on both.
  std::stable_sort(columns.begin(), columns.end(),
                   [](const auto& a, const auto& b) { return a.table < b.table; });
  return columns;
}

TEST(Schema, MigrationsProduceTheSameSchemaOnSqliteAndPostgres) {
  auto dir = std::filesystem::temp_directory_path() / ("airlock-schema-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto sqlite = OpenConnection("sqlite:" + (dir / "s.db").string());
  ASSERT_TRUE(sqlite) << sqlite.error().ToString();
  auto pg_url = testing::CreateTestDatabase();
  ASSERT_TRUE(pg_url) << pg_url.error().ToString();
  auto pg = OpenConnection(*pg_url);
  ASSERT_TRUE(pg) << pg.error().ToString();

  ASSERT_TRUE(Migrate(**sqlite, 1));
  ASSERT_TRUE(Migrate(**pg, 1));
  auto lite_schema = (*sqlite)->DescribeSchema();
  auto pg_schema = (*pg)->DescribeSchema();
  ASSERT_TRUE(lite_schema) << lite_schema.error().ToString();
  ASSERT_TRUE(pg_schema) << pg_schema.error().ToString();

  Columns a = Sorted(*lite_schema);
  Columns b = Sorted(*pg_schema);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a.size(), b.size());
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    EXPECT_EQ(a[i], b[i]) << "sqlite " << a[i].table << "." << a[i].name << " " << a[i].type
                          << (a[i].not_null ? " not null" : "") << " vs postgres " << b[i].table
                          << "." << b[i].name << " " << b[i].type
                          << (b[i].not_null ? " not null" : "");
  }
  for (const char* table : {"apps", "channels", "releases", "devices", "device_events",
                            "schema_migrations"}) {
    EXPECT_TRUE(std::any_of(a.begin(), a.end(), [&](const auto& c) { return c.table == table; }))
        << table;
  }
  std::filesystem::remove_all(dir);
}

TEST(Schema, MigratingTwiceIsANoOp) {
  auto dir = std::filesystem::temp_directory_path() / ("airlock-schema2-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto conn = OpenConnection((dir / "s.db").string());  // a plain path means SQLite
  ASSERT_TRUE(conn);
  auto first = Migrate(**conn, 1);
  auto second = Migrate(**conn, 2);
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  EXPECT_EQ(*first, *second);
  auto rows = (*conn)->Query("SELECT COUNT(*) FROM schema_migrations", {});
  ASSERT_TRUE(rows);
  EXPECT_EQ(*(*rows)[0][0], std::to_string(Migrations().size()));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace airlock::storage
