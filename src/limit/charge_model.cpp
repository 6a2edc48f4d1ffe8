// ChargeModel: the pacing charge of one request (rules in charge_model.hpp).
#include "floodgate/limit/charge_model.hpp"

#include <algorithm>
#include <charconv>

#include "floodgate/core/error.hpp"
#include "floodgate/core/text.hpp"

namespace floodgate::limit {
namespace {

std::optional<std::uint64_t> number(std::string_view s) {
  std::uint64_t v = 0;
  const auto* end = s.data() + s.size();
  const auto r = std::from_chars(s.data(), end, v);
  if (r.ec != std::errc{} || r.ptr != end || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

std::uint64_t ChargeModel::charge(const ChargeInputs& in) const noexcept {
  if (!in.generates) return in.input_tokens;
  const std::uint64_t choices = std::max<std::uint64_t>(1, in.choices);
  const std::uint64_t allowance = in.max_tokens_per_choice.value_or(default_allowance_tokens) * choices;
  switch (rule) {
    case Rule::input_plus_allowance: return in.input_tokens + allowance;
    case Rule::max_input_allowance: return std::max(in.input_tokens, allowance);
    case Rule::flat: return flat_tokens;
    case Rule::context:
      return in.max_tokens_per_choice ? in.input_tokens + *in.max_tokens_per_choice * choices : std::max(flat_tokens, in.input_tokens);
  }
  return in.input_tokens + allowance;
}

std::string ChargeModel::describe() const {
  std::string out;
  switch (rule) {
    case Rule::input_plus_allowance: out = "input+" + std::to_string(default_allowance_tokens); break;
    case Rule::max_input_allowance: out = "max(input," + std::to_string(default_allowance_tokens) + ")"; break;
    case Rule::flat: out = "flat:" + std::to_string(flat_tokens); break;
    case Rule::context: out = "context:" + std::to_string(flat_tokens); break;
  }
  if (refunds_unused) out += ",refund";
  return out;
}

ChargeModel parse_charge_model(std::string_view text) {
  const std::string original(text);
  auto bad = [&]() {
    return Error("bad charge rule \"" + original +
                 "\" (expected openai, input+N, max(input,N), flat:N or context:N, optionally followed by ,refund)");
  };
  ChargeModel m;
  text = trim(text);
  if (const auto comma = text.find(','); comma != std::string_view::npos && !text.starts_with("max(")) {
    if (trim(text.substr(comma + 1)) != "refund") throw bad();
    m.refunds_unused = true;
    text = trim(text.substr(0, comma));
  } else if (text.starts_with("max(") && text.ends_with(",refund")) {
    m.refunds_unused = true;
    text.remove_suffix(7);
  }
  if (text == "openai") return m;
  if (text.starts_with("input+")) {
    const auto n = number(text.substr(6));
    if (!n) throw bad();
    m.rule = ChargeModel::Rule::input_plus_allowance;
    m.default_allowance_tokens = *n;
  } else if (text.starts_with("max(input,") && text.ends_with(")")) {
    const auto n = number(trim(text.substr(10, text.size() - 11)));
    if (!n) throw bad();
    m.rule = ChargeModel::Rule::max_input_allowance;
    m.default_allowance_tokens = *n;
  } else if (text.starts_with("flat:")) {
    const auto n = number(text.substr(5));
    if (!n) throw bad();
    m.rule = ChargeModel::Rule::flat;
    m.flat_tokens = *n;
  } else if (text.starts_with("context:")) {
    const auto n = number(text.substr(8));
    if (!n) throw bad();
    m.rule = ChargeModel::Rule::context;
    m.flat_tokens = *n;
  } else {
    throw bad();
  }
  return m;
}

ChargeModel default_charge_model(Provider /*provider*/) noexcept { return ChargeModel{}; }

std::uint64_t worst_case_tokens(const ChargeInputs& in, std::uint64_t default_completion_tokens) noexcept {
  if (!in.generates) return in.input_tokens;
  return in.input_tokens + in.max_tokens_per_choice.value_or(default_completion_tokens) * std::max<std::uint64_t>(1, in.choices);
}

}  // namespace floodgate::limit
