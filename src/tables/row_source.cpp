#include "floodgate/tables/row_source.hpp"

#include <set>

#include <nlohmann/json.hpp>

#include "floodgate/core/batch_io.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/csv/csv.hpp"

namespace floodgate::tables {

const std::string* Row::find_extra(std::string_view name) const noexcept {
  for (const auto& [k, v] : extra) {
    if (k == name) return &v;
  }
  return nullptr;
}

namespace {

std::string row_label(std::uint64_t number, std::uint64_t line) {
  std::string s = "row " + std::to_string(number);
  if (line != 0 && line != number) s += " (line " + std::to_string(line) + ")";
  return s;
}

class CsvRows final : public RowSource {
 public:
  CsvRows(const std::string& path, char delimiter) : reader_(path, csv::ReaderOptions{delimiter, 16u << 20}) {
    csv::Record header;
    if (!reader_.next(header)) throw Error(path + ": the table is empty (it needs a header row)");
    if (!header.error.empty()) throw Error(path + ": the header row is malformed: " + header.error);
    std::set<std::string, std::less<>> seen;
    for (std::size_t i = 0; i < header.fields.size(); ++i) {
      const auto& name = header.fields[i];
      if (name.empty()) throw Error(path + ": column " + std::to_string(i + 1) + " of the header has no name");
      if (!seen.insert(name).second) throw Error(path + ": the header names column \"" + name + "\" twice");
    }
    columns_ = std::move(header.fields);
  }

  const std::vector<std::string>& columns() const override { return columns_; }
  bool has_header() const override { return true; }
  std::uint64_t bytes_read() const override { return reader_.bytes_read(); }

  bool next(Row& row) override {
    if (!reader_.next(record_)) return false;
    row.number = record_.number - 1;  // the header is record 1
    row.line = record_.first_line;
    row.extra.clear();
    row.error.clear();
    row.values = std::move(record_.fields);
    if (!record_.error.empty()) {
      row.error = row_label(row.number, row.line) + ": " + record_.error;
    } else if (row.values.size() > columns_.size()) {
      row.error = row_label(row.number, row.line) + ": " + std::to_string(row.values.size()) +
                  " fields, but the header has " + std::to_string(columns_.size()) + " columns";
    }
    return true;
  }

 private:
  csv::Reader reader_;
  csv::Record record_;
  std::vector<std::string> columns_;
};

std::string field_text(const nlohmann::ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return {};
  return v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

class JsonlRows final : public RowSource {
 public:
  explicit JsonlRows(const std::string& path) : reader_(path) {
    // The columns come from the first object row; read ahead to find it.
    while (read_one(pending_)) {
      has_pending_ = true;
      if (pending_.error.empty()) break;
      parked_.push_back(std::move(pending_));
      has_pending_ = false;
    }
  }

  const std::vector<std::string>& columns() const override { return columns_; }
  bool has_header() const override { return false; }
  std::uint64_t bytes_read() const override { return reader_.bytes_read(); }

  bool next(Row& row) override {
    if (parked_index_ < parked_.size()) {
      row = std::move(parked_[parked_index_++]);
      return true;
    }
    if (has_pending_) {
      has_pending_ = false;
      row = std::move(pending_);
      return true;
    }
    return read_one(row);
  }

 private:
  bool read_one(Row& row) {
    std::string_view line;
    for (;;) {
      if (!reader_.next(line)) return false;
      if (!is_blank_line(line)) break;
    }
    row.number = reader_.line_no();
    row.line = reader_.line_no();
    row.values.clear();
    row.extra.clear();
    row.error.clear();
    const auto doc = nlohmann::ordered_json::parse(line, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      row.error = "row " + std::to_string(row.number) + ": not a JSON object";
      return true;
    }
    if (columns_.empty()) {
      for (const auto& [k, _] : doc.items()) columns_.push_back(k);
    }
    row.values.resize(columns_.size());
    std::vector<bool> present(columns_.size(), false);
    for (const auto& [k, v] : doc.items()) {
      std::size_t i = 0;
      while (i < columns_.size() && columns_[i] != k) ++i;
      if (i < columns_.size()) {
        row.values[i] = field_text(v);
        present[i] = true;
      } else {
        row.extra.emplace_back(k, field_text(v));
      }
    }
    // A missing key is a missing field: cut values at the first absent column and move the
    // later present ones to extra so lookups by name still find them.
    std::size_t keep = 0;
    while (keep < present.size() && present[keep]) ++keep;
    for (std::size_t i = keep; i < present.size(); ++i) {
      if (present[i]) row.extra.emplace_back(columns_[i], std::move(row.values[i]));
    }
    row.values.resize(keep);
    return true;
  }

  LineReader reader_;
  std::vector<std::string> columns_;
  Row pending_;
  bool has_pending_ = false;
  std::vector<Row> parked_;  // malformed rows read before the first object
  std::size_t parked_index_ = 0;
};

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  if (s.size() < suffix.size()) return false;
  for (std::size_t i = 0; i < suffix.size(); ++i) {
    char c = s[s.size() - suffix.size() + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<RowSource> open_csv_rows(const std::string& path, char delimiter) {
  return std::make_unique<CsvRows>(path, delimiter);
}

std::unique_ptr<RowSource> open_jsonl_rows(const std::string& path) { return std::make_unique<JsonlRows>(path); }

bool is_table_path(std::string_view path) noexcept { return ends_with(path, ".csv") || ends_with(path, ".tsv"); }

std::unique_ptr<RowSource> open_rows(const std::string& path) {
  if (ends_with(path, ".tsv")) return open_csv_rows(path, '\t');
  if (ends_with(path, ".csv")) return open_csv_rows(path, ',');
  return open_jsonl_rows(path);
}

}  // namespace floodgate::tables
