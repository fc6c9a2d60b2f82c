#include "api/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace chatd::api {

std::optional<std::chrono::milliseconds> RateLimiter::acquire(const UserId& user,
                                                              Clock::time_point now) {
    if (limit_.per_second <= 0) return std::nullopt;
    if (buckets_.size() >= next_sweep_) forget_full(now);
    auto [it, fresh] = buckets_.try_emplace(user.value, Bucket{limit_.burst, now});
    auto& b = it->second;
    if (!fresh) {
        std::chrono::duration<double> elapsed = now - b.at;
        b.tokens = std::min(limit_.burst, b.tokens + elapsed.count() * limit_.per_second);
        b.at = now;
    }
    if (b.tokens >= 1) {
        b.tokens -= 1;
        return std::nullopt;
    }
    auto wait_s = (1 - b.tokens) / limit_.per_second;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(wait_s * 1000)));
}

void RateLimiter::forget_full(Clock::time_point now) {
    // A bucket that has refilled holds nothing a fresh one would not.
    std::erase_if(buckets_, [&](const auto& entry) {
        std::chrono::duration<double> elapsed = now - entry.second.at;
        return entry.second.tokens + elapsed.count() * limit_.per_second >= limit_.burst;
    });
    next_sweep_ = std::max<std::size_t>(1024, buckets_.size() * 2);
}

}  // namespace chatd::api
