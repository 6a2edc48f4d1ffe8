#include "floodgate/http/dialect.hpp"

#include <gtest/gtest.h>

using floodgate::Endpoint;
using floodgate::Provider;
using namespace floodgate::http;

TEST(Dialect, CredentialHeader) {
  EXPECT_EQ(auth_header(Provider::openai, "sk-1"), "Authorization: Bearer sk-1");
  EXPECT_EQ(auth_header(Provider::groq, "gsk-1"), "Authorization: Bearer gsk-1");
  EXPECT_EQ(auth_header(Provider::azure, "abc"), "api-key: abc");
  EXPECT_EQ(auth_header(Provider::azure, ""), "");
}

TEST(Dialect, OpenAIUrls) {
  EXPECT_EQ(endpoint_url(Provider::openai, "https://api.openai.com/v1", Endpoint::chat_completions, "m"),
            "https://api.openai.com/v1/chat/completions");
  EXPECT_EQ(endpoint_url(Provider::openai, "http://127.0.0.1:8080/v1/", Endpoint::embeddings, "m"), "http://127.0.0.1:8080/v1/embeddings");
  EXPECT_EQ(endpoint_url(Provider::groq, "https://api.groq.com/openai/v1", Endpoint::chat_completions, "m"),
            "https://api.groq.com/openai/v1/chat/completions");
  EXPECT_FALSE(url_depends_on_model(Provider::openai, "https://api.openai.com/v1"));
}

TEST(Dialect, AzureDeploymentUrls) {
  EXPECT_TRUE(url_depends_on_model(Provider::azure, "https://res.openai.azure.com"));
  EXPECT_EQ(endpoint_url(Provider::azure, "https://res.openai.azure.com/", Endpoint::chat_completions, "gpt-4o"),
            "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21");
  EXPECT_EQ(endpoint_url(Provider::azure, "https://res.openai.azure.com/openai", Endpoint::embeddings, "emb", "2025-01-01"),
            "https://res.openai.azure.com/openai/deployments/emb/embeddings?api-version=2025-01-01");
  // An api-version in the base URL wins; a base naming its deployment keeps it.
  EXPECT_EQ(endpoint_url(Provider::azure, "https://res.openai.azure.com/openai/deployments/prod?api-version=2024-06-01",
                         Endpoint::chat_completions, "gpt-4o"),
            "https://res.openai.azure.com/openai/deployments/prod/chat/completions?api-version=2024-06-01");
  EXPECT_FALSE(url_depends_on_model(Provider::azure, "https://res.openai.azure.com/openai/deployments/prod"));
}

TEST(Dialect, AzureV1Form) {
  EXPECT_FALSE(url_depends_on_model(Provider::azure, "https://res.openai.azure.com/openai/v1"));
  EXPECT_EQ(endpoint_url(Provider::azure, "https://res.openai.azure.com/openai/v1/", Endpoint::chat_completions, "gpt-4o"),
            "https://res.openai.azure.com/openai/v1/chat/completions");
  EXPECT_EQ(endpoint_url(Provider::azure, "https://res.openai.azure.com/openai/v1", Endpoint::chat_completions, "gpt-4o", "preview"),
            "https://res.openai.azure.com/openai/v1/chat/completions?api-version=preview");
}

TEST(Dialect, ProviderGuessedOnlyWhereUnambiguous) {
  EXPECT_EQ(floodgate::guess_provider("https://api.openai.com/v1"), Provider::openai);
  EXPECT_EQ(floodgate::guess_provider("https://my-res.openai.azure.com/openai/v1"), Provider::azure);
  EXPECT_EQ(floodgate::guess_provider("https://x.cognitiveservices.azure.com"), Provider::azure);
  EXPECT_EQ(floodgate::guess_provider("https://API.GROQ.COM/openai/v1"), Provider::groq);
  EXPECT_EQ(floodgate::guess_provider("http://127.0.0.1:8000/v1"), std::nullopt);
  EXPECT_EQ(floodgate::guess_provider("https://openai.azure.com.evil.example/v1"), std::nullopt);
  EXPECT_EQ(floodgate::provider_from_name("none"), Provider::none);
  EXPECT_EQ(floodgate::provider_from_name("Azure"), std::nullopt);
}
