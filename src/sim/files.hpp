#pragma once
// The simulator's Files API store: every file lives on disk in one folder (a fresh
// temporary one unless --batch-dir), never in memory. Uploads are streamed into a FileSpool
// part by part as the multipart body arrives; batch outputs are written by the simulator
// itself and added with add_file(). Thread-safe.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace floodgate::sim {

struct StoredFile {
  std::string id;        // "file-<24 hex>"
  std::string filename;
  std::string purpose;   // "batch", "batch_output", ...
  std::string path;      // on disk
  std::uint64_t bytes = 0;
  long long created_at = 0;  // Unix seconds
};

// The file part of one upload, written to disk as it arrives; removed unless adopted.
class FileSpool {
 public:
  explicit FileSpool(std::string path);  // throws floodgate::Error
  ~FileSpool();
  FileSpool(const FileSpool&) = delete;
  FileSpool& operator=(const FileSpool&) = delete;
  bool write(std::string_view data);
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  friend class FileStore;
  std::string path_;
  std::FILE* file_ = nullptr;
  std::uint64_t bytes_ = 0;
  bool ok_ = true;
  bool adopted_ = false;
};

class FileStore {
 public:
  FileStore(std::string dir, std::uint64_t seed);  // empty dir: a new temporary folder
  ~FileStore();                                    // removes a temporary folder it made
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;

  [[nodiscard]] std::unique_ptr<FileSpool> spool();
  // Adopts a finished spool as a file; nullopt when writing it failed.
  std::optional<StoredFile> add_upload(FileSpool& spool, std::string filename, std::string purpose);
  // A path for a file the simulator writes itself, then adds with add_file().
  [[nodiscard]] std::string scratch_path(std::string_view name) const;
  StoredFile add_file(const std::string& path, std::string filename, std::string purpose);
  [[nodiscard]] std::optional<StoredFile> get(std::string_view id);
  [[nodiscard]] std::vector<StoredFile> list();  // oldest first
  bool remove(std::string_view id);

 private:
  std::string next_id();
  StoredFile new_record(std::string filename, std::string purpose);  // under mutex_
  std::string dir_;
  bool owns_dir_ = false;
  std::uint64_t seed_;
  std::mutex mutex_;
  std::uint64_t counter_ = 0;
  std::uint64_t spool_counter_ = 0;
  std::vector<StoredFile> files_;
};

// The file object of the Files API.
[[nodiscard]] nlohmann::ordered_json file_object(const StoredFile& file);

// Unix seconds now (the API's timestamps).
[[nodiscard]] long long unix_now() noexcept;

}  // namespace floodgate::sim
