#pragma once
// A job's temporary chunk files live in one directory per input file under a root the
// job chooses (transcribe uses OUTDIR/.floodgate-tmp). The directory holds a lock file
// locked with flock() for as long as the ChunkDir lives; the destructor removes the
// directory. After a crash the lock is released by the kernel, so the next run's
// remove_stale_chunk_dirs() can tell a dead job's directory (lock free) from a live one
// (lock held, by this or another process) and removes only the dead ones. A directory can
// outlive an exec() of its process (release_for_exec / adopt), e.g. `floodgate transcribe`
// -> `floodgate-audio plan` -> `floodgate transcribe`, locked all along.

#include <filesystem>
#include <string_view>

#include "floodgate/audio/error.hpp"

namespace floodgate::audio {

class ChunkDir {
 public:
  // Creates root (if needed) and a fresh directory root/chunks-<pid>-<n>-<tag>.
  [[nodiscard]] static AudioResult<ChunkDir> create(const std::filesystem::path& root, std::string_view tag = "");

  ChunkDir(ChunkDir&& other) noexcept;
  ChunkDir& operator=(ChunkDir&& other) noexcept;
  ChunkDir(const ChunkDir&) = delete;
  ChunkDir& operator=(const ChunkDir&) = delete;
  ~ChunkDir();

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  // Removes the directory now (the destructor does it otherwise).
  void remove() noexcept;

  // Hands the directory to the program this process is about to exec(): the lock's file
  // descriptor stays open (and locked) across exec, and this object forgets the directory
  // (it neither removes it nor closes the lock). Returns the descriptor for adopt().
  [[nodiscard]] int release_for_exec() noexcept;
  // Takes back a directory handed over by release_for_exec() in an earlier program of this
  // process; fails when `lock_fd` is not an open descriptor of path's lock file.
  [[nodiscard]] static AudioResult<ChunkDir> adopt(const std::filesystem::path& path, int lock_fd);

 private:
  ChunkDir(std::filesystem::path path, int lock_fd) noexcept : path_(std::move(path)), lock_fd_(lock_fd) {}
  std::filesystem::path path_;
  int lock_fd_ = -1;
};

// Removes every chunks-* directory under root whose lock is not held. Returns how many.
std::size_t remove_stale_chunk_dirs(const std::filesystem::path& root) noexcept;

}  // namespace floodgate::audio
