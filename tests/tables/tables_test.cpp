#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"
#include "floodgate/tables/prompt_template.hpp"
#include "floodgate/tables/row_request.hpp"
#include "floodgate/tables/row_source.hpp"
#include "floodgate/tables/table_source.hpp"
#include "floodgate/core/batch_io.hpp"

namespace floodgate::tables {
namespace {

class TempFile {
 public:
  TempFile(const std::string& suffix, const std::string& content)
      : path_(std::filesystem::temp_directory_path() /
              ("floodgate_tables_" + std::to_string(std::random_device{}()) + suffix)) {
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  [[nodiscard]] std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

std::vector<Row> all_rows(RowSource& src) {
  std::vector<Row> out;
  Row r;
  while (src.next(r)) out.push_back(r);
  return out;
}

TEST(CsvRows, HeaderColumnsAndRowNumbers) {
  TempFile f(".csv", "\xEF\xBB\xBFid,text\r\n7,\"a, \"\"b\"\"\nc\"\r\n8,plain\r\n9,x,extra\r\n10\r\n");
  auto src = open_rows(f.path());
  EXPECT_TRUE(src->has_header());
  EXPECT_EQ(src->columns(), (std::vector<std::string>{"id", "text"}));
  const auto rows = all_rows(*src);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].number, 1u);
  EXPECT_EQ(rows[0].values, (std::vector<std::string>{"7", "a, \"b\"\nc"}));
  EXPECT_EQ(rows[1].number, 2u);
  EXPECT_EQ(rows[1].line, 4u);
  EXPECT_NE(rows[2].error.find("row 3 (line 5): 3 fields, but the header has 2 columns"), std::string::npos)
      << rows[2].error;
  EXPECT_EQ(rows[3].error, "");
  EXPECT_EQ(rows[3].at(1), nullptr);
}

TEST(CsvRows, BadHeadersAreConfigurationErrors) {
  TempFile dup(".csv", "a,a\n1,2\n");
  EXPECT_THROW((void)open_rows(dup.path()), Error);
  TempFile empty_name(".csv", "a,,c\n");
  EXPECT_THROW((void)open_rows(empty_name.path()), Error);
  TempFile nothing(".csv", "");
  EXPECT_THROW((void)open_rows(nothing.path()), Error);
  EXPECT_THROW((void)open_rows("/nonexistent/x.csv"), Error);
}

TEST(JsonlRows, FieldsFromTheFirstObjectAndErrorsForOthers) {
  TempFile f(".jsonl", "not json\n{\"id\":\"a\",\"n\":3,\"obj\":{\"k\":[1]}}\n\n{\"n\":4,\"more\":\"m\"}\n[1]\n{\"id\":null}\n");
  auto src = open_rows(f.path());
  EXPECT_FALSE(src->has_header());
  EXPECT_EQ(src->columns(), (std::vector<std::string>{"id", "n", "obj"}));
  const auto rows = all_rows(*src);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].error, "row 1: not a JSON object");
  EXPECT_EQ(rows[1].number, 2u);
  EXPECT_EQ(rows[1].values, (std::vector<std::string>{"a", "3", "{\"k\":[1]}"}));
  EXPECT_EQ(rows[2].number, 4u);
  EXPECT_EQ(rows[2].at(0), nullptr);  // no id
  ASSERT_NE(rows[2].find_extra("n"), nullptr);
  EXPECT_EQ(*rows[2].find_extra("n"), "4");
  EXPECT_EQ(*rows[2].find_extra("more"), "m");
  EXPECT_FALSE(rows[3].error.empty());
  EXPECT_EQ(*rows[4].at(0), "");  // null -> ""
}

Row make_row(std::uint64_t n, std::vector<std::string> values) {
  Row r;
  r.number = n;
  r.line = n + 1;
  r.values = std::move(values);
  return r;
}

TEST(PromptTemplate, PlaceholdersAndEscapes) {
  auto t = PromptTemplate::parse("Q: {question}\nJSON like {{\"a\": 1}} for {name}, {question}");
  EXPECT_EQ(t.placeholders(), (std::vector<std::string>{"question", "name"}));
  t.bind({"name", "question"}, true);
  const auto r = t.render(make_row(1, {"Ann", "why?"}));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.text, "Q: why?\nJSON like {\"a\": 1} for Ann, why?");
}

