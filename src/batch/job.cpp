#include "floodgate/batch/job.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <random>
#include <regex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/core/duration.hpp"
#include "floodgate/core/exit_codes.hpp"
#include "floodgate/cost/budget_gate.hpp"
#include "floodgate/engine/response.hpp"
#include "floodgate/schema/structured_output.hpp"
#include "floodgate/store/journal.hpp"
#include "floodgate/store/output_order.hpp"
#include "floodgate/store/sink.hpp"
#include "floodgate/store/table_sink.hpp"
#include "floodgate/tokens/estimate.hpp"

namespace floodgate::batch {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kStateKey = "batch.state";

// Crash points for the kill -9 tests (tests/integration/batch_run_test.cpp): the process
// kills itself where a crash hurts most. Never set outside tests.
void crash_point(const char* name) {
  const char* at = std::getenv("FLOODGATE_TEST_CRASH_AT");
  if (at != nullptr && std::string_view(at) == name) std::raise(SIGKILL);
}

bool terminal(const std::string& status) {
  return status == "completed" || status == "failed" || status == "expired" || status == "cancelled";
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// The journal's run identity, read without opening it as a Journal (status/wait/fetch do
// not have the input at hand).
std::optional<std::string> stored_identity(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  sqlite3* db = nullptr;
  std::optional<std::string> out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='run_identity'", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      if (text != nullptr) out = text;
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

// A string field, or "" when it is absent or null.
std::string string_or_empty(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string fmt_count(std::uint64_t n) {
  std::string d = std::to_string(n), out;
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return out;
}

std::string fmt_eta(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  return format_duration(std::chrono::seconds(static_cast<long long>(seconds)));
}

struct Part {
  std::string name;  // unique per job; the uploaded file is NAME.jsonl
  std::string path;
  std::string endpoint;
  std::string model;
  int round = 0;
  std::uint64_t lines = 0;
  std::uint64_t bytes = 0;
  std::int64_t tokens = 0;
  std::int64_t charged = 0;  // the real-time pacing charge of its lines (the deadline's reserve)
  bool uploading = false;  // intent: an upload may have reached the server
  bool creating = false;   // intent: a create may have reached the server
  std::string file_id;
  std::string batch_id;
  std::vector<std::string> rejected;  // batches refused with token_limit_exceeded
  std::string status;
  std::string output_file_id;
  std::string error_file_id;
  std::uint64_t completed = 0;
  std::uint64_t failed = 0;
  std::string failure;  // errors of a failed batch
  bool fetched = false;
  // not persisted: progress
  Clock::time_point first_seen{};
  std::uint64_t first_count = 0;
  Clock::time_point last_change{};
  std::uint64_t last_count = 0;
  bool warned_stuck = false;
};

void to_json(json& j, const Part& p) {
  j = json{{"name", p.name},         {"path", p.path},         {"endpoint", p.endpoint}, {"model", p.model},
           {"round", p.round},       {"lines", p.lines},       {"bytes", p.bytes},       {"tokens", p.tokens},
           {"charged", p.charged},   {"uploading", p.uploading}, {"creating", p.creating}, {"file_id", p.file_id}, {"batch_id", p.batch_id},
           {"rejected", p.rejected}, {"status", p.status},     {"output_file_id", p.output_file_id},
           {"error_file_id", p.error_file_id}, {"completed", p.completed}, {"failed", p.failed},
           {"failure", p.failure},   {"fetched", p.fetched}};
}

void from_json(const json& j, Part& p) {
  p.name = j.value("name", "");
  p.path = j.value("path", "");
  p.endpoint = j.value("endpoint", "");
  p.model = j.value("model", "");
  p.round = j.value("round", 0);
  p.lines = j.value("lines", std::uint64_t{0});
  p.bytes = j.value("bytes", std::uint64_t{0});
  p.tokens = j.value("tokens", std::int64_t{0});
  p.charged = j.value("charged", p.tokens);
  p.uploading = j.value("uploading", false);
  p.creating = j.value("creating", false);
  p.file_id = j.value("file_id", "");
  p.batch_id = j.value("batch_id", "");
  p.rejected = j.value("rejected", std::vector<std::string>{});
  p.status = j.value("status", "");
  p.output_file_id = j.value("output_file_id", "");
  p.error_file_id = j.value("error_file_id", "");
  p.completed = j.value("completed", std::uint64_t{0});
  p.failed = j.value("failed", std::uint64_t{0});
  p.failure = j.value("failure", "");
  p.fetched = j.value("fetched", false);
}

struct State {
  std::string job;          // "fg-<hex>", unique to this OUTPUT's job
  std::string input_path;
  std::uint64_t lines = 0;  // request lines in the input
  int rounds = 0;           // batch rounds split so far
  std::vector<Part> parts;
  std::map<std::string, std::int64_t> learned;  // model -> enqueued-token limit learned
  bool deadline_hit = false;
  int realtime_rounds = 0;  // real-time fallbacks started
  int realtime_stage = 0;   // of the last: 1 input written, 2 merged
};

void to_json(json& j, const State& s) {
  j = json{{"job", s.job},       {"input_path", s.input_path},     {"lines", s.lines},
           {"rounds", s.rounds}, {"parts", s.parts},               {"learned", s.learned},
           {"deadline_hit", s.deadline_hit}, {"realtime_rounds", s.realtime_rounds},
           {"realtime_stage", s.realtime_stage}};
}

void from_json(const json& j, State& s) {
  s.job = j.value("job", "");
  s.input_path = j.value("input_path", "");
  s.lines = j.value("lines", std::uint64_t{0});
  s.rounds = j.value("rounds", 0);
  s.parts = j.value("parts", std::vector<Part>{});
  s.learned = j.value("learned", std::map<std::string, std::int64_t>{});
  s.deadline_hit = j.value("deadline_hit", false);
  s.realtime_rounds = j.value("realtime_rounds", 0);
  s.realtime_stage = j.value("realtime_stage", 0);
}

// One line of an output or error file as run's Outcome.
Outcome outcome_of(const json& j, const Part& part) {
  Outcome o;
  o.custom_id = j.value("custom_id", "");
  o.attempts = 1;
  const json* response = j.contains("response") && j["response"].is_object() ? &j["response"] : nullptr;
  const json* error = j.contains("error") && j["error"].is_object() ? &j["error"] : nullptr;
  if (response != nullptr) {
    const auto code = response->find("status_code");
    o.status_code = code != response->end() && code->is_number_integer() ? code->get<int>() : 0;
    o.request_id = string_or_empty(*response, "request_id");
    if (response->contains("body") && !(*response)["body"].is_null()) o.body = (*response)["body"].dump();
  }
  if (error != nullptr) {
    const std::string code = string_or_empty(*error, "code");
    o.error = code == "batch_expired" ? ErrorKind::timeout : ErrorKind::server_error;
    o.error_message = code + ": " + string_or_empty(*error, "message") + " (batch " + part.batch_id + ")";
    return o;
  }
  if (response == nullptr || o.status_code == 0) {
    o.error = ErrorKind::server_error;
    o.error_message = "status_code 0: batch " + part.batch_id + " returned no answer for this line";
    return o;
  }
  // The body as the engine reads a real-time answer: usage (cached and reasoning tokens
  // too) for cost, the error object for the classifier.
  const engine::ResponseInfo info = engine::inspect_response_body(o.body);
  if (o.status_code >= 200 && o.status_code < 300) {
    if (info.has_usage) o.usage = info.usage;
    return o;
  }
  o.error = classify_http(o.status_code, info.error_type, info.error_code);
  o.error_message = "HTTP " + std::to_string(o.status_code) + " in batch " + part.batch_id +
                    (info.error_message.empty() ? "" : ": " + info.error_message);
  return o;
}

}  // namespace

FinishTime realtime_finish_time(const std::map<std::string, Unfinished>& by_model, const limit::LimitsConfig& limits) {
  FinishTime out;
  std::int64_t most = 0;
  for (const auto& [model, u] : by_model) {
    if (u.requests == 0) continue;
    const limit::Limits l = limits.for_model(model);
    if (!l.any()) {
      out.known = false;
      continue;
    }
    // Windows after the first that the last request waits for (0 when one holds it all).
    const auto windows = [](double total, double limit) -> std::int64_t {
      if (limit <= 0 || total <= limit) return 0;
      return static_cast<std::int64_t>(std::ceil(total / limit)) - 1;
    };
    const auto consider = [&](double total, double limit, std::int64_t seconds_per_window, const char* name) {
      const std::int64_t s = windows(total, limit) * seconds_per_window;
      if (s > most) {
        most = s;
        out.bound_by = model + " " + name;
      }
    };
    const auto requests = static_cast<double>(u.requests);
    const auto tokens = static_cast<double>(u.charged_tokens);
    consider(requests, l.requests_per_minute, 60, "rpm");
    consider(tokens, l.tokens_per_minute, 60, "tpm");
    consider(requests, l.requests_per_day, 86'400, "rpd");
    consider(tokens, l.tokens_per_day, 86'400, "tpd");
  }
  out.needed = std::chrono::seconds(most);
  return out;
}

std::optional<std::chrono::system_clock::time_point> parse_deadline(const std::string& text,
                                                                    std::chrono::system_clock::time_point now) {
  if (const auto d = parse_duration(text)) return now + std::chrono::duration_cast<std::chrono::system_clock::duration>(*d);
  std::tm tm{};
  const std::time_t t_now = std::chrono::system_clock::to_time_t(now);
  localtime_r(&t_now, &tm);
  int h = 0, m = 0, s = 0, y = 0, mo = 0, d = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d%c", &y, &mo, &d, &h, &m, &s, &tail) >= 5 && tail == 0) {
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
  } else if (std::sscanf(text.c_str(), "%d:%d:%d%c", &h, &m, &s, &tail) >= 2 && tail == 0 && text.find('-') == std::string::npos) {
  } else {
    return std::nullopt;
  }
  if (h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 60) return std::nullopt;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = s;
  tm.tm_isdst = -1;
  auto at = std::chrono::system_clock::from_time_t(std::mktime(&tm));
  if (y == 0 && at <= now) at += std::chrono::hours(24);
  return at;
}

struct Job::Impl {
  JobOptions o;
  std::unique_ptr<store::Journal> journal;
  State state;
  std::unique_ptr<BatchClient> client;
  std::string work_dir;
  // The Batch-API JSONL of the results: OUTPUT itself, or OUTPUT.raw.jsonl beside a results
  // table (as `run` writes it). Crash recovery, --retry-failed and the real-time merge read it.
  std::string jsonl_path;
  bool table = false;  // OUTPUT is a CSV or SQLite results table
  std::unique_ptr<schema::AnswerChecker> checker;
  std::shared_ptr<const cost::PriceTable> prices;
  limit::LimitsConfig realtime_limits;  // of the real-time finish: the deadline's reserve
  // What the answers merged by this command cost (JobSummary).
  double cost_usd = 0;
  double realtime_price_usd = 0;
  bool unpriced = false;

  explicit Impl(JobOptions options) : o(std::move(options)) {
    if (o.output_path.empty() || o.output_path == "-") throw Error("batch needs -o OUTPUT (a file: the journal lives beside it)", exit_code::usage);
    if (o.journal_path.empty()) o.journal_path = store::default_journal_path(o.output_path);
    work_dir = o.output_path + ".batch";
    table = store::output_format_of(o.output_path) != store::OutputFormat::jsonl;
    jsonl_path = table ? o.output_path + ".raw.jsonl" : o.output_path;
    checker = std::make_unique<schema::AnswerChecker>(o.schema_json);
    prices = o.prices ? o.prices : std::shared_ptr<const cost::PriceTable>(&cost::PriceTable::builtin(), [](const cost::PriceTable*) {});
    if (o.overwrite) {
      std::error_code ec;
      for (const auto& p : {o.output_path, o.output_path + "-wal", o.output_path + "-shm", jsonl_path, o.journal_path,
                            o.journal_path + "-wal", o.journal_path + "-shm"}) {
        std::filesystem::remove(p, ec);
      }
      std::filesystem::remove_all(work_dir, ec);
    }
    std::string identity;
    if (!o.input_path.empty()) {
      LineReader reader(o.input_path);
      identity = "batch:" + hex64(CustomIdSet::hash(reader.prefix(64 * 1024))) + ":" +
                 (o.input.default_endpoint ? std::string(endpoint_path(*o.input.default_endpoint)) : "");
    } else {
      auto stored = stored_identity(o.journal_path);
      if (!stored) throw Error("no batch job journal at " + o.journal_path + " (submit INPUT -o " + o.output_path + " first)", exit_code::usage);
      identity = *stored;
    }
    journal = std::make_unique<store::Journal>(o.journal_path, identity);
    if (const auto saved = journal->meta(kStateKey)) {
      state = json::parse(*saved).get<State>();
    } else {
      std::random_device rd;
      state.job = "fg-" + hex64((static_cast<std::uint64_t>(rd()) << 32) ^ rd()).substr(0, 12);
      state.input_path = o.input_path;
    }
    if (o.input_path.empty()) o.input_path = state.input_path;
    if (o.job_name.empty()) o.job_name = std::filesystem::path(o.output_path).filename().string();
    std::filesystem::create_directories(work_dir);
    client = std::make_unique<BatchClient>(o.client);
    if (o.realtime_options) realtime_limits = o.realtime_options().limits;
  }

  void save() { journal->set_meta(kStateKey, json(state).dump()); }

  void say(const std::string& text) const {
    if (!o.quiet) std::fprintf(stderr, "%s\n", text.c_str());
  }

  std::int64_t limit_for(const std::string& model) const {
    std::int64_t limit = o.queue_limit_all;
    if (const auto it = o.queue_limits.find(model); it != o.queue_limits.end()) limit = it->second;
    if (const auto it = state.learned.find(model); it != state.learned.end() && it->second > 0) {
      limit = limit > 0 ? std::min(limit, it->second) : it->second;
    }
    return limit;
  }

  // ---- split ----------------------------------------------------------------------

  // Validates every line and writes the lines `wanted` into new part files (round
  // state.rounds). Throws with the line errors when any line is bad.
  void split(const std::function<bool(std::string_view custom_id)>& wanted) {
    const int round = state.rounds;
    LineReader reader(o.input_path);
    CustomIdSet seen;
    std::vector<std::string> errors;
    std::uint64_t bad = 0, lines = 0;
    struct Open {
      Part part;
      std::FILE* file = nullptr;
    };
    std::map<std::string, Open> open;
    std::vector<Part> made;
    int next_part = 1;
    const auto close = [&](Open& w) {
      if (w.file == nullptr) return;
      if (std::fclose(w.file) != 0) throw Error("cannot write " + w.part.path);
      w.file = nullptr;
      made.push_back(w.part);
    };
    std::string text;
    std::string_view line;
    while (reader.next(line)) {
      if (is_blank_line(line)) continue;
      ++lines;
      ParsedLine p = parse_input_line(line, reader.line_no(), o.input);
      std::string problem;
      if (!p.request) {
        problem = p.error_message;
      } else if (!seen.insert(p.request->custom_id)) {
        problem = "line " + std::to_string(reader.line_no()) + ": duplicate custom_id \"" + p.request->custom_id + "\"";
      } else if (p.request->endpoint == Endpoint::audio_transcriptions) {
        problem = "line " + std::to_string(reader.line_no()) + ": /v1/audio/transcriptions cannot go through the Batch API";
      }
      if (!problem.empty()) {
        ++bad;
        if (errors.size() < 20) errors.push_back(problem);
        continue;
      }
      if (bad > 0 || !wanted(p.request->custom_id)) continue;
      const Request& r = *p.request;
      text.clear();
      text += R"({"custom_id":)";
      append_json_string(text, r.custom_id);
      text += R"(,"method":"POST","url":)";
      append_json_string(text, endpoint_path(r.endpoint));
      text += R"(,"body":)";
      text += r.body;
      text += "}\n";
      const auto est = tokens::estimate_request(r.endpoint, r.body);
      const auto tokens = static_cast<std::int64_t>(est.prompt_tokens);
      const auto charged = static_cast<std::int64_t>(realtime_limits.charge_for(r.model).charge(
          limit::ChargeInputs{est.prompt_tokens, est.max_tokens_per_choice, est.choices, est.generates}));
      const std::string key = std::string(endpoint_path(r.endpoint)) + " " + r.model;
      Open& w = open[key];
      const std::int64_t limit = limit_for(r.model);
      if (w.file != nullptr && (w.part.lines + 1 > o.max_lines_per_file || w.part.bytes + text.size() > o.max_bytes_per_file ||
                                (limit > 0 && w.part.tokens + tokens > limit))) {
        close(w);
      }
      if (w.file == nullptr) {
        w.part = Part{};
        w.part.round = round;
        w.part.name = state.job + "-r" + std::to_string(round) + "-p" + std::to_string(next_part++);
        w.part.path = work_dir + "/" + w.part.name + ".jsonl";
        w.part.endpoint = std::string(endpoint_path(r.endpoint));
        w.part.model = r.model;
        w.file = std::fopen(w.part.path.c_str(), "wb");
        if (w.file == nullptr) throw Error("cannot create " + w.part.path);
      }
      if (std::fwrite(text.data(), 1, text.size(), w.file) != text.size()) throw Error("cannot write " + w.part.path);
      ++w.part.lines;
      w.part.bytes += text.size();
      w.part.tokens += tokens;
      w.part.charged += charged;
    }
    for (auto& [key, w] : open) close(w);
    if (bad > 0) {
      for (const auto& p : made) std::filesystem::remove(p.path);
      std::string msg = std::to_string(bad) + " of " + std::to_string(lines) + " input lines cannot be sent; nothing was submitted:";
      for (const auto& e : errors) msg += "\n  " + e;
      if (bad > errors.size()) msg += "\n  ... and " + std::to_string(bad - errors.size()) + " more";
      throw Error(msg, exit_code::usage);
    }
    std::sort(made.begin(), made.end(), [](const Part& a, const Part& b) { return a.path < b.path; });
    state.lines = lines;
    for (auto& p : made) state.parts.push_back(std::move(p));
    ++state.rounds;
    save();
  }

  // ---- submit ---------------------------------------------------------------------

  std::optional<std::vector<json>> remote_files, remote_batches;

  std::int64_t in_flight_tokens(const std::string& model) const {
    std::int64_t sum = 0;
    for (const auto& p : state.parts) {
      if (p.model == model && !p.batch_id.empty() && !terminal(p.status)) sum += p.tokens;
    }
    return sum;
  }

  bool fits(const Part& p) const {
    const std::int64_t limit = limit_for(p.model);
    const std::int64_t queued = in_flight_tokens(p.model);
    return limit <= 0 || queued == 0 || queued + p.tokens <= limit;
  }

  void ensure_uploaded(Part& p) {
    if (!p.file_id.empty()) return;
    const std::string filename = std::filesystem::path(p.path).filename().string();
    if (p.uploading) {  // a crash may have left the upload done but not journaled
      if (!remote_files) remote_files = client->list_files();
      for (const auto& f : *remote_files) {
        if (f.value("filename", "") == filename && f.value("bytes", std::uint64_t{0}) == p.bytes) {
          p.file_id = f.value("id", "");
          say("batch: " + p.name + ": found the upload of an earlier run (" + p.file_id + ")");
          save();
          return;
        }
      }
    }
    p.uploading = true;
    save();
    const json f = client->upload(p.path);
    crash_point("after_upload");
    p.file_id = f.value("id", "");
    save();
    say("batch: " + p.name + ": uploaded " + fmt_count(p.lines) + " lines (" + p.file_id + ")");
  }

  void ensure_created(Part& p) {
    if (!p.batch_id.empty()) return;
    if (p.creating) {
      if (!remote_batches) remote_batches = client->list_batches();
      for (const auto& b : *remote_batches) {
        const json& meta = b.contains("metadata") && b["metadata"].is_object() ? b["metadata"] : json::object();
        const std::string id = b.value("id", "");
        if (b.value("input_file_id", "") == p.file_id && meta.value("floodgate_part", "") == p.name &&
            std::find(p.rejected.begin(), p.rejected.end(), id) == p.rejected.end()) {
          p.batch_id = id;
          p.status.clear();  // unknown until the next poll, which also reads its file ids
          p.creating = false;
          say("batch: " + p.name + ": found the batch of an earlier run (" + p.batch_id + ")");
          save();
          return;
        }
      }
    }
    p.creating = true;
    save();
    const json b = client->create_batch(p.file_id, p.endpoint,
                                        json{{"floodgate_job", state.job}, {"floodgate_part", p.name}, {"job", o.job_name}});
    crash_point("after_create");
    p.batch_id = b.value("id", "");
    p.status = b.value("status", "validating");
    p.creating = false;
    save();
    say("batch: " + p.name + ": created " + p.batch_id + " (" + p.endpoint + ", " + p.model + ", " + fmt_count(p.lines) +
        " lines, " + fmt_count(static_cast<std::uint64_t>(p.tokens)) + " input tokens)");
  }

  // Uploads and creates every queued part that fits under its model's enqueued-token limit.
  void submit_ready() {
    if (state.deadline_hit) return;
    remote_files.reset();
    remote_batches.reset();
    for (auto& p : state.parts) {
      if (!p.batch_id.empty() || p.fetched) continue;
      if (!fits(p)) continue;
      ensure_uploaded(p);
      ensure_created(p);
    }
  }

  // ---- poll -----------------------------------------------------------------------

  // Refreshes every unfinished batch; true when anything changed.
  bool poll() {
    bool changed = false;
    const auto now = Clock::now();
    for (auto& p : state.parts) {
      if (p.batch_id.empty() || terminal(p.status)) continue;
      const json b = client->get_batch(p.batch_id);
      const std::string status = b.value("status", "");
      std::uint64_t completed = 0, failed = 0;
      if (b.contains("request_counts") && b["request_counts"].is_object()) {
        completed = b["request_counts"].value("completed", std::uint64_t{0});
        failed = b["request_counts"].value("failed", std::uint64_t{0});
      }
      if (status != p.status || completed != p.completed || failed != p.failed) changed = true;
      p.status = status;
      p.completed = completed;
      p.failed = failed;
      if (p.first_seen == Clock::time_point{}) {
        p.first_seen = now;
        p.first_count = completed + failed;
        p.last_change = now;
        p.last_count = completed + failed;
      } else if (completed + failed != p.last_count || terminal(status)) {
        p.last_change = now;
        p.last_count = completed + failed;
        p.warned_stuck = false;
      } else if (!p.warned_stuck && now - p.last_change > o.stuck_after) {
        p.warned_stuck = true;
        say("batch: warning: " + p.batch_id + " (" + p.name + ") has been " + status + " at " +
            fmt_count(completed + failed) + "/" + fmt_count(p.lines) + " for " +
            format_duration(std::chrono::duration_cast<std::chrono::seconds>(now - p.last_change)) +
            " without progress; `floodgate batch cancel` keeps what it did");
      }
      p.output_file_id = string_or_empty(b, "output_file_id");
      p.error_file_id = string_or_empty(b, "error_file_id");
      if (status == "failed") on_failed(p, b);
    }
    if (changed) save();
    return changed;
  }

  void on_failed(Part& p, const json& b) {
    std::string text;
    bool token_limit = false;
    if (b.contains("errors") && b["errors"].is_object() && b["errors"].contains("data")) {
      for (const auto& e : b["errors"]["data"]) {
        const std::string code = e.value("code", "");
        const std::string message = e.value("message", "");
        if (code == "token_limit_exceeded") {
          token_limit = true;
          static const std::regex kLimit(R"(Limit: ([0-9,]+))");
          std::smatch m;
          if (std::regex_search(message, m, kLimit)) {
            std::string digits = m[1];
            digits.erase(std::remove(digits.begin(), digits.end(), ','), digits.end());
            state.learned[p.model] = std::stoll(digits);
          } else if (in_flight_tokens(p.model) > 0) {
            state.learned[p.model] = in_flight_tokens(p.model);
          }
        }
        if (text.size() < 2000) {
          text += (text.empty() ? "" : "; ") + code + (e.contains("line") && e["line"].is_number() ? " (line " + std::to_string(e["line"].get<long long>()) + ")" : "") + ": " + message;
        }
      }
    }
    if (token_limit) {
      say("batch: " + p.batch_id + " (" + p.name + ") was refused: the enqueued-token limit of " + p.model +
          (state.learned.count(p.model) ? " is " + fmt_count(static_cast<std::uint64_t>(state.learned[p.model])) : std::string()) +
          "; it goes back to the queue and is submitted again when earlier batches finish");
      p.rejected.push_back(p.batch_id);
      p.batch_id.clear();
      p.status.clear();
      p.completed = p.failed = 0;
      p.first_seen = {};
      return;
    }
    p.failure = text.empty() ? "the batch failed" : text;
    say("batch: " + p.batch_id + " (" + p.name + ") failed: " + p.failure);
  }

  bool all_finished() const {
    for (const auto& p : state.parts) {
      if (p.fetched) continue;
      if (p.batch_id.empty()) {
        if (state.deadline_hit) continue;  // left for the real-time finish
        return false;
      }
      if (!terminal(p.status)) return false;
    }
    return true;
  }

  std::string progress_line() const {
    std::uint64_t running = 0, queued = 0, finished = 0, done = 0, failed = 0, total = 0;
    double rate = 0;
    const auto now = Clock::now();
    for (const auto& p : state.parts) {
      if (p.fetched) continue;
      total += p.lines;
      if (p.batch_id.empty()) {
        ++queued;
        continue;
      }
      done += p.completed;
      failed += p.failed;
      if (terminal(p.status)) {
        ++finished;
        continue;
      }
      ++running;
      const double secs = std::chrono::duration<double>(now - p.first_seen).count();
      if (p.first_seen != Clock::time_point{} && secs > 0) rate += static_cast<double>(p.completed + p.failed - p.first_count) / secs;
    }
    std::string line = "batch: " + std::to_string(running) + " running, " + std::to_string(queued) + " queued, " +
                       std::to_string(finished) + " finished | " + fmt_count(done + failed) + "/" + fmt_count(total) +
                       " lines (" + fmt_count(failed) + " failed)";
    if (running > 0) line += " | ETA " + (rate > 0 ? fmt_eta(static_cast<double>(total - done - failed) / rate) : std::string("?"));
    return line;
  }

  // ---- wait -----------------------------------------------------------------------

  void cancel_running(const std::string& why) {
    for (auto& p : state.parts) {
      if (p.batch_id.empty() || terminal(p.status) || p.status == "cancelling") continue;
      try {
        const json b = client->cancel_batch(p.batch_id);
        p.status = b.value("status", "cancelling");
      } catch (const ApiError& e) {
        if (e.status() != 409) throw;  // 409: it finished meanwhile
      }
      say("batch: cancelling " + p.batch_id + " (" + p.name + ")" + why);
    }
    save();
  }

  // The lines no batch has answered yet, by model: what a real-time finish would send.
  std::map<std::string, Unfinished> unfinished() const {
    std::map<std::string, Unfinished> out;
    for (const auto& p : state.parts) {
      if (p.fetched || p.lines == 0) continue;
      std::uint64_t left = p.lines;  // a queued part: all of it
      if (!p.batch_id.empty()) left = p.completed >= p.lines ? 0 : p.lines - p.completed;
      if (left == 0) continue;
      Unfinished& u = out[p.model];
      u.requests += left;
      u.charged_tokens += static_cast<std::uint64_t>(p.charged) * left / p.lines;
    }
    return out;
  }

  struct Reserve {
    std::chrono::seconds reserve{0};
    std::string why;
  };

  // The time kept before the deadline (JobOptions::deadline_reserve).
  Reserve deadline_reserve() const {
    if (o.deadline_reserve) return {*o.deadline_reserve, "--deadline-reserve"};
    const auto by_model = unfinished();
    std::uint64_t lines = 0;
    for (const auto& [model, u] : by_model) lines += u.requests;
    const FinishTime t = realtime_finish_time(by_model, realtime_limits);
    if (!t.known) {
      return {o.deadline_unknown_limits + o.deadline_margin,
              "no real-time limit is known for some model (--rpm/--tpm or --limits FILE): " +
                  format_duration(o.deadline_unknown_limits) + " for the real-time finish of " + fmt_count(lines) +
                  " lines + " + format_duration(o.deadline_margin) + " margin"};
    }
    return {t.needed + o.deadline_margin,
            "the real-time finish of " + fmt_count(lines) + " lines needs " + format_duration(t.needed) + " at the limits" +
                (t.bound_by.empty() ? std::string() : " (set by " + t.bound_by + ")") + " + " +
                format_duration(o.deadline_margin) + " margin to cancel and for the last answers"};
  }

  bool deadline_near(Reserve& reserve) const {
    if (!o.deadline) return false;
    reserve = deadline_reserve();
    return std::chrono::system_clock::now() + reserve.reserve >= *o.deadline;
  }

  void wait() {
    auto interval = o.poll_initial;
    const bool tty = ::isatty(STDERR_FILENO) != 0;
    std::string last;
    bool first = true;
    if (o.deadline && !state.deadline_hit) {
      const Reserve r = deadline_reserve();
      say("batch: --deadline: what is still queued is cancelled " + format_duration(r.reserve) + " before it (" + r.why + ")");
    }
    for (;;) {
      Reserve reserve;
      if (!state.deadline_hit && deadline_near(reserve)) {
        state.deadline_hit = true;
        save();
        say("batch: the deadline is " + format_duration(std::max(std::chrono::system_clock::duration{0}, *o.deadline - std::chrono::system_clock::now())) +
            " away and " + reserve.why);
        cancel_running(": the deadline is near, the rest goes through the real-time API");
      }
      submit_ready();
      const bool changed = poll();
      if (first) crash_point("during_wait");
      first = false;
      const std::string line = progress_line();
      if (!o.quiet && line != last) {
        if (tty) {
          std::fprintf(stderr, "\r\033[K%s", line.c_str());
        } else {
          std::fprintf(stderr, "%s\n", line.c_str());
        }
        last = line;
      }
      if (all_finished()) break;
      std::this_thread::sleep_for(interval);
      interval = changed ? o.poll_initial : std::min(interval * 2, o.poll_max);
    }
    if (!o.quiet && tty) std::fputc('\n', stderr);
  }

  // ---- fetch ----------------------------------------------------------------------

  // Lines a crash left in OUTPUT after its flush but before the journal's commit.
  void adopt_unjournaled_output() {
    if (!std::filesystem::exists(jsonl_path)) return;
    store::truncate_torn_tail(jsonl_path);
    LineReader reader(jsonl_path);
    std::string_view line;
    std::uint64_t adopted = 0;
    while (reader.next(line)) {
      const auto info = read_output_line(line);
      if (!info || info->custom_id.empty() || journal->is_done(info->custom_id)) continue;
      Outcome out;
      out.custom_id = info->custom_id;
      out.status_code = info->status_code;
      out.error = info->error;
      out.line_no = info->line_no;
      journal->record(out);
      ++adopted;
    }
    if (adopted > 0) journal->commit();
  }

  // ---- results: run's sinks, schema check and cost ------------------------------------

  // The results table (CSV or SQLite) with cost_usd at `tier`'s prices.
  std::unique_ptr<store::Sink> open_table(cost::Tier tier) const {
    store::TableSinkOptions t;
    t.answer_columns = o.answer_columns;
    t.answer_sql_types = o.answer_sql_types;
    t.cost_usd = [prices = prices, tier](const Outcome& out, const store::RowContext& ctx) {
      return cost::row_cost_usd(*prices, ctx.model, out.usage, tier);
    };
    return store::make_sink_for_path(o.output_path, store::OpenMode::append, std::move(t));
  }

  std::mutex cost_mutex;  // the real-time engine settles from its own threads
  void add_cost(std::string_view model, const Usage& usage, cost::Tier tier) {
    const auto paid = cost::row_cost_usd(*prices, model, usage, tier);
    const std::lock_guard lock(cost_mutex);
    if (!paid) {
      if (usage.total_tokens != 0 || usage.prompt_tokens != 0) unpriced = true;
      return;
    }
    cost_usd += *paid;
    realtime_price_usd += cost::row_cost_usd(*prices, model, usage).value_or(0);
  }

  // Where each line of a part that asks for a response_format is (offset, length), by
  // custom_id: without --schema its answer is checked against the line's own format. Lines
  // without one are not indexed (nothing but a refusal to check).
  struct FormatIndex {
    std::unordered_map<std::string, std::pair<std::uint64_t, std::uint32_t>> at;
    int fd = -1;
    FormatIndex() = default;
    FormatIndex(const FormatIndex&) = delete;
    FormatIndex& operator=(const FormatIndex&) = delete;
    ~FormatIndex() {
      if (fd >= 0) ::close(fd);
    }
  };

  void index_formats(const Part& p, FormatIndex& index) const {
    LineReader reader(p.path);
    std::string_view line;
    std::uint64_t offset = reader.bytes_read();
    while (reader.next(line)) {
      const std::uint64_t at = offset;
      offset = reader.bytes_read();
      if (line.find("\"response_format\"") == std::string_view::npos) continue;
      const ParsedLine parsed = parse_input_line(line, reader.line_no(), InputOptions{});
      if (parsed.request) index.at[parsed.request->custom_id] = {at, static_cast<std::uint32_t>(line.size())};
    }
    if (!index.at.empty()) index.fd = ::open(p.path.c_str(), O_RDONLY | O_CLOEXEC);
  }

  // A 2xx chat answer that violates the schema or refuses becomes that error, as in `run`.
  void check_answer(Outcome& out, const Part& p, const FormatIndex& formats) const {
    if (!out.ok() || out.body.empty() || p.endpoint != endpoint_path(Endpoint::chat_completions)) return;
    std::string text;
    ParsedLine parsed;
    std::string_view request_body;
    if (const auto it = formats.at.find(out.custom_id); it != formats.at.end() && formats.fd >= 0) {
      text.resize(it->second.second);
      if (::pread(formats.fd, text.data(), text.size(), static_cast<off_t>(it->second.first)) == static_cast<ssize_t>(text.size())) {
        parsed = parse_input_line(text, 0, InputOptions{});
        if (parsed.request) request_body = parsed.request->body;
      }
    }
    const schema::Verdict v = checker->check(request_body, out.body);
    if (v.ok()) return;
    out.error = v.kind;
    out.error_message = v.message;
  }

  JobSummary fetch() {
    adopt_unjournaled_output();
    // A row reaches the table before the JSONL: a row in the JSONL (journaled or adopted
    // after a crash) is in the table too; a row only in the table is written again on the
    // next fetch (CSV skips ids it has, SQLite upserts).
    std::unique_ptr<store::Sink> table_sink = table ? open_table(cost::Tier::batch) : nullptr;
    auto sink = store::make_jsonl_sink(jsonl_path, store::OpenMode::append);
    const auto flush = [&] {
      if (table_sink) table_sink->flush();
      sink->flush();
    };
    for (auto& p : state.parts) {
      if (p.fetched || p.batch_id.empty() || !terminal(p.status)) continue;
      CustomIdSet here;
      std::uint64_t written = 0;
      store::RowContext ctx;
      ctx.model = p.model;
      ctx.url = p.endpoint;
      if (auto e = endpoint_from_path(p.endpoint)) ctx.endpoint = *e;
      FormatIndex formats;
      if (!o.schema_json && ctx.endpoint == Endpoint::chat_completions) index_formats(p, formats);
      const auto put = [&](Outcome out) {
        if (out.custom_id.empty() || here.contains(out.custom_id) || journal->is_done(out.custom_id)) return;
        here.insert(out.custom_id);
        check_answer(out, p, formats);
        ctx.finished_at = std::chrono::system_clock::now();
        if (table_sink) table_sink->write(out, ctx);
        sink->write(out, ctx);
        add_cost(p.model, out.usage, cost::Tier::batch);
        journal->record(out);
        if (++written == 1) {
          flush();
          crash_point("during_fetch");
        }
        if (written % 5000 == 0) {
          flush();
          journal->commit();
        }
      };
      const auto take = [&](std::string_view line) {
        const json j = json::parse(line, nullptr, false);
        if (j.is_object() && j.contains("custom_id") && j["custom_id"].is_string()) put(outcome_of(j, p));
      };
      if (!p.output_file_id.empty()) client->download_lines(p.output_file_id, take);
      if (!p.error_file_id.empty()) client->download_lines(p.error_file_id, take);
      // Lines in neither file: named as such (a cancelled or failed batch, or a line lost).
      LineReader reader(p.path);
      std::string_view line;
      while (reader.next(line)) {
        const ParsedLine parsed = parse_input_line(line, reader.line_no(), InputOptions{});
        if (parsed.custom_id.empty() || here.contains(parsed.custom_id) || journal->is_done(parsed.custom_id)) continue;
        Outcome out;
        out.custom_id = parsed.custom_id;
        out.error = ErrorKind::cancelled;
        out.error_message = "missing from both the output and the error file of batch " + p.batch_id + " (status " +
                            p.status + (p.failure.empty() ? "" : ": " + p.failure) + ")";
        put(out);
      }
      flush();
      journal->commit();
      p.fetched = true;
      save();
      say("batch: " + p.name + ": merged " + fmt_count(written) + " lines from " + p.batch_id);
    }
    flush();
    if (table_sink) table_sink->close();
    sink->close();
    return summary();
  }

  JobSummary summary() {
    JobSummary s;
    s.lines = state.lines;
    s.succeeded = journal->count_ok();
    s.failed = journal->count() - s.succeeded;
    s.not_done = s.lines > s.succeeded + s.failed ? s.lines - s.succeeded - s.failed : 0;
    s.parts = state.parts.size();
    s.exit_code = s.failed > 0 || s.not_done > 0 ? exit_code::some_failed : exit_code::ok;
    const std::lock_guard lock(cost_mutex);
    s.cost_usd = cost_usd;
    s.realtime_price_usd = realtime_price_usd;
    s.unpriced = unpriced;
    return s;
  }

  bool all_fetched() const {
    return std::all_of(state.parts.begin(), state.parts.end(), [&](const Part& p) {
      return p.fetched || (p.batch_id.empty() && state.deadline_hit);
    });
  }

  // Takes the error lines out of OUTPUT and the journal, so those lines can be sent again.
  // The table forgets them first: a crash after it leaves them journaled and in the JSONL
  // (the next retry forgets them again), never a stale error row beside a new answer.
  void forget_failures() {
    std::vector<std::string> failed;
    if (std::filesystem::exists(jsonl_path)) {
      LineReader reader(jsonl_path);
      std::string_view line;
      while (reader.next(line)) {
        const auto info = read_output_line(line);
        if (info && info->error != ErrorKind::none && !info->custom_id.empty()) failed.push_back(info->custom_id);
      }
    }
    if (failed.empty()) return;
    if (table) {
      auto t = open_table(cost::Tier::batch);
      t->forget(failed);
      t->close();
    }
    journal->remove(failed);
    store::drop_failed_lines(jsonl_path);
  }

  // ---- real time --------------------------------------------------------------------

  std::uint64_t realtime() {
    if (!o.realtime_options) throw Error("--fallback realtime needs the engine's options");
    const std::string tag = std::to_string(state.realtime_rounds);
    const std::string input = work_dir + "/realtime-" + tag + ".jsonl";
    const std::string output = work_dir + "/realtime-" + tag + ".out.jsonl";
    if (state.realtime_stage != 1) {
      forget_failures();
      // The remaining lines, verbatim from the input (the engine parses them as run does).
      std::FILE* f = std::fopen(input.c_str(), "wb");
      if (f == nullptr) throw Error("cannot create " + input);
      LineReader reader(o.input_path);
      std::string_view line;
      std::uint64_t n = 0;
      while (reader.next(line)) {
        if (is_blank_line(line)) continue;
        const ParsedLine p = parse_input_line(line, reader.line_no(), o.input);
        if (!p.request || journal->is_done(p.request->custom_id)) continue;
        std::fwrite(line.data(), 1, line.size(), f);
        std::fputc('\n', f);
        ++n;
      }
      if (std::fclose(f) != 0) throw Error("cannot write " + input);
      if (n == 0) return 0;
      state.realtime_stage = 1;
      save();
      say("batch: sending " + fmt_count(n) + " lines through the real-time API");
    }
    engine::EngineOptions eo = o.realtime_options();
    eo.input_path = input;
    eo.output_path = output;
    eo.journal_path.clear();
    eo.input = o.input;
    // Answers checked as the batch answers are; rows into the results table at real-time
    // prices; every attempt's usage into the job's cost.
    eo.check_answer = [c = checker.get()](const Request& r, std::string_view body) {
      engine::EngineOptions::AnswerVerdict v;
      if (r.endpoint != Endpoint::chat_completions) return v;
      const schema::Verdict verdict = c->check(r.body, body);
      v.kind = verdict.kind;
      v.message = verdict.message;
      return v;
    };
    if (table) eo.extra_sinks.push_back(open_table(cost::Tier::standard));
    eo.settle = [this, chained = std::move(eo.settle)](const Request& r, const Usage& u) {
      add_cost(r.model, u, cost::Tier::standard);
      if (chained) chained(r, u);
    };
    engine::Engine eng(std::move(eo));
    const engine::RunSummary rs = eng.run();
    if (rs.not_done > 0) throw Error("the real-time finish stopped early (" + rs.stop_reason + "); re-run to resume", rs.exit_code);
    // Merge: every line of the real-time output whose custom_id OUTPUT does not have yet
    // (the engine wrote the table's rows itself).
    std::FILE* out = std::fopen(jsonl_path.c_str(), "ab");
    if (out == nullptr) throw Error("cannot append to " + jsonl_path);
    LineReader reader(output);
    std::string_view line;
    std::uint64_t merged = 0;
    while (reader.next(line)) {
      const auto info = read_output_line(line);
      if (!info || info->custom_id.empty() || journal->is_done(info->custom_id)) continue;
      std::fwrite(line.data(), 1, line.size(), out);
      std::fputc('\n', out);
      Outcome o2;
      o2.custom_id = info->custom_id;
      o2.status_code = info->status_code;
      o2.error = info->error;
      journal->record(o2);
      ++merged;
    }
    if (std::fflush(out) != 0 || std::fclose(out) != 0) throw Error("cannot write " + jsonl_path);
    journal->commit();
    state.realtime_stage = 2;
    ++state.realtime_rounds;
    save();
    return merged;
  }
};

Job::Job(JobOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Job::~Job() = default;

void Job::submit() {
  Impl& im = *impl_;
  if (im.state.parts.empty()) {
    im.split([](std::string_view) { return true; });
    std::uint64_t tokens = 0;
    for (const auto& p : im.state.parts) tokens += static_cast<std::uint64_t>(p.tokens);
    im.say("batch: " + fmt_count(im.state.lines) + " lines in " + std::to_string(im.state.parts.size()) + " files (" +
           fmt_count(tokens) + " input tokens), job " + im.state.job);
  } else if (im.o.retry_failed && im.all_fetched()) {
    im.forget_failures();
    const std::size_t before = im.state.parts.size();
    im.split([&](std::string_view id) { return !im.journal->is_done(id); });
    im.say("batch: --retry-failed: " + std::to_string(im.state.parts.size() - before) + " new files with the lines that failed");
  }
  im.submit_ready();
}

void Job::status(std::FILE* out) {
  Impl& im = *impl_;
  im.poll();
  for (const auto& p : im.state.parts) {
    std::fprintf(out, "%s  %-16s %-40s %s/%s done, %s failed%s%s\n", p.name.c_str(),
                 p.batch_id.empty() ? "queued" : p.status.c_str(), p.batch_id.c_str(), fmt_count(p.completed).c_str(),
                 fmt_count(p.lines).c_str(), fmt_count(p.failed).c_str(), p.fetched ? ", fetched" : "",
                 p.failure.empty() ? "" : ("; " + p.failure).c_str());
  }
  std::fprintf(out, "%s\n", im.progress_line().c_str());
}

void Job::wait() { impl_->wait(); }

JobSummary Job::fetch() { return impl_->fetch(); }

void Job::cancel() { impl_->cancel_running(""); }

JobSummary Job::run() {
  Impl& im = *impl_;
  submit();
  for (int round = 0; round < 20; ++round) {
    im.wait();
    JobSummary s = im.fetch();
    const bool remaining = s.failed > 0 || s.not_done > 0;
    if (!remaining) return s;
    if (im.o.fallback == Fallback::realtime || im.state.deadline_hit) {
      s.realtime = im.realtime();
      JobSummary end = im.summary();
      end.realtime = s.realtime;
      return end;
    }
    if (!im.o.retry_failed) return s;
    im.forget_failures();
    im.split([&](std::string_view id) { return !im.journal->is_done(id); });
    im.say("batch: --retry-failed: a new round with the lines that failed or expired");
    im.submit_ready();
  }
  return im.summary();
}

}  // namespace floodgate::batch
