#include "floodgate/engine/engine.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <random>
#include <unordered_map>

#include "classifier.hpp"
#include "hex.hpp"
#include "floodgate/core/duration.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/exit_codes.hpp"
#include "floodgate/engine/response.hpp"
#include "floodgate/http/dialect.hpp"
#include "floodgate/http/multipart_body.hpp"
#include "floodgate/limit/admission.hpp"
#include "floodgate/limit/limiter_set.hpp"
#include "floodgate/limit/rate_limit_headers.hpp"
#include "floodgate/store/journal.hpp"
#include "floodgate/store/output_order.hpp"
#include "floodgate/store/run_lock.hpp"

namespace floodgate::engine {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// How far back the journal's admissions still matter: the longest window a server counts
// (a day), and a margin.
constexpr auto kAdmissionHorizon = std::chrono::hours(24) + std::chrono::minutes(2);

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

std::string thousands(std::uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// "2026-11-23 03:12 UTC", rounded up to the minute (a time to wait for, never early).
std::string format_utc(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(std::chrono::ceil<std::chrono::minutes>(t));
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
  return when;
}

std::atomic<Engine*> g_signal_engine{nullptr};

extern "C" void on_stop_signal(int /*sig*/) {
  Engine* e = g_signal_engine.load();
  if (e != nullptr) e->request_stop();
}

}  // namespace

// ---- the engine's state -------------------------------------------------------------------

struct Engine::Impl {
  struct Item {
    Request req;                                            // body kept here (hooks see it)
    std::shared_ptr<const http::MultipartSpec> multipart;  // audio: a file streamed per attempt
    std::uint64_t seq = 0;
    std::uint32_t attempts = 0;
    std::uint32_t spared = 0;  // attempts that met an outage: not counted toward --max-attempts
    std::uint32_t invalid_retries = 0;  // re-asks after a schema_violation
    std::string client_request_id;
    TimePoint read_at{};
    TimePoint first_sent_at{};
    std::uint64_t est_tokens = 0;   // the worst case (budgets, the row's estimate)
    std::uint64_t pace_tokens = 0;  // the pacing charge the limiter reserves
    Outcome last;  // the last failed attempt, for the final error line
    std::shared_ptr<const void> payload;  // the source's, for the sinks
  };
  struct Lane {
    std::string model;
    std::deque<Item*> queue;
    limit::Admission* limiter = nullptr;  // the model's admission (the local limiter unless injected)
    limit::ChargeModel charge;         // what the provider counts at admission for this model
    Provider provider = Provider::openai;
    std::map<Endpoint, std::string> urls;  // when the URL names the model (Azure deployments)
    TimePoint next_try{};       // don't ask the limiter before this
    Item* head_seen = nullptr;  // for --max-wait: when did the current head become head
    TimePoint head_since{};
    bool suspended = false;
    TimePoint suspended_until{};
    limit::Dimension waiting_for = limit::Dimension::none;  // the limit the head last waited for, and until when
    TimePoint waiting_until{};
  };
  struct InFlight {
    Item* item = nullptr;
    Lane* lane = nullptr;
    limit::Grant grant;
  };
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

  EngineOptions opt;
  Clock& clock;
  int wake_pipe[2] = {-1, -1};
  std::atomic<int> stop_requests{0};

  std::unique_ptr<http::Transport> transport;
  limit::LimiterSet limiters;
  std::map<std::string, std::unique_ptr<limit::Admission>, std::less<>> admissions;  // by model
  limit::CircuitBreaker breaker;
  limit::Backoff backoff;
  std::shared_ptr<RunLock> run_lock;  // held until the engine is gone (after the sinks closed)
  std::unique_ptr<Journal> journal;
  std::unique_ptr<Sink> sink;
  std::unique_ptr<Progress> progress;
  std::unique_ptr<RequestSource> source;
  SourceIdentity source_identity;

  std::unordered_map<std::uint64_t, std::unique_ptr<Item>> items;  // by seq: read, not yet terminal
  std::map<std::string, Lane, std::less<>> lanes;
  std::multimap<TimePoint, Item*> retry_at;
  std::unordered_map<std::uint64_t, InFlight> in_flight;
  std::map<std::uint64_t, std::optional<PendingWrite>> reorder;  // --ordered; nullopt = a hole
  std::uint64_t next_write_seq = 0;
  std::uint64_t unflushed_bytes = 0;  // an upper bound of what the output's sink holds unwritten
  std::uint64_t kill_after_rows = 0;  // FLOODGATE_TEST_KILL_AFTER_ROWS (tests of crash recovery)
  std::uint64_t next_seq = 0;

  CustomIdSet seen_ids;
  CustomIdSet done_keys;  // hashes of journal keys at start (confirmed by the journal on a hit)
  bool input_done = false;
  bool input_waiting = false;  // the source had nothing ready: wait for its ready_fd
  bool stop_admitting = false;
  bool stop_now = false;
  bool quota_stop = false;
  bool budget_stop = false;
  // Before the first HTTP answer: the connection failures in a row and when they began.
  bool answered_once = false;
  std::uint64_t connect_failures = 0;
  std::optional<TimePoint> first_connect_failure;
  std::string last_connect_error;
  bool last_failure_was_slow = false;  // ... and the last of them a timeout after the request went out
  TimePoint last_answer_at{};         // the latest answer (a status line) of this run
  bool unreachable_stop = false;
  bool disk_full_stop = false;  // a write failed for want of room: stopped, resumable (exit 74)
  std::string disk_full_message;
  std::string reserve_path;      // "<journal>.reserve" while held
  bool outage_stop = false;  // the server stopped answering mid-run for --outage-limit
  // Before the first answer that is not an account- or URL-level refusal (401, 403, 404):
  // lines refused that way are held here unrecorded. If the first answers are all the same
  // refusal (a wrong key, a wrong base URL path, a model that does not exist or that the
  // project cannot use) the job is hopeless: it stops with exit 9 and records nothing for
  // them. Any other answer clears the suspicion and the held lines are failed as usual.
  std::vector<std::pair<Item*, Outcome>> refused;
  std::string refusal_key;      // "401 invalid_api_key", "404 model_not_found", "404 " ...
  std::string refusal_message;  // the first refusal's message and the request's model / URL
  std::string refusal_model;
  std::string refusal_url;
  std::uint64_t refusals = 0;
  bool refusal_cleared = false;
  bool rejected_stop = false;
  // Lines whose attempts all failed to connect before any answer: held unfinished until the
  // verdict. An answer finishes them as failed (as usual); the unreachable stop leaves them
  // unsent, so a run against a wrong URL records nothing.
  std::vector<std::pair<Item*, Outcome>> parked;
  bool interrupted = false;
  bool resumed_output = false;  // OUTPUT held rows of an earlier run at start
  std::optional<TimePoint> paused_until;
  std::string paused_model;
  // Paused models (this run's 429s, or recorded by an earlier run): for the stop reason.
  struct PauseNote {
    std::chrono::system_clock::time_point until;
    std::string reason;
    bool recorded = false;  // from the journal: nothing was sent for the model this run
    std::uint64_t left = 0;  // requests left for a re-run because of it
  };
  std::map<std::string, PauseNote, std::less<>> pauses;

  // Header lines shared by every request (built once, never copied per request).
  std::shared_ptr<const std::vector<std::string>> base_headers;  // credentials
  std::shared_ptr<const std::vector<std::string>> json_headers;  // credentials + Content-Type
  std::vector<std::pair<std::string_view, std::string_view>> header_views;  // of the response at hand
  std::string run_nonce;
  std::map<Endpoint, std::string> urls;
  std::size_t lookahead = 0;
  std::size_t lane_cursor = 0;

  RunSummary summary;
  TimePoint start{};
  TimePoint last_checkpoint{};
  TimePoint last_long_wait_warning{};

  Impl(EngineOptions o, Clock& c)
      : opt(std::move(o)),
        clock(c),
        limiters(opt.limits, opt.limiter),
        breaker(opt.breaker),
        backoff(opt.retry, std::random_device{}()) {}

  ~Impl() {
    if (wake_pipe[0] >= 0) ::close(wake_pipe[0]);
    if (wake_pipe[1] >= 0) ::close(wake_pipe[1]);
  }

  // ---- start-up -----------------------------------------------------------------------------

