// The CSV results sink. See include/floodgate/store/table_sink.hpp.

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/csv/csv.hpp"
#include "table_row.hpp"

namespace floodgate::store {
namespace {

using detail::Cell;

// Reads an existing results file: checks its header, collects its keys, and returns the
// byte length of its complete records. A torn tail (a record left open by a crash, or a
// last record without its line break) is not counted: the caller cuts it off and the
// engine re-runs that row.
std::uint64_t scan_existing(const std::string& path, const std::vector<std::string>& header, CustomIdSet& keys) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return 0;
  std::uint64_t prev_end = 0;
  std::uint64_t end = 0;
  bool torn = false;
  std::string mismatch;
  std::string pending_key;
  bool has_pending = false;
  {
    csv::Reader reader(f);
    csv::Record r;
    while (reader.next(r)) {
      if (!r.error.empty()) {
        torn = true;
        break;
      }
      if (r.number == 1) {
        if (r.fields != header) {
          for (const auto& h : r.fields) mismatch += (mismatch.empty() ? "" : ",") + h;
          if (mismatch.empty()) mismatch = "?";
          break;
        }
      } else {
        if (has_pending) keys.insert(pending_key);
        pending_key = r.fields.empty() ? std::string{} : r.fields[0];
        has_pending = true;
      }
      prev_end = end;
      end = reader.bytes_read();
    }
  }
  if (!torn && end > 0) {
    char last = 0;
    if (std::fseek(f, static_cast<long>(end) - 1, SEEK_SET) == 0 && std::fread(&last, 1, 1, f) == 1 && last != '\n') {
      end = prev_end;  // the last record has no line break: it may be cut short
      has_pending = false;
    }
  }
  std::fclose(f);
  if (!mismatch.empty()) {
    throw Error(path + " holds other columns (" + mismatch.substr(0, 200) +
                "); use another output file or --overwrite");
  }
  if (has_pending) keys.insert(pending_key);
  return end;
}

// Rewrites the results file without the records whose key is in `drop` (a copy, fsynced and
// renamed over `path`: a crash leaves the old file or the new one, whole). Returns how many
// records went.
std::uint64_t drop_records(const std::string& path, const CustomIdSet& drop) {
  struct Range {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
  };
  std::vector<Range> keep;
  std::uint64_t dropped = 0;
  {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return 0;
    csv::Reader reader(f);
    csv::Record r;
    std::uint64_t begin = 0;
    while (reader.next(r)) {
      const std::uint64_t end = reader.bytes_read();
      const bool gone = r.number > 1 && !r.fields.empty() && drop.contains(r.fields[0]);
      if (gone) {
        ++dropped;
      } else if (!keep.empty() && keep.back().end == begin) {
        keep.back().end = end;
      } else {
        keep.push_back(Range{begin, end});
      }
      begin = end;
    }
    std::fclose(f);
  }
  if (dropped == 0) return 0;
  const std::string tmp = path + ".retry.tmp";
  auto fail = [&](const std::string& what) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error(what + ": " + reason);
  };
  std::FILE* in = std::fopen(path.c_str(), "rb");
  if (in == nullptr) fail("cannot read " + path);
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (out == nullptr) {
    std::fclose(in);
    fail("cannot write " + tmp);
  }
  std::vector<char> buf(1 << 16);
  bool ok = true;
  for (const Range& range : keep) {
    if (std::fseek(in, static_cast<long>(range.begin), SEEK_SET) != 0) ok = false;
    for (std::uint64_t left = range.end - range.begin; ok && left > 0;) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
      const std::size_t got = std::fread(buf.data(), 1, want, in);
      if (got != want || std::fwrite(buf.data(), 1, got, out) != got) ok = false;
      left -= got;
    }
  }
  std::fclose(in);
  if (std::fflush(out) != 0 || ::fdatasync(::fileno(out)) != 0) ok = false;
  if (std::fclose(out) != 0) ok = false;
  if (!ok) fail("cannot rewrite " + path + " without the rows sent again");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename " + tmp + " over " + path);
  return dropped;
}

class CsvSink final : public Sink {
 public:
  CsvSink(const std::string& path, OpenMode mode, TableSinkOptions options)
      : path_(path), flattener_(std::move(options), false) {
    const auto& header = flattener_.columns();
    bool write_header = true;
    if (mode == OpenMode::append) {
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0 && st.st_size > 0) {
        const std::uint64_t keep = scan_existing(path, header, existing_);
        if (keep < static_cast<std::uint64_t>(st.st_size)) {
          if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0) {
            throw Error("cannot cut the torn end of " + path + ": " + std::strerror(errno));
          }
        }
        write_header = keep == 0;
      }
    }
    file_ = std::fopen(path.c_str(), mode == OpenMode::append ? "ab" : "wb");
    if (file_ == nullptr) throw Error("cannot write " + path + ": " + std::strerror(errno));
    if (write_header) csv::append_record(buffer_, header);
  }

  ~CsvSink() override {
    if (file_ != nullptr) std::fclose(file_);
  }

  void write(const Outcome& outcome, const RowContext& context) override {
    if (existing_.size() > 0 && existing_.contains(detail::Flattener::key_of(outcome))) return;
    flattener_.flatten(outcome, context, cells_);
    fields_.clear();
    for (const Cell& c : cells_) fields_.push_back(detail::cell_text(c));
    csv::append_record(buffer_, fields_);
  }

  // write(2) straight to the descriptor (nothing goes through stdio's buffer): after a
  // failure (a full disk) the buffer keeps exactly the bytes that did not reach the file, so
  // a later flush() finishes the record the file now ends in.
  void flush() override {
    if (file_ == nullptr) return;
    std::size_t off = 0;
    while (off < buffer_.size()) {
      const ssize_t n = ::write(::fileno(file_), buffer_.data() + off, buffer_.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        buffer_.erase(0, off);
        throw Error("cannot write " + path_ + ": " + std::strerror(err), write_failure_exit_code(err));
      }
      off += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

  // The old rows of keys sent again leave the file (so the new row is written, once), and
  // the file is reopened: the rewrite replaced it.
  void forget(const std::vector<std::string>& keys) override {
    if (file_ == nullptr || keys.empty()) return;
    flush();
    CustomIdSet drop;
    for (const auto& k : keys) drop.insert(k);
    if (drop_records(path_, drop) == 0) return;
    std::fclose(file_);
    file_ = std::fopen(path_.c_str(), "ab");
    if (file_ == nullptr) throw Error("cannot write " + path_ + ": " + std::strerror(errno));
    existing_ = CustomIdSet{};
    scan_existing(path_, flattener_.columns(), existing_);
  }

  void close() override {
    if (file_ == nullptr) return;
    flush();
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) throw Error("cannot close " + path_ + ": " + std::strerror(errno));
  }

 private:
  std::string path_;
  detail::Flattener flattener_;
  std::FILE* file_ = nullptr;
  std::string buffer_;
  std::vector<Cell> cells_;
  std::vector<std::string> fields_;
  CustomIdSet existing_;
};

}  // namespace

std::unique_ptr<Sink> make_csv_sink(const std::string& path, OpenMode mode, TableSinkOptions options) {
  return std::make_unique<CsvSink>(path, mode, std::move(options));
}

}  // namespace floodgate::store
