#include "tests/integration/local_registry.h"

#include "tests/support/loopback_port.h"

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#ifndef BERTH_SOURCE_DIR
#error "the integration target defines BERTH_SOURCE_DIR"
#endif

namespace berth::testing {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* const kProxyVars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                  "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};

std::optional<std::string> find_executable(const std::string& name) {
  const char* env = std::getenv("PATH");
  std::istringstream in(std::string(env ? env : "") + ":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
  for (std::string dir; std::getline(in, dir, ':');) {
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return dir + "/" + name;
  }
  return std::nullopt;
}

bool write_text(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  return static_cast<bool>(out);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Child side of a fork: parent death kills it, no proxy settings leak in.
[[noreturn]] void exec_child(const std::vector<std::string>& argv, int out_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (const char* var : kProxyVars) ::unsetenv(var);
  int null = ::open("/dev/null", O_RDONLY);
  ::dup2(null, 0);
  ::dup2(out_fd, 1);
  ::dup2(out_fd, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  _exit(127);
}

pid_t spawn_logged(const std::vector<std::string>& argv, const std::string& log_file) {
  int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) exec_child(argv, fd);
  ::close(fd);
  return pid;
}

// SIGTERM, then SIGKILL if it lingers; reaps the child.
void stop_child(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  auto deadline = Clock::now() + std::chrono::seconds(5);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid = -1;
}

bool exited(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == pid;
}

// ---- OCI layout helpers ----

std::string tar_of(const TestLayerFiles& files) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* data, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  std::set<std::string> dirs;
  for (const auto& [path, content] : files) {
    for (auto slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
      dirs.insert(path.substr(0, slash));
    }
  }
  auto add = [&](const std::string& name, bool dir, const std::string& content) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, dir ? 0755 : 0644);
    archive_entry_set_size(e, dir ? 0 : static_cast<la_int64_t>(content.size()));
    archive_entry_set_mtime(e, 1704067200, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_write_header(a, e);
    if (!dir) archive_write_data(a, content.data(), content.size());
    archive_entry_free(e);
  };
  for (const auto& d : dirs) add(d, true, {});
  for (const auto& [path, content] : files) add(path, false, content);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

std::string gzip_of(const std::string& data) {
  z_stream zs{};
  deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

storage::Digest put_blob(const std::string& dir, const std::string& data) {
  storage::Digest d = storage::sha256_of(data);
  fs::create_directories(dir + "/blobs/sha256");
  write_text(dir + "/blobs/sha256/" + d.hex, data);
  return d;
}

void tag_in_index(const std::string& dir, const std::string& tag, json descriptor) {
  write_text(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  json index = {{"schemaVersion", 2}, {"manifests", json::array()}};
  if (fs::exists(dir + "/index.json")) index = json::parse(read_text(dir + "/index.json"));
  json kept = json::array();
  for (auto& m : index["manifests"]) {
    if (m.value("annotations", json::object()).value("org.opencontainers.image.ref.name", "") != tag) {
      kept.push_back(m);
    }
  }
  descriptor["annotations"] = {{"org.opencontainers.image.ref.name", tag}};
  kept.push_back(descriptor);
  index["manifests"] = kept;
  write_text(dir + "/index.json", index.dump());
}

}  // namespace

ToolResult run_tool(const std::vector<std::string>& argv, int timeout_s) {
  ToolResult r;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return r;
  pid_t pid = ::fork();
  if (pid < 0) return r;
  if (pid == 0) exec_child(argv, pipe_fds[1]);
  ::close(pipe_fds[1]);
  auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      r.output += "\n[killed after " + std::to_string(timeout_s) + " s]";
      break;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000))) < 0 && errno != EINTR) break;
    if (p.revents & (POLLIN | POLLHUP)) {
      ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
      if (n <= 0) break;
      r.output.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

RegistryTestDir::RegistryTestDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
  if (::mkdtemp(pattern.data())) path_ = pattern;
}

RegistryTestDir::~RegistryTestDir() {
  std::error_code ec;
  if (!path_.empty()) fs::remove_all(path_, ec);
}

// ---- LocalRegistry ----

bool LocalRegistry::available() { return unavailable_reason().empty(); }

std::string LocalRegistry::unavailable_reason() {
  std::string missing;
  for (const char* tool : {"docker-registry", "skopeo", "openssl", "htpasswd", "python3"}) {
    if (!find_executable(tool)) missing += std::string(missing.empty() ? "" : ", ") + tool;
  }
  if (missing.empty()) return {};
  return "registry tests need " + missing +
         " (apt-get install docker-registry skopeo openssl apache2-utils python3); SKIPPED";
}

LocalRegistry::LocalRegistry(LocalRegistryOptions options) : options_(std::move(options)), dir_("berth-registry") {
  if (dir_.path().empty()) {
    error_ = "cannot make a temp dir";
    return;
  }
  if (!available()) {
    error_ = unavailable_reason();
    return;
  }
  start();
}

LocalRegistry::~LocalRegistry() { stop(); }

