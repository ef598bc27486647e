// RegistryClient against Debian's real docker-registry (distribution 2.8), with images
// pushed by skopeo, and against tests/support/registry_fault_proxy.py for what a
// well-behaved registry never does: token auth, 5xx, hangs, cut bodies, redirects,
// proxies. Needs docker-registry, skopeo, openssl, htpasswd and python3; skips
// (loudly) without them.

#include "storage/registry_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "storage/content_store.h"
#include "tests/integration/local_registry.h"

namespace {

namespace fs = std::filesystem;
using namespace berth::storage;
using berth::testing::FaultProxy;
using berth::testing::FaultProxyOptions;
using berth::testing::LocalRegistry;
using berth::testing::LocalRegistryOptions;
using berth::testing::pseudo_random_bytes;
using berth::testing::RegistryTestDir;
using berth::testing::TestImage;
using berth::testing::write_oci_image;
using Clock = std::chrono::steady_clock;

// Sets or clears environment variables for one test and puts them back afterwards.
class ScopedEnv {
 public:
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }
  void set(const std::string& name, const std::optional<std::string>& value) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  void clear_proxies() {
    for (const char* v :
         {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"}) {
      set(v, std::nullopt);
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

RegistryClientOptions fast_options() {
  RegistryClientOptions o;
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.stall_timeout = std::chrono::milliseconds(5000);
  o.max_attempts = 3;
  o.backoff_base = std::chrono::milliseconds(10);
  o.backoff_cap = std::chrono::milliseconds(50);
  return o;
}

// A port nothing listens on (bound, then closed).
int dead_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class RegistryClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!LocalRegistry::available()) return;
    registry_ = new LocalRegistry();
    images_ = new RegistryTestDir("berth-registry-images");
    if (!registry_->ok()) return;
    // Three layers: small, 1.5 MiB (for cut and resume), and a nested directory.
    image_ = new TestImage(write_oci_image(images_->path() + "/app", "v1",
                                           {{{"etc/hello", "hello\n"}},
                                            {{"data/big.bin", pseudo_random_bytes(1536 * 1024, 1)}},
                                            {{"usr/share/doc/a/b.txt", "nested\n"}}}));
    pushed_ = registry_->push(image_->source(), "test/app:v1");
    push_output_ = registry_->last_output();
  }
  static void TearDownTestSuite() {
    delete image_;
    delete images_;
    delete registry_;
    image_ = nullptr;
    images_ = nullptr;
    registry_ = nullptr;
  }

  void SetUp() override {
    if (!LocalRegistry::available()) GTEST_SKIP() << LocalRegistry::unavailable_reason();
    ASSERT_TRUE(registry_->ok()) << registry_->error();
    ASSERT_TRUE(pushed_) << push_output_;
    env_.clear_proxies();
    auto store = ContentStore::open(tmp_.path() + "/store");
    ASSERT_TRUE(store) << store.error().message;
    store_.emplace(std::move(*store));
  }

  // Client reaching `registries` over plain http, with an optional hosts dir.
  static RegistryClient client(const std::vector<std::string>& insecure, const std::string& hosts_dir = "",
                               RegistryClientOptions options = fast_options()) {
    RegistryHosts hosts;
    if (!hosts_dir.empty()) hosts = *RegistryHosts::load(hosts_dir);
    for (const auto& r : insecure) hosts.add_insecure(r);
    return RegistryClient(std::move(hosts), options);
  }

  // Downloads a blob into the store and commits it.
  berth::Result<> pull_blob(RegistryClient& c, const std::string& registry, const std::string& repo,
                            const Digest& digest, int64_t size, const RegistryCredentials& creds = {},
                            const BlobProgressFn& progress = {}) {
    auto writer = BERTH_TRY(store_->writer(digest, size));
    BERTH_TRY_VOID(c.fetch_blob(registry, repo, digest, size, writer, creds, progress));
    return writer.commit();
  }

  const TestImage::Layer& big_layer() const { return image_->layers[1]; }

  static LocalRegistry* registry_;
  static RegistryTestDir* images_;
  static TestImage* image_;
  static bool pushed_;
  static std::string push_output_;

  ScopedEnv env_;
  RegistryTestDir tmp_{"berth-registry-test"};
  std::optional<ContentStore> store_;
};

LocalRegistry* RegistryClientTest::registry_ = nullptr;
RegistryTestDir* RegistryClientTest::images_ = nullptr;
TestImage* RegistryClientTest::image_ = nullptr;
bool RegistryClientTest::pushed_ = false;
std::string RegistryClientTest::push_output_;

TEST_F(RegistryClientTest, ManifestByTagAndByDigest) {
  auto c = client({registry_->host()});
  auto by_tag = c.fetch_manifest(registry_->host(), "test/app", "v1");
  ASSERT_TRUE(by_tag) << by_tag.error().message;
  EXPECT_EQ(by_tag->media_type, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(by_tag->digest, image_->manifest_digest);
  EXPECT_EQ(by_tag->body, image_->manifest);

  auto by_digest = c.fetch_manifest(registry_->host(), "test/app", image_->manifest_digest.str());
  ASSERT_TRUE(by_digest) << by_digest.error().message;
  EXPECT_EQ(by_digest->body, image_->manifest);
  EXPECT_EQ(by_digest->digest, image_->manifest_digest);

  // A registry sending more than the manifest size limit is cut off.
  auto options = fast_options();
  options.max_manifest_size = 100;
  auto big = client({registry_->host()}, "", options).fetch_manifest(registry_->host(), "test/app", "v1");
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, EFBIG) << big.error().message;
}

TEST_F(RegistryClientTest, BlobsStreamIntoTheContentStore) {
  auto c = client({registry_->host()});
  std::vector<BlobProgress> seen;
  for (const auto& layer : image_->layers) {
    seen.clear();
    auto r = pull_blob(c, registry_->host(), "test/app", layer.digest, static_cast<int64_t>(layer.blob.size()), {},
                       [&](const BlobProgress& p) { seen.push_back(p); });
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(store_->contains(layer.digest));
    EXPECT_EQ(slurp(store_->blob_path(layer.digest)), layer.blob);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back().done, static_cast<int64_t>(layer.blob.size()));
    EXPECT_EQ(seen.back().total, static_cast<int64_t>(layer.blob.size()));
    EXPECT_EQ(seen.back().digest, layer.digest);
  }
  auto cfg =
      pull_blob(c, registry_->host(), "test/app", image_->config_digest, static_cast<int64_t>(image_->config.size()));
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(*store_->read_blob(image_->config_digest), image_->config);
}

