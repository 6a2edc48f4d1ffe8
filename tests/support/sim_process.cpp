#include "support/sim_process.hpp"

#include "support/files.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace floodgate::test {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t on_body(char* data, size_t size, size_t count, void* user) noexcept {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

size_t on_header(char* data, size_t size, size_t count, void* user) noexcept {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  const std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) headers->clear();  // a new response (e.g. after 100 Continue)
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
    (*headers)[name] = value;
  }
  return size * count;
}

struct CurlInit {
  CurlInit() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

}  // namespace

HttpResult http_request(const std::string& method, const std::string& url, const std::string& body,
                        const std::vector<std::string>& headers, std::chrono::milliseconds timeout) {
  static CurlInit init;
  HttpResult result;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) {
    result.error = "curl_easy_init failed";
    return result;
  }
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  list = curl_slist_append(list, "Expect:");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> list_guard(list, &curl_slist_free_all);
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &result.headers);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  if (method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    result.error = curl_easy_strerror(rc);
    result.status = 0;
    return result;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.status);
  return result;
}

pid_t spawn_printing_url(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env,
                         const std::string& stderr_path, std::chrono::milliseconds timeout, std::string& first_line) {
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const bool replaced = std::any_of(env.begin(), env.end(), [&](const auto& kv) {
      return entry.size() > kv.first.size() && entry.substr(0, kv.first.size()) == kv.first && entry[kv.first.size()] == '=';
    });
    if (!replaced) env_s.emplace_back(entry);
  }
  for (const auto& [name, value] : env) {
    if (!value.empty()) env_s.push_back(name + "=" + value);  // an empty value unsets it
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("spawn_printing_url: pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv_s = args;
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    return -1;
  }
  // Read the first line, bounded in time.
  std::string& line = first_line;
  line.clear();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (line.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[256];
    const ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
  }
  close(out[0]);  // nothing else is read from its stdout
  return pid;
}

int terminate_child(pid_t pid) {
  kill(pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 500; ++i) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return status;
}

SimProcess::SimProcess(std::vector<std::string> args) : SimProcess(std::move(args), Options{}) {}

SimProcess::SimProcess(std::vector<std::string> args, Options options) : options_(std::move(options)) {
  char tmpl[] = "/tmp/floodgate-sim-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("SimProcess: mkdtemp failed");
  dir_ = tmpl;
  stderr_path_ = dir_ + "/stderr.txt";
  std::vector<std::string> argv_s = {FLOODGATE_BIN, "sim", "--port", std::to_string(options_.port)};
  if (options_.ledger) {
    ledger_path_ = dir_ + "/ledger.jsonl";
    argv_s.insert(argv_s.end(), {"--ledger", ledger_path_});
  }
  if (!options_.api_key.empty()) argv_s.insert(argv_s.end(), {"--api-key", options_.api_key});
  argv_s.insert(argv_s.end(), args.begin(), args.end());

  std::string line;
  pid_ = spawn_printing_url(argv_s, {}, stderr_path_, options_.start_timeout, line);
  if (pid_ <= 0) throw std::runtime_error(std::string("SimProcess: cannot start ") + FLOODGATE_BIN);
  const auto nl = line.find('\n');
  if (nl == std::string::npos || line.rfind("http://", 0) != 0) {
    stop();
    throw std::runtime_error("SimProcess: the simulator did not print its URL; stderr: " + read_file(stderr_path_));
  }
  base_url_ = line.substr(0, nl);
  const auto colon = base_url_.rfind(':');
  port_ = static_cast<std::uint16_t>(std::stoi(base_url_.substr(colon + 1)));
}

SimProcess::~SimProcess() {
  stop();
  if (!dir_.empty()) {
    std::remove(ledger_path_.c_str());
    std::remove(stderr_path_.c_str());
    rmdir(dir_.c_str());
  }
}

int SimProcess::stop() {
  if (pid_ <= 0) return -1;
  const int status = terminate_child(pid_);
  pid_ = -1;
  return status;
}

std::string SimProcess::root_url() const {
  return base_url_.substr(0, base_url_.size() - 3);
}

HttpResult SimProcess::get(const std::string& path, std::vector<std::string> headers) const {
  const bool has_auth = std::any_of(headers.begin(), headers.end(), [](const std::string& h) {
    return h.size() >= 14 && (h.rfind("Authorization:", 0) == 0 || h.rfind("authorization:", 0) == 0);
  });
  if (!has_auth && !options_.api_key.empty()) headers.push_back("Authorization: Bearer " + options_.api_key);
  if (!has_auth && options_.api_key.empty()) headers.push_back("Authorization: Bearer sk-any");
  return http_request("GET", root_url() + path, "", headers, std::chrono::seconds(30));
}

HttpResult SimProcess::post(const std::string& path, const std::string& body, std::vector<std::string> headers,
                            std::chrono::milliseconds timeout) const {
  const bool has_auth = std::any_of(headers.begin(), headers.end(), [](const std::string& h) {
    return h.size() >= 14 && (h.rfind("Authorization:", 0) == 0 || h.rfind("authorization:", 0) == 0);
  });
  if (!has_auth) headers.push_back("Authorization: Bearer " + (options_.api_key.empty() ? std::string("sk-any") : options_.api_key));
  bool has_type = std::any_of(headers.begin(), headers.end(), [](const std::string& h) {
    return h.rfind("Content-Type:", 0) == 0 || h.rfind("content-type:", 0) == 0;
  });
  if (!has_type) headers.push_back("Content-Type: application/json");
  return http_request("POST", root_url() + path, body, headers, timeout);
}

nlohmann::json SimProcess::stats() const {
  const HttpResult r = http_request("GET", root_url() + "/_sim/stats", "", {}, std::chrono::seconds(10));
  if (r.status != 200) throw std::runtime_error("SimProcess: GET /_sim/stats failed: " + r.error);
  return nlohmann::json::parse(r.body);
}

bool SimProcess::wait_for_requests(std::uint64_t n) const {
  for (int i = 0; i < 20'000; ++i) {
    if (stats().value("requests", std::uint64_t{0}) >= n) return true;
  }
  return false;
}

std::vector<nlohmann::json> SimProcess::ledger() const {
  if (ledger_path_.empty()) return {};
  if (pid_ > 0) http_request("POST", root_url() + "/_sim/flush", "", {}, std::chrono::seconds(10));
  return read_jsonl(ledger_path_);
}

long SimProcess::rss_kib() const {
  if (pid_ <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::int64_t ledger_ms(const std::string& ts) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(ts.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    throw std::runtime_error("bad ledger timestamp " + ts);
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(::timegm(&tm)) * 1000 + ms;
}

std::size_t max_in_window(const std::vector<std::int64_t>& ts, std::int64_t window_ms) {
  std::size_t best = 0;
  std::size_t lo = 0;
  for (std::size_t hi = 0; hi < ts.size(); ++hi) {
    while (ts[hi] - ts[lo] >= window_ms) ++lo;
    best = std::max(best, hi - lo + 1);
  }
  return best;
}

}  // namespace floodgate::test
