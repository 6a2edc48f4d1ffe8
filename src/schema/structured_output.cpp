#include "floodgate/schema/structured_output.hpp"

#include <string.h>  // memmem

#include <algorithm>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "floodgate/core/error.hpp"
#include "floodgate/core/text.hpp"

namespace floodgate::schema {
namespace {

using ordered = nlohmann::ordered_json;

bool is_object_schema(const ordered& node) {
  if (node.contains("properties")) return true;
  const auto t = node.find("type");
  if (t == node.end()) return false;
  if (t->is_string()) return *t == "object";
  if (t->is_array()) {
    for (const auto& v : *t) {
      if (v == "object") return true;
    }
  }
  return false;
}

std::string json_quoted(std::string_view text) { return ordered(std::string(text)).dump(); }

// The property's schema, also allowing null: how an optional property is written in strict
// mode, where every property must be listed in "required".
void make_nullable(ordered& sub) {
  const auto add_null_to_enum = [&sub] {
    if (auto e = sub.find("enum"); e != sub.end() && e->is_array()) {
      for (const auto& v : *e) {
        if (v.is_null()) return;
      }
      e->push_back(nullptr);
    }
  };
  if (sub.is_object() && !sub.contains("const")) {
    if (auto t = sub.find("type"); t != sub.end()) {
      if (t->is_string()) {
        if (*t == "null") return;
        *t = ordered::array({t->get<std::string>(), "null"});
        add_null_to_enum();
        return;
      }
      if (t->is_array()) {
        for (const auto& v : *t) {
          if (v == "null") return;
        }
        t->push_back("null");
        add_null_to_enum();
        return;
      }
    } else if (auto any = sub.find("anyOf"); any != sub.end() && any->is_array()) {
      for (const auto& alt : *any) {
        if (alt.is_object() && alt.value("type", ordered()) == "null") return;
      }
      any->push_back(ordered{{"type", "null"}});
      return;
    }
  }
  // $ref, const, or no type at all: a union of the schema as written and null.
  ordered wrapped;
  wrapped["anyOf"] = ordered::array({std::move(sub), ordered{{"type", "null"}}});
  sub = std::move(wrapped);
}

// Makes `node` (at JSON pointer `path`) follow OpenAI's strict-mode rules: every object schema
// has "additionalProperties": false and lists every property in "required" (the ones it did
// not list become nullable). Throws floodgate::Error naming the rule and the path for what
// cannot be made strict without changing what the schema means.
void strictify(ordered& node, const std::string& path) {
  if (!node.is_object()) return;
  if (is_object_schema(node)) {
    const auto ap = node.find("additionalProperties");
    if (ap == node.end()) {
      node["additionalProperties"] = false;
    } else if (*ap != false) {
      throw Error((path.empty() ? "/" : path) +
                  ": strict mode needs \"additionalProperties\": false on every object, this one has " +
                  ap->dump() + " (list its keys under \"properties\" instead)");
    }
    if (const auto props = node.find("properties"); props != node.end() && props->is_object()) {
      std::vector<std::string> listed;
      if (const auto req = node.find("required"); req != node.end() && req->is_array()) {
        for (const auto& r : *req) {
          if (r.is_string()) listed.push_back(r.get<std::string>());
        }
      }
      ordered required = ordered::array();
      for (auto& [name, sub] : props->items()) {
        if (std::find(listed.begin(), listed.end(), name) == listed.end()) make_nullable(sub);
        required.push_back(name);
      }
      for (const auto& name : listed) {
        if (!props->contains(name)) {
          throw Error(path + "/required: " + json_quoted(name) +
                      " is required but is not among the properties (strict mode needs \"required\" to list "
                      "exactly the properties)");
        }
      }
      node["required"] = std::move(required);
    }
  }
  for (const char* map_key : {"properties", "patternProperties", "$defs", "definitions"}) {
    if (auto it = node.find(map_key); it != node.end() && it->is_object()) {
      for (auto& [key, sub] : it->items()) strictify(sub, path + "/" + map_key + "/" + key);
    }
  }
  for (const char* list_key : {"anyOf", "allOf", "oneOf", "prefixItems"}) {
    if (auto it = node.find(list_key); it != node.end() && it->is_array()) {
      for (std::size_t i = 0; i < it->size(); ++i) strictify((*it)[i], path + "/" + list_key + "/" + std::to_string(i));
    }
  }
  for (const char* one_key : {"items", "additionalProperties", "not", "if", "then", "else", "contains"}) {
    if (auto it = node.find(one_key); it != node.end()) {
      if (it->is_array()) {
        for (std::size_t i = 0; i < it->size(); ++i) strictify((*it)[i], path + "/" + one_key + "/" + std::to_string(i));
      } else {
        strictify(*it, path + "/" + one_key);
      }
    }
  }
}

void strictify_root(ordered& doc) {
  const auto t = doc.find("type");
  if (t == doc.end() && doc.contains("properties")) {
    doc["type"] = "object";
  } else if (t == doc.end() || *t != "object") {
    throw Error(std::string("/: strict mode needs the schema's root to be an object (\"type\": \"object\"), this one ") +
                (t == doc.end() ? std::string("has no \"type\"") : "has \"type\": " + t->dump()) +
                " (wrap it in an object with one property)");
  }
  strictify(doc, "");
}

ordered parse_schema(std::string_view text) {
  ordered doc;
  try {
    doc = ordered::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error("the schema is not valid JSON: " + std::string(json_error_text(e.what())));
  }
  if (!doc.is_object()) throw Error("the schema is not a JSON object (it is " + std::string(doc.type_name()) + ")");
  return doc;
}

std::string pointer_of(const std::vector<std::string>& context) {
  std::string out;
  for (const auto& part : context) {
    if (part == "<root>") continue;
    // valijson writes "[name]" or "[3]"
    std::string_view p = part;
    if (p.size() >= 2 && p.front() == '[' && p.back() == ']') p = p.substr(1, p.size() - 2);
    if (p.size() >= 2 && p.front() == '"' && p.back() == '"') p = p.substr(1, p.size() - 2);
    out.push_back('/');
    out.append(p);
  }
  return out.empty() ? "/" : out;
}

}  // namespace

std::string make_strict(std::string_view schema_json) {
  auto doc = parse_schema(schema_json);
  strictify_root(doc);
  return doc.dump();
}

std::string response_format(std::string_view schema_json, std::string_view name) {
  if (name.empty() || name.size() > 64) throw Error("the schema name must have 1 to 64 characters");
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) throw Error("the schema name \"" + std::string(name) + "\" may hold only letters, digits, _ and -");
  }
  auto schema = parse_schema(schema_json);
  strictify_root(schema);
  ordered rf;
  rf["type"] = "json_schema";
  rf["json_schema"]["name"] = std::string(name);
  rf["json_schema"]["schema"] = std::move(schema);
  rf["json_schema"]["strict"] = true;
  return rf.dump();
}

