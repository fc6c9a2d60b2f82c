#pragma once
// When to try an upstream request again: exponential backoff with full jitter
// (a uniformly random wait up to the exponential cap), never sooner than the
// server's Retry-After, and never past the overall retry deadline.
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace chatd::llm::upstream {

struct RetryPolicy {
    int max_retries = 3;  // attempts = max_retries + 1
    std::chrono::milliseconds deadline{60000};
    std::chrono::milliseconds base{500};
    std::chrono::milliseconds cap{8000};
};

// Retry-After as delta-seconds or an HTTP-date (RFC 9110 §10.2.3); nullopt
// when unparseable. A date in the past is zero.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// The wait before retry number `retry` (0 for the first retry): uniform in
// [0, min(cap, base * 2^retry)], at least `retry_after`.
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry,
                                        std::optional<std::chrono::milliseconds> retry_after,
                                        std::mt19937_64& random);

}  // namespace chatd::llm::upstream
