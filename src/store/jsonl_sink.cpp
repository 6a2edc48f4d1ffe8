#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/store/output_order.hpp"
#include "floodgate/store/sink.hpp"

namespace floodgate::store {
namespace {

// Rows are appended to a buffer and reach the file in flush() with write(2) on an
// O_APPEND descriptor: whole lines only, never a partial row from a half-formatted write.
class JsonlSink final : public Sink {
 public:
  JsonlSink(const std::string& path, OpenMode mode, bool fsync_on_flush) : path_(path), fsync_(fsync_on_flush) {
    if (path == "-") {
      fd_ = STDOUT_FILENO;
      return;
    }
    if (mode == OpenMode::append) truncate_torn_tail(path);
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
    if (mode == OpenMode::truncate) flags |= O_TRUNC;
    fd_ = ::open(path.c_str(), flags, 0644);
    if (fd_ < 0) throw Error("cannot open output \"" + path + "\": " + std::strerror(errno));
    owns_ = true;
  }
  // Without close() (the job stopped on an error) the rows not flushed are dropped: written
  // now they could reach the output ahead of the other sinks, and a resume sends them again
  // anyway (they are not journaled).
  ~JsonlSink() override {
    if (fd_ >= 0 && owns_) ::close(fd_);
  }
  JsonlSink(const JsonlSink&) = delete;
  JsonlSink& operator=(const JsonlSink&) = delete;

  void write(const Outcome& outcome, const RowContext& /*context*/) override {
    append_output_line(buffer_, outcome);
    // Keep the buffer bounded even if the engine checkpoints rarely.
    if (buffer_.size() > (4u << 20)) write_buffer();
  }

  void flush() override {
    if (buffer_.empty() && !unsynced_) return;
    write_buffer();
    if (fsync_ && fd_ >= 0 && owns_) ::fdatasync(fd_);
    unsynced_ = false;
  }

  void forget(const std::vector<std::string>& keys) override {
    if (!owns_ || keys.empty()) return;
    flush();
    // The copy is renamed over the path: reopen it, or later rows would go to the old file.
    drop_lines_with_keys(path_, keys);
    ::close(fd_);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("cannot open output \"" + path_ + "\": " + std::strerror(errno));
  }

  void close() override {
    if (fd_ < 0) return;
    flush();
    if (owns_) ::close(fd_);
    fd_ = -1;
  }

 private:
  void write_buffer() {
    std::size_t off = 0;
    while (off < buffer_.size()) {
      const ssize_t n = ::write(fd_, buffer_.data() + off, buffer_.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        // Keep what did not reach the file: a later flush() (once there is room) finishes
        // the line the file now ends in. A resume cuts a torn tail anyway.
        buffer_.erase(0, off);
        throw Error("cannot write output \"" + path_ + "\": " + std::strerror(err), write_failure_exit_code(err));
      }
      off += static_cast<std::size_t>(n);
      unsynced_ = true;
    }
    buffer_.clear();
  }

  std::string path_;
  bool fsync_ = false;
  bool unsynced_ = false;  // bytes written since the last fdatasync
  int fd_ = -1;
  bool owns_ = false;
  std::string buffer_;
};

}  // namespace

std::unique_ptr<Sink> make_jsonl_sink(const std::string& path, OpenMode mode, bool fsync_on_flush) {
  return std::make_unique<JsonlSink>(path, mode, fsync_on_flush);
}

std::uint64_t truncate_torn_tail(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
    ::close(fd);
    return 0;
  }
  // Scan backwards in chunks for the last '\n'.
  const off_t size = st.st_size;
  off_t end = size;
  off_t keep = 0;
  char chunk[8192];
  bool found = false;
  while (end > 0 && !found) {
    const off_t start = end > static_cast<off_t>(sizeof chunk) ? end - static_cast<off_t>(sizeof chunk) : 0;
    const ssize_t n = ::pread(fd, chunk, static_cast<std::size_t>(end - start), start);
    if (n <= 0) break;
    for (ssize_t i = n - 1; i >= 0; --i) {
      if (chunk[i] == '\n') {
        keep = start + i + 1;
        found = true;
        break;
      }
    }
    end = start;
  }
  std::uint64_t removed = 0;
  if (keep < size) {
    if (::ftruncate(fd, keep) == 0) removed = static_cast<std::uint64_t>(size - keep);
  }
  ::close(fd);
  return removed;
}

}  // namespace floodgate::store
