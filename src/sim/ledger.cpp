#include "sim/ledger.hpp"

#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"

namespace floodgate::sim {
namespace {

std::string iso_now() {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

nlohmann::json or_null(std::string_view s) {
  if (s.empty()) return nullptr;
  return std::string(s);
}

}  // namespace

Ledger::Ledger(const std::string& path) {
  file_ = std::fopen(path.c_str(), "w");
  if (file_ == nullptr) throw Error("cannot open --ledger file " + path);
  flusher_ = std::thread([this] { run(); });
}

Ledger::~Ledger() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  flusher_.join();
  flush();
  std::fclose(file_);
}

void Ledger::append(const LedgerEntry& e) {
  nlohmann::json j;
  j["ts"] = iso_now();
  j["request_id"] = std::string(e.request_id);
  j["method"] = std::string(e.method);
  j["path"] = std::string(e.path);
  j["model"] = or_null(e.model);
  j["status"] = e.status;
  j["error_code"] = or_null(e.error_code);
  j["error_type"] = or_null(e.error_type);
  j["admitted"] = e.admitted;
  j["admitted_ms"] = e.admitted ? nlohmann::json(e.admitted_ms) : nlohmann::json(nullptr);
  j["tokens_charged"] = e.tokens_charged;
  j["charge_at_admission"] = e.charge_at_admission;
  j["body_sha256"] = std::string(e.body_sha256);
  j["upload_bytes"] = e.upload_bytes;
  j["client_request_id"] = or_null(e.client_request_id);
  j["fault"] = or_null(e.fault);
  if (!e.batch_id.empty()) j["batch_id"] = std::string(e.batch_id);
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  const std::lock_guard lock(mutex_);
  buffer_ += line;
  if (buffer_.size() > 64 * 1024) flush_locked();
}

void Ledger::flush() {
  const std::lock_guard lock(mutex_);
  flush_locked();
}

void Ledger::flush_locked() {
  if (!buffer_.empty()) {
    std::fwrite(buffer_.data(), 1, buffer_.size(), file_);
    buffer_.clear();
  }
  std::fflush(file_);
}

void Ledger::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(200));
    flush_locked();
  }
}

}  // namespace floodgate::sim
