#pragma once
// The CLI's words for the engine's job-level events (floodgate/engine/events.hpp): what a
// person reads on stderr when the job stops or pauses, naming this CLI's flags
// (--base-url, --timeout, --outage-limit, Ctrl-C), and the summary's "stopped" line (a
// `stopped` event). apply_engine_flags() installs it as
// EngineOptions::describe.

#include <string>

#include "floodgate/engine/events.hpp"

namespace floodgate::cli {

[[nodiscard]] std::string describe_engine_event(const engine::JobEvent& event);

}  // namespace floodgate::cli
