#pragma once
// Recorder: where outcomes go, and the exactly-once bookkeeping (docs/engine.md, "Resume").
//
//  1. Start-up: --overwrite replaces the output and the journal (carrying the last day's
//     admissions over); the journal must belong to this input (its tag, and the first lines
//     it holds as successes unchanged); after a crash the output and the journal are made
//     to agree (a torn tail cut, output lines adopted, missing rows forgotten); --retry-failed
//     takes the error lines out of the output, the extra sinks and the journal.
//  2. Rows: deliver() writes a row at once, or with --ordered holds it in a reorder buffer
//     until every earlier sequence number has a row or a hole (a line left for a resume).
//     Each row goes to the extra sinks, then the output, then the journal (uncommitted).
//  3. Checkpoints: the sinks are flushed, extra sinks first, then the journal commits: a row
//     is in the output before the journal calls it done, so a kill -9 at any moment loses
//     nothing a resume cannot adopt or send again.
//  4. Disk full: writes that fail for want of room stop the job (exit 74) after freeing a
//     small reserve, so the answers of requests already paid for still fit.
//  5. The end: held rows are written, the journal commits, the sinks close, and a resumed
//     --ordered output is rewritten in input order.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "floodgate/core/error.hpp"
#include "floodgate/engine/engine.hpp"
#include "floodgate/engine/source.hpp"
#include "floodgate/store/journal.hpp"

namespace floodgate::engine {

// A row to write: the outcome and what the sinks show beside it.
struct PendingWrite {
  Outcome outcome;
  std::string model;
  std::string url;
  Endpoint endpoint = Endpoint::chat_completions;
  std::string body;
  std::uint64_t est_tokens = 0;
  TimePoint read_at{};
  TimePoint first_sent_at{};
  std::shared_ptr<const void> payload;
};

class Recorder {
 public:
  Recorder(const EngineOptions& options, Clock& clock, Progress& progress, RunSummary& summary, TimePoint start);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // ---- start-up (1) ----
  // Opens the journal for `source` (its identity is asked here, after --overwrite removed
  // the old files): reconciliation and --retry-failed included. Throws floodgate::Error.
  void open(RequestSource& source);
  // Then the reserve and the output (appended to on a resume).
  void open_output();
  [[nodiscard]] store::Journal& journal() noexcept { return *journal_; }
  [[nodiscard]] bool already_done(const std::string& key) const { return done_keys_.contains(key) && journal_->is_done(key); }

  // ---- rows (2, 3) ----
  // The row of sequence number `seq` (nullopt: a hole, the line left for a resume).
  void deliver(std::uint64_t seq, std::optional<PendingWrite> row, TimePoint now);
  // Rows held behind a hole (--ordered): they count against the look-ahead.
  [[nodiscard]] std::size_t held() const noexcept { return reorder_.size(); }
  // After each turn of the loop: rows reach the OS at once (a kill -9 loses none of them:
  // a resume adopts them from the output); the journal commits them in batches at checkpoints.
  void after_turn(TimePoint now);
  void checkpoint(TimePoint now, bool force);

  // ---- disk full (4) ----
  // Runs `fn`; a disk_full error stops the job instead of propagating (said once, naming
  // the `in_flight` requests whose answers will still be written). The caller stops admitting.
  template <class Fn>
  void guard(Fn&& fn, std::size_t in_flight) {
    try {
      fn();
    } catch (const Error& e) {
      on_write_error(e, in_flight);
    }
  }
  [[nodiscard]] bool disk_full() const noexcept { return disk_full_; }
  [[nodiscard]] const std::string& disk_full_message() const noexcept { return disk_full_message_; }
  void remove_reserve();

  // ---- the end (5) ----
  // Writes the rows still held behind holes (their order cannot be kept across a resume anyway).
  void write_held(TimePoint end);
  // Closes the sinks; `reorder` allows the --ordered rewrite of a resumed output.
  void close(RequestSource& source, bool reorder);

 private:
  void emit(PendingWrite& w, TimePoint now);
  void flush_sinks();
  void check_first_lines(const SourceIdentity& identity);
  void reconcile_output();
  void forget_in_sinks(const std::vector<std::string>& keys);
  void forget_failures();
  void make_reserve();
  void restore_input_order(RequestSource& source);
  void on_write_error(const Error& e, std::size_t in_flight);

  const EngineOptions& opt_;
  Clock& clock_;
  Progress& progress_;
  RunSummary& summary_;
  std::unique_ptr<store::Journal> journal_;
  std::unique_ptr<store::Sink> sink_;
  std::map<std::uint64_t, std::optional<PendingWrite>> reorder_;  // --ordered; nullopt = a hole
  std::uint64_t next_write_seq_ = 0;
  std::uint64_t unflushed_bytes_ = 0;  // an upper bound of what the output's sink holds unwritten
  std::uint64_t kill_after_rows_ = 0;  // FLOODGATE_TEST_KILL_AFTER_ROWS (tests of crash recovery)
  CustomIdSet done_keys_;  // hashes of journal keys at start (confirmed by the journal on a hit)
  bool resumed_output_ = false;  // OUTPUT held rows of an earlier run at start
  bool disk_full_ = false;       // a write failed for want of room: stopped, resumable (exit 74)
  std::string disk_full_message_;
  std::string reserve_path_;  // "<journal>.reserve" while held
  TimePoint last_checkpoint_{};
};

}  // namespace floodgate::engine
