// The CRI ImageService against berthd's store and a real registry on loopback:
// ListImages (and StreamImages), ImageStatus (verbose), PullImage anonymous and with
// credentials, RemoveImage and ImageFsInfo; a pulled image runs.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "tests/integration/cri_fixture.h"

namespace berth::testing {
namespace {

using ::grpc::StatusCode;

constexpr const char* kUser = "puller";
constexpr const char* kPassword = "s3cret-pw";

class CriImagesTest : public SharedBerthdTest<CriImagesTest> {
 public:
  // The registries have to be up before the daemon starts: it is told they are
  // plain http.
  static void prepare(BerthdFixture&) {
    if (!LocalRegistry::available()) return;
    open_ = std::make_unique<LocalRegistry>();
    locked_ = std::make_unique<LocalRegistry>(LocalRegistryOptions{.username = kUser, .password = kPassword});
    std::string layout = BerthdFixture::test_image_layout("busybox");
    if (!open_->ok() || !locked_->ok() || layout.empty()) return;
    pushed_ = open_->push("oci:" + layout + ":latest", "test/busybox:latest") &&
              open_->push("oci:" + layout + ":latest", "test/busybox:other") &&
              locked_->push("oci:" + layout + ":latest", "test/private:1.0");
    if (!pushed_) push_output_ = open_->last_output() + locked_->last_output();
  }
  static std::vector<std::string> daemon_args(const BerthdFixture&) {
    if (!open_ || !locked_) return {};
    return {"--insecure-registry", open_->host(), "--insecure-registry", locked_->host()};
  }
  static void TearDownTestSuite() {
    SharedBerthdTest::TearDownTestSuite();
    open_.reset();
    locked_.reset();
  }

