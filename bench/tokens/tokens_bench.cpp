// Encode throughput of floodgate::tokens on the benchmark texts: for each file and
// encoding, the best of --reps single-threaded encode() runs, in MB/s (10^6 bytes per
// CPU second of this thread, so other processes on a shared machine matter little), plus
// the token count so the peers' results can be checked against it.
// Output: one line per measurement, "floodgate <encoding> <file> <MB/s> <tokens> <seconds>".
// Usage: tokens_bench [--reps N] FILE...
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "floodgate/tokens/encoding.hpp"

namespace {
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace floodgate::tokens;
  int reps = 3;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      files.push_back(a);
    }
  }
  for (const EncodingId id : {EncodingId::cl100k_base, EncodingId::o200k_base}) {
    const Encoding& enc = Encoding::get(id);
    for (const auto& path : files) {
      std::ifstream in(path, std::ios::binary);
      const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      double best = 1e300;
      std::size_t tokens = 0;
      std::vector<Rank> ids;
      for (int r = 0; r < reps; ++r) {
        ids.clear();
        const double t0 = thread_cpu_seconds();
        enc.encode_into(text, ids);
        best = std::min(best, thread_cpu_seconds() - t0);
        tokens = ids.size();
      }
      const auto slash = path.find_last_of('/');
      std::printf("floodgate %s %s %.1f %zu %.4f\n", std::string(enc.name()).c_str(),
                  path.substr(slash == std::string::npos ? 0 : slash + 1).c_str(),
                  static_cast<double>(text.size()) / best / 1e6, tokens, best);
      std::fflush(stdout);
    }
  }
  return 0;
}
