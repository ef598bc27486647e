// The image store end to end on real parts: test images built from busybox-static,
// Debian's docker-registry on 127.0.0.1 fed by skopeo, overlayfs, SQLite.
#include "storage/image_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/file_util.h"
#include "storage/media_types.h"
#include "tests/integration/local_registry.h"

using namespace berth;
using namespace berth::storage;
using berth::testing::FaultProxy;
using berth::testing::FaultProxyOptions;
using berth::testing::LocalRegistry;
using berth::testing::LocalRegistryOptions;
using berth::testing::RegistryTestDir;
using berth::testing::run_tool;
using nlohmann::json;

namespace {

// Built once: the project's test images, and a registry holding them.
struct Shared {
  std::unique_ptr<RegistryTestDir> images_dir;
  json images;
  std::unique_ptr<LocalRegistry> registry;
  std::string skip_reason;
};
Shared* shared = nullptr;

std::string hex_sha256_of_file(const std::string& path) {
  auto data = read_file(path);
  return data ? sha256_of(*data).hex : "";
}

class ImageStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared = new Shared;
    if (::geteuid() != 0) {
      shared->skip_reason = "needs root: layers are unpacked with owners, devices and trusted xattrs";
      return;
    }
    if (!LocalRegistry::available()) {
      shared->skip_reason = LocalRegistry::unavailable_reason();
      return;
    }
    shared->images_dir = std::make_unique<RegistryTestDir>("berth-images");
    std::string out = shared->images_dir->path();
    auto built = run_tool({"/usr/bin/python3", std::string(BERTH_SOURCE_DIR) + "/tests/support/make_test_images.py",
                           "--busybox", "/bin/busybox", "--out", out, "--docker-archive", "busybox", "--oci-archive",
                           "users"},
                          300);
    if (built.code != 0) {
      shared->skip_reason = "make_test_images.py failed: " + built.output;
      return;
    }
    shared->images = json::parse(*read_file(out + "/images.json"))["images"];
    shared->registry = std::make_unique<LocalRegistry>();
    if (!shared->registry->ok()) {
      shared->skip_reason = "docker-registry did not start: " + shared->registry->error();
      return;
    }
    auto push = [&](const std::string& layout, const std::string& tag, const std::string& repo, bool all) {
      if (!shared->registry->push("oci:" + out + "/" + layout + ":" + tag, repo + ":" + tag, all)) {
        shared->skip_reason = "skopeo push of " + layout + " failed: " + shared->registry->last_output();
      }
    };
    push("busybox", "latest", "test/busybox", false);
    for (auto tag : {"1.0", "1.1", "latest"}) push("multitag", tag, "test/multitag", false);
    push("users", "latest", "test/users", false);
    push("layers", "latest", "test/layers", false);
    push("multiarch", "latest", "test/multiarch", true);
    push("armonly", "latest", "test/armonly", true);
  }
  static void TearDownTestSuite() {
    delete shared;
    shared = nullptr;
  }

  void SetUp() override {
    // A missing prerequisite fails loudly here rather than passing quietly: CI runs as
    // root with the registry packages installed.
    if (!shared->skip_reason.empty()) GTEST_SKIP() << shared->skip_reason;
    root_ = std::make_unique<RegistryTestDir>("berth-store");
    options_.root = root_->path() + "/store";
    options_.registry_config_path = root_->path() + "/certs.d";
    options_.insecure_registries = {registry().host()};
    options_.registry.stall_timeout = std::chrono::milliseconds(3000);
    options_.registry.max_attempts = 2;
    options_.registry.backoff_base = std::chrono::milliseconds(50);
    open();
  }
  void TearDown() override {
    for (auto& m : mounts_) ::umount2(m.c_str(), MNT_DETACH);
    store_.reset();
  }

  void open() {
    store_.reset();
    auto s = ImageStore::open(options_);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }
  LocalRegistry& registry() { return *shared->registry; }
  const json& image(const std::string& name) { return shared->images[name]; }
  std::string ref(const std::string& repo_tag) { return registry().host() + "/" + repo_tag; }

  // Mounts a writable container snapshot of the image and returns its root.
  std::string mount_container(const Image& img, const std::string& key) {
    auto m = store_->snapshotter().prepare(key, img.chain_id);
    EXPECT_TRUE(m) << (m ? "" : m.error().message);
    if (!m) return "";
    std::string target = root_->path() + "/" + key;
    EXPECT_TRUE(make_dirs(target));
    auto r = mount_all(*m, target);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    mounts_.push_back(target);
    return target;
  }

  // What a failed pull may not leave: images, snapshots, blobs, staging or ingest files.
  void expect_store_empty() {
    auto images = store_->list();
    ASSERT_TRUE(images);
    EXPECT_TRUE(images->empty()) << images->size() << " images recorded";
    auto snaps = store_->snapshotter().list();
    ASSERT_TRUE(snaps);
    EXPECT_TRUE(snaps->empty()) << snaps->size() << " snapshots left";
    auto blobs = store_->content().list();
    ASSERT_TRUE(blobs);
    EXPECT_TRUE(blobs->empty()) << blobs->size() << " blobs left";
    for (auto dir : {options_.root + "/snapshots", options_.root + "/content/ingest", options_.root}) {
      DIR* d = ::opendir(dir.c_str());
      ASSERT_NE(d, nullptr) << dir;
      while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        EXPECT_FALSE(name.starts_with("staging-") || name.starts_with("import-") ||
                     (dir.ends_with("ingest") && name[0] != '.'))
            << "left behind: " << dir << "/" << name;
      }
      ::closedir(d);
    }
  }

  std::unique_ptr<RegistryTestDir> root_;
  ImageStoreOptions options_;
  std::unique_ptr<ImageStore> store_;
  std::vector<std::string> mounts_;
};

