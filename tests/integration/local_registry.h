// Test fixtures for registry work, against real software rather than mocks:
//
//  - LocalRegistry: Debian's docker-registry (distribution 2.8) on 127.0.0.1 with a free
//    port and filesystem storage in a temp dir; optional htpasswd Basic auth, TLS with a
//    throwaway CA (and client-certificate checks). Images get in with `skopeo copy`.
//  - FaultProxy: tests/support/registry_fault_proxy.py in front of a LocalRegistry (or
//    used as an HTTP forward proxy): Bearer token auth, injected 5xx/404, hangs, cut
//    bodies, ignored Range, redirects, and a log of every request it saw.
//  - write_oci_image / write_oci_index: a real OCI image layout (gzip tar layers with
//    correct diff_ids) to push.
//
// Typical use:
//   if (!LocalRegistry::available()) GTEST_SKIP() << LocalRegistry::unavailable_reason();
//   LocalRegistry reg;                       // or LocalRegistry reg({.tls = true});
//   ASSERT_TRUE(reg.ok()) << reg.error();
//   auto img = write_oci_image(dir, "v1", {{{"hello.txt", "hi"}}});
//   ASSERT_TRUE(reg.push(img.source(), "demo/app:v1")) << reg.last_output();
//   // pull from reg.host() ("127.0.0.1:PORT"), plain http unless TLS was asked for.
//
// Everything is stopped and removed by the destructors. Child processes get
// PR_SET_PDEATHSIG, so a crashed test leaves no registry behind; that signal follows the
// thread that started them, so start fixtures from the test's own (main) thread.
#pragma once

#include <sys/types.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "storage/digest.h"

namespace berth::testing {

// Output of a helper command run by the fixtures.
struct ToolResult {
  int code = -1;       // exit status, 128+N for signal N, -1 if it could not run
  std::string output;  // stdout and stderr together
};
// Runs argv (argv[0] is a path) with proxy variables removed from its environment,
// killing it after timeout_s.
ToolResult run_tool(const std::vector<std::string>& argv, int timeout_s = 120);

// A fresh directory under $TMPDIR (or /tmp), removed by the destructor.
class RegistryTestDir {
 public:
  explicit RegistryTestDir(const std::string& prefix = "berth-test");
  ~RegistryTestDir();
  RegistryTestDir(const RegistryTestDir&) = delete;
  RegistryTestDir& operator=(const RegistryTestDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct LocalRegistryOptions {
  bool tls = false;          // serve https with a certificate from a throwaway CA
  bool client_auth = false;  // with tls: require a client certificate signed by that CA
  std::string username;      // non-empty: htpasswd (bcrypt) Basic auth with this user
  std::string password;
};

class LocalRegistry {
 public:
  // docker-registry, skopeo, openssl and htpasswd are installed.
  static bool available();
  static std::string unavailable_reason();

  explicit LocalRegistry(LocalRegistryOptions options = {});
  ~LocalRegistry();
  LocalRegistry(const LocalRegistry&) = delete;
  LocalRegistry& operator=(const LocalRegistry&) = delete;

  bool ok() const { return pid_ > 0; }
  const std::string& error() const { return error_; }  // why it did not start

  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url() const { return (options_.tls ? "https://" : "http://") + host(); }
  int port() const { return port_; }
  bool tls() const { return options_.tls; }

  // TLS material (empty without tls). cert_dir() holds ca.crt, client.cert and
  // client.key: Docker's certs.d layout, which skopeo and berth's RegistryHosts read.
  const std::string& ca_file() const { return ca_file_; }
  const std::string& client_cert() const { return client_cert_; }
  const std::string& client_key() const { return client_key_; }
  const std::string& cert_dir() const { return cert_dir_; }

  // Where the registry keeps a blob's bytes, to corrupt them in tests.
  std::string blob_data_path(const storage::Digest& digest) const;
  const std::string& storage_dir() const { return storage_dir_; }

  // skopeo copy <source> docker://<host>/<repo_and_tag>, e.g. source "oci:/dir:tag".
  // all: copy every manifest of an index (--all). format: "", "oci" or "v2s2".
  bool push(const std::string& source, const std::string& repo_and_tag, bool all = false,
            const std::string& format = "");
  const std::string& last_output() const { return last_output_; }  // of the last push

  void stop();  // idempotent

 private:
  bool start();
  bool make_tls_material();

  LocalRegistryOptions options_;
  RegistryTestDir dir_;
  std::string storage_dir_, ca_file_, ca_key_, client_cert_, client_key_, cert_dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::string error_, last_output_;
};

struct FaultProxyOptions {
  std::string upstream;    // "http://127.0.0.1:PORT"; empty: forward proxy only
  std::string token_user;  // non-empty: require Bearer tokens from /token for this user
  std::string token_password;
  bool anonymous_tokens = false;  // /token hands out tokens without credentials
  std::string refresh_token;      // accepted by POST /token (grant_type=refresh_token)
  int fail_first = 0;             // the first N matching requests get fail_status
  int fail_status = 500;
  bool hang = false;            // matching requests never get an answer
  int cut_first = 0;            // the first N matching 200 bodies stop halfway
  bool ignore_range = false;    // drop Range before forwarding
  bool corrupt = false;         // flip the last byte of matching 200 bodies
  bool redirect_blobs = false;  // blob GETs answer 307 to http://localhost:<port>/_storage/...
  std::string match;            // regex on the path the faults apply to (default: under /v2/ but not /v2/)
};

class FaultProxy {
 public:
  static std::string script_path();
  explicit FaultProxy(FaultProxyOptions options);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  bool ok() const { return pid_ > 0; }
  const std::string& error() const { return error_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url() const { return "http://" + host(); }

  // Every request seen so far, one object each: method, path (as sent: absolute URL
  // for forward-proxy requests, host:port for CONNECT), kind ("direct", "forward",
  // "connect", "token", "storage"), authorization, range, status.
  std::vector<nlohmann::json> requests() const;
  // Requests whose path contains `needle`.
  size_t count(const std::string& needle) const;

  void stop();

 private:
  FaultProxyOptions options_;
  RegistryTestDir dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::string log_file_, error_;
};

// ---- OCI image layouts ----

// Files of one layer: path inside the image -> content (regular files, mode 0644;
// parent directories are added).
using TestLayerFiles = std::map<std::string, std::string>;

struct TestImage {
  std::string layout_dir;
  std::string tag;
  std::string manifest;  // JSON as stored
  storage::Digest manifest_digest;
  std::string config;
  storage::Digest config_digest;
  struct Layer {
    storage::Digest digest;   // of the gzip blob
    storage::Digest diff_id;  // of the uncompressed tar
    std::string blob;
  };
  std::vector<Layer> layers;
  // skopeo's name for it: "oci:<layout_dir>:<tag>".
  std::string source() const { return "oci:" + layout_dir + ":" + tag; }
};

// Writes (or adds to) an OCI image layout at `dir`: gzip tar layers, a config with
// matching diff_ids and the given platform, a manifest, and index.json naming it `tag`.
TestImage write_oci_image(const std::string& dir, const std::string& tag, const std::vector<TestLayerFiles>& layers,
                          const std::string& os = "linux", const std::string& arch = "amd64");

// Adds an image index over `images` (already in the layout at `dir`) tagged `tag`.
// Returns the index digest; push with all = true.
storage::Digest write_oci_index(const std::string& dir, const std::string& tag, const std::vector<TestImage>& images);

// Deterministic incompressible bytes, for layers of a given size.
std::string pseudo_random_bytes(size_t size, uint64_t seed);

}  // namespace berth::testing