void LocalRegistry::stop() { stop_child(pid_); }

bool LocalRegistry::make_tls_material() {
  const std::string& d = dir_.path();
  cert_dir_ = d + "/certs";
  fs::create_directories(cert_dir_);
  ca_file_ = cert_dir_ + "/ca.crt";
  ca_key_ = d + "/ca.key";
  client_cert_ = cert_dir_ + "/client.cert";
  client_key_ = cert_dir_ + "/client.key";
  write_text(d + "/server.ext",
             "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
             "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  write_text(d + "/client.ext",
             "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
  const std::vector<std::vector<std::string>> steps = {
      {"openssl",
       "req",
       "-x509",
       "-newkey",
       "ec",
       "-pkeyopt",
       "ec_paramgen_curve:prime256v1",
       "-nodes",
       "-keyout",
       ca_key_,
       "-out",
       ca_file_,
       "-days",
       "2",
       "-subj",
       "/CN=berth test CA",
       "-addext",
       "basicConstraints=critical,CA:TRUE",
       "-addext",
       "keyUsage=critical,keyCertSign,cRLSign"},
      {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
       d + "/server.key", "-out", d + "/server.csr", "-subj", "/CN=127.0.0.1"},
      {"openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", ca_file_, "-CAkey", ca_key_, "-CAcreateserial",
       "-out", d + "/server.crt", "-days", "2", "-extfile", d + "/server.ext"},
      {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", client_key_,
       "-out", d + "/client.csr", "-subj", "/CN=berth test client"},
      {"openssl", "x509", "-req", "-in", d + "/client.csr", "-CA", ca_file_, "-CAkey", ca_key_, "-CAcreateserial",
       "-out", client_cert_, "-days", "2", "-extfile", d + "/client.ext"},
  };
  for (const auto& step : steps) {
    ToolResult r = run_tool(step, 60);
    if (r.code != 0) {
      error_ = "openssl failed: " + r.output;
      return false;
    }
  }
  return true;
}

bool LocalRegistry::start() {
  const std::string& d = dir_.path();
  storage_dir_ = d + "/data";
  fs::create_directories(storage_dir_);
  if (options_.tls && !make_tls_material()) return false;
  std::string auth;
  if (!options_.username.empty()) {
    ToolResult r = run_tool({"htpasswd", "-Bbn", options_.username, options_.password}, 60);
    if (r.code != 0) {
      error_ = "htpasswd failed: " + r.output;
      return false;
    }
    write_text(d + "/htpasswd", r.output);
    auth = "auth:\n  htpasswd:\n    realm: berth-test\n    path: " + d + "/htpasswd\n";
  }
  for (int tries = 0; tries < 3; ++tries) {
    port_ = free_loopback_port();
    std::string config =
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        "storage:\n  filesystem:\n    rootdirectory: " +
        storage_dir_ +
        "\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n"
        "http:\n  addr: 127.0.0.1:" +
        std::to_string(port_) + "\n  secret: berth-test-secret\n";
    if (options_.tls) {
      config += "  tls:\n    certificate: " + d + "/server.crt\n    key: " + d + "/server.key\n";
      if (options_.client_auth) config += "    clientcas:\n      - " + ca_file_ + "\n";
    }
    config += auth;
    write_text(d + "/config.yml", config);
    std::string log = d + "/registry.log";
    pid_ = spawn_logged({"docker-registry", "serve", d + "/config.yml"}, log);
    if (pid_ < 0) {
      error_ = "cannot start docker-registry";
      return false;
    }
    auto deadline = Clock::now() + std::chrono::seconds(15);
    while (Clock::now() < deadline) {
      if (exited(pid_)) {
        pid_ = -1;
        break;
      }
      if (loopback_port_open(port_)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop();
    error_ = "docker-registry did not come up on port " + std::to_string(port_) + ": " + read_text(log);
  }
  return false;
}

std::string LocalRegistry::blob_data_path(const storage::Digest& digest) const {
  return storage_dir_ + "/docker/registry/v2/blobs/" + digest.algorithm + "/" + digest.hex.substr(0, 2) + "/" +
         digest.hex + "/data";
}

bool LocalRegistry::push(const std::string& source, const std::string& repo_and_tag, bool all,
                         const std::string& format) {
  std::vector<std::string> argv = {"skopeo", "--insecure-policy", "copy", "--retry-times", "2"};
  if (all) argv.push_back("--all");
  if (!format.empty()) argv.insert(argv.end(), {"--format", format});
  if (options_.tls) {
    argv.insert(argv.end(), {"--dest-cert-dir", cert_dir_});
  } else {
    argv.push_back("--dest-tls-verify=false");
  }
  if (!options_.username.empty())
    argv.insert(argv.end(), {"--dest-creds", options_.username + ":" + options_.password});
  argv.push_back(source);
  argv.push_back("docker://" + host() + "/" + repo_and_tag);
  ToolResult r = run_tool(argv, 120);
  last_output_ = r.output;
  return r.code == 0;
}

// ---- FaultProxy ----

std::string FaultProxy::script_path() {
  return std::string(BERTH_SOURCE_DIR) + "/tests/support/registry_fault_proxy.py";
}

FaultProxy::FaultProxy(FaultProxyOptions options) : options_(std::move(options)), dir_("berth-fault-proxy") {
  std::string port_file = dir_.path() + "/port";
  log_file_ = dir_.path() + "/requests.jsonl";
  std::vector<std::string> argv = {"python3", script_path(), "--port-file", port_file, "--log", log_file_};
  auto opt = [&](const std::string& flag, const std::string& value) {
    argv.push_back(flag);
    argv.push_back(value);
  };
  if (!options_.upstream.empty()) opt("--upstream", options_.upstream);
  if (!options_.token_user.empty()) opt("--token-auth", options_.token_user + ":" + options_.token_password);
  if (options_.anonymous_tokens) argv.push_back("--anonymous-tokens");
  if (!options_.refresh_token.empty()) opt("--refresh-token", options_.refresh_token);
  if (options_.fail_first > 0) opt("--fail-first", std::to_string(options_.fail_first));
  opt("--fail-status", std::to_string(options_.fail_status));
  if (options_.hang) argv.push_back("--hang");
  if (options_.cut_first > 0) opt("--cut-first", std::to_string(options_.cut_first));
  if (options_.ignore_range) argv.push_back("--ignore-range");
  if (options_.corrupt) argv.push_back("--corrupt");
  if (options_.redirect_blobs) argv.push_back("--redirect-blobs");
  if (!options_.match.empty()) opt("--match", options_.match);
  std::string out = dir_.path() + "/proxy.out";
  pid_ = spawn_logged(argv, out);
  if (pid_ < 0) {
    error_ = "cannot start python3";
    return;
  }
  auto deadline = Clock::now() + std::chrono::seconds(15);
  while (Clock::now() < deadline) {
    std::string port = read_text(port_file);
    if (!port.empty() && port.back() == '\n') {
      port_ = std::stoi(port);
      return;
    }
    if (exited(pid_)) {
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop();
  error_ = "fault proxy did not start: " + read_text(out);
}

FaultProxy::~FaultProxy() { stop(); }

void FaultProxy::stop() { stop_child(pid_); }

std::vector<nlohmann::json> FaultProxy::requests() const {
  std::vector<json> out;
  std::istringstream in(read_text(log_file_));
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

size_t FaultProxy::count(const std::string& needle) const {
  size_t n = 0;
  for (const auto& r : requests()) {
    if (r.value("path", "").find(needle) != std::string::npos) ++n;
  }
  return n;
}

// ---- OCI layouts ----

TestImage write_oci_image(const std::string& dir, const std::string& tag, const std::vector<TestLayerFiles>& layers,
                          const std::string& os, const std::string& arch) {
  TestImage img;
  img.layout_dir = dir;
  img.tag = tag;
  json diff_ids = json::array();
  json layer_descs = json::array();
  for (const auto& files : layers) {
    std::string tar = tar_of(files);
    TestImage::Layer layer;
    layer.diff_id = storage::sha256_of(tar);
    layer.blob = gzip_of(tar);
    layer.digest = put_blob(dir, layer.blob);
    diff_ids.push_back(layer.diff_id.str());
    layer_descs.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                           {"digest", layer.digest.str()},
                           {"size", layer.blob.size()}});
    img.layers.push_back(std::move(layer));
  }
  json config = {{"architecture", arch},
                 {"os", os},
                 {"created", "2024-01-01T00:00:00Z"},
                 {"config", {{"Cmd", {"/bin/sh"}}, {"Env", {"PATH=/usr/bin:/bin"}}}},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  img.config = config.dump();
  img.config_digest = put_blob(dir, img.config);
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"config",
                    {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                     {"digest", img.config_digest.str()},
                     {"size", img.config.size()}}},
                   {"layers", layer_descs}};
  img.manifest = manifest.dump();
  img.manifest_digest = put_blob(dir, img.manifest);
  tag_in_index(dir, tag,
               {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                {"digest", img.manifest_digest.str()},
                {"size", img.manifest.size()}});
  return img;
}

storage::Digest write_oci_index(const std::string& dir, const std::string& tag, const std::vector<TestImage>& images) {
  json manifests = json::array();
  for (const auto& img : images) {
    json config = json::parse(img.config);
    manifests.push_back(
        {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
         {"digest", img.manifest_digest.str()},
         {"size", img.manifest.size()},
         {"platform", {{"os", config.value("os", "linux")}, {"architecture", config.value("architecture", "amd64")}}}});
  }
  std::string index =
      json{{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", manifests}}
          .dump();
  storage::Digest digest = put_blob(dir, index);
  tag_in_index(
      dir, tag,
      {{"mediaType", "application/vnd.oci.image.index.v1+json"}, {"digest", digest.str()}, {"size", index.size()}});
  return digest;
}

std::string pseudo_random_bytes(size_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

}  // namespace berth::testing
