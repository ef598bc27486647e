// berth's gRPC server against the real grpc++ client and the generated CRI stubs:
// proves interop as well as behaviour.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "cri/grpc/grpc_server.h"
#include "cri/proto/runtime_api.h"
#include "cri/proto/api.grpc.pb.h"

namespace {

namespace bg = berth::grpc;
namespace cri = runtime::v1;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kVersion[] = "/runtime.v1.RuntimeService/Version";
constexpr char kListContainers[] = "/runtime.v1.RuntimeService/ListContainers";
constexpr char kStatus[] = "/runtime.v1.RuntimeService/Status";
constexpr char kEvents[] = "/runtime.v1.RuntimeService/GetContainerEvents";

// Polls `done` until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s) {
  auto until = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

int count_open_fds();

// The fd count once it stopped changing for a moment (client sockets close
// asynchronously).
int settled_fd_count() {
  int last = count_open_fds();
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(20ms);
    int now = count_open_fds();
    if (now == last) return now;
    last = now;
  }
  return last;
}

int count_open_fds() {
  int count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return -1;
  while (dirent* ent = ::readdir(dir)) {
    if (ent->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the DIR's own fd
}

std::string make_temp_dir() {
  std::string tmpl = "/tmp/berth-grpc-test-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// A channel with its own connection: grpc++ otherwise shares connections between
// channels to the same target.
std::shared_ptr<::grpc::Channel> connect(const std::string& socket_path) {
  ::grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return ::grpc::CreateCustomChannel("unix://" + socket_path, ::grpc::InsecureChannelCredentials(), args);
}

// What the test handlers saw, shared with the test body.
struct Observed {
  std::mutex mu;
  std::condition_variable cv;
  bool slow_done = false;
  bool slow_had_deadline = false;
  Clock::time_point slow_deadline;
  Clock::time_point slow_started;
  bool slow_cancelled = false;

  bool stream_done = false;
  bool stream_write_failed = false;
  int stream_written = 0;

  std::string metadata_value;
  bool whoami_had_deadline = true;
  uid_t peer_uid = static_cast<uid_t>(-1);

  int blocked_calls = 0;
  bool release_blocked = false;

  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, pred);
  }
};

// Version echoes the request and, by its version string, misbehaves on purpose.
bg::CallStatus version_handler(Observed& seen, bg::CallContext& ctx, const cri::VersionRequest& req,
                               cri::VersionResponse& resp) {
  if (req.version() == "fail") {
    return {bg::StatusCode::not_found, "container \"ü-100%\" not found\nsecond line"};
  }
  if (req.version() == "throw") throw std::runtime_error("boom");
  if (req.version() == "slow") {
    {
      std::lock_guard lock(seen.mu);
      seen.slow_started = Clock::now();
      seen.slow_had_deadline = ctx.has_deadline();
      seen.slow_deadline = ctx.deadline();
    }
    bool cancelled = ctx.wait_cancelled_until(Clock::now() + 10s);
    {
      std::lock_guard lock(seen.mu);
      seen.slow_cancelled = cancelled;
      seen.slow_done = true;
    }
    seen.cv.notify_all();
    return {};
  }
  if (req.version() == "whoami") {
    std::lock_guard lock(seen.mu);
    seen.metadata_value = std::string(ctx.metadata("x-berth-test").value_or("<none>"));
    if (ctx.peer()) seen.peer_uid = ctx.peer()->uid;
    seen.whoami_had_deadline = ctx.has_deadline();
  }
  resp.set_version(req.version());
  resp.set_runtime_name("berth");
  resp.set_runtime_version("0.1.0");
  resp.set_runtime_api_version("v1");
  return {};
}

// ListContainers: filter.id "bytes:<n>" returns at least n bytes of containers.
bg::CallStatus list_handler(bg::CallContext&, const cri::ListContainersRequest& req,
                            cri::ListContainersResponse& resp) {
  const std::string& id = req.filter().id();
  if (id.starts_with("bytes:")) {
    size_t want = std::stoull(id.substr(6));
    std::string padding(1000, 'p');
    // Summed per entry: ByteSizeLong() of the whole list each time is quadratic.
    size_t total = 0;
    for (size_t i = 0; total < want; ++i) {
      cri::Container* c = resp.add_containers();
      c->set_id("c" + std::to_string(i));
      c->set_pod_sandbox_id(padding);
      total += c->ByteSizeLong() + 3;  // + tag and length of the entry
    }
  }
  return {};
}

// Status blocks until the test releases it: fills the call limit.
bg::CallStatus blocking_handler(Observed& seen, bg::CallContext& ctx, const cri::StatusRequest&,
                                cri::StatusResponse&) {
  std::unique_lock lock(seen.mu);
  ++seen.blocked_calls;
  seen.cv.notify_all();
  // Polls cancellation too, so a failing test still lets stop() end the handler.
  auto until = Clock::now() + 10s;
  while (!seen.release_blocked && !ctx.cancelled() && Clock::now() < until) seen.cv.wait_for(lock, 10ms);
  return {};
}

// GetContainerEvents: 1000 numbered events, or with metadata "x-mode: endless"
// messages until write() fails ("x-size" bytes of padding each).
bg::CallStatus events_handler(Observed& seen, bg::CallContext& ctx, const cri::GetEventsRequest&,
                              bg::StreamWriter<cri::ContainerEventResponse>& writer) {
  bool endless = ctx.metadata("x-mode") == "endless";
  size_t padding = 0;
  if (auto size = ctx.metadata("x-size")) padding = std::stoull(std::string(*size));
  int written = 0;
  bool failed = false;
  for (int i = 0; endless || i < 1000; ++i) {
    cri::ContainerEventResponse ev;
    ev.set_container_id("c" + std::to_string(i) + std::string(padding, 'e'));
    ev.set_container_event_type(cri::CONTAINER_STARTED_EVENT);
    ev.set_created_at(i);
    if (!writer.write(ev)) {
      failed = true;
      break;
    }
    ++written;
  }
  {
    std::lock_guard lock(seen.mu);
    seen.stream_written = written;
    seen.stream_write_failed = failed;
    seen.stream_done = true;
  }
  seen.cv.notify_all();
  return {};
}

class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    path_ = dir_ + "/berth.sock";
  }

  void TearDown() override {
    servers_.clear();
    (void)berth::remove_tree(dir_);
  }

  bg::GrpcServer& add_server(bg::GrpcServer::Options options) {
    auto server = std::make_unique<bg::GrpcServer>(std::move(options));
    Observed& seen = seen_;
    server->unary<cri::VersionRequest, cri::VersionResponse>(
        kVersion, [&seen](bg::CallContext& ctx, const cri::VersionRequest& req, cri::VersionResponse& resp) {
          return version_handler(seen, ctx, req, resp);
        });
    server->unary<cri::ListContainersRequest, cri::ListContainersResponse>(kListContainers, list_handler);
    server->unary<cri::StatusRequest, cri::StatusResponse>(
        kStatus, [&seen](bg::CallContext& ctx, const cri::StatusRequest& req, cri::StatusResponse& resp) {
          return blocking_handler(seen, ctx, req, resp);
        });
    server->server_stream<cri::GetEventsRequest, cri::ContainerEventResponse>(
        kEvents, [&seen](bg::CallContext& ctx, const cri::GetEventsRequest& req,
                         bg::StreamWriter<cri::ContainerEventResponse>& writer) {
          return events_handler(seen, ctx, req, writer);
        });
    servers_.push_back(std::move(server));
    return *servers_.back();
  }

  // The usual server: 4 MiB requests, 12 MiB responses.
  bg::GrpcServer& start_server() {
    bg::GrpcServer& server = add_server({.socket_path = path_,
                                         .max_receive_bytes = 4 << 20,
                                         .max_send_bytes = 12 << 20});
    auto started = server.start();
    EXPECT_TRUE(started.has_value()) << started.error().message;
    return server;
  }

  std::unique_ptr<cri::RuntimeService::Stub> stub(const std::shared_ptr<::grpc::Channel>& channel = nullptr) {
    return cri::RuntimeService::NewStub(channel ? channel : connect(path_));
  }

  ::grpc::Status version(cri::RuntimeService::Stub& s, const std::string& v, cri::VersionResponse* resp,
                         std::chrono::milliseconds timeout = 10s) {
    ::grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    cri::VersionRequest req;
    req.set_version(v);
    return s.Version(&ctx, req, resp);
  }

  std::string dir_;
  std::string path_;
  Observed seen_;
  std::vector<std::unique_ptr<bg::GrpcServer>> servers_;  // stopped before seen_ goes
};

