#pragma once
// The engine's options, checked before anything is touched or sent: configuration errors
// throw floodgate::Error (exit 2) naming the flag, instead of failing every line later.

#include "floodgate/engine/engine.hpp"

namespace floodgate::engine {

// Checks `opt` (--max-in-flight, --max-attempts, --retry-failed with stdout, the base URL's
// scheme, the output's and the journal's folders) and fills in what is left to defaults
// (the conservative estimator, the journal beside the output).
void resolve_options(EngineOptions& opt);

// The output is a file (not stdout "-", not none: EngineOptions::output_path empty).
[[nodiscard]] inline bool output_is_file(const EngineOptions& opt) { return !opt.output_path.empty() && opt.output_path != "-"; }
// The journal lives in memory (EngineOptions::kJournalInMemory): no file, lock or reserve.
[[nodiscard]] inline bool journal_in_memory(const EngineOptions& opt) { return opt.journal_path == EngineOptions::kJournalInMemory; }

}  // namespace floodgate::engine
