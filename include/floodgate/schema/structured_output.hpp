#pragma once
// Structured outputs: ask for JSON that follows a schema, then check that the answer does.
//
// Asking: `--schema schema.json` becomes the request's
//   "response_format": {"type":"json_schema","json_schema":{"name":N,"schema":S,"strict":true}}
// where S is the user's schema in the form OpenAI's strict mode accepts (make_strict()):
//   - the root is an object ("type": "object"; added when the root has "properties" only);
//   - every object schema has "additionalProperties": false (added where omitted; anything
//     else is refused, since the API rejects it);
//   - every object schema lists all its properties in "required"; a property the schema did
//     not require becomes nullable ("type": ["string","null"], null added to an "enum", or
//     {"anyOf":[S,{"type":"null"}]} for a $ref, const or untyped schema), so "may be absent"
//     turns into "may be null", the strict-mode way of writing an optional field.
// This is done recursively (properties, items, prefixItems, anyOf/allOf/oneOf, $defs,
// definitions, ...). What cannot be made strict is refused with the rule and the JSON pointer
// of the offending schema, e.g. "/properties/extra: strict mode needs "additionalProperties":
// false on every object, this one has true". Answers are then checked against S, so an
// optional field answered with null is valid.
// Key order is preserved, so the output table's columns follow the schema's property order.
//
// Checking: every 2xx chat answer goes through check_chat_answer():
//   - choices[0].message.refusal set            -> ErrorKind::refusal, the refusal text;
//   - content not JSON, or not valid against S   -> ErrorKind::schema_violation with the
//     validator's message (valijson, JSON Schema draft 7);
//   - otherwise                                  -> ErrorKind::none.
// An AnswerChecker does this for a whole run: with a fixed schema (--schema) or with the
// schema each request line carries in its own response_format (cached per distinct schema).
// A line asking for {"type":"json_object"} is checked to answer with a JSON object.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/error_kind.hpp"

namespace floodgate::schema {

// The schema in strict form (see above). Throws floodgate::Error when the text is not JSON
// (with the parser's line and column), not an object, or cannot be made strict.
[[nodiscard]] std::string make_strict(std::string_view schema_json);

// The response_format object (JSON text) for `schema_json`, made strict. `name` must match
// ^[a-zA-Z0-9_-]{1,64}$ as the API requires; an invalid name throws floodgate::Error.
[[nodiscard]] std::string response_format(std::string_view schema_json, std::string_view name = "answer");

// Names of the schema's top-level "properties", in the schema's order.
[[nodiscard]] std::vector<std::string> top_level_properties(std::string_view schema_json);

// The "type" of each top-level property, aligned with top_level_properties(): "string",
// "integer", "number", "boolean", "object", "array", or "" when absent or a union
// (["string","null"] gives "string").
[[nodiscard]] std::vector<std::string> top_level_property_types(std::string_view schema_json);

// A compiled JSON Schema (valijson). Throws floodgate::Error for a schema valijson cannot use.
class Validator {
 public:
  explicit Validator(std::string_view schema_json);
  ~Validator();
  Validator(Validator&&) noexcept;
  Validator& operator=(Validator&&) noexcept;

  // Empty when `instance_json` is valid; otherwise what is wrong, e.g.
  // "not JSON: ..." or "/age: Value is not an integer".
  [[nodiscard]] std::string validate(std::string_view instance_json) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct Verdict {
  ErrorKind kind = ErrorKind::none;  // none, schema_violation or refusal
  std::string message;
  [[nodiscard]] bool ok() const noexcept { return kind == ErrorKind::none; }
};

// Checks a Chat Completions response body against `validator` (nullptr: only refusals and,
// when `want_json_object`, that content is a JSON object).
[[nodiscard]] Verdict check_chat_answer(std::string_view response_body, const Validator* validator,
                                        bool want_json_object = false);

// The assistant message's content (choices[0].message.content), empty when absent.
[[nodiscard]] std::string answer_content(std::string_view response_body);

// What a request body's own response_format asks for.
struct RequestedFormat {
  enum class Type { text, json_object, json_schema } type = Type::text;
  std::string schema_json;  // for json_schema
};
[[nodiscard]] RequestedFormat requested_format(std::string_view request_body);

class AnswerChecker {
 public:
  // `fixed_schema_json`: the --schema for every request; nullopt: each request's own
  // response_format decides.
  explicit AnswerChecker(std::optional<std::string> fixed_schema_json = std::nullopt);
  ~AnswerChecker();
  AnswerChecker(const AnswerChecker&) = delete;
  AnswerChecker& operator=(const AnswerChecker&) = delete;

  [[nodiscard]] Verdict check(std::string_view request_body, std::string_view response_body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace floodgate::schema
