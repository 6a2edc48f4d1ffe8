#pragma once
// ServeProcess: runs `floodgate serve` as a child process for one integration test.
//
//   floodgate::test::SimProcess sim;
//   floodgate::test::ServeProcess gw({"--upstream", sim.base_url()}, sim.api_key());
//   gw.base_url();    // "http://127.0.0.1:PORT/v1" (the gateway's first stdout line)
//   gw.post("/v1/chat/completions", body, {"x-floodgate-lane: batch"});
//   gw.log_path();    // its stderr: the access log and any error
//   gw.stop();        // SIGTERM, wait (bounded), SIGKILL; the destructor does it too
//
// The upstream key goes in OPENAI_API_KEY (OPENAI_BASE_URL is removed from its environment);
// `--port 0` is always passed, and `--usage-db DIR/usage.sqlite` (in dir(), removed with it)
// unless the arguments hold --usage-db. The constructor throws std::runtime_error when the gateway
// does not print its URL within 10 s (its stderr is in the message).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "support/sim_process.hpp"

namespace floodgate::test {

class ServeProcess {
 public:
  ServeProcess(std::vector<std::string> args, const std::string& upstream_key);
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  [[nodiscard]] const std::string& base_url() const noexcept { return base_url_; }
  [[nodiscard]] std::string root_url() const { return base_url_.substr(0, base_url_.size() - 3); }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }
  [[nodiscard]] const std::string& log_path() const noexcept { return log_path_; }

  // Blocking HTTP to the gateway; `path` starts with "/". Headers as given (no key added).
  HttpResult get(const std::string& path, const std::vector<std::string>& headers = {}) const;
  HttpResult post(const std::string& path, const std::string& body, std::vector<std::string> headers = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  // SIGTERM, then SIGKILL after 5 s: the waitpid-style status, or -1 when already stopped.
  int stop();

 private:
  pid_t pid_ = -1;
  std::string base_url_;
  std::string dir_;
  std::string log_path_;
};

}  // namespace floodgate::test
