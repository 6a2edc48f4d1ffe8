#pragma once
// Usage, cost and outcome of every call, per client key (issue 16, "Client keys").
//
// The model:
//   1. Each call the gateway answers after the key check becomes one CallRecord: when, the
//      key's log id and name (never the key), lane, route, model, status, tokens, cost
//      (from the project's price table, cost/prices.hpp), queued and upstream ms.
//   2. record() adds it to the per-key totals in memory at once and queues the row; a
//      writer thread of its own inserts the queued rows in one transaction per batch, so the
//      event-loop threads never wait for the disk (a call costs a lock and a vector append).
//      A batch is what arrives within kBatchWindow (100 ms) of its first row, or kBatchRows:
//      a crash loses at most that much of the file (the totals in memory are exact).
//   3. The file is SQLite (WAL, synchronous=NORMAL, as the journal), table `calls`, one row
//      per call. Opening it loads the totals per key from the rows already there, so a
//      budget spent stays spent across restarts. A file that cannot be created or written
//      fails open() (at start), not the first call.
//   4. Budgets: reserve() holds what a call about to go may cost at most (its worst case)
//      while it is in flight; a key whose spent cost plus what its calls in flight may still
//      cost reaches its budget is refused (the gateway answers 429 insufficient_quota).
//      release() gives the reservation back when the call is recorded (its actual cost is
//      in the totals then). So the overshoot is bounded by the calls admitted while the
//      key was still under its budget: each within its worst case.
// Thread-safe: every member takes the store's mutex (the writer thread works on batches it
// has taken out of the queue).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "floodgate/cost/prices.hpp"
#include "floodgate/gateway/relay.hpp"

namespace floodgate::gateway {

struct CallRecord {
  std::int64_t unix_ms = 0;  // wall time when the answer ended
  std::string key_id;        // the log id: "web#3f9a1c2e", "key#3f9a1c2e" (no keys file), "-" (no key)
  std::string key_name;      // the keys file's name; "" without one
  std::string lane;          // "-" for calls without a lane
  std::string route;         // routing.hpp's to_string
  std::string model;         // the request body's "model"; "" when not read (uploads, proxied)
  int status = 0;            // as the access log shows it (499: the client hung up)
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  std::int64_t cached_tokens = 0;
  double cost_usd = 0;       // 0 without usage or for a model the price table does not have
  std::int64_t queued_ms = 0;
  std::int64_t upstream_ms = 0;
};

struct KeyTotals {
  std::string key_name;
  std::uint64_t requests = 0;
  std::map<int, std::uint64_t> by_status;  // 200: 12, 429: 1, ...
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  double cost_usd = 0;
  double reserved_usd = 0;  // the worst case of its calls in flight (budgets)
  std::uint64_t reservations = 0;  // calls in flight holding one (at 0, reserved_usd is exactly 0)
};

// The cost of a call from its usage, as `floodgate run` prices its results (cached prompt
// tokens at the cached price); 0 when the model has no price.
[[nodiscard]] double call_cost_usd(const cost::PriceTable& prices, std::string_view model, const Usage& usage) noexcept;

// The "model" of a JSON request body, read without parsing the whole body (an embeddings
// request may be megabytes): the first "model" key followed by a string; "" when none.
[[nodiscard]] std::string model_of(std::string_view json_body);

// One key's row of GET /v1/floodgate/usage.
struct UsageRow {
  std::string key_id;
  KeyTotals totals;
  std::optional<double> budget_usd;  // the keys file's
};
// {"object": "floodgate.usage", "keys": [{"key": "web#3f9a1c2e", "name": "web", "requests": 3,
//  "by_status": {"200": 2, "429": 1}, "input_tokens": .., "output_tokens": .., "cost_usd": ..,
//  "in_flight_usd": .., "budget_usd": 50, "budget_left_usd": 49.9}]}: budget fields null
// without a budget; budget_left_usd never below 0.
[[nodiscard]] std::string render_usage(const std::vector<UsageRow>& rows);

class UsageStore {
 public:
  // Opens (creating it and its folder when absent) the database at `path` and loads the
  // totals. Throws floodgate::Error naming the file when it cannot be created, read or written.
  static std::unique_ptr<UsageStore> open(const std::string& path);
  ~UsageStore();  // close()
  UsageStore(const UsageStore&) = delete;
  UsageStore& operator=(const UsageStore&) = delete;

  // Adds the call to its key's totals and queues its row for the writer thread.
  void record(CallRecord call);

  // Reserves `worst_case_usd` for a call of `key_id` unless what the key spent plus what is
  // reserved for its calls in flight already reaches `budget_usd`: false then (refuse it).
  [[nodiscard]] bool reserve(const std::string& key_id, const std::string& key_name, double budget_usd,
                             double worst_case_usd);
  // Gives a reservation back (the call was recorded, or never sent).
  void release(const std::string& key_id, double worst_case_usd);

  [[nodiscard]] std::map<std::string, KeyTotals> totals() const;
  [[nodiscard]] std::optional<KeyTotals> totals_of(const std::string& key_id) const;

  // Waits until every row recorded so far is in the file. Throws floodgate::Error if the
  // writer failed (the disk is full, the file went away): named once, and the rows since
  // are kept in memory only.
  void flush();
  // flush(), then stops the writer and closes the file. Idempotent.
  void close();

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  // Rows written to the file so far (for tests and the summary).
  [[nodiscard]] std::uint64_t rows_written() const;

 private:
  struct Db;
  explicit UsageStore(std::string path);
  void writer();

  std::string path_;
  std::unique_ptr<Db> db_;
  mutable std::mutex mu_;
  std::condition_variable wake_;      // the writer: rows queued, or closing
  std::condition_variable written_;   // flush(): a batch is in the file
  std::map<std::string, KeyTotals> totals_;
  std::vector<CallRecord> queue_;
  std::uint64_t queued_total_ = 0;    // rows ever queued
  std::uint64_t written_total_ = 0;   // rows ever written (or dropped after a failure)
  static constexpr std::size_t kBatchRows = 4096;
  static constexpr std::chrono::milliseconds kBatchWindow{100};
  std::string failure_;
  bool closing_ = false;
  int flushing_ = 0;  // flush() calls waiting: the writer writes at once
  std::thread thread_;
};

}  // namespace floodgate::gateway
