#pragma once
// SimProcess: runs `floodgate sim` as a child process for one integration test.
//
//   floodgate::test::SimProcess sim({"--rpm", "6000", "--tpm", "1000000"});
//   sim.base_url();      // "http://127.0.0.1:PORT/v1" (the sim's first stdout line)
//   sim.port();          // PORT
//   sim.api_key();       // "sk-test-floodgate" (always passed as --api-key; set OPENAI_API_KEY from it)
//   sim.stats();         // GET /_sim/stats, parsed (nlohmann::json; docs/sim.md lists the fields)
//   sim.ledger_path();   // the --ledger file the fixture passes (in a fresh temp dir)
//   sim.ledger();        // flushes the sim's ledger and returns its lines, parsed
//   sim.get("/v1/models"), sim.post("/v1/chat/completions", body)  // tiny blocking HTTP
//   sim.stop();          // SIGTERM, wait (bounded), SIGKILL; the destructor does it too
//   max_in_window(sorted ledger_ms(e["ts"]) of each entry, 60'000)  // the busiest minute
//
// The binary is FLOODGATE_BIN (set by CMake for every target linking
// floodgate_test_support). The constructor throws std::runtime_error when the sim does
// not print its URL within 10 s (its stderr is included in the message). Pass
// SimProcess::Options{.ledger = false} to run without a ledger, {.api_key = ""} to not
// restrict keys.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace floodgate::test {

struct HttpResult {
  long status = 0;                          // 0 when the transfer failed (see error)
  std::map<std::string, std::string> headers;  // lower-case names, last value wins
  std::string body;
  std::string error;                        // curl's message when status == 0
  [[nodiscard]] nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

class SimProcess {
 public:
  struct Options {
    bool ledger = true;
    std::string api_key = "sk-test-floodgate";
    std::chrono::seconds start_timeout{10};
    std::uint16_t port = 0;  // 0: any free port; else this one (a sim restarted where another was)
  };

  explicit SimProcess(std::vector<std::string> args = {});
  SimProcess(std::vector<std::string> args, Options options);
  ~SimProcess();
  SimProcess(const SimProcess&) = delete;
  SimProcess& operator=(const SimProcess&) = delete;

  [[nodiscard]] const std::string& base_url() const noexcept { return base_url_; }
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] const std::string& api_key() const noexcept { return options_.api_key; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] const std::string& ledger_path() const noexcept { return ledger_path_; }

  nlohmann::json stats() const;
  // Polls /_sim/stats (at most 20,000 times) until the sim has taken `n` API requests. It
  // counts a request when it takes it, before any latency it answers after, and never its
  // own stats requests; so this is the sign that a request is being held. (Its in_flight is
  // no such sign: a stats request gives its own count back only after its answer went out,
  // so the next stats request can see one more than the API requests held.)
  [[nodiscard]] bool wait_for_requests(std::uint64_t n) const;
  std::vector<nlohmann::json> ledger() const;
  // Root URL without "/v1", e.g. "http://127.0.0.1:PORT".
  [[nodiscard]] std::string root_url() const;

  // Blocking HTTP to the sim. `path` starts with "/" ("/v1/models", "/_sim/stats").
  // The Authorization header is added unless `headers` already has one (pass
  // "Authorization:" with no value to send none).
  HttpResult get(const std::string& path, std::vector<std::string> headers = {}) const;
  HttpResult post(const std::string& path, const std::string& body, std::vector<std::string> headers = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  // Stops the sim (SIGTERM, then SIGKILL after 5 s); returns its exit status
  // (waitpid-style) or -1 when already stopped.
  int stop();
  // Resident set size of the sim in KiB (from /proc), or -1.
  [[nodiscard]] long rss_kib() const;

 private:
  Options options_;
  pid_t pid_ = -1;
  std::string base_url_;
  std::uint16_t port_ = 0;
  std::string dir_;
  std::string ledger_path_;
  std::string stderr_path_;
};

// Milliseconds since the epoch of a ledger timestamp ("ts": "2026-11-22T17:58:38.857Z").
[[nodiscard]] std::int64_t ledger_ms(const std::string& ts);
// The most timestamps (sorted) within any window of `window_ms`.
[[nodiscard]] std::size_t max_in_window(const std::vector<std::int64_t>& ts, std::int64_t window_ms);

// Blocking HTTP request helper used by SimProcess (exposed for tests that talk to other
// servers). `method` is "GET" or "POST".
HttpResult http_request(const std::string& method, const std::string& url, const std::string& body,
                        const std::vector<std::string>& headers, std::chrono::milliseconds timeout);

// Starts ARGS[0] with ARGS (environment: this process's, with `env`'s names set to their
// values, or removed when the value is empty), stderr to `stderr_path`, and reads its stdout
// until the first line or `timeout` (into `first_line`, with its newline when complete).
// Returns the child's pid, or -1 when it cannot start. For servers that print their URL first
// (`floodgate sim`, `floodgate serve`).
pid_t spawn_printing_url(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env,
                         const std::string& stderr_path, std::chrono::milliseconds timeout, std::string& first_line);
// SIGTERM, then SIGKILL after 5 s; returns the waitpid-style status.
int terminate_child(pid_t pid);

}  // namespace floodgate::test
