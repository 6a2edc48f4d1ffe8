// Fuzz target: a Batch API input line never crashes the parser; the one-pass parse gives
// the same result as the two-parse way (DOM validation, then the fields) it falls back to;
// an accepted line's body is a byte-for-byte slice of the line, and an output line for its
// custom_id reads back with the same custom_id (escaping round-trips).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "floodgate/core/batch_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  for (const bool bare : {false, true}) {
    floodgate::InputOptions options;
    if (bare) options.default_endpoint = floodgate::Endpoint::chat_completions;
    const auto parsed = floodgate::parse_input_line(line, 7, options);
    const auto two_pass = floodgate::detail::parse_input_line_two_pass(line, 7, options);
    if (parsed.request.has_value() != two_pass.request.has_value() || parsed.error_message != two_pass.error_message ||
        parsed.custom_id != two_pass.custom_id || parsed.not_json != two_pass.not_json || parsed.bare_body != two_pass.bare_body) {
      std::abort();
    }
    if (parsed.request && (parsed.request->body != two_pass.request->body || parsed.request->model != two_pass.request->model ||
                           parsed.request->custom_id != two_pass.request->custom_id || parsed.request->url != two_pass.request->url ||
                           parsed.request->endpoint != two_pass.request->endpoint)) {
      std::abort();
    }
    if (parsed.request.has_value() == (parsed.error != floodgate::ErrorKind::none)) std::abort();
    if (!parsed.request) {
      if (parsed.error_message.find("line 7") == std::string::npos) std::abort();
      continue;
    }
    const auto& r = *parsed.request;
    if (line.find(r.body) == std::string_view::npos) std::abort();  // forwarded as read
    floodgate::Outcome o;
    o.custom_id = r.custom_id;
    o.line_no = r.line_no;
    o.status_code = 200;
    o.body = R"({"ok":true})";
    const std::string out = floodgate::format_output_line(o);
    if (out.empty() || out.back() != '\n') std::abort();
    const auto back = floodgate::read_output_line(std::string_view(out).substr(0, out.size() - 1));
    if (!back || back->custom_id != r.custom_id) std::abort();
  }
  return 0;
}
