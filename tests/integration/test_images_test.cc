// The test images the image-store tests use (tests/support/make_test_images.py), checked
// with tools that share nothing with berth: skopeo reads the layouts and their digests,
// umoci unpacks them, sha256sum / gzip / zstd recompute blob digests and diff_ids. Also
// checks that two runs give the same bytes (the tests rely on fixed digests).
//
// Needs python3, skopeo, umoci, zstd, sha256sum and /bin/busybox (busybox-static); the
// umoci unpack test needs root (it keeps owners, setuid bits and xattrs).

#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/test_files.h"

#ifndef BERTH_SOURCE_DIR
#error "the integration target defines BERTH_SOURCE_DIR"
#endif

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using berth::testing::slurp;

std::optional<std::string> find_tool(const std::string& name) {
  const char* env = std::getenv("PATH");
  std::string path = std::string(env ? env : "") + ":/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
  std::istringstream in(path);
  for (std::string dir; std::getline(in, dir, ':');)
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return dir + "/" + name;
  return std::nullopt;
}

struct Result {
  int status = -1;
  std::string out, err;
  bool ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  std::string why() const { return "status " + std::to_string(status) + ", stderr: " + err; }
};

// Runs argv with stdout and stderr captured through files in scratch (no pipe deadlocks).
Result run(const std::vector<std::string>& argv, const std::string& scratch) {
  static int serial = 0;
  std::string out = scratch + "/cmd-" + std::to_string(++serial);
  std::string err = out + ".err";
  Result r;
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!std::freopen("/dev/null", "r", stdin) || !std::freopen(out.c_str(), "w", stdout) ||
        !std::freopen(err.c_str(), "w", stderr))
      _exit(126);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  while (::waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
  }
  r.out = slurp(out).value_or("");
  r.err = slurp(err).value_or("");
  ::unlink(out.c_str());
  ::unlink(err.c_str());
  return r;
}

Result sh(const std::string& script, const std::string& scratch) { return run({"bash", "-c", script}, scratch); }

std::string first_word(const std::string& s) { return s.substr(0, s.find_first_of(" \t\n")); }

class TestImages : public ::testing::Test {
 protected:
  static inline std::string tmp, out, skip_reason, setup_error;
  static inline json images;

  static std::string script() { return std::string(BERTH_SOURCE_DIR) + "/tests/support/make_test_images.py"; }

  static Result make_images(const std::string& dir) {
    return run({"python3", script(), "--busybox", "/bin/busybox", "--out", dir, "--docker-archive", "busybox",
                "--oci-archive", "busybox"},
               tmp);
  }

  static void SetUpTestSuite() {
    for (const char* tool : {"python3", "skopeo", "umoci", "zstd", "gzip", "sha256sum", "tar", "bash", "diff"}) {
      if (!find_tool(tool)) {
        skip_reason = std::string("SKIPPING the test image checks: ") + tool + " is not installed";
        std::cerr << "\n*** " << skip_reason << " ***\n";
        return;
      }
    }
    if (::access("/bin/busybox", X_OK) != 0) {
      skip_reason = "SKIPPING the test image checks: no /bin/busybox (install busybox-static)";
      std::cerr << "\n*** " << skip_reason << " ***\n";
      return;
    }
    char tmpl[] = "/tmp/berth-test-images-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      setup_error = "mkdtemp failed";
      return;
    }
    tmp = tmpl;
    out = tmp + "/images";
    Result r = make_images(out);
    if (!r.ok()) {
      setup_error = "make_test_images.py failed: " + r.why();
      return;
    }
    auto text = slurp(out + "/images.json");
    if (!text) {
      setup_error = "no images.json written";
      return;
    }
    images = json::parse(*text, nullptr, false);
    if (images.is_discarded()) setup_error = "images.json is not JSON";
  }

  static void TearDownTestSuite() {
    if (!tmp.empty()) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      tmp.clear();
    }
  }

  void SetUp() override {
    if (!skip_reason.empty()) GTEST_SKIP() << skip_reason;
    ASSERT_TRUE(setup_error.empty()) << setup_error;
  }

  static const json& image(const std::string& name) { return images["images"][name]; }

  static json skopeo_json(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"skopeo", "inspect"};
    argv.insert(argv.end(), args.begin(), args.end());
    Result r = run(argv, tmp);
    EXPECT_TRUE(r.ok()) << "skopeo inspect " << args.back() << ": " << r.why();
    return json::parse(r.out, nullptr, false);
  }

  // sha256 of what a shell command prints, by sha256sum.
  static std::string sha256_of_output(const std::string& command) {
    Result r = sh("set -o pipefail; " + command + " | sha256sum", tmp);
    EXPECT_TRUE(r.ok()) << command << ": " << r.why();
    return "sha256:" + first_word(r.out);
  }

  static std::string blob(const std::string& layout, const std::string& digest) {
    return out + "/" + layout + "/blobs/sha256/" + digest.substr(7);
  }
};

