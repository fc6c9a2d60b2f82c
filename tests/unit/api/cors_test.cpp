#include "api/cors.hpp"

#include <gtest/gtest.h>

namespace chatd::api {
namespace {

using V = http::bhttp::verb;

http::Request request(V method,
                      std::initializer_list<std::pair<std::string, std::string>> headers) {
    http::Request r{method, "/api/v1/chat/sessions", 11};
    for (const auto& [k, v] : headers) r.insert(k, v);
    return r;
}

const CorsPolicy kPolicy({"https://app.example.com"});

TEST(Cors, NamesAnAllowedOriginWithCredentials) {
    http::Response res;
    kPolicy.decorate(res, request(V::get, {{"Origin", "https://app.example.com"}}));
    EXPECT_EQ(res["Access-Control-Allow-Origin"], "https://app.example.com");
    EXPECT_EQ(res["Access-Control-Allow-Credentials"], "true");
    EXPECT_EQ(res["Vary"], "Origin");
}

TEST(Cors, GrantsNothingToOtherOrigins) {
    http::Response res;
    kPolicy.decorate(res, request(V::get, {{"Origin", "https://evil.example"}}));
    EXPECT_EQ(res.count("Access-Control-Allow-Origin"), 0u);
    EXPECT_EQ(res["Vary"], "Origin");
    http::Response none;
    CorsPolicy({}).decorate(none, request(V::get, {{"Origin", "https://app.example.com"}}));
    EXPECT_EQ(none.count("Access-Control-Allow-Origin"), 0u);
}

TEST(Cors, AnswersPreflightsForTheMethodsOfThePath) {
    http::Response res;
    EXPECT_TRUE(kPolicy.preflight(res,
                                  request(V::options, {{"Origin", "https://app.example.com"},
                                                       {"Access-Control-Request-Method", "POST"}}),
                                  "POST, GET, HEAD, OPTIONS"));
    EXPECT_EQ(res["Access-Control-Allow-Origin"], "https://app.example.com");
    EXPECT_EQ(res["Access-Control-Allow-Methods"], "POST, GET, HEAD, OPTIONS");
    EXPECT_NE(res["Access-Control-Allow-Headers"].find("Authorization"), std::string::npos);
    http::Response wrong_method;
    EXPECT_TRUE(
        kPolicy.preflight(wrong_method,
                          request(V::options, {{"Origin", "https://app.example.com"},
                                               {"Access-Control-Request-Method", "DELETE"}}),
                          "POST, GET"));
    EXPECT_EQ(wrong_method.count("Access-Control-Allow-Origin"), 0u);
    http::Response plain;
    EXPECT_FALSE(kPolicy.preflight(plain, request(V::options, {}), "GET"));
}

TEST(Cors, OriginsAreSchemeHostAndPortOnly) {
    EXPECT_TRUE(is_origin("https://app.example.com"));
    EXPECT_TRUE(is_origin("http://localhost:5173"));
    for (auto bad : {"*", "app.example.com", "https://app.example.com/", "ftp://x", "https://"})
        EXPECT_FALSE(is_origin(bad)) << bad;
}

}  // namespace
}  // namespace chatd::api