  void prepare() {
    if (opt.max_in_flight == 0) throw Error("--max-in-flight must be at least 1");
    if (opt.retry.max_attempts < 1) throw Error("--max-attempts must be at least 1");
    if (opt.retry_failed && opt.output_path == "-") {
      throw Error("--retry-failed rewrites the output file, so it needs -o FILE (not stdout)");
    }
    check_base_url(opt.base_url);
    if (!opt.estimator) opt.estimator = conservative_estimator();
    if (opt.journal_path.empty()) {
      if (opt.output_path == "-") throw Error("writing the output to stdout needs --journal PATH (the journal makes the job resumable)");
      opt.journal_path = default_journal_path(opt.output_path);
    }
    if (opt.output_path != "-") check_folder_writable(opt.output_path, "output");
    check_folder_writable(opt.journal_path, "journal");
    lookahead = opt.lookahead != 0 ? opt.lookahead : std::max<std::size_t>(1024, 8 * opt.max_in_flight);
    if (const char* k = std::getenv("FLOODGATE_TEST_KILL_AFTER_ROWS")) kill_after_rows = std::strtoull(k, nullptr, 10);
    // Before anything is touched (--overwrite included): one process at a time per journal.
    run_lock = lock_run(lock_path_for_journal(opt.journal_path),
                                         opt.output_path == "-" ? "the journal " + opt.journal_path : "the output " + opt.output_path);

    if (::pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) throw Error("cannot create a pipe: " + std::string(std::strerror(errno)), exit_code::internal);
    opt.transport.wake_fd = wake_pipe[0];
    if (opt.transport.clock == nullptr) opt.transport.clock = &clock;

    // The input is judged before --overwrite deletes anything.
    source = opt.source ? std::move(opt.source) : open_jsonl_source(opt.input_path, opt.input);
    opt.transport.ready_fd = source->ready_fd();
    transport = opt.make_transport ? opt.make_transport(opt.transport) : std::make_unique<http::CurlTransport>(opt.transport);

    start = clock.now();
    last_checkpoint = start;
    progress = std::make_unique<Progress>(opt.progress, start);

    // What the replaced journal admitted in the last day still counts in the server's windows.
    std::vector<Journal::Admission> carried_admissions;
    if (opt.overwrite) {
      carried_admissions = Journal::read_admissions(opt.journal_path, clock.wall_now() - kAdmissionHorizon);
      if (opt.output_path != "-") {
        std::error_code ec;
        std::filesystem::remove(opt.output_path, ec);
      }
      remove_journal_files(opt.journal_path);
    }

    // Which input a journal belongs to: the source's tag, and its first items, checked below.
    source_identity = source->identity();

    const bool output_is_file = opt.output_path != "-";
    const bool journal_exists = std::filesystem::exists(opt.journal_path);
    if (output_is_file && !journal_exists && file_nonempty(opt.output_path)) {
      throw Error("the output \"" + opt.output_path + "\" already exists and has no journal (" + opt.journal_path +
                  "); pass --overwrite to replace it, or choose another output");
    }
    bool legacy_journal = false;
    try {
      journal = std::make_unique<Journal>(opt.journal_path, source_identity.tag);
    } catch (const Error&) {
      if (!journal_exists || source_identity.legacy_tag.empty()) throw;
      // A journal of the v1 rule, or another endpoint setting (then this throws, naming both).
      journal = std::make_unique<Journal>(opt.journal_path, source_identity.legacy_tag);
      legacy_journal = true;
    }
    if (!legacy_journal) check_first_lines(source_identity.first_lines);

    if (output_is_file && journal_exists) {
      reconcile_output();
      if (opt.retry_failed) forget_failures();
    }

    if (!carried_admissions.empty()) {
      for (const Journal::Admission& a : carried_admissions) {
        journal->record_admission(a.model, std::chrono::system_clock::time_point{std::chrono::seconds(a.unix_second)}, a.requests,
                                  a.tokens);
      }
      journal->commit_admissions();
    }
    load_recorded_pauses();
    seed_limiters();
    if (opt.disk_reserve_bytes > 0) make_reserve();

    // A --retry-failed run that removed every recorded row still appends: the output keeps
    // its other lines.
    summary.earlier_succeeded = journal->count_ok();
    summary.earlier_failed = journal->count() - summary.earlier_succeeded;
    const bool resume = journal->count() > 0 || summary.retried_failed_lines > 0;
    resumed_output = resume && output_is_file;
    journal->for_each_key([this](std::string_view key) { done_keys.insert(key); });
    sink = make_jsonl_sink(opt.output_path, resume ? OpenMode::append : OpenMode::truncate, opt.fsync);
    if (resume) {
      progress->message("info", "resuming: " + thousands(journal->count()) + " outcomes already in the journal " + opt.journal_path +
                                    " are skipped");
    }

    // Headers shared by every request. The key is only ever placed here.
    std::vector<std::string> shared;
    if (!opt.credentials.api_key.empty()) shared.push_back(http::auth_header(opt.limits.provider.value_or(Provider::openai), opt.credentials.api_key));
    if (!opt.credentials.organization.empty()) shared.push_back("OpenAI-Organization: " + opt.credentials.organization);
    if (!opt.credentials.project.empty()) shared.push_back("OpenAI-Project: " + opt.credentials.project);
    base_headers = std::make_shared<const std::vector<std::string>>(shared);
    shared.emplace_back("Content-Type: application/json");
    json_headers = std::make_shared<const std::vector<std::string>>(std::move(shared));
    std::random_device rd;
    run_nonce = hex64((static_cast<std::uint64_t>(rd()) << 32) ^ rd()).substr(0, 12);
    for (Endpoint e : {Endpoint::chat_completions, Endpoint::embeddings, Endpoint::audio_transcriptions, Endpoint::completions,
                       Endpoint::responses, Endpoint::moderations}) {
      urls[e] = http::endpoint_url(opt.limits.provider.value_or(Provider::openai), opt.base_url, e, "", opt.api_version);
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
  void check_first_lines(const std::vector<LineFingerprint>& current) {
    if (const auto stored = journal->meta("input_lines")) {
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
        if (journal->succeeded(key) != true) continue;  // an error or no outcome yet: may be edited
        throw Error("the journal \"" + opt.journal_path + "\" belongs to a different input: the line with key \"" + key + "\" " +
                    (it == now.end() ? "is not among the first lines of " : "has changed in ") + source_identity.path +
                    ", and its answer is recorded as a success. Resume with the input the journal was made for (lines that failed "
                    "may be edited, then --retry-failed sends them), choose another output, or pass --overwrite to start over");
      }
    }
    std::string text;
    for (const LineFingerprint& l : current) {
      if (!l.recorded) break;
      text += hex64(l.hash) + std::to_string(l.key.size()) + ":" + l.key;
    }
    journal->set_meta("input_lines", text);
  }

  // Configuration errors found before anything is sent (exit 2) --------------------------------

  // Only http:// and https:// reach an API; anything else ("htp://") used to be retried as
  // a connection error on every line.
  static void check_base_url(const std::string& url) {
    std::string lower = url.substr(0, 8);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower.starts_with("http://") || lower.starts_with("https://")) return;
    const std::size_t sep = url.find("://");
    throw Error("the base URL \"" + url + "\" " +
                (sep == std::string::npos ? std::string("has no scheme") : "has the unknown scheme \"" + url.substr(0, sep) + "\"") +
                ": it must start with https:// or http:// (--base-url / OPENAI_BASE_URL, e.g. https://api.openai.com/v1)");
  }

  // A pause an earlier run recorded (the provider asked to wait hours for a model) still in
  // force suspends the model's lane from the start: nothing is sent for it, its requests
  // are left for a re-run, other models go on, and the run ends with exit code 6.
  void load_recorded_pauses() {
    const auto wall_now = clock.wall_now();
    for (Journal::Pause& p : journal->pauses()) {
      if (p.until <= wall_now) {
        journal->clear_pause(p.model);
        continue;
      }
      if (opt.ignore_pause) {
        progress->message("warning", "model \"" + p.model + "\" was paused until " + format_utc(p.until) + " by " + p.reason +
                                         "; sending anyway (--ignore-pause)");
        journal->clear_pause(p.model);
        continue;
      }
      Lane& lane = lane_for(p.model);
      const TimePoint until = start + duration_cast<Duration>(p.until - wall_now);
      lane.limiter->pause_until(until);
      lane.suspended = true;
      lane.suspended_until = until;
      pauses[p.model] = PauseNote{p.until, std::move(p.reason), true, 0};
    }
  }

  // The server's windows still hold what an earlier run sent (a re-run right after a crash or
  // a stop): the journal keeps the last day's admissions per model and second, and each
  // model's limiter starts with them, as if admitted at the end of their second (never
  // later than it). Without this a re-run starts with empty windows and sends a minute's
  // worth on top of what the server counted in the last 60 s.
  void seed_limiters() {
    const auto wall_now = clock.wall_now();
    for (const Journal::Admission& a : journal->admissions_since(wall_now - kAdmissionHorizon)) {
      const std::chrono::system_clock::time_point end_of_second{std::chrono::seconds(a.unix_second + 1)};
      const Duration ago = end_of_second < wall_now ? duration_cast<Duration>(wall_now - end_of_second) : Duration{0};
      admission_for(a.model).record_admitted(limit::Cost{a.requests, a.tokens}, start - ago, start);
    }
  }

  // The requests queued on a suspended lane are left for a re-run (unwritten, so resumable).
  void abandon_suspended(Lane& lane, TimePoint now) {
    if (lane.queue.empty()) return;
    PauseNote& note = pauses[lane.model];
    if (note.recorded && note.left == 0) {
      progress->message("warning", pause_text(lane.model, note));
    }
    if (!paused_until || lane.suspended_until > *paused_until) {
      paused_until = lane.suspended_until;
      paused_model = lane.model;
    }
    while (!lane.queue.empty()) {
      Item* item = lane.queue.front();
      lane.queue.pop_front();
      ++note.left;
      abandon(item, now);
    }
  }

  [[nodiscard]] static std::string pause_text(const std::string& model, const PauseNote& note) {
    if (note.recorded) {
      return "model \"" + model + "\" paused until " + format_utc(note.until) + " by " + note.reason +
             "; nothing sent for it; re-run after that or pass --ignore-pause";
    }
    return "model \"" + model + "\" may resume after " + format_utc(note.until) + ", paused by " + note.reason +
           "; re-run after that to resume";
  }

  // After a crash the output may hold lines the journal has not committed yet (written,
  // flushed, then killed before the commit), or a torn last line. Make them agree: cut the
  // torn tail, adopt every output line into the journal, and forget journal rows whose line
  // is missing from the output (only possible if the output was edited or lost).
  void reconcile_output() {
    truncate_torn_tail(opt.output_path);
    if (!std::filesystem::exists(opt.output_path)) {
      const auto n = journal->count();
      if (n > 0) {
        progress->message("warning", "the output " + opt.output_path + " is missing: its " + thousands(n) +
                                         " journaled outcomes will be run again");
        std::vector<std::string> all;
        journal->for_each_key([&](std::string_view k) { all.emplace_back(k); });
        forget_in_sinks(all);
        journal->remove(all);
      }
      return;
    }
    CustomIdSet in_output;
    LineReader out(opt.output_path);
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
      const std::string key = Journal::key_of(o);
      in_output.insert(key);
      if (!journal->is_done(key)) {
        journal->record(o);
        ++adopted;
      }
    }
    journal->commit();
    std::vector<std::string> missing;
    journal->for_each_key([&](std::string_view k) {
      if (!in_output.contains(k)) missing.emplace_back(k);
    });
    if (!missing.empty()) {
      progress->message("warning", thousands(missing.size()) + " journaled outcomes are missing from " + opt.output_path +
                                       ": they will be run again");
      forget_in_sinks(missing);
      journal->remove(missing);
    }
    summary.reconciled_output_lines = adopted;
  }

