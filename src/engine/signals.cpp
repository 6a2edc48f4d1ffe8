#include <atomic>
#include <csignal>

#include "floodgate/engine/engine.hpp"

namespace floodgate::engine {
namespace {

// SIGINT/SIGTERM call request_stop() on the engine of the SignalGuard in force: an atomic
// and a write to a pipe, both async-signal-safe.
std::atomic<Engine*> g_signal_engine{nullptr};

extern "C" void on_stop_signal(int /*sig*/) {
  Engine* e = g_signal_engine.load();
  if (e != nullptr) e->request_stop();
}

}  // namespace

SignalGuard::SignalGuard(Engine& engine) {
  g_signal_engine.store(&engine);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

SignalGuard::~SignalGuard() {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  g_signal_engine.store(nullptr);
}

}  // namespace floodgate::engine
