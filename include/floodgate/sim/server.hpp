#pragma once
// `floodgate sim`: an OpenAI-compatible HTTP/1.1 server on Boost.Beast + Asio.
//
// One io_context per thread, each with its own acceptor on the same port (SO_REUSEPORT),
// so connections spread over the threads without a shared queue; every connection is a
// coroutine that reads a request head, streams the body (uploads through the multipart
// parser, never buffered whole), asks the Simulator for a Reply, waits its latency and
// writes it (or acts out its fault). SIGINT/SIGTERM stop it; the ledger is flushed.

#include <functional>
#include <string>

#include "floodgate/sim/options.hpp"

namespace floodgate::sim {

// Binds, calls `on_listening(base_url)` once (e.g. to print "http://127.0.0.1:PORT/v1"),
// then serves until SIGINT/SIGTERM. Returns the process exit code. Throws floodgate::Error
// when it cannot bind.
int run_server(const SimOptions& options, const std::function<void(const std::string&)>& on_listening);

}  // namespace floodgate::sim
