#include "sim/content.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "sim/util.hpp"

namespace floodgate::sim {
namespace {

constexpr const char* kWords[] = {
    "the",    "rate",   "limit",  "flood",  "gate",   "river",  "stone",  "light",  "quiet", "model",
    "token",  "batch",  "queue",  "steady", "window", "minute", "answer", "simple", "clear", "north",
    "amber",  "cedar",  "delta",  "ember",  "fable",  "grove",  "harbor", "island", "jolly", "kettle",
    "lantern", "meadow", "nectar", "orbit",  "pebble", "quartz", "ripple", "summit", "timber", "umbra",
    "velvet", "willow", "yonder", "zephyr", "and",    "of",     "to",     "in",     "is",    "with"};
constexpr std::size_t kWordCount = sizeof(kWords) / sizeof(kWords[0]);

std::string words(std::uint64_t seed, std::size_t min_bytes) {
  std::string out;
  std::uint64_t state = seed;
  while (out.size() < min_bytes) {
    state = mix64(state);
    if (!out.empty()) out.push_back(' ');
    out += kWords[state % kWordCount];
  }
  return out;
}

struct SchemaGen {
  const nlohmann::json& root;
  std::uint64_t seed;
  int depth = 0;

  const nlohmann::json* resolve(const nlohmann::json& schema) const {
    const auto ref = schema.find("$ref");
    if (ref == schema.end() || !ref->is_string()) return &schema;
    const std::string& path = ref->get_ref<const std::string&>();
    if (path == "#") return &root;
    if (path.rfind("#/", 0) != 0) return nullptr;
    try {
      return &root.at(nlohmann::json::json_pointer(path.substr(1)));
    } catch (const nlohmann::json::exception&) {
      return nullptr;
    }
  }

  static std::string type_of(const nlohmann::json& schema) {
    const auto type = schema.find("type");
    if (type == schema.end()) {
      if (schema.contains("properties")) return "object";
      if (schema.contains("items")) return "array";
      return "";
    }
    if (type->is_string()) return type->get<std::string>();
    if (type->is_array()) {
      for (const auto& t : *type) {
        if (t.is_string() && t.get<std::string>() != "null") return t.get<std::string>();
      }
      return "null";
    }
    return "";
  }