TEST_F(GrpcServerTest, UnaryRoundTrip) {
  start_server();
  auto s = stub();
  cri::VersionResponse resp;
  ::grpc::Status status = version(*s, "0.1.0", &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.version(), "0.1.0");
  EXPECT_EQ(resp.runtime_name(), "berth");
  EXPECT_EQ(resp.runtime_version(), "0.1.0");
  EXPECT_EQ(resp.runtime_api_version(), "v1");
}

TEST_F(GrpcServerTest, HandlerSeesMetadataAndPeer) {
  start_server();
  auto s = stub();
  ::grpc::ClientContext ctx;
  ctx.AddMetadata("x-berth-test", "hello");
  cri::VersionRequest req;
  req.set_version("whoami");
  cri::VersionResponse resp;
  ASSERT_TRUE(s->Version(&ctx, req, &resp).ok());
  std::lock_guard lock(seen_.mu);
  EXPECT_EQ(seen_.metadata_value, "hello");
  EXPECT_EQ(seen_.peer_uid, ::getuid());
  EXPECT_FALSE(seen_.whoami_had_deadline) << "no grpc-timeout was sent";
}

TEST_F(GrpcServerTest, UnknownMethodIsUnimplemented) {
  start_server();
  auto images = cri::ImageService::NewStub(connect(path_));
  ::grpc::ClientContext ctx;
  cri::ListImagesRequest req;
  cri::ListImagesResponse resp;
  ::grpc::Status status = images->ListImages(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(status.error_message(), "unknown method /runtime.v1.ImageService/ListImages");
}

TEST_F(GrpcServerTest, ErrorStatusAndMessageRoundTrip) {
  start_server();
  auto s = stub();
  cri::VersionResponse resp;
  ::grpc::Status status = version(*s, "fail", &resp);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "container \"ü-100%\" not found\nsecond line");
}

