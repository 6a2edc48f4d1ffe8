#include "support/files.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

namespace floodgate::test {

TempDir::TempDir(std::string_view name) {
  path = std::filesystem::temp_directory_path() /
         ("fg_" + std::string(name) + "_" + std::to_string(::getpid()) + "_" +
          std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::filesystem::create_directories(path);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

std::size_t complete_lines(const std::filesystem::path& path) {
  const std::string text = slurp(path);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

nlohmann::json chat_request(const std::string& custom_id, int i, const std::string& model) {
  return {{"custom_id", custom_id},
          {"method", "POST"},
          {"url", "/v1/chat/completions"},
          {"body", {{"model", model}, {"messages", {{{"role", "user"}, {"content", "Say something about " + std::to_string(i)}}}}, {"max_tokens", 8}}}};
}

std::filesystem::path write_chat_input(const std::filesystem::path& path, const std::string& prefix, int n, const std::string& model) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  for (int i = 0; i < n; ++i) f << chat_request(prefix + std::to_string(i), i, model).dump() << '\n';
  return path;
}

}  // namespace floodgate::test
