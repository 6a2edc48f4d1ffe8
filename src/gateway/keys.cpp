#include "floodgate/gateway/keys.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "floodgate/core/error.hpp"
#include "floodgate/core/text.hpp"

namespace floodgate::gateway {
namespace {

using nlohmann::json;

// Everything an entry may hold; anything else is a typo worth naming.
const std::set<std::string, std::less<>> kFields = {"key",
                                                    "name",
                                                    "lane",
                                                    "may_choose_lane",
                                                    "sees_all_usage",
                                                    "share_of_requests_per_minute",
                                                    "share_of_tokens_per_minute",
                                                    "requests_per_minute",
                                                    "tokens_per_minute",
                                                    "budget_usd"};

class EntryReader {
 public:
  EntryReader(const json& entry, std::string where) : entry_(entry), where_(std::move(where)) {}

  [[noreturn]] void fail(std::string_view field, const std::string& what) const {
    throw Error(where_ + "." + std::string(field) + ": " + what);
  }

  [[nodiscard]] const json* get(std::string_view field) const {
    const auto it = entry_.find(field);
    return it == entry_.end() || it->is_null() ? nullptr : &*it;
  }

  [[nodiscard]] std::optional<std::string> text(std::string_view field) const {
    const json* v = get(field);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) fail(field, std::string("must be a string (it is ") + v->type_name() + ")");
    return v->get<std::string>();
  }

  [[nodiscard]] std::optional<double> share(std::string_view field) const {
    const json* v = get(field);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) fail(field, std::string("must be a number between 0 and 1 (it is ") + v->type_name() + ")");
    const double share = v->get<double>();
    if (!(share > 0 && share <= 1)) fail(field, "must be above 0 and at most 1 (0.2 is 20%), not " + v->dump());
    return share;
  }

  [[nodiscard]] std::optional<std::int64_t> count(std::string_view field) const {
    const json* v = get(field);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer() || v->get<std::int64_t>() <= 0) fail(field, "must be a whole number above 0, not " + v->dump());
    return v->get<std::int64_t>();
  }

  [[nodiscard]] std::optional<double> dollars(std::string_view field) const {
    const json* v = get(field);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number() || !(v->get<double>() > 0)) fail(field, "must be a number of dollars above 0, not " + v->dump());
    return v->get<double>();
  }

  [[nodiscard]] bool flag(std::string_view field, bool fallback) const {
    const json* v = get(field);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) fail(field, "must be true or false, not " + v->dump());
    return v->get<bool>();
  }

 private:
  const json& entry_;
  std::string where_;
};

std::string lane_list(const std::vector<std::string>& lane_names) {
  std::string out;
  for (const auto& name : lane_names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

std::string key_sha256_hex(std::string_view key) {
  // Every call hashes its key (its usage row, its keys-file entry): OpenSSL 3's one-shot
  // digest fetches the algorithm and allocates a context each time, ~10k instructions, 4%
  // of the gateway's CPU per call. A connection's thread meets the same few keys again and
  // again: it keeps the last ones it hashed (a bounded map of its own, no lock).
  thread_local std::unordered_map<std::string, std::string> recent;
  if (const auto it = recent.find(std::string(key)); it != recent.end()) return it->second;
  if (recent.size() >= 256) recent.clear();
  std::array<unsigned char, 32> digest{};
  unsigned int size = 0;
  if (EVP_Digest(key.data(), key.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) {
    throw Error("cannot hash a client key (OpenSSL's SHA-256 failed)");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(64);
  for (const unsigned char byte : digest) {
    hex += kHex[byte >> 4];
    hex += kHex[byte & 0xf];
  }
  recent.emplace(key, hex);
  return hex;
}

std::string anonymous_key_id(std::string_view key) {
  return key.empty() ? "-" : "key#" + key_sha256_hex(key).substr(0, 8);
}

ClientKeys ClientKeys::load(const std::string& path, const std::vector<std::string>& lane_names) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read the keys file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path, lane_names);
}

ClientKeys ClientKeys::parse(std::string_view text, const std::string& path, const std::vector<std::string>& lane_names) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON: " + std::string(json_error_text(e.what())));
  }
  const auto keys = doc.is_object() ? doc.find("keys") : doc.end();
  if (!doc.is_object() || keys == doc.end() || !keys->is_array()) {
    throw Error(path + ": needs {\"keys\": [{\"key\": ..., \"name\": ..., \"lane\": ...}, ...]}");
  }
  ClientKeys out;
  std::set<std::string, std::less<>> names;
  for (std::size_t i = 0; i < keys->size(); ++i) {
    const json& entry = (*keys)[i];
    const std::string where = path + ": keys[" + std::to_string(i) + "]";
    if (!entry.is_object()) throw Error(where + ": must be an object (it is " + entry.type_name() + ")");
    for (const auto& [field, value] : entry.items()) {
      if (!kFields.count(field)) throw Error(where + ": unknown field \"" + field + "\"");
    }
    const EntryReader reader(entry, where);
    const auto key = reader.text("key");
    if (!key || key->empty()) reader.fail("key", "missing (the key clients send as 'Authorization: Bearer KEY')");
    ClientKey client;
    client.name = reader.text("name").value_or("");
    if (client.name.empty()) reader.fail("name", "missing (a name for logs and metrics, e.g. \"web\")");
    if (!names.insert(client.name).second) reader.fail("name", "'" + client.name + "' is used by an earlier entry");
    const std::string lane = reader.text("lane").value_or(lane_names.front());
    const auto lane_at = std::find(lane_names.begin(), lane_names.end(), lane);
    if (lane_at == lane_names.end()) reader.fail("lane", "unknown lane '" + lane + "' (lanes: " + lane_list(lane_names) + ")");
    client.lane = static_cast<std::size_t>(lane_at - lane_names.begin());
    client.may_choose_lane = reader.flag("may_choose_lane", true);
    client.sees_all_usage = reader.flag("sees_all_usage", false);
    client.share_of_requests_per_minute = reader.share("share_of_requests_per_minute");
    client.share_of_tokens_per_minute = reader.share("share_of_tokens_per_minute");
    client.requests_per_minute = reader.count("requests_per_minute");
    client.tokens_per_minute = reader.count("tokens_per_minute");
    client.budget_usd = reader.dollars("budget_usd");
    std::string hash = key_sha256_hex(*key);
    client.log_id = client.name + "#" + hash.substr(0, 8);
    // The other entry is named by its name: never by its key.
    if (const auto [at, fresh] = out.by_hash_.emplace(std::move(hash), client); !fresh) {
      reader.fail("key", "the same key as the entry named '" + at->second.name + "'");
    }
  }
  return out;
}

const ClientKey* ClientKeys::find(std::string_view key) const {
  if (key.empty() || by_hash_.empty()) return nullptr;
  const auto it = by_hash_.find(key_sha256_hex(key));
  return it == by_hash_.end() ? nullptr : &it->second;
}

std::vector<const ClientKey*> ClientKeys::entries() const {
  std::vector<const ClientKey*> out;
  out.reserve(by_hash_.size());
  for (const auto& [hash, key] : by_hash_) out.push_back(&key);
  return out;
}

}  // namespace floodgate::gateway
