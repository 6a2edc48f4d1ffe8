#pragma once
// RunProcess: runs `floodgate run ARGS...` as a child process for one integration test.
//
//   floodgate::test::RunProcess p({"in.jsonl", "-o", "out.jsonl", "--base-url", url}, key, log);
//   p.signal(SIGINT);                        // Ctrl-C, SIGKILL for a crash ...
//   int rc = p.wait(std::chrono::seconds(20));  // exit code, 128+signal, or -1 on timeout
//
// stdout and stderr go to `log`; OPENAI_API_KEY is set to `api_key` and OPENAI_BASE_URL
// is unset in the child. The binary is FLOODGATE_BIN. The destructor kills (SIGKILL) and
// reaps a child that is still running, so no test leaves one behind.
//
//   run_to_end(sim, in, out, {"--max-in-flight", "8"}, log)   // `run IN -o OUT --base-url
//                                                             //  <sim> --quiet EXTRA...`, waited for

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace floodgate::test {

class SimProcess;

class RunProcess {
 public:
  // What else the child gets (crash and disk-full tests).
  struct Options {
    std::string command = "run";                                // the subcommand ("" for none)
    std::vector<std::pair<std::string, std::string>> env;       // variables set in the child
    long long file_size_limit_bytes = -1;                       // RLIMIT_FSIZE, SIGXFSZ ignored (writes fail with EFBIG)
  };
  RunProcess(const std::vector<std::string>& args, const std::string& api_key, const std::filesystem::path& log);
  RunProcess(const std::vector<std::string>& args, const std::string& api_key, const std::filesystem::path& log,
             const Options& options);
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  ~RunProcess();
  RunProcess(const RunProcess&) = delete;
  RunProcess& operator=(const RunProcess&) = delete;

  void signal(int sig) const;
  // The exit code, 128+signal when killed by one, or -1 when still running after `limit`.
  int wait(std::chrono::seconds limit);

 private:
  pid_t pid_ = -1;
  bool done_ = false;
};

// The arguments of `floodgate run IN -o OUT --base-url <sim> --quiet EXTRA...`.
[[nodiscard]] std::vector<std::string> run_args(const SimProcess& sim, const std::filesystem::path& in,
                                                const std::filesystem::path& out, const std::vector<std::string>& extra);

// Runs that command against `sim` with its key and waits up to `limit`: the exit code.
int run_to_end(const SimProcess& sim, const std::filesystem::path& in, const std::filesystem::path& out,
               const std::vector<std::string>& extra, const std::filesystem::path& log,
               std::chrono::seconds limit = std::chrono::seconds(60));

}  // namespace floodgate::test
