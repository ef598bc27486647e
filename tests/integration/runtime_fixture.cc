#include "tests/integration/runtime_fixture.h"

#include <cstdlib>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

namespace berth::testing {

std::string RuntimeTest::rootfs_template_;

namespace {

void sh_or_die(const std::string& cmd) {
  int rc = ::system(cmd.c_str());
  ASSERT_EQ(rc, 0) << cmd;
}

}  // namespace

RunResult run_command(const std::vector<std::string>& argv, const std::vector<std::pair<int, int>>& extra_fds) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (auto& [target, source] : extra_fds) ::dup2(source, target);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  // Read until berth exits, not until EOF: a detached container keeps the pipes open.
  RunResult r;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {pidfd, POLLIN, 0}};
  auto drain = [&](int i, bool wait) {
    char buf[4096];
    for (;;) {
      if (!wait) {
        pollfd p{fds[i].fd, POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) return;
      }
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) return;
      (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      if (wait) return;
    }
  };
  for (bool exited = false; !exited;) {
    if (::poll(fds, 3, -1) < 0) break;
    for (int i = 0; i < 2; ++i)
      if (fds[i].revents & POLLIN) drain(i, true);
    exited = fds[2].revents & POLLIN;
  }
  drain(0, false);
  drain(1, false);
  ::close(out[0]);
  ::close(err[0]);
  ::close(pidfd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

void RuntimeTest::SetUpTestSuite() {
  if (::geteuid() != 0 || !rootfs_template_.empty()) return;
  char tmpl[] = "/tmp/berth-itest-rootfs.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  sh_or_die(std::string(BERTH_SOURCE_DIR) + "/packaging/make-busybox-bundle.sh " + dir + "/bundle " + BERTH_BINARY +
            " >/dev/null");
  rootfs_template_ = dir + "/bundle/rootfs";
  // The template serves every suite of this process and goes when the process does.
  static std::string template_dir = dir;
  std::atexit([] { (void)!std::system(("rm -rf '" + template_dir + "'").c_str()); });
}

void RuntimeTest::SetUp() {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: runs real containers (namespaces, cgroups, mounts)";
  ASSERT_FALSE(rootfs_template_.empty()) << "busybox rootfs could not be built (is busybox-static installed?)";
  char tmpl[] = "/tmp/berth-itest.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  tmp_ = tmpl;
  // A user-namespaced container's root must be able to walk to its rootfs.
  ::chmod(tmp_.c_str(), 0755);
  root_ = tmp_ + "/state";
}

void RuntimeTest::TearDown() {
  if (tmp_.empty()) return;
  for (auto& id : ids_) berth({"delete", "--force", id});
  ::system(("rm -rf " + tmp_).c_str());
}

std::string RuntimeTest::unique_id(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::string id = prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  ids_.push_back(id);
  return id;
}

std::string RuntimeTest::make_bundle(const std::vector<std::string>& args,
                                     const std::function<void(nlohmann::json&)>& edit) {
  static std::atomic<int> counter{0};
  std::string bundle = tmp_ + "/bundle" + std::to_string(counter++);
  ::mkdir(bundle.c_str(), 0755);
  ::system(("cp -a " + rootfs_template_ + " " + bundle + "/rootfs").c_str());
  auto spec = run_command({BERTH_BINARY, "spec", "--bundle", bundle});
  EXPECT_EQ(spec.code, 0) << spec.err;
  std::ifstream in(bundle + "/config.json");
  nlohmann::json j = nlohmann::json::parse(in);
  j["process"]["terminal"] = false;
  j["process"]["args"] = args;
  if (edit) edit(j);
  std::ofstream(bundle + "/config.json") << j.dump(1);
  return bundle;
}

RunResult RuntimeTest::berth(std::vector<std::string> args, const std::vector<std::pair<int, int>>& extra_fds) {
  args.insert(args.begin(), {BERTH_BINARY, "--root", root_});
  return run_command(args, extra_fds);
}

bool RuntimeTest::state_dir_exists(const std::string& id) const {
  struct stat st{};
  return ::stat((root_ + "/" + id).c_str(), &st) == 0;
}

bool RuntimeTest::cgroup_exists(const std::string& id) const {
  for (const char* c : {"memory", "pids", "cpu", "freezer", "devices", "systemd", "unified"}) {
    struct stat st{};
    if (::stat((std::string("/sys/fs/cgroup/") + c + "/berth/" + id).c_str(), &st) == 0) return true;
  }
  return false;
}

bool RuntimeTest::alive(int pid, int wait_ms) {
  for (int waited = 0;; waited += 10) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    bool running = !line.empty() && line.find(") Z") == std::string::npos;
    if (!running || waited >= wait_ms) return running;
    ::usleep(10000);
  }
}

nlohmann::json RuntimeTest::state(const std::string& id) {
  auto r = berth({"state", id});
  if (r.code != 0) return nlohmann::json::object({{"status", "missing"}});
  return nlohmann::json::parse(r.out, nullptr, false);
}

}  // namespace berth::testing