std::vector<std::string> top_level_properties(std::string_view schema_json) {
  const auto doc = parse_schema(schema_json);
  std::vector<std::string> out;
  if (const auto it = doc.find("properties"); it != doc.end() && it->is_object()) {
    for (const auto& [name, _] : it->items()) out.push_back(name);
  }
  return out;
}

std::vector<std::string> top_level_property_types(std::string_view schema_json) {
  const auto doc = parse_schema(schema_json);
  std::vector<std::string> out;
  if (const auto it = doc.find("properties"); it != doc.end() && it->is_object()) {
    for (const auto& [_, sub] : it->items()) {
      std::string type;
      if (sub.is_object()) {
        if (const auto t = sub.find("type"); t != sub.end()) {
          if (t->is_string()) {
            type = t->get<std::string>();
          } else if (t->is_array()) {
            std::vector<std::string> non_null;
            for (const auto& v : *t) {
              if (v.is_string() && v != "null") non_null.push_back(v.get<std::string>());
            }
            if (non_null.size() == 1) type = non_null[0];
          }
        }
      }
      out.push_back(type);
    }
  }
  return out;
}

struct Validator::Impl {
  nlohmann::json schema_doc;
  valijson::Schema schema;
  mutable std::mutex mutex;
  mutable valijson::Validator validator;
};

