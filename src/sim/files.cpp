#include "sim/files.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "floodgate/core/error.hpp"
#include "sim/util.hpp"

namespace floodgate::sim {

long long unix_now() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

FileSpool::FileSpool(std::string path) : path_(std::move(path)) {
  file_ = std::fopen(path_.c_str(), "wb");
  if (file_ == nullptr) throw Error("sim: cannot create " + path_);
}

FileSpool::~FileSpool() {
  if (file_ != nullptr) std::fclose(file_);
  if (!adopted_) {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
}

bool FileSpool::write(std::string_view data) {
  if (!ok_ || file_ == nullptr) return false;
  if (std::fwrite(data.data(), 1, data.size(), file_) != data.size()) ok_ = false;
  bytes_ += data.size();
  return ok_;
}

FileStore::FileStore(std::string dir, std::uint64_t seed) : dir_(std::move(dir)), seed_(seed) {
  if (dir_.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/floodgate_sim_files_XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw Error("sim: cannot create a folder for the Files API");
    dir_ = pattern;
    owns_dir_ = true;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) throw Error("sim: cannot create --batch-dir " + dir_ + ": " + ec.message());
  }
}

FileStore::~FileStore() {
  if (owns_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string FileStore::next_id() {
  const std::uint64_t n = ++counter_;
  const std::uint64_t a = mix64(seed_ ^ mix64(n ^ 0xf11e5ULL));
  std::uint8_t bytes[12];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::uint8_t>(a >> (8 * i));
  for (int i = 0; i < 4; ++i) bytes[8 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  return "file-" + to_hex(bytes, sizeof bytes);
}

StoredFile FileStore::new_record(std::string filename, std::string purpose) {
  StoredFile f;
  f.id = next_id();
  f.filename = std::move(filename);
  f.purpose = std::move(purpose);
  f.path = dir_ + "/" + f.id;
  f.created_at = unix_now();
  return f;
}

std::unique_ptr<FileSpool> FileStore::spool() {
  std::uint64_t n = 0;
  {
    const std::lock_guard lock(mutex_);
    n = ++spool_counter_;
  }
  return std::make_unique<FileSpool>(dir_ + "/upload-" + std::to_string(n) + ".part");
}

std::optional<StoredFile> FileStore::add_upload(FileSpool& spool, std::string filename, std::string purpose) {
  if (spool.file_ != nullptr) {
    if (std::fclose(spool.file_) != 0) spool.ok_ = false;
    spool.file_ = nullptr;
  }
  if (!spool.ok_) return std::nullopt;
  const std::lock_guard lock(mutex_);
  StoredFile f = new_record(std::move(filename), std::move(purpose));
  f.bytes = spool.bytes_;
  std::error_code ec;
  std::filesystem::rename(spool.path_, f.path, ec);
  if (ec) return std::nullopt;
  spool.adopted_ = true;
  files_.push_back(f);
  return f;
}

std::string FileStore::scratch_path(std::string_view name) const { return dir_ + "/" + std::string(name); }

StoredFile FileStore::add_file(const std::string& path, std::string filename, std::string purpose) {
  const std::lock_guard lock(mutex_);
  StoredFile f = new_record(std::move(filename), std::move(purpose));
  std::error_code ec;
  std::filesystem::rename(path, f.path, ec);
  if (ec) throw Error("sim: cannot store " + path + ": " + ec.message());
  f.bytes = std::filesystem::file_size(f.path, ec);
  files_.push_back(f);
  return f;
}

std::optional<StoredFile> FileStore::get(std::string_view id) {
  const std::lock_guard lock(mutex_);
  const auto it = std::find_if(files_.begin(), files_.end(), [&](const StoredFile& f) { return f.id == id; });
  if (it == files_.end()) return std::nullopt;
  return *it;
}

std::vector<StoredFile> FileStore::list() {
  const std::lock_guard lock(mutex_);
  return files_;
}

bool FileStore::remove(std::string_view id) {
  const std::lock_guard lock(mutex_);
  const auto it = std::find_if(files_.begin(), files_.end(), [&](const StoredFile& f) { return f.id == id; });
  if (it == files_.end()) return false;
  std::error_code ec;
  std::filesystem::remove(it->path, ec);
  files_.erase(it);
  return true;
}

nlohmann::ordered_json file_object(const StoredFile& file) {
  return nlohmann::ordered_json{{"id", file.id},
                                {"object", "file"},
                                {"bytes", file.bytes},
                                {"created_at", file.created_at},
                                {"expires_at", nullptr},
                                {"filename", file.filename},
                                {"purpose", file.purpose},
                                {"status", "processed"},
                                {"status_details", nullptr}};
}

}  // namespace floodgate::sim
