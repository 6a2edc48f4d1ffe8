// `floodgate transcribe PATH... -o OUTDIR`: audio files through /v1/audio/transcriptions
// at the rate limit. Each file is probed (FFmpeg); long or large files are split at
// silences into chunks; every file or chunk becomes one request of an engine run (same
// limiter, retries, breaker and journal as `floodgate run`), uploaded as multipart
// streamed from disk; the chunks' transcripts are merged in order into one transcript
// per input, and a results table (results.jsonl and results.csv in OUTDIR, and --table
// FILE: a SQLite table by its extension) gets one row per input.
//
// Resume: every answered chunk is in an engine output file under OUTDIR/.floodgate/; a
// re-run reads them back and sends only what is missing, and skips the files the
// results table already has as ok (keyed by path + size + mtime + options).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "engine_flags.hpp"
#include "floodgate/audio/chunk_dir.hpp"
#include "floodgate/audio/job.hpp"
#include "floodgate/audio/media.hpp"
#include "floodgate/audio/merge.hpp"
#include "floodgate/core/text.hpp"
#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/exit_codes.hpp"
#include "floodgate/engine/engine.hpp"
#include "floodgate/store/run_lock.hpp"
#include "floodgate/store/sink.hpp"
#include "floodgate/store/sqlite_table.hpp"
#include "floodgate/store/table_sink.hpp"

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

// One chunk's answer, from this run (the collector sink) or an earlier one (output files).
struct ChunkAnswer {
  bool ok = false;
  std::string body;   // the JSON response body when ok
  std::string error;  // "<kind>: <message>" otherwise
  std::chrono::system_clock::time_point finished_at{};
  std::chrono::nanoseconds total{0};   // from read to the answer
  std::chrono::nanoseconds queued{0};  // from read to the first send
};
using Answers = std::map<std::string, ChunkAnswer>;

// An extra engine sink that keeps every chunk's outcome in memory for the merge.
class Collector final : public store::Sink {
 public:
  explicit Collector(std::shared_ptr<Answers> answers) : answers_(std::move(answers)) {}
  void write(const Outcome& o, const store::RowContext& ctx) override {
    ChunkAnswer a;
    a.ok = o.ok();
    if (a.ok) {
      a.body = o.body;
    } else {
      a.error = std::string(to_string(o.error)) + ": " + o.error_message;
    }
    a.finished_at = ctx.finished_at;
    a.total = ctx.total;
    a.queued = ctx.queued;
    auto& slot = (*answers_)[o.custom_id];
    if (!slot.ok) slot = std::move(a);
  }
  void flush() override {}
  void close() override {}

 private:
  std::shared_ptr<Answers> answers_;
};

// Reads the successful answers out of the engine output files of earlier runs.
void harvest(const fs::path& state, Answers& answers) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(state, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("responses-", 0) != 0 || entry.path().extension() != ".jsonl") continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("custom_id") || !j["custom_id"].is_string()) continue;
      const auto resp = j.find("response");
      if (resp == j.end() || !resp->is_object() || resp->value("status_code", 0) != 200) continue;
      if (j.contains("error") && !j["error"].is_null()) continue;
      const auto body = resp->find("body");
      if (body == resp->end() || !body->is_object()) continue;
      ChunkAnswer a;
      a.ok = true;
      a.body = body->dump();
      answers[j["custom_id"].get<std::string>()] = std::move(a);
    }
  }
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

std::string chunk_id(const FileJob& f, std::size_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "-%04zu", index);
  return f.key + buf;
}

