// Counts what a chat request costs before it is sent, with floodgate's tiktoken-exact
// tokenizer, from a program that links the installed package:
//
//   find_package(floodgate REQUIRED)
//   target_link_libraries(app PRIVATE floodgate::floodgate)
//
// Usage: count_tokens '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}'
// Prints "prompt_tokens=N worst_case_tokens=M" (M adds the completion allowance).
#include <cstdio>
#include <exception>

#include "floodgate/core/request.hpp"
#include "floodgate/tokens/estimate.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: count_tokens REQUEST_BODY_JSON\n");
    return 2;
  }
  try {
    const auto estimate =
        floodgate::tokens::estimate_request(floodgate::Endpoint::chat_completions, argv[1]);
    std::printf("prompt_tokens=%llu worst_case_tokens=%llu\n",
                static_cast<unsigned long long>(estimate.prompt_tokens),
                static_cast<unsigned long long>(estimate.total_tokens));
    return estimate.body_parsed ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "count_tokens: %s\n", e.what());
    return 1;
  }
}
