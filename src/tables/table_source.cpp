#include "floodgate/tables/table_source.hpp"

#include <filesystem>
#include <system_error>
#include <utility>

#include "floodgate/core/batch_io.hpp"

namespace floodgate::tables {
namespace {

// identity() reads ahead until the first requests fill the bytes a JSONL file's identity
// is taken from, but never more than this many rows (a table of error rows holds no lines).
constexpr std::size_t kMaxRowsAhead = 10'000;

}  // namespace

std::vector<std::string> input_row_values(const store::RowContext& context) {
  const auto* row = static_cast<const InputRow*>(context.payload.get());
  return row != nullptr ? row->values : std::vector<std::string>{};
}

std::string batch_line(const Request& request) {
  return engine::batch_input_line(request.custom_id, request.url, request.body);
}

TableSource::TableSource(const std::string& path, RowRequestOptions options, ErrorRowHandler on_error_row)
    : path_(path), options_(std::move(options)), on_error_row_(std::move(on_error_row)), rows_(open_rows(path)) {
  builder_.emplace(options_, rows_->columns(), rows_->has_header());
  std::error_code ec;
  if (path != "-" && std::filesystem::is_regular_file(path, ec)) size_bytes_ = std::filesystem::file_size(path, ec);
  if (ec) size_bytes_ = 0;
}

bool TableSource::read_row(Entry& entry) {
  Row row;
  if (!rows_->next(row)) return false;
  ++stats_->rows;
  auto values = std::make_shared<InputRow>();
  const auto& columns = rows_->columns();
  values->values.assign(columns.size(), std::string{});
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const std::string* v = row.at(i);
    if (v == nullptr) v = row.find_extra(columns[i]);
    if (v != nullptr) values->values[i] = *v;
  }
  RowRequest rr = builder_->build(row);
  entry.item = engine::SourceItem{};
  entry.item.payload = std::move(values);
  entry.error_row = Outcome{};
  if (!rr.error.empty()) {
    ++stats_->error_rows;
    entry.error_row.custom_id = rr.request.custom_id;
    entry.error_row.line_no = row.line;
    entry.error_row.error = ErrorKind::invalid_input;
    entry.error_row.error_message = std::move(rr.error);
    return true;
  }
  // Parsed from its Batch API line as the engine parses a file of them: the same request.
  ++stats_->requests;
  entry.item.line_no = stats_->requests;
  entry.item.parsed = parse_input_line(batch_line(rr.request), entry.item.line_no, InputOptions{});
  return true;
}

engine::SourceIdentity TableSource::identity() {
  std::string first_lines;
  Entry entry;
  while (first_lines.size() < engine::kJsonlIdentityBytes && ahead_.size() < kMaxRowsAhead && read_row(entry)) {
    if (entry.error_row.error == ErrorKind::none && entry.item.parsed.request) {
      first_lines += batch_line(*entry.item.parsed.request);
      first_lines += '\n';
    }
    ahead_.push_back(std::move(entry));
  }
  engine::SourceIdentity id = engine::jsonl_identity(first_lines, InputOptions{});
  id.name = path_ == "-" ? std::string("the input (stdin)") : "the input \"" + path_ + "\"";
  id.path = path_;
  return id;
}

engine::SourceStatus TableSource::next(engine::SourceItem& item) {
  Entry entry;
  for (;;) {
    if (!ahead_.empty()) {
      entry = std::move(ahead_.front());
      ahead_.pop_front();
    } else if (!read_row(entry)) {
      return engine::SourceStatus::end;
    }
    if (entry.error_row.error == ErrorKind::none) {
      item = std::move(entry.item);
      return engine::SourceStatus::item;
    }
    if (on_error_row_) {
      store::RowContext ctx;
      ctx.model = options_.model;
      ctx.finished_at = std::chrono::system_clock::now();
      ctx.payload = std::move(entry.item.payload);
      on_error_row_(entry.error_row, ctx);
    }
  }
}

std::optional<double> TableSource::fraction_read() const noexcept {
  if (size_bytes_ == 0) return std::nullopt;
  return static_cast<double>(rows_->bytes_read()) / static_cast<double>(size_bytes_);
}

std::unique_ptr<engine::RequestSource> TableSource::reopen() const {
  if (path_ == "-") return nullptr;
  return std::make_unique<TableSource>(path_, options_, nullptr);
}

}  // namespace floodgate::tables