TEST_F(GrpcServerTest, HandlerExceptionBecomesUnknown) {
  start_server();
  auto s = stub();
  cri::VersionResponse resp;
  ::grpc::Status status = version(*s, "throw", &resp);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::UNKNOWN);
  EXPECT_NE(status.error_message().find("boom"), std::string::npos);
  // The server keeps serving.
  EXPECT_TRUE(version(*s, "after", &resp).ok());
}

TEST_F(GrpcServerTest, DeadlineReachesHandlerAndExpires) {
  start_server();
  auto s = stub();
  cri::VersionResponse resp;
  auto before = Clock::now();
  ::grpc::Status status = version(*s, "slow", &resp, 300ms);
  auto elapsed = Clock::now() - before;
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(elapsed, 3s);

  ASSERT_TRUE(seen_.wait([&] { return seen_.slow_done; })) << "the handler never noticed the deadline";
  std::lock_guard lock(seen_.mu);
  EXPECT_TRUE(seen_.slow_had_deadline);
  EXPECT_TRUE(seen_.slow_cancelled);
  // grpc-timeout carries what is left of the 300 ms when the request leaves.
  EXPECT_GT(seen_.slow_deadline, before + 100ms);
  EXPECT_LE(seen_.slow_deadline, before + 400ms);
}

TEST_F(GrpcServerTest, StreamsThousandMessagesInOrder) {
  start_server();
  auto s = stub();
  ::grpc::ClientContext ctx;
  cri::GetEventsRequest req;
  auto reader = s->GetContainerEvents(&ctx, req);
  cri::ContainerEventResponse ev;
  int count = 0;
  while (reader->Read(&ev)) {
    EXPECT_EQ(ev.container_id(), "c" + std::to_string(count));
    EXPECT_EQ(ev.created_at(), count);
    EXPECT_EQ(ev.container_event_type(), cri::CONTAINER_STARTED_EVENT);
    ++count;
  }
  ::grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(count, 1000);
}

TEST_F(GrpcServerTest, ClientCancelEndsTheStreamHandler) {
  start_server();
  auto s = stub();
  ::grpc::ClientContext ctx;
  ctx.AddMetadata("x-mode", "endless");
  auto reader = s->GetContainerEvents(&ctx, cri::GetEventsRequest());
  cri::ContainerEventResponse ev;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(reader->Read(&ev));
  ctx.TryCancel();
  while (reader->Read(&ev)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), ::grpc::StatusCode::CANCELLED);

  ASSERT_TRUE(seen_.wait([&] { return seen_.stream_done; })) << "the handler kept writing";
  std::lock_guard lock(seen_.mu);
  EXPECT_TRUE(seen_.stream_write_failed);
  EXPECT_GE(seen_.stream_written, 10);
}

