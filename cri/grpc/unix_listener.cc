#include "cri/grpc/unix_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/file_util.h"

namespace berth::grpc {

namespace {

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return fail(ENAMETOOLONG, "socket path " + path + " is longer than " +
                                  std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

std::string in_use_message(const std::string& path) {
  return "another daemon is serving on " + path;
}

// Leaves `path` free, or fails if a live server owns it.
Result<> clear_stale_socket(const std::string& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return sys_fail("stat " + path);
  }
  if (!S_ISSOCK(st.st_mode)) return fail(EEXIST, path + " exists and is not a socket");

  sockaddr_un addr = BERTH_TRY(unix_address(path));
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe) return sys_fail("socket");
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    return fail(EADDRINUSE, in_use_message(path));
  }
  // EAGAIN: a listener with a full backlog is still a live listener.
  if (errno == EAGAIN || errno == EINPROGRESS) return fail(EADDRINUSE, in_use_message(path));
  if (errno != ECONNREFUSED) return sys_fail("probe " + path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return sys_fail("remove stale socket " + path);
  return {};
}

// Removes the private bind directory and what is left in it, on every path out.
struct TempDirCleanup {
  std::string dir;
  std::string socket;
  ~TempDirCleanup() {
    if (!socket.empty()) ::unlink(socket.c_str());
    if (!dir.empty()) ::rmdir(dir.c_str());
  }
};

}  // namespace

Result<UnixListener> UnixListener::bind(const std::string& path, mode_t mode, int backlog) {
  if (path.empty() || path[0] != '/') return invalid("socket path must be absolute: \"" + path + "\"");
  BERTH_TRY(unix_address(path));

  std::string parent = path.substr(0, path.rfind('/'));
  if (parent.empty()) parent = "/";
  struct stat st{};
  if (::stat(parent.c_str(), &st) != 0) {
    if (errno != ENOENT) return sys_fail("stat " + parent);
    BERTH_TRY_VOID(make_dirs(parent, 0711));
  }

  BERTH_TRY_VOID(clear_stale_socket(path));

  std::string tmpl = (parent == "/" ? "" : parent) + "/.berth-sock-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return sys_fail("mkdtemp " + tmpl);
  TempDirCleanup cleanup{buf.data(), ""};
  std::string tmp_socket = cleanup.dir + "/s";
  sockaddr_un tmp_addr = BERTH_TRY(unix_address(tmp_socket));

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return sys_fail("socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&tmp_addr), sizeof tmp_addr) != 0) {
    return sys_fail("bind " + tmp_socket);
  }
  cleanup.socket = tmp_socket;
  // Listen before the socket appears at `path`: a racing daemon's probe must see a
  // live server there, never a "stale" socket it may delete.
  if (::listen(fd.get(), backlog) != 0) return sys_fail("listen " + tmp_socket);
  if (::chmod(tmp_socket.c_str(), mode) != 0) return sys_fail("chmod " + tmp_socket);
  // link() fails with EEXIST instead of replacing: a daemon that won the race keeps its socket.
  if (::link(tmp_socket.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) return fail(EADDRINUSE, in_use_message(path));
    return sys_fail("link " + tmp_socket + " to " + path);
  }

  UnixListener listener;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return sys_fail("stat " + path, err);
  }
  listener.fd_ = std::move(fd);
  listener.path_ = path;
  listener.dev_ = st.st_dev;
  listener.ino_ = st.st_ino;
  return listener;
}

UnixListener& UnixListener::operator=(UnixListener&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::move(other.fd_);
    path_ = std::move(other.path_);
    dev_ = other.dev_;
    ino_ = other.ino_;
  }
  return *this;
}

void UnixListener::close() {
  if (!fd_) return;
  struct stat st{};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
  fd_.reset();
}

}  // namespace berth::grpc
