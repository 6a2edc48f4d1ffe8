// reorder_output(): a JSONL output appended to by several runs, put back in input order;
// drop_failed_lines(): its error lines removed for --retry-failed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/store/output_order.hpp"

namespace floodgate {
namespace {

struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("fg_order_" + std::to_string(::getpid()) + "_" + name)) {}
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    std::filesystem::remove(path.string() + ".reorder.tmp", ec);
  }
  [[nodiscard]] std::string text() const {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
};

std::string ok_line(const std::string& id) {
  Outcome o;
  o.custom_id = id;
  o.status_code = 200;
  o.body = R"({"n":")" + id + R"("})";
  return format_output_line(o);
}

std::string bad_line(std::uint64_t line_no) {
  Outcome o;
  o.line_no = line_no;
  o.error = ErrorKind::invalid_input;
  o.error_message = "line " + std::to_string(line_no) + ": not JSON";
  return format_output_line(o);
}

// A next_key that yields `keys` in turn.
auto keys_from(std::vector<std::string> keys) {
  return [keys = std::move(keys), i = std::size_t{0}](std::string& key) mutable {
    if (i == keys.size()) return false;
    key = keys[i++];
    return true;
  };
}

TEST(ReorderOutput, PutsLinesInKeyOrderKeepingEveryLine) {
  TempFile f("a.jsonl");
  // Run 1 wrote a, c, @line:3; run 2 appended b, d; someone added a foreign line; the last
  // line has no newline.
  const std::string foreign = "{\"note\":\"not an output line\"}\n";
  std::ofstream(f.path, std::ios::binary) << ok_line("a") << ok_line("c") << bad_line(3) << ok_line("b") << foreign
                                          << ok_line("d").substr(0, ok_line("d").size() - 1);
  const store::ReorderStats r = store::reorder_output(f.path.string(), keys_from({"a", "b", "@line:3", "c", "d", "e"}));
  EXPECT_TRUE(r.rewritten);
  EXPECT_EQ(r.lines, 6u);
  EXPECT_EQ(r.unclaimed, 1u);
  EXPECT_EQ(f.text(), ok_line("a") + ok_line("b") + bad_line(3) + ok_line("c") + ok_line("d") + foreign);
  EXPECT_FALSE(std::filesystem::exists(f.path.string() + ".reorder.tmp"));
}

TEST(ReorderOutput, LeavesAnOrderedFileUntouched) {
  TempFile f("b.jsonl");
  const std::string text = ok_line("a") + ok_line("b") + ok_line("c");
  std::ofstream(f.path, std::ios::binary) << text;
  const auto before = std::filesystem::last_write_time(f.path);
  // Keys of lines not in the output (not done yet) are skipped.
  const store::ReorderStats r = store::reorder_output(f.path.string(), keys_from({"a", "x", "b", "y", "c"}));
  EXPECT_FALSE(r.rewritten);
  EXPECT_EQ(r.unclaimed, 0u);
  EXPECT_EQ(f.text(), text);
  EXPECT_EQ(std::filesystem::last_write_time(f.path), before);
}

// drop_failed_lines(): error lines leave (their keys returned in file order); successes and
// foreign lines stay in their order; a file without errors is left untouched.
TEST(DropFailedLines, RemovesErrorLinesOnlyAndReturnsTheirKeys) {
  TempFile f("drop");
  Outcome timeout;
  timeout.custom_id = "b";
  timeout.error = ErrorKind::timeout;
  timeout.error_message = "timeout: no answer";
  {
    std::ofstream out(f.path, std::ios::binary);
    // a success, a timeout, a foreign line, a bad input line, a blank line, a success
    out << ok_line("a") << format_output_line(timeout) << "not an output line\n" << bad_line(4) << "\n" << ok_line("c");
  }
  const std::string expected_kept = ok_line("a") + "not an output line\n" + ok_line("c");  // blank lines go too
  const auto dropped = store::drop_failed_lines(f.path.string());
  ASSERT_EQ(dropped.size(), 2u);
  EXPECT_EQ(dropped[0], "b");
  EXPECT_EQ(dropped[1], "@line:4");
  EXPECT_EQ(f.text(), expected_kept);
  EXPECT_FALSE(std::filesystem::exists(f.path.string() + ".retry.tmp"));

  const auto before = std::filesystem::last_write_time(f.path);
  EXPECT_TRUE(store::drop_failed_lines(f.path.string()).empty());
  EXPECT_EQ(std::filesystem::last_write_time(f.path), before);
  EXPECT_EQ(f.text(), expected_kept);
}

}  // namespace
}  // namespace floodgate
