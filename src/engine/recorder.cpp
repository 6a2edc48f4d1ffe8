#include "recorder.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <unordered_map>

#include "floodgate/core/exit_codes.hpp"
#include "floodgate/store/output_order.hpp"
#include "hex.hpp"
#include "options.hpp"
#include "scheduler.hpp"
#include "words.hpp"

namespace floodgate::engine {
namespace {

bool file_nonempty(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

void remove_journal_files(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  std::filesystem::remove(path + "-wal", ec);
  std::filesystem::remove(path + "-shm", ec);
}

// The output of a job without an output file (EngineOptions::output_path empty): its rows
// go to the extra sinks only.
class NoOutput final : public store::Sink {
 public:
  void write(const Outcome& /*outcome*/, const store::RowContext& /*context*/) override {}
  void flush() override {}
  void close() override {}
};

}  // namespace

Recorder::Recorder(const EngineOptions& options, Clock& clock, Progress& progress, RunSummary& summary, TimePoint start)
    : opt_(options), clock_(clock), progress_(progress), summary_(summary), last_checkpoint_(start) {
  if (const char* k = std::getenv("FLOODGATE_TEST_KILL_AFTER_ROWS")) kill_after_rows_ = std::strtoull(k, nullptr, 10);
}

Recorder::~Recorder() = default;

// ---- start-up ---------------------------------------------------------------------------------

void Recorder::open(RequestSource& source) {
  // What the replaced journal admitted in the last day still counts in the server's windows.
  std::vector<store::Journal::Admission> carried_admissions;
  if (opt_.overwrite && !journal_in_memory(opt_)) {
    carried_admissions = store::Journal::read_admissions(opt_.journal_path, clock_.wall_now() - kAdmissionHorizon);
    if (output_is_file(opt_)) {
      std::error_code ec;
      std::filesystem::remove(opt_.output_path, ec);
    }
    remove_journal_files(opt_.journal_path);
  }

  // Which input a journal belongs to: the source's tag, and its first items, checked below.
  const SourceIdentity identity = source.identity();

  const bool output_is_file = engine::output_is_file(opt_);
  const bool journal_exists = !journal_in_memory(opt_) && std::filesystem::exists(opt_.journal_path);
  if (output_is_file && !journal_exists && file_nonempty(opt_.output_path)) {
    throw Error("the output \"" + opt_.output_path + "\" already exists and has no journal (" + opt_.journal_path +
                "); pass " + option_name(opt_, "overwrite") + " to replace it, or choose another output");
  }
  bool legacy_journal = false;
  try {
    journal_ = std::make_unique<store::Journal>(opt_.journal_path, identity.tag);
  } catch (const Error&) {
    if (!journal_exists || identity.legacy_tag.empty()) throw;
    // A journal of the v1 rule, or another endpoint setting (then this throws, naming both).
    journal_ = std::make_unique<store::Journal>(opt_.journal_path, identity.legacy_tag);
    legacy_journal = true;
  }
  if (!legacy_journal) check_first_lines(identity);

  if (output_is_file && journal_exists) {
    reconcile_output();
    if (opt_.retry_failed) forget_failures();
  }

  if (!carried_admissions.empty()) {
    for (const store::Journal::Admission& a : carried_admissions) {
      journal_->record_admission(a.model, std::chrono::system_clock::time_point{std::chrono::seconds(a.unix_second)}, a.requests,
                                 a.tokens);
    }
    journal_->commit_admissions();
  }
}

void Recorder::open_output() {
  if (opt_.disk_reserve_bytes > 0 && !journal_in_memory(opt_)) make_reserve();

  // A --retry-failed run that removed every recorded row still appends: the output keeps
  // its other lines.
  summary_.earlier_succeeded = journal_->count_ok();
  summary_.earlier_failed = journal_->count() - summary_.earlier_succeeded;
  const bool resume = journal_->count() > 0 || summary_.retried_failed_lines > 0;
  resumed_output_ = resume && output_is_file(opt_);
  journal_->for_each_key([this](std::string_view key) { done_keys_.insert(key); });
  if (opt_.output_path.empty()) {
    sink_ = std::make_unique<NoOutput>();
  } else {
    sink_ = store::make_jsonl_sink(opt_.output_path, resume ? store::OpenMode::append : store::OpenMode::truncate, opt_.fsync);
  }
  if (resume) {
    progress_.message("info", "resuming: " + thousands(journal_->count()) + " outcomes already in the journal " + opt_.journal_path +
                                  " are skipped");
  }
}

// Which input a journal belongs to ------------------------------------------------------------
//
// The journal remembers the key (custom_id, or "@line:N" / the line number) and a hash of
// the bytes of each of the input's first lines (the source's first items: for a JSONL file
// up to 256 lines in the first 64 KiB). A resumed run is refused when one of those lines whose answer the journal holds
// as a success is gone from the input's first lines or has changed: those answers would
// be taken for other requests. Lines that failed, or have no outcome yet, may be edited:
// fix a broken line, then --retry-failed sends it. The fingerprints are then updated to
// the input as it is now.
void Recorder::check_first_lines(const SourceIdentity& identity) {
const std::vector<LineFingerprint>& current = identity.first_lines;
  if (const auto stored = journal_->meta("input_lines")) {
    std::unordered_map<std::string, std::uint64_t> now;
    for (const LineFingerprint& l : current) now.emplace(l.key, l.hash);
    // "<16 hex digits of the hash><key length>:<key>", one after the other.
    std::string_view rest = *stored;
    while (rest.size() > 16) {
      const std::uint64_t hash = std::stoull(std::string(rest.substr(0, 16)), nullptr, 16);
      const std::size_t colon = rest.find(':', 16);
      if (colon == std::string_view::npos) break;
      const std::size_t len = std::stoull(std::string(rest.substr(16, colon - 16)));
      const std::string key(rest.substr(colon + 1, len));
      rest.remove_prefix(std::min(rest.size(), colon + 1 + len));
      const auto it = now.find(key);
      if (it != now.end() && it->second == hash) continue;
      if (journal_->succeeded(key) != true) continue;  // an error or no outcome yet: may be edited
      throw Error("the journal \"" + opt_.journal_path + "\" belongs to a different input: the line with key \"" + key + "\" " +
                  (it == now.end() ? "is not among the first lines of " : "has changed in ") + identity.path +
                  ", and its answer is recorded as a success. Resume with the input the journal was made for (lines that failed "
                  "may be edited, then " + option_name(opt_, "retry_failed") + " sends them), choose another output, or pass " +
                  option_name(opt_, "overwrite") + " to start over");
    }
  }
  std::string text;
  for (const LineFingerprint& l : current) {
    if (!l.recorded) break;
    text += hex64(l.hash) + std::to_string(l.key.size()) + ":" + l.key;
  }
  journal_->set_meta("input_lines", text);
}

// After a crash the output may hold lines the journal has not committed yet (written,
// flushed, then killed before the commit), or a torn last line. Make them agree: cut the
// torn tail, adopt every output line into the journal, and forget journal rows whose line
// is missing from the output (only possible if the output was edited or lost).
void Recorder::reconcile_output() {
  store::truncate_torn_tail(opt_.output_path);
  if (!std::filesystem::exists(opt_.output_path)) {
    const auto n = journal_->count();
    if (n > 0) {
      progress_.message("warning", "the output " + opt_.output_path + " is missing: its " + thousands(n) +
                                       " journaled outcomes will be run again");
      std::vector<std::string> all;
      journal_->for_each_key([&](std::string_view k) { all.emplace_back(k); });
      forget_in_sinks(all);
      journal_->remove(all);
    }
    return;
  }
  CustomIdSet in_output;
  LineReader out(opt_.output_path);
  std::string_view line;
  std::uint64_t adopted = 0;
  while (out.next(line)) {
    if (is_blank_line(line)) continue;
    auto info = read_output_line(line);
    if (!info) continue;
    Outcome o;
    o.custom_id = info->custom_id;
    o.line_no = info->line_no;
    o.status_code = info->status_code;
    o.error = info->error;
    const std::string key = store::Journal::key_of(o);
    in_output.insert(key);
    if (!journal_->is_done(key)) {
      journal_->record(o);
      ++adopted;
    }
  }
  journal_->commit();
  std::vector<std::string> missing;
  journal_->for_each_key([&](std::string_view k) {
    if (!in_output.contains(k)) missing.emplace_back(k);
  });
  if (!missing.empty()) {
    progress_.message("warning", thousands(missing.size()) + " journaled outcomes are missing from " + opt_.output_path +
                                     ": they will be run again");
    forget_in_sinks(missing);
    journal_->remove(missing);
  }
  summary_.reconciled_output_lines = adopted;
}

// Rows that are to be done again leave the extra sinks (CSV, SQLite, --errors file) too, so
// that the new row replaces the old one there as well. Always before the journal forgets
// them: a crash in between leaves journal rows missing from the output, which the next
// run's reconcile_output() forgets again, here included (forgetting is idempotent).
void Recorder::forget_in_sinks(const std::vector<std::string>& keys) {
  if (keys.empty()) return;
  for (auto& s : opt_.extra_sinks) s->forget(keys);
}

// --retry-failed: the output loses its error lines first, then the extra sinks and the
// journal their rows. A crash in between leaves journal rows whose lines are gone, which
// the next run's reconcile_output() forgets as well: either way those lines are sent
// again, once, and every sink ends with one row for each.
void Recorder::forget_failures() {
  // The output is gone (reconcile_output() then emptied the journal): every line is sent anyway.
  if (!std::filesystem::exists(opt_.output_path)) return;
  const std::vector<std::string> failed = store::drop_failed_lines(opt_.output_path);
  if (failed.empty()) {
    progress_.message("info", option_name(opt_, "retry_failed") + ": no failed lines in " + opt_.output_path);
    return;
  }
  forget_in_sinks(failed);
  journal_->remove(failed);
  progress_.message("info", option_name(opt_, "retry_failed") + ": " + thousands(failed.size()) + " failed lines removed from " + opt_.output_path +
                                " and the journal; they are sent again");
  summary_.retried_failed_lines = failed.size();
}

// ---- rows ---------------------------------------------------------------------------------------

void Recorder::emit(PendingWrite& w, TimePoint now) {
  store::RowContext ctx;
  ctx.model = w.model;
  ctx.url = w.url;
  ctx.endpoint = w.endpoint;
  ctx.request_body = w.body;
  ctx.estimated_tokens = w.est_tokens;
  ctx.queued = w.first_sent_at != TimePoint{} ? w.first_sent_at - w.read_at : Duration{0};
  ctx.total = now - w.read_at;
  ctx.finished_at = clock_.wall_now();
  ctx.payload = w.payload;
  // The output's sink writes to the file by itself once its buffer is large (4 MiB): flush
  // every sink before that, so that the output never gets ahead of the extra sinks.
  const std::uint64_t row_bytes = w.outcome.body.size() + w.outcome.error_message.size() + w.outcome.custom_id.size() + 512;
  for (auto& s : opt_.extra_sinks) s->write(w.outcome, ctx);
  if (unflushed_bytes_ + row_bytes > (2u << 20)) flush_sinks();
  sink_->write(w.outcome, ctx);
  unflushed_bytes_ += row_bytes;
  if (opt_.record_outcomes) journal_->record(w.outcome);
  const Outcome& o = w.outcome;
  if (!o.ok()) ++summary_.outcomes[std::string(to_string(o.error))];
  if (o.ok()) {
    ++summary_.succeeded;
  } else {
    ++summary_.failed;
  }
}

void Recorder::deliver(std::uint64_t seq, std::optional<PendingWrite> w, TimePoint now) {
  if (!opt_.ordered) {
    if (w) emit(*w, now);
    return;
  }
  reorder_.emplace(seq, std::move(w));
  while (!reorder_.empty() && reorder_.begin()->first == next_write_seq_) {
    if (reorder_.begin()->second) emit(*reorder_.begin()->second, now);
    reorder_.erase(reorder_.begin());
    ++next_write_seq_;
  }
}

void Recorder::checkpoint(TimePoint now, bool force) {
  if (!force && now - last_checkpoint_ < opt_.checkpoint_interval && journal_->pending() < 8192) return;
  last_checkpoint_ = now;
  if (journal_->pending() == 0 && !force) return;
  // Order matters: the rows reach the output before the journal says they are done.
  flush_sinks();
  journal_->commit();
}

// A little disk space held from the start ("<journal>.reserve") and given back when the
// disk fills up, so the rows already paid for still fit. Best effort: none when the disk
// has no room for it even at the start.
void Recorder::make_reserve() {
  reserve_path_ = opt_.journal_path + ".reserve";
  const int fd = ::open(reserve_path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    reserve_path_.clear();
    return;
  }
  const bool ok = ::posix_fallocate(fd, 0, static_cast<off_t>(opt_.disk_reserve_bytes)) == 0;
  ::close(fd);
  if (!ok) remove_reserve();
}

void Recorder::remove_reserve() {
  if (reserve_path_.empty()) return;
  ::unlink(reserve_path_.c_str());
  reserve_path_.clear();
}

// The extra sinks first, then the output: a row in the output (which a resume adopts into
// the journal, never to be sent again) is then in every sink too, whenever a kill -9
// comes. A row in a sink but not yet in the output is sent again on resume; CSV keeps the
// first row of a key, SQLite the last: once either way.
void Recorder::flush_sinks() {
  for (auto& s : opt_.extra_sinks) s->flush();
  sink_->flush();
  unflushed_bytes_ = 0;
  // Tests only (FLOODGATE_TEST_KILL_AFTER_ROWS=N): a kill -9 right after the output got
  // its N-th row, before the journal commits: the moment a crash loses most.
  if (kill_after_rows_ > 0 && summary_.succeeded + summary_.failed >= kill_after_rows_) ::raise(SIGKILL);
}

// One run writes --ordered rows in input order, but a resumed run appends after the rows
// of earlier runs. At its end (the sink closed, the journal committed) the output is put
// back in input order by an atomic rewrite; see store/output_order.hpp. Not after a
// second Ctrl-C (stop at once); the next --ordered run does it.
void Recorder::restore_input_order(RequestSource& source) {
  std::unique_ptr<RequestSource> again = source.reopen();
  if (!again) {
    progress_.message("warning", option_name(opt_, "ordered") + ": the input is stdin, so the rows of earlier runs cannot be put back in input order");
    return;
  }
  CustomIdSet ids;
  auto next_key = [&](std::string& key) {
    SourceItem in;
    while (again->next(in) == SourceStatus::item) {
      if (in.skipped_bytes > 0) continue;  // as blank lines (an @line:N key, left where it is)
      key = input_item_key(in.parsed, in.line_no, ids);
      return true;
    }
    return false;
  };
  try {
    const store::ReorderStats r = store::reorder_output(opt_.output_path, next_key);
    if (r.rewritten) {
      progress_.message("info", option_name(opt_, "ordered") + ": " + opt_.output_path + " rewritten in input order (" + thousands(r.lines) +
                                    " lines, rows of earlier runs included)");
    }
  } catch (const Error& e) {
    progress_.message("warning", std::string(e.what()) + "; the output keeps every row, in completion order across runs");
  }
}

void Recorder::after_turn(TimePoint now) {
  if (journal_->pending() > 0) flush_sinks();
  checkpoint(now, false);
}

// A write that fails because the disk is full (or a quota, or the file size limit): stop
// admitting, free the reserve (so the rows of requests already paid for can still be
// written), let those in flight finish, and try the writes again at each turn of the loop
// and at the end. Rows that never reach the output are sent again by a resume; rows that
// reach it but not the journal are adopted by the resume. Exit code 74.
void Recorder::on_write_error(const Error& e, std::size_t in_flight) {
  if (e.exit_code() != exit_code::disk_full) throw;  // rethrows `e` (called from its handler)
  if (disk_full_) return;
  disk_full_ = true;
  disk_full_message_ = e.what();
  remove_reserve();
  progress_.message("error", disk_full_message_ + ": stopped admitting; writing what " + std::to_string(in_flight) +
                                 " requests in flight return, then stopping. The job is resumable: make room and re-run the "
                                 "same command");
}

// ---- the end ------------------------------------------------------------------------------------

void Recorder::write_held(TimePoint end) {
  for (auto& [seq, w] : reorder_) {
    if (w) emit(*w, end);
  }
  reorder_.clear();
}

void Recorder::close(RequestSource& source, bool reorder) {
  sink_->close();
  if (opt_.ordered && resumed_output_ && reorder) restore_input_order(source);
  for (auto& s : opt_.extra_sinks) s->close();
}

}  // namespace floodgate::engine