Validator::Validator(std::string_view schema_json) : impl_(std::make_unique<Impl>()) {
  impl_->schema_doc = nlohmann::json(parse_schema(schema_json));
  try {
    valijson::SchemaParser parser;
    const valijson::adapters::NlohmannJsonAdapter adapter(impl_->schema_doc);
    parser.populateSchema(adapter, impl_->schema);
  } catch (const std::exception& e) {
    throw Error(std::string("the schema cannot be used: ") + e.what());
  }
}

Validator::~Validator() = default;
Validator::Validator(Validator&&) noexcept = default;
Validator& Validator::operator=(Validator&&) noexcept = default;

std::string Validator::validate(std::string_view instance_json) const {
  const auto doc = nlohmann::json::parse(instance_json, nullptr, false);
  if (doc.is_discarded()) {
    std::string head(instance_json.substr(0, 80));
    return "not JSON: \"" + head + (instance_json.size() > 80 ? "...\"" : "\"");
  }
  valijson::ValidationResults results;
  const valijson::adapters::NlohmannJsonAdapter target(doc);
  bool valid = false;
  {
    const std::lock_guard lock(impl_->mutex);
    valid = impl_->validator.validate(impl_->schema, target, &results);
  }
  if (valid) return {};
  // valijson reports each failing level from the root down; the deepest errors say the most.
  std::string message;
  std::size_t shown = 0;
  std::size_t deepest = 0;
  for (const auto& e : results) deepest = std::max(deepest, e.context.size());
  for (const auto& e : results) {
    if (e.context.size() != deepest) continue;
    if (shown++ == 3) {
      message += "; ...";
      break;
    }
    if (!message.empty()) message += "; ";
    message += pointer_of(e.context) + ": " + e.description;
  }
  return message.empty() ? "does not match the schema" : message;
}

namespace {

const nlohmann::json* first_message(const nlohmann::json& doc) {
  const auto choices = doc.find("choices");
  if (choices == doc.end() || !choices->is_array() || choices->empty()) return nullptr;
  const auto& first = (*choices)[0];
  if (!first.is_object()) return nullptr;
  const auto msg = first.find("message");
  if (msg == first.end() || !msg->is_object()) return nullptr;
  return &*msg;
}

}  // namespace

