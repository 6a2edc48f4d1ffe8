#pragma once
// The threading of floodgate's two HTTP servers (`floodgate sim`, `floodgate serve`), header
// only, shared by both without making one depend on the other: one io_context per thread,
// each with its own acceptor on the same port (SO_REUSEPORT), so connections spread over the
// threads without a shared queue and no connection gets a thread of its own.

#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>

#include "floodgate/core/error.hpp"

namespace floodgate::net {

struct Listeners {
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors;  // acceptors[i] runs on contexts[i]
  std::uint16_t port = 0;  // the port bound (the one chosen when 0 was asked for)
};

// Binds `threads` acceptors (0: one per core) on address:port. Throws floodgate::Error naming
// `host_text` when it cannot.
inline Listeners listen_per_thread(const boost::asio::ip::address& address, const std::string& host_text,
                                   std::uint16_t port, unsigned threads) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  Listeners out;
  out.port = port;
  boost::system::error_code ec;
  for (unsigned i = 0; i < threads; ++i) {
    out.contexts.push_back(std::make_unique<asio::io_context>(1));
    auto acceptor = std::make_unique<tcp::acceptor>(*out.contexts.back());
    const tcp::endpoint endpoint(address, out.port);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->set_option(reuse_port(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw Error("cannot listen on " + host_text + ":" + std::to_string(out.port) + ": " + ec.message());
    out.port = acceptor->local_endpoint().port();
    out.acceptors.push_back(std::move(acceptor));
  }
  return out;
}

// Runs every context (the first on this thread) until all have stopped; then stops them all
// and joins the threads it started.
inline void run_all(std::vector<std::unique_ptr<boost::asio::io_context>>& contexts) {
  std::vector<std::thread> workers;
  for (std::size_t i = 1; i < contexts.size(); ++i) {
    workers.emplace_back([ctx = contexts[i].get()] { ctx->run(); });
  }
  contexts[0]->run();
  for (auto& ctx : contexts) ctx->stop();
  for (auto& w : workers) w.join();
}

}  // namespace floodgate::net
