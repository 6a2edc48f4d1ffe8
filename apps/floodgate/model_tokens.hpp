#pragma once
// "90000" (every model) or "gpt-4o=90000" (one model), repeatable: the enqueued-token limits
// of `floodgate batch --queue-limit` and `floodgate sim --batch-queue-limit`.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "floodgate/core/error.hpp"
#include "floodgate/core/exit_codes.hpp"

namespace floodgate::cli {

inline void parse_model_tokens(const std::vector<std::string>& specs, const char* flag,
                               std::map<std::string, std::int64_t>& per_model, std::int64_t& every_model) {
  for (const auto& spec : specs) {
    const std::size_t eq = spec.rfind('=');
    const std::string number = eq == std::string::npos ? spec : spec.substr(eq + 1);
    char* end = nullptr;
    const long long tokens = std::strtoll(number.c_str(), &end, 10);
    if (number.empty() || *end != '\0' || tokens <= 0) {
      throw Error(std::string("invalid ") + flag + " '" + spec + "' (e.g. 2000000 or gpt-4o=90000)", exit_code::usage);
    }
    if (eq == std::string::npos) {
      every_model = tokens;
    } else {
      per_model[spec.substr(0, eq)] = tokens;
    }
  }
}

}  // namespace floodgate::cli