  nlohmann::json make(const nlohmann::json& in, std::uint64_t s) {
    if (++depth > 32) return nullptr;
    struct Guard {
      int& d;
      ~Guard() { --d; }
    } guard{depth};
    if (in.is_boolean()) return in.get<bool>() ? nlohmann::json("x") : nlohmann::json(nullptr);
    if (!in.is_object()) return nullptr;
    const nlohmann::json* resolved = resolve(in);
    if (resolved == nullptr || !resolved->is_object()) return nullptr;
    const nlohmann::json& schema = *resolved;
    if (schema.contains("const")) return schema.at("const");
    if (const auto e = schema.find("enum"); e != schema.end() && e->is_array() && !e->empty()) {
      return (*e)[static_cast<std::size_t>(s % e->size())];
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (const auto alt = schema.find(key); alt != schema.end() && alt->is_array() && !alt->empty()) {
        return make((*alt)[0], s);
      }
    }
    if (const auto all = schema.find("allOf"); all != schema.end() && all->is_array() && !all->empty()) {
      nlohmann::json merged = nlohmann::json::object();
      for (const auto& part : *all) {
        nlohmann::json v = make(part, s);
        if (v.is_object() && merged.is_object()) {
          merged.update(v);
        } else {
          return v;
        }
      }
      return merged;
    }
    // A nullable type (how strict mode writes an optional field) is answered with null now
    // and then, as a model does when the text holds no value for it.
    if (const auto t = schema.find("type"); t != schema.end() && t->is_array() && (s >> 7) % 3 == 0) {
      for (const auto& v : *t) {
        if (v == "null") return nullptr;
      }
    }
    const std::string type = type_of(schema);
    if (type == "object") {
      nlohmann::json obj = nlohmann::json::object();
      const auto props = schema.find("properties");
      std::vector<std::string> names;
      if (const auto req = schema.find("required"); req != schema.end() && req->is_array()) {
        for (const auto& r : *req) {
          if (r.is_string()) names.push_back(r.get<std::string>());
        }
      }
      // Strict structured outputs list every property as required; fill the optional ones
      // too when the schema is small, so answers look like real ones.
      if (props != schema.end() && props->is_object()) {
        for (const auto& [name, sub] : props->items()) {
          if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
        }
      }
      std::uint64_t k = s;
      for (const auto& name : names) {
        k = mix64(k);
        if (props != schema.end() && props->is_object() && props->contains(name)) {
          obj[name] = make(props->at(name), k);
        } else {
          obj[name] = "x";
        }
      }
      return obj;
    }
    if (type == "array") {
      nlohmann::json arr = nlohmann::json::array();
      std::size_t count = 1;
      if (const auto mn = schema.find("minItems"); mn != schema.end() && mn->is_number_unsigned()) {
        count = std::max<std::size_t>(count, mn->get<std::size_t>());
      }
      if (const auto mx = schema.find("maxItems"); mx != schema.end() && mx->is_number_unsigned()) {
        count = std::min<std::size_t>(count, mx->get<std::size_t>());
      }
      count = std::min<std::size_t>(count, 64);
      const auto items = schema.find("items");
      std::uint64_t k = s;
      for (std::size_t i = 0; i < count; ++i) {
        k = mix64(k);
        arr.push_back(items != schema.end() ? make(*items, k) : nlohmann::json("x"));
      }
      return arr;
    }
    if (type == "string") {
      std::size_t min_len = 1;
      std::size_t max_len = 24;
      if (const auto mn = schema.find("minLength"); mn != schema.end() && mn->is_number_unsigned()) {
        min_len = mn->get<std::size_t>();
      }
      if (const auto mx = schema.find("maxLength"); mx != schema.end() && mx->is_number_unsigned()) {
        max_len = mx->get<std::size_t>();
      }
      min_len = std::min<std::size_t>(min_len, 4096);
      std::string text = words(s, std::max<std::size_t>(min_len, 3));
      if (text.size() > std::max(max_len, min_len)) text.resize(std::max(max_len, min_len));
      while (!text.empty() && text.back() == ' ' && text.size() > min_len) text.pop_back();
      return text;
    }
    if (type == "integer" || type == "number") {
      double lo = 0;
      double hi = 100;
      if (const auto mn = schema.find("minimum"); mn != schema.end() && mn->is_number()) lo = mn->get<double>();
      if (const auto mx = schema.find("maximum"); mx != schema.end() && mx->is_number()) hi = mx->get<double>();
      if (const auto mn = schema.find("exclusiveMinimum"); mn != schema.end() && mn->is_number()) lo = mn->get<double>() + 1;
      if (const auto mx = schema.find("exclusiveMaximum"); mx != schema.end() && mx->is_number()) hi = mx->get<double>() - 1;
      if (hi < lo) hi = lo;
      if (type == "integer") {
        const double first = std::ceil(lo);
        const double span = std::floor(hi) - first;
        const double pick = span > 0 ? first + static_cast<double>(s % (static_cast<std::uint64_t>(std::min(span, 1e6)) + 1)) : first;
        return static_cast<std::int64_t>(pick);
      }
      return lo + (hi - lo) * 0.5;
    }
    if (type == "boolean") return (s & 1) != 0;
    if (type == "null") return nullptr;
    return "x";  // no type: anything is valid
  }
};

}  // namespace

std::int64_t natural_completion_tokens(std::uint64_t seed) noexcept {
  return 8 + static_cast<std::int64_t>(mix64(seed ^ 0x5eed) % 57);
}

std::string completion_text(std::uint64_t seed, std::int64_t tokens) {
  if (tokens <= 0) return {};
  const auto bytes = static_cast<std::size_t>(tokens) * 4;
  std::string text = words(seed, bytes);
  text.resize(bytes);
  if (text.back() == ' ') text.back() = '.';
  text.front() = static_cast<char>(std::toupper(static_cast<unsigned char>(text.front())));
  return text;
}

nlohmann::json schema_instance(const nlohmann::json& schema, std::uint64_t seed) {
  SchemaGen gen{schema, seed};
  return gen.make(schema, seed);
}

std::string invalid_schema_content(const nlohmann::json& schema, std::uint64_t seed) {
  nlohmann::json valid = schema_instance(schema, seed);
  const nlohmann::json* root = &schema;
  if (const auto req = schema.find("required"); req != schema.end() && req->is_array() && !req->empty() &&
                                                valid.is_object() && (*req)[0].is_string()) {
    valid.erase((*req)[0].get<std::string>());
    return valid.dump();
  }
  const std::string type = root->is_object() && root->contains("type") && root->at("type").is_string()
                               ? root->at("type").get<std::string>()
                               : "";
  if (type == "object") return "[]";
  if (!type.empty()) return "{}";
  return "{\"truncated\": ";  // accepts anything: only broken JSON violates it
}

std::vector<float> embedding_vector(std::uint64_t seed, int dim) {
  std::vector<float> v(static_cast<std::size_t>(std::max(dim, 1)));
  double norm = 0;
  std::uint64_t state = seed;
  for (float& x : v) {
    state = mix64(state);
    x = static_cast<float>(unit_interval(state) * 2.0 - 1.0);
    norm += static_cast<double>(x) * x;
  }
  const double scale = norm > 0 ? 1.0 / std::sqrt(norm) : 1.0;
  for (float& x : v) x = static_cast<float>(x * scale);
  return v;
}

std::vector<std::string> transcript_words(std::uint64_t seed, double seconds) {
  const auto count = static_cast<std::size_t>(std::clamp(seconds * 2.5, 1.0, 20000.0));
  std::vector<std::string> out;
  out.reserve(count);
  std::uint64_t state = seed;
  for (std::size_t i = 0; i < count; ++i) {
    state = mix64(state);
    out.emplace_back(kWords[state % kWordCount]);
  }
  return out;
}

}  // namespace floodgate::sim