TEST_F(RegistryClientTest, UnknownTagAndBlobAreEnoentNamingTheUrl) {
  auto c = client({registry_->host()});
  auto m = c.fetch_manifest(registry_->host(), "test/app", "nope");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ENOENT);
  EXPECT_NE(m.error().message.find("pull " + registry_->host() + "/test/app:nope"), std::string::npos)
      << m.error().message;
  EXPECT_NE(m.error().message.find("manifest unknown"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find(registry_->url() + "/v2/test/app/manifests/nope"), std::string::npos)
      << m.error().message;

  auto missing_repo = c.fetch_manifest(registry_->host(), "no/such", "v1");
  ASSERT_FALSE(missing_repo);
  EXPECT_EQ(missing_repo.error().code, ENOENT);

  Digest unknown = sha256_of("not in the registry");
  auto writer = store_->writer(unknown, 19);
  ASSERT_TRUE(writer);
  auto b = c.fetch_blob(registry_->host(), "test/app", unknown, 19, *writer);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ENOENT);
  EXPECT_NE(b.error().message.find("blob unknown"), std::string::npos) << b.error().message;
  EXPECT_EQ(writer->written(), 0);
}

TEST_F(RegistryClientTest, BadReferencesAreRefusedBeforeAnyRequest) {
  auto c = client({registry_->host()});
  EXPECT_EQ(c.fetch_manifest(registry_->host(), "Test/App", "v1").error().code, EINVAL);
  EXPECT_EQ(c.fetch_manifest(registry_->host(), "test/app", "../../x").error().code, EINVAL);
  EXPECT_EQ(c.fetch_manifest(registry_->host(), "test/app", "sha256:1234").error().code, EINVAL);
}

