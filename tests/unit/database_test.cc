#include "storage/database.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/file_util.h"

using namespace berth::storage;

namespace {

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-db-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto db = Database::open(dir_ + "/berth.db");
    ASSERT_TRUE(db) << db.error().message;
    db_ = *db;
    ASSERT_TRUE(db_->ensure_schema("t", 1, "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)"));
  }
  void TearDown() override { (void)berth::remove_tree(dir_); }

  int64_t count() {
    auto q = db_->prepare("SELECT count(*) FROM t");
    EXPECT_TRUE(q);
    EXPECT_TRUE(q->step());
    return q->integer(0);
  }

  std::string dir_;
  std::shared_ptr<Database> db_;
};

}  // namespace

TEST_F(DatabaseTest, FileIsPrivateAndInWalMode) {
  struct stat st{};
  ASSERT_EQ(::stat((dir_ + "/berth.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
  auto q = db_->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(q);
  ASSERT_TRUE(*q->step());
  EXPECT_EQ(q->text(0), "wal");
}

TEST_F(DatabaseTest, FailedTransactionRollsEverythingBack) {
  auto r = db_->transaction([&]() -> berth::Result<> {
    auto ins = db_->prepare("INSERT INTO t (k, v) VALUES ('a', 1)");
    if (!ins) return std::unexpected(ins.error());
    if (auto run = ins->run(); !run) return run;
    return berth::fail(EIO, "something later failed");
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(count(), 0);

  ASSERT_TRUE(db_->transaction([&]() -> berth::Result<> {
    auto ins = db_->prepare("INSERT INTO t (k, v) VALUES (?, ?)");
    if (!ins) return std::unexpected(ins.error());
    ins->bind(1, "b").bind(2, int64_t{2});
    return ins->run();
  }));
  EXPECT_EQ(count(), 1);
  auto dup = db_->prepare("INSERT INTO t (k, v) VALUES ('b', 3)");
  ASSERT_TRUE(dup);
  auto dup_run = dup->run();
  ASSERT_FALSE(dup_run);
  EXPECT_EQ(dup_run.error().code, EEXIST);
}

TEST_F(DatabaseTest, SchemaRunsOncePerVersion) {
  // Running the same DDL again would fail (table exists) if it were not skipped.
  ASSERT_TRUE(db_->ensure_schema("t", 1, "CREATE TABLE t (k TEXT)"));
  ASSERT_TRUE(db_->ensure_schema("t", 2, "ALTER TABLE t ADD COLUMN extra TEXT"));
  ASSERT_TRUE(db_->ensure_schema("t", 2, "ALTER TABLE t ADD COLUMN extra TEXT"));
  auto reopened = Database::open(dir_ + "/berth.db");
  ASSERT_TRUE(reopened);
  ASSERT_TRUE((*reopened)->ensure_schema("t", 2, "ALTER TABLE t ADD COLUMN extra TEXT"));
}
