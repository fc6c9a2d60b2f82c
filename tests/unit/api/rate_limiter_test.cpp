#include "api/rate_limiter.hpp"
#include "api/stream_slots.hpp"

#include <gtest/gtest.h>

namespace chatd::api {
namespace {

using namespace std::chrono_literals;
const UserId kAlice{"alice"}, kBob{"bob"};

TEST(RateLimiter, AllowsTheBurstThenRefillsAtTheRate) {
    RateLimiter limiter({.per_second = 2, .burst = 3});
    RateLimiter::Clock::time_point t0{};
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(limiter.acquire(kAlice, t0)) << i;
    auto wait = limiter.acquire(kAlice, t0);
    ASSERT_TRUE(wait);
    EXPECT_EQ(*wait, 500ms);
    EXPECT_FALSE(limiter.acquire(kBob, t0));  // a bucket per user
    EXPECT_TRUE(limiter.acquire(kAlice, t0 + 400ms));
    EXPECT_FALSE(limiter.acquire(kAlice, t0 + 1000ms));
}

TEST(RateLimiter, ZeroRateMeansNoLimit) {
    RateLimiter limiter({.per_second = 0, .burst = 1});
    for (int i = 0; i < 100; ++i) EXPECT_FALSE(limiter.acquire(kAlice, {}));
    EXPECT_EQ(limiter.tracked(), 0u);
}

TEST(RateLimiter, ForgetsRefilledBucketsSoMemoryStaysBounded) {
    RateLimiter limiter({.per_second = 10, .burst = 10});
    RateLimiter::Clock::time_point t0{};
    for (int i = 0; i < 5000; ++i)
        (void)limiter.acquire(UserId{"u" + std::to_string(i)}, t0 + std::chrono::seconds(i));
    // Users seen more than a second ago have refilled and are forgotten.
    EXPECT_LT(limiter.tracked(), 2100u);
}

TEST(StreamSlots, HoldAndGiveBackPerUser) {
    StreamSlots slots(2);
    auto a = slots.open(kAlice);
    auto b = slots.open(kAlice);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(slots.open(kAlice).error(), Error::too_many_streams);
    EXPECT_TRUE(slots.open(kBob));
    a->reset();
    EXPECT_EQ(slots.open_count(kAlice), 1u);
    EXPECT_TRUE(slots.open(kAlice));
}

}  // namespace
}  // namespace chatd::api
