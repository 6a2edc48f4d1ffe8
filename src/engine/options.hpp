#pragma once
// The engine's options, checked before anything is touched or sent: configuration errors
// throw floodgate::Error (exit 2) naming the flag, instead of failing every line later.

#include "floodgate/engine/engine.hpp"

namespace floodgate::engine {

// Checks `opt` (--max-in-flight, --max-attempts, --retry-failed with stdout, the base URL's
// scheme, the output's and the journal's folders) and fills in what is left to defaults
// (the conservative estimator, the journal beside the output).
void resolve_options(EngineOptions& opt);

}  // namespace floodgate::engine
