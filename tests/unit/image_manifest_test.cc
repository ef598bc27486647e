#include "storage/image_manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "storage/media_types.h"

using namespace berth::storage;
using nlohmann::json;

namespace {

std::string digest_of(char c) { return "sha256:" + std::string(64, c); }

json platform_entry(char c, const std::string& arch, const std::string& variant = "") {
  json p = {{"os", "linux"}, {"architecture", arch}};
  if (!variant.empty()) p["variant"] = variant;
  return {{"mediaType", media_type::kOciManifest}, {"digest", digest_of(c)}, {"size", 100}, {"platform", p}};
}

ImageIndex index_of(std::vector<json> entries) {
  json j = {{"schemaVersion", 2}, {"mediaType", media_type::kOciIndex}, {"manifests", entries}};
  auto index = parse_index(j.dump(), media_type::kOciIndex);
  EXPECT_TRUE(index) << index.error().message;
  return index ? *index : ImageIndex{};
}

json manifest_with_layer(const std::string& layer_type) {
  return {{"schemaVersion", 2},
          {"mediaType", media_type::kOciManifest},
          {"config", {{"mediaType", media_type::kOciConfig}, {"digest", digest_of('c')}, {"size", 10}}},
          {"layers", {{{"mediaType", layer_type}, {"digest", digest_of('d')}, {"size", 20}}}}};
}

}  // namespace

TEST(ImageManifest, PicksThePlatformOfThisNode) {
  auto index = index_of({platform_entry('a', "arm64", "v8"), platform_entry('b', "amd64"), platform_entry('c', "arm", "v7")});
  auto amd64 = select_platform(index, *Platform::parse("linux/amd64"));
  ASSERT_TRUE(amd64) << amd64.error().message;
  EXPECT_EQ(amd64->digest.str(), digest_of('b'));
  auto arm64 = select_platform(index, *Platform::parse("linux/aarch64"));
  ASSERT_TRUE(arm64) << arm64.error().message;
  EXPECT_EQ(arm64->digest.str(), digest_of('a'));
  auto armv7 = select_platform(index, *Platform::parse("linux/arm/v7"));
  ASSERT_TRUE(armv7);
  EXPECT_EQ(armv7->digest.str(), digest_of('c'));
}

TEST(ImageManifest, PrefersExactVariantAndAcceptsOlderAmd64Levels) {
  auto index = index_of({platform_entry('a', "amd64", "v3"), platform_entry('b', "amd64"), platform_entry('c', "amd64", "v2")});
  auto v2 = select_platform(index, *Platform::parse("linux/amd64/v2"));
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->digest.str(), digest_of('c'));
  auto v1 = select_platform(index, *Platform::parse("linux/amd64"));
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->digest.str(), digest_of('b'));
  auto only_v3 = index_of({platform_entry('a', "amd64", "v3")});
  EXPECT_FALSE(select_platform(only_v3, *Platform::parse("linux/amd64")));
}

TEST(ImageManifest, MissingPlatformNamesWhatIsOffered) {
  auto index = index_of({platform_entry('a', "arm64"), platform_entry('b', "s390x")});
  auto r = select_platform(index, *Platform::parse("linux/amd64"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_NE(r.error().message.find("linux/arm64"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("linux/amd64"), std::string::npos) << r.error().message;
}

TEST(ImageManifest, ParsesEveryKnownLayerType) {
  for (auto type : {media_type::kOciLayer, media_type::kOciLayerGzip, media_type::kOciLayerZstd, media_type::kDockerLayer,
                    media_type::kDockerLayerGzip}) {
    auto m = parse_manifest(manifest_with_layer(std::string(type)).dump(), media_type::kOciManifest);
    ASSERT_TRUE(m) << type << ": " << m.error().message;
    ASSERT_EQ(m->layers.size(), 1u);
    EXPECT_EQ(m->layers[0].size, 20);
  }
}

TEST(ImageManifest, RejectsUnknownMediaTypes) {
  auto m = parse_manifest(manifest_with_layer("application/vnd.example.weird+tar").dump(), media_type::kOciManifest);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("application/vnd.example.weird+tar"), std::string::npos);

  json helm = manifest_with_layer(std::string(media_type::kOciLayerGzip));
  helm["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json";
  EXPECT_FALSE(parse_manifest(helm.dump(), media_type::kOciManifest));

  EXPECT_FALSE(detect_manifest_type(R"({"schemaVersion":2,"mediaType":"application/x-unknown"})", ""));
  EXPECT_FALSE(detect_manifest_type(R"({"schemaVersion":1,"name":"x"})", ""));
  auto by_header = detect_manifest_type("{}", std::string(media_type::kDockerManifest) + "; charset=utf-8");
  ASSERT_TRUE(by_header);
  EXPECT_EQ(*by_header, media_type::kDockerManifest);
  auto by_shape = detect_manifest_type(R"({"schemaVersion":2,"manifests":[]})", "");
  ASSERT_TRUE(by_shape);
  EXPECT_EQ(*by_shape, media_type::kOciIndex);
}

TEST(ImageManifest, RejectsMalformedDescriptors) {
  json bad_digest = manifest_with_layer(std::string(media_type::kOciLayerGzip));
  bad_digest["layers"][0]["digest"] = "sha256:../../etc/passwd";
  EXPECT_FALSE(parse_manifest(bad_digest.dump(), media_type::kOciManifest));
  json negative = manifest_with_layer(std::string(media_type::kOciLayerGzip));
  negative["layers"][0]["size"] = -1;
  EXPECT_FALSE(parse_manifest(negative.dump(), media_type::kOciManifest));
  json contradicting = manifest_with_layer(std::string(media_type::kOciLayerGzip));
  EXPECT_FALSE(parse_manifest(contradicting.dump(), media_type::kDockerManifest));
  EXPECT_FALSE(parse_manifest("not json", media_type::kOciManifest));
}
