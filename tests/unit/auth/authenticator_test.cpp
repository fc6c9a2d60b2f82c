#include "auth/authenticator.hpp"

#include "support/jwt_signer.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace chatd::auth {
namespace {

namespace ip = boost::asio::ip;

const auto kLoopback = ip::make_address("127.0.0.1");
const auto kElsewhere = ip::make_address("192.0.2.7");

http::Request request(std::initializer_list<std::pair<std::string, std::string>> headers) {
    http::Request r{http::bhttp::verb::get, "/api/v1/chat/sessions", 11};
    for (const auto& [k, v] : headers) r.insert(k, v);
    return r;
}

TEST(BearerToken, TakesTheTokenOfABearerHeaderOnly) {
    EXPECT_EQ(bearer_token(request({{"Authorization", "Bearer abc.def"}})).value(), "abc.def");
    EXPECT_EQ(bearer_token(request({{"Authorization", "bearer   abc"}})).value(), "abc");
    EXPECT_FALSE(bearer_token(request({{"Authorization", "Basic YWxhZGRpbjpvcGVu"}})));
    EXPECT_FALSE(bearer_token(request({{"Authorization", "Bearer"}})));
    EXPECT_FALSE(bearer_token(request({{"Authorization", "Bearer "}})));
    EXPECT_FALSE(bearer_token(request({{"Authorization", "Bearerabc"}})));
    EXPECT_FALSE(bearer_token(request({})));
    // Two Authorization headers: which one a proxy checked is unknown.
    EXPECT_FALSE(
        bearer_token(request({{"Authorization", "Bearer a"}, {"Authorization", "Bearer b"}})));
}

TEST(Authenticator, NoneActsForTheLocalUser) {
    auto a = make_authenticator({});
    EXPECT_EQ(a->authenticate(request({}), kLoopback, 0).user, kLocalUser);
}

TEST(Authenticator, ApiKeysReloadAddsAndRevokesKeys) {
    test::TempDir dir;
    auto file = dir.path() / "keys";
    std::ofstream(file) << sha256_hex("k1") << " alice\n";
    auto a = make_authenticator({.mode = AuthMode::api_keys, .api_keys_file = file});
    auto with = [](std::string key) { return request({{"Authorization", "Bearer " + key}}); };
    EXPECT_EQ(a->authenticate(with("k1"), kElsewhere, 0).user->value, "alice");
    EXPECT_FALSE(a->authenticate(with("k2"), kElsewhere, 0).user);
    std::ofstream(file, std::ios::trunc) << sha256_hex("k2") << " bob\n";
    a->reload();
    EXPECT_FALSE(a->authenticate(with("k1"), kElsewhere, 0).user);
    EXPECT_EQ(a->authenticate(with("k2"), kElsewhere, 0).user->value, "bob");
    // A broken file keeps the keys in use.
    std::ofstream(file, std::ios::trunc) << "garbage\n";
    EXPECT_THROW(a->reload(), std::runtime_error);
    EXPECT_EQ(a->authenticate(with("k2"), kElsewhere, 0).user->value, "bob");
}

TEST(Authenticator, ApiKeysRefuseToStartWithoutAFile) {
    EXPECT_THROW(make_authenticator({.mode = AuthMode::api_keys}), std::runtime_error);
    EXPECT_THROW(make_authenticator({.mode = AuthMode::api_keys, .api_keys_file = "/nonexistent"}),
                 std::runtime_error);
}

TEST(Authenticator, JwtHs256RefusesToStartWithAShortSecret) {
    AuthConfig c{.mode = AuthMode::jwt};
    c.jwt.secret = "short";
    EXPECT_THROW(make_authenticator(c), std::runtime_error);
    c.jwt.secret = std::string(32, 's');
    EXPECT_NO_THROW(make_authenticator(c));
}

TEST(Authenticator, JwtRs256NeedsExactlyOneKeySource) {
    AuthConfig c{.mode = AuthMode::jwt};
    c.jwt.alg = JwtAlg::rs256;
    EXPECT_THROW(make_authenticator(c), std::runtime_error);
}

TEST(Authenticator, TrustedHeaderNeedsAGatewayCheck) {
    EXPECT_THROW(make_authenticator({.mode = AuthMode::trusted_header}), std::runtime_error);
}

TEST(Authenticator, TrustedHeaderBelievesOnlyListedProxies) {
    auto a = make_authenticator({.mode = AuthMode::trusted_header,
                                 .trusted_proxies = parse_address_ranges("10.0.0.0/8, 127.0.0.1")});
    auto r = request({{"X-Chatd-User", "alice"}});
    EXPECT_EQ(a->authenticate(r, kLoopback, 0).user->value, "alice");
    EXPECT_EQ(a->authenticate(r, ip::make_address("10.1.2.3"), 0).user->value, "alice");
    EXPECT_EQ(a->authenticate(r, ip::make_address("::ffff:10.1.2.3"), 0).user->value, "alice");
    EXPECT_FALSE(a->authenticate(r, kElsewhere, 0).user);
    EXPECT_FALSE(a->authenticate(request({}), kLoopback, 0).user);
    EXPECT_FALSE(a->authenticate(request({{"X-Chatd-User", "a b"}}), kLoopback, 0).user);
    EXPECT_FALSE(
        a->authenticate(request({{"X-Chatd-User", "a"}, {"X-Chatd-User", "b"}}), kLoopback, 0)
            .user);
}

TEST(Authenticator, TrustedHeaderWithASecretNeedsIt) {
    auto a = make_authenticator(
        {.mode = AuthMode::trusted_header, .trusted_secret = "s3cret-of-the-gateway"});
    EXPECT_EQ(a->authenticate(request({{"X-Chatd-User", "alice"},
                                       {"X-Chatd-Proxy-Secret", "s3cret-of-the-gateway"}}),
                              kElsewhere, 0)
                  .user->value,
              "alice");
    EXPECT_FALSE(a->authenticate(request({{"X-Chatd-User", "alice"},
                                          {"X-Chatd-Proxy-Secret", "s3cret-of-the-gatewaY"}}),
                                 kElsewhere, 0)
                     .user);
    EXPECT_FALSE(a->authenticate(request({{"X-Chatd-User", "alice"}}), kElsewhere, 0).user);
}

TEST(AddressRange, ParsesAddressesAndCidrs) {
    auto r = AddressRange::parse("192.168.0.0/16");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->contains(ip::make_address("192.168.44.1")));
    EXPECT_FALSE(r->contains(ip::make_address("192.169.0.1")));
    EXPECT_FALSE(r->contains(ip::make_address("::1")));
    auto v6 = AddressRange::parse("fd00::/8");
    ASSERT_TRUE(v6);
    EXPECT_TRUE(v6->contains(ip::make_address("fd12::1")));
    for (auto bad : {"", "10.0.0.1/8", "300.0.0.0/8", "10.0.0.0/33", "example.com"})
        EXPECT_FALSE(AddressRange::parse(bad)) << bad;
    EXPECT_THROW(parse_address_ranges("10.0.0.0/8,nope"), std::runtime_error);
}

TEST(UserIds, ArePrintableAsciiUpTo255) {
    EXPECT_TRUE(is_valid_user_id("auth0|5f7c8ec7c33c6c004bbafe82"));
    EXPECT_TRUE(is_valid_user_id("alice@example.com"));
    EXPECT_TRUE(is_valid_user_id(std::string(255, 'a')));
    EXPECT_FALSE(is_valid_user_id(std::string(256, 'a')));
    EXPECT_FALSE(is_valid_user_id(""));
    EXPECT_FALSE(is_valid_user_id("a b"));
    EXPECT_FALSE(is_valid_user_id("caf\xc3\xa9"));
}

}  // namespace
}  // namespace chatd::auth
