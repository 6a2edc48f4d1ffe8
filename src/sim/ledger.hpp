#pragma once
// The JSONL ledger: one line per request received, written in the order responses are
// decided. Lines are buffered and flushed every 200 ms, when the buffer passes 64 KiB,
// on flush() (POST /_sim/flush) and on shutdown. Never holds the API key.
//
// Line: {"ts":"2026-01-02T03:04:05.678Z","request_id":"req_...","method":"POST",
//        "path":"/v1/chat/completions","model":"gpt-4o-mini","status":200,
//        "error_code":null,"error_type":null,"admitted":true,"admitted_ms":123456789,
//        "tokens_charged":42,"charge_at_admission":42,"body_sha256":"…",
//        "upload_bytes":0,"client_request_id":"abc"|null,"fault":null}

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace floodgate::sim {

struct LedgerEntry {
  std::string_view request_id;
  std::string_view method;
  std::string_view path;
  std::string_view model;
  int status = 0;
  std::string_view error_code;
  std::string_view error_type;
  bool admitted = false;               // counted against the limits
  std::int64_t admitted_ms = 0;        // admission instant, ms on the simulator's monotonic clock
  std::int64_t tokens_charged = 0;     // counted against TPM/TPD (after any refund)
  std::int64_t charge_at_admission = 0;
  std::string_view body_sha256;
  std::uint64_t upload_bytes = 0;
  std::string_view client_request_id;
  std::string_view fault;
  std::string_view batch_id;  // a Batch API line: its batch (the key "batch_id" only then)
};

class Ledger {
 public:
  // Opens (truncates) `path`; throws floodgate::Error when it cannot.
  explicit Ledger(const std::string& path);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  void append(const LedgerEntry& entry);
  void flush();

 private:
  void flush_locked();
  void run();

  std::FILE* file_ = nullptr;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string buffer_;
  bool stopping_ = false;
  std::thread flusher_;
};

}  // namespace floodgate::sim