  // Rows that are to be done again leave the extra sinks (CSV, SQLite, --errors file) too, so
  // that the new row replaces the old one there as well. Always before the journal forgets
  // them: a crash in between leaves journal rows missing from the output, which the next
  // run's reconcile_output() forgets again, here included (forgetting is idempotent).
  void forget_in_sinks(const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    for (auto& s : opt.extra_sinks) s->forget(keys);
  }

  // --retry-failed: the output loses its error lines first, then the extra sinks and the
  // journal their rows. A crash in between leaves journal rows whose lines are gone, which
  // the next run's reconcile_output() forgets as well: either way those lines are sent
  // again, once, and every sink ends with one row for each.
  void forget_failures() {
    // The output is gone (reconcile_output() then emptied the journal): every line is sent anyway.
    if (!std::filesystem::exists(opt.output_path)) return;
    const std::vector<std::string> failed = drop_failed_lines(opt.output_path);
    if (failed.empty()) {
      progress->message("info", "--retry-failed: no failed lines in " + opt.output_path);
      return;
    }
    forget_in_sinks(failed);
    journal->remove(failed);
    progress->message("info", "--retry-failed: " + thousands(failed.size()) + " failed lines removed from " + opt.output_path +
                                  " and the journal; they are sent again");
    summary.retried_failed_lines = failed.size();
  }

  // ---- reading ------------------------------------------------------------------------------

  [[nodiscard]] bool already_done(const std::string& key) { return done_keys.contains(key) && journal->is_done(key); }

  limit::Admission& admission_for(const std::string& model) {
    auto it = admissions.find(model);
    if (it == admissions.end()) {
      std::unique_ptr<limit::Admission> a =
          opt.make_admission ? opt.make_admission(model) : std::make_unique<limit::LocalAdmission>(limiters.for_model(model));
      it = admissions.emplace(model, std::move(a)).first;
    }
    return *it->second;
  }

  Lane& lane_for(const std::string& model) {
    auto it = lanes.find(model);
    if (it == lanes.end()) {
      it = lanes.emplace(model, Lane{}).first;
      Lane& lane = it->second;
      lane.model = model;
      lane.limiter = &admission_for(model);
      lane.charge = limiters.config().charge_for(model);
      lane.provider = limiters.config().provider_for(model);
      if (http::url_depends_on_model(lane.provider, opt.base_url)) {
        for (const auto& [e, url] : urls) lane.urls[e] = http::endpoint_url(lane.provider, opt.base_url, e, model, opt.api_version);
      }
    }
    return it->second;
  }

  // A line that never becomes a request is written as its error, unless an earlier run did.
  void finish_bad_line(Outcome o, std::shared_ptr<const void> payload, TimePoint now) {
    if (already_done(Journal::key_of(o))) {
      ++summary.skipped_done;
      return;
    }
    finish_without_item(std::move(o), std::move(payload), now);
  }

  void read_input(TimePoint now) {
    SourceItem in;
    while (!input_done && !stop_admitting && items.size() + reorder.size() < lookahead) {
      const SourceStatus status = source->next(in);
      input_waiting = status == SourceStatus::none_yet;
      if (status != SourceStatus::item) {
        input_done = status == SourceStatus::end;
        break;
      }
      const std::uint64_t line_no = in.line_no;
      if (in.skipped_bytes > 0) {
        // Too long to be a request the API accepts: skipped while reading, never held.
        ++summary.total_lines;
        Outcome o;
        o.line_no = line_no;
        o.error = ErrorKind::too_large;
        o.error_message = "line " + std::to_string(line_no) + ": " + too_large_reason("the line", in.skipped_bytes);
        finish_bad_line(std::move(o), std::move(in.payload), now);
        continue;
      }
      ParsedLine& p = in.parsed;
      ++summary.total_lines;

      if (!p.request) {
        Outcome o;
        o.line_no = line_no;
        o.error = p.error;
        o.error_message = p.error_message;
        if (!p.custom_id.empty() && seen_ids.insert(p.custom_id)) o.custom_id = p.custom_id;
        finish_bad_line(std::move(o), std::move(in.payload), now);
        continue;
      }
      Request& req = *p.request;
      if (!seen_ids.insert(req.custom_id)) {
        Outcome o;
        o.line_no = line_no;
        o.error = ErrorKind::invalid_input;
        o.error_message = "line " + std::to_string(line_no) + ": duplicate custom_id \"" + req.custom_id + "\" (an earlier line has it)";
        finish_bad_line(std::move(o), std::move(in.payload), now);
        continue;
      }
      if (already_done(req.custom_id)) {
        ++summary.skipped_done;
        continue;
      }
      auto item = std::make_unique<Item>();
      item->seq = next_seq++;
      item->read_at = now;
      item->payload = std::move(in.payload);
      if (req.endpoint == Endpoint::audio_transcriptions) {
        std::string why;
        auto spec = http::multipart_spec_from_json(req.body, why);
        std::error_code size_ec;
        const std::uint64_t file_bytes = spec ? std::filesystem::file_size(spec->file_path, size_ec) : 0;
        ErrorKind kind = ErrorKind::invalid_input;
        if (spec && !size_ec && file_bytes > kMaxRequestBytes) {
          kind = ErrorKind::too_large;
          why = too_large_reason("the audio file \"" + spec->file_path + "\"", file_bytes);
          spec.reset();
        }
        if (!spec) {
          Outcome o;
          o.custom_id = req.custom_id;
          o.line_no = line_no;
          o.error = kind;
          o.error_message = "line " + std::to_string(line_no) + ": " + why;
          PendingWrite w;
          w.outcome = std::move(o);
          w.read_at = now;
          w.payload = std::move(item->payload);
          deliver(item->seq, std::move(w), now);  // the seq is taken: fill it
          continue;
        }
        item->multipart = std::make_shared<const http::MultipartSpec>(std::move(*spec));
      }
      Lane& lane = lane_for(req.model);
      const limit::ChargeInputs charge_inputs = opt.estimator(req);
      item->pace_tokens = lane.charge.charge(charge_inputs);
      item->est_tokens = limit::worst_case_tokens(charge_inputs, opt.worst_case_completion_tokens);
      req.estimated_tokens = item->est_tokens;
      item->client_request_id = "fg-" + run_nonce + "-" + std::to_string(line_no);
      item->req = std::move(req);
      Item* raw = item.get();
      items.emplace(raw->seq, std::move(item));
      lane.queue.push_back(raw);
    }
  }

  // ---- recording ----------------------------------------------------------------------------

  void emit(PendingWrite& w, TimePoint now) {
    RowContext ctx;
    ctx.model = w.model;
    ctx.url = w.url;
    ctx.endpoint = w.endpoint;
    ctx.request_body = w.body;
    ctx.estimated_tokens = w.est_tokens;
    ctx.queued = w.first_sent_at != TimePoint{} ? w.first_sent_at - w.read_at : Duration{0};
    ctx.total = now - w.read_at;
    ctx.finished_at = clock.wall_now();
    ctx.payload = w.payload;
    // The output's sink writes to the file by itself once its buffer is large (4 MiB): flush
    // every sink before that, so that the output never gets ahead of the extra sinks.
    const std::uint64_t row_bytes = w.outcome.body.size() + w.outcome.error_message.size() + w.outcome.custom_id.size() + 512;
    for (auto& s : opt.extra_sinks) s->write(w.outcome, ctx);
    if (unflushed_bytes + row_bytes > (2u << 20)) flush_sinks();
    sink->write(w.outcome, ctx);
    unflushed_bytes += row_bytes;
    journal->record(w.outcome);
    const Outcome& o = w.outcome;
    if (!o.ok()) ++summary.outcomes[std::string(to_string(o.error))];
    if (o.ok()) {
      ++summary.succeeded;
    } else {
      ++summary.failed;
    }
  }

  void deliver(std::uint64_t seq, std::optional<PendingWrite> w, TimePoint now) {
    if (!opt.ordered) {
      if (w) emit(*w, now);
      return;
    }
    reorder.emplace(seq, std::move(w));
    while (!reorder.empty() && reorder.begin()->first == next_write_seq) {
      if (reorder.begin()->second) emit(*reorder.begin()->second, now);
      reorder.erase(reorder.begin());
      ++next_write_seq;
    }
  }

  void finish_without_item(Outcome o, std::shared_ptr<const void> payload, TimePoint now) {
    const std::uint64_t seq = next_seq++;
    PendingWrite w;
    w.outcome = std::move(o);
    w.read_at = now;
    w.payload = std::move(payload);
    deliver(seq, std::move(w), now);
  }

  // A terminal outcome for an item: write it (now or in order), forget the item.
  void finish(Item* item, Outcome o, TimePoint now) {
    PendingWrite w;
    w.outcome = std::move(o);
    w.model = item->req.model;
    w.url = item->req.url;
    w.endpoint = item->req.endpoint;
    if (!opt.extra_sinks.empty()) w.body = item->req.body;
    w.est_tokens = item->est_tokens;
    w.read_at = item->read_at;
    w.first_sent_at = item->first_sent_at;
    w.payload = std::move(item->payload);
    const std::uint64_t seq = item->seq;
    items.erase(seq);
    deliver(seq, std::move(w), now);
  }

  // The item is left for a resume (stopped before it finished).
  void abandon(Item* item, TimePoint now) {
    const std::uint64_t seq = item->seq;
    ++summary.not_done;
    items.erase(seq);
    deliver(seq, std::nullopt, now);
  }

