// `floodgate transcribe PATH... -o OUTDIR`: audio files through /v1/audio/transcriptions
// at the rate limit. Each file is probed (FFmpeg); long or large files are split at
// silences into chunks; every file or chunk becomes one request of an engine run (same
// limiter, retries, breaker and journal as `floodgate run`), uploaded as multipart
// streamed from disk; the chunks' transcripts are merged in order into one transcript
// per input, and a results table (results.jsonl and results.csv in OUTDIR, and --table
// FILE: a SQLite table by its extension) gets one row per input.
//
// The engine reads the uploads from memory (audio::ChunkSource) and hands their answers
// back in memory (the answer sink): no file of requests or responses is written. This file
// plans (through the floodgate-audio helper), sends and reports; the merge and the results
// table are src/audio's (results.hpp).
//
// Resume: every successful answer is also kept in OUTDIR/.floodgate/answers.sqlite; a
// re-run loads them and sends only what is missing, and skips the files the results table
// already has as ok (keyed by path + size + mtime + options).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "engine_flags.hpp"
#include "floodgate/audio/answers.hpp"
#include "floodgate/audio/chunk_dir.hpp"
#include "floodgate/audio/chunk_source.hpp"
#include "floodgate/audio/job.hpp"
#include "floodgate/audio/merge.hpp"
#include "floodgate/audio/results.hpp"
#include "floodgate/audio/media.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/exit_codes.hpp"
#include "floodgate/engine/engine.hpp"
#include "floodgate/store/run_lock.hpp"

