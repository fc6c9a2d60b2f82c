#include "llm/upstream/retry.hpp"

#include <gtest/gtest.h>

namespace chatd::llm::upstream {
namespace {

using namespace std::chrono_literals;

TEST(RetryAfter, ParsesSecondsAndHttpDates) {
    auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
    EXPECT_EQ(parse_retry_after("3", now), 3000ms);
    EXPECT_EQ(parse_retry_after(" 0 ", now), 0ms);
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now), 3000ms);
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), 0ms);  // past
    EXPECT_FALSE(parse_retry_after("", now));
    EXPECT_FALSE(parse_retry_after("-1", now));
    EXPECT_FALSE(parse_retry_after("soon", now));
    EXPECT_FALSE(parse_retry_after("Sun, 06 Foo 1994 08:49:40 GMT", now));
}

TEST(Backoff, FullJitterUnderAnExponentialCapAndNeverBeforeRetryAfter) {
    RetryPolicy policy{.base = 100ms, .cap = 1000ms};
    std::mt19937_64 random(42);
    for (int retry = 0; retry < 8; ++retry) {
        auto ceiling = std::min<std::int64_t>(100 << retry, 1000);
        std::int64_t highest = 0;
        for (int i = 0; i < 500; ++i) {
            auto wait = backoff_delay(policy, retry, std::nullopt, random).count();
            ASSERT_GE(wait, 0);
            ASSERT_LE(wait, ceiling);
            highest = std::max(highest, wait);
        }
        EXPECT_GT(highest, ceiling / 2) << "jitter should spread over the whole range";
        EXPECT_GE(backoff_delay(policy, retry, 5000ms, random), 5000ms);
    }
}

}  // namespace
}  // namespace chatd::llm::upstream
