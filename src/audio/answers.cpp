#include "floodgate/audio/answers.hpp"

#include <sqlite3.h>

#include <fstream>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"
#include "floodgate/store/sqlite_table.hpp"

namespace floodgate::audio {
namespace {

const std::vector<store::TableColumn>& store_columns() {
  static const std::vector<store::TableColumn> columns = {{"key", "TEXT"}, {"body", "TEXT"}};
  return columns;
}

store::TableCell text_cell(const std::string& text) {
  store::TableCell c;
  c.type = store::TableCell::Type::text;
  c.text = text;
  return c;
}

class AnswerSink final : public store::Sink {
 public:
  AnswerSink(const std::filesystem::path& store_path, std::shared_ptr<ChunkAnswers> answers)
      : table_(store_path.string(), "answers", store_columns(), store::OpenMode::append), answers_(std::move(answers)) {}

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
    if (a.ok) table_.upsert({text_cell(o.custom_id), text_cell(a.body)});
    auto& slot = (*answers_)[o.custom_id];
    if (!slot.ok) slot = std::move(a);
  }
  void flush() override { table_.flush(); }
  void close() override { table_.close(); }

 private:
  store::SqliteTable table_;
  std::shared_ptr<ChunkAnswers> answers_;
};

}  // namespace

ChunkAnswers load_answers(const std::filesystem::path& store_path) {
  ChunkAnswers answers;
  std::error_code ec;
  if (!std::filesystem::exists(store_path, ec)) return answers;
  sqlite3* db = nullptr;
  sqlite3_stmt* st = nullptr;
  auto fail = [&](const std::string& what) {
    const std::string message = what + (db != nullptr ? std::string(": ") + sqlite3_errmsg(db) : std::string());
    sqlite3_finalize(st);
    sqlite3_close(db);
    throw Error("cannot read the answers of earlier runs in " + store_path.string() + " (" + message +
                "); --force starts the job over");
  };
  if (sqlite3_open_v2(store_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) fail("open");
  sqlite3_busy_timeout(db, 5000);
  if (sqlite3_prepare_v2(db, "SELECT key, body FROM answers", -1, &st, nullptr) != SQLITE_OK) fail("select");
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const auto* key = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    const auto* body = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
    if (key == nullptr || body == nullptr) continue;
    ChunkAnswer a;
    a.ok = true;
    a.body = body;
    answers[key] = std::move(a);
  }
  if (rc != SQLITE_DONE) fail("step");
  sqlite3_finalize(st);
  sqlite3_close(db);
  return answers;
}

void store_answers(const std::filesystem::path& store_path, const ChunkAnswers& answers) {
  store::SqliteTable table(store_path.string(), "answers", store_columns(), store::OpenMode::append);
  for (const auto& [key, a] : answers) {
    if (a.ok) table.upsert({text_cell(key), text_cell(a.body)});
  }
  table.close();
}

std::unique_ptr<store::Sink> make_answer_sink(const std::filesystem::path& store_path, std::shared_ptr<ChunkAnswers> answers) {
  return std::make_unique<AnswerSink>(store_path, std::move(answers));
}

namespace {

bool is_legacy_file(const std::string& name) { return name.rfind("requests-", 0) == 0 || name.rfind("responses-", 0) == 0; }

}  // namespace

ChunkAnswers read_legacy_answers(const std::filesystem::path& state) {
  ChunkAnswers answers;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(state, ec)) {
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
  return answers;
}

void remove_legacy_files(const std::filesystem::path& state) {
  std::vector<std::filesystem::path> legacy;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(state, ec)) {
    if (is_legacy_file(entry.path().filename().string())) legacy.push_back(entry.path());
  }
  for (const auto& path : legacy) std::filesystem::remove(path, ec);
}

}  // namespace floodgate::audio