  Outcome failure(const Item* item, ErrorKind kind, std::string message) const {
    Outcome o;
    o.custom_id = item->req.custom_id;
    o.line_no = item->req.line_no;
    o.error = kind;
    o.error_message = std::move(message);
    o.attempts = item->attempts;
    return o;
  }

  void checkpoint(TimePoint now, bool force) {
    if (!force && now - last_checkpoint < opt.checkpoint_interval && journal->pending() < 8192) return;
    last_checkpoint = now;
    if (journal->pending() == 0 && !force) return;
    // Order matters: the rows reach the output before the journal says they are done.
    flush_sinks();
    journal->commit();
  }

  // A write that fails because the disk is full (or a quota, or the file size limit): stop
  // admitting, free the reserve (so the rows of requests already paid for can still be
  // written), let those in flight finish, and try the writes again at each turn of the loop
  // and at the end. Rows that never reach the output are sent again by a resume; rows that
  // reach it but not the journal are adopted by the resume. Exit code 74.
  template <class Fn>
  void guard_writes(Fn&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      if (e.exit_code() != exit_code::disk_full) throw;
      if (disk_full_stop) return;
      disk_full_stop = true;
      disk_full_message = e.what();
      stop_admitting = true;
      remove_reserve();
      progress->message("error", disk_full_message + ": stopped admitting; writing what " + std::to_string(in_flight.size()) +
                                     " requests in flight return, then stopping. The job is resumable: make room and re-run the "
                                     "same command");
    }
  }

  // A little disk space held from the start ("<journal>.reserve") and given back when the
  // disk fills up, so the rows already paid for still fit. Best effort: none when the disk
  // has no room for it even at the start.
  void make_reserve() {
    reserve_path = opt.journal_path + ".reserve";
    const int fd = ::open(reserve_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      reserve_path.clear();
      return;
    }
    const bool ok = ::posix_fallocate(fd, 0, static_cast<off_t>(opt.disk_reserve_bytes)) == 0;
    ::close(fd);
    if (!ok) remove_reserve();
  }

  void remove_reserve() {
    if (reserve_path.empty()) return;
    ::unlink(reserve_path.c_str());
    reserve_path.clear();
  }

  // The extra sinks first, then the output: a row in the output (which a resume adopts into
  // the journal, never to be sent again) is then in every sink too, whenever a kill -9
  // comes. A row in a sink but not yet in the output is sent again on resume; CSV keeps the
  // first row of a key, SQLite the last: once either way.
  void flush_sinks() {
    for (auto& s : opt.extra_sinks) s->flush();
    sink->flush();
    unflushed_bytes = 0;
    // Tests only (FLOODGATE_TEST_KILL_AFTER_ROWS=N): a kill -9 right after the output got
    // its N-th row, before the journal commits: the moment a crash loses most.
    if (kill_after_rows > 0 && summary.succeeded + summary.failed >= kill_after_rows) ::raise(SIGKILL);
  }

  // ---- admission ----------------------------------------------------------------------------

  void send(Item* item, Lane& lane, const limit::Grant& grant, TimePoint now) {
    ++item->attempts;
    if (item->attempts == 1) {
      item->first_sent_at = now;
    } else {
      ++summary.retries;
    }
    ++summary.attempts;
    // Persisted before the loop lets the request out (seed_limiters() reads it back).
    journal->record_admission(lane.model, clock.wall_now(), grant.cost.requests, grant.cost.tokens);
    http::HttpRequest hr;
    hr.tag = item->seq;
    hr.url = lane.urls.empty() ? urls[item->req.endpoint] : lane.urls[item->req.endpoint];
    hr.headers.push_back("x-client-request-id: " + item->client_request_id);
    hr.max_response_bytes = opt.max_response_bytes.value_or(default_response_cap(item->req.endpoint));
    if (item->multipart) {
      hr.common_headers = base_headers;
      hr.mime = http::make_mime_builder(item->multipart);  // curl sets the multipart Content-Type
    } else {
      hr.common_headers = json_headers;
      // A non-owning view: the item outlives its transfer (cancel_all() runs before any
      // in-flight item is dropped).
      hr.body = std::shared_ptr<const std::string>(std::shared_ptr<const std::string>{}, &item->req.body);
    }
    transport->submit(std::move(hr));
    in_flight.emplace(item->seq, InFlight{item, &lane, grant});
  }

  // Admits what may go now; returns the earliest time anything blocked could go.
  TimePoint admit(TimePoint now) {
    TimePoint wake = TimePoint::max();
    if (stop_admitting || lanes.empty()) return wake;
    const auto bstate = breaker.state(now);
    if (bstate == limit::BreakerState::open) return std::min(wake, breaker.blocked_until());
    if (bstate == limit::BreakerState::half_open && breaker.blocked_until() == TimePoint::max()) return wake;  // probe out

    std::vector<Lane*> order;
    order.reserve(lanes.size());
    for (auto& [name, lane] : lanes) order.push_back(&lane);
    const std::size_t n = order.size();
    lane_cursor = (lane_cursor + 1) % n;
    for (std::size_t k = 0; k < n; ++k) {
      Lane& lane = *order[(lane_cursor + k) % n];
      if (lane.suspended) {
        abandon_suspended(lane, now);
        continue;
      }
      while (!lane.queue.empty()) {
        if (in_flight.size() >= opt.max_in_flight) return wake;
        if (lane.next_try > now) {
          wake = std::min(wake, lane.next_try);
          break;
        }
        Item* head = lane.queue.front();
        if (head != lane.head_seen) {
          lane.head_seen = head;
          lane.head_since = now;
        }
        if (opt.max_wait && now - lane.head_since > *opt.max_wait) {
          lane.queue.pop_front();
          finish(head, failure(head, ErrorKind::max_wait, "waited longer than --max-wait (" + format_duration(*opt.max_wait) + ") for admission"), now);
          continue;
        }
        const limit::Cost cost{1, head->pace_tokens};
        const bool closed = breaker.state(now) == limit::BreakerState::closed;
        limit::Decision d = closed ? lane.limiter->try_acquire(cost, now) : lane.limiter->peek(cost, now);
        if (d.verdict == limit::Decision::Verdict::cannot_fit) {
          lane.queue.pop_front();
          const auto lim = lane.limiter->limits();
          finish(head, failure(head, ErrorKind::cannot_fit,
                               "the request is charged an estimated " + std::to_string(head->pace_tokens) + " tokens, more than the " +
                                   std::string(limit::to_string(d.blocked_by)) + " limit allows (tokens/min " +
                                   std::to_string(static_cast<long long>(lim.tokens_per_minute)) + "); it can never be sent"),
                 now);
          continue;
        }
        if (d.verdict == limit::Decision::Verdict::wait) {
          lane.waiting_for = d.blocked_by;
          lane.waiting_until = d.not_before;
          lane.next_try = d.not_before;
          if (opt.max_wait) lane.next_try = std::min(lane.next_try, lane.head_since + *opt.max_wait + std::chrono::milliseconds(1));
          wake = std::min(wake, lane.next_try);
          break;
        }
        if (opt.admit) {
          const EngineOptions::Admit a = opt.admit(head->req);
          if (a != EngineOptions::Admit::yes) {
            if (closed) lane.limiter->reconcile(d.grant, limit::Cost{0, 0}, now);  // give the reservation back
            if (a == EngineOptions::Admit::stop) {
              if (!budget_stop) {
                progress->message("warning", "budget reached: " + (opt.budget_reason ? opt.budget_reason() : std::string("stop")) +
                                                 "; no new requests, draining those in flight. Re-run to resume.");
              }
              budget_stop = true;
              stop_admitting = true;
              return wake;
            }
            // not_yet: ask again when an attempt completes (its settlement may free budget).
            lane.next_try = in_flight.empty() ? now + std::chrono::milliseconds(100) : TimePoint::max();
            if (lane.next_try != TimePoint::max()) wake = std::min(wake, lane.next_try);
            break;
          }
        }
        if (!closed) {
          if (!breaker.try_pass(now)) return std::min(wake, breaker.blocked_until());
          d = lane.limiter->try_acquire(cost, now);
          if (!d.admitted()) continue;
        }
        lane.queue.pop_front();
        send(head, lane, d.grant, now);
        if (!closed) return wake;  // the probe: nothing else until it answers
      }
    }
    return wake;
  }

  // ---- responses ----------------------------------------------------------------------------

  // A retry that backs off longer than 10 s after an error: said once per 10 s, with the wait
  // in seconds as a field (wait_s) in JSON logs. Waiting for the limiter's window is ordinary
  // pacing, not a warning: the progress line shows it.
  void warn_long_backoff(Duration wait, const Item& item, TimePoint now) {
    if (wait <= std::chrono::seconds(10)) return;
    if (now - last_long_wait_warning < std::chrono::seconds(10) && last_long_wait_warning != TimePoint{}) return;
    last_long_wait_warning = now;
    const Outcome& o = item.last;
    const std::string after = o.status_code > 0 ? "HTTP " + std::to_string(o.status_code) + " " + std::string(to_string(o.error))
                                                : std::string(to_string(o.error));
    progress->message("warning",
                      "backing off after " + after + " (" + item.req.custom_id + ", attempt " + std::to_string(item.attempts) + " of " +
                          std::to_string(opt.retry.max_attempts) + "): retrying in " + format_duration(wait),
                      {{"wait_s", std::chrono::duration<double>(wait).count()}});
  }

  // The flag whose limit a timeout after the request went out met: the attempt's total
  // (--timeout) when it ran that long, else the wait for the next byte (--idle-timeout).
  [[nodiscard]] std::string timeout_flag(const http::HttpResponse& r) const {
    const Duration total = opt.transport.total_timeout;
    if (r.elapsed + std::chrono::milliseconds(100) >= total) return "--timeout " + format_duration(total);
    return "--idle-timeout " + format_duration(Duration(opt.transport.idle_timeout));
  }

  void on_response(http::HttpResponse& r, TimePoint now) {
    auto it = in_flight.find(r.tag);
    if (it == in_flight.end()) return;
    InFlight f = it->second;
    in_flight.erase(it);
    Item* item = f.item;
    Lane& lane = *f.lane;

    header_views.clear();  // reused: no allocation per response
    for (std::size_t i = 0; i < r.header_count(); ++i) header_views.emplace_back(r.header_name(i), r.header_value(i));
    const auto rl = limit::for_provider(limit::parse_rate_limit_headers(header_views, clock.wall_now()), lane.provider);

    Exchange x = classify_exchange(r);
    Outcome o = std::move(x.outcome);
    o.custom_id = item->req.custom_id;
    o.line_no = item->req.line_no;
    o.attempts = item->attempts;
    o.latency_seconds = std::chrono::duration<double>(r.elapsed).count();
    const std::string& answer_refusal = x.refusal;
    const std::string& quota_code = x.quota_code;
    // A timeout after the request went out while the server answered other requests: this
    // one was slow (--timeout too short for it), the server is up.
    const bool others_answered = answered_once && last_answer_at >= now - r.elapsed;
    if (x.timed_out_sent) {
      o.error_message = "timeout: no answer within " + timeout_flag(r) + " although the server took the request" +
                        (others_answered ? " and answered others meanwhile" : "") + " (raise it if answers take longer): " + r.error_message;
    }
    if (x.reached) {
      answered_once = true;
      last_answer_at = now;
      // Lines held for a verdict (their last attempt found no server) were bad lines after all.
      for (auto& [parked_item, parked_outcome] : parked) finish(parked_item, std::move(parked_outcome), now);
      parked.clear();
    }
    if (r.status == 429) ++summary.http_429;

    // Settle the reservation with what the server counted. A provider that charges at
    // admission (OpenAI) keeps that charge whatever the answer used; one that settles at
    // usage (",refund" rules) counts the usage.
    limit::Answer answer{rl, false, false, std::nullopt};
    answer.rate_limited = o.error == ErrorKind::rate_limited;
    if (o.ok()) {
      if (lane.charge.refunds_unused && o.usage.total_tokens > 0) answer.used_tokens = o.usage.total_tokens;
    } else {
      answer.refused = o.error == ErrorKind::rate_limited || o.error == ErrorKind::insufficient_quota || !is_retryable(o.error);
    }
    lane.limiter->settle(f.grant, answer, now);
    if (opt.settle) opt.settle(item->req, o.usage);
    // Every answered attempt is billed, also one re-asked below (--retry-invalid): count it
    // here, not from the final outcome.
    summary.tokens_prompt += o.usage.prompt_tokens;
    summary.tokens_completion += o.usage.completion_tokens;
    summary.tokens_total += o.usage.total_tokens;
    if (r.error == http::TransportError::none && hold_refusal(item, o, answer_refusal, now)) return;

    const bool has_answer = item->req.endpoint == Endpoint::chat_completions || item->req.endpoint == Endpoint::responses;
    if (o.ok() && opt.check_answer && has_answer) {
      const EngineOptions::AnswerVerdict v = opt.check_answer(item->req, o.body);
      if (v.kind != ErrorKind::none) {
        o.error = v.kind;
        o.error_message = v.message;
        if (v.kind == ErrorKind::schema_violation && item->invalid_retries < opt.retry_invalid && !stop_admitting) {
          ++item->invalid_retries;
          item->last = std::move(o);
          breaker.on_success(now);
          retry_at.emplace(now, item);  // re-ask at once (it still goes through the limiter)
          return;
        }
        breaker.on_success(now);
        finish(item, std::move(o), now);
        return;
      }
    }
    lane.next_try = TimePoint{};  // observe/reconcile may have made room
    for (auto& [name, l] : lanes) l.next_try = std::min(l.next_try, now);

    if (o.ok()) {
      breaker.on_success(now);
      finish(item, std::move(o), now);
      return;
    }
    // No answer at all (classifier.hpp): before the first answer it is evidence that the API
    // cannot be reached; after it, of an outage. Not a timeout of a request the server took
    // while it answered others meanwhile: that is this request's timeout, retried like any
    // other error.
    const bool no_contact = x.no_contact && !(x.timed_out_sent && others_answered);
    if (o.error == ErrorKind::rate_limited) {
      if (lane.limiter->on_rate_limited(rl, now, f.grant.cost)) {
        progress->message("warning", "model \"" + lane.model + "\": a 429 although the server's remaining said there was room: it "
                                     "enforces its limit over a shorter period than the minute; pacing evenly from now on (250ms tolerance, no 1s burst)");
      }
      const auto before = breaker.times_opened();
      breaker.on_rate_limited(now, rl.wait_hint());
      if (breaker.times_opened() != before) {
        const auto wait = breaker.blocked_until() - now;
        progress->message("warning", "circuit breaker open after " + std::to_string(opt.breaker.threshold) +
                                         " consecutive 429s: pausing all sending for " + format_duration(wait));
      }
    } else if (no_contact && answered_once) {
      on_no_contact(now, o.error_message);
    } else {
      breaker.on_other_failure(now);
    }

    // The same test parks a line below, so a parked line always has a verdict.
    if (!answered_once && no_contact && !unreachable_stop && opt.unreachable_after > Duration{0}) {
      ++connect_failures;
      if (!first_connect_failure) first_connect_failure = now;
      last_connect_error = o.error_message;
      last_failure_was_slow = x.timed_out_sent;
      check_unreachable(now);
    }
    if ((unreachable_stop || outage_stop) && no_contact) {
      abandon(item, now);
      return;
    }
    if (no_contact && breaker.in_outage() && !stop_admitting) {
      // Met the outage: not this line's fault. It waits for the server like every other.
      ++item->spared;
      item->last = std::move(o);
      retry_at.emplace(now, item);
      return;
    }

    if (o.error == ErrorKind::insufficient_quota) {
      if (!quota_stop) {
        progress->message("error", "429 " + quota_code + ": the account is out of quota or over a spend/usage limit (check the plan, "
                                   "billing details and limits). Stopped admitting; draining requests in flight. Re-run the same command to resume.");
      }
      quota_stop = true;
      stop_admitting = true;
      abandon(item, now);
      return;
    }
    if (is_retryable(o.error)) {
      if (stop_admitting) {
        abandon(item, now);
        return;
      }
      if (static_cast<int>(item->attempts - item->spared) >= opt.retry.max_attempts) {
        o.error_message = o.error_message + " (after " + std::to_string(item->attempts) + " attempts)";
        const bool unreachable_verdict = !answered_once && opt.unreachable_after > Duration{0};
        const bool outage_verdict = answered_once && breaker.consecutive_no_contact() > 0;
        if (no_contact && (unreachable_verdict || outage_verdict)) {
          // Finished as failed by the next answer, or left unsent by the verdict (the API is
          // unreachable, or the run of failures becomes an outage).
          parked.emplace_back(item, std::move(o));
          return;
        }
        finish(item, std::move(o), now);
        return;
      }
      std::optional<Duration> hint = o.error == ErrorKind::rate_limited ? rl.wait_hint() : rl.retry_after;
      limit::RetryDecision d = backoff.next(static_cast<int>(item->attempts - item->spared), hint);
      if (d.verdict == limit::RetryVerdict::retry) {
        item->last = std::move(o);
        retry_at.emplace(now + d.delay, item);
        warn_long_backoff(d.delay, *item, now);
        return;
      }
      if (d.verdict == limit::RetryVerdict::suspend) {
        // A wait beyond --max-pause (retry-after: 999999999 is 31 years) is capped: the run
        // stops, and a re-run after the cap asks the server again.
        const Duration asked = d.delay;
        d.delay = std::min(d.delay, opt.max_pause);
        const TimePoint until = now + d.delay;
        // The other requests in flight when the model was paused get the same 429: one warning.
        const bool already_paused = lane.suspended;
        lane.limiter->pause_until(until);
        lane.suspended = true;
        lane.suspended_until = until;
        if (!paused_until || until > *paused_until) {
          paused_until = until;
          paused_model = lane.model;
        }
        // Remembered in the journal: a re-run before `until` sends nothing for the model.
        const auto wall_until = clock.wall_now() + duration_cast<std::chrono::system_clock::duration>(d.delay);
        const std::string capped = asked > d.delay ? ", capped at --max-pause " + format_duration(duration_cast<std::chrono::seconds>(d.delay)) : "";
        const std::string reason = std::string(d.delay >= std::chrono::hours(1) ? "the provider's daily limit" : "the provider's rate limit") +
                                   " (a 429 asked to wait " + format_duration(duration_cast<std::chrono::seconds>(asked)) + capped + ")";
        journal->set_pause(Journal::Pause{lane.model, wall_until, reason});
        PauseNote& note = pauses[lane.model];
        if (note.until < wall_until) note = PauseNote{wall_until, reason, false, note.left};
        if (!already_paused) {
          progress->message("warning", "the server asks to wait " + format_duration(duration_cast<std::chrono::seconds>(asked)) + capped +
                                           " for model \"" + lane.model +
                                           "\" (beyond the retry horizon): no more requests for it in this run; re-run after that to resume");
        }
        lane.queue.push_front(item);  // stays unfinished: resumable
        return;
      }
      finish(item, std::move(o), now);
      return;
    }
    finish(item, std::move(o), now);
  }

  void release_due_retries(TimePoint now) {
    if (retry_at.empty() || retry_at.begin()->first > now) return;
    std::vector<Item*> due;
    while (!retry_at.empty() && retry_at.begin()->first <= now) {
      due.push_back(retry_at.begin()->second);
      retry_at.erase(retry_at.begin());
    }
    // Older requests first: push to the front in descending input order.
    std::sort(due.begin(), due.end(), [](const Item* a, const Item* b) { return a->seq > b->seq; });
    for (Item* item : due) {
      Lane& lane = lane_for(item->req.model);
      lane.queue.push_front(item);
      lane.next_try = std::min(lane.next_try, now);
    }
  }

  // An attempt after the first answer that got no answer at all. A run of them across all
  // requests (CircuitBreaker's outage threshold) is an outage: sending pauses, one probe
  // at a time, and the lines that met it keep their attempts.
  void on_no_contact(TimePoint now, const std::string& error) {
    const bool was = breaker.in_outage();
    breaker.on_no_contact(now);
    last_connect_error = error;
    if (was || !breaker.in_outage()) return;
    std::string bound = opt.outage_limit > Duration{0} ? "; if that takes longer than --outage-limit (" + format_duration(opt.outage_limit) +
                                                              ") the run stops, resumable (exit 8)"
                                                        : "";
    progress->message("warning", "the server stopped answering (" + std::to_string(breaker.consecutive_no_contact()) +
                                     " attempts in a row got no answer; last: " + error +
                                     "): pausing all sending and probing one request at a time until it answers" + bound);
    // Lines whose last attempt was one of the run of failures go back in line.
    for (auto& [parked_item, parked_outcome] : parked) {
      ++parked_item->spared;
      parked_item->last = std::move(parked_outcome);
      retry_at.emplace(now, parked_item);
    }
    parked.clear();
  }

  // After the first answer, lines whose last attempt got no answer wait for the next answer
  // (then they failed on their own) or for the outage verdict. When neither can come any
  // more (nothing else in flight, waiting or queued, and too few failures in a row for an
  // outage) they fail now, as the next answer would have made them: the run waited for ever.
  void check_parked(TimePoint now) {
    if (parked.empty() || !answered_once || breaker.in_outage() || outage_stop || !nothing_else_to_try()) return;
    for (auto& [item, outcome] : parked) finish(item, std::move(outcome), now);
    parked.clear();
  }

  // The outage has lasted --outage-limit: stop, and leave every unfinished line unsent
  // (resumable) rather than fail it.
  void check_outage(TimePoint now) {
    if (outage_stop || !breaker.in_outage() || opt.outage_limit <= Duration{0}) return;
    if (now - breaker.outage_since() < opt.outage_limit) return;
    outage_stop = true;
    stop_admitting = true;
    progress->message("error", "no answer from " + opt.base_url + " for " +
                                   format_duration(duration_cast<std::chrono::seconds>(now - breaker.outage_since())) +
                                   " (--outage-limit " + format_duration(opt.outage_limit) + "; last: " + last_connect_error +
                                   "). Stopped; the lines not finished were not recorded. Re-run the same command to resume once the server is back.");
    for (auto& [item, outcome] : parked) abandon(item, now);
    parked.clear();
  }

  // ---- stopping -----------------------------------------------------------------------------

  static constexpr std::uint64_t kRefusalsToStop = 5;

  // An answer before any that cleared the suspicion (see `refused`): true when the item is
  // held or left unsent, false when it goes on as usual.
  bool hold_refusal(Item* item, Outcome& o, const std::string& answer_refusal, TimePoint now) {
    if (rejected_stop) {
      if (answer_refusal != refusal_key) return false;
      abandon(item, now);  // in flight when the job stopped: left unsent like the rest
      return true;
    }
    if (refusal_cleared) return false;
    if (answer_refusal.empty() || (!refusal_key.empty() && answer_refusal != refusal_key)) {
      refusal_cleared = true;  // another kind of answer: the refusals were per line after all
      std::sort(refused.begin(), refused.end(), [](const auto& a, const auto& b) { return a.first->seq < b.first->seq; });
      for (auto& [held, outcome] : refused) finish(held, std::move(outcome), now);
      refused.clear();
      return false;
    }
    if (refusal_key.empty()) {
      refusal_key = answer_refusal;
      refusal_message = o.error_message;
      refusal_model = item->req.model;
      refusal_url = urls[item->req.endpoint];
    }
    ++refusals;
    refused.emplace_back(item, std::move(o));
    check_rejected(now);
    return true;
  }

  // What to fix, by the refusal.
  [[nodiscard]] std::string refusal_advice() const {
    const std::string status = refusal_key.substr(0, 3);
    const std::string code = refusal_key.size() > 4 ? refusal_key.substr(4) : std::string();
    if (status == "401") return "the API key was refused: check OPENAI_API_KEY (or --api-key), and --organization / --project if given";
    if (code == "model_not_found") {
      return "model \"" + refusal_model + "\" does not exist or this key's project has no access to it: check the model name in the input, "
             "or the project's model access (--project)";
    }
    if (status == "404") return "the URL " + refusal_url + " does not exist: check --base-url / OPENAI_BASE_URL (the API's is https://api.openai.com/v1)";
    return "the key's organization or project may not use model \"" + refusal_model + "\" or this endpoint: check --organization / --project, "
           "the model, and the project's permissions";
  }

  // Nothing else can add evidence for a verdict: nothing in flight, waiting or queued, and no
  // more input (read to the end, or blocked by the look-ahead, which held lines and --ordered
  // holes can fill).
  [[nodiscard]] bool nothing_else_to_try() const {
    const bool reading_blocked = input_done || input_waiting || items.size() + reorder.size() >= lookahead;
    return in_flight.empty() && retry_at.empty() && reading_blocked &&
           std::all_of(lanes.begin(), lanes.end(), [](const auto& l) { return l.second.queue.empty(); });
  }

  // The first answers are all the same refusal (kRefusalsToStop of them, or fewer when no
  // other line can answer): stop, leave every line unsent, exit 9.
  void check_rejected(TimePoint now) {
    if (rejected_stop || refusal_cleared || refused.empty()) return;
    if (refusals < kRefusalsToStop && !nothing_else_to_try()) return;
    rejected_stop = true;
    stop_admitting = true;
    progress->message("error", "every answer so far was the same refusal (" + thousands(refusals) + " of them, HTTP " + refusal_key.substr(0, 3) +
                                   (refusal_key.size() > 4 ? " " + refusal_key.substr(4) : std::string()) + ": " + refusal_message + "): " +
                                   refusal_advice() + ". Stopped; nothing was recorded for the lines not sent or refused. "
                                   "Fix it, then re-run the same command.");
    for (auto& [item, outcome] : refused) abandon(item, now);
    refused.clear();
  }

  // No answer yet, and connecting has failed for --unreachable-after (8 attempts at least, or
  // fewer when nothing else is left to try): a wrong URL or a server that is down. Stop, and
  // leave every unfinished line unsent instead of failing it.
  void check_unreachable(TimePoint now) {
    if (answered_once || unreachable_stop || !first_connect_failure || opt.unreachable_after <= Duration{0}) return;
    if (now - *first_connect_failure < opt.unreachable_after) return;
    if (connect_failures < 8 && !nothing_else_to_try()) return;
    unreachable_stop = true;
    stop_admitting = true;
    const std::string over = thousands(connect_failures) + " attempts in a row over " +
                             format_duration(duration_cast<std::chrono::seconds>(now - *first_connect_failure));
    if (last_failure_was_slow) {
      // The server took the requests but answered none in time: slow, not unreachable.
      progress->message("error", "no answer from " + opt.base_url + " in time: " + last_connect_error + " (" + over +
                                     "; the server accepted the connections and the requests). Stopped; the lines not answered were not "
                                     "recorded. If its answers take longer (long completions, a slow model or server), raise --timeout; "
                                     "then re-run the same command to resume.");
    } else {
      progress->message("error", "cannot reach " + opt.base_url + ": " + last_connect_error + " (" + over +
                                     ", no answer yet). Stopped; the lines that could not be sent were not recorded. Check --base-url / "
                                     "OPENAI_BASE_URL and the network, then re-run the same command to resume.");
    }
    for (auto& [item, outcome] : parked) abandon(item, now);
    parked.clear();
  }

  void drain_pipe() {
    char buf[64];
    while (::read(wake_pipe[0], buf, sizeof buf) > 0) {
    }
  }

  void check_stop(TimePoint now) {
    const int n = stop_requests.load();
    if (n == 0) return;
    drain_pipe();
    if (!interrupted) {
      interrupted = true;
      stop_admitting = true;
      progress->message("warning", "interrupted: no new requests; waiting for " + std::to_string(in_flight.size()) +
                                       " in flight (Ctrl-C again to stop at once). Re-run the same command to resume.");
    }
    if (n >= 2 && !stop_now) {
      stop_now = true;
      transport->cancel_all();
      for (auto& [seq, f] : in_flight) {
        (void)seq;
        f.lane->limiter->reconcile(f.grant, limit::Cost{1, f.grant.cost.tokens}, now);
        if (opt.settle) opt.settle(f.item->req, Usage{});
      }
      std::vector<Item*> flying;
      for (auto& [seq, f] : in_flight) flying.push_back(f.item);
      in_flight.clear();
      for (Item* item : flying) abandon(item, now);
    }
  }

  // When admitting stops, everything queued is left for a resume.
  void abandon_queued(TimePoint now) {
    std::vector<Item*> left;
    for (auto& [name, lane] : lanes) {
      for (Item* item : lane.queue) left.push_back(item);
      lane.queue.clear();
    }
    for (auto& [t, item] : retry_at) left.push_back(item);
    retry_at.clear();
    for (auto& [item, outcome] : parked) left.push_back(item);  // awaiting the unreachable verdict
    parked.clear();
    for (auto& [item, outcome] : refused) left.push_back(item);  // awaiting the refusal verdict
    refused.clear();
    std::sort(left.begin(), left.end(), [](const Item* a, const Item* b) { return a->seq < b->seq; });
    for (Item* item : left) abandon(item, now);
  }

  [[nodiscard]] bool stuck_on_suspended() const {
    if (!paused_until || !in_flight.empty() || !parked.empty() || !refused.empty()) return false;  // parked: the unreachable verdict decides
    if (!input_done && items.size() + reorder.size() < lookahead) return false;
    for (const auto& [name, lane] : lanes) {
      if (!lane.suspended && !lane.queue.empty()) return false;
    }
    for (const auto& [t, item] : retry_at) {
      auto it = lanes.find(item->req.model);
      if (it != lanes.end() && !it->second.suspended) return false;
    }
    return true;
  }

  // ---- progress -----------------------------------------------------------------------------

  ProgressState progress_state(TimePoint now) {
    ProgressState s;
    s.done = summary.succeeded + summary.failed + summary.skipped_done;
    s.skipped = summary.skipped_done;
    s.total = summary.total_lines;
    s.total_final = input_done;
    if (const auto read = source->fraction_read()) s.input_fraction = *read;
    s.in_flight = in_flight.size();
    s.queued = items.size() - in_flight.size();
    s.failed = summary.failed;
    s.http_429 = summary.http_429;
    s.retries = summary.retries;
    s.breaker = std::string(limit::to_string(breaker.state(now)));
    s.usage_tokens = summary.tokens_total;
    if (!lanes.empty()) {
      const Lane& lane = lanes.begin()->second;
      const auto snap = lane.limiter->snapshot(now);
      s.requests_last_minute = snap.requests_last_minute;
      s.tokens_last_minute = snap.tokens_last_minute;
      s.rpm_limit = snap.limits.requests_per_minute;
      s.tpm_limit = snap.limits.tokens_per_minute;
      s.charge = lane.charge.describe();
      if (snap.learned_extra_tokens != 0) {
        const auto extra = static_cast<long long>(std::ceil(snap.learned_extra_tokens));
        s.charge += (extra >= 0 ? "+" : "") + std::to_string(extra) + " learned";
      }
      if (snap.learning) {
        s.note = "learning limits";
      } else if (!snap.limits.any()) {
        s.note = "limits unknown (the server sends none): by concurrency, --max-in-flight " + std::to_string(opt.max_in_flight);
      } else if (snap.even_pacing && opt.limiter.pacing == limit::LimiterOptions::Pacing::whole_window) {
        s.note = "even pacing (429s inside the window)";
      }
      // Pacing at a low limit: the next request waits for room in the window (no warning:
      // that is the limit at work), said here so a line with nothing moving is explained.
      for (const auto& [name, l] : lanes) {
        const bool a_limit = l.waiting_for == limit::Dimension::requests_per_minute || l.waiting_for == limit::Dimension::tokens_per_minute ||
                             l.waiting_for == limit::Dimension::requests_per_day || l.waiting_for == limit::Dimension::tokens_per_day;
        if (!s.note.empty() || !a_limit || l.queue.empty() || l.suspended || l.next_try <= now || l.waiting_until == TimePoint::max() ||
            l.waiting_until <= now + std::chrono::seconds(1)) {
          continue;
        }
        s.note = "waiting for the " + std::string(limit::to_string(l.waiting_for)) + " limit of model \"" + name + "\": next request in " +
                 format_duration(duration_cast<std::chrono::seconds>(l.waiting_until - now));
      }
    } else {
      // Nothing sent yet (or nothing to send: a resumed run with every line done): the limits
      // given (--rpm/--tpm, --limits FILE), not "-".
      const limit::Limits& given = limiters.config().defaults;
      s.rpm_limit = given.requests_per_minute;
      s.tpm_limit = given.tokens_per_minute;
    }
    if (stop_admitting) {
      s.note = interrupted        ? "interrupted: draining"
               : quota_stop       ? "insufficient_quota: draining"
               : budget_stop      ? "budget reached: draining"
               : unreachable_stop ? "unreachable: draining"
               : outage_stop      ? "outage: draining"
               : rejected_stop    ? "refused: draining"
                                  : "draining";
    }
    if (paused_until) s.note = "model \"" + paused_model + "\" paused for " + format_duration(*paused_until - now);
    if (breaker.in_outage() && !stop_admitting) {
      s.note = "outage: no answer for " + format_duration(duration_cast<std::chrono::seconds>(now - breaker.outage_since())) + ", probing";
    }
    return s;
  }

  // One run writes --ordered rows in input order, but a resumed run appends after the rows
  // of earlier runs. At its end (the sink closed, the journal committed) the output is put
  // back in input order by an atomic rewrite; see store/output_order.hpp. Not after a
  // second Ctrl-C (stop at once); the next --ordered run does it.
  void restore_input_order() {
    std::unique_ptr<RequestSource> again = source->reopen();
    if (!again) {
      progress->message("warning", "--ordered: the input is stdin, so the rows of earlier runs cannot be put back in input order");
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
      const ReorderStats r = reorder_output(opt.output_path, next_key);
      if (r.rewritten) {
        progress->message("info", "--ordered: " + opt.output_path + " rewritten in input order (" + thousands(r.lines) +
                                      " lines, rows of earlier runs included)");
      }
    } catch (const Error& e) {
      progress->message("warning", std::string(e.what()) + "; the output keeps every row, in completion order across runs");
    }
  }

  // ---- the loop -----------------------------------------------------------------------------

  RunSummary run() {
    prepare();
    std::vector<http::HttpResponse> finished;
    finished.reserve(256);
    bool queued_abandoned = false;
    for (;;) {
      TimePoint now = clock.now();
      check_stop(now);
      check_unreachable(now);
      check_outage(now);
      check_parked(now);
      check_rejected(now);
      if (stop_admitting && !queued_abandoned) {
        abandon_queued(now);
        queued_abandoned = true;
      }
      if (!stop_admitting) {
        read_input(now);
        release_due_retries(now);
      }
      TimePoint wake = admit(now);
      guard_writes([&] { journal->commit_admissions(); });
      if (!retry_at.empty()) wake = std::min(wake, retry_at.begin()->first);

      const bool idle = in_flight.empty() && items.empty();
      if (idle && (input_done || stop_admitting)) break;
      if (stuck_on_suspended()) {
        stop_admitting = true;
        abandon_queued(now);
        queued_abandoned = true;
        break;
      }

      if (progress->due(now)) progress->update(progress_state(now), now);
      Duration timeout = std::chrono::milliseconds(250);
      if (wake != TimePoint::max()) timeout = std::min(timeout, std::max(Duration{0}, wake - now));
      if (!input_done && !input_waiting && !stop_admitting && items.size() + reorder.size() < lookahead) timeout = Duration{0};
      // Round up to whole milliseconds so we don't spin just before a not_before.
      auto timeout_ms = std::chrono::ceil<milliseconds>(timeout);
      finished.clear();
      if (in_flight.empty() && timeout_ms.count() > 0) {
        // Nothing to drive: still wait through the transport so a signal wakes us.
        transport->poll(timeout_ms, finished);
      } else {
        transport->poll(timeout_ms, finished);
      }
      now = clock.now();
      for (auto& r : finished) on_response(r, now);
      // Rows reach the OS as soon as they exist (a kill -9 loses none of them: resume adopts
      // them from the output); the journal commits them in batches at checkpoints.
      guard_writes([&] {
        if (journal->pending() > 0) flush_sinks();
        checkpoint(now, false);
      });
    }
    const TimePoint end = clock.now();
    // Everything written in order so far; with --ordered, rows still waiting behind a hole
    // are written now (their order cannot be kept across a resume anyway).
    for (auto& [seq, w] : reorder) {
      if (w) emit(*w, end);
    }
    reorder.clear();
    guard_writes([&] { checkpoint(end, true); });
    progress->update(progress_state(end), end, true);
    progress->finish();  // before the sinks close: some print a closing line
    if (!disk_full_stop) {
      guard_writes([&] {
        sink->close();
        if (opt.ordered && resumed_output && !stop_now) restore_input_order();
        for (auto& s : opt.extra_sinks) s->close();
      });
    }
    remove_reserve();

    summary.wall_seconds = std::chrono::duration<double>(end - start).count();
    if (summary.wall_seconds > 0) {
      summary.achieved_rpm = static_cast<double>(summary.attempts) * 60.0 / summary.wall_seconds;
      summary.achieved_tpm = static_cast<double>(summary.tokens_total) * 60.0 / summary.wall_seconds;
    }
    summary.limits = lanes.empty() ? limiters.config().defaults : lanes.begin()->second.limiter->limits();
    summary.breaker_opened = breaker.times_opened();
    if (disk_full_stop) {
      summary.exit_code = exit_code::disk_full;
      summary.stop_reason = "cannot write: " + disk_full_message +
                            ". Nothing is lost that was recorded; the job is resumable: make room (or move the output and its "
                            "journal to a larger disk) and re-run the same command";
    } else if (interrupted) {
      summary.exit_code = exit_code::interrupted;
      summary.stop_reason = "interrupted";
    } else if (unreachable_stop) {
      summary.exit_code = exit_code::unreachable;
      summary.stop_reason = last_failure_was_slow ? "unreachable: no answer in time from " + opt.base_url + " (it took the requests; raise --timeout)"
                                                  : "unreachable: no answer from " + opt.base_url;
    } else if (outage_stop) {
      summary.exit_code = exit_code::outage;
      summary.stop_reason = "outage: " + opt.base_url + " stopped answering mid-run for longer than --outage-limit (" +
                            format_duration(opt.outage_limit) + ")";
    } else if (rejected_stop) {
      summary.exit_code = exit_code::rejected;
      summary.stop_reason = "rejected: " + refusal_advice();
    } else if (quota_stop) {
      summary.exit_code = exit_code::insufficient_quota;
      summary.stop_reason = "insufficient_quota";
    } else if (budget_stop) {
      summary.exit_code = exit_code::budget;
      summary.stop_reason = "budget: " + (opt.budget_reason ? opt.budget_reason() : std::string("reached"));
    } else if (paused_until) {
      summary.exit_code = exit_code::paused;
      summary.stop_reason = "paused:";
      const char* sep = " ";
      for (const auto& [model, note] : pauses) {
        if (note.left == 0 && note.recorded) continue;  // a recorded pause of a model this input did not need
        summary.stop_reason += sep + pause_text(model, note);
        sep = "; ";
      }
    } else if (summary.failed + summary.earlier_failed > 0) {
      summary.exit_code = exit_code::some_failed;  // error lines in the output, this run's or earlier
    } else {
      summary.exit_code = exit_code::ok;
    }
    return summary;
  }
};

