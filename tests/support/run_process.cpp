#include "support/run_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "support/sim_process.hpp"

namespace floodgate::test {

RunProcess::RunProcess(const std::vector<std::string>& args, const std::string& api_key, const std::filesystem::path& log)
    : RunProcess(args, api_key, log, Options{}) {}

RunProcess::RunProcess(const std::vector<std::string>& args, const std::string& api_key, const std::filesystem::path& log,
                       const Options& options) {
  pid_ = ::fork();
  if (pid_ == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::setenv("OPENAI_API_KEY", api_key.c_str(), 1);
    ::unsetenv("OPENAI_BASE_URL");
    for (const auto& [name, value] : options.env) ::setenv(name.c_str(), value.c_str(), 1);
    if (options.file_size_limit_bytes >= 0) {
      ::signal(SIGXFSZ, SIG_IGN);  // kept across exec: a write past the limit fails with EFBIG
      const rlimit lim{static_cast<rlim_t>(options.file_size_limit_bytes), static_cast<rlim_t>(options.file_size_limit_bytes)};
      ::setrlimit(RLIMIT_FSIZE, &lim);
    }
    std::vector<std::string> all = {FLOODGATE_BIN};
    if (!options.command.empty()) all.push_back(options.command);
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
}

RunProcess::~RunProcess() {
  if (pid_ > 0 && !done_) {
    ::kill(pid_, SIGKILL);
    (void)wait(std::chrono::seconds(10));
  }
}

void RunProcess::signal(int sig) const { ::kill(pid_, sig); }

int RunProcess::wait(std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      done_ = true;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::vector<std::string> run_args(const SimProcess& sim, const std::filesystem::path& in, const std::filesystem::path& out,
                                  const std::vector<std::string>& extra) {
  std::vector<std::string> a = {in.string(), "-o", out.string(), "--base-url", sim.base_url(), "--quiet"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

int run_to_end(const SimProcess& sim, const std::filesystem::path& in, const std::filesystem::path& out,
               const std::vector<std::string>& extra, const std::filesystem::path& log, std::chrono::seconds limit) {
  RunProcess p(run_args(sim, in, out, extra), sim.api_key(), log);
  return p.wait(limit);
}

}  // namespace floodgate::test
