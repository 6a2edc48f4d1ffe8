#pragma once
// The journal: a SQLite database (WAL mode) holding one row per terminal outcome, keyed
// by custom_id. It is what makes a re-run resume instead of paying twice:
//   - record() buffers an outcome in memory; commit() writes every buffered row in one
//     transaction (thousands of rows per commit, so the journal costs little);
//   - the engine calls commit() only after the sink's flush() returned, so every
//     journaled outcome is in the output;
//   - is_done(id) tells a resumed run which lines to skip;
//   - the run identity (a hash of the input's first bytes and the endpoint settings) is
//     stored on creation; opening with a different identity throws, so resuming against a
//     different input is caught instead of silently skipping the wrong lines.
// Invalid input lines without a custom_id are journaled under the key "@line:<N>".
// Pauses: a model the provider told us to leave alone until a wall-clock time (a 429 whose
// retry-after is beyond --max-server-wait, e.g. a daily limit) is remembered here, so a
// re-run sends nothing for it before that time instead of collecting the same 429s.
// Not thread-safe: used from the engine's thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/outcome.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace floodgate::store {

class Journal {
 public:
  // Opens or creates the journal at `path`. Throws floodgate::Error when the file cannot
  // be opened or belongs to a run with another identity.
  Journal(const std::string& path, const std::string& run_identity);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // True when the journal existed with rows before this process opened it.
  [[nodiscard]] bool resumed() const noexcept { return resumed_; }

  [[nodiscard]] bool is_done(std::string_view custom_id);
  // The key an outcome is journaled under: its custom_id, or "@line:<N>" without one.
  [[nodiscard]] static std::string key_of(const Outcome& outcome);

  // Buffers an outcome; it is persisted by the next commit().
  void record(const Outcome& outcome);
  // Persists every buffered outcome in one transaction. Throws floodgate::Error on failure.
  void commit();
  [[nodiscard]] std::size_t pending() const noexcept { return pending_.size(); }

  // Number of committed rows, and of committed rows that are successes.
  [[nodiscard]] std::uint64_t count();
  [[nodiscard]] std::uint64_t count_ok();
  // Whether the committed row of `key` is a success; nullopt when there is none.
  [[nodiscard]] std::optional<bool> succeeded(std::string_view key);
  // Calls fn(key) for every committed row.
  void for_each_key(const std::function<void(std::string_view)>& fn);
  // Removes rows (used by reconciliation when the output lost them).
  void remove(const std::vector<std::string>& keys);

  // A model paused until a wall-clock time. set_pause() replaces the model's pause and is
  // written at once (one statement, not batched with outcomes); pauses() lists them all,
  // expired ones included (the caller decides; clear_pause() forgets one).
  struct Pause {
    std::string model;
    std::chrono::system_clock::time_point until;
    std::string reason;  // for messages, e.g. "the provider's daily limit (a 429 asked to wait 5h)"
  };
  void set_pause(const Pause& pause);
  void clear_pause(std::string_view model);
  [[nodiscard]] std::vector<Pause> pauses();

  // Recent admissions: what each model sent, per wall-clock second, so that a run started
  // right after another (a resume after kill -9) starts with the rate-limit windows the
  // server still holds instead of empty ones. record_admission() buffers (adding up within
  // a second); commit_admissions() writes them in one transaction (the engine calls it
  // every turn of its loop that admitted something, before the requests go out).
  // admissions_since() forgets older rows and returns the rest, oldest first.
  struct Admission {
    std::string model;
    std::int64_t unix_second = 0;  // the second they were admitted in
    std::uint64_t requests = 0;
    std::uint64_t tokens = 0;      // as reserved at admission
  };
  void record_admission(std::string_view model, std::chrono::system_clock::time_point at, std::uint64_t requests, std::uint64_t tokens);
  void commit_admissions();
  [[nodiscard]] std::vector<Admission> admissions_since(std::chrono::system_clock::time_point since);
  // The admissions since `since` of the journal at `path`, read without opening it as a
  // journal (any run identity, read-only): what --overwrite carries over into the journal
  // that replaces it, because the server's windows do not restart with the output. Empty
  // when the file is missing, is not a journal or has no admissions table.
  [[nodiscard]] static std::vector<Admission> read_admissions(const std::string& path,
                                                              std::chrono::system_clock::time_point since);

  // Free-form metadata.
  void set_meta(const std::string& key, const std::string& value);
  [[nodiscard]] std::optional<std::string> meta(const std::string& key);

 private:
  struct Row {
    std::string key;
    std::uint64_t line_no;
    int status_code;
    std::string error;
    std::uint32_t attempts;
    Usage usage;
  };
  void exec(const char* sql);
  void run_cached(sqlite3_stmt*& st, const char* sql);  // a statement without results, prepared once
  // exit_code::disk_full when the last failure was a full disk (or quota, file size limit).
  [[nodiscard]] int failure_exit_code() const noexcept;

  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* lookup_ = nullptr;
  static std::vector<Admission> admission_rows(sqlite3_stmt* st);
  sqlite3_stmt* add_admission_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;   // BEGIN IMMEDIATE
  sqlite3_stmt* commit_ = nullptr;  // COMMIT
  std::vector<Admission> admissions_;  // buffered by record_admission()
  std::vector<Row> pending_;
  std::string path_;
  bool resumed_ = false;
};

// The default journal path for an output file: "<output>.journal".
[[nodiscard]] std::string default_journal_path(const std::string& output_path);

}  // namespace floodgate::store