TEST_F(RegistryClientTest, WrongExpectedSizeFailsAndCommitsNothing) {
  auto c = client({registry_->host()});
  const auto& layer = image_->layers[0];
  int64_t real = static_cast<int64_t>(layer.blob.size());
  for (int64_t wrong : {real - 1, real + 1}) {
    auto writer = store_->writer(layer.digest, wrong);
    ASSERT_TRUE(writer);
    auto r = c.fetch_blob(registry_->host(), "test/app", layer.digest, wrong, *writer);
    EXPECT_FALSE(r) << "size " << wrong;
    if (!r) {
      EXPECT_EQ(r.error().code, EIO) << r.error().message;
    } else {
      EXPECT_FALSE(writer->commit());
    }
    EXPECT_FALSE(store_->contains(layer.digest));
  }
}

TEST_F(RegistryClientTest, CorruptBlobInRegistryStorageIsCaughtAtCommit) {
  // A layer of its own so corrupting it leaves the shared image alone.
  auto img = write_oci_image(tmp_.path() + "/corrupt", "v1", {{{"x", pseudo_random_bytes(4096, 99)}}});
  ASSERT_TRUE(registry_->push(img.source(), "test/corrupt:v1")) << registry_->last_output();
  std::string path = registry_->blob_data_path(img.layers[0].digest);
  std::string data = slurp(path);
  ASSERT_EQ(data, img.layers[0].blob);
  data[data.size() / 2] ^= 0x55;
  spit(path, data);

  auto c = client({registry_->host()});
  auto writer = store_->writer(img.layers[0].digest, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(writer);
  ASSERT_TRUE(c.fetch_blob(registry_->host(), "test/corrupt", img.layers[0].digest, static_cast<int64_t>(data.size()),
                           *writer));
  auto committed = writer->commit();
  ASSERT_FALSE(committed);
  EXPECT_NE(committed.error().message.find("digest mismatch"), std::string::npos) << committed.error().message;
  EXPECT_FALSE(store_->contains(img.layers[0].digest));
  EXPECT_TRUE(fs::is_empty(store_->root() + "/ingest"));
}

TEST_F(RegistryClientTest, ManifestNotMatchingItsDigestIsRejected) {
  FaultProxy proxy({.upstream = registry_->url(), .corrupt = true, .match = "/manifests/"});
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  auto c = client({proxy.host()});
  auto m = c.fetch_manifest(proxy.host(), "test/app", image_->manifest_digest.str());
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, EIO);
  EXPECT_NE(m.error().message.find("digest mismatch"), std::string::npos) << m.error().message;
  // By tag there is nothing to compare with: the digest is the body's.
  auto t = c.fetch_manifest(proxy.host(), "test/app", "v1");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_NE(t->digest, image_->manifest_digest);
  EXPECT_EQ(t->digest, sha256_of(t->body));
}

TEST_F(RegistryClientTest, HtpasswdBasicAuth) {
  LocalRegistry secured({.username = "alice", .password = "wonder land"});
  ASSERT_TRUE(secured.ok()) << secured.error();
  ASSERT_TRUE(secured.push(image_->source(), "private/app:v1")) << secured.last_output();
  auto c = client({secured.host()});
  RegistryCredentials good{"alice", "wonder land", "", ""};
  auto m = c.fetch_manifest(secured.host(), "private/app", "v1", good);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->digest, image_->manifest_digest);
  auto b = pull_blob(c, secured.host(), "private/app", image_->layers[0].digest,
                     static_cast<int64_t>(image_->layers[0].blob.size()), good);
  ASSERT_TRUE(b) << b.error().message;

  for (const RegistryCredentials& bad : {RegistryCredentials{"alice", "wrong", "", ""}, RegistryCredentials{}}) {
    auto denied = client({secured.host()}).fetch_manifest(secured.host(), "private/app", "v1", bad);
    ASSERT_FALSE(denied);
    EXPECT_EQ(denied.error().code, EACCES);
    EXPECT_NE(denied.error().message.find("pull " + secured.host() + "/private/app:v1: unauthorized"),
              std::string::npos)
        << denied.error().message;
    EXPECT_NE(denied.error().message.find(secured.url() + "/v2/private/app/manifests/v1"), std::string::npos)
        << denied.error().message;
  }
}

