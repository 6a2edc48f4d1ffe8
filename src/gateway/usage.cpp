#include "floodgate/gateway/usage.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <system_error>

#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"

namespace floodgate::gateway {
namespace {

bool space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

double call_cost_usd(const cost::PriceTable& prices, std::string_view model, const Usage& usage) noexcept {
  const cost::ModelPrice* price = model.empty() ? nullptr : prices.find(model);
  if (price == nullptr) return 0;
  floodgate::Usage u;
  u.prompt_tokens = static_cast<std::uint64_t>(std::max<std::int64_t>(0, usage.input_tokens));
  u.completion_tokens = static_cast<std::uint64_t>(std::max<std::int64_t>(0, usage.output_tokens));
  u.cached_tokens = std::min(u.prompt_tokens, static_cast<std::uint64_t>(std::max<std::int64_t>(0, usage.cached_tokens)));
  u.total_tokens = u.prompt_tokens + u.completion_tokens;
  return cost::cost_usd(*price, u);
}

std::string model_of(std::string_view body) {
  static constexpr std::string_view kKey = "\"model\"";
  for (std::size_t at = body.find(kKey); at != std::string_view::npos; at = body.find(kKey, at + 1)) {
    std::size_t i = at + kKey.size();
    while (i < body.size() && space(body[i])) ++i;
    if (i >= body.size() || body[i] != ':') continue;  // a string "model", not a key
    ++i;
    while (i < body.size() && space(body[i])) ++i;
    if (i >= body.size() || body[i] != '"') continue;
    const std::size_t end = body.find('"', i + 1);
    // Model names hold no escapes; one that does is not a name the price table knows.
    if (end == std::string_view::npos || body.substr(i + 1, end - i - 1).find('\\') != std::string_view::npos) return {};
    return std::string(body.substr(i + 1, end - i - 1));
  }
  return {};
}

std::string render_usage(const std::vector<UsageRow>& rows) {
  nlohmann::json keys = nlohmann::json::array();
  for (const UsageRow& row : rows) {
    const KeyTotals& t = row.totals;
    nlohmann::json by_status = nlohmann::json::object();
    for (const auto& [status, n] : t.by_status) by_status[std::to_string(status)] = n;
    nlohmann::json j = {{"key", row.key_id},
                        {"name", t.key_name},
                        {"requests", t.requests},
                        {"by_status", std::move(by_status)},
                        {"input_tokens", t.input_tokens},
                        {"output_tokens", t.output_tokens},
                        {"cost_usd", t.cost_usd},
                        {"in_flight_usd", t.reserved_usd},
                        {"budget_usd", nullptr},
                        {"budget_left_usd", nullptr}};
    if (row.budget_usd) {
      j["budget_usd"] = *row.budget_usd;
      j["budget_left_usd"] = std::max(0.0, *row.budget_usd - t.cost_usd);
    }
    keys.push_back(std::move(j));
  }
  return nlohmann::json{{"object", "floodgate.usage"}, {"keys", std::move(keys)}}.dump();
}

// The connection and its statement; used by open() (the loading) and then by the writer
// thread only.
struct UsageStore::Db {
  sqlite3* db = nullptr;
  sqlite3_stmt* insert = nullptr;
  std::string path;

