#include "options.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "floodgate/core/error.hpp"
#include "floodgate/store/journal.hpp"

namespace floodgate::engine {

std::string option_name(const EngineOptions& opt, std::string_view option) {
  return opt.option_words ? opt.option_words(option) : std::string(option);
}

namespace {

// Only http:// and https:// reach an API; anything else ("htp://") used to be retried as
// a connection error on every line.
void check_base_url(const std::string& url) {
  std::string lower = url.substr(0, 8);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.starts_with("http://") || lower.starts_with("https://")) return;
  const std::size_t sep = url.find("://");
  throw Error("the base URL \"" + url + "\" " +
              (sep == std::string::npos ? std::string("has no scheme") : "has the unknown scheme \"" + url.substr(0, sep) + "\"") +
              ": it must start with https:// or http:// (--base-url / OPENAI_BASE_URL, e.g. https://api.openai.com/v1)");
}

}  // namespace

void resolve_options(EngineOptions& opt) {
  if (opt.max_in_flight == 0) throw Error(option_name(opt, "max_in_flight") + " must be at least 1");
  if (opt.retry.max_attempts < 1) throw Error(option_name(opt, "retry.max_attempts") + " must be at least 1");
  if (opt.retry_failed && opt.output_path == "-") {
    throw Error(option_name(opt, "retry_failed") + " rewrites the output file, so it needs -o FILE (not stdout)");
  }
  check_base_url(opt.base_url);
  if (!opt.estimator) opt.estimator = conservative_estimator();
  if (opt.journal_path.empty()) {
    if (opt.output_path == "-") throw Error("writing the output to stdout needs --journal PATH (the journal makes the job resumable)");
    if (opt.output_path.empty()) throw Error("a job without an output file needs a journal path (or EngineOptions::kJournalInMemory)");
    opt.journal_path = store::default_journal_path(opt.output_path);
  }
  if (output_is_file(opt)) check_folder_writable(opt.output_path, "output");
  if (!journal_in_memory(opt)) check_folder_writable(opt.journal_path, "journal");
}

// The folder a file of the run goes in must exist and be writable: say which and why
// (SQLite would only say "unable to open database file").
void check_folder_writable(const std::string& file, const char* what) {
  std::string folder = std::filesystem::path(file).parent_path().string();
  if (folder.empty()) folder = ".";
  struct stat st {};
  const std::string head = std::string("cannot write the ") + what + " \"" + file + "\": the folder \"" + folder + "\" ";
  if (::stat(folder.c_str(), &st) != 0) {
    throw Error(head + (errno == ENOENT ? std::string("does not exist (create it first)") : "cannot be used (" + std::string(std::strerror(errno)) + ")"));
  }
  if (!S_ISDIR(st.st_mode)) throw Error(head + "is not a folder");
  if (::access(folder.c_str(), W_OK | X_OK) != 0) throw Error(head + "is not writable (" + std::string(std::strerror(errno)) + ")");
}

std::size_t default_response_cap(Endpoint endpoint) noexcept {
  return endpoint == Endpoint::embeddings ? std::size_t{128} << 20 : std::size_t{32} << 20;
}

}  // namespace floodgate::engine