TEST_F(GrpcServerTest, SixteenThreadsOfFiftyCalls) {
  start_server();
  auto shared = connect(path_);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      // Half the threads share one connection, the others have their own.
      auto s = stub(t % 2 == 0 ? shared : nullptr);
      for (int i = 0; i < 50; ++i) {
        std::string v = "t" + std::to_string(t) + "-" + std::to_string(i);
        cri::VersionResponse resp;
        if (version(*s, v, &resp).ok() && resp.version() == v) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 16 * 50);
}

TEST_F(GrpcServerTest, EightMegabyteResponse) {
  start_server();
  auto s = stub();
  ::grpc::ClientContext ctx;
  cri::ListContainersRequest req;
  req.mutable_filter()->set_id("bytes:" + std::to_string(8 << 20));
  cri::ListContainersResponse resp;
  ::grpc::Status status = s->ListContainers(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_GE(resp.ByteSizeLong(), size_t{8} << 20);
  ASSERT_GT(resp.containers_size(), 8000);
  EXPECT_EQ(resp.containers(resp.containers_size() - 1).id(), "c" + std::to_string(resp.containers_size() - 1));
}

TEST_F(GrpcServerTest, ResponseOverTheSendLimitIsResourceExhausted) {
  start_server();
  auto s = stub();
  ::grpc::ClientContext ctx;
  cri::ListContainersRequest req;
  req.mutable_filter()->set_id("bytes:" + std::to_string(13 << 20));
  cri::ListContainersResponse resp;
  ::grpc::Status status = s->ListContainers(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(GrpcServerTest, RequestOverTheReceiveLimitIsResourceExhausted) {
  start_server();
  auto channel = connect(path_);
  auto s = stub(channel);
  ::grpc::ClientContext ctx;
  cri::ListContainersRequest req;
  (*req.mutable_filter()->mutable_label_selector())["big"] = std::string(5 << 20, 'x');
  cri::ListContainersResponse resp;
  ::grpc::Status status = s->ListContainers(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("limit"), std::string::npos) << status.error_message();

  // The connection survives the refused call.
  cri::VersionResponse vresp;
  EXPECT_TRUE(version(*s, "again", &vresp).ok());
}

TEST_F(GrpcServerTest, SlowReaderDoesNotBlockOtherCalls) {
  start_server();
  auto channel = connect(path_);
  auto s = stub(channel);
  ::grpc::ClientContext ctx;
  ctx.AddMetadata("x-mode", "endless");
  ctx.AddMetadata("x-size", "65536");
  auto reader = s->GetContainerEvents(&ctx, cri::GetEventsRequest());
  cri::ContainerEventResponse ev;
  ASSERT_TRUE(reader->Read(&ev));
  // The stream now stalls on flow control while unary calls share its connection.
  for (int i = 0; i < 20; ++i) {
    cri::VersionResponse resp;
    ::grpc::Status status = version(*s, "v" + std::to_string(i), &resp, 2s);
    ASSERT_TRUE(status.ok()) << i << ": " << status.error_message();
  }
  ctx.TryCancel();
  while (reader->Read(&ev)) {
  }
  reader->Finish();
  EXPECT_TRUE(seen_.wait([&] { return seen_.stream_done; }));
}

TEST_F(GrpcServerTest, CallsBeyondTheLimitAreResourceExhausted) {
  bg::GrpcServer& server = add_server({.socket_path = path_, .max_concurrent_calls = 2});
  ASSERT_TRUE(server.start().has_value());

  std::vector<std::thread> blocked;
  std::atomic<int> blocked_ok{0};
  for (int i = 0; i < 2; ++i) {
    blocked.emplace_back([&] {
      auto s = stub();
      ::grpc::ClientContext ctx;
      cri::StatusResponse resp;
      if (s->Status(&ctx, cri::StatusRequest(), &resp).ok()) ++blocked_ok;
    });
  }
  ASSERT_TRUE(seen_.wait([&] { return seen_.blocked_calls == 2; }));

  auto s = stub();
  cri::VersionResponse resp;
  ::grpc::Status status = version(*s, "third", &resp);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::RESOURCE_EXHAUSTED);

  {
    std::lock_guard lock(seen_.mu);
    seen_.release_blocked = true;
  }
  seen_.cv.notify_all();
  for (auto& t : blocked) t.join();
  EXPECT_EQ(blocked_ok.load(), 2);
  EXPECT_TRUE(eventually([&] { return version(*s, "fourth", &resp).ok(); }));
}

TEST_F(GrpcServerTest, StopCancelsRunningCalls) {
  bg::GrpcServer& server = start_server();
  auto s = stub();
  ::grpc::ClientContext ctx;
  ctx.AddMetadata("x-mode", "endless");
  auto reader = s->GetContainerEvents(&ctx, cri::GetEventsRequest());
  cri::ContainerEventResponse ev;
  ASSERT_TRUE(reader->Read(&ev));

  auto before = Clock::now();
  server.stop();
  EXPECT_LT(Clock::now() - before, 3s);
  {
    std::lock_guard lock(seen_.mu);
    EXPECT_TRUE(seen_.stream_done);
    EXPECT_TRUE(seen_.stream_write_failed);
  }
  while (reader->Read(&ev)) {
  }
  EXPECT_FALSE(reader->Finish().ok());
  struct stat st{};
  EXPECT_NE(::lstat(path_.c_str(), &st), 0) << "stop() leaves the socket behind";
}

TEST_F(GrpcServerTest, RefusesASocketAnotherServerHolds) {
  start_server();
  bg::GrpcServer& second = add_server({.socket_path = path_});
  auto started = second.start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, EADDRINUSE);
  EXPECT_EQ(started.error().message, "another daemon is serving on " + path_);

  // The first server is untouched.
  auto s = stub();
  cri::VersionResponse resp;
  EXPECT_TRUE(version(*s, "still-here", &resp).ok());
}

TEST_F(GrpcServerTest, ReplacesAStaleSocket) {
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);  // the file stays: a daemon that died
  }
  start_server();
  auto s = stub();
  cri::VersionResponse resp;
  EXPECT_TRUE(version(*s, "fresh", &resp).ok());
}