  ~Db() {
    sqlite3_finalize(insert);
    sqlite3_close(db);
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("usage database " + path + ": " + what + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
  }
  void exec(const char* sql) const {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(std::string("cannot run ") + sql);
  }
  void write(const std::vector<CallRecord>& rows) const {
    exec("BEGIN IMMEDIATE");
    for (const CallRecord& r : rows) {
      sqlite3_reset(insert);
      sqlite3_bind_int64(insert, 1, r.unix_ms);
      sqlite3_bind_text(insert, 2, r.key_id.data(), static_cast<int>(r.key_id.size()), SQLITE_STATIC);
      sqlite3_bind_text(insert, 3, r.key_name.data(), static_cast<int>(r.key_name.size()), SQLITE_STATIC);
      sqlite3_bind_text(insert, 4, r.lane.data(), static_cast<int>(r.lane.size()), SQLITE_STATIC);
      sqlite3_bind_text(insert, 5, r.route.data(), static_cast<int>(r.route.size()), SQLITE_STATIC);
      sqlite3_bind_text(insert, 6, r.model.data(), static_cast<int>(r.model.size()), SQLITE_STATIC);
      sqlite3_bind_int(insert, 7, r.status);
      sqlite3_bind_int64(insert, 8, r.input_tokens);
      sqlite3_bind_int64(insert, 9, r.output_tokens);
      sqlite3_bind_int64(insert, 10, r.cached_tokens);
      sqlite3_bind_double(insert, 11, r.cost_usd);
      sqlite3_bind_int64(insert, 12, r.queued_ms);
      sqlite3_bind_int64(insert, 13, r.upstream_ms);
      if (sqlite3_step(insert) != SQLITE_DONE) {
        const std::string message = sqlite3_errmsg(db);
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw Error("usage database " + path + ": cannot write a call: " + message);
      }
    }
    sqlite3_reset(insert);
    sqlite3_clear_bindings(insert);  // the rows' strings go after this
    if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      const std::string message = sqlite3_errmsg(db);
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw Error("usage database " + path + ": cannot commit: " + message);
    }
  }
};

UsageStore::UsageStore(std::string path) : path_(std::move(path)), db_(std::make_unique<Db>()) { db_->path = path_; }

std::unique_ptr<UsageStore> UsageStore::open(const std::string& path) {
  std::unique_ptr<UsageStore> store(new UsageStore(path));
  Db& d = *store->db_;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) throw Error("usage database " + path + ": cannot create its folder: " + ec.message());
  }
  if (sqlite3_open_v2(path.c_str(), &d.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    d.fail("cannot open");
  }
  sqlite3_busy_timeout(d.db, 5000);
  d.exec("PRAGMA journal_mode=WAL");
  d.exec("PRAGMA synchronous=NORMAL");  // WAL: durable at checkpoints, no fsync per batch
  // Creating the table (or the no-op transaction below when it exists) is the write test: a
  // read-only file or folder fails here, at start.
  d.exec(
      "CREATE TABLE IF NOT EXISTS calls("
      " id INTEGER PRIMARY KEY,"
      " unix_ms INTEGER NOT NULL,"
      " key_id TEXT NOT NULL,"
      " key_name TEXT NOT NULL,"
      " lane TEXT NOT NULL,"
      " route TEXT NOT NULL,"
      " model TEXT NOT NULL,"
      " status INTEGER NOT NULL,"
      " input_tokens INTEGER NOT NULL,"
      " output_tokens INTEGER NOT NULL,"
      " cached_tokens INTEGER NOT NULL,"
      " cost_usd REAL NOT NULL,"
      " queued_ms INTEGER NOT NULL,"
      " upstream_ms INTEGER NOT NULL)");
  d.exec("BEGIN IMMEDIATE");
  d.exec("COMMIT");
  {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(d.db,
                           "SELECT key_id, MAX(key_name), status, COUNT(*), SUM(input_tokens), SUM(output_tokens),"
                           " SUM(cost_usd) FROM calls GROUP BY key_id, status",
                           -1, &st, nullptr) != SQLITE_OK) {
      d.fail("cannot read the totals");
    }
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      const auto text = [&](int col) {
        const auto* t = sqlite3_column_text(st, col);
        return t != nullptr ? std::string(reinterpret_cast<const char*>(t)) : std::string();
      };
      KeyTotals& t = store->totals_[text(0)];
      t.key_name = text(1);
      const auto n = static_cast<std::uint64_t>(sqlite3_column_int64(st, 3));
      t.requests += n;
      t.by_status[sqlite3_column_int(st, 2)] += n;
      t.input_tokens += sqlite3_column_int64(st, 4);
      t.output_tokens += sqlite3_column_int64(st, 5);
      t.cost_usd += sqlite3_column_double(st, 6);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) d.fail("cannot read the totals");
  }
  if (sqlite3_prepare_v2(d.db,
                         "INSERT INTO calls(unix_ms, key_id, key_name, lane, route, model, status, input_tokens,"
                         " output_tokens, cached_tokens, cost_usd, queued_ms, upstream_ms)"
                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                         -1, &d.insert, nullptr) != SQLITE_OK) {
    d.fail("cannot prepare the insert");
  }
  store->thread_ = std::thread([s = store.get()] { s->writer(); });
  return store;
}

