#include "table_row.hpp"

#include <cstdio>
#include <ctime>
#include <set>

#include <nlohmann/json.hpp>

namespace floodgate::store {

std::vector<std::string> table_columns(const TableSinkOptions& options, bool sqlite) {
  std::vector<std::string> cols = {"custom_id", "status"};
  const std::vector<std::string> tail = {"content",       "finish_reason",    "prompt_tokens", "completion_tokens",
                                         "total_tokens",  "cached_tokens",    "reasoning_tokens",
                                         "cost_usd",      "latency_s",        "attempts",      "model",
                                         "called_at",     "error_kind",       "error_message"};
  std::set<std::string, std::less<>> taken(cols.begin(), cols.end());
  taken.insert(tail.begin(), tail.end());
  if (sqlite) taken.insert({"status_code", "request_id", "line_no", "response_json"});
  auto add = [&](const std::string& name, const char* prefix) {
    std::string n = name;
    while (taken.count(n) != 0) n = prefix + n;
    taken.insert(n);
    cols.push_back(n);
  };
  for (const auto& c : options.input_columns) add(c, "input_");
  for (const auto& c : options.answer_columns) add(c, "answer_");
  cols.insert(cols.end(), tail.begin(), tail.end());
  if (sqlite) {
    for (const char* c : {"status_code", "request_id", "line_no", "response_json"}) cols.emplace_back(c);
  }
  return cols;
}

OutputFormat output_format_of(const std::string& path) noexcept {
  auto ends = [&](std::string_view suffix) {
    if (path.size() < suffix.size()) return false;
    for (std::size_t i = 0; i < suffix.size(); ++i) {
      char c = path[path.size() - suffix.size() + i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != suffix[i]) return false;
    }
    return true;
  };
  if (ends(".csv")) return OutputFormat::csv;
  if (ends(".sqlite") || ends(".sqlite3") || ends(".db")) return OutputFormat::sqlite;
  return OutputFormat::jsonl;
}

std::unique_ptr<Sink> make_sink_for_path(const std::string& path, OpenMode mode, TableSinkOptions options,
                                         bool fsync_on_flush) {
  switch (output_format_of(path)) {
    case OutputFormat::csv:
      return make_csv_sink(path, mode, std::move(options));
    case OutputFormat::sqlite:
      return make_sqlite_sink(path, mode, std::move(options));
    case OutputFormat::jsonl:
      break;
  }
  return make_jsonl_sink(path, mode, fsync_on_flush);
}

namespace {
class FilteredSink final : public Sink {
 public:
  FilteredSink(std::unique_ptr<Sink> inner, bool ok) : inner_(std::move(inner)), ok_(ok) {}
  void write(const Outcome& outcome, const RowContext& context) override {
    if (outcome.ok() == ok_) inner_->write(outcome, context);
  }
  void flush() override { inner_->flush(); }
  void close() override { inner_->close(); }
  void forget(const std::vector<std::string>& keys) override { inner_->forget(keys); }

 private:
  std::unique_ptr<Sink> inner_;
  bool ok_;
};
}  // namespace

std::unique_ptr<Sink> make_filtered_sink(std::unique_ptr<Sink> inner, bool ok) {
  return std::make_unique<FilteredSink>(std::move(inner), ok);
}

namespace {

bool is_json_integer(std::string_view v) {
  std::size_t i = v.starts_with('-') ? 1 : 0;
  if (i >= v.size() || (v[i] == '0' && v.size() > i + 1)) return false;
  for (std::size_t j = i; j < v.size(); ++j) {
    if (v[j] < '0' || v[j] > '9') return false;
  }
  // Fits 64 bits: at most 18 digits always does; 19 digits, compare as text.
  const std::string_view digits = v.substr(i);
  if (digits.size() < 19) return true;
  if (digits.size() > 19) return false;
  return digits <= (i == 1 ? std::string_view("9223372036854775808") : std::string_view("9223372036854775807"));
}

bool is_json_number(std::string_view v) {
  const auto doc = nlohmann::json::parse(v, nullptr, false);
  return !doc.is_discarded() && doc.is_number() && v.find_first_of(" \t\r\n") == std::string_view::npos;
}

}  // namespace

void ColumnTypes::see(std::size_t column, std::string_view value) {
  if (column >= kinds_.size() || value.empty()) return;
  Kind& k = kinds_[column];
  if (k == Kind::text) return;
  if ((k == Kind::none || k == Kind::integer) && is_json_integer(value)) {
    k = Kind::integer;
  } else if (k != Kind::text && is_json_number(value)) {
    k = Kind::real;
  } else {
    k = Kind::text;
  }
}

std::vector<std::string> ColumnTypes::sql_types() const {
  std::vector<std::string> out;
  for (const Kind k : kinds_) out.emplace_back(k == Kind::integer ? "INTEGER" : k == Kind::real ? "REAL" : "TEXT");
  return out;
}

}  // namespace floodgate::store

