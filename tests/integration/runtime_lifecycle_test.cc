// The runc-compatible lifecycle, driven through the real `berth` binary.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "tests/integration/runtime_fixture.h"

namespace berth::testing {
namespace {

using Lifecycle = RuntimeTest;

TEST_F(Lifecycle, RunPropagatesExitCodeAndSignal) {
  auto id = unique_id("exit");
  auto r = berth({"run", "--bundle", make_bundle(sh("echo out; echo err >&2; exit 7")), id});
  EXPECT_EQ(r.code, 7);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(state_dir_exists(id)) << "a foreground run deletes its container";
  EXPECT_FALSE(cgroup_exists(id));

  // Without a pid namespace the shell is not an init, so it can signal itself.
  auto no_pidns = make_bundle(sh("kill -9 $$"), [](nlohmann::json& j) {
    auto& ns = j["linux"]["namespaces"];
    for (size_t i = 0; i < ns.size(); ++i)
      if (ns[i]["type"] == "pid") ns.erase(i);
  });
  auto killed = berth({"run", "--bundle", no_pidns, unique_id("sig")});
  EXPECT_EQ(killed.code, 128 + SIGKILL);
}

TEST_F(Lifecycle, CreateStartStateKillDelete) {
  auto id = unique_id("life");
  auto bundle = make_bundle({"/bin/sleep", "1000"});
  std::string pid_file = tmp_ + "/pid";
  auto created = berth({"create", "--bundle", bundle, "--pid-file", pid_file, id});
  ASSERT_EQ(created.code, 0) << created.err;
  auto st = state(id);
  EXPECT_EQ(st["status"], "created");
  EXPECT_EQ(st["id"], id);
  EXPECT_EQ(st["ociVersion"], "1.1.0");
  EXPECT_EQ(st["bundle"], bundle);
  int pid = st["pid"];
  std::ifstream pf(pid_file);
  int file_pid = 0;
  pf >> file_pid;
  EXPECT_EQ(file_pid, pid);
  EXPECT_TRUE(cgroup_exists(id));

  auto dup = berth({"create", "--bundle", bundle, id});
  EXPECT_NE(dup.code, 0);
  EXPECT_NE(dup.err.find("already exists"), std::string::npos) << dup.err;

  ASSERT_EQ(berth({"start", id}).code, 0);
  EXPECT_EQ(state(id)["status"], "running");
  EXPECT_NE(berth({"start", id}).code, 0) << "a running container cannot be started again";

  auto listed = berth({"list", "--format", "json"});
  auto list = nlohmann::json::parse(listed.out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], id);
  EXPECT_EQ(list[0]["status"], "running");

  auto refused = berth({"delete", id});
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.err.find("running"), std::string::npos) << refused.err;

