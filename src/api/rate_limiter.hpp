#pragma once
// Requests per user per second: a token bucket per user (rate `per_second`,
// burst `burst`). Buckets that have refilled are forgotten when the table
// grows, so memory stays bounded by the users active in the last few seconds.
// Time is passed in (tests set it). I/O thread only; not thread-safe.
#include "core/ids.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>

namespace chatd::api {

struct RateLimit {
    double per_second = 50;  // 0: unlimited
    double burst = 200;
};

class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;

    explicit RateLimiter(RateLimit limit) : limit_(limit) {}

    // Takes one token for `user`; when there is none, how long until there is.
    std::optional<std::chrono::milliseconds> acquire(const UserId& user, Clock::time_point now);
    std::size_t tracked() const { return buckets_.size(); }

private:
    struct Bucket {
        double tokens;
        Clock::time_point at;
    };
    void forget_full(Clock::time_point now);

    RateLimit limit_;
    std::unordered_map<std::string, Bucket> buckets_;
    std::size_t next_sweep_ = 1024;
};

}  // namespace chatd::api
