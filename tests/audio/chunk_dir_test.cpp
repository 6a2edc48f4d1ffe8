#include "floodgate/audio/chunk_dir.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

namespace floodgate::audio {
namespace {

std::filesystem::path fresh_root(const char* name) {
  const std::filesystem::path root = std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::remove_all(root);
  return root;
}

TEST(ChunkDir, CreatedAndRemovedWithItsFiles) {
  const auto root = fresh_root("floodgate-chunkdir-a");
  std::filesystem::path p;
  {
    auto d = ChunkDir::create(root, "my file.mp3");
    ASSERT_TRUE(d.ok()) << d.error().message;
    p = d->path();
    EXPECT_TRUE(std::filesystem::is_directory(p));
    EXPECT_NE(p.filename().string().find("my_file_mp3"), std::string::npos);
    std::ofstream(p / "chunk-0000.mp3") << "x";
    auto moved = std::move(d.value());
    EXPECT_EQ(moved.path(), p);
  }
  EXPECT_FALSE(std::filesystem::exists(p));
}

TEST(ChunkDir, StaleDirectoriesOfACrashedRunAreRemovedLiveOnesKept) {
  const auto root = fresh_root("floodgate-chunkdir-b");
  auto live = ChunkDir::create(root);
  ASSERT_TRUE(live.ok());
  std::ofstream(live->path() / "chunk-0000.wav") << "live";

  // A child process makes a chunk directory and dies without cleaning up.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto d = ChunkDir::create(root, "crashed");
    if (d.ok()) std::ofstream(d->path() / "chunk-0000.wav") << "stale";
    ::_exit(d.ok() ? 0 : 1);  // no destructors: as a crash leaves it
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  std::size_t before = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(root)) ++before;
  ASSERT_EQ(before, 2U);
  EXPECT_EQ(remove_stale_chunk_dirs(root), 1U);
  EXPECT_TRUE(std::filesystem::exists(live->path() / "chunk-0000.wav"));
  std::size_t after = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(root)) ++after;
  EXPECT_EQ(after, 1U);
  EXPECT_EQ(remove_stale_chunk_dirs(root), 0U);
  EXPECT_EQ(remove_stale_chunk_dirs(root / "missing"), 0U);
}

TEST(ChunkDir, HandedOverAcrossExecStaysLockedAndIsTakenBack) {
  const auto root = fresh_root("floodgate-chunkdir-c");
  auto d = ChunkDir::create(root, "job");
  ASSERT_TRUE(d.ok());
  const std::filesystem::path p = d->path();
  std::ofstream(p / "plan.jsonl") << "{}";
  const int fd = d->release_for_exec();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);  // survives exec
  d = ChunkDir::create(root, "other");             // the released object no longer owns p
  EXPECT_TRUE(std::filesystem::exists(p / "plan.jsonl"));
  EXPECT_EQ(remove_stale_chunk_dirs(root), 0U);    // still locked: not stale

  const int other_fd = d->release_for_exec();
  EXPECT_FALSE(ChunkDir::adopt(p, other_fd).ok());  // another directory's lock
  ::close(other_fd);
  EXPECT_FALSE(ChunkDir::adopt(p, -1).ok());
  {
    auto back = ChunkDir::adopt(p, fd);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->path(), p);
    EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_TRUE(std::filesystem::exists(p / "plan.jsonl"));
  }
  EXPECT_FALSE(std::filesystem::exists(p));  // removed when the adopting object ends
}

}  // namespace
}  // namespace floodgate::audio
