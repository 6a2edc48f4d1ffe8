#pragma once
// Client keys: who may use the gateway, and in which lane. The keys file (--keys FILE) maps
// each gateway key to a name, a lane, optional sub-limits and a budget:
//
//   {"keys": [
//     {"key": "fg-web-4f2a...", "name": "web", "lane": "interactive"},
//     {"key": "fg-nightly-9c1e...", "name": "nightly", "lane": "batch", "may_choose_lane": false,
//      "share_of_tokens_per_minute": 0.2, "requests_per_minute": 600, "budget_usd": 50},
//     {"key": "fg-ops-...", "name": "ops", "sees_all_usage": true}
//   ]}
//
// Without a file the gateway accepts any key (or none), and only on a loopback address.
//
// Keys are secrets: a ClientKeys keeps only their SHA-256 (lookup) and a short id for logs
// and metrics ("web#3f9a1c2e": the entry's name and the first 8 hex digits of the hash);
// neither the file's text nor an error message ever repeats a key.
//
// Parsing errors name the file and where: a JSON syntax error its line and column (as
// core/text.hpp's json_error_text gives them), an entry's error its index and field
// ("keys.json: keys[2].lane: unknown lane 'fast' (lanes: interactive, batch)").

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace floodgate::gateway {

struct ClientKey {
  std::string name;        // from the file, for people ("web"); unique
  std::string log_id;      // "web#3f9a1c2e": what logs, metrics and errors may show
  std::size_t lane = 0;    // index into the gateway's lanes
  bool may_choose_lane = true;  // x-floodgate-lane / service_tier may pick another lane
  bool sees_all_usage = false;  // GET /v1/floodgate/usage shows every key's row, not only its own
  // Sub-limits (key_limits.hpp) and the budget (usage.hpp), enforced before the lane:
  std::optional<double> share_of_requests_per_minute;  // (0, 1]
  std::optional<double> share_of_tokens_per_minute;    // (0, 1]
  std::optional<std::int64_t> requests_per_minute;     // > 0
  std::optional<std::int64_t> tokens_per_minute;       // > 0
  std::optional<double> budget_usd;                     // > 0
};

// "3f9a1c2e...": the SHA-256 of `key`, 64 lower-case hex digits.
[[nodiscard]] std::string key_sha256_hex(std::string_view key);
// What logs show of a key that is in no file: "key#3f9a1c2e", or "-" for no key.
[[nodiscard]] std::string anonymous_key_id(std::string_view key);

class ClientKeys {
 public:
  // Reads and checks a keys file against the gateway's lane names (their index is the
  // lane's). Throws floodgate::Error naming the file and the place.
  static ClientKeys load(const std::string& path, const std::vector<std::string>& lane_names);
  // The same from text (`path` is only named in errors).
  static ClientKeys parse(std::string_view text, const std::string& path, const std::vector<std::string>& lane_names);

  // The entry of this key (the Bearer token as sent), or null.
  [[nodiscard]] const ClientKey* find(std::string_view key) const;
  [[nodiscard]] std::size_t size() const noexcept { return by_hash_.size(); }
  // Every entry, in no particular order.
  [[nodiscard]] std::vector<const ClientKey*> entries() const;

 private:
  std::unordered_map<std::string, ClientKey> by_hash_;
};

}  // namespace floodgate::gateway
