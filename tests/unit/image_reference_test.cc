#include "storage/image_reference.h"

#include <gtest/gtest.h>

using berth::storage::ImageReference;

namespace {

std::string normalized(const std::string& text) {
  auto ref = ImageReference::parse(text);
  EXPECT_TRUE(ref.has_value()) << text << ": " << (ref ? "" : ref.error().message);
  return ref ? ref->str() : "";
}

const std::string kDigest = "sha256:" + std::string(64, 'a');

}  // namespace

TEST(ImageReference, NormalisesDockerHubNames) {
  EXPECT_EQ(normalized("busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(normalized("busybox:1.36"), "docker.io/library/busybox:1.36");
  EXPECT_EQ(normalized("library/busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(normalized("someone/app"), "docker.io/someone/app:latest");
  EXPECT_EQ(normalized("index.docker.io/someone/app:2"), "docker.io/someone/app:2");
  EXPECT_EQ(normalized("docker.io/busybox"), "docker.io/library/busybox:latest");
}

TEST(ImageReference, KeepsRegistriesPortsAndDigests) {
  auto ref = ImageReference::parse("127.0.0.1:5000/team/app:v1.2-rc_3");
  ASSERT_TRUE(ref) << ref.error().message;
  EXPECT_EQ(ref->registry, "127.0.0.1:5000");
  EXPECT_EQ(ref->repository, "team/app");
  EXPECT_EQ(ref->tag, "v1.2-rc_3");
  EXPECT_EQ(normalized("localhost/app"), "localhost/app:latest");
  EXPECT_EQ(normalized("registry.example.com/a/b/c"), "registry.example.com/a/b/c:latest");

  auto pinned = ImageReference::parse("quay.io/app@" + kDigest);
  ASSERT_TRUE(pinned) << pinned.error().message;
  EXPECT_TRUE(pinned->tag.empty());
  EXPECT_EQ(pinned->manifest_reference(), kDigest);
  EXPECT_EQ(pinned->str(), "quay.io/app@" + kDigest);

  auto both = ImageReference::parse("busybox:1.0@" + kDigest);
  ASSERT_TRUE(both) << both.error().message;
  EXPECT_EQ(both->tag, "1.0");
  EXPECT_EQ(both->manifest_reference(), kDigest);  // the digest decides what is pulled
}

TEST(ImageReference, RejectsMalformedReferences) {
  for (const std::string& bad : std::vector<std::string>{"", "Busybox", "docker.io/Library/busybox", "busybox:", "busybox:-tag", "a//b", "app@sha256:xyz",
                          "app@md5:" + std::string(32, 'a'), "/app", "app/", "a..b", "-app", "busybox:" + std::string(129, 't'),
                          "registry.example.com/" + std::string(260, 'a')}) {
    auto ref = ImageReference::parse(bad);
    EXPECT_FALSE(ref.has_value()) << "accepted '" << bad << "' as " << ref->str();
  }
  auto upper = ImageReference::parse("MyApp");
  ASSERT_FALSE(upper);
  EXPECT_NE(upper.error().message.find("lowercase"), std::string::npos) << upper.error().message;
}
