#include "auth/session_cookie.hpp"

#include "auth/base64url.hpp"

#include <gtest/gtest.h>

namespace chatd::auth {
namespace {

const SessionCookies kCookies(std::string(32, 'k'));
const SessionClaims kAlice{UserId{"alice"}, 2000, "hash"};

TEST(SessionCookies, VerifyWhatTheyIssueUntilExpiry) {
    auto value = kCookies.issue(kAlice);
    auto claims = kCookies.verify(value, 1999);
    ASSERT_TRUE(claims);
    EXPECT_EQ(claims->user.value, "alice");
    EXPECT_EQ(claims->expires_at, 2000);
    EXPECT_EQ(claims->binding, "hash");
    EXPECT_FALSE(kCookies.verify(value, 2000));
}

TEST(SessionCookies, RefuseAnotherKeysOrAlteredCookies) {
    auto value = kCookies.issue(kAlice);
    EXPECT_FALSE(SessionCookies(std::string(32, 'x')).verify(value, 0));
    auto dot = value.find('.');
    auto as_bob = encode_base64url(R"({"u":"bob","e":2000,"b":"hash"})") + value.substr(dot);
    EXPECT_FALSE(kCookies.verify(as_bob, 0));
    EXPECT_FALSE(kCookies.verify(value.substr(0, dot), 0));
    EXPECT_FALSE(kCookies.verify(value + "A", 0));
    EXPECT_FALSE(kCookies.verify("", 0));
    EXPECT_FALSE(kCookies.verify(std::string(5000, 'a') + value, 0));
}

TEST(SessionCookies, NeedAKeyOf32Bytes) {
    EXPECT_THROW(SessionCookies(std::string(31, 'k')), std::runtime_error);
}

TEST(CookieValue, FindsTheNamedCookieOnce) {
    EXPECT_EQ(cookie_value("a=1; chatd_session=xyz; b=2", "chatd_session").value(), "xyz");
    EXPECT_EQ(cookie_value("chatd_session=xyz", "chatd_session").value(), "xyz");
    EXPECT_FALSE(cookie_value("a=1; b=2", "chatd_session"));
    EXPECT_FALSE(cookie_value("xchatd_session=1", "chatd_session"));
    EXPECT_FALSE(cookie_value("chatd_session=1; chatd_session=2", "chatd_session"));
}

}  // namespace
}  // namespace chatd::auth
