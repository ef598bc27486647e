// Unit tests for runtime/oci/default_spec: `berth spec` output parses, validates and
// matches what `runc spec` writes field by field (hostname aside).
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "runtime/oci/default_spec.h"
#include "runtime/oci/spec_parser.h"

namespace berth::oci {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class DefaultSpecTempDir {
 public:
  DefaultSpecTempDir() {
    char tmpl[] = "/tmp/berth-default-spec-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~DefaultSpecTempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// runc from PATH, else Debian's /usr/sbin/runc; "" when absent.
std::string find_runc() {
  if (const char* path = ::getenv("PATH")) {
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty() && ::access((dir + "/runc").c_str(), X_OK) == 0) return dir + "/runc";
  }
  for (const char* p : {"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

// Runs `runc spec [extra]` inside a fresh dir and returns config.json parsed.
json runc_spec(const std::string& runc, const std::string& extra) {
  DefaultSpecTempDir dir;
  std::string cmd = "cd '" + dir.path() + "' && '" + runc + "' spec " + extra + " >/dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << cmd;
  std::ifstream in(dir.path() + "/config.json");
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "runc wrote no parsable config.json";
  return j;
}

TEST(DefaultSpec, ParsesAndValidates) {
  std::string text = default_spec_json(false);
  auto spec = parse_spec(text);
  ASSERT_TRUE(spec.has_value()) << spec.error().message;
  DefaultSpecTempDir bundle;
  // No rootfs yet: validation must fail on the rootfs, and only on it.
  auto missing = validate_spec(*spec, bundle.path());
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error().message, ::testing::HasSubstr("rootfs"));
  fs::create_directories(bundle.path() + "/rootfs");
  auto r = validate_spec(*spec, bundle.path());
  EXPECT_TRUE(r.has_value()) << r.error().message;

  EXPECT_EQ(spec->hostname, "berth");
  EXPECT_EQ(spec->root.path, "rootfs");
  EXPECT_TRUE(spec->root.readonly);
  ASSERT_TRUE(spec->process);
  EXPECT_TRUE(spec->process->terminal);
  EXPECT_THAT(spec->process->args, ::testing::ElementsAre("sh"));
  ASSERT_TRUE(spec->linux);
  EXPECT_NE(spec->find_namespace("network"), nullptr);
  EXPECT_NE(spec->find_namespace("uts"), nullptr);
  EXPECT_EQ(spec->find_namespace("user"), nullptr);
  ASSERT_TRUE(spec->linux->resources);
  ASSERT_EQ(spec->linux->resources->devices.size(), 1u);
  EXPECT_FALSE(spec->linux->resources->devices[0].allow);
  EXPECT_EQ(spec->linux->resources->devices[0].access, "rwm");
  ASSERT_EQ(spec->mounts.size(), 7u);
  EXPECT_EQ(spec->mounts.back().destination, "/sys/fs/cgroup");
}

TEST(DefaultSpec, OutputIsTabIndentedWithTrailingNewline) {
  std::string text = default_spec_json(false);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.rfind("{\n\t\"", 0), 0u) << text.substr(0, 40);
  EXPECT_EQ(text.find("\n  "), std::string::npos) << "indented with spaces";
  EXPECT_EQ(default_spec_json(true, 5, 6).back(), '\n');
}

TEST(DefaultSpec, MatchesRuncSpec) {
  std::string runc = find_runc();
  if (runc.empty()) GTEST_SKIP() << "runc is not installed: nothing to compare `berth spec` with";
  json theirs = runc_spec(runc, "");
  ASSERT_TRUE(theirs.is_object());
  json ours = json::parse(default_spec_json(false));
  EXPECT_EQ(theirs.value("hostname", ""), "runc");
  EXPECT_EQ(ours.value("hostname", ""), "berth");
  theirs["hostname"] = "berth";
  // Section by section first, so a difference says where it is.
  for (auto& [key, value] : theirs.items()) {
    ASSERT_TRUE(ours.contains(key)) << "berth spec lacks " << key;
    EXPECT_EQ(ours[key], value) << key << ":\n berth: " << ours[key].dump() << "\n runc:  " << value.dump();
  }
  for (auto& [key, value] : ours.items()) EXPECT_TRUE(theirs.contains(key)) << "berth spec adds " << key;
  EXPECT_EQ(ours, theirs) << json::diff(theirs, ours).dump(1);
}

TEST(DefaultSpec, RootlessHasUserNamespaceWithCallerMapped) {
  std::string text = default_spec_json(true, 1234, 567);
  auto spec = parse_spec(text);
  ASSERT_TRUE(spec.has_value()) << spec.error().message;
  DefaultSpecTempDir bundle;
  fs::create_directories(bundle.path() + "/rootfs");
  auto r = validate_spec(*spec, bundle.path());
  EXPECT_TRUE(r.has_value()) << r.error().message;

  const Namespace* user = spec->find_namespace("user");
  ASSERT_NE(user, nullptr);
  EXPECT_EQ(user->path, "");
  EXPECT_EQ(spec->find_namespace("network"), nullptr);  // no netns an unprivileged user could wire up
  ASSERT_TRUE(spec->linux);
  ASSERT_EQ(spec->linux->uid_mappings.size(), 1u);
  EXPECT_EQ(spec->linux->uid_mappings[0].container_id, 0u);
  EXPECT_EQ(spec->linux->uid_mappings[0].host_id, 1234u);
  EXPECT_EQ(spec->linux->uid_mappings[0].size, 1u);
  ASSERT_EQ(spec->linux->gid_mappings.size(), 1u);
  EXPECT_EQ(spec->linux->gid_mappings[0].container_id, 0u);
  EXPECT_EQ(spec->linux->gid_mappings[0].host_id, 567u);
  EXPECT_EQ(spec->linux->gid_mappings[0].size, 1u);

  for (auto& m : spec->mounts) {
    EXPECT_NE(m.destination, "/sys/fs/cgroup");
    if (m.destination == "/dev/pts") {
      // gid=5 names a group that is not mapped in the rootless user namespace.
      EXPECT_THAT(m.options, ::testing::Not(::testing::Contains("gid=5")));
    }
    if (m.destination == "/sys") {
      EXPECT_EQ(m.source, "/sys");
      EXPECT_THAT(m.options, ::testing::Contains("rbind"));
    }
  }
  ASSERT_EQ(spec->mounts.size(), 6u);
  // No device cgroup rules: an unprivileged user cannot program them.
  EXPECT_FALSE(spec->linux->resources);
}

TEST(DefaultSpec, RootlessDiffersFromRuncOnlyByTheCgroupMount) {
  std::string runc = find_runc();
  if (runc.empty()) GTEST_SKIP() << "runc is not installed: nothing to compare `berth spec --rootless` with";
  json theirs = runc_spec(runc, "--rootless");
  ASSERT_TRUE(theirs.is_object());
  theirs["hostname"] = "berth";
  // runc 1.1 keeps a read-only /sys/fs/cgroup in its rootless spec; berth drops it on
  // purpose. Everything else must match, with runc's mapping of the caller's ids.
  json mounts = json::array();
  for (auto& m : theirs["mounts"])
    if (m.value("destination", "") != "/sys/fs/cgroup") mounts.push_back(m);
  theirs["mounts"] = mounts;
  unsigned uid = theirs["linux"]["uidMappings"][0].value("hostID", 0u);
  unsigned gid = theirs["linux"]["gidMappings"][0].value("hostID", 0u);
  EXPECT_EQ(uid, ::getuid());
  json ours = json::parse(default_spec_json(true, uid, gid));
  EXPECT_EQ(ours, theirs) << json::diff(theirs, ours).dump(1);
}

}  // namespace
}  // namespace berth::oci
