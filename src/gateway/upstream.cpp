#include "floodgate/gateway/upstream.hpp"

#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "floodgate/http/transport.hpp"

namespace floodgate::gateway {

struct TransportUpstream::Impl {
  explicit Impl(TransportUpstreamOptions o) : options(std::move(o)), transport(transport_options(options)) {
    while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
    auto lines = std::make_shared<std::vector<std::string>>();
    lines->push_back("Authorization: Bearer " + options.api_key);
    if (!options.organization.empty()) lines->push_back("OpenAI-Organization: " + options.organization);
    if (!options.project.empty()) lines->push_back("OpenAI-Project: " + options.project);
    common = std::move(lines);
    worker = std::thread([this] { loop(); });
  }

  static http::TransportOptions transport_options(const TransportUpstreamOptions& o) {
    http::TransportOptions t;
    t.total_timeout = o.timeout;
    t.user_agent = "floodgate-serve";
    return t;
  }

  ~Impl() {
    stopping = true;
    transport.wakeup();
    worker.join();
  }

  void loop() {
    std::vector<std::pair<http::HttpRequest, Done>> taken;
    std::vector<http::HttpResponse> finished;
    while (!stopping) {
      {
        const std::lock_guard lock(mu);
        taken.swap(queued);
      }
      for (auto& [request, done] : taken) {
        pending.emplace(request.tag, std::move(done));
        transport.submit(std::move(request));
      }
      taken.clear();
      transport.poll(std::chrono::milliseconds(500), finished);
      for (auto& r : finished) {
        const auto it = pending.find(r.tag);
        if (it == pending.end()) continue;
        Done done = std::move(it->second);
        pending.erase(it);
        UpstreamResponse out;
        out.status = r.status;
        out.error_message = std::move(r.error_message);
        out.elapsed = r.elapsed;
        for (std::size_t i = 0; i < r.header_count(); ++i) {
          out.headers.emplace_back(std::string(r.header_name(i)), std::string(r.header_value(i)));
        }
        out.body = std::move(r.body);
        done(std::move(out));
      }
      finished.clear();
    }
    transport.cancel_all();
  }

  TransportUpstreamOptions options;
  http::CurlTransport transport;
  std::shared_ptr<const std::vector<std::string>> common;
  std::mutex mu;
  std::vector<std::pair<http::HttpRequest, Done>> queued;  // under mu
  std::unordered_map<std::uint64_t, Done> pending;         // the worker's own
  std::atomic<std::uint64_t> next_tag{1};
  std::atomic<bool> stopping{false};
  std::thread worker;
};

TransportUpstream::TransportUpstream(TransportUpstreamOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

TransportUpstream::~TransportUpstream() = default;

void TransportUpstream::submit(UpstreamRequest request, Done done) {
  http::HttpRequest r;
  r.tag = impl_->next_tag++;
  r.url = impl_->options.base_url + request.target;
  r.common_headers = impl_->common;
  r.headers = std::move(request.headers);
  r.body = std::move(request.body);
  {
    const std::lock_guard lock(impl_->mu);
    impl_->queued.emplace_back(std::move(r), std::move(done));
  }
  impl_->transport.wakeup();
}

}  // namespace floodgate::gateway