TEST_F(RegistryClientTest, TlsWithCaFromHostsToml) {
  LocalRegistry tls({.tls = true});
  ASSERT_TRUE(tls.ok()) << tls.error();
  ASSERT_TRUE(tls.push(image_->source(), "secure/app:v1")) << tls.last_output();

  // No CA: the system store does not know the test CA.
  auto untrusted = RegistryClient(RegistryHosts(), fast_options()).fetch_manifest(tls.host(), "secure/app", "v1");
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().code, EPROTO) << untrusted.error().message;
  EXPECT_NE(untrusted.error().message.find("https://" + tls.host()), std::string::npos);

  std::string hosts = tmp_.path() + "/hosts";
  spit(hosts + "/" + tls.host() + "/hosts.toml",
       "server = \"https://" + tls.host() + "\"\nca = \"" + tls.ca_file() + "\"\n");
  auto c = client({}, hosts);
  auto m = c.fetch_manifest(tls.host(), "secure/app", "v1");
  ASSERT_TRUE(m) << m.error().message;
  auto b = pull_blob(c, tls.host(), "secure/app", big_layer().digest, static_cast<int64_t>(big_layer().blob.size()));
  ASSERT_TRUE(b) << b.error().message;

  // Docker's certs.d layout (no hosts.toml) works the same, and skip_verify needs no CA.
  std::string certs_d = tmp_.path() + "/certs.d";
  spit(certs_d + "/" + tls.host() + "/ca.crt", slurp(tls.ca_file()));
  EXPECT_TRUE(client({}, certs_d).fetch_manifest(tls.host(), "secure/app", "v1"));
  std::string skip = tmp_.path() + "/skip";
  spit(skip + "/" + tls.host() + "/hosts.toml", "skip_verify = true\n");
  EXPECT_TRUE(client({}, skip).fetch_manifest(tls.host(), "secure/app", "v1"));
}

TEST_F(RegistryClientTest, TlsClientCertificates) {
  LocalRegistry mtls({.tls = true, .client_auth = true});
  ASSERT_TRUE(mtls.ok()) << mtls.error();
  ASSERT_TRUE(mtls.push(image_->source(), "mtls/app:v1")) << mtls.last_output();
  std::string with = tmp_.path() + "/with";
  spit(with + "/" + mtls.host() + "/hosts.toml",
       "ca = \"" + mtls.ca_file() + "\"\nclient = [[\"" + mtls.client_cert() + "\", \"" + mtls.client_key() + "\"]]\n");
  auto ok = client({}, with).fetch_manifest(mtls.host(), "mtls/app", "v1");
  ASSERT_TRUE(ok) << ok.error().message;
  std::string without = tmp_.path() + "/without";
  spit(without + "/" + mtls.host() + "/hosts.toml", "ca = \"" + mtls.ca_file() + "\"\n");
  auto refused = client({}, without).fetch_manifest(mtls.host(), "mtls/app", "v1");
  ASSERT_FALSE(refused);
}

TEST_F(RegistryClientTest, DownMirrorFallsBackToUpstreamQuickly) {
  std::string hosts = tmp_.path() + "/hosts";
  spit(hosts + "/" + registry_->host() + "/hosts.toml",
       "server = \"" + registry_->url() + "\"\n[host.\"http://127.0.0.1:" + std::to_string(dead_port()) +
           "\"]\n  capabilities = [\"pull\", \"resolve\"]\n");
  auto c = client({}, hosts);
  auto start = Clock::now();
  auto m = c.fetch_manifest(registry_->host(), "test/app", "v1");
  ASSERT_TRUE(m) << m.error().message;
  auto b = pull_blob(c, registry_->host(), "test/app", image_->layers[0].digest,
                     static_cast<int64_t>(image_->layers[0].blob.size()));
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

TEST_F(RegistryClientTest, WorkingMirrorIsUsedWithNsAndCapabilities) {
  FaultProxy mirror({.upstream = registry_->url()});
  ASSERT_TRUE(mirror.ok()) << mirror.error();
  std::string hosts = tmp_.path() + "/hosts";
  spit(hosts + "/" + registry_->host() + "/hosts.toml",
       "server = \"" + registry_->url() + "\"\n[host.\"" + mirror.url() + "\"]\n  capabilities = [\"pull\"]\n");
  auto c = client({}, hosts);
  // A pull-only mirror is not trusted with tags...
  ASSERT_TRUE(c.fetch_manifest(registry_->host(), "test/app", "v1"));
  EXPECT_EQ(mirror.count("/manifests/"), 0u);
  // ...but serves content by digest, told which registry it stands for.
  ASSERT_TRUE(c.fetch_manifest(registry_->host(), "test/app", image_->manifest_digest.str()));
  auto b = pull_blob(c, registry_->host(), "test/app", image_->layers[0].digest,
                     static_cast<int64_t>(image_->layers[0].blob.size()));
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(mirror.count("/v2/test/app/manifests/" + image_->manifest_digest.str() + "?ns=127.0.0.1%3A" +
                         std::to_string(registry_->port())),
            1u);
  EXPECT_EQ(mirror.count("/v2/test/app/blobs/" + image_->layers[0].digest.str()), 1u);

  // Nothing may resolve tags: a clear error, no request.
  std::string pull_only = tmp_.path() + "/pull-only";
  spit(pull_only + "/" + registry_->host() + "/hosts.toml",
       "server = \"" + registry_->url() + "\"\ncapabilities = [\"pull\"]\n");
  auto none = client({}, pull_only).fetch_manifest(registry_->host(), "test/app", "v1");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ENOENT);
  EXPECT_NE(none.error().message.find("resolve"), std::string::npos);
}

