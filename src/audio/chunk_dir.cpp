#include "floodgate/audio/chunk_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <string>

namespace floodgate::audio {

namespace {

constexpr const char* kPrefix = "chunks-";
constexpr const char* kLockName = ".lock";

std::atomic<unsigned> g_counter{0};

std::string safe_tag(std::string_view tag) {
  std::string out;
  for (char c : tag) {
    if (out.size() >= 40) break;
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    out += ok ? c : '_';
  }
  return out;
}

}  // namespace

AudioResult<ChunkDir> ChunkDir::create(const std::filesystem::path& root, std::string_view tag) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return AudioError{AudioErrc::write_failed, "cannot create " + root.string() + ": " + ec.message()};
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = std::string(kPrefix) + std::to_string(::getpid()) + "-" + std::to_string(g_counter++);
    if (!tag.empty()) {
      // Two appends, not "-" + safe_tag(tag): GCC 12 at -O3 flags that operator+ with a false
      // -Wrestrict (GCC bug 105329), which breaks the Release build under -Werror.
      name += '-';
      name += safe_tag(tag);
    }
    std::filesystem::path dir = root / name;
    if (!std::filesystem::create_directory(dir, ec)) {
      if (ec) return AudioError{AudioErrc::write_failed, "cannot create " + dir.string() + ": " + ec.message()};
      continue;  // exists (a pid reused after a crash): try the next number
    }
    const std::filesystem::path lock = dir / kLockName;
    const int fd = ::open(lock.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const std::string why = std::strerror(errno);
      if (fd >= 0) ::close(fd);
      std::filesystem::remove_all(dir, ec);
      return AudioError{AudioErrc::write_failed, "cannot lock " + lock.string() + ": " + why};
    }
    return ChunkDir(std::move(dir), fd);
  }
  return AudioError{AudioErrc::write_failed, "cannot find a free chunk directory name under " + root.string()};
}

ChunkDir::ChunkDir(ChunkDir&& other) noexcept : path_(std::move(other.path_)), lock_fd_(other.lock_fd_) {
  other.path_.clear();
  other.lock_fd_ = -1;
}

ChunkDir& ChunkDir::operator=(ChunkDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::move(other.path_);
    lock_fd_ = other.lock_fd_;
    other.path_.clear();
    other.lock_fd_ = -1;
  }
  return *this;
}

ChunkDir::~ChunkDir() { remove(); }

void ChunkDir::remove() noexcept {
  if (!path_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    path_.clear();
  }
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);  // releases the lock
    lock_fd_ = -1;
  }
}

int ChunkDir::release_for_exec() noexcept {
  const int fd = lock_fd_;
  if (fd >= 0) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0) ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
  path_.clear();
  lock_fd_ = -1;
  return fd;
}

AudioResult<ChunkDir> ChunkDir::adopt(const std::filesystem::path& path, int lock_fd) {
  const std::filesystem::path lock = path / kLockName;
  struct stat held {};
  struct stat named {};
  if (lock_fd < 0 || ::fstat(lock_fd, &held) != 0 || ::stat(lock.c_str(), &named) != 0 ||
      held.st_dev != named.st_dev || held.st_ino != named.st_ino) {
    return AudioError{AudioErrc::write_failed, "cannot take over " + path.string() + ": descriptor " +
                                                   std::to_string(lock_fd) + " is not its lock"};
  }
  // Our own lock (same open file description): taking it again succeeds at once.
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return AudioError{AudioErrc::write_failed, "cannot lock " + lock.string() + ": " + std::strerror(errno)};
  }
  const int flags = ::fcntl(lock_fd, F_GETFD);
  if (flags >= 0) ::fcntl(lock_fd, F_SETFD, flags | FD_CLOEXEC);
  return ChunkDir(path, lock_fd);
}

std::size_t remove_stale_chunk_dirs(const std::filesystem::path& root) noexcept {
  std::size_t removed = 0;
  std::error_code ec;
  std::filesystem::directory_iterator it(root, ec);
  if (ec) return 0;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kPrefix, 0) != 0 || !entry.is_directory(ec)) continue;
    const std::filesystem::path lock = entry.path() / kLockName;
    const int fd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
    bool stale = false;
    if (fd < 0) {
      // Crashed between mkdir and creating the lock, or being created right now: only
      // an old directory counts as stale.
      const auto age = std::filesystem::file_time_type::clock::now() - entry.last_write_time(ec);
      stale = errno == ENOENT && !ec && age > std::chrono::minutes(1);
    } else {
      stale = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    }
    if (stale) {
      std::error_code rm;
      std::filesystem::remove_all(entry.path(), rm);
      if (!rm) ++removed;
    }
    if (fd >= 0) ::close(fd);
  }
  return removed;
}

}  // namespace floodgate::audio