// skopeo's view of every single-manifest image matches images.json: manifest, config and
// layer digests, diff_ids, the config fields, and every tag.
TEST_F(TestImages, SkopeoSeesTheDigestsOfImagesJson) {
  for (const std::string name : {"busybox", "users", "layers", "multitag"}) {
    SCOPED_TRACE(name);
    const json& img = image(name);
    ASSERT_TRUE(img.is_object()) << "images.json has no " << name;
    std::vector<std::string> layers;
    for (const auto& l : img["layers"]) layers.push_back(l["digest"]);
    for (const auto& tag : img["tags"]) {
      std::string ref = "oci:" + out + "/" + name + ":" + tag.get<std::string>();
      json info = skopeo_json({ref});
      EXPECT_EQ(info.value("Digest", ""), img["manifest_digest"]) << ref;
      EXPECT_EQ(info["Layers"].get<std::vector<std::string>>(), layers) << ref;
      EXPECT_EQ(info.value("Architecture", ""), images["host_platform"]["architecture"]) << ref;
      // The raw bytes skopeo reads hash to the digests images.json gives.
      EXPECT_EQ(sha256_of_output("skopeo inspect --raw '" + ref + "'"), img["manifest_digest"]) << ref;
      EXPECT_EQ(sha256_of_output("skopeo inspect --raw --config '" + ref + "'"), img["config_digest"]) << ref;
      json config = skopeo_json({"--config", ref});
      EXPECT_EQ(config["rootfs"]["diff_ids"], img["diff_ids"]) << ref;
      EXPECT_EQ(config["config"], img["config"]) << ref;
    }
  }
  EXPECT_EQ(image("multitag")["tags"], json({"1.0", "1.1", "latest"}));
  EXPECT_EQ(image("multitag")["manifest_digest"], image("busybox")["manifest_digest"]);

  const json& users = image("users")["config"];
  EXPECT_EQ(users["User"], "app");
  EXPECT_EQ(users["WorkingDir"], "/home/app");
  EXPECT_EQ(users["Entrypoint"], json({"/bin/sh", "-c"}));
  EXPECT_EQ(users["Cmd"], json({"id"}));
  EXPECT_EQ(users["StopSignal"], "SIGQUIT");
  EXPECT_TRUE(users["ExposedPorts"].contains("8080/tcp"));
  EXPECT_TRUE(users["Volumes"].contains("/data"));
  EXPECT_NE(std::find(users["Env"].begin(), users["Env"].end(), "FOO=bar"), users["Env"].end());

  std::vector<std::string> types;
  for (const auto& l : image("layers")["layers"]) types.push_back(l["media_type"]);
  EXPECT_EQ(types, (std::vector<std::string>{"application/vnd.oci.image.layer.v1.tar+gzip",
                                             "application/vnd.oci.image.layer.v1.tar+zstd",
                                             "application/vnd.oci.image.layer.v1.tar"}));
}