TEST_F(RegistryClientTest, BearerTokenFlowThroughTokenServer) {
  FaultProxy proxy(
      {.upstream = registry_->url(), .token_user = "bob", .token_password = "pw", .refresh_token = "refresh-xyz"});
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  auto c = client({proxy.host()});
  RegistryCredentials creds{"bob", "pw", "", ""};
  auto m = c.fetch_manifest(proxy.host(), "test/app", "v1", creds);
  ASSERT_TRUE(m) << m.error().message;
  for (const auto& layer : image_->layers) {
    auto b = pull_blob(c, proxy.host(), "test/app", layer.digest, static_cast<int64_t>(layer.blob.size()), creds);
    ASSERT_TRUE(b) << b.error().message;
  }
  // One token for the repository, reused for every later request.
  size_t tokens = 0;
  for (const auto& r : proxy.requests()) {
    if (r["kind"] != "token") continue;
    ++tokens;
    EXPECT_EQ(r["scope"], "repository:test/app:pull");
    EXPECT_EQ(r["service"], "fault-proxy");
    EXPECT_EQ(r["account"], "bob");
    EXPECT_EQ(r["status"], 200);
  }
  EXPECT_EQ(tokens, 1u);
  EXPECT_EQ(proxy.count("/blobs/"), image_->layers.size());  // no 401 round trips for blobs

  auto wrong = client({proxy.host()}).fetch_manifest(proxy.host(), "test/app", "v1", {"bob", "nope", "", ""});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, EACCES);
  EXPECT_NE(wrong.error().message.find("incorrect username or password"), std::string::npos) << wrong.error().message;
  EXPECT_NE(wrong.error().message.find("unauthorized"), std::string::npos) << wrong.error().message;

  auto anonymous = client({proxy.host()}).fetch_manifest(proxy.host(), "test/app", "v1");
  ASSERT_FALSE(anonymous);
  EXPECT_EQ(anonymous.error().code, EACCES);

  // An identity token (CRI identity_token) goes through the OAuth2 refresh grant.
  auto via_refresh = client({proxy.host()}).fetch_manifest(proxy.host(), "test/app", "v1", {"", "", "refresh-xyz", ""});
  ASSERT_TRUE(via_refresh) << via_refresh.error().message;
}

TEST_F(RegistryClientTest, RedirectedBlobsDoNotCarryAuthorization) {
  FaultProxy proxy({.upstream = registry_->url(), .token_user = "bob", .token_password = "pw", .redirect_blobs = true});
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  auto c = client({proxy.host()});
  RegistryCredentials creds{"bob", "pw", "", ""};
  auto b =
      pull_blob(c, proxy.host(), "test/app", big_layer().digest, static_cast<int64_t>(big_layer().blob.size()), creds);
  ASSERT_TRUE(b) << b.error().message;
  bool redirected = false, stored = false;
  for (const auto& r : proxy.requests()) {
    if (r["kind"] == "direct" && r["status"] == 307) {
      redirected = true;
      EXPECT_TRUE(r["authorization"].get<std::string>().starts_with("Bearer ")) << r.dump();
    }
    if (r["kind"] == "storage") {
      stored = true;
      EXPECT_EQ(r["authorization"], "") << r.dump();
    }
  }
  EXPECT_TRUE(redirected);
  EXPECT_TRUE(stored);
}

