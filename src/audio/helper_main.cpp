// floodgate-audio: the FFmpeg half of `floodgate transcribe`, run as a child process so
// the uploading process never maps FFmpeg's ~130 shared libraries (about 23 MB resident).
//
//   floodgate-audio plan --list FILE --chunk-root DIR [--max-chunk-seconds 600]
//                        [--max-chunk-bytes N] [--min-seconds 0] [--out PLANS]
//                        [--exec PROGRAM ARG...]
//       FILE holds "<index>\t<path>" lines; for each, one plan_to_json() line on stdout or
//       in PLANS (flushed per file), chunks of split files under DIR/<index>/. With --exec,
//       when every file is planned the helper replaces itself with PROGRAM ARG..., with its
//       own peak RSS in $FLOODGATE_AUDIO_PLANNER_PEAK_KIB: `floodgate transcribe` execs the helper
//       and the helper execs transcribe back, so the FFmpeg process and the uploading
//       process are never resident at the same time (same pid all along).
//   floodgate-audio probe PATH...     one JSON line per file (for people and scripts)
//
// Exit codes: 0 done (per-file errors are in the output), 2 usage, 70 internal error.

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "floodgate/audio/job.hpp"
#include "floodgate/audio_media/plan.hpp"
#include "floodgate/audio_media/probe.hpp"

namespace {

using namespace floodgate::audio;

int usage(const char* why) {
  std::fprintf(stderr,
               "floodgate-audio: %s\n"
               "usage: floodgate-audio plan --list FILE --chunk-root DIR [--max-chunk-seconds N] "
               "[--max-chunk-bytes N] [--min-seconds N] [--out FILE] [--exec PROGRAM ARG...]\n"
               "       floodgate-audio probe PATH...\n",
               why);
  return 2;
}

// This process's peak resident memory (VmHWM), in KiB.
long peak_kib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  long kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "VmHWM: %ld", &kib) == 1) break;
  }
  std::fclose(f);
  return kib;
}

int plan(int argc, char** argv) {
  std::string list;
  std::string root;
  std::string out_path;
  std::vector<std::string> then;  // --exec PROGRAM ARG...
  SplitOptions options;
  double min_seconds = 0;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--exec") {
      then.assign(argv + i + 1, argv + argc);
      if (then.empty()) return usage("--exec needs a program");
      break;
    }
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
    } else if (a == "--out") {
      out_path = v;
    } else {
      return usage(("unknown option " + a).c_str());
    }
  }
  if (list.empty() || root.empty()) return usage("plan needs --list and --chunk-root");
  std::ifstream in(list);
  if (!in) return usage(("cannot read " + list).c_str());
  std::FILE* out = stdout;
  if (!out_path.empty()) {
    out = std::fopen(out_path.c_str(), "we");
    if (out == nullptr) return usage(("cannot write " + out_path).c_str());
  }
  std::string line;
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    const std::size_t index = std::strtoull(line.c_str(), nullptr, 10);
    const std::string path = line.substr(tab + 1);
    const FilePlan p = plan_file(index, path, options, std::filesystem::path(root) / std::to_string(index),
                                 Seconds(min_seconds));
    const std::string text = plan_to_json(p) + "\n";
    if (std::fwrite(text.data(), 1, text.size(), out) != text.size() || std::fflush(out) != 0) {
      std::fprintf(stderr, "floodgate-audio: cannot write the plan of %s\n", path.c_str());
      return 70;
    }
  }
  if (out != stdout && std::fclose(out) != 0) {
    std::fprintf(stderr, "floodgate-audio: cannot write %s\n", out_path.c_str());
    return 70;
  }
  in.close();
  if (then.empty()) return 0;
  ::setenv("FLOODGATE_AUDIO_PLANNER_PEAK_KIB", std::to_string(peak_kib()).c_str(), 1);
  std::vector<char*> args;
  for (auto& a : then) args.push_back(a.data());
  args.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execv(args[0], args.data());
  std::fprintf(stderr, "floodgate-audio: cannot run %s: %s\n", args[0], std::strerror(errno));
  return 70;
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
