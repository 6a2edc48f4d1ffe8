#pragma once
// How a provider wants to be addressed (core/provider.hpp): the credential header and the
// URL of an endpoint.
//   openai, groq, none: "Authorization: Bearer KEY"; BASE + /chat/completions ... (a base
//     ending in /v1 is not doubled).
//   azure: "api-key: KEY"; a resource base (https://RES.openai.azure.com[/openai]) addresses
//     deployments: BASE/openai/deployments/MODEL/chat/completions?api-version=V, the model
//     of the request naming the deployment; a base that already names a deployment
//     (.../openai/deployments/NAME) keeps it; the /openai/v1 form takes BASE/chat/completions
//     (the model stays in the body) with ?api-version only when one was given. An
//     api-version in the base URL's query wins over the default.

#include <string>
#include <string_view>

#include "floodgate/core/provider.hpp"
#include "floodgate/core/request.hpp"

namespace floodgate::http {

inline constexpr std::string_view kDefaultAzureApiVersion = "2024-10-21";

// The header line that carries the key ("" for an empty key). Never log it.
[[nodiscard]] std::string auth_header(Provider provider, std::string_view api_key);

// The URL of `endpoint` for `model`. `api_version`: empty for the default (Azure only).
[[nodiscard]] std::string endpoint_url(Provider provider, std::string_view base_url, Endpoint endpoint, std::string_view model,
                                       std::string_view api_version = {});

// True when the URL (any provider) depends on the request's model: Azure deployment URLs.
[[nodiscard]] bool url_depends_on_model(Provider provider, std::string_view base_url);

}  // namespace floodgate::http
