#include "floodgate/store/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "floodgate/core/error.hpp"

namespace floodgate::store {

namespace {

// "FD PATH": a lock held across exec by the program this process was before (keep_across_exec).
constexpr const char* kInheritedLockEnv = "FLOODGATE_RUN_LOCK_FD";

// The inherited lock's descriptor when it is the one on `lock_path`, else -1.
int take_inherited(const std::string& lock_path) {
  const char* env = std::getenv(kInheritedLockEnv);
  if (env == nullptr) return -1;
  char* rest = nullptr;
  const long fd = std::strtol(env, &rest, 10);
  if (rest == env || *rest != ' ' || lock_path != rest + 1 || fd < 0) return -1;
  ::unsetenv(kInheritedLockEnv);
  const int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
  if (flags < 0) return -1;  // not open after all: take the lock afresh
  ::fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC);
  return static_cast<int>(fd);
}

}  // namespace

RunLock::RunLock(const std::string& lock_path, const std::string& what) : path_(lock_path) {
  fd_ = take_inherited(lock_path);
  // Still ours (the same open file description holds the flock): taking it again is a no-op
  // that confirms it.
  if (fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
  if (fd_ >= 0) ::close(fd_);
  // O_CLOEXEC: a child (the audio helper) must not inherit the lock.
  fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open the lock file " + lock_path + ": " + std::strerror(errno));
  while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    std::string holder;
    if (err == EWOULDBLOCK) {
      char buf[32] = {};
      const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) holder.push_back(buf[i]);
    }
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) throw Error("cannot lock " + lock_path + ": " + std::strerror(err));
    throw Error("another floodgate process (" + (holder.empty() ? std::string("pid unknown") : "pid " + holder) + ") is writing " +
                what + " (it holds the lock " + lock_path + "); wait for it to finish or stop it, then re-run");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  // A failure here costs only the pid in a second run's message: the lock is held.
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t n = ::pwrite(fd_, pid.data(), pid.size(), 0);
  }
}

void RunLock::keep_across_exec() {
  if (fd_ < 0) return;
  const int flags = ::fcntl(fd_, F_GETFD);
  if (flags >= 0) ::fcntl(fd_, F_SETFD, flags & ~FD_CLOEXEC);
  ::setenv(kInheritedLockEnv, (std::to_string(fd_) + " " + path_).c_str(), 1);
}

void RunLock::exec_failed() noexcept {
  if (fd_ < 0) return;
  const int flags = ::fcntl(fd_, F_GETFD);
  if (flags >= 0) ::fcntl(fd_, F_SETFD, flags | FD_CLOEXEC);
  ::unsetenv(kInheritedLockEnv);
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

std::shared_ptr<RunLock> lock_run(const std::string& lock_path, const std::string& what) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<RunLock>> held;
  const std::lock_guard<std::mutex> guard(mutex);
  if (auto it = held.find(lock_path); it != held.end()) {
    if (auto lock = it->second.lock()) return lock;
  }
  auto lock = std::make_shared<RunLock>(lock_path, what);
  held[lock_path] = lock;
  return lock;
}

std::string lock_path_for_journal(const std::string& journal_path) { return journal_path + ".lock"; }

}  // namespace floodgate::store