// The image indexes: skopeo resolves multiarch's index to the host's manifest (the
// busybox one) and finds nothing for this host in armonly.
TEST_F(TestImages, SkopeoResolvesTheIndexes) {
  const json& multi = image("multiarch");
  std::string ref = "oci:" + out + "/multiarch:latest";
  EXPECT_EQ(sha256_of_output("skopeo inspect --raw '" + ref + "'"), multi["index_digest"]);
  Result raw = run({"skopeo", "inspect", "--raw", ref}, tmp);
  json index = json::parse(raw.out, nullptr, false);
  ASSERT_TRUE(index.is_object()) << raw.why();
  EXPECT_EQ(index["mediaType"], "application/vnd.oci.image.index.v1+json");
  std::set<std::string> platforms;
  for (const auto& m : index["manifests"]) {
    std::string p = m["platform"]["os"].get<std::string>() + "/" + m["platform"]["architecture"].get<std::string>();
    if (m["platform"].contains("variant")) p += "/" + m["platform"]["variant"].get<std::string>();
    platforms.insert(p);
    if (m["platform"]["architecture"] == images["host_platform"]["architecture"] && !m["platform"].contains("variant")) {
      EXPECT_EQ(m["digest"], image("busybox")["manifest_digest"]);
    }
  }
  EXPECT_EQ(platforms, (std::set<std::string>{"linux/amd64", "linux/arm64", "linux/arm/v7"}));
  EXPECT_EQ(multi["manifest_digest"], image("busybox")["manifest_digest"]);
  // skopeo picks the host's platform out of the index.
  Result picked = run({"skopeo", "inspect", "--raw", "--config", ref}, tmp);
  json config = json::parse(picked.out, nullptr, false);
  ASSERT_TRUE(config.is_object()) << picked.why();
  EXPECT_EQ(config["architecture"], images["host_platform"]["architecture"]);

  const json& arm = image("armonly");
  ASSERT_EQ(arm["manifests"].size(), 1u);
  EXPECT_EQ(arm["manifests"][0]["platform"]["architecture"], "arm64");
  if (images["host_platform"]["architecture"] != "arm64") {
    Result r = run({"skopeo", "inspect", "oci:" + out + "/armonly:latest"}, tmp);
    EXPECT_FALSE(r.ok()) << "skopeo found an image for this host in armonly: " << r.out;
    EXPECT_NE(r.err.find("no image found"), std::string::npos) << r.err;
    EXPECT_TRUE(arm["manifest_digest"].is_null());
  }
}

// Every blob is named by its sha256, and every layer decompresses (gzip / zstd / none)
// to its diff_id, recomputed by sha256sum.
TEST_F(TestImages, BlobsAndDiffIdsRecomputed) {
  for (const auto& [name, img] : images["images"].items()) {
    SCOPED_TRACE(name);
    std::string blobs = out + "/" + name + "/blobs/sha256";
    Result r = sh("cd '" + blobs + "' && sha256sum *", tmp);
    ASSERT_TRUE(r.ok()) << r.why();
    for (const auto& line : berth::testing::lines_of(r.out)) {
      auto w = berth::testing::words(line);
      ASSERT_EQ(w.size(), 2u) << line;
      EXPECT_EQ(w[0], w[1]) << "blob " << w[1] << " is not named by its content";
    }
    EXPECT_EQ(slurp(out + "/" + name + "/oci-layout").value_or(""), R"({"imageLayoutVersion":"1.0.0"})");
    json index = json::parse(slurp(out + "/" + name + "/index.json").value_or(""), nullptr, false);
    std::vector<std::string> tags;
    for (const auto& m : index["manifests"]) tags.push_back(m["annotations"]["org.opencontainers.image.ref.name"]);
    EXPECT_EQ(json(tags), img["tags"]);
    for (const auto& l : img["layers"]) {
      std::string path = blob(name, l["digest"]), type = l["media_type"];
      std::string cat = type.ends_with("+gzip") ? "gzip -dc" : type.ends_with("+zstd") ? "zstd -dcq" : "cat";
      EXPECT_EQ(sha256_of_output(cat + " '" + path + "'"), l["diff_id"]) << path;
      EXPECT_EQ(static_cast<long>(fs::file_size(path)), l["size"].get<long>()) << path;
    }
  }
}