  ASSERT_EQ(berth({"kill", id, "KILL"}).code, 0);
  for (int i = 0; i < 100 && state(id)["status"] != "stopped"; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(state(id)["status"], "stopped");
  EXPECT_EQ(state(id)["pid"], 0);
  ASSERT_EQ(berth({"delete", id}).code, 0);
  EXPECT_FALSE(state_dir_exists(id));
  EXPECT_FALSE(cgroup_exists(id));
  EXPECT_FALSE(alive(pid));
  EXPECT_NE(berth({"state", id}).code, 0);
}

TEST_F(Lifecycle, DeleteCreatedContainerKillsItsInit) {
  auto id = unique_id("created");
  ASSERT_EQ(berth({"create", "--bundle", make_bundle({"/bin/true"}), id}).code, 0);
  int pid = state(id)["pid"];
  ASSERT_EQ(berth({"delete", id}).code, 0);
  EXPECT_FALSE(state_dir_exists(id));
  EXPECT_FALSE(cgroup_exists(id));
  EXPECT_FALSE(alive(pid)) << "the created init outlived delete";
}

TEST_F(Lifecycle, ForceDeleteKillsEverything) {
  auto id = unique_id("force");
  ASSERT_EQ(berth({"run", "--detach", "--bundle", make_bundle(sh("sleep 1000 & sleep 1000; true")), id}).code, 0);
  auto pids = berth({"ps", "--format", "json", id});
  auto list = nlohmann::json::parse(pids.out);
  EXPECT_EQ(list.size(), 3u) << pids.out;
  ASSERT_EQ(berth({"delete", "--force", id}).code, 0);
  EXPECT_FALSE(state_dir_exists(id));
  EXPECT_FALSE(cgroup_exists(id));
  for (int pid : list) EXPECT_FALSE(alive(pid)) << "pid " << pid << " survived delete --force";
  EXPECT_EQ(berth({"delete", "--force", id}).code, 0) << "deleting a missing container with --force succeeds";
}

TEST_F(Lifecycle, KillAllSignalsEveryProcess) {
  auto id = unique_id("killall");
  ASSERT_EQ(berth({"run", "--detach", "--bundle", make_bundle(sh("trap '' TERM; sleep 1000 & wait")), id}).code, 0);
  auto before = nlohmann::json::parse(berth({"ps", "--format", "json", id}).out);
  ASSERT_EQ(before.size(), 2u);
  ASSERT_EQ(berth({"kill", "--all", id, "KILL"}).code, 0);
  for (int i = 0; i < 200 && state(id)["status"] != "stopped"; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(state(id)["status"], "stopped");
}

TEST_F(Lifecycle, ExecRunsInsideAndReportsExitCode) {
  auto id = unique_id("exec");
  auto bundle = make_bundle({"/bin/sleep", "1000"}, [](nlohmann::json& j) { j["hostname"] = "exec-host"; });
  ASSERT_EQ(berth({"run", "--detach", "--bundle", bundle, id}).code, 0);
  auto r = berth({"exec", id, "/bin/sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 3"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(r.out, "exec-host\n/bin/sleep 1000 \n");

  auto env = berth({"exec", "--env", "FOO=bar", "--cwd", "/tmp", "--user", "1000:1000", id, "/bin/sh", "-c",
                    "echo $FOO $(pwd) $(id -u):$(id -g)"});
  EXPECT_EQ(env.code, 0) << env.err;
  EXPECT_EQ(env.out, "bar /tmp 1000:1000\n");

  // --process takes a whole process object.
  std::ofstream(tmp_ + "/process.json") << R"({"args":["/bin/sh","-c","echo from-json; exit 4"],"cwd":"/","env":["PATH=/bin"]})";
  auto pj = berth({"exec", "--process", tmp_ + "/process.json", id});
  EXPECT_EQ(pj.code, 4);
  EXPECT_EQ(pj.out, "from-json\n");

  auto missing = berth({"exec", id, "/no/such/binary"});
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("not found"), std::string::npos) << missing.err;

  std::string pid_file = tmp_ + "/exec.pid";
  ASSERT_EQ(berth({"exec", "--detach", "--pid-file", pid_file, id, "/bin/sleep", "1000"}).code, 0);
  std::ifstream pf(pid_file);
  int pid = 0;
  pf >> pid;
  auto pids = nlohmann::json::parse(berth({"ps", "--format", "json", id}).out);
  EXPECT_NE(std::find(pids.begin(), pids.end(), pid), pids.end()) << "exec'd process is in the container cgroup";
}

TEST_F(Lifecycle, PauseAndResumeFreezeTheCgroup) {
  auto id = unique_id("pause");
  ASSERT_EQ(berth({"run", "--detach", "--bundle", make_bundle({"/bin/sleep", "1000"}), id}).code, 0);
  ASSERT_EQ(berth({"pause", id}).code, 0);
  EXPECT_EQ(state(id)["status"], "paused");
  std::ifstream freezer("/sys/fs/cgroup/freezer/berth/" + id + "/freezer.state");
  std::string fs;
  freezer >> fs;
  EXPECT_EQ(fs, "FROZEN");
  EXPECT_NE(berth({"exec", id, "/bin/true"}).code, 0) << "exec into a paused container is refused";
  ASSERT_EQ(berth({"resume", id}).code, 0);
  EXPECT_EQ(state(id)["status"], "running");
  EXPECT_NE(berth({"resume", id}).code, 0) << "resuming a running container is an error";
}

TEST_F(Lifecycle, UpdateChangesLimitsLive) {
  auto id = unique_id("update");
  ASSERT_EQ(berth({"run", "--detach", "--bundle", make_bundle({"/bin/sleep", "1000"}), id}).code, 0);
  ASSERT_EQ(berth({"update", "--memory", "64m", "--pids-limit", "42", "--cpu-quota", "50000", "--cpu-period", "100000", id}).code, 0);
  auto read = [](const std::string& path) {
    std::ifstream f(path);
    std::string v;
    f >> v;
    return v;
  };
  EXPECT_EQ(read("/sys/fs/cgroup/memory/berth/" + id + "/memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(read("/sys/fs/cgroup/pids/berth/" + id + "/pids.max"), "42");
  EXPECT_EQ(read("/sys/fs/cgroup/cpu/berth/" + id + "/cpu.cfs_quota_us"), "50000");
  std::ofstream(tmp_ + "/res.json") << R"({"pids":{"limit":77}})";
  ASSERT_EQ(berth({"update", "--resources", tmp_ + "/res.json", id}).code, 0);
  EXPECT_EQ(read("/sys/fs/cgroup/pids/berth/" + id + "/pids.max"), "77");
  auto bad = berth({"update", "--memory", "lots", id});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("invalid size"), std::string::npos) << bad.err;
}

TEST_F(Lifecycle, HooksRunInOrderWithState) {
  std::string log = tmp_ + "/hooks.log";
  auto id = unique_id("hooks");
  auto host_hook = [&](const std::string& name) {
    return nlohmann::json{{"path", "/bin/sh"},
                          {"args", {"sh", "-c", "read -r state; echo \"" + name + " $state\" >> " + log}}};
  };
  auto bundle = make_bundle(sh("echo main >> /hooklog/hooks.log"), [&](nlohmann::json& j) {
    j["mounts"].push_back({{"destination", "/hooklog"}, {"type", "bind"}, {"source", tmp_}, {"options", {"rbind", "rw"}}});
    j["hooks"]["prestart"] = {host_hook("prestart")};
    j["hooks"]["createRuntime"] = {host_hook("createRuntime")};
    j["hooks"]["createContainer"] = {host_hook("createContainer")};
    // startContainer runs inside the container: its path resolves in the rootfs.
    j["hooks"]["startContainer"] = {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "echo startContainer x >> /hooklog/hooks.log"}}}};
    j["hooks"]["poststart"] = {host_hook("poststart")};
    j["hooks"]["poststop"] = {host_hook("poststop")};
  });
  ASSERT_EQ(berth({"create", "--bundle", bundle, id}).code, 0);
  ASSERT_EQ(berth({"start", id}).code, 0);
  for (int i = 0; i < 200 && state(id)["status"] != "stopped"; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(berth({"delete", id}).code, 0);
  std::ifstream in(log);
  std::vector<std::string> stages;
  std::string line;
  while (std::getline(in, line)) {
    auto space = line.find(' ');
    stages.push_back(line.substr(0, space));
    if (space != std::string::npos && line.substr(0, space) != "startContainer") {
      auto state = nlohmann::json::parse(line.substr(space + 1), nullptr, false);
      ASSERT_FALSE(state.is_discarded()) << line;
      EXPECT_EQ(state["id"], id);
      EXPECT_EQ(state["bundle"], bundle);
    }
  }
  // poststart may race the container's own output; everything else has one order.
  std::vector<std::string> expected = {"prestart", "createRuntime", "createContainer", "startContainer", "main", "poststart", "poststop"};
  auto main_it = std::find(stages.begin(), stages.end(), "main");
  auto post_it = std::find(stages.begin(), stages.end(), "poststart");
  ASSERT_NE(main_it, stages.end());
  ASSERT_NE(post_it, stages.end());
  if (post_it < main_it) std::iter_swap(main_it, post_it);
  EXPECT_EQ(stages, expected);
}

TEST_F(Lifecycle, FailingHookAbortsCreateAndCleansUp) {
  auto id = unique_id("badhook");
  auto bundle = make_bundle({"/bin/true"}, [](nlohmann::json& j) {
    j["hooks"]["createRuntime"] = {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "exit 3"}}}};
  });
  auto r = berth({"create", "--bundle", bundle, id});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("createRuntime hook"), std::string::npos) << r.err;
  EXPECT_FALSE(state_dir_exists(id));
  EXPECT_FALSE(cgroup_exists(id));

  auto slow = make_bundle({"/bin/true"}, [](nlohmann::json& j) {
    j["hooks"]["prestart"] = {{{"path", "/bin/sleep"}, {"args", {"sleep", "10"}}, {"timeout", 1}}};
  });
  auto t = berth({"create", "--bundle", slow, unique_id("slowhook")});
  EXPECT_NE(t.code, 0);
  EXPECT_NE(t.err.find("timed out"), std::string::npos) << t.err;
}