std::string answer_content(std::string_view response_body) {
  const auto doc = nlohmann::json::parse(response_body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return {};
  const auto* msg = first_message(doc);
  if (msg == nullptr) return {};
  const auto c = msg->find("content");
  return c != msg->end() && c->is_string() ? c->get<std::string>() : std::string{};
}

Verdict check_chat_answer(std::string_view response_body, const Validator* validator, bool want_json_object) {
  const bool checking = validator != nullptr || want_json_object;
  const auto doc = nlohmann::json::parse(response_body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return checking ? Verdict{ErrorKind::schema_violation, "the response body is not JSON"} : Verdict{};
  }
  const auto* msg = first_message(doc);
  if (msg == nullptr) {
    return checking ? Verdict{ErrorKind::schema_violation, "the response has no choices[0].message"} : Verdict{};
  }
  if (const auto r = msg->find("refusal"); r != msg->end() && r->is_string() && !r->get_ref<const std::string&>().empty()) {
    return {ErrorKind::refusal, r->get<std::string>()};
  }
  if (!checking) return {};
  const auto c = msg->find("content");
  if (c == msg->end() || !c->is_string()) return {ErrorKind::schema_violation, "the answer has no content"};
  const auto& content = c->get_ref<const std::string&>();
  if (validator != nullptr) {
    std::string problem = validator->validate(content);
    if (!problem.empty()) return {ErrorKind::schema_violation, std::move(problem)};
    return {};
  }
  const auto parsed = nlohmann::json::parse(content, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return {ErrorKind::schema_violation, "json_object was requested but the content is not a JSON object"};
  }
  return {};
}

RequestedFormat requested_format(std::string_view request_body) {
  RequestedFormat out;
  const auto doc = nlohmann::json::parse(request_body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return out;
  const auto rf = doc.find("response_format");
  if (rf == doc.end() || !rf->is_object()) return out;
  const auto type = rf->value("type", std::string{});
  if (type == "json_object") {
    out.type = RequestedFormat::Type::json_object;
  } else if (type == "json_schema") {
    const auto js = rf->find("json_schema");
    if (js != rf->end() && js->is_object()) {
      const auto s = js->find("schema");
      if (s != js->end() && s->is_object()) {
        out.type = RequestedFormat::Type::json_schema;
        out.schema_json = s->dump();
      }
    }
  }
  return out;
}

struct AnswerChecker::Impl {
  std::optional<Validator> fixed;
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<Validator>, std::less<>> by_schema;  // per-line schemas
  std::map<std::string, std::string, std::less<>> broken;                   // schema -> why unusable
};

namespace {

// string_view::find() stops at every occurrence of the needle's first byte (a quote, here:
// dozens per body) to compare the rest; glibc's memmem() skips ahead (-0.5k instructions
// per answer on the two searches below, which every answer goes through).
std::size_t find_text(std::string_view haystack, std::string_view needle, std::size_t from) noexcept {
  if (from > haystack.size()) return std::string_view::npos;
  if (needle.empty()) return from;
  // Also keeps an empty view's null data() away from memmem (UBSan: "null pointer passed").
  if (haystack.size() - from < needle.size()) return std::string_view::npos;
  const void* at = ::memmem(haystack.data() + from, haystack.size() - from, needle.data(), needle.size());
  return at == nullptr ? std::string_view::npos : static_cast<std::size_t>(static_cast<const char*>(at) - haystack.data());
}

// False when every "refusal" key in the body is followed by null (what OpenAI and the
// simulator send on every ordinary answer), so plain answers skip the JSON parse; true
// (parse and look) on anything else.
bool may_carry_refusal(std::string_view body) noexcept {
  constexpr std::string_view key = "\"refusal\"";
  for (auto pos = find_text(body, key, 0); pos != std::string_view::npos; pos = find_text(body, key, pos + key.size())) {
    std::size_t i = pos + key.size();
    while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r' || body[i] == ':')) ++i;
    if (body.substr(i, 4) != "null") return true;
  }
  return false;
}

}  // namespace

AnswerChecker::AnswerChecker(std::optional<std::string> fixed_schema_json) : impl_(std::make_unique<Impl>()) {
  if (fixed_schema_json) impl_->fixed.emplace(*fixed_schema_json);
}

AnswerChecker::~AnswerChecker() = default;

Verdict AnswerChecker::check(std::string_view request_body, std::string_view response_body) {
  if (impl_->fixed) return check_chat_answer(response_body, &*impl_->fixed, false);
  // Fast path for plain requests: nothing to check unless the body asks for a format or the
  // answer carries a refusal (both are visible as plain substrings).
  if (find_text(request_body, "\"response_format\"", 0) == std::string_view::npos && !may_carry_refusal(response_body)) {
    return {};
  }
  const auto format = requested_format(request_body);
  if (format.type == RequestedFormat::Type::text) return check_chat_answer(response_body, nullptr, false);
  if (format.type == RequestedFormat::Type::json_object) return check_chat_answer(response_body, nullptr, true);
  std::shared_ptr<Validator> validator;
  {
    const std::lock_guard lock(impl_->mutex);
    if (const auto b = impl_->broken.find(format.schema_json); b != impl_->broken.end()) {
      return {ErrorKind::schema_violation, b->second};
    }
    auto& slot = impl_->by_schema[format.schema_json];
    if (!slot) {
      try {
        slot = std::make_shared<Validator>(format.schema_json);
      } catch (const Error& e) {
        impl_->by_schema.erase(format.schema_json);
        impl_->broken[format.schema_json] = e.what();
        return {ErrorKind::schema_violation, e.what()};
      }
    }
    validator = slot;
  }
  return check_chat_answer(response_body, validator.get(), false);
}

}  // namespace floodgate::schema