 protected:
  void SetUp() override {
    SharedBerthdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!LocalRegistry::available())
      GTEST_SKIP() << "no registry to pull from: " << LocalRegistry::unavailable_reason();
    ASSERT_TRUE(open_ && open_->ok()) << (open_ ? open_->error() : "");
    ASSERT_TRUE(locked_ && locked_->ok()) << (locked_ ? locked_->error() : "");
    ASSERT_TRUE(pushed_) << push_output_;
  }
  ::grpc::Status pull(const std::string& image, v1::PullImageResponse* resp, const v1::AuthConfig* auth = nullptr) {
    v1::PullImageRequest req;
    req.mutable_image()->set_image(image);
    if (auth) *req.mutable_auth() = *auth;
    v1::PullImageResponse ignored;
    return d_->images().PullImage(call_context(std::chrono::seconds(120)).get(), req, resp ? resp : &ignored);
  }
  v1::ImageStatusResponse status(const std::string& image, bool verbose = false) {
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(image);
    req.set_verbose(verbose);
    v1::ImageStatusResponse resp;
    auto s = d_->images().ImageStatus(call_context().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  ::grpc::Status remove(const std::string& image) {
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(image);
    v1::RemoveImageResponse resp;
    return d_->images().RemoveImage(call_context().get(), req, &resp);
  }

  static inline std::unique_ptr<LocalRegistry> open_, locked_;
  static inline bool pushed_ = false;
  static inline std::string push_output_;
};

TEST_F(CriImagesTest, ListAndStatusOfTheStore) {
  v1::ListImagesResponse list;
  ASSERT_TRUE(d_->images().ListImages(call_context().get(), {}, &list).ok());
  std::set<std::string> tags;
  for (auto& image : list.images()) {
    EXPECT_TRUE(image.id().starts_with("sha256:")) << image.id();
    EXPECT_GT(image.size(), 0u);
    for (auto& t : image.repo_tags()) tags.insert(t);
  }
  EXPECT_TRUE(tags.contains("docker.io/library/busybox:latest"));
  EXPECT_TRUE(tags.contains("example.com/test/users:latest"));

  auto ctx = call_context();
  auto reader = d_->images().StreamImages(ctx.get(), {});
  size_t streamed = 0;
  v1::StreamImagesResponse part;
  while (reader->Read(&part)) streamed += part.images_size();
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(streamed, static_cast<size_t>(list.images_size()));

  v1::ListImagesRequest filtered;
  filtered.mutable_filter()->mutable_image()->set_image("example.com/test/users:latest");
  v1::ListImagesResponse one;
  ASSERT_TRUE(d_->images().ListImages(call_context().get(), filtered, &one).ok());
  ASSERT_EQ(one.images_size(), 1);

  auto users = status("example.com/test/users:latest", true);
  ASSERT_TRUE(users.has_image());
  EXPECT_EQ(users.image().id(), one.images(0).id());
  EXPECT_EQ(users.image().username(), "app") << "the image's User";
  auto info = nlohmann::json::parse(users.info().at("info"));
  EXPECT_EQ(info["imageSpec"]["config"]["User"], "app");
  EXPECT_EQ(info["imageSpec"]["config"]["StopSignal"], "SIGQUIT");
  // By ID, and by a short name that means docker.io/library.
  EXPECT_EQ(status(users.image().id()).image().id(), users.image().id());
  EXPECT_TRUE(status("busybox").has_image());
  EXPECT_TRUE(status("busybox:latest").has_image());
  // Not present is an empty answer, not an error.
  EXPECT_FALSE(status("example.com/not/here:1").has_image());
}

TEST_F(CriImagesTest, PullRunAndRemove) {
  std::string name = open_->host() + "/test/busybox:latest";
  EXPECT_FALSE(status(name).has_image());
  v1::PullImageResponse pulled;
  auto s = pull(name, &pulled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(pulled.image_ref().starts_with("sha256:")) << pulled.image_ref();
  auto st = status(name);
  ASSERT_TRUE(st.has_image());
  EXPECT_EQ(st.image().id(), pulled.image_ref());
  bool tagged = false;
  for (auto& t : st.image().repo_tags()) tagged |= t == name;
  EXPECT_TRUE(tagged);
  // Pulling again is cheap and gives the same image.
  v1::PullImageResponse again;
  ASSERT_TRUE(pull(name, &again).ok());
  EXPECT_EQ(again.image_ref(), pulled.image_ref());
  std::string other = open_->host() + "/test/busybox:other";
  ASSERT_TRUE(pull(other, &again).ok());
  EXPECT_EQ(again.image_ref(), pulled.image_ref()) << "the same manifest under another tag";

  // It runs, named as pulled.
  auto pod = d_->pod_config("pulled");
  std::string pod_id = d_->run_pod(pod);
  ASSERT_FALSE(pod_id.empty());
  auto exited = d_->run_to_exit(pod_id, d_->container_config("from-registry", {"/bin/echo", "pulled-ok"}, name), pod);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code(), 0);
  EXPECT_EQ(exited->image_id(), pulled.image_ref());
  EXPECT_EQ(cri_log_lines(read_text_file(pod.log_directory() + "/from-registry.log")),
            std::vector<std::string>{"pulled-ok"});
  ASSERT_TRUE(d_->remove_pod(pod_id).ok());

  // Removal by one name removes the image with every name (containerd alike;
  // kubelet removes by ID). The imported busybox is this very image, so its name
  // goes too: the tests after this one do not use it.
  ASSERT_TRUE(remove(name).ok());
  EXPECT_FALSE(status(name).has_image());
  EXPECT_FALSE(status(other).has_image());
  EXPECT_FALSE(status("docker.io/library/busybox:latest").has_image());
  EXPECT_TRUE(remove(name).ok()) << "removing what is gone is fine";
  EXPECT_TRUE(status("example.com/test/users:latest").has_image()) << "another image is untouched";

  v1::PullImageResponse none;
  s = pull(open_->host() + "/test/no-such-image:1", &none);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_message().find("no-such-image"), std::string::npos) << s.error_message();
}

TEST_F(CriImagesTest, PullWithCredentials) {
  std::string name = locked_->host() + "/test/private:1.0";
  auto s = pull(name, nullptr);
  EXPECT_FALSE(s.ok()) << "pulled from a registry that wants credentials without any";
  EXPECT_FALSE(s.error_message().empty());
  v1::AuthConfig wrong;
  wrong.set_username(kUser);
  wrong.set_password("not-the-password");
  s = pull(name, nullptr, &wrong);
  EXPECT_FALSE(s.ok()) << "pulled with a wrong password";
  EXPECT_FALSE(status(name).has_image());

  v1::AuthConfig right;
  right.set_username(kUser);
  right.set_password(kPassword);
  v1::PullImageResponse pulled;
  s = pull(name, &pulled, &right);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(status(name).has_image());
  ASSERT_TRUE(remove(name).ok());

  // The same as one base64 "user:password" string, as kubelet may send it.
  v1::AuthConfig encoded;
  encoded.set_auth("cHVsbGVyOnMzY3JldC1wdw==");  // puller:s3cret-pw
  s = pull(name, &pulled, &encoded);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(remove(name).ok());
}

TEST_F(CriImagesTest, ImageFsInfo) {
  v1::ImageFsInfoResponse resp;
  ASSERT_TRUE(d_->images().ImageFsInfo(call_context().get(), {}, &resp).ok());
  ASSERT_GE(resp.image_filesystems_size(), 1);
  const auto& fs = resp.image_filesystems(0);
  EXPECT_TRUE(fs.fs_id().mountpoint().starts_with(d_->root())) << fs.fs_id().mountpoint();
  EXPECT_GT(fs.used_bytes().value(), 1'000'000u) << "the users image (busybox inside) is in it";
  EXPECT_GT(fs.inodes_used().value(), 0u);
  EXPECT_GT(fs.timestamp(), 0);
  EXPECT_GE(resp.container_filesystems_size(), 1);
}

}  // namespace
}  // namespace berth::testing