// Writes a gzip tar layer from (name, type, content/target) entries into memory.
struct TarEntry {
  std::string name;
  char type = 'f';  // f file, d dir, l symlink, h hard link
  std::string data;
};
std::string make_layer(const std::vector<TarEntry>& entries, bool gzip = true) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* buf, const void* data, size_t n) -> la_ssize_t {
        static_cast<std::string*>(buf)->append(static_cast<const char*>(data), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_mtime(entry, 1700000000, 0);
    if (e.type == 'd') {
      archive_entry_set_filetype(entry, AE_IFDIR);
      archive_entry_set_perm(entry, 0755);
    } else if (e.type == 'l') {
      archive_entry_set_filetype(entry, AE_IFLNK);
      archive_entry_set_symlink(entry, e.data.c_str());
      archive_entry_set_perm(entry, 0777);
    } else if (e.type == 'h') {
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_hardlink(entry, e.data.c_str());
      archive_entry_set_perm(entry, 0644);
    } else {
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_perm(entry, 0644);
      archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
    }
    archive_write_header(a, entry);
    if (e.type == 'f') archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

std::string gunzip_for_diff_id(const std::string& blob) {
  // diff_id = sha256 of the uncompressed tar: read it back through libarchive's raw reader.
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  archive_read_open_memory(a, blob.data(), blob.size());
  archive_entry* e = nullptr;
  std::string out;
  if (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  archive_read_free(a);
  return out;
}

// An OCI layout with one image whose layers are given as blobs; media types may lie.
std::string write_layout(const std::string& dir, const std::vector<std::string>& layer_blobs,
                         const std::vector<std::string>& media_types, const std::vector<Digest>& diff_ids) {
  EXPECT_TRUE(make_dirs(dir + "/blobs/sha256"));
  auto put = [&](const std::string& data) {
    Digest d = sha256_of(data);
    EXPECT_TRUE(write_file_atomic(dir + "/blobs/sha256/" + d.hex, data, 0644));
    return d;
  };
  json diff = json::array();
  for (auto& d : diff_ids) diff.push_back(d.str());
  json config = {{"architecture", "amd64"}, {"os", "linux"}, {"rootfs", {{"type", "layers"}, {"diff_ids", diff}}},
                 {"config", {{"Cmd", {"sh"}}}}};
  std::string config_text = config.dump();
  Digest config_digest = put(config_text);
  json layers = json::array();
  for (size_t i = 0; i < layer_blobs.size(); ++i) {
    layers.push_back({{"mediaType", media_types[i]}, {"digest", put(layer_blobs[i]).str()},
                      {"size", layer_blobs[i].size()}});
  }
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", media_type::kOciManifest},
                   {"config", {{"mediaType", media_type::kOciConfig}, {"digest", config_digest.str()}, {"size", config_text.size()}}},
                   {"layers", layers}};
  std::string manifest_text = manifest.dump();
  Digest manifest_digest = put(manifest_text);
  json index = {{"schemaVersion", 2},
                {"mediaType", media_type::kOciIndex},
                {"manifests",
                 {{{"mediaType", media_type::kOciManifest},
                   {"digest", manifest_digest.str()},
                   {"size", manifest_text.size()},
                   {"annotations", {{"org.opencontainers.image.ref.name", "latest"}}}}}}};
  EXPECT_TRUE(write_file_atomic(dir + "/index.json", index.dump(), 0644));
  EXPECT_TRUE(write_file_atomic(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})", 0644));
  return dir;
}

}  // namespace

TEST_F(ImageStoreTest, PullsAnImageAndRecordsItsNames) {
  auto img = store_->pull(ref("test/busybox:latest"));
  ASSERT_TRUE(img) << img.error().message;
  const json& want = image("busybox");
  EXPECT_EQ(img->id, want["config_digest"]);
  EXPECT_EQ(img->manifest_digest, want["manifest_digest"]);
  EXPECT_EQ(img->repo_tags, std::vector<std::string>{ref("test/busybox:latest")});
  EXPECT_EQ(img->repo_digests,
            std::vector<std::string>{ref("test/busybox@") + want["manifest_digest"].get<std::string>()});
  EXPECT_EQ(img->config.defaults.cmd, std::vector<std::string>{"sh"});

  // Every name form finds it, and the unpacked busybox is byte for byte the host's.
  for (auto name : {ref("test/busybox"), ref("test/busybox:latest"), img->repo_digests[0], img->id, img->id.substr(7, 12)}) {
    auto found = store_->get(name);
    ASSERT_TRUE(found) << name << ": " << found.error().message;
    EXPECT_EQ(found->id, img->id);
  }
  std::string rootfs = mount_container(*img, "c1");
  EXPECT_EQ(hex_sha256_of_file(rootfs + "/bin/busybox"), hex_sha256_of_file("/bin/busybox"));
  char target[64] = {};
  ASSERT_GT(::readlink((rootfs + "/bin/sh").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "busybox");

  // A second store opened on the same root (berthctl next to berthd) sees it.
  auto other = ImageStore::open(options_);
  ASSERT_TRUE(other);
  EXPECT_TRUE((*other)->get(ref("test/busybox")));
}

TEST_F(ImageStoreTest, TagsShareOneImageAndRmiUntagsBeforeItRemoves) {
  for (auto tag : {"1.0", "1.1", "latest"}) ASSERT_TRUE(store_->pull(ref("test/multitag:") + tag));
  auto list = store_->list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->front().repo_tags.size(), 3u);

  ASSERT_TRUE(store_->remove(ref("test/multitag:1.0")));
  auto img = store_->get(ref("test/multitag:1.1"));
  ASSERT_TRUE(img);
  EXPECT_EQ(img->repo_tags.size(), 2u);
  EXPECT_FALSE(store_->get(ref("test/multitag:1.0")));
  EXPECT_FALSE(store_->snapshotter().list()->empty());

  ASSERT_TRUE(store_->remove(img->id));  // by ID: every name goes, then GC
  expect_store_empty();
  auto usage = store_->usage();
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->content.bytes, 0);
}