std::int64_t mtime_ns(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

void write_atomically(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw Error("cannot write " + tmp.string(), exit_code::internal);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error("cannot write " + path.string() + ": " + ec.message(), exit_code::internal);
}

std::map<std::string, audio::ResultRow> previous_results(const fs::path& outdir) {
  std::map<std::string, audio::ResultRow> rows;
  std::ifstream in(outdir / "results.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto row = audio::parse_result_jsonl(line);
    if (row && row->status == "ok" && !row->transcript.empty() && fs::exists(outdir / row->transcript)) {
      rows[row->key] = std::move(*row);
    }
  }
  return rows;
}

// The results table as SQLite: table `results`, one row per input keyed by file_key()
// (PRIMARY KEY), numbers typed; re-runs upsert, so a resumed job never duplicates a row.
void write_sqlite_results(const std::string& path, const std::vector<audio::ResultRow>& rows, bool truncate) {
  static const std::vector<store::TableColumn> columns = {
      {"key", "TEXT"},     {"filename", "TEXT"}, {"duration_seconds", "REAL"},      {"size_bytes", "INTEGER"},
      {"chunks", "INTEGER"}, {"status", "TEXT"}, {"error", "TEXT"},                 {"transcription_seconds", "REAL"},
      {"transcribed_at", "TEXT"}, {"model", "TEXT"}, {"text", "TEXT"},              {"transcript", "TEXT"}};
  auto text = [](const std::string& v) {
    store::TableCell c;
    if (!v.empty()) {
      c.type = store::TableCell::Type::text;
      c.text = v;
    }
    return c;
  };
  auto real = [](double v) {
    store::TableCell c;
    c.type = store::TableCell::Type::real;
    c.real = std::round(v * 1000) / 1000;
    return c;
  };
  auto integer = [](std::uint64_t v) {
    store::TableCell c;
    c.type = store::TableCell::Type::integer;
    c.integer = static_cast<std::int64_t>(v);
    return c;
  };
  store::SqliteTable table(path, "results", columns, truncate ? store::OpenMode::truncate : store::OpenMode::append);
  for (const auto& r : rows) {
    table.upsert({text(r.key), text(r.filename), real(r.duration_seconds), integer(r.size_bytes), integer(r.chunks),
                  text(r.status), text(r.error), real(r.transcription_seconds), text(r.transcribed_at), text(r.model),
                  text(r.text), text(r.transcript)});
  }
  table.close();
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

int transcribe(const TranscribeFlags& f) {
  const auto handover = take_handover();  // set when the helper has just planned this job
  const auto wall_start = handover && handover->started ? *handover->started : std::chrono::steady_clock::now();
  audio::TranscribeOptions defaults;
  defaults.model = f.model;
  defaults.language = f.language;
  defaults.prompt = f.prompt;
  const auto format = audio::response_format_from_string(f.response_format);
  if (!format) throw Error("--response-format must be one of json, text, srt, vtt, verbose_json");
  defaults.response_format = *format;
  defaults.temperature = f.temperature;
  defaults.timestamp_granularities = f.timestamp_granularities;
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
  const bool quiet = f.engine.quiet;
  const bool json_log = f.engine.log_format == "json";

  audio::SplitOptions split;
  split.max_chunk = Seconds(f.max_chunk_seconds);
  const std::string split_signature =
      "max_chunk=" + std::to_string(f.max_chunk_seconds) + ";max_bytes=" + std::to_string(split.max_chunk_bytes);

  const fs::path outdir(f.outdir);
  const fs::path state = outdir / ".floodgate";
  const fs::path tmp_root = outdir / ".floodgate-tmp";
  std::error_code ec;
  fs::create_directories(state, ec);
  if (ec) throw Error("cannot create " + state.string() + ": " + ec.message());
  // One transcribe at a time per output folder (outside .floodgate/, which --force empties).
  // Held across the exec of the audio helper (RunLock::keep_across_exec): no other run can
  // take the folder while the helper plans.
  const auto lock = store::lock_run((outdir / ".floodgate.lock").string(), "the output folder " + outdir.string());
  const auto inputs = audio::expand_inputs(f.inputs, defaults);
  if (f.force) {
    for (const auto& entry : fs::directory_iterator(state, ec)) fs::remove_all(entry.path(), ec);
    fs::remove(outdir / "results.jsonl", ec);
  }
  const std::size_t stale = audio::remove_stale_chunk_dirs(tmp_root);
  auto say = [&](const std::string& text) {
    if (!quiet || text.find("file(s):") != std::string::npos) {
      std::fprintf(stderr, "floodgate transcribe: %s\n", text.c_str());
    }
  };
  if (stale > 0) say("removed " + std::to_string(stale) + " chunk folder(s) left by an interrupted run");

  const auto done_before = previous_results(outdir);
  auto answers = std::make_shared<Answers>();
  harvest(state, *answers);

  // Transcript names: the input's stem, made unique with the key when two inputs share one.
  std::map<std::string, int> stem_count;
  for (const auto& in : inputs) ++stem_count[in.path.stem().string()];

  // ---- plan: probe, skip, split (in the helper process) ---------------------------------
  std::vector<FileJob> jobs;
  jobs.reserve(inputs.size());
  std::string plan_list;
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
  auto chunk_dir = handover ? audio::ChunkDir::adopt(handover->dir, handover->lock_fd)
                            : audio::ChunkDir::create(tmp_root, "job");
  if (!chunk_dir) throw Error(chunk_dir.error().message, exit_code::internal);
  if (!plan_list.empty()) {
    const fs::path list = chunk_dir->path() / "plan.tsv";
    const fs::path plans = chunk_dir->path() / "plans.jsonl";
    if (!handover) {
      write_atomically(list, plan_list);
      exec_planner(list, plans, *chunk_dir, *lock, split, f.min_seconds, wall_start);  // comes back as a new run of this command
    }
    if (slurp(list) != plan_list) {
      throw Error("the input files changed while the audio helper was planning them: run the command again");
    }
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
      if (plan->info.duration.count() < f.min_seconds) {
        job.row.status = "skipped";
        job.row.error = "shorter than --min-seconds";
        continue;
      }
      if (plan->split) {
        job.chunks = plan->chunks;
        job.chunk_folder = chunk_dir->path() / std::to_string(plan->index);
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

  // ---- send: one engine run (or, with --carry-prompt, one per chunk position) ----------
  std::size_t rounds = 1;
  if (f.carry_prompt) {
    rounds = 0;
    for (const auto& j : jobs) rounds = std::max(rounds, j.needs_sending ? j.chunks.size() : 0);
  }
  const auto stamp = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
  int engine_exit = exit_code::ok;
  engine::RunSummary last_summary;
  std::uint64_t sent_total = 0;
  std::uint64_t retries_total = 0;
  for (std::size_t round = 0; round < rounds && engine_exit == exit_code::ok; ++round) {
    const fs::path requests = state / ("requests-" + stamp + "-" + std::to_string(round) + ".jsonl");
    const fs::path responses = state / ("responses-" + stamp + "-" + std::to_string(round) + ".jsonl");
    std::uint64_t lines = 0;
    {
      std::ofstream out(requests, std::ios::trunc);
      for (const auto& j : jobs) {
        if (!j.needs_sending) continue;
        const std::size_t first = f.carry_prompt ? round : 0;
        const std::size_t last = f.carry_prompt ? std::min(round + 1, j.chunks.size()) : j.chunks.size();
        for (std::size_t c = first; c < last; ++c) {
          const std::string id = chunk_id(j, c);
          if (auto a = answers->find(id); a != answers->end() && a->second.ok) continue;
          std::optional<std::string> prompt;
          if (f.carry_prompt && c > 0) {
            auto prev = answers->find(chunk_id(j, c - 1));
            if (prev == answers->end() || !prev->second.ok) continue;  // the file fails at chunk c-1
            const std::string text =
                audio::transcript_text(audio::api_format(j.input.options.response_format), prev->second.body);
            prompt = audio::prompt_tail(j.input.options.prompt.empty() ? text : j.input.options.prompt + " " + text);
          }
          std::string line = "{\"custom_id\":";
          append_json_string(line, id);
          line += ",\"method\":\"POST\",\"url\":\"/v1/audio/transcriptions\",\"body\":";
          line += audio::request_body(j.input.options, j.chunks[c].path, prompt);
          line += "}\n";
          out << line;
          ++lines;
        }
      }
      if (!out) throw Error("cannot write " + requests.string(), exit_code::internal);
    }
    if (lines == 0) {
      fs::remove(requests, ec);
      continue;
    }

    engine::EngineOptions o;
    o.input_path = requests.string();
    o.output_path = responses.string();
    o.overwrite = true;
    apply_engine_flags(f.engine, o);
    o.extra_sinks.push_back(std::make_unique<Collector>(answers));
    engine::Engine eng(std::move(o));
    engine::SignalGuard guard(eng);
    last_summary = eng.run();
    sent_total += last_summary.attempts;  // what reached the API, not what was planned
    retries_total += last_summary.retries;
    engine_exit = last_summary.exit_code == exit_code::some_failed ? exit_code::ok : last_summary.exit_code;
    // The engine's own summary speaks of lines and tokens per minute, which mean nothing
    // here: a JSON log keeps it (machine-read), text says only why the engine stopped.
    if (json_log && (!quiet || last_summary.exit_code > exit_code::some_failed)) {
      std::fputs(engine::format_summary(last_summary, json_log).c_str(), stderr);
    } else if (!last_summary.stop_reason.empty()) {
      std::fprintf(stderr, "floodgate transcribe: stopped: %s (re-run the same command to resume)\n",
                   last_summary.stop_reason.c_str());
    }
  }

  // ---- merge, write transcripts and the results table ----------------------------------
  std::size_t ok = 0;
  std::size_t failed = 0;
  std::size_t skipped = 0;
  std::size_t pending = 0;
  std::size_t chunk_failures = 0;  // files that failed in a chunk: a re-run resends only those chunks
  double audio_seconds = 0;
  for (auto& j : jobs) {
    if (!j.needs_sending) {
      if (j.row.status == "ok") ++ok;
      if (j.row.status == "error") ++failed;
      if (j.row.status == "skipped") ++skipped;
      continue;
    }
    std::vector<audio::ChunkTranscript> pieces;
    std::string error;
    bool missing = false;
    std::chrono::system_clock::time_point first_start = std::chrono::system_clock::time_point::max();
    std::chrono::system_clock::time_point last_end{};
    for (std::size_t c = 0; c < j.chunks.size(); ++c) {
      auto a = answers->find(chunk_id(j, c));
      if (a == answers->end()) {
        missing = true;
        continue;
      }
      if (!a->second.ok) {
        if (error.empty()) error = (j.chunks.size() > 1 ? "chunk " + std::to_string(c) + ": " : "") + a->second.error;
        continue;
      }
      pieces.push_back(audio::ChunkTranscript{j.chunks[c].offset, a->second.body});
      if (a->second.finished_at != std::chrono::system_clock::time_point{}) {
        // From the chunk's first send, not from when the job read it: a file's time is its
        // own, not the wait for the files before it.
        const auto started = a->second.finished_at - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                                         a->second.total - std::min(a->second.queued, a->second.total));
        first_start = std::min(first_start, started);
        last_end = std::max(last_end, a->second.finished_at);
      }
    }
    if (last_end != std::chrono::system_clock::time_point{}) {
      j.row.transcription_seconds = std::chrono::duration<double>(last_end - first_start).count();
      j.row.transcribed_at = floodgate::iso8601_utc(last_end);
    }
    if (!error.empty()) {
      j.row.status = "error";
      j.row.error = error;
      ++failed;
      ++chunk_failures;
    } else if (missing) {
      j.row.status = "pending";
      j.row.error = "not finished: re-run the same command to resume";
      ++pending;
    } else {
      const auto fmt = j.input.options.response_format;
      auto merged = audio::merge_transcripts(audio::api_format(fmt), pieces, j.info.duration);
      auto rendered = merged ? audio::render_transcript(fmt, *merged) : audio::AudioResult<std::string>(merged.error());
      if (!rendered) {
        j.row.status = "error";
        j.row.error = "bad_response: " + rendered.error().message;
        ++failed;
      } else {
        write_atomically(outdir / j.transcript_name, *rendered);
        j.row.status = "ok";
        j.row.transcript = j.transcript_name;
        if (fmt == audio::ResponseFormat::json || fmt == audio::ResponseFormat::text) {
          j.row.text = audio::transcript_text(audio::ResponseFormat::json, *merged);
        }
        if (j.row.transcribed_at.empty()) j.row.transcribed_at = floodgate::iso8601_utc(std::chrono::system_clock::now());
        audio_seconds += j.info.duration.count();
        ++ok;
      }
    }
    if (!j.chunk_folder.empty()) fs::remove_all(j.chunk_folder, ec);  // its chunks are no longer needed
  }
  std::string jsonl;
  std::string csv = audio::result_csv_header() + "\n";
  for (const auto& j : jobs) {
    jsonl += audio::result_jsonl(j.row) + "\n";
    csv += audio::result_csv(j.row) + "\n";
  }
  write_atomically(outdir / "results.jsonl", jsonl);
  write_atomically(outdir / "results.csv", csv);
  if (!f.table.empty()) {
    switch (store::output_format_of(f.table)) {
      case store::OutputFormat::sqlite: {
        std::vector<audio::ResultRow> rows;
        rows.reserve(jobs.size());
        for (const auto& j : jobs) rows.push_back(j.row);
        write_sqlite_results(f.table, rows, f.force);
        break;
      }
      case store::OutputFormat::csv:
        write_atomically(f.table, csv);
        break;
      case store::OutputFormat::jsonl:
        write_atomically(f.table, jsonl);
        break;
    }
  }
  // Everything answered is now in transcripts and the table: the engine files can go,
  // unless a re-run still needs the answers of a partly transcribed file.
  if (pending == 0 && chunk_failures == 0 && engine_exit == exit_code::ok) {
    for (const auto& entry : fs::directory_iterator(state, ec)) fs::remove_all(entry.path(), ec);
  }

  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  // Peak memory of this process (the uploads) and of the audio helper (FFmpeg), apart.
  char line[512];
  std::snprintf(line, sizeof line,
                "transcribe summary: %zu file(s): %zu ok, %zu failed, %zu skipped, %zu pending; %llu request(s) sent "
                "(%llu retries); %.1f min of audio in "
                "%.1f s (%.1f min of audio per wall minute); peak RSS %.1f MiB (audio helper %.1f MiB); results in %s",
                jobs.size(), ok, failed, skipped, pending, static_cast<unsigned long long>(sent_total),
                static_cast<unsigned long long>(retries_total),
                audio_seconds / 60.0, wall_s, wall_s > 0 ? audio_seconds / wall_s : 0.0,
                own_peak_mib(), handover ? static_cast<double>(handover->planner_peak_kib) / 1024.0 : 0.0,
                (outdir / "results.jsonl").c_str());
  say(line);
  if (engine_exit != exit_code::ok) return engine_exit;
  return failed > 0 ? exit_code::some_failed : exit_code::ok;
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
