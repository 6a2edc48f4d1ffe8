// Micro-benchmarks of the table paths (Google Benchmark): CSV read (bytes/s and rows/s) on
// tricky content, CSV write, row -> chat request, answer validation against a schema, and
// the CSV / SQLite results sinks (rows/s). Run:
//   build-x/bench/tables/tables_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "floodgate/csv/csv.hpp"
#include "floodgate/schema/structured_output.hpp"
#include "floodgate/store/table_sink.hpp"
#include "floodgate/tables/row_request.hpp"

namespace {

std::string make_csv(int rows) {
  std::string out = "id,text,stars\r\n";
  for (int i = 0; i < rows; ++i) {
    floodgate::csv::append_record(
        out, std::vector<std::string>{"r" + std::to_string(i),
                                      "Review " + std::to_string(i) +
                                          ": \"great\", fast delivery\nsecond line with é and 🙂, a bit longer text here",
                                      std::to_string(i % 5)});
  }
  return out;
}

void BM_CsvRead(benchmark::State& state) {
  const std::string text = make_csv(10'000);
  std::size_t rows = 0;
  for (auto _ : state) {
    rows = floodgate::csv::parse(text).size();
    benchmark::DoNotOptimize(rows);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.counters["rows"] = benchmark::Counter(static_cast<double>(state.iterations() * rows), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CsvRead)->Unit(benchmark::kMillisecond);

void BM_RowToRequest(benchmark::State& state) {
  floodgate::tables::RowRequestOptions o;
  o.model = "gpt-4o-mini";
  o.template_text = "Rate this review ({stars} stars) as JSON:\n{text}\n";
  o.system_prompt = "You are a careful annotator.";
  o.id_column = "id";
  o.response_format_json = R"({"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object"},"strict":true}})";
  floodgate::tables::RowRequestBuilder b(o, {"id", "text", "stars"}, true);
  floodgate::tables::Row row;
  row.number = 1;
  row.values = {"r1", "Review 1: \"great\", fast delivery\nsecond line with é and 🙂", "4"};
  for (auto _ : state) {
    auto rr = b.build(row);
    benchmark::DoNotOptimize(rr.request.body.data());
  }
  state.counters["rows"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RowToRequest);

const char* kSchema = R"({"type":"object","properties":{"label":{"type":"string","enum":["positive","negative","neutral"]},
  "score":{"type":"integer","minimum":0,"maximum":10},"keywords":{"type":"array","items":{"type":"string"}}},
  "required":["label","score","keywords"],"additionalProperties":false})";

const char* kAnswer =
    R"({"id":"c","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"{\"label\":\"positive\",\"score\":7,\"keywords\":[\"fast\",\"great\"]}","refusal":null},"finish_reason":"stop"}],"usage":{"prompt_tokens":90,"completion_tokens":20,"total_tokens":110}})";

void BM_ValidateAnswer(benchmark::State& state) {
  floodgate::schema::AnswerChecker checker{std::string(kSchema)};
  for (auto _ : state) {
    auto v = checker.check("{}", kAnswer);
    benchmark::DoNotOptimize(v.kind);
  }
  state.counters["answers"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ValidateAnswer);

void sink_bench(benchmark::State& state, bool sqlite) {
  const auto path = std::filesystem::temp_directory_path() / (sqlite ? "fg_bench_sink.sqlite" : "fg_bench_sink.csv");
  floodgate::store::TableSinkOptions o;
  o.input_columns = {"id", "text", "stars"};
  o.answer_columns = {"label", "score", "keywords"};
  o.input_values = [](const floodgate::Outcome& out, const floodgate::store::RowContext&) {
    return std::vector<std::string>{out.custom_id, "Review: \"great\", fast\nsecond line é 🙂", "4"};
  };
  o.cost_usd = [](const floodgate::Outcome&, const floodgate::store::RowContext&) -> std::optional<double> { return 0.0000165; };
  floodgate::Outcome out;
  out.status_code = 200;
  out.body = kAnswer;
  out.attempts = 1;
  out.usage.prompt_tokens = 90;
  out.usage.completion_tokens = 20;
  out.usage.total_tokens = 110;
  floodgate::store::RowContext ctx;
  ctx.model = "gpt-4o-mini";
  ctx.finished_at = std::chrono::system_clock::now();
  std::int64_t rows = 0;
  for (auto _ : state) {
    auto sink = sqlite ? floodgate::store::make_sqlite_sink(path.string(), floodgate::store::OpenMode::truncate, o)
                       : floodgate::store::make_csv_sink(path.string(), floodgate::store::OpenMode::truncate, o);
    for (int i = 0; i < 10'000; ++i) {
      out.custom_id = "r" + std::to_string(i);
      sink->write(out, ctx);
      if (i % 1000 == 999) sink->flush();  // a checkpoint every 1,000 rows
    }
    sink->close();
    rows += 10'000;
  }
  state.counters["rows"] = benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
}
void BM_CsvSink(benchmark::State& state) { sink_bench(state, false); }
void BM_SqliteSink(benchmark::State& state) { sink_bench(state, true); }
BENCHMARK(BM_CsvSink)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SqliteSink)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