TEST_F(ImageStoreTest, ImageConfigBecomesContainerDefaults) {
  auto img = store_->pull(ref("test/users:latest"));
  ASSERT_TRUE(img) << img.error().message;
  const auto& d = img->config.defaults;
  EXPECT_EQ(d.user, "app");
  EXPECT_EQ(d.working_dir, "/home/app");
  EXPECT_EQ(d.entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
  EXPECT_EQ(d.cmd, std::vector<std::string>{"id"});
  EXPECT_EQ(d.exposed_ports, std::vector<std::string>{"8080/tcp"});
  EXPECT_EQ(d.volumes, std::vector<std::string>{"/data"});
  EXPECT_EQ(d.stop_signal, "SIGQUIT");
  EXPECT_NE(std::find(d.env.begin(), d.env.end(), "FOO=bar"), d.env.end());
  std::string rootfs = mount_container(*img, "c-users");
  auto passwd = read_file(rootfs + "/etc/passwd");
  ASSERT_TRUE(passwd);
  EXPECT_NE(passwd->find("app:x:1000:1000"), std::string::npos) << *passwd;
  struct stat st{};
  ASSERT_EQ(::stat((rootfs + "/home/app").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
}

TEST_F(ImageStoreTest, LayersWithWhiteoutsGiveTheImagesFinalView) {
  ASSERT_TRUE(store_->pull(ref("test/busybox")));
  auto img = store_->pull(ref("test/layers:latest"));
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->layers.size(), 3u);
  // The busybox base layer is shared, not unpacked twice.
  EXPECT_EQ(store_->snapshotter().list()->size(), 3u);

  std::string rootfs = mount_container(*img, "c-layers");
  const json& view = image("layers")["final_view"];
  for (auto& path : view["absent"]) {
    struct stat st{};
    EXPECT_NE(::lstat((rootfs + "/" + path.get<std::string>()).c_str(), &st), 0) << path << " should be gone";
  }
  for (auto& [path, want] : view["paths"].items()) {
    std::string full = rootfs + "/" + path;
    struct stat st{};
    ASSERT_EQ(::lstat(full.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_uid, want["uid"].get<uid_t>()) << path;
    EXPECT_EQ(st.st_gid, want["gid"].get<gid_t>()) << path;
    std::string type = want["type"];
    if (type == "symlink") {
      ASSERT_TRUE(S_ISLNK(st.st_mode)) << path;
      char buf[256] = {};
      ASSERT_GT(::readlink(full.c_str(), buf, sizeof buf - 1), 0);
      EXPECT_EQ(std::string(buf), want["target"].get<std::string>()) << path;
      continue;
    }
    EXPECT_EQ(st.st_mode & 07777, std::stoul(want["mode"].get<std::string>(), nullptr, 8)) << path;
    if (type == "file") {
      ASSERT_TRUE(S_ISREG(st.st_mode)) << path;
      EXPECT_EQ(hex_sha256_of_file(full), want["sha256"].get<std::string>()) << path;
    } else if (type == "dir") {
      EXPECT_TRUE(S_ISDIR(st.st_mode)) << path;
    }
    if (want.contains("xattrs")) {
      for (auto& [name, value] : want["xattrs"].items()) {
        char buf[256] = {};
        ssize_t n = ::lgetxattr(full.c_str(), name.c_str(), buf, sizeof buf);
        ASSERT_GT(n, 0) << path << " lacks " << name;
        EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), value.get<std::string>());
      }
    }
  }
  for (auto& pair : view["hardlinks"]) {
    struct stat a{}, b{};
    ASSERT_EQ(::lstat((rootfs + "/" + pair[0].get<std::string>()).c_str(), &a), 0);
    ASSERT_EQ(::lstat((rootfs + "/" + pair[1].get<std::string>()).c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino) << pair;
  }
}

TEST_F(ImageStoreTest, IndexResolvesToThisNodesPlatform) {
  auto img = store_->pull(ref("test/multiarch"));
  ASSERT_TRUE(img) << img.error().message;
  const json& want = image("multiarch");
  EXPECT_EQ(img->manifest_digest, want["manifest_digest"]);
  // RepoDigests name what the tag resolved to: the index.
  EXPECT_EQ(img->repo_digests,
            std::vector<std::string>{ref("test/multiarch@") + want["index_digest"].get<std::string>()});

  ImageStoreOptions arm = options_;
  arm.platform = *Platform::parse("linux/arm64");
  arm.root = root_->path() + "/arm-store";
  auto arm_store = ImageStore::open(arm);
  ASSERT_TRUE(arm_store);
  auto arm_img = (*arm_store)->pull(ref("test/multiarch"));
  ASSERT_TRUE(arm_img) << arm_img.error().message;
  EXPECT_NE(arm_img->manifest_digest, img->manifest_digest);
  EXPECT_EQ(arm_img->config.architecture, "arm64");
}

TEST_F(ImageStoreTest, MissingPlatformIsAClearErrorAndStoresNothing) {
  auto r = store_->pull(ref("test/armonly"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_NE(r.error().message.find("no match for platform linux/amd64"), std::string::npos) << r.error().message;
  expect_store_empty();
}

TEST_F(ImageStoreTest, UnknownTagAndUnknownRepositoryAreNotFound) {
  auto tag = store_->pull(ref("test/busybox:nope"));
  ASSERT_FALSE(tag);
  EXPECT_EQ(tag.error().code, ENOENT) << tag.error().message;
  auto repo = store_->pull(ref("test/nothing-here"));
  ASSERT_FALSE(repo);
  EXPECT_EQ(repo.error().code, ENOENT) << repo.error().message;
  expect_store_empty();
}

TEST_F(ImageStoreTest, CorruptBlobInTheRegistryIsRejected) {
  RegistryTestDir layout("berth-corrupt");
  auto unique = berth::testing::write_oci_image(layout.path(), "v1", {{{"unique.txt", "corrupt me " + root_->path()}}});
  ASSERT_TRUE(registry().push(unique.source(), "test/corrupt:v1")) << registry().last_output();
  std::string data_path = registry().blob_data_path(unique.layers[0].digest);
  auto bytes = read_file(data_path);
  ASSERT_TRUE(bytes) << data_path;
  std::string flipped = *bytes;
  flipped[flipped.size() / 2] ^= 0x55;
  ASSERT_TRUE(write_file_atomic(data_path, flipped, 0644));

  auto r = store_->pull(ref("test/corrupt:v1"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("digest"), std::string::npos) << r.error().message;
  expect_store_empty();
}

TEST_F(ImageStoreTest, RegistryFaultsFailCleanly) {
  {
    FaultProxy broken({.upstream = registry().url(), .fail_first = 1000, .fail_status = 500});
    ASSERT_TRUE(broken.ok()) << broken.error();
    options_.insecure_registries = {broken.host()};
    open();
    auto r = store_->pull(broken.host() + "/test/busybox");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EIO) << r.error().message;
    expect_store_empty();
  }
  {
    FaultProxy hanging({.upstream = registry().url(), .hang = true, .match = "/blobs/"});
    ASSERT_TRUE(hanging.ok()) << hanging.error();
    options_.insecure_registries = {hanging.host()};
    open();
    auto start = std::chrono::steady_clock::now();
    auto r = store_->pull(hanging.host() + "/test/busybox");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ETIMEDOUT) << r.error().message;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
    expect_store_empty();
  }
  {
    // A body cut halfway is resumed with Range and still verified.
    FaultProxy cutting({.upstream = registry().url(), .cut_first = 1, .match = "/blobs/"});
    ASSERT_TRUE(cutting.ok()) << cutting.error();
    options_.insecure_registries = {cutting.host()};
    open();
    auto r = store_->pull(cutting.host() + "/test/busybox");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_GE(cutting.count("/blobs/"), 2u);
  }
}

TEST_F(ImageStoreTest, BasicAndBearerAuth) {
  LocalRegistry secured({.username = "alice", .password = "s3cret"});
  ASSERT_TRUE(secured.ok()) << secured.error();
  RegistryTestDir layout("berth-auth");
  auto img = berth::testing::write_oci_image(layout.path(), "v1", {{{"auth.txt", "auth"}}});
  ASSERT_TRUE(secured.push(img.source() + "", "test/private:v1")) << secured.last_output();
  options_.insecure_registries = {secured.host()};
  open();
  auto denied = store_->pull(secured.host() + "/test/private:v1", {.username = "alice", .password = "wrong"});
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, EACCES) << denied.error().message;
  auto anonymous = store_->pull(secured.host() + "/test/private:v1");
  ASSERT_FALSE(anonymous);
  EXPECT_EQ(anonymous.error().code, EACCES) << anonymous.error().message;
  expect_store_empty();
  auto ok = store_->pull(secured.host() + "/test/private:v1", {.username = "alice", .password = "s3cret"});
  ASSERT_TRUE(ok) << ok.error().message;

  FaultProxy tokens({.upstream = registry().url(), .token_user = "bob", .token_password = "pw"});
  ASSERT_TRUE(tokens.ok()) << tokens.error();
  options_.insecure_registries = {tokens.host()};
  open();
  auto no_token = store_->pull(tokens.host() + "/test/busybox", {.username = "bob", .password = "bad"});
  ASSERT_FALSE(no_token);
  EXPECT_EQ(no_token.error().code, EACCES) << no_token.error().message;
  auto bearer = store_->pull(tokens.host() + "/test/busybox", {.username = "bob", .password = "pw"});
  ASSERT_TRUE(bearer) << bearer.error().message;
  EXPECT_GE(tokens.count("/token"), 1u);
}

TEST_F(ImageStoreTest, HostileLayersAreRejectedAndLeaveHostAndStoreUntouched) {
  RegistryTestDir sentinel("berth-sentinel");
  ASSERT_TRUE(write_file_atomic(sentinel.path() + "/keep", "original", 0644));
  std::vector<std::vector<TarEntry>> attacks = {
      {{"../escape", 'f', "x"}},
      {{"a/../../escape", 'f', "x"}},
      {{"/abs-escape", 'f', "x"}},
      {{"evil", 'l', sentinel.path()}, {"evil/keep", 'f', "pwned"}},
      {{"evil", 'l', "../../../../../../../.."}, {"evil" + sentinel.path() + "/keep", 'f', "pwned"}},
      {{"steal", 'h', "../../../../../../etc/hostname"}},
      {{"steal", 'h', sentinel.path() + "/keep"}},
  };
  for (size_t i = 0; i < attacks.size(); ++i) {
    std::string blob = make_layer(attacks[i]);
    std::string dir = root_->path() + "/hostile-" + std::to_string(i);
    write_layout(dir, {blob}, {std::string(media_type::kOciLayerGzip)}, {sha256_of(gunzip_for_diff_id(blob))});
    auto r = store_->import(dir, "test/hostile");
    EXPECT_FALSE(r) << "attack " << i << " was accepted";
    expect_store_empty();
    EXPECT_EQ(read_file(sentinel.path() + "/keep").value_or(""), "original") << "attack " << i;
    // Whatever an attack tried to create exists nowhere: not on the host's root, not
    // beside the sentinel, not anywhere in the store or the layouts.
    struct stat st{};
    for (auto host_path : {"/abs-escape", "/escape", "/steal"}) EXPECT_NE(::lstat(host_path, &st), 0) << host_path;
    for (auto& e : std::filesystem::recursive_directory_iterator(root_->path())) {
      std::string name = e.path().filename();
      EXPECT_TRUE(name != "escape" && name != "abs-escape" && name != "pwned" && name != "steal")
          << "attack " << i << " left " << e.path();
    }
    for (auto& e : std::filesystem::directory_iterator(sentinel.path())) {
      EXPECT_EQ(e.path().filename(), "keep") << "attack " << i << " wrote " << e.path();
    }
  }
}

TEST_F(ImageStoreTest, BadLayersAndManifestsStoreNothing) {
  std::string good = make_layer({{"file", 'f', "content"}});
  Digest good_diff = sha256_of(gunzip_for_diff_id(good));
  struct Case {
    std::string what;
    std::string blob;
    std::string media_type;
    Digest diff_id;
  };
  std::vector<Case> cases = {
      {"truncated gzip", good.substr(0, good.size() / 2), std::string(media_type::kOciLayerGzip), good_diff},
      {"corrupt gzip", [&] { std::string b = good; b[b.size() / 2] ^= 0x5a; b[b.size() / 2 + 1] ^= 0x5a; return b; }(),
       std::string(media_type::kOciLayerGzip), good_diff},
      {"wrong diff_id", good, std::string(media_type::kOciLayerGzip), sha256_of("not the tar")},
      {"unknown media type", good, "application/vnd.example.layer.v1.tar+lz4", good_diff},
  };
  for (auto& c : cases) {
    std::string dir = root_->path() + "/bad-" + std::to_string(&c - cases.data());
    write_layout(dir, {c.blob}, {c.media_type}, {c.diff_id});
    auto r = store_->import(dir, "test/bad");
    EXPECT_FALSE(r) << c.what << " was accepted";
    if (!r && c.what == "unknown media type") {
      EXPECT_NE(r.error().message.find("lz4"), std::string::npos) << r.error().message;
    }
    expect_store_empty();
  }
}

TEST_F(ImageStoreTest, ImportsLayoutsOciArchivesAndDockerArchives) {
  std::string dir = shared->images_dir->path();
  auto from_dir = store_->import(dir + "/busybox", "example.com/imported/busybox");
  ASSERT_TRUE(from_dir) << from_dir.error().message;
  ASSERT_EQ(from_dir->size(), 1u);
  EXPECT_EQ(from_dir->front().repo_tags, std::vector<std::string>{"example.com/imported/busybox:latest"});

  auto from_tar = store_->import(dir + "/users.oci.tar", "example.com/imported/users");
  ASSERT_TRUE(from_tar) << from_tar.error().message;
  EXPECT_EQ(from_tar->front().config.defaults.user, "app");

  auto docker = store_->import(dir + "/busybox.docker.tar");
  ASSERT_TRUE(docker) << docker.error().message;
  ASSERT_EQ(docker->size(), 1u);
  // Same config, same image ID: the archive's name joins the one the layout gave it.
  EXPECT_EQ(docker->front().id, from_dir->front().id);
  EXPECT_EQ(docker->front().repo_tags,
            (std::vector<std::string>{"docker.io/library/busybox:latest", "example.com/imported/busybox:latest"}));
  // Same layer content, same diff_id: the docker archive's image sits on the snapshot
  // the OCI import made.
  EXPECT_EQ(docker->front().chain_id, from_dir->front().chain_id);
  EXPECT_EQ(docker->front().manifest_media_type, media_type::kDockerManifest);

  auto unnamed = store_->import(dir + "/busybox");
  ASSERT_FALSE(unnamed);
  EXPECT_NE(unnamed.error().message.find("--name"), std::string::npos) << unnamed.error().message;
}

TEST_F(ImageStoreTest, ConcurrentPullsOfOneImageShareEverything) {
  std::vector<std::thread> threads;
  std::vector<Result<Image>> results(4, fail(EINVAL, "not run"));
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = store_->pull(ref("test/layers")); });
  }
  for (auto& t : threads) t.join();
  for (auto& r : results) ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(store_->list()->size(), 1u);
  EXPECT_EQ(store_->snapshotter().list()->size(), 3u);
}

