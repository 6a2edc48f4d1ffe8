#pragma once
// Files for integration tests: a scratch folder that removes itself, and the two ways tests
// read what a command wrote (the whole text; the lines of a JSONL file).
//
//   floodgate::test::TempDir dir("run");       // /tmp/fg_run_<pid>_<clock>, gone at scope end
//   auto lines = floodgate::test::read_jsonl(dir.path / "out.jsonl");
//
// and the chat input most tests send: write_chat_input(dir.path / "in.jsonl", "q", 50) writes
// q0..q49, each line chat_request(id, i) ("Say something about i", max_tokens 8).

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace floodgate::test {

class TempDir {
 public:
  // A new, empty folder under the system's temporary folder; `name` makes it recognisable.
  explicit TempDir(std::string_view name = "test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] std::string file(const std::string& name) const { return (path / name).string(); }

  std::filesystem::path path;
};

// The whole file as bytes ("" when it cannot be read).
[[nodiscard]] std::string slurp(const std::filesystem::path& path);

// Every non-empty line of a JSONL file, parsed (throws on a line that is not JSON).
[[nodiscard]] std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path);

// How many lines of a file another process is still writing are complete (end in '\n'):
// for waiting on progress, where read_jsonl could meet a line half written.
[[nodiscard]] std::size_t complete_lines(const std::filesystem::path& path);

// One Batch-format chat request: custom_id `custom_id`, /v1/chat/completions, body
// {"model": model, "messages": [{"role": "user", "content": "Say something about <i>"}], "max_tokens": 8}.
[[nodiscard]] nlohmann::json chat_request(const std::string& custom_id, int i, const std::string& model = "gpt-4o-mini");

// Writes `n` chat_request lines with custom_ids prefix0..prefix<n-1> to `path` (replacing
// it) and returns `path`.
std::filesystem::path write_chat_input(const std::filesystem::path& path, const std::string& prefix, int n,
                                       const std::string& model = "gpt-4o-mini");

}  // namespace floodgate::test