namespace floodgate::store::detail {
namespace {

Cell text_cell(std::string s) {
  Cell c;
  c.type = Cell::Type::text;
  c.text = std::move(s);
  return c;
}
Cell int_cell(std::int64_t v) {
  Cell c;
  c.type = Cell::Type::integer;
  c.integer = v;
  return c;
}
Cell real_cell(double v) {
  Cell c;
  c.type = Cell::Type::real;
  c.real = v;
  return c;
}

// A value of the answer: booleans are true/false in CSV (JSON's text) and 0/1 in SQLite.
Cell json_cell(const nlohmann::json& v, bool sqlite) {
  if (v.is_null()) return Cell{};
  if (v.is_string()) return text_cell(v.get<std::string>());
  if (v.is_boolean()) return sqlite ? int_cell(v.get<bool>() ? 1 : 0) : text_cell(v.get<bool>() ? "true" : "false");
  if (v.is_number_integer()) return int_cell(v.get<std::int64_t>());
  if (v.is_number_unsigned()) return int_cell(static_cast<std::int64_t>(v.get<std::uint64_t>()));
  if (v.is_number_float()) return real_cell(v.get<double>());
  return text_cell(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string json_text(const nlohmann::json& obj, const char* key) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

}  // namespace

std::string cell_text(const Cell& cell) {
  switch (cell.type) {
    case Cell::Type::null:
      return {};
    case Cell::Type::integer:
      return std::to_string(cell.integer);
    case Cell::Type::real: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.10f", cell.real);
      std::string s = buf;
      if (s.find('.') != std::string::npos) {
        while (!s.empty() && s.back() == '0') s.pop_back();
        if (!s.empty() && s.back() == '.') s.pop_back();
      }
      return s;
    }
    case Cell::Type::text:
      return cell.text;
  }
  return {};
}

Flattener::Flattener(TableSinkOptions options, bool sqlite)
    : options_(std::move(options)), sqlite_(sqlite), columns_(table_columns(options_, sqlite)) {
  sql_types_ = {"TEXT", "TEXT"};
  for (std::size_t i = 0; i < options_.input_columns.size(); ++i) {
    const bool typed = sqlite_ && i < options_.input_sql_types.size() && !options_.input_sql_types[i].empty();
    sql_types_.push_back(typed ? options_.input_sql_types[i] : "TEXT");
  }
  for (std::size_t i = 0; i < options_.answer_columns.size(); ++i) {
    sql_types_.push_back(i < options_.answer_sql_types.size() ? options_.answer_sql_types[i] : "");
  }
  for (const char* t : {"TEXT", "TEXT", "INTEGER", "INTEGER", "INTEGER", "INTEGER", "INTEGER", "REAL", "REAL",
                        "INTEGER", "TEXT", "TEXT", "TEXT", "TEXT"}) {
    sql_types_.emplace_back(t);
  }
  if (sqlite_) {
    for (const char* t : {"INTEGER", "TEXT", "INTEGER", "TEXT"}) sql_types_.emplace_back(t);
  }
}

std::string Flattener::key_of(const Outcome& outcome) {
  return outcome.custom_id.empty() ? "@line:" + std::to_string(outcome.line_no) : outcome.custom_id;
}

void Flattener::flatten(const Outcome& o, const RowContext& ctx, std::vector<Cell>& cells) const {
  cells.clear();
  cells.reserve(columns_.size());
  cells.push_back(text_cell(key_of(o)));
  cells.push_back(text_cell(o.ok() ? "ok" : "error"));

  std::vector<std::string> inputs;
  if (options_.input_values && !options_.input_columns.empty()) inputs = options_.input_values(o, ctx);
  for (std::size_t i = 0; i < options_.input_columns.size(); ++i) {
    if (i >= inputs.size()) {
      cells.push_back(Cell{});
      continue;
    }
    const std::string& type = sql_types_[2 + i];
    if (type == "INTEGER" || type == "REAL") {
      // Numbers as numbers; an empty value is NULL; a value that is no number (a resumed run
      // whose column was typed from other rows) stays text, as SQLite allows.
      const std::string& v = inputs[i];
      if (v.empty()) {
        cells.push_back(Cell{});
      } else if (type == "INTEGER" && is_json_integer(v)) {
        cells.push_back(int_cell(std::stoll(v)));
      } else if (is_json_number(v)) {
        cells.push_back(real_cell(std::stod(v)));
      } else {
        cells.push_back(text_cell(std::move(inputs[i])));
      }
      continue;
    }
    cells.push_back(text_cell(std::move(inputs[i])));
  }

  nlohmann::json body;
  if (!o.body.empty()) body = nlohmann::json::parse(o.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) body = nlohmann::json::object();
  const nlohmann::json* message = nullptr;
  std::string finish_reason;
  if (const auto ch = body.find("choices"); ch != body.end() && ch->is_array() && !ch->empty() && (*ch)[0].is_object()) {
    const auto& first = (*ch)[0];
    finish_reason = json_text(first, "finish_reason");
    if (const auto m = first.find("message"); m != first.end() && m->is_object()) message = &*m;
  }
  std::string content;
  if (message != nullptr) content = json_text(*message, "content");

  nlohmann::json answer;
  if (!options_.answer_columns.empty() && o.ok() && !content.empty()) {
    answer = nlohmann::json::parse(content, nullptr, false);
  }
  for (const auto& name : options_.answer_columns) {
    if (answer.is_object()) {
      const auto it = answer.find(name);
      cells.push_back(it != answer.end() ? json_cell(*it, sqlite_) : Cell{});
    } else {
      cells.push_back(Cell{});
    }
  }

  cells.push_back(text_cell(content));
  cells.push_back(text_cell(finish_reason));
  const bool has_usage = o.usage.total_tokens != 0 || o.usage.prompt_tokens != 0;
  auto usage_cell = [&](std::uint64_t v) { return has_usage ? int_cell(static_cast<std::int64_t>(v)) : Cell{}; };
  cells.push_back(usage_cell(o.usage.prompt_tokens));
  cells.push_back(usage_cell(o.usage.completion_tokens));
  cells.push_back(usage_cell(o.usage.total_tokens));
  cells.push_back(usage_cell(o.usage.cached_tokens));
  cells.push_back(usage_cell(o.usage.reasoning_tokens));
  std::optional<double> cost;
  if (options_.cost_usd) cost = options_.cost_usd(o, ctx);
  cells.push_back(cost ? real_cell(*cost) : Cell{});
  cells.push_back(o.attempts > 0 ? real_cell(o.latency_seconds) : Cell{});
  cells.push_back(int_cell(o.attempts));
  std::string model(ctx.model);
  if (model.empty()) model = json_text(body, "model");
  cells.push_back(text_cell(std::move(model)));
  if (o.attempts > 0 && ctx.finished_at != std::chrono::system_clock::time_point{}) {
    const auto sent = ctx.finished_at - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                            std::chrono::duration<double>(o.latency_seconds));
    cells.push_back(text_cell(iso8601_utc(sent)));
  } else {
    cells.push_back(Cell{});
  }
  cells.push_back(o.ok() ? Cell{} : text_cell(std::string(to_string(o.error))));
  cells.push_back(o.ok() ? Cell{} : text_cell(o.error_message));
  if (sqlite_) {
    cells.push_back(o.status_code > 0 ? int_cell(o.status_code) : Cell{});
    cells.push_back(o.request_id.empty() ? Cell{} : text_cell(o.request_id));
    cells.push_back(int_cell(static_cast<std::int64_t>(o.line_no)));
    cells.push_back(o.body.empty() ? Cell{} : text_cell(o.body));
  }
}

}  // namespace floodgate::store::detail