namespace floodgate::cli {
namespace {

namespace fs = std::filesystem;
using audio::Seconds;

struct TranscribeFlags {
  std::vector<std::string> inputs;
  std::string outdir;
  std::string model = "whisper-1";
  std::string language;
  std::string prompt;
  std::string response_format = "json";
  std::optional<double> temperature;
  std::vector<std::string> timestamp_granularities;
  double min_seconds = 0;
  double max_chunk_seconds = 600;
  bool carry_prompt = false;
  bool force = false;
  std::string table;  // an extra copy of the results table, format by extension
  // The engine flags of `floodgate run` (engine_flags.hpp), with transcribe's defaults:
  // see transcribe_engine_defaults().
  EngineFlags engine;
};

// Where transcribe's engine defaults differ from run's: fewer uploads in flight (each one
// holds a connection and a file open), and the byte-count estimate (transcriptions cost no
// model tokens, so loading a BPE table would only cost memory).
EngineFlags transcribe_engine_defaults() {
  EngineFlags e;
  e.max_in_flight = 16;
  e.estimate = "bytes";
  return e;
}

struct FileJob {
  audio::InputFile input;
  std::string key;
  audio::AudioInfo info;
  std::vector<audio::Chunk> chunks;
  fs::path chunk_folder;  // where its chunks are, when split
  audio::ResultRow row;
  bool planned = false;   // waiting for the helper's report
  bool needs_sending = false;
  std::string transcript_name;
};

std::int64_t mtime_ns(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// The helper program that probes and splits (floodgate-audio, beside this binary, or
// $FLOODGATE_AUDIO_HELPER).
std::string helper_path() {
  if (const char* env = std::getenv("FLOODGATE_AUDIO_HELPER"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  const fs::path helper = ec ? fs::path("floodgate-audio") : self.parent_path() / "floodgate-audio";
  if (!ec && !fs::exists(helper)) {
    throw Error("the audio helper " + helper.string() + " is missing (it is built and installed with floodgate)",
                exit_code::internal);
  }
  return helper.string();
}

// Planning runs in the FFmpeg helper, and never beside the uploads: transcribe exec()s
// `floodgate-audio plan --exec <this command>`, which probes and splits every file into
// a plan file and exec()s this same command line back (same pid, same terminal). So the
// ~30 MiB FFmpeg process and this process are never resident at the same time (a spawned
// helper would add this process's ~11 MiB to the job's peak, and its wait gains nothing:
// the engine starts only when every file is planned). The chunk folder, locked all along,
// is handed over by descriptor (ChunkDir::release_for_exec / adopt) through these
// variables, which the second run reads and clears.
constexpr const char* kPlanDirEnv = "FLOODGATE_AUDIO_PLAN_DIR";
constexpr const char* kPlanLockFdEnv = "FLOODGATE_AUDIO_PLAN_LOCK_FD";
constexpr const char* kPlannerPeakEnv = "FLOODGATE_AUDIO_PLANNER_PEAK_KIB";  // set by the helper
constexpr const char* kStartedEnv = "FLOODGATE_AUDIO_STARTED_NS";  // steady_clock: the job's wall time

struct Handover {
  fs::path dir;
  int lock_fd = -1;
  long planner_peak_kib = 0;
  std::optional<std::chrono::steady_clock::time_point> started;
};

std::optional<Handover> take_handover() {
  std::optional<Handover> h;
  const char* dir = std::getenv(kPlanDirEnv);
  const char* fd = std::getenv(kPlanLockFdEnv);
  const char* peak = std::getenv(kPlannerPeakEnv);
  if (dir != nullptr && fd != nullptr) {
    h = Handover{dir, std::atoi(fd), peak != nullptr ? std::atol(peak) : 0, std::nullopt};
    if (const char* started = std::getenv(kStartedEnv); started != nullptr) {
      h->started = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(std::atoll(started)));
    }
  }
  ::unsetenv(kStartedEnv);
  ::unsetenv(kPlanDirEnv);
  ::unsetenv(kPlanLockFdEnv);
  ::unsetenv(kPlannerPeakEnv);
  return h;
}

// This command line as it was started (argv, from /proc/self/cmdline).
std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  std::string arg;
  while (std::getline(in, arg, '\0')) args.push_back(arg);
  if (args.empty()) throw Error("cannot read /proc/self/cmdline", exit_code::internal);
  return args;
}

// Replaces this process with the helper, which plans every file of `list` into `plans`
// (chunks under the chunk folder) and then runs this command again. Returns only when the
// helper cannot be started (then throws).
[[noreturn]] void exec_planner(const fs::path& list, const fs::path& plans, audio::ChunkDir& chunk_dir, store::RunLock& run_lock,
                               const audio::SplitOptions& split, double min_seconds,
                               std::chrono::steady_clock::time_point started) {
  const std::string helper = helper_path();
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find this program (/proc/self/exe): " + ec.message(), exit_code::internal);
  const fs::path dir = chunk_dir.path();
  std::vector<std::string> args = {helper, "plan", "--list", list.string(), "--chunk-root", dir.string(),
                                   "--max-chunk-seconds", std::to_string(split.max_chunk.count()),
                                   "--max-chunk-bytes", std::to_string(split.max_chunk_bytes),
                                   "--min-seconds", std::to_string(min_seconds), "--out", plans.string(),
                                   "--exec", self.string()};
  const auto command = own_command_line();
  args.insert(args.end(), command.begin() + 1, command.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int lock_fd = chunk_dir.release_for_exec();
  run_lock.keep_across_exec();
  ::setenv(kPlanDirEnv, dir.c_str(), 1);
  ::setenv(kPlanLockFdEnv, std::to_string(lock_fd).c_str(), 1);
  const auto started_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(started.time_since_epoch()).count();
  ::setenv(kStartedEnv, std::to_string(started_ns).c_str(), 1);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execv(helper.c_str(), argv.data());
  const int err = errno;
  ::unsetenv(kPlanDirEnv);
  ::unsetenv(kPlanLockFdEnv);
  ::unsetenv(kStartedEnv);
  run_lock.exec_failed();
  if (auto back = audio::ChunkDir::adopt(dir, lock_fd)) chunk_dir = std::move(*back);
  throw Error("cannot start the audio helper " + helper + ": " + std::strerror(err), exit_code::internal);
}

// This process's peak resident memory (VmHWM: since its last exec, so without the helper's).
double own_peak_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return 0;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// What the flags ask of every file, checked before any file is probed.
struct JobSettings {
  audio::TranscribeOptions defaults;
  audio::SplitOptions split;
  std::string split_signature;  // part of every file's key
  bool quiet = false;
  bool json_log = false;
};

JobSettings job_settings(const TranscribeFlags& f) {
  JobSettings s;
  s.defaults.model = f.model;
  s.defaults.language = f.language;
  s.defaults.prompt = f.prompt;
  const auto format = audio::response_format_from_string(f.response_format);
  if (!format) throw Error("--response-format must be one of json, text, srt, vtt, verbose_json");
  s.defaults.response_format = *format;
  s.defaults.temperature = f.temperature;
  s.defaults.timestamp_granularities = f.timestamp_granularities;
  for (const auto& g : f.timestamp_granularities) {
    if (g != "word" && g != "segment") throw Error("--timestamp-granularities takes word and/or segment, not \"" + g + "\"");
  }
  if (!f.timestamp_granularities.empty() && *format != audio::ResponseFormat::verbose_json) {
    throw Error("--timestamp-granularities needs --response-format verbose_json (the API returns word and segment "
                "timestamps only there; with " + f.response_format + " they would be dropped)");
  }
  if (f.max_chunk_seconds < 10) throw Error("--max-chunk-seconds must be at least 10");
  {
    engine::EngineOptions check;  // bad engine flags fail now, before any file is probed
    apply_engine_flags(f.engine, check);
  }
  s.quiet = f.engine.quiet;
  s.json_log = f.engine.log_format == "json";
  s.split.max_chunk = Seconds(f.max_chunk_seconds);
  s.split_signature =
      "max_chunk=" + std::to_string(f.max_chunk_seconds) + ";max_bytes=" + std::to_string(s.split.max_chunk_bytes);
  return s;
}

// One job per input: its key, transcript name and row; the files an earlier run finished
// take that run's row. The others are listed in `plan_list` ("<index>\t<path>" lines) for
// the helper to plan.
std::vector<FileJob> make_jobs(const std::vector<audio::InputFile>& inputs, const std::string& split_signature,
                               const std::map<std::string, audio::ResultRow>& done_before, std::string& plan_list) {
  // Transcript names: the input's stem, made unique with the key when two inputs share one.
  std::map<std::string, int> stem_count;
  for (const auto& in : inputs) ++stem_count[in.path.stem().string()];
  std::vector<FileJob> jobs;
  jobs.reserve(inputs.size());
  for (const auto& in : inputs) {
    FileJob job;
    job.input = in;
    job.row.filename = in.path.string();
    job.row.model = in.options.model;
    std::error_code sec;
    const auto size = fs::file_size(in.path, sec);
    job.key = audio::file_key(fs::absolute(in.path, sec), sec ? 0 : size, mtime_ns(in.path), in.options, split_signature);
    job.row.key = job.key;
    job.row.size_bytes = sec ? 0 : size;
    const std::string stem = in.path.stem().string();
    job.transcript_name = (stem_count[stem] > 1 ? stem + "-" + job.key.substr(0, 8) : stem) +
                          std::string(audio::transcript_extension(in.options.response_format));
    if (auto prev = done_before.find(job.key); prev != done_before.end()) {
      job.row = prev->second;
    } else {
      plan_list += std::to_string(jobs.size()) + "\t" + fs::absolute(in.path, sec).string() + "\n";
      job.planned = true;
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

// Takes the helper's plans (one JSON line per file, `plans`): each file's error, skip or
// chunks (under `chunk_root`, when split).
void read_plans(const fs::path& plans, const fs::path& chunk_root, double min_seconds, std::vector<FileJob>& jobs) {
  std::ifstream plan_lines(plans);
  std::string plan_line;
  while (std::getline(plan_lines, plan_line)) {
    const auto plan = audio::plan_from_json(plan_line);
    if (!plan || plan->index >= jobs.size()) continue;
    FileJob& job = jobs[plan->index];
    job.planned = false;
    if (plan->error) {
      job.row.status = "error";
      job.row.error = std::string(audio::to_string(plan->error->code)) + ": " + plan->error->message;
      continue;
    }
    job.info = plan->info;
    job.row.duration_seconds = plan->info.duration.count();
    if (plan->info.duration.count() < min_seconds) {
      job.row.status = "skipped";
      job.row.error = "shorter than --min-seconds";
      continue;
    }
    if (plan->split) {
      job.chunks = plan->chunks;
      job.chunk_folder = chunk_root / std::to_string(plan->index);
    } else {
      audio::Chunk whole;
      whole.path = job.input.path;
      whole.duration = plan->info.duration;
      whole.size_bytes = plan->info.size_bytes;
      job.chunks.push_back(whole);
    }
    job.row.chunks = job.chunks.size();
    job.needs_sending = true;
  }
  for (auto& job : jobs) {
    if (!job.planned) continue;
    job.row.status = "error";
    job.row.error = "internal: the audio helper did not report on this file";
  }
}

// The uploads of one engine run: every chunk without a successful answer (with
// --carry-prompt, only the chunks at position `round`, each prompted with the end of the
// previous chunk's text; a file whose previous chunk failed stops there).
std::vector<audio::ChunkUpload> round_uploads(const std::vector<FileJob>& jobs, const audio::ChunkAnswers& answers,
                                              bool carry_prompt, std::size_t round) {
  std::vector<audio::ChunkUpload> uploads;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const FileJob& j = jobs[i];
    if (!j.needs_sending) continue;
    const std::size_t first = carry_prompt ? round : 0;
    const std::size_t last = carry_prompt ? std::min(round + 1, j.chunks.size()) : j.chunks.size();
    for (std::size_t c = first; c < last; ++c) {
      std::string id = audio::chunk_id(j.key, c);
      if (auto a = answers.find(id); a != answers.end() && a->second.ok) continue;
      std::optional<std::string> prompt;
      if (carry_prompt && c > 0) {
        auto prev = answers.find(audio::chunk_id(j.key, c - 1));
        if (prev == answers.end() || !prev->second.ok) continue;  // the file fails at chunk c-1
        const std::string text =
            audio::transcript_text(audio::api_format(j.input.options.response_format), prev->second.body);
        prompt = audio::prompt_tail(j.input.options.prompt.empty() ? text : j.input.options.prompt + " " + text);
      }
      uploads.push_back(audio::ChunkUpload{std::move(id), j.chunks[c].path, j.input.options, std::move(prompt), i, c});
    }
  }
  return uploads;
}

struct SendTotals {
  int engine_exit = exit_code::ok;  // the first run that stopped the job (some_failed is not a stop)
  std::uint64_t sent = 0;           // attempts that reached the API
  std::uint64_t retries = 0;
};

// Sends the chunks: one engine run (or, with --carry-prompt, one per chunk position) that
// reads the uploads from memory and puts every answer in `answers` (and the successes in
// the store) through its sink. The engine writes no file: no output, its journal in memory.
SendTotals send(const TranscribeFlags& f, const JobSettings& s, const std::vector<FileJob>& jobs,
                const fs::path& answer_store, const std::shared_ptr<audio::ChunkAnswers>& answers) {
  std::size_t rounds = 1;
  if (f.carry_prompt) {
    rounds = 0;
    for (const auto& j : jobs) rounds = std::max(rounds, j.needs_sending ? j.chunks.size() : 0);
  }
  SendTotals totals;
  for (std::size_t round = 0; round < rounds && totals.engine_exit == exit_code::ok; ++round) {
    auto uploads = round_uploads(jobs, *answers, f.carry_prompt, round);
    if (uploads.empty()) continue;
    engine::EngineOptions o;
    o.source = std::make_unique<audio::ChunkSource>(std::move(uploads));
    // No output file, and a journal in memory: the answers are resumed from the store.
    o.journal_path = engine::EngineOptions::kJournalInMemory;
    apply_engine_flags(f.engine, o);
    o.extra_sinks.push_back(audio::make_answer_sink(answer_store, answers));
    engine::Engine eng(std::move(o));
    engine::SignalGuard guard(eng);
    const engine::RunSummary summary = eng.run();
    totals.sent += summary.attempts;  // what reached the API, not what was planned
    totals.retries += summary.retries;
    totals.engine_exit = summary.exit_code == exit_code::some_failed ? exit_code::ok : summary.exit_code;
    // The engine's own summary speaks of lines and tokens per minute, which mean nothing
    // here: a JSON log keeps it (machine-read), text says only why the engine stopped.
    if (s.json_log && (!s.quiet || summary.exit_code > exit_code::some_failed)) {
      std::fputs(engine::format_summary(summary, s.json_log).c_str(), stderr);
    } else if (!summary.stop_reason.empty()) {
      std::fprintf(stderr, "floodgate transcribe: stopped: %s (re-run the same command to resume)\n",
                   summary.stop_reason.c_str());
    }
  }
  return totals;
}

struct Tally {
  std::size_t ok = 0;
  std::size_t failed = 0;
  std::size_t skipped = 0;
  std::size_t pending = 0;
  std::size_t chunk_failures = 0;  // files that failed in a chunk: a re-run resends only those chunks
  double audio_seconds = 0;        // of the files transcribed by this run
};

// Merges every sent file's answers into its transcript (written to `outdir`) and row, and
// counts the files by status.
Tally finish_files(std::vector<FileJob>& jobs, const audio::ChunkAnswers& answers, const fs::path& outdir) {
  Tally t;
  std::error_code ec;
  for (auto& j : jobs) {
    if (!j.needs_sending) {
      if (j.row.status == "ok") ++t.ok;
      if (j.row.status == "error") ++t.failed;
      if (j.row.status == "skipped") ++t.skipped;
      continue;
    }
    const auto merged = audio::merge_file(j.chunks, j.key, j.input.options.response_format, j.info.duration, answers,
                                          j.transcript_name, j.row, std::chrono::system_clock::now());
    switch (merged.status) {
      case audio::MergedFile::Status::ok:
        audio::write_file_atomically(outdir / j.transcript_name, merged.transcript);
        t.audio_seconds += j.info.duration.count();
        ++t.ok;
        break;
      case audio::MergedFile::Status::chunk_failed:
        ++t.chunk_failures;
        ++t.failed;
        break;
      case audio::MergedFile::Status::bad_response:
        ++t.failed;
        break;
      case audio::MergedFile::Status::pending:
        ++t.pending;
        break;
    }
    if (!j.chunk_folder.empty()) fs::remove_all(j.chunk_folder, ec);  // its chunks are no longer needed
  }
  return t;
}

int transcribe(const TranscribeFlags& f) {
  const auto handover = take_handover();  // set when the helper has just planned this job
  const auto wall_start = handover && handover->started ? *handover->started : std::chrono::steady_clock::now();
  const JobSettings settings = job_settings(f);

  const fs::path outdir(f.outdir);
  const fs::path state = outdir / ".floodgate";
  const fs::path tmp_root = outdir / ".floodgate-tmp";
  const fs::path answer_store = state / "answers.sqlite";
  std::error_code ec;
  fs::create_directories(state, ec);
  if (ec) throw Error("cannot create " + state.string() + ": " + ec.message());
  // One transcribe at a time per output folder (outside .floodgate/, which --force empties).
  // Held across the exec of the audio helper (RunLock::keep_across_exec): no other run can
  // take the folder while the helper plans.
  const auto lock = store::lock_run((outdir / ".floodgate.lock").string(), "the output folder " + outdir.string());
  const auto inputs = audio::expand_inputs(f.inputs, settings.defaults);
  if (f.force) {
    for (const auto& entry : fs::directory_iterator(state, ec)) fs::remove_all(entry.path(), ec);
    fs::remove(outdir / "results.jsonl", ec);
  }
  const std::size_t stale = audio::remove_stale_chunk_dirs(tmp_root);
  auto say = [&](const std::string& text) {
    if (!settings.quiet || text.find("file(s):") != std::string::npos) {
      std::fprintf(stderr, "floodgate transcribe: %s\n", text.c_str());
    }
  };
  if (stale > 0) say("removed " + std::to_string(stale) + " chunk folder(s) left by an interrupted run");

  const auto done_before = audio::previous_results(outdir);
  // The answers of an earlier floodgate's engine files move to the store, once.
  if (const auto legacy = audio::read_legacy_answers(state); !legacy.empty()) audio::store_answers(answer_store, legacy);
  audio::remove_legacy_files(state);
  auto answers = std::make_shared<audio::ChunkAnswers>(audio::load_answers(answer_store));

  // ---- plan: probe, skip, split (in the helper process) ---------------------------------
  std::string plan_list;
  std::vector<FileJob> jobs = make_jobs(inputs, settings.split_signature, done_before, plan_list);
  auto chunk_dir = handover ? audio::ChunkDir::adopt(handover->dir, handover->lock_fd)
                            : audio::ChunkDir::create(tmp_root, "job");
  if (!chunk_dir) throw Error(chunk_dir.error().message, exit_code::internal);
  if (!plan_list.empty()) {
    const fs::path list = chunk_dir->path() / "plan.tsv";
    const fs::path plans = chunk_dir->path() / "plans.jsonl";
    if (!handover) {
      audio::write_file_atomically(list, plan_list);
      exec_planner(list, plans, *chunk_dir, *lock, settings.split, f.min_seconds, wall_start);  // comes back as a new run of this command
    }
    if (slurp(list) != plan_list) {
      throw Error("the input files changed while the audio helper was planning them: run the command again");
    }
    read_plans(plans, chunk_dir->path(), f.min_seconds, jobs);
  }

  // ---- send, then merge, write transcripts and the results table ------------------------
  const SendTotals sent = send(f, settings, jobs, answer_store, answers);
  const Tally t = finish_files(jobs, *answers, outdir);
  std::vector<audio::ResultRow> rows;
  rows.reserve(jobs.size());
  for (const auto& j : jobs) rows.push_back(j.row);
  audio::write_results(outdir, rows, f.table, f.force);
  // Everything answered is now in transcripts and the table: the stored answers can go,
  // unless a re-run still needs the answers of a partly transcribed file.
  if (t.pending == 0 && t.chunk_failures == 0 && sent.engine_exit == exit_code::ok) {
    for (const auto& entry : fs::directory_iterator(state, ec)) fs::remove_all(entry.path(), ec);
  }

  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  // Peak memory of this process (the uploads) and of the audio helper (FFmpeg), apart.
  char line[512];
  std::snprintf(line, sizeof line,
                "transcribe summary: %zu file(s): %zu ok, %zu failed, %zu skipped, %zu pending; %llu request(s) sent "
                "(%llu retries); %.1f min of audio in "
                "%.1f s (%.1f min of audio per wall minute); peak RSS %.1f MiB (audio helper %.1f MiB); results in %s",
                jobs.size(), t.ok, t.failed, t.skipped, t.pending, static_cast<unsigned long long>(sent.sent),
                static_cast<unsigned long long>(sent.retries),
                t.audio_seconds / 60.0, wall_s, wall_s > 0 ? t.audio_seconds / wall_s : 0.0,
                own_peak_mib(), handover ? static_cast<double>(handover->planner_peak_kib) / 1024.0 : 0.0,
                (outdir / "results.jsonl").c_str());
  say(line);
  if (sent.engine_exit != exit_code::ok) return sent.engine_exit;
  return t.failed > 0 ? exit_code::some_failed : exit_code::ok;
}

}  // namespace

void register_transcribe(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<TranscribeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "transcribe",
      "Transcribe audio files through /v1/audio/transcriptions at the rate limit.\n\n"
      "PATH is an audio file, a folder (searched recursively for .flac .m4a .mp3 .mp4 .mpeg .mpga .oga\n"
      ".ogg .opus .wav .webm), or a .jsonl list: one {\"file\": \"...\"} per line, optionally with its own\n"
      "model, language, prompt, response_format, temperature, timestamp_granularities.\n"
      "Each file is probed first (FFmpeg): not audio, empty or truncated files get an error row and the\n"
      "job goes on. Files over 24 MB or longer than --max-chunk-seconds are split at silences into\n"
      "chunks (packet copy, no re-encoding where the container allows), sent in parallel, and the\n"
      "transcripts merged in order (srt/vtt/verbose_json timestamps shifted). Uploads stream from\n"
      "disk. OUTDIR gets one transcript per input (.txt .srt .vtt .json) and results.jsonl/.csv\n"
      "(--table results.sqlite adds a SQLite table).\n"
      "Re-running the same command resumes: answered chunks are not sent again.\n\n"
      "Examples:\n"
      "  floodgate transcribe recordings/ -o transcripts/ --response-format srt --language en\n"
      "  floodgate transcribe list.jsonl -o out/ --rpm 50 --max-in-flight 8");
  cmd->add_option("paths", f->inputs, "audio files, folders, or .jsonl lists")->required();
  cmd->add_option("-o,--output", f->outdir, "output folder (transcripts, results.jsonl, results.csv)")->required();
  cmd->add_option("--model", f->model, "transcription model")->capture_default_str();
  cmd->add_option("--language", f->language, "ISO-639-1 language of the audio (e.g. en)");
  cmd->add_option("--prompt", f->prompt, "text to guide the model's style or vocabulary");
  cmd->add_option("--response-format", f->response_format, "json, text, srt, vtt or verbose_json")->capture_default_str();
  cmd->add_option("--temperature", f->temperature, "sampling temperature, 0 to 1");
  cmd->add_option("--timestamp-granularities", f->timestamp_granularities, "word and/or segment (needs verbose_json)");
  cmd->add_option("--min-seconds", f->min_seconds, "skip files shorter than this (recorded as skipped)");
  cmd->add_option("--max-chunk-seconds", f->max_chunk_seconds, "split files longer than this at silences")
      ->capture_default_str();
  cmd->add_flag("--carry-prompt", f->carry_prompt,
                "pass the end of chunk k's text as the prompt of chunk k+1; this serialises each file's chunks "
                "(files still go in parallel)");
  cmd->add_flag("--force", f->force, "start over: forget earlier answers and results in OUTDIR (and --table's rows)");
  cmd->add_option("--table", f->table,
                  "also write the results table here, by extension: .sqlite/.sqlite3/.db (SQLite table `results`, "
                  "one row per input keyed by `key`; re-runs update rows, never duplicate them), .csv or .jsonl");
  // The same engine flags as `floodgate run` (a chunk is one request), with transcribe's defaults.
  // With --quiet, transcribe still prints its one-line summary of the files.
  f->engine = transcribe_engine_defaults();
  add_engine_flags(cmd, f->engine);
  cmd->get_option("--quiet")->description("no progress line or notices: only warnings, errors and the one-line summary of the files");
  cmd->callback([f, &exit_code] { exit_code = transcribe(*f); });
}

}  // namespace floodgate::cli