TEST_F(ImageStoreTest, ContainerSnapshotsOutliveTheirImage) {
  auto img = store_->pull(ref("test/busybox"));
  ASSERT_TRUE(img);
  std::string rootfs = mount_container(*img, "running");
  ASSERT_TRUE(store_->remove(ref("test/busybox")));
  EXPECT_TRUE(store_->list()->empty());
  // The running container's rootfs and the layer under it stay.
  EXPECT_EQ(hex_sha256_of_file(rootfs + "/bin/busybox"), hex_sha256_of_file("/bin/busybox"));
  EXPECT_EQ(store_->snapshotter().list()->size(), 2u);
  auto busy = store_->snapshotter().remove("running");
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, EBUSY);
  ASSERT_EQ(::umount2(rootfs.c_str(), 0), 0);
  mounts_.clear();
  ASSERT_TRUE(store_->snapshotter().remove("running"));
  auto gc = store_->garbage_collect();
  ASSERT_TRUE(gc);
  EXPECT_EQ(gc->snapshots, 1);
  expect_store_empty();
}

TEST_F(ImageStoreTest, BerthctlPullsWithPlainProgressAndManagesImages) {
  std::string berthctl = std::string(BERTHCTL_BINARY);
  std::vector<std::string> base = {berthctl, "--root", options_.root, "--insecure-registry", registry().host()};
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), args.begin(), args.end());
    return run_tool(argv, 120);
  };
  store_.reset();
  auto pull = run({"pull", ref("test/layers")});
  ASSERT_EQ(pull.code, 0) << pull.output;
  EXPECT_NE(pull.output.find("unpacked"), std::string::npos) << pull.output;
  EXPECT_EQ(pull.output.find("\x1b["), std::string::npos) << "escape codes without a terminal";
  auto images = run({"images", "--json"});
  ASSERT_EQ(images.code, 0) << images.output;
  auto parsed = json::parse(images.output.substr(images.output.find('[')));
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0]["id"], image("layers")["config_digest"]);
  auto df = run({"df", "--json"});
  ASSERT_EQ(df.code, 0) << df.output;
  EXPECT_GT(json::parse(df.output.substr(df.output.find('{')))["usedBytes"].get<int64_t>(), 1000000);
  auto missing = run({"rmi", ref("test/nope")});
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.output.find("not found"), std::string::npos) << missing.output;
  auto rmi = run({"rmi", ref("test/layers")});
  ASSERT_EQ(rmi.code, 0) << rmi.output;
  open();
  expect_store_empty();
}