// umoci unpacks `layers` to exactly the final_view images.json predicts: whiteouts and
// the opaque directory applied, owners, modes (setuid), xattrs, symlinks, hard links.
TEST_F(TestImages, UmociUnpacksTheExpectedFinalView) {
  if (::geteuid() != 0) GTEST_SKIP() << "SKIPPING: umoci unpack keeps owners and xattrs only as root";
  std::string image_dir = out + "/layers";
  std::string bundle = tmp + "/bundle-layers";
  Result r = run({"umoci", "unpack", "--image", image_dir + ":latest", bundle}, tmp);
  if (!r.ok() && r.err.find("zstd") != std::string::npos) {
    // umoci before 0.4.8 cannot read zstd layers: have skopeo (containers/image) recompress
    // them to gzip in a copy of the layout, then unpack that. skopeo checks every blob's
    // digest on the way.
    std::cerr << "note: this umoci cannot read zstd layers; unpacking a gzip copy made by skopeo\n";
    std::string converted = tmp + "/layers-gzip";
    Result c = run({"skopeo", "copy", "--quiet", "--dest-compress", "--dest-compress-format", "gzip",
                    "oci:" + image_dir + ":latest", "oci:" + converted + ":latest"},
                   tmp);
    ASSERT_TRUE(c.ok()) << "skopeo copy to gzip: " << c.why();
    fs::remove_all(bundle);
    r = run({"umoci", "unpack", "--image", converted + ":latest", bundle}, tmp);
  }
  ASSERT_TRUE(r.ok()) << "umoci unpack: " << r.why();
  std::string rootfs = bundle + "/rootfs";
  const json& view = image("layers")["final_view"];

  // The same set of paths, no more, no less.
  std::set<std::string> want, got;
  for (const auto& [p, _] : view["paths"].items()) want.insert(p);
  for (auto it = fs::recursive_directory_iterator(rootfs); it != fs::recursive_directory_iterator(); ++it)
    got.insert(it->path().lexically_relative(rootfs).string());  // not fs::relative: it follows symlinks
  std::vector<std::string> missing, extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(), std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
  EXPECT_TRUE(missing.empty()) << "missing from the rootfs: " << json(missing).dump();
  EXPECT_TRUE(extra.empty()) << "in the rootfs but not expected: " << json(extra).dump();
  for (const auto& p : view["absent"]) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(rootfs + "/" + p.get<std::string>()))) << p << " should be gone";
  }
  for (const char* p : {"data/a", "opt/keep/old", "data/.wh.a", "opt/keep/.wh..wh..opq"}) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(rootfs + "/" + p))) << p;
  }

  for (const auto& [p, attrs] : view["paths"].items()) {
    SCOPED_TRACE(p);
    std::string path = rootfs + "/" + p;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      ADD_FAILURE() << path << " is missing";
      continue;
    }
    std::string type = attrs["type"];
    if (type == "dir") {
      EXPECT_TRUE(S_ISDIR(st.st_mode));
    }
    if (type == "file") {
      EXPECT_TRUE(S_ISREG(st.st_mode));
    }
    if (type == "symlink") {
      ASSERT_TRUE(S_ISLNK(st.st_mode));
      EXPECT_EQ(fs::read_symlink(path).string(), attrs["target"]);
    }
    if (attrs.contains("mode")) {
      EXPECT_EQ(st.st_mode & 07777, std::stoul(attrs["mode"].get<std::string>(), nullptr, 8));
    }
    EXPECT_EQ(st.st_uid, attrs["uid"].get<unsigned>());
    EXPECT_EQ(st.st_gid, attrs["gid"].get<unsigned>());
    if (attrs.contains("content")) {
      EXPECT_EQ(slurp(path).value_or("<unreadable>"), attrs["content"]);
    }
    if (attrs.contains("size")) {
      EXPECT_EQ(static_cast<long>(st.st_size), attrs["size"].get<long>());
    }
    if (attrs.contains("xattrs")) {
      for (const auto& [k, v] : attrs["xattrs"].items()) {
        char buf[256];
        ssize_t n = ::lgetxattr(path.c_str(), k.c_str(), buf, sizeof buf);
        EXPECT_EQ(n >= 0 ? std::string(buf, static_cast<size_t>(n)) : "<missing>", v) << k;
      }
    }
  }
  EXPECT_EQ(sha256_of_output("cat '" + rootfs + "/bin/busybox'"), "sha256:" + images["busybox"]["sha256"].get<std::string>());

  // The hard link pair that no later layer touched shares an inode; data/hard kept the
  // old data/b when layer 3 replaced data/b.
  ASSERT_EQ(view["hardlinks"], json::array({json::array({"data/c", "data/c-hard"})}));
  struct stat c {}, ch {}, b {}, hard {};
  ASSERT_EQ(::lstat((rootfs + "/data/c").c_str(), &c), 0);
  ASSERT_EQ(::lstat((rootfs + "/data/c-hard").c_str(), &ch), 0);
  EXPECT_EQ(c.st_ino, ch.st_ino);
  EXPECT_EQ(c.st_nlink, 2u);
  ASSERT_EQ(::lstat((rootfs + "/data/b").c_str(), &b), 0);
  ASSERT_EQ(::lstat((rootfs + "/data/hard").c_str(), &hard), 0);
  EXPECT_NE(b.st_ino, hard.st_ino);
  EXPECT_EQ(slurp(rootfs + "/data/b").value_or(""), "b v2 changed\n");
  EXPECT_EQ(slurp(rootfs + "/data/hard").value_or(""), "b v1\n");
  EXPECT_EQ(view["paths"]["data/suid"]["mode"], "4755");
  EXPECT_EQ(slurp(rootfs + "/opt/keep/new").value_or(""), "new after opaque\n");

  // users: the home directory belongs to app.
  std::string ubundle = tmp + "/bundle-users";
  Result u = run({"umoci", "unpack", "--image", out + "/users:latest", ubundle}, tmp);
  ASSERT_TRUE(u.ok()) << "umoci unpack users: " << u.why();
  struct stat home {};
  ASSERT_EQ(::lstat((ubundle + "/rootfs/home/app").c_str(), &home), 0);
  EXPECT_EQ(home.st_uid, 1000u);
  EXPECT_EQ(home.st_gid, 1000u);
  EXPECT_NE(slurp(ubundle + "/rootfs/etc/group").value_or("").find("extra:x:2000:app"), std::string::npos);
}