TEST_F(Lifecycle, DeleteCleansUpAfterBerthWasKilledMidCreate) {
  auto id = unique_id("crash");
  auto bundle = make_bundle({"/bin/true"}, [](nlohmann::json& j) {
    j["hooks"]["createRuntime"] = {{{"path", "/bin/sleep"}, {"args", {"sleep", "1000"}}}};
  });
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execl(BERTH_BINARY, BERTH_BINARY, "--root", root_.c_str(), "create", "--bundle", bundle.c_str(), id.c_str(), nullptr);
    _exit(127);
  }
  // Wait until the create is stuck in the hook, with the cgroup made.
  for (int i = 0; i < 500 && !cgroup_exists(id); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(cgroup_exists(id));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::system("pkill -KILL -f 'sleep 1000$' >/dev/null 2>&1");
  EXPECT_TRUE(state_dir_exists(id)) << "the killed create left its state for delete to find";
  auto r = berth({"delete", id});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(state_dir_exists(id));
  EXPECT_FALSE(cgroup_exists(id));
}

TEST_F(Lifecycle, SpecAndFeatures) {
  std::string dir = tmp_ + "/specdir";
  ::mkdir(dir.c_str(), 0755);
  ASSERT_EQ(berth({"spec", "--bundle", dir}).code, 0);
  auto again = berth({"spec", "--bundle", dir});
  EXPECT_NE(again.code, 0) << "spec refuses to overwrite config.json";
  auto features = nlohmann::json::parse(berth({"features"}).out);
  EXPECT_EQ(features["ociVersionMax"], "1.1.0");
  EXPECT_TRUE(features["linux"]["seccomp"]["enabled"].get<bool>());
  auto ns = features["linux"]["namespaces"];
  EXPECT_NE(std::find(ns.begin(), ns.end(), "pid"), ns.end());
  auto caps = features["linux"]["capabilities"];
  EXPECT_NE(std::find(caps.begin(), caps.end(), "CAP_SYS_ADMIN"), caps.end());
}

}  // namespace
}  // namespace berth::testing
