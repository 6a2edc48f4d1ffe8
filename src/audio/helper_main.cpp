// floodgate-audio: the FFmpeg half of `floodgate transcribe`, run as a child process so
// the uploading process never maps FFmpeg's ~130 shared libraries (about 23 MB resident).
//
//   floodgate-audio plan --list FILE --chunk-root DIR [--max-chunk-seconds 600]
//                        [--max-chunk-bytes N] [--min-seconds 0]
//       FILE holds "<index>\t<path>" lines; for each, one plan_to_json() line on stdout
//       (flushed per file), chunks of split files under DIR/<index>/.
//   floodgate-audio probe PATH...     one JSON line per file (for people and scripts)
//
// Exit codes: 0 done (per-file errors are in the output), 2 usage, 70 internal error.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "floodgate/audio/job.hpp"
#include "floodgate/audio/plan.hpp"

namespace {

using namespace floodgate::audio;

int usage(const char* why) {
  std::fprintf(stderr,
               "floodgate-audio: %s\n"
               "usage: floodgate-audio plan --list FILE --chunk-root DIR [--max-chunk-seconds N] "
               "[--max-chunk-bytes N] [--min-seconds N]\n"
               "       floodgate-audio probe PATH...\n",
               why);
  return 2;
}

int plan(int argc, char** argv) {
  std::string list;
  std::string root;
  SplitOptions options;
  double min_seconds = 0;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage(("missing value for " + a).c_str());
    const char* v = argv[++i];
    if (a == "--list") {
      list = v;
    } else if (a == "--chunk-root") {
      root = v;
    } else if (a == "--max-chunk-seconds") {
      options.max_chunk = Seconds(std::strtod(v, nullptr));
    } else if (a == "--max-chunk-bytes") {
      options.max_chunk_bytes = std::strtoull(v, nullptr, 10);
    } else if (a == "--min-seconds") {
      min_seconds = std::strtod(v, nullptr);
    } else {
      return usage(("unknown option " + a).c_str());
    }
  }
  if (list.empty() || root.empty()) return usage("plan needs --list and --chunk-root");
  std::ifstream in(list);
  if (!in) return usage(("cannot read " + list).c_str());
  std::string line;
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    const std::size_t index = std::strtoull(line.c_str(), nullptr, 10);
    const std::string path = line.substr(tab + 1);
    const FilePlan p = plan_file(index, path, options, std::filesystem::path(root) / std::to_string(index),
                                 Seconds(min_seconds));
    const std::string out = plan_to_json(p) + "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }
  return 0;
}

int probe_files(int argc, char** argv) {
  if (argc < 3) return usage("probe needs at least one PATH");
  for (int i = 2; i < argc; ++i) {
    FilePlan p;
    p.index = static_cast<std::size_t>(i - 2);
    auto info = probe(argv[i]);
    if (info) {
      p.info = *info;
    } else {
      p.error = info.error();
    }
    std::printf("%s\n", plan_to_json(p).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) return usage("no command");
    if (std::strcmp(argv[1], "plan") == 0) return plan(argc, argv);
    if (std::strcmp(argv[1], "probe") == 0) return probe_files(argc, argv);
    return usage((std::string("unknown command ") + argv[1]).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "floodgate-audio: internal error: %s\n", e.what());
    return 70;
  }
}