// The folder a file of the run goes in must exist and be writable: say which and why
// (SQLite would only say "unable to open database file").
void check_folder_writable(const std::string& file, const char* what) {
  std::string folder = std::filesystem::path(file).parent_path().string();
  if (folder.empty()) folder = ".";
  struct stat st {};
  const std::string head = std::string("cannot write the ") + what + " \"" + file + "\": the folder \"" + folder + "\" ";
  if (::stat(folder.c_str(), &st) != 0) {
    throw Error(head + (errno == ENOENT ? std::string("does not exist (create it first)") : "cannot be used (" + std::string(std::strerror(errno)) + ")"));
  }
  if (!S_ISDIR(st.st_mode)) throw Error(head + "is not a folder");
  if (::access(folder.c_str(), W_OK | X_OK) != 0) throw Error(head + "is not writable (" + std::string(std::strerror(errno)) + ")");
}

Engine::Engine(EngineOptions options, Clock& clock) : impl_(std::make_unique<Impl>(std::move(options), clock)) {}
Engine::~Engine() = default;

RunSummary Engine::run() { return impl_->run(); }

void Engine::request_stop() noexcept {
  impl_->stop_requests.fetch_add(1);
  if (impl_->wake_pipe[1] >= 0) {
    const char c = 's';
    [[maybe_unused]] const ssize_t n = ::write(impl_->wake_pipe[1], &c, 1);
  }
}

