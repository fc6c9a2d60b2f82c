#include "llm/upstream/upstream_provider.hpp"

#include <gtest/gtest.h>

namespace chatd::llm::upstream {
namespace {

TEST(Endpoint, JoinsTheBasePathAndTheWirePath) {
    auto e = parse_endpoint("https://api.openai.com/v1/", "/chat/completions");
    EXPECT_TRUE(e.tls);
    EXPECT_EQ(e.host, "api.openai.com");
    EXPECT_EQ(e.port, "443");
    EXPECT_EQ(e.target, "/v1/chat/completions");
    EXPECT_EQ(e.host_header, "api.openai.com");
    auto local = parse_endpoint("http://127.0.0.1:11434/v1", "/chat/completions");
    EXPECT_FALSE(local.tls);
    EXPECT_EQ(local.port, "11434");
    EXPECT_EQ(local.host_header, "127.0.0.1:11434");
    EXPECT_EQ(parse_endpoint("https://api.anthropic.com", "/v1/messages").target, "/v1/messages");
}

TEST(Endpoint, RejectsWhatIsNotAPlainHttpUrl) {
    for (auto bad : {"api.openai.com", "ftp://x/", "https://user:pw@x/", "https://x/?q=1", "http:///v1"})
        EXPECT_THROW(parse_endpoint(bad, "/p"), std::invalid_argument) << bad;
}

TEST(Redact, RemovesEveryOccurrenceOfTheSecret) {
    EXPECT_EQ(redact("key sk-1 and sk-1!", "sk-1"), "key [redacted] and [redacted]!");
    EXPECT_EQ(redact("nothing", ""), "nothing");
}

}  // namespace
}  // namespace chatd::llm::upstream