TEST_F(GrpcServerTest, RefusesToReplaceANonSocket) {
  ASSERT_TRUE(berth::write_file_atomic(path_, "not a socket").has_value());
  bg::GrpcServer& server = add_server({.socket_path = path_});
  auto started = server.start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, EEXIST);
}

TEST_F(GrpcServerTest, SocketIsRootOnlyAndParentIsCreated) {
  path_ = dir_ + "/run/berth/berth.sock";
  start_server();
  struct stat st{};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat((dir_ + "/run/berth").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);

  // Nothing is left of the private bind directory.
  DIR* d = ::opendir((dir_ + "/run/berth").c_str());
  ASSERT_NE(d, nullptr);
  std::vector<std::string> names;
  while (dirent* ent = ::readdir(d)) {
    std::string name = ent->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  EXPECT_EQ(names, std::vector<std::string>{"berth.sock"});
}

TEST_F(GrpcServerTest, GarbageFromAClientClosesOnlyThatConnection) {
  start_server();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path_.c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const char request[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::write(fd, request, sizeof request - 1), static_cast<ssize_t>(sizeof request - 1));
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
  }
  // EOF, or a reset if the close raced with our bytes; a timeout would be EAGAIN.
  EXPECT_TRUE(n == 0 || errno == ECONNRESET) << "the server should close the connection: " << std::strerror(errno);
  ::close(fd);

  auto s = stub();
  cri::VersionResponse resp;
  EXPECT_TRUE(version(*s, "ok", &resp).ok());
}

TEST_F(GrpcServerTest, StartStopTwentyTimesLeaksNoFds) {
  auto one_round = [&](bg::GrpcServer& server) {
    auto started = server.start();
    ASSERT_TRUE(started.has_value()) << started.error().message;
    {
      auto s = stub();
      cri::VersionResponse resp;
      ASSERT_TRUE(version(*s, "round", &resp).ok());
    }
    server.stop();
  };
  bg::GrpcServer& server = add_server({.socket_path = path_});
  one_round(server);  // grpc++ sets up its own process-wide fds on first use
  int baseline = settled_fd_count();

  for (int i = 0; i < 20; ++i) one_round(server);
  // The client closes its sockets asynchronously.
  EXPECT_TRUE(eventually([&] { return count_open_fds() <= baseline; }))
      << "open fds: " << count_open_fds() << ", before: " << baseline;

  // Fresh servers each time, too.
  for (int i = 0; i < 5; ++i) {
    bg::GrpcServer& fresh = add_server({.socket_path = path_});
    one_round(fresh);
    servers_.pop_back();
  }
  EXPECT_TRUE(eventually([&] { return count_open_fds() <= baseline; }))
      << "open fds: " << count_open_fds() << ", before: " << baseline;
}

}  // namespace