TEST(PromptTemplate, ErrorsNameWhereAndWhat) {
  try {
    (void)PromptTemplate::parse("ok\nbad } here");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2, column 5"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)PromptTemplate::parse("{open"), Error);
  EXPECT_THROW((void)PromptTemplate::parse("{a{b}"), Error);
  EXPECT_THROW((void)PromptTemplate::parse("{}"), Error);
  auto t = PromptTemplate::parse("{city}");
  EXPECT_THROW(t.bind({"name"}, true), Error);
  t.bind({"name", "city"}, true);
  const auto r = t.render(make_row(12, {"Ann"}));
  EXPECT_EQ(r.error, "row 12: column \"city\" is missing");
}

TEST(RowRequest, BodyIsValidJsonWithEscapesAndIdColumn) {
  RowRequestOptions o;
  o.model = "gpt-4o-mini";
  o.template_text = "Classify: {text}";
  o.system_prompt = "You are \"terse\".\nAnswer in JSON.";
  o.id_column = "id";
  o.response_format_json = R"({"type":"json_object"})";
  o.max_completion_tokens = 50;
  RowRequestBuilder b(o, {"id", "text"}, true);
  const auto rr = b.build(make_row(3, {"r-3", "quote \" backslash \\ tab \t nl \n emoji 🙂 ctrl \x01"}));
  ASSERT_EQ(rr.error, "");
  EXPECT_EQ(rr.request.custom_id, "r-3");
  EXPECT_EQ(rr.request.url, "/v1/chat/completions");
  EXPECT_EQ(rr.request.model, "gpt-4o-mini");
  const auto body = nlohmann::json::parse(rr.request.body);
  EXPECT_EQ(body["model"], "gpt-4o-mini");
  EXPECT_EQ(body["messages"][0]["role"], "system");
  EXPECT_EQ(body["messages"][0]["content"], "You are \"terse\".\nAnswer in JSON.");
  EXPECT_EQ(body["messages"][1]["content"], "Classify: quote \" backslash \\ tab \t nl \n emoji 🙂 ctrl \x01");
  EXPECT_EQ(body["response_format"]["type"], "json_object");
  EXPECT_EQ(body["max_completion_tokens"], 50);
}

TEST(RowRequest, RowNumberIdAndErrorRows) {
  RowRequestOptions o;
  o.model = "m";
  o.template_text = "{a} {b}";
  RowRequestBuilder b(o, {"a", "b"}, true);
  const auto ok = b.build(make_row(5, {"x", "y"}));
  EXPECT_EQ(ok.error, "");
  EXPECT_EQ(ok.request.custom_id, "5");
  EXPECT_EQ(nlohmann::json::parse(ok.request.body)["messages"].size(), 1u);
  const auto missing = b.build(make_row(6, {"x"}));
  EXPECT_EQ(missing.error, "row 6: column \"b\" is missing");
  EXPECT_EQ(missing.request.custom_id, "6");
  const auto bad_utf8 = b.build(make_row(7, {"x", "\xC3\x28"}));
  EXPECT_EQ(bad_utf8.error, "row 7: column \"b\" is not valid UTF-8");
  Row malformed = make_row(8, {"x", "y"});
  malformed.error = "row 8: broken";
  EXPECT_EQ(b.build(malformed).error, "row 8: broken");

  o.id_column = "nope";
  EXPECT_THROW(RowRequestBuilder(o, {"a", "b"}, true), Error);
  o.id_column = "a";
  RowRequestBuilder with_id(o, {"a", "b"}, true);
  EXPECT_NE(with_id.build(make_row(9, {"", "y"})).error.find("id column \"a\" is empty"), std::string::npos);
  o.model.clear();
  EXPECT_THROW(RowRequestBuilder(o, {"a", "b"}, true), Error);
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(is_valid_utf8("plain é 🙂 中"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\xFF"));
}

RowRequestOptions say_text_options() {
  RowRequestOptions o;
  o.model = "gpt-4o-mini";
  o.template_text = "Say: {text}";
  o.id_column = "id";
  return o;
}

TEST(TableSource, GoodRowsBecomeRequestsErrorRowsGoToTheHandlerEachWithItsRowValues) {
  TempFile csv(".csv", "id,text,extra\n1,hello \"you\",a\n2\n3,\"multi\nline\",c\n");
  std::vector<std::pair<Outcome, std::vector<std::string>>> errors;
  TableSource source(csv.path(), say_text_options(), [&](const Outcome& e, const store::RowContext& ctx) {
    EXPECT_EQ(ctx.model, "gpt-4o-mini");
    errors.emplace_back(e, input_row_values(ctx));
  });
  EXPECT_EQ(source.columns(), (std::vector<std::string>{"id", "text", "extra"}));
  std::vector<engine::SourceItem> items;
  engine::SourceItem item;
  while (source.next(item) == engine::SourceStatus::item) items.push_back(item);

  ASSERT_EQ(items.size(), 2u);
  // Numbered as the lines of a file of the requests: the journal's "@line:N" keys.
  EXPECT_EQ(items[0].line_no, 1u);
  EXPECT_EQ(items[1].line_no, 2u);
  ASSERT_TRUE(items[0].parsed.request);
  ASSERT_TRUE(items[1].parsed.request);
  EXPECT_EQ(items[0].parsed.request->custom_id, "1");
  EXPECT_EQ(items[1].parsed.request->custom_id, "3");
  EXPECT_EQ(items[1].parsed.request->model, "gpt-4o-mini");
  EXPECT_EQ(items[1].parsed.request->endpoint, Endpoint::chat_completions);
  EXPECT_EQ(nlohmann::json::parse(items[1].parsed.request->body)["messages"][0]["content"], "Say: multi\nline");
  store::RowContext ctx;
  ctx.payload = items[1].payload;
  EXPECT_EQ(input_row_values(ctx), (std::vector<std::string>{"3", "multi\nline", "c"}));

  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].first.custom_id, "2");
  EXPECT_EQ(errors[0].first.error, ErrorKind::invalid_input);
  EXPECT_EQ(errors[0].first.error_message, "row 2: column \"text\" is missing");
  EXPECT_EQ(errors[0].second, (std::vector<std::string>{"2", "", ""}));
  EXPECT_EQ(source.stats()->rows, 3u);
  EXPECT_EQ(source.stats()->requests, 2u);
  EXPECT_EQ(source.stats()->error_rows, 1u);
  EXPECT_EQ(input_row_values(store::RowContext{}), std::vector<std::string>{});  // no payload: no values
}

// A table's journal is the one a file of its requests would have: a run of an earlier
// floodgate (which wrote that file) resumes, and the first lines are checked the same way.
TEST(TableSource, IdentityIsThatOfAFileOfTheSameRequests) {
  std::string table = "id,text\n";
  std::uint64_t bad = 0;  // every 7th row has no text: an error row, not a request
  for (int i = 0; i < 3000; ++i) {
    const bool error_row = i % 7 == 5;
    bad += error_row ? 1 : 0;
    table += "r" + std::to_string(i) + (error_row ? "\n" : ",text number " + std::to_string(i) + "\n");
  }
  TempFile csv(".csv", table);
  TableSource source(csv.path(), say_text_options(), nullptr);
  const engine::SourceIdentity from_table = source.identity();

  std::string lines;
  engine::SourceItem item;
  TableSource again(csv.path(), say_text_options(), nullptr);
  while (again.next(item) == engine::SourceStatus::item) lines += batch_line(*item.parsed.request) + "\n";
  TempFile jsonl(".jsonl", lines);
  const engine::SourceIdentity from_file = engine::open_jsonl_source(jsonl.path(), InputOptions{})->identity();

  EXPECT_EQ(from_table.tag, from_file.tag);
  EXPECT_EQ(from_table.legacy_tag, from_file.legacy_tag);
  ASSERT_EQ(from_table.first_lines.size(), from_file.first_lines.size());
  ASSERT_GT(from_table.first_lines.size(), 256u);
  for (std::size_t i = 0; i < from_file.first_lines.size(); ++i) {
    EXPECT_EQ(from_table.first_lines[i].key, from_file.first_lines[i].key) << i;
    EXPECT_EQ(from_table.first_lines[i].hash, from_file.first_lines[i].hash) << i;
    EXPECT_EQ(from_table.first_lines[i].recorded, from_file.first_lines[i].recorded) << i;
  }
  EXPECT_EQ(from_table.path, csv.path());

  // Reading ahead for the identity loses no row and hands them out in order.
  std::vector<std::string> ids;
  while (source.next(item) == engine::SourceStatus::item) ids.push_back(item.parsed.request->custom_id);
  ASSERT_EQ(ids.size(), source.stats()->requests);
  EXPECT_EQ(ids.front(), "r0");
  EXPECT_EQ(ids.back(), "r2999");
  EXPECT_EQ(source.stats()->error_rows, bad);
  EXPECT_EQ(ids.size() + bad, 3000u);
}

TEST(TableSource, ReopenStartsAgainWithoutHandingErrorRowsTwice) {
  TempFile csv(".csv", "id,text\n1,a\n2\n3,c\n");
  int error_rows = 0;
  TableSource source(csv.path(), say_text_options(), [&](const Outcome&, const store::RowContext&) { ++error_rows; });
  engine::SourceItem item;
  while (source.next(item) == engine::SourceStatus::item) {
  }
  EXPECT_EQ(error_rows, 1);
  auto again = source.reopen();
  ASSERT_NE(again, nullptr);
  std::vector<std::string> ids;
  while (again->next(item) == engine::SourceStatus::item) ids.push_back(item.parsed.request->custom_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(error_rows, 1);
}

}  // namespace
}  // namespace floodgate::tables
