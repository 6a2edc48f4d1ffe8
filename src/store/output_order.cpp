#include "floodgate/store/output_order.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/store/journal.hpp"

namespace floodgate::store {
namespace {

struct Entry {
  enum class State : std::uint8_t { free, claimed, foreign };  // foreign: not an output line
  std::uint64_t hash = 0;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;  // with the '\n' when the line has one
  State state = State::free;
};

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw Error("rewriting the output: " + what + " \"" + path + "\": " + std::strerror(errno));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

void write_all(int fd, const char* data, std::size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", path);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

// Copies the lines of `src` at `order` into a new file at `tmp`, fsynced.
void copy_in_order(int src, const std::vector<Entry>& entries, const std::vector<std::uint32_t>& order, const std::string& tmp,
                   mode_t mode) {
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (out.get() < 0) fail("cannot create", tmp);
  std::string buf;
  constexpr std::size_t kFlushBytes = 1 << 20;
  buf.reserve(kFlushBytes + 4096);
  for (const std::uint32_t i : order) {
    const Entry& e = entries[i];
    const std::size_t at = buf.size();
    buf.resize(at + e.length);
    std::size_t got = 0;
    while (got < e.length) {
      const ssize_t n = ::pread(src, buf.data() + at + got, e.length - got, static_cast<off_t>(e.offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n == 0) errno = EIO;  // the file shrank under us
        fail("cannot read back", tmp);
      }
      got += static_cast<std::size_t>(n);
    }
    if (buf.back() != '\n') buf.push_back('\n');
    if (buf.size() >= kFlushBytes) {
      write_all(out.get(), buf.data(), buf.size(), tmp);
      buf.clear();
    }
  }
  write_all(out.get(), buf.data(), buf.size(), tmp);
  if (::fdatasync(out.get()) != 0) fail("cannot sync", tmp);
  if (::close(out.release()) != 0) fail("cannot close", tmp);
}


// Calls on_line(entry, info) for each non-blank line of `path`: `entry` has the line's offset
// and length, `info` its parse (nullopt: not an output line).
template <class OnLine>
void scan_output(const std::string& path, OnLine&& on_line) {
  LineReader reader(path);
  std::string_view line;
  std::uint64_t offset = 0;
  while (reader.next(line)) {
    const std::uint64_t end = reader.bytes_read();
    Entry e;
    e.offset = offset;
    e.length = static_cast<std::uint32_t>(end - offset);
    offset = end;
    if (is_blank_line(line)) continue;
    on_line(e, read_output_line(line));
  }
}

// The journal key of an output line (custom_id, or "@line:N").
std::string journal_key(OutputLineInfo& info) {
  Outcome o;
  o.custom_id = std::move(info.custom_id);
  o.line_no = info.line_no;
  return Journal::key_of(o);
}

// Replaces `path` by the copy of its lines at `order` (a crash leaves either file whole).
void rewrite_with(const std::string& path, const std::vector<Entry>& entries, const std::vector<std::uint32_t>& order, const char* suffix) {
  const std::string tmp = path + suffix;
  Fd src(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (src.get() < 0) fail("cannot open", path);
  struct stat st {};
  if (::fstat(src.get(), &st) != 0) fail("cannot stat", path);
  try {
    copy_in_order(src.get(), entries, order, tmp, st.st_mode & 07777);
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename over", path);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  // Make the rename itself durable.
  const std::string dir = std::filesystem::path(path).parent_path().empty() ? std::string(".") : std::filesystem::path(path).parent_path().string();
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.get() >= 0) (void)::fsync(d.get());
}

}  // namespace

ReorderStats reorder_output(const std::string& path, const std::function<bool(std::string& key)>& next_key) {
  ReorderStats stats;
  // 1. Index the output's lines by key hash.
  std::vector<Entry> entries;
  std::uint64_t free_lines = 0;
  scan_output(path, [&](Entry e, std::optional<OutputLineInfo> info) {
    if (info) {
      e.hash = CustomIdSet::hash(journal_key(*info));
      ++free_lines;
    } else {
      e.state = Entry::State::foreign;  // kept, after the ordered lines
    }
    entries.push_back(e);
  });
  stats.lines = entries.size();

  // 2. Claim lines in input order.
  std::vector<std::uint32_t> by_hash(entries.size());
  for (std::uint32_t i = 0; i < by_hash.size(); ++i) by_hash[i] = i;
  std::stable_sort(by_hash.begin(), by_hash.end(), [&](std::uint32_t a, std::uint32_t b) { return entries[a].hash < entries[b].hash; });
  std::vector<std::uint32_t> order;
  order.reserve(entries.size());
  std::string key;
  while (order.size() < free_lines && next_key(key)) {  // stops reading once every line is claimed
    const std::uint64_t h = CustomIdSet::hash(key);
    auto it = std::lower_bound(by_hash.begin(), by_hash.end(), h, [&](std::uint32_t i, std::uint64_t v) { return entries[i].hash < v; });
    for (; it != by_hash.end() && entries[*it].hash == h; ++it) {
      if (entries[*it].state == Entry::State::free) {
        entries[*it].state = Entry::State::claimed;
        order.push_back(*it);
        break;
      }
    }
  }
  // Lines no key claimed (foreign ones included) keep their old relative order, at the end.
  for (std::uint32_t i = 0; i < entries.size(); ++i) {
    if (entries[i].state != Entry::State::claimed) {
      order.push_back(i);
      ++stats.unclaimed;
    }
  }
  bool in_order = true;
  for (std::size_t i = 1; i < order.size() && in_order; ++i) in_order = order[i - 1] < order[i];
  if (in_order) return stats;

  // 3. Copy in that order, then replace the file in one rename.
  rewrite_with(path, entries, order, ".reorder.tmp");
  stats.rewritten = true;
  return stats;
}

std::vector<std::string> drop_failed_lines(const std::string& path) {
  std::vector<Entry> entries;  // the lines kept
  std::vector<std::string> dropped;
  scan_output(path, [&](const Entry& e, std::optional<OutputLineInfo> info) {
    if (info && info->error != ErrorKind::none) {
      dropped.push_back(journal_key(*info));
    } else {
      entries.push_back(e);
    }
  });
  if (dropped.empty()) return dropped;
  std::vector<std::uint32_t> order(entries.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  rewrite_with(path, entries, order, ".retry.tmp");
  return dropped;
}

std::uint64_t drop_lines_with_keys(const std::string& path, const std::vector<std::string>& keys) {
  if (keys.empty() || !std::filesystem::exists(path)) return 0;
  CustomIdSet drop;
  for (const auto& k : keys) drop.insert(k);
  std::vector<Entry> entries;  // the lines kept
  std::uint64_t dropped = 0;
  scan_output(path, [&](const Entry& e, std::optional<OutputLineInfo> info) {
    if (info && drop.contains(journal_key(*info))) {
      ++dropped;
    } else {
      entries.push_back(e);
    }
  });
  if (dropped == 0) return 0;
  std::vector<std::uint32_t> order(entries.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  rewrite_with(path, entries, order, ".retry.tmp");
  return dropped;
}

}  // namespace floodgate::store
