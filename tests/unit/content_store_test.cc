#include "storage/content_store.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include "common/file_util.h"
#include "tests/support/test_files.h"

using namespace berth::storage;

namespace {

class ContentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-content-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = ContentStore::open(dir_);
    ASSERT_TRUE(store) << store.error().message;
    store_.emplace(std::move(*store));
  }
  void TearDown() override { (void)berth::remove_tree(dir_); }

  int ingest_files() const {
    int n = 0;
    DIR* d = ::opendir((dir_ + "/ingest").c_str());
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
    return n;
  }

  std::string dir_;
  std::optional<ContentStore> store_;
};

}  // namespace

TEST(Digest, ParsesOnlyWellFormedSha256) {
  EXPECT_TRUE(Digest::parse("sha256:" + std::string(64, '0')));
  EXPECT_FALSE(Digest::parse("sha256:" + std::string(63, '0')));
  EXPECT_FALSE(Digest::parse("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(Digest::parse("sha512:" + std::string(128, '0')));
  EXPECT_FALSE(Digest::parse(std::string(64, '0')));
  EXPECT_EQ(sha256_of("").str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(ContentStoreTest, StoresVerifiedBlobsByDigest) {
  auto digest = store_->put("hello");
  ASSERT_TRUE(digest) << digest.error().message;
  EXPECT_EQ(*digest, sha256_of("hello"));
  EXPECT_TRUE(store_->contains(*digest));
  EXPECT_EQ(*store_->read_blob(*digest), "hello");
  EXPECT_EQ(*store_->size_of(*digest), 5);
  auto listed = store_->list();
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().digest, *digest);
  EXPECT_EQ(ingest_files(), 0);
}

TEST_F(ContentStoreTest, RejectsWrongDigestOrSizeAndKeepsNothing) {
  Digest claimed = sha256_of("expected");
  auto wrong = store_->put("something else", claimed);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("digest mismatch"), std::string::npos) << wrong.error().message;
  EXPECT_FALSE(store_->contains(claimed));

  auto writer = store_->writer(claimed, 3);
  ASSERT_TRUE(writer);
  EXPECT_FALSE(writer->write("expected"));  // more than the declared size
  auto short_writer = store_->writer(claimed, 100);
  ASSERT_TRUE(short_writer);
  ASSERT_TRUE(short_writer->write("expected"));
  EXPECT_FALSE(short_writer->commit());
  EXPECT_FALSE(store_->contains(claimed));
  EXPECT_EQ(ingest_files(), 1);  // the first writer is still open
}

TEST_F(ContentStoreTest, AbandonedWritesLeaveNoBlobAndResetRestarts) {
  Digest d = sha256_of("abc");
  {
    auto w = store_->writer(d);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->write("ab"));
  }
  EXPECT_EQ(ingest_files(), 0);
  EXPECT_FALSE(store_->contains(d));
  auto w = store_->writer(d);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write("xx"));
  ASSERT_TRUE(w->reset());
  ASSERT_TRUE(w->write("abc"));
  ASSERT_TRUE(w->commit());
  EXPECT_EQ(*store_->read_blob(d), "abc");
}

TEST_F(ContentStoreTest, ReopenSweepsStaleIngestFilesOnly) {
  std::string stale = dir_ + "/ingest/stale";
  std::string fresh = dir_ + "/ingest/fresh";
  ASSERT_TRUE(berth::write_file_atomic(stale, "x"));
  ASSERT_TRUE(berth::write_file_atomic(fresh, "y"));
  struct utimbuf old{::time(nullptr) - 3600, ::time(nullptr) - 3600};
  ASSERT_EQ(::utime(stale.c_str(), &old), 0);
  ASSERT_TRUE(ContentStore::open(dir_));
  struct stat st{};
  EXPECT_NE(::stat(stale.c_str(), &st), 0);
  EXPECT_EQ(::stat(fresh.c_str(), &st), 0);
}

TEST_F(ContentStoreTest, RemoveIsIdempotentAndReadRefusesHugeBlobs) {
  auto d = store_->put(std::string(1000, 'z'));
  ASSERT_TRUE(d);
  EXPECT_FALSE(store_->read_blob(*d, 10));
  ASSERT_TRUE(store_->remove(*d));
  ASSERT_TRUE(store_->remove(*d));
  EXPECT_FALSE(store_->contains(*d));
}
