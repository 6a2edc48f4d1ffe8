#include "sim/ledger.hpp"

#include <chrono>

#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"
#include "floodgate/core/text.hpp"

namespace floodgate::sim {
namespace {

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
  j["ts"] = iso8601_utc(std::chrono::system_clock::now());
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
