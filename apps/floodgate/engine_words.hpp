#pragma once
// The CLI's words for the engine's job-level events (floodgate/engine/events.hpp): what a
// person reads on stderr when the job stops or pauses, naming this CLI's flags
// (--base-url, --timeout, --outage-limit, Ctrl-C), and the summary's "stopped" line (a
// `stopped` event). apply_engine_flags() installs it as
// EngineOptions::describe.

#include <string>
#include <string_view>

#include "floodgate/engine/events.hpp"

namespace floodgate::cli {

[[nodiscard]] std::string describe_engine_event(const engine::JobEvent& event);
// The flag that sets an EngineOptions option ("max_wait" -> "--max-wait"), for the
// engine's messages that name one (EngineOptions::option_words); an unknown name as given.
[[nodiscard]] std::string flag_for_option(std::string_view option);

}  // namespace floodgate::cli
