#include "sim/strict_schema.hpp"

#include <vector>

#include <nlohmann/json.hpp>

namespace floodgate::sim {
namespace {

using nlohmann::json;

// One step of the path, as the API prints it: a Python tuple item ('properties' or 0).
struct Step {
  std::string key;
  bool index = false;
};

std::string context_of(const std::vector<Step>& path) {
  std::string out = "(";
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (i > 0) out += ", ";
    out += path[i].index ? path[i].key : "'" + path[i].key + "'";
  }
  if (path.size() == 1) out += ",";
  return out + ")";
}

bool is_object_type(const json& node) {
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

std::string check(const json& node, std::vector<Step>& path) {
  if (!node.is_object()) return {};
  if (is_object_type(node)) {
    const auto ap = node.find("additionalProperties");
    if (ap == node.end() || *ap != false) {
      return "In context=" + context_of(path) + ", 'additionalProperties' is required to be supplied and to be false.";
    }
    if (const auto props = node.find("properties"); props != node.end() && props->is_object()) {
      const auto req = node.find("required");
      for (const auto& [key, _] : props->items()) {
        bool listed = false;
        if (req != node.end() && req->is_array()) {
          for (const auto& r : *req) listed = listed || r == key;
        }
        if (!listed) {
          return "In context=" + context_of(path) +
                 ", 'required' is required to be supplied and to be an array including every key in properties. "
                 "Missing '" + key + "'.";
        }
      }
    }
  }
  auto visit = [&](const json& sub, std::initializer_list<Step> steps) {
    for (const auto& s : steps) path.push_back(s);
    std::string problem = check(sub, path);
    path.resize(path.size() - steps.size());
    return problem;
  };
  for (const char* map_key : {"properties", "$defs", "definitions"}) {
    if (const auto it = node.find(map_key); it != node.end() && it->is_object()) {
      for (const auto& [key, sub] : it->items()) {
        if (auto p = visit(sub, {{map_key}, {key}}); !p.empty()) return p;
      }
    }
  }
  for (const char* list_key : {"anyOf", "prefixItems"}) {
    if (const auto it = node.find(list_key); it != node.end() && it->is_array()) {
      for (std::size_t i = 0; i < it->size(); ++i) {
        if (auto p = visit((*it)[i], {{list_key}, {std::to_string(i), true}}); !p.empty()) return p;
      }
    }
  }
  if (const auto it = node.find("items"); it != node.end()) {
    if (auto p = visit(*it, {{"items"}}); !p.empty()) return p;
  }
  return {};
}

}  // namespace

std::string strict_schema_error(const json& schema, std::string_view name) {
  const std::string prefix = "Invalid schema for response_format '" + std::string(name) + "': ";
  const auto t = schema.is_object() ? schema.find("type") : schema.end();
  if (!schema.is_object() || t == schema.end() || *t != "object") {
    const std::string got = !schema.is_object() || t == schema.end() ? "None" : t->is_string() ? t->get<std::string>() : t->dump();
    return prefix + "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"" + got + "\"'.";
  }
  std::vector<Step> path;
  std::string problem = check(schema, path);
  return problem.empty() ? problem : prefix + problem;
}

}  // namespace floodgate::sim
