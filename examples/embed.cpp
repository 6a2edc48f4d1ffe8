// floodgate embedded in a program: 1,000 requests from memory through
// floodgate::engine::Client, paced to the server's limits and retried where that helps,
// their outcomes read from the completion queue by waiting on its eventfd, as an event loop
// would (poll(2) here; asyncio's add_reader or an Asio stream_descriptor alike).
//
//   find_package(floodgate REQUIRED)
//   target_link_libraries(app PRIVATE floodgate::floodgate)
//
// Usage: embed [BASE_URL]   (default: $OPENAI_BASE_URL, else https://api.openai.com/v1)
// The key comes from OPENAI_API_KEY. It starts no server: point it at one, e.g. at
//   floodgate sim --port 0     (it prints its base URL on its first line)
// Half the requests are chat completions, half embeddings, submitted from four threads at
// once. Prints a line per request that failed, then a summary line; exits 0 only when every
// request came back exactly once, and a success.
#include <poll.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/engine/client.hpp"

namespace {

constexpr int kRequests = 1000;
constexpr int kThreads = 4;

floodgate::engine::Submission request(int i) {
  floodgate::engine::Submission s;
  s.id = "req-" + std::to_string(i);
  const std::string text = "Item number " + std::to_string(i) + ": say something short about it.";
  if (i % 2 == 0) {
    s.endpoint = floodgate::Endpoint::chat_completions;
    s.body = R"({"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":")" + text + R"("}]})";
  } else {
    s.endpoint = floodgate::Endpoint::embeddings;
    s.body = R"({"model":"text-embedding-3-small","input":")" + text + R"("})";
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  using floodgate::engine::Client;
  using floodgate::engine::ClientOptions;
  using floodgate::engine::Completion;

  ClientOptions options;
  const char* base = argc > 1 ? argv[1] : std::getenv("OPENAI_BASE_URL");
  if (base != nullptr && *base != '\0') options.engine.base_url = base;
  if (const char* key = std::getenv("OPENAI_API_KEY")) options.engine.credentials.api_key = key;
  options.engine.max_in_flight = 32;
  options.messages = stderr;  // the engine's warnings, if any

  try {
    Client client(std::move(options));

    // submit() is thread-safe and never waits for the network; it says at once whether it
    // took the request.
    std::vector<std::thread> submitters;
    std::vector<int> refused(kThreads, 0);
    for (int t = 0; t < kThreads; ++t) {
      submitters.emplace_back([&client, &refused, t] {
        for (int i = t; i < kRequests; i += kThreads) {
          const auto taken = client.submit(request(i));
          if (!taken) {
            std::fprintf(stderr, "req-%d refused: %s\n", i, taken.reason.c_str());
            ++refused[static_cast<std::size_t>(t)];
          }
        }
      });
    }
    for (auto& t : submitters) t.join();
    int submitted = kRequests;
    for (int n : refused) submitted -= n;

    // Wait for outcomes on the completion queue's eventfd; poll() takes what is there.
    std::vector<int> seen(kRequests, 0);
    int outcomes = 0;
    int ok = 0;
    unsigned long long attempts = 0;
    unsigned long long tokens = 0;
    std::vector<Completion> batch;
    while (outcomes < submitted) {
      pollfd p{client.completion_fd(), POLLIN, 0};
      if (::poll(&p, 1, 60'000) == 0) {
        std::fprintf(stderr, "embed: no outcome for 60 s (%d of %d so far)\n", outcomes, submitted);
        break;
      }
      batch.clear();
      client.poll(batch);
      for (const Completion& c : batch) {
        const floodgate::Outcome& o = c.outcome;
        ++outcomes;
        const int i = std::atoi(o.custom_id.c_str() + 4);  // "req-<i>"
        if (i >= 0 && i < kRequests) ++seen[static_cast<std::size_t>(i)];
        attempts += o.attempts;
        tokens += o.usage.total_tokens;
        if (o.ok()) {
          ++ok;
        } else {
          std::printf("%s: %s (HTTP %d, %u attempts): %s\n", o.custom_id.c_str(), std::string(floodgate::to_string(o.error)).c_str(),
                      o.status_code, o.attempts, o.error_message.c_str());
        }
      }
    }
    const auto summary = client.close();

    int once = 0;
    for (int n : seen) once += n == 1 ? 1 : 0;
    std::printf("submitted=%d outcomes=%d once=%d ok=%d attempts=%llu tokens=%llu http_429=%llu\n", submitted, outcomes, once, ok,
                attempts, tokens, static_cast<unsigned long long>(summary.http_429));
    return submitted == kRequests && outcomes == kRequests && once == kRequests && ok == kRequests ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embed: %s\n", e.what());
    return 2;
  }
}