TEST_F(RegistryClientTest, ServerErrorsAreRetriedThenSucceed) {
  FaultProxy proxy({.upstream = registry_->url(), .fail_first = 2, .fail_status = 503});
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  auto m = client({proxy.host()}).fetch_manifest(proxy.host(), "test/app", "v1");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(proxy.count("/manifests/v1"), 3u);
}

TEST_F(RegistryClientTest, PersistentServerErrorIsEioAfterMaxAttempts) {
  FaultProxy proxy({.upstream = registry_->url(), .fail_first = 1000});
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  auto m = client({proxy.host()}).fetch_manifest(proxy.host(), "test/app", "v1");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, EIO);
  EXPECT_NE(m.error().message.find("server error: injected failure 500"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find("after 3 attempts"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find(proxy.url() + "/v2/test/app/manifests/v1"), std::string::npos);
  EXPECT_EQ(proxy.count("/manifests/v1"), 3u);

  // 404 is not retried.
  FaultProxy missing({.upstream = registry_->url(), .fail_first = 1000, .fail_status = 404});
  ASSERT_TRUE(missing.ok()) << missing.error();
  auto nf = client({missing.host()}).fetch_manifest(missing.host(), "test/app", "v1");
  ASSERT_FALSE(nf);
  EXPECT_EQ(nf.error().code, ENOENT);
  EXPECT_EQ(missing.count("/manifests/v1"), 1u);
}

TEST_F(RegistryClientTest, HangingServerTimesOut) {
  FaultProxy proxy({.upstream = registry_->url(), .hang = true});
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  auto options = fast_options();
  options.stall_timeout = std::chrono::milliseconds(500);
  options.max_attempts = 1;
  auto start = Clock::now();
  auto m = client({proxy.host()}, "", options).fetch_manifest(proxy.host(), "test/app", "v1");
  auto took = Clock::now() - start;
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ETIMEDOUT) << m.error().message;
  EXPECT_NE(m.error().message.find(proxy.url() + "/v2/test/app/manifests/v1"), std::string::npos) << m.error().message;
  EXPECT_LT(took, std::chrono::seconds(4));
}

TEST_F(RegistryClientTest, CutBodyResumesWithRange) {
  FaultProxy proxy({.upstream = registry_->url(), .cut_first = 1, .match = "/blobs/"});
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  auto c = client({proxy.host()});
  int64_t size = static_cast<int64_t>(big_layer().blob.size());
  auto b = pull_blob(c, proxy.host(), "test/app", big_layer().digest, size);
  ASSERT_TRUE(b) << b.error().message;
  auto reqs = proxy.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_TRUE(reqs[0].value("cut", false));
  EXPECT_EQ(reqs[0]["range"], "");
  EXPECT_EQ(reqs[1]["range"], "bytes=" + std::to_string(size / 2) + "-");
  EXPECT_EQ(reqs[1]["status"], 206);
}

TEST_F(RegistryClientTest, ServerIgnoringRangeMakesTheDownloadStartOver) {
  FaultProxy proxy({.upstream = registry_->url(), .cut_first = 1, .ignore_range = true, .match = "/blobs/"});
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  auto c = client({proxy.host()});
  std::vector<int64_t> done;
  auto b = pull_blob(c, proxy.host(), "test/app", big_layer().digest, static_cast<int64_t>(big_layer().blob.size()), {},
                     [&](const BlobProgress& p) { done.push_back(p.done); });
  ASSERT_TRUE(b) << b.error().message;
  auto reqs = proxy.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_NE(reqs[1]["range"], "");
  EXPECT_EQ(reqs[1]["status"], 200);
  EXPECT_NE(std::find(done.begin(), done.end(), 0), done.end());  // progress went back to 0
}

