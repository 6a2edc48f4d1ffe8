#include "floodgate/gateway/key_limits.hpp"

#include <algorithm>
#include <cmath>

namespace floodgate::gateway {
namespace {

// The limiter's answer in words: which of `limits` holds the request back.
std::string which(const limit::Decision& d, const limit::Limits& limits, std::string_view kind) {
  const bool requests = d.blocked_by == limit::Dimension::requests_per_minute;
  const double value = requests ? limits.requests_per_minute : limits.tokens_per_minute;
  return std::string(kind) + (requests ? "requests_per_minute " : "tokens_per_minute ") +
         std::to_string(static_cast<std::int64_t>(value));
}

limit::LimiterOptions sub_limit_options() {
  limit::LimiterOptions o;
  o.refund = limit::LimiterOptions::Refund::unused;  // a sub-limit counts what the key used
  o.learn_charge = false;
  o.learn_charge_down = false;
  o.window_margin = Duration::zero();  // our own window: no server's stamp to allow for
  return o;
}

}  // namespace

bool has_sub_limits(const ClientKey& key) noexcept {
  return key.requests_per_minute || key.tokens_per_minute || key.share_of_requests_per_minute ||
         key.share_of_tokens_per_minute;
}

KeyLimiter::Entry& KeyLimiter::entry_locked(const std::string& name, const limit::Limits& limits) {
  auto it = limiters_.find(name);
  if (it != limiters_.end() && it->second.limits == limits) return it->second;
  // New, or the upstream's limit changed (a share of it): a limiter for the new limits.
  if (it != limiters_.end()) limiters_.erase(it);
  return limiters_.try_emplace(name, Entry{limits, limit::RateLimiter(limits, false, sub_limit_options())}).first->second;
}

KeyLimiter::Verdict KeyLimiter::acquire(const ClientKey& key, std::string_view model, limit::Cost cost,
                                        const limit::Limits& upstream, TimePoint now) {
  limit::Limits absolute;
  absolute.requests_per_minute = static_cast<double>(key.requests_per_minute.value_or(0));
  absolute.tokens_per_minute = static_cast<double>(key.tokens_per_minute.value_or(0));
  Verdict v;
  limit::Limits share;
  bool unknown = false;
  if (key.share_of_requests_per_minute) {
    if (upstream.requests_per_minute > 0) {
      share.requests_per_minute = std::max(1.0, std::floor(*key.share_of_requests_per_minute * upstream.requests_per_minute));
    } else {
      unknown = true;
    }
  }
  if (key.share_of_tokens_per_minute) {
    if (upstream.tokens_per_minute > 0) {
      share.tokens_per_minute = std::max(1.0, std::floor(*key.share_of_tokens_per_minute * upstream.tokens_per_minute));
    } else {
      unknown = true;
    }
  }
  const std::lock_guard lock(mu_);
  if (unknown) {
    auto& warned = warned_[key.log_id + "\n" + std::string(model)];
    v.share_unknown = !warned;
    warned = true;
  }
  Entry* a = absolute.any() ? &entry_locked(key.log_id, absolute) : nullptr;
  const std::string share_name = key.log_id + "\n" + std::string(model);
  Entry* s = share.any() ? &entry_locked(share_name, share) : nullptr;
  // Both or neither: look first, then reserve (nothing moves between, under the mutex).
  limit::Decision da;
  limit::Decision ds;
  if (a != nullptr) da = a->limiter.peek(cost, now);
  if (s != nullptr) ds = s->limiter.peek(cost, now);
  const bool a_ok = a == nullptr || da.admitted();
  const bool s_ok = s == nullptr || ds.admitted();
  if (!a_ok || !s_ok) {
    const bool a_blocks = !a_ok && (s_ok || da.verdict == limit::Decision::Verdict::cannot_fit || da.not_before >= ds.not_before);
    const limit::Decision& d = a_blocks ? da : ds;
    v.kind = d.verdict == limit::Decision::Verdict::cannot_fit ? Verdict::Kind::cannot_fit : Verdict::Kind::wait;
    v.not_before = std::max(a_ok ? now : da.not_before, s_ok ? now : ds.not_before);
    v.limit = a_blocks ? which(da, absolute, "") : which(ds, share, "share_of_");
    return v;
  }
  if (a != nullptr) {
    v.ticket.absolute_at = key.log_id;
    v.ticket.absolute = a->limiter.try_acquire(cost, now).grant;
  }
  if (s != nullptr) {
    v.ticket.share_at = share_name;
    v.ticket.share = s->limiter.try_acquire(cost, now).grant;
  }
  return v;
}

void KeyLimiter::settle(const Ticket& ticket, limit::Cost actual, TimePoint now) {
  const std::lock_guard lock(mu_);
  for (const auto& [name, grant] : {std::pair{&ticket.absolute_at, &ticket.absolute}, std::pair{&ticket.share_at, &ticket.share}}) {
    if (name->empty()) continue;
    const auto it = limiters_.find(*name);
    if (it != limiters_.end()) it->second.limiter.reconcile(*grant, actual, now);
  }
}

}  // namespace floodgate::gateway