SignalGuard::SignalGuard(Engine& engine) {
  g_signal_engine.store(&engine);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

SignalGuard::~SignalGuard() {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  g_signal_engine.store(nullptr);
}

std::size_t default_response_cap(Endpoint endpoint) noexcept {
  return endpoint == Endpoint::embeddings ? std::size_t{128} << 20 : std::size_t{32} << 20;
}

// ---- summary --------------------------------------------------------------------------------

std::string format_summary(const RunSummary& s, bool json) {
  auto limit_or_dash = [](double v) {
    if (is_unlimited(v)) return std::string("unlimited");  // a server's "no limit" (1e9), not a number to compare with
    return v > 0 ? thousands(static_cast<std::uint64_t>(v)) + "/min" : std::string("-");
  };
  if (json) {
    std::string out = "{\"event\":\"summary\",\"exit_code\":" + std::to_string(s.exit_code) + ",\"stop_reason\":";
    append_json_string(out, s.stop_reason);
    out += ",\"lines\":" + std::to_string(s.total_lines) + ",\"skipped_done\":" + std::to_string(s.skipped_done) +
           ",\"earlier_succeeded\":" + std::to_string(s.earlier_succeeded) + ",\"earlier_failed\":" + std::to_string(s.earlier_failed) +
           ",\"error_lines_in_output\":" + std::to_string(s.failed + s.earlier_failed) +
           ",\"succeeded\":" + std::to_string(s.succeeded) + ",\"failed\":" + std::to_string(s.failed) +
           ",\"not_done\":" + std::to_string(s.not_done) + ",\"outcomes\":{";
    bool first = true;
    for (const auto& [k, v] : s.outcomes) {
      if (k == "none") continue;  // successes are "succeeded": outcomes are the failures by kind
      if (!first) out += ",";
      first = false;
      append_json_string(out, k);
      out += ":" + std::to_string(v);
    }
    out += "},\"attempts\":" + std::to_string(s.attempts) + ",\"retries\":" + std::to_string(s.retries) +
           ",\"http_429\":" + std::to_string(s.http_429) + ",\"tokens\":{\"prompt\":" + std::to_string(s.tokens_prompt) +
           ",\"completion\":" + std::to_string(s.tokens_completion) + ",\"total\":" + std::to_string(s.tokens_total) +
           "},\"wall_seconds\":" + std::to_string(s.wall_seconds) + ",\"achieved_rpm\":" + std::to_string(s.achieved_rpm) +
           ",\"achieved_tpm\":" + std::to_string(s.achieved_tpm) + ",\"limits\":{\"rpm\":" + std::to_string(s.limits.requests_per_minute) +
           ",\"tpm\":" + std::to_string(s.limits.tokens_per_minute) + ",\"rpd\":" + std::to_string(s.limits.requests_per_day) +
           ",\"tpd\":" + std::to_string(s.limits.tokens_per_day) + "},\"breaker_opened\":" + std::to_string(s.breaker_opened) +
           ",\"reconciled_output_lines\":" + std::to_string(s.reconciled_output_lines) +
           ",\"retried_failed_lines\":" + std::to_string(s.retried_failed_lines) + "}\n";
    return out;
  }
  std::string out = "floodgate run summary\n";
  char buf[256];
  if (s.earlier_succeeded + s.earlier_failed > 0) {
    std::snprintf(buf, sizeof buf, "  lines         %s (%s already done before this run: %s succeeded, %s failed)\n", thousands(s.total_lines).c_str(),
                  thousands(s.skipped_done).c_str(), thousands(s.earlier_succeeded).c_str(), thousands(s.earlier_failed).c_str());
  } else {
    std::snprintf(buf, sizeof buf, "  lines         %s (%s already done before this run)\n", thousands(s.total_lines).c_str(),
                  thousands(s.skipped_done).c_str());
  }
  out += buf;
  std::snprintf(buf, sizeof buf, "  succeeded     %s\n  failed        %s\n", thousands(s.succeeded).c_str(), thousands(s.failed).c_str());
  out += buf;
  if (s.not_done > 0 || !s.stop_reason.empty()) {
    std::snprintf(buf, sizeof buf, "  not done      %s (resumable: re-run the same command)\n", thousands(s.not_done).c_str());
    out += buf;
  }
  for (const auto& [k, v] : s.outcomes) {
    if (k == "none") continue;
    std::snprintf(buf, sizeof buf, "    %-20s %s\n", k.c_str(), thousands(v).c_str());
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "  wall time     %.2f s\n", s.wall_seconds);
  out += buf;
  if (s.attempts == 0) {
    // Nothing sent (every line done before, or a stop before the first request): no rate to
    // show, only the limits the run had.
    std::snprintf(buf, sizeof buf, "  requests      none sent in this run (limit %s)\n  tokens/min    none used in this run (limit %s)\n",
                  limit_or_dash(s.limits.requests_per_minute).c_str(), limit_or_dash(s.limits.tokens_per_minute).c_str());
    out += buf;
  } else if (s.wall_seconds >= 60.0) {
    std::snprintf(buf, sizeof buf, "  requests/min  %s average over the run (limit %s in any 60 s); %s attempts, %s retries, %s answered 429\n",
                  thousands(static_cast<std::uint64_t>(s.achieved_rpm)).c_str(), limit_or_dash(s.limits.requests_per_minute).c_str(),
                  thousands(s.attempts).c_str(), thousands(s.retries).c_str(), thousands(s.http_429).c_str());
    out += buf;
    std::snprintf(buf, sizeof buf, "  tokens/min    %s average over the run (limit %s)\n", thousands(static_cast<std::uint64_t>(s.achieved_tpm)).c_str(),
                  limit_or_dash(s.limits.tokens_per_minute).c_str());
    out += buf;
  } else {
    // A run shorter than a minute: one 60 s window holds all it sent, and the limits count
    // per 60 s. A per-minute figure extrapolated from its seconds read like a breach of the
    // limit after a burst the window allowed ("687/min if sustained (limit 600/min)"): say
    // what was sent, against the limit.
    std::snprintf(buf, sizeof buf, "  requests      %s attempts in %.1f s, all within one 60 s window (limit %s); %s retries, %s answered 429\n",
                  thousands(s.attempts).c_str(), s.wall_seconds, limit_or_dash(s.limits.requests_per_minute).c_str(), thousands(s.retries).c_str(),
                  thousands(s.http_429).c_str());
    out += buf;
    std::snprintf(buf, sizeof buf, "  tokens/min    %s used in %.1f s, all within one 60 s window (limit %s)\n", thousands(s.tokens_total).c_str(),
                  s.wall_seconds, limit_or_dash(s.limits.tokens_per_minute).c_str());
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "  tokens        %s (prompt %s, completion %s)\n", thousands(s.tokens_total).c_str(),
                thousands(s.tokens_prompt).c_str(), thousands(s.tokens_completion).c_str());
  out += buf;
  if (s.breaker_opened > 0) {
    std::snprintf(buf, sizeof buf, "  breaker       opened %s times\n", thousands(s.breaker_opened).c_str());
    out += buf;
  }
  if (s.retried_failed_lines > 0) {
    std::snprintf(buf, sizeof buf, "  retried       %s lines that failed in an earlier run (--retry-failed)\n", thousands(s.retried_failed_lines).c_str());
    out += buf;
  }
  if (s.reconciled_output_lines > 0) {
    std::snprintf(buf, sizeof buf, "  recovered     %s output lines written before a crash were adopted into the journal\n",
                  thousands(s.reconciled_output_lines).c_str());
    out += buf;
  }
  if (!s.stop_reason.empty()) out += "  stopped       " + s.stop_reason + "\n";
  if (s.failed + s.earlier_failed > 0) {
    // The exit code describes the output as it stands: say how to clear its error lines.
    std::snprintf(buf, sizeof buf, "  error lines   %s in the output (%s from earlier runs): send them again with --retry-failed\n",
                  thousands(s.failed + s.earlier_failed).c_str(), thousands(s.earlier_failed).c_str());
    out += buf;
  }
  return out;
}

}  // namespace floodgate::engine