TEST_F(RegistryClientTest, HttpProxyFromEnvironmentAndNoProxy) {
  FaultProxy proxy({});  // a forward proxy only
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  env_.set("http_proxy", proxy.url());
  auto m = client({registry_->host()}).fetch_manifest(registry_->host(), "test/app", "v1");
  ASSERT_TRUE(m) << m.error().message;
  auto reqs = proxy.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0]["kind"], "forward");
  EXPECT_EQ(reqs[0]["path"], registry_->url() + "/v2/test/app/manifests/v1");

  env_.set("NO_PROXY", "localhost,127.0.0.1");
  ASSERT_TRUE(client({registry_->host()}).fetch_manifest(registry_->host(), "test/app", "v1"));
  EXPECT_EQ(proxy.requests().size(), 1u);

  // Upper-case HTTP_PROXY, which libcurl alone ignores, is honoured as Go does.
  env_.set("NO_PROXY", std::nullopt);
  env_.set("http_proxy", std::nullopt);
  env_.set("HTTP_PROXY", proxy.url());
  ASSERT_TRUE(client({registry_->host()}).fetch_manifest(registry_->host(), "test/app", "v1"));
  EXPECT_EQ(proxy.requests().size(), 2u);
  env_.set("no_proxy", "127.0.0.1");
  ASSERT_TRUE(client({registry_->host()}).fetch_manifest(registry_->host(), "test/app", "v1"));
  EXPECT_EQ(proxy.requests().size(), 2u);
}

TEST_F(RegistryClientTest, HttpsProxyTunnelsTls) {
  LocalRegistry tls({.tls = true});
  ASSERT_TRUE(tls.ok()) << tls.error();
  ASSERT_TRUE(tls.push(image_->source(), "secure/app:v1")) << tls.last_output();
  FaultProxy proxy({});
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  std::string hosts = tmp_.path() + "/hosts";
  spit(hosts + "/" + tls.host() + "/hosts.toml", "ca = \"" + tls.ca_file() + "\"\n");
  env_.set("HTTPS_PROXY", proxy.url());
  auto m = client({}, hosts).fetch_manifest(tls.host(), "secure/app", "v1");
  ASSERT_TRUE(m) << m.error().message;
  auto reqs = proxy.requests();
  ASSERT_GE(reqs.size(), 1u);
  EXPECT_EQ(reqs[0]["kind"], "connect");
  EXPECT_EQ(reqs[0]["path"], tls.host());
}

TEST_F(RegistryClientTest, ParallelBlobFetchesShareOneClient) {
  std::vector<berth::testing::TestLayerFiles> layers;
  for (int i = 0; i < 8; ++i) layers.push_back({{"f" + std::to_string(i), pseudo_random_bytes(200 * 1024, 1000 + i)}});
  auto img = write_oci_image(tmp_.path() + "/parallel", "v1", layers);
  ASSERT_TRUE(registry_->push(img.source(), "test/parallel:v1")) << registry_->last_output();
  auto c = client({registry_->host()});
  std::atomic<int> failures{0};
  std::vector<std::string> errors(img.layers.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < img.layers.size(); ++i) {
    threads.emplace_back([&, i] {
      const auto& layer = img.layers[i];
      auto r = pull_blob(c, registry_->host(), "test/parallel", layer.digest, static_cast<int64_t>(layer.blob.size()));
      if (!r) {
        ++failures;
        errors[i] = r.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0) << errors[0];
  for (const auto& layer : img.layers) EXPECT_TRUE(store_->contains(layer.digest));
}

TEST_F(RegistryClientTest, IndexPushedWithAllIsServedAsIndex) {
  auto amd = write_oci_image(tmp_.path() + "/multi", "amd", {{{"a", "amd64"}}}, "linux", "amd64");
  auto arm = write_oci_image(tmp_.path() + "/multi", "arm", {{{"a", "arm64"}}}, "linux", "arm64");
  Digest index = berth::testing::write_oci_index(tmp_.path() + "/multi", "multi", {amd, arm});
  ASSERT_TRUE(registry_->push("oci:" + tmp_.path() + "/multi:multi", "test/multi:v1", true))
      << registry_->last_output();
  auto c = client({registry_->host()});
  auto m = c.fetch_manifest(registry_->host(), "test/multi", "v1");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->media_type, "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(m->digest, index);
  auto arm_manifest = c.fetch_manifest(registry_->host(), "test/multi", arm.manifest_digest.str());
  ASSERT_TRUE(arm_manifest) << arm_manifest.error().message;
  EXPECT_EQ(arm_manifest->body, arm.manifest);
}

}  // namespace
