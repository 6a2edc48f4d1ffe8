#pragma once
// What OpenAI answers to a json_schema response_format sent with "strict": true whose schema
// breaks the strict-mode rules (platform.openai.com/docs/guides/structured-outputs,
// "Supported schemas"): the root must be an object, every object must set
// "additionalProperties": false, and every object's "required" must list every key of its
// "properties". The simulator refuses such a request with 400 and the API's own wording, so
// an offline run fails where the real API would.
//
// This is the simulator's own reading of the rules (the judge), separate from the client's
// schema::make_strict(), which rewrites a schema so that it passes.

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace floodgate::sim {

// Empty when `schema` passes; otherwise the error message, e.g.
//   Invalid schema for response_format 'answer': In context=('properties', 'address'),
//   'required' is required to be supplied and to be an array including every key in
//   properties. Missing 'zip'.
[[nodiscard]] std::string strict_schema_error(const nlohmann::json& schema, std::string_view name);

}  // namespace floodgate::sim
