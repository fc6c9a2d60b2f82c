#include "api/request_guard.hpp"

#include <gtest/gtest.h>

namespace chatd::api {
namespace {

using V = http::bhttp::verb;

http::Request request(V method, std::initializer_list<std::pair<std::string, std::string>> headers,
                      unsigned version = 11) {
    http::Request r{method, "/api/v1/chat/sessions", version};
    for (const auto& [k, v] : headers) r.insert(k, v);
    return r;
}

const RequestGuard kLocal({.loopback_hosts_only = true, .allowed_hosts = {"127.0.0.1"}});

TEST(HostName, StripsThePortAndLowercases) {
    EXPECT_EQ(host_name("LocalHost:8080").value(), "localhost");
    EXPECT_EQ(host_name("[::1]:80").value(), "[::1]");
    EXPECT_EQ(host_name("127.0.0.1").value(), "127.0.0.1");
    for (auto bad : {"", ":80", "a b", "x:", "x:80:1", "[::1", "[zz]", "x:123456", "x/y"})
        EXPECT_FALSE(host_name(bad)) << bad;
}

TEST(RequestGuard, LocalModeAnswersOnlyLoopbackNames) {
    for (auto ok : {"localhost:8080", "127.0.0.1:8080", "127.1.2.3", "[::1]:8080", "app.localhost"})
        EXPECT_TRUE(kLocal.check(request(V::get, {{"Host", ok}}))) << ok;
    for (auto bad : {"evil.example", "evil.example:8080", "localhost.evil.example", "10.0.0.1"})
        EXPECT_EQ(kLocal.check(request(V::get, {{"Host", bad}})).error(), Error::forbidden_host)
            << bad;
}

TEST(RequestGuard, Http11NeedsExactlyOneHost) {
    EXPECT_EQ(kLocal.check(request(V::get, {})).error(), Error::bad_request);
    EXPECT_EQ(
        kLocal.check(request(V::get, {{"Host", "localhost"}, {"Host", "evil.example"}})).error(),
        Error::bad_request);
}

TEST(RequestGuard, AllowedHostsLimitOtherModes) {
    RequestGuard any({});
    EXPECT_TRUE(any.check(request(V::get, {{"Host", "chat.example.com"}})));
    RequestGuard listed({.allowed_hosts = {"chat.example.com"}});
    EXPECT_TRUE(listed.check(request(V::get, {{"Host", "Chat.Example.com:443"}})));
    EXPECT_EQ(listed.check(request(V::get, {{"Host", "evil.example"}})).error(),
              Error::forbidden_host);
}

TEST(RequestGuard, RefusesStateChangesFromAnotherOrigin) {
    auto post = [](std::initializer_list<std::pair<std::string, std::string>> h) {
        return kLocal.check(request(V::post, h));
    };
    EXPECT_EQ(post({{"Host", "localhost:8080"}, {"Origin", "http://evil.example"}}).error(),
              Error::cross_origin);
    EXPECT_EQ(post({{"Host", "localhost:8080"}, {"Origin", "null"}}).error(), Error::cross_origin);
    EXPECT_EQ(post({{"Host", "localhost:8080"}, {"Origin", "http://localhost:9999"}}).error(),
              Error::cross_origin);
    EXPECT_EQ(post({{"Host", "localhost:8080"}, {"Sec-Fetch-Site", "cross-site"}}).error(),
              Error::cross_origin);
    EXPECT_TRUE(post({{"Host", "localhost:8080"}, {"Origin", "http://localhost:8080"}}));
    EXPECT_TRUE(post({{"Host", "localhost:8080"}, {"Sec-Fetch-Site", "same-origin"}}));
    EXPECT_TRUE(post({{"Host", "localhost:8080"}}));  // curl and other non-browser clients
    // Reads from another origin pass: without CORS headers the browser hides them.
    EXPECT_TRUE(kLocal.check(
        request(V::get, {{"Host", "localhost:8080"}, {"Origin", "http://evil.example"}})));
    EXPECT_EQ(kLocal
                  .check(request(V::delete_,
                                 {{"Host", "localhost:8080"}, {"Origin", "http://evil.example"}}))
                  .error(),
              Error::cross_origin);
}

TEST(RequestGuard, AllowsListedOrigins) {
    RequestGuard g({.allowed_origins = {"https://app.example.com"}});
    EXPECT_TRUE(g.check(
        request(V::post, {{"Host", "api.example.com"}, {"Origin", "https://app.example.com"}})));
    EXPECT_EQ(
        g.check(request(V::post, {{"Host", "api.example.com"}, {"Origin", "https://evil.example"}}))
            .error(),
        Error::cross_origin);
}

}  // namespace
}  // namespace chatd::api
