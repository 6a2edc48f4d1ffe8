#pragma once
// Sub-limits per client key (the keys file's requests_per_minute, tokens_per_minute and
// share_of_{requests,tokens}_per_minute), kept with the project's limit::RateLimiter (its
// 60 s window: no 60 s ever holds more than the limit), one per key for the absolute
// limits (over all the key's models) and one per key and model for the shares (of that
// model's upstream limit, which the caller gives when it knows it).
//
// A request's cost is one request and its pacing charge in tokens (the engine's estimator
// and OpenAI's charge model: input + max_tokens | 16); acquire() reserves it in both limiters
// or in neither, and says when it could go if not now. settle() corrects the tokens to the
// call's usage (the unused part is given back: a sub-limit counts what the key used), or
// gives everything back for a call that never went upstream.
// When a key has shares but the model's upstream limit is not known, only its absolute
// limits apply; acquire() says so (share_unknown) the first time for each key and model,
// for one line in the log.
// Pure logic on `now` (tests: ManualClock); thread-safe (one mutex).

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "floodgate/core/clock.hpp"
#include "floodgate/gateway/keys.hpp"
#include "floodgate/limit/rate_limiter.hpp"

namespace floodgate::gateway {

// Whether the key has any sub-limit at all (else acquire() is not worth the estimate).
[[nodiscard]] bool has_sub_limits(const ClientKey& key) noexcept;

class KeyLimiter {
 public:
  // What acquire() reserved, to hand back to settle().
  struct Ticket {
    std::string absolute_at;  // the limiter's name ("" when none was used)
    limit::Grant absolute;
    std::string share_at;
    limit::Grant share;
  };
  struct Verdict {
    enum class Kind : std::uint8_t { admitted, wait, cannot_fit } kind = Kind::admitted;
    TimePoint not_before{};  // wait: the earliest time it could go
    std::string limit;       // which sub-limit decided a wait or cannot_fit: "requests_per_minute 600"
    bool share_unknown = false;  // the key's shares were skipped for this model, said once
    Ticket ticket;               // admitted
  };

  // `upstream`: the model's upstream limits (0 = unknown), for the shares.
  [[nodiscard]] Verdict acquire(const ClientKey& key, std::string_view model, limit::Cost cost,
                                const limit::Limits& upstream, TimePoint now);
  // `actual`: {1, usage tokens} for a call answered upstream; {0, 0} for one never sent.
  void settle(const Ticket& ticket, limit::Cost actual, TimePoint now);

 private:
  struct Entry {
    limit::Limits limits;
    limit::RateLimiter limiter;
  };
  Entry& entry_locked(const std::string& name, const limit::Limits& limits);

  std::mutex mu_;
  std::map<std::string, Entry, std::less<>> limiters_;
  std::map<std::string, bool, std::less<>> warned_;
};

}  // namespace floodgate::gateway