// The archives for the import tests: skopeo reads both, with the digests of the layout.
TEST_F(TestImages, ArchivesReadBySkopeo) {
  const json& bb = image("busybox");
  ASSERT_EQ(bb.value("oci_archive", ""), "busybox.oci.tar");
  ASSERT_EQ(bb.value("docker_archive", ""), "busybox.docker.tar");
  json oci = skopeo_json({"oci-archive:" + out + "/busybox.oci.tar:latest"});
  EXPECT_EQ(oci.value("Digest", ""), bb["manifest_digest"]);
  // docker-archive stores layers uncompressed: its layer digests are the diff_ids.
  json docker = skopeo_json({"docker-archive:" + out + "/busybox.docker.tar"});
  EXPECT_EQ(docker["Layers"], bb["diff_ids"]);
  Result m = run({"tar", "-xOf", out + "/busybox.docker.tar", "manifest.json"}, tmp);
  json manifest = json::parse(m.out, nullptr, false);
  ASSERT_TRUE(manifest.is_array() && manifest.size() == 1) << m.why() << m.out;
  EXPECT_EQ(manifest[0]["RepoTags"], json::array({"docker.io/library/busybox:latest"}));
  EXPECT_EQ(manifest[0]["Config"], bb["config_digest"].get<std::string>().substr(7) + ".json");
}

// A second run writes the same bytes: images.json, every blob, the OCI archive.
TEST_F(TestImages, TwoRunsGiveIdenticalDigests) {
  std::string again = tmp + "/again";
  Result r = make_images(again);
  ASSERT_TRUE(r.ok()) << r.why();
  EXPECT_EQ(slurp(again + "/images.json"), slurp(out + "/images.json"));
  Result d = run({"diff", "-r", "--brief", out, again}, tmp);
  EXPECT_TRUE(d.ok()) << "the two runs differ:\n" << d.out;
  fs::remove_all(again);
}

}  // namespace
