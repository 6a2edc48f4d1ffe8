#include "support/serve_process.hpp"

#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "support/files.hpp"

namespace floodgate::test {

ServeProcess::ServeProcess(std::vector<std::string> args, const std::string& upstream_key) {
  char tmpl[] = "/tmp/floodgate-serve-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("ServeProcess: mkdtemp failed");
  dir_ = tmpl;
  log_path_ = dir_ + "/stderr.txt";
  std::vector<std::string> argv = {FLOODGATE_BIN, "serve", "--port", "0"};
  // Its own usage database in its folder (not the user's default), unless the test gives one.
  if (std::find(args.begin(), args.end(), "--usage-db") == args.end()) argv.insert(argv.end(), {"--usage-db", dir_ + "/usage.sqlite"});
  argv.insert(argv.end(), args.begin(), args.end());
  std::string line;
  pid_ = spawn_printing_url(argv, {{"OPENAI_API_KEY", upstream_key}, {"OPENAI_BASE_URL", ""}}, log_path_,
                            std::chrono::seconds(10), line);
  if (pid_ <= 0) throw std::runtime_error(std::string("ServeProcess: cannot start ") + FLOODGATE_BIN);
  const auto nl = line.find('\n');
  if (nl == std::string::npos || line.rfind("http://", 0) != 0) {
    stop();
    throw std::runtime_error("ServeProcess: the gateway did not print its URL; stderr: " + slurp(log_path_));
  }
  base_url_ = line.substr(0, nl);
}

ServeProcess::~ServeProcess() {
  stop();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

int ServeProcess::stop() {
  if (pid_ <= 0) return -1;
  const int status = terminate_child(pid_);
  pid_ = -1;
  return status;
}

HttpResult ServeProcess::get(const std::string& path, const std::vector<std::string>& headers) const {
  return http_request("GET", root_url() + path, "", headers, std::chrono::seconds(30));
}

HttpResult ServeProcess::post(const std::string& path, const std::string& body, std::vector<std::string> headers,
                              std::chrono::milliseconds timeout) const {
  headers.push_back("Content-Type: application/json");
  return http_request("POST", root_url() + path, body, headers, timeout);
}

}  // namespace floodgate::test
