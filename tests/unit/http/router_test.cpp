#include "http/router.hpp"

#include <gtest/gtest.h>

namespace chatd::http {
namespace {

Router<int> make_router() {
    Router<int> r;
    r.add(bhttp::verb::get, "/a/{}/b", 1);
    r.add(bhttp::verb::post, "/a/{}/b", 2);
    r.add(bhttp::verb::get, "/a/stream", 3);
    return r;
}

TEST(Router, MatchesMethodAndPathWithParameters) {
    auto router = make_router();
    auto m = router.match(bhttp::verb::post, "/a/xyz/b");
    ASSERT_NE(m.target, nullptr);
    EXPECT_EQ(*m.target, 2);
    EXPECT_EQ(m.params, std::vector<std::string>{"xyz"});
}

TEST(Router, PrefersLiteralRoutesInOrder) {
    auto router = make_router();
    auto m = router.match(bhttp::verb::get, "/a/stream");
    ASSERT_NE(m.target, nullptr);
    EXPECT_EQ(*m.target, 3);
}

TEST(Router, ReportsAllowedMethodsWhenOnlyTheMethodIsWrong) {
    auto m = make_router().match(bhttp::verb::delete_, "/a/xyz/b");
    EXPECT_EQ(m.target, nullptr);
    EXPECT_EQ(m.allow, "GET, POST");
}

TEST(Router, UnknownPathHasNoTargetAndNoAllow) {
    auto m = make_router().match(bhttp::verb::get, "/nope");
    EXPECT_EQ(m.target, nullptr);
    EXPECT_TRUE(m.allow.empty());
    EXPECT_EQ(make_router().match(bhttp::verb::get, "/a//b").target, nullptr);
}

}  // namespace
}  // namespace chatd::http
