#include "llm/upstream/upstream_provider.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

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
    for (auto bad :
         {"api.openai.com", "ftp://x/", "https://user:pw@x/", "https://x/?q=1", "http:///v1"})
        EXPECT_THROW(parse_endpoint(bad, "/p"), std::invalid_argument) << bad;
}

TEST(Proxy, ParsesCredentialsIntoBasicAuthorization) {
    auto p = parse_proxy("http://al%40ice:s3cret@proxy.local:3128");
    EXPECT_EQ(p.hop.host, "proxy.local");
    EXPECT_EQ(p.hop.port, "3128");
    EXPECT_EQ(p.authorization, "Basic YWxAaWNlOnMzY3JldA==");  // base64("al@ice:s3cret")
    auto bare = parse_proxy("http://10.0.0.1");
    EXPECT_EQ(bare.hop.port, "1080");
    EXPECT_TRUE(bare.authorization.empty());
    EXPECT_THROW(parse_proxy("https://proxy:3128"), std::invalid_argument);
    EXPECT_THROW(parse_proxy("proxy:3128"), std::invalid_argument);
}

// Sets environment variables for one test and restores them after.
class ScopedEnv {
public:
    ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
        for (const char* name : {"https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY",
                                 "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"}) {
            if (const char* v = std::getenv(name)) saved_.emplace_back(name, v);
            ::unsetenv(name);
        }
        for (auto [name, value] : vars) ::setenv(name, value, 1);
    }
    ~ScopedEnv() {
        for (const char* name : {"https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY",
                                 "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"})
            ::unsetenv(name);
        for (auto& [name, value] : saved_) ::setenv(name.c_str(), value.c_str(), 1);
    }

private:
    std::vector<std::pair<std::string, std::string>> saved_;
};

TEST(Proxy, ComesFromTheEnvironmentBySchemeUnlessNoProxyMatches) {
    {
        ScopedEnv env{{"HTTPS_PROXY", "http://s:1"}, {"http_proxy", "http://p:2"}};
        EXPECT_EQ(proxy_from_environment("https://api.openai.com/v1"), "http://s:1");
        EXPECT_EQ(proxy_from_environment("http://127.0.0.1:8000/v1"), "http://p:2");
    }
    {
        ScopedEnv env{{"https_proxy", "http://lower:1"}, {"HTTPS_PROXY", "http://upper:1"}};
        EXPECT_EQ(proxy_from_environment("https://x.com"), "http://lower:1");
    }
    {
        ScopedEnv env{{"ALL_PROXY", "http://all:1"},
                      {"no_proxy", "localhost, .internal.example,10.0.0.7:8000"}};
        EXPECT_EQ(proxy_from_environment("https://api.anthropic.com"), "http://all:1");
        EXPECT_EQ(proxy_from_environment("http://localhost:11434/v1"), "");
        EXPECT_EQ(proxy_from_environment("https://llm.internal.example/v1"), "");
        EXPECT_EQ(proxy_from_environment("https://internal.example/v1"), "");
        EXPECT_EQ(proxy_from_environment("https://notinternal.example/v1"), "http://all:1");
        EXPECT_EQ(proxy_from_environment("http://10.0.0.7:8000/v1"), "");
    }
    {
        ScopedEnv env{{"HTTPS_PROXY", "http://s:1"}, {"NO_PROXY", "*"}};
        EXPECT_EQ(proxy_from_environment("https://api.openai.com"), "");
    }
    ScopedEnv none{};
    EXPECT_EQ(proxy_from_environment("https://api.openai.com"), "");
}

TEST(Redact, RemovesEveryOccurrenceOfTheSecret) {
    EXPECT_EQ(redact("key sk-1 and sk-1!", "sk-1"), "key [redacted] and [redacted]!");
    EXPECT_EQ(redact("nothing", ""), "nothing");
}

}  // namespace
}  // namespace chatd::llm::upstream
