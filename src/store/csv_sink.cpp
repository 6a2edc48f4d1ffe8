// The CSV results sink. See include/floodgate/store/table_sink.hpp.

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/csv/csv.hpp"
#include "table_row.hpp"

namespace floodgate {
namespace {

using store_detail::Cell;

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
    if (existing_.size() > 0 && existing_.contains(store_detail::Flattener::key_of(outcome))) return;
    flattener_.flatten(outcome, context, cells_);
    fields_.clear();
    for (const Cell& c : cells_) fields_.push_back(store_detail::cell_text(c));
    csv::append_record(buffer_, fields_);
  }

  void flush() override {
    if (file_ == nullptr) return;
    if (!buffer_.empty()) {
      if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
        throw Error("cannot write " + path_ + ": " + std::strerror(errno));
      }
      buffer_.clear();
    }
    if (std::fflush(file_) != 0) throw Error("cannot write " + path_ + ": " + std::strerror(errno));
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
  store_detail::Flattener flattener_;
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

}  // namespace floodgate
