// The journal's pause records: what a re-run reads to leave a paused model alone.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "floodgate/store/journal.hpp"

namespace floodgate {
namespace {

struct TempJournal {
  std::filesystem::path path;
  TempJournal() : path(std::filesystem::temp_directory_path() / ("fg_pause_" + std::to_string(::getpid()) + ".journal")) { remove(); }
  ~TempJournal() { remove(); }
  void remove() const {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix, ec);
  }
};

TEST(JournalPause, SurvivesReopenReplacesAndClears) {
  TempJournal tj;
  using std::chrono::system_clock;
  // Whole milliseconds: that is the stored resolution.
  const auto t1 = system_clock::time_point(std::chrono::milliseconds(1'800'000'000'123));
  const auto t2 = t1 + std::chrono::hours(3);
  {
    store::Journal j(tj.path.string(), "id");
    EXPECT_TRUE(j.pauses().empty());
    j.set_pause({"gpt-4o-mini", t1, "the provider's daily limit"});
    j.set_pause({"gpt-4o", t1, "x"});
    j.set_pause({"gpt-4o-mini", t2, "again"});  // replaces, never duplicates
  }
  store::Journal j(tj.path.string(), "id");
  auto p = j.pauses();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].model, "gpt-4o");  // ordered by model
  EXPECT_EQ(p[1].model, "gpt-4o-mini");
  EXPECT_EQ(p[1].until, t2);
  EXPECT_EQ(p[1].reason, "again");
  j.clear_pause("gpt-4o");
  p = j.pauses();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].model, "gpt-4o-mini");
  // Outcomes are untouched by pauses.
  EXPECT_EQ(j.count(), 0u);
}

}  // namespace
}  // namespace floodgate