UsageStore::~UsageStore() {
  try {
    close();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor does not throw; close() said it
  }
}

void UsageStore::record(CallRecord call) {
  const std::lock_guard lock(mu_);
  KeyTotals& t = totals_[call.key_id];
  if (t.key_name.empty()) t.key_name = call.key_name;
  ++t.requests;
  ++t.by_status[call.status];
  t.input_tokens += call.input_tokens;
  t.output_tokens += call.output_tokens;
  t.cost_usd += call.cost_usd;
  if (closing_) return;  // after close(): in the totals only
  queue_.push_back(std::move(call));
  ++queued_total_;
  // The first row opens the writer's batch window; a full batch closes it early.
  if (queue_.size() == 1 || queue_.size() == kBatchRows) wake_.notify_one();
}

bool UsageStore::reserve(const std::string& key_id, const std::string& key_name, double budget_usd, double worst_case_usd) {
  const std::lock_guard lock(mu_);
  KeyTotals& t = totals_[key_id];
  if (t.key_name.empty()) t.key_name = key_name;
  if (t.cost_usd + t.reserved_usd >= budget_usd) return false;
  t.reserved_usd += worst_case_usd;
  ++t.reservations;
  return true;
}

void UsageStore::release(const std::string& key_id, double worst_case_usd) {
  const std::lock_guard lock(mu_);
  const auto it = totals_.find(key_id);
  if (it == totals_.end()) return;
  KeyTotals& t = it->second;
  if (t.reservations > 0) --t.reservations;
  // None left: exactly 0, not what rounding left of the sums.
  t.reserved_usd = t.reservations == 0 ? 0.0 : std::max(0.0, t.reserved_usd - worst_case_usd);
}

std::map<std::string, KeyTotals> UsageStore::totals() const {
  const std::lock_guard lock(mu_);
  return totals_;
}

std::optional<KeyTotals> UsageStore::totals_of(const std::string& key_id) const {
  const std::lock_guard lock(mu_);
  const auto it = totals_.find(key_id);
  if (it == totals_.end()) return std::nullopt;
  return it->second;
}

std::uint64_t UsageStore::rows_written() const {
  const std::lock_guard lock(mu_);
  return written_total_;
}

void UsageStore::writer() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return !queue_.empty() || closing_; });
    if (queue_.empty()) return;  // closing, and everything is written
    // Let the batch fill: one transaction per call cost the gateway ~75 us of CPU per request
    // at 1,000 requests/s (a commit and a WAL write each, and a wake-up of this thread).
    wake_.wait_for(lock, kBatchWindow, [&] { return closing_ || flushing_ > 0 || queue_.size() >= kBatchRows; });
    std::vector<CallRecord> batch;
    batch.swap(queue_);
    lock.unlock();
    std::string failure;
    try {
      db_->write(batch);
    } catch (const Error& e) {
      failure = e.what();
    }
    lock.lock();
    if (!failure.empty() && failure_.empty()) failure_ = failure;
    written_total_ += batch.size();
    written_.notify_all();
  }
}

void UsageStore::flush() {
  std::unique_lock lock(mu_);
  const std::uint64_t target = queued_total_;
  ++flushing_;
  wake_.notify_one();  // no batch window: write now
  written_.wait(lock, [&] { return written_total_ >= target; });
  --flushing_;
  if (!failure_.empty()) throw Error(failure_);
}

void UsageStore::close() {
  {
    const std::lock_guard lock(mu_);
    if (closing_ && !thread_.joinable()) return;
    closing_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  db_.reset();
  const std::lock_guard lock(mu_);
  if (!failure_.empty()) throw Error(failure_);
}

}  // namespace floodgate::gateway
